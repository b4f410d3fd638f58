//! Postgres: the connection pool of the typed data layer (diesel on diesel-async), how its
//! errors are told apart, and migrations (refinery).

use anyhow::Context;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::deadpool as dp;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::AsyncPgConnection;
use tokio_postgres::NoTls;

/// Pool of typed connections.
pub type DbPool = dp::Pool<AsyncPgConnection>;
/// A connection checked out of [`DbPool`].
pub type DbConn = dp::Object<AsyncPgConnection>;
pub type PoolError = dp::PoolError;

/// A pool of `size` connections to `url`. Checking out waits at most 5 s (then the caller
/// answers 503). A connection is checked for an open transaction when it comes back; one
/// whose server session ended fails its next statement (503) and is then replaced, so the pool
/// recovers by itself without a round trip per checkout.
pub fn db_pool(url: &str, size: usize) -> anyhow::Result<DbPool> {
    let mut config = diesel_async::pooled_connection::ManagerConfig::default();
    config.recycling_method = diesel_async::pooled_connection::RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    dp::Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(std::time::Duration::from_secs(5)))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .context("building Postgres pool")
}

/// What can go wrong reaching or querying the database (jobs wrap it in their own errors).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Query(#[from] DieselError),
    #[error(transparent)]
    Pool(#[from] PoolError),
}

/// Messages of the errors Postgres sends when it ends a session (SQLSTATE 57P01..57P03), which
/// diesel-async reports without their code.
const SESSION_ENDED: [&str; 2] = ["terminating connection", "the database system is"];

/// True when the database could not be reached or the session was lost: the same work may
/// succeed once it is back.
pub fn is_connection_lost(e: &DieselError) -> bool {
    match e {
        // The session ended inside a transaction, so it could not even be rolled back.
        DieselError::BrokenTransactionManager => true,
        DieselError::RollbackErrorOnCommit { commit_error, .. } => is_connection_lost(commit_error),
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            SESSION_ENDED.iter().any(|m| info.message().starts_with(m))
        }
        _ => false,
    }
}

/// True when a transaction lost a race with another one (serialization failure, deadlock) and
/// running it again may succeed.
pub fn is_conflict(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            info.message().starts_with("deadlock detected")
        }
        _ => false,
    }
}

pub fn is_unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Session advisory lock held while migrating ("mmf_mig").
const MIGRATION_LOCK: i64 = 0x006d_6d66_5f6d_6967;

mod embedded {
    refinery::embed_migrations!("../migrations/postgres");
}

/// Applies the migrations under `migrations/postgres` that the database has not seen yet.
pub async fn migrate(url: &str) -> anyhow::Result<()> {
    migrate_to(url, None).await
}

/// Applies the migrations up to and including `version` (all when `None`); tests use it to
/// build a database as an earlier release left it.
pub async fn migrate_to(url: &str, version: Option<u32>) -> anyhow::Result<()> {
    let (mut client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .context("connecting to Postgres")?;
    let handle = tokio::spawn(conn);
    let target = match version {
        Some(v) => refinery::Target::Version(v),
        None => refinery::Target::Latest,
    };
    // Every service migrates at start; instances starting together take turns, and the later
    // ones find nothing left to apply.
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("waiting for the migration lock")?;
    let report = embedded::migrations::runner()
        .set_target(target)
        .run_async(&mut client)
        .await
        .context("running Postgres migrations")?;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    for m in report.applied_migrations() {
        tracing::info!(migration = %m, "applied");
    }
    drop(client);
    let _ = handle.await;
    Ok(())
}

/// A hand-written statement whose text never changes. Unlike `diesel::sql_query`, which plans
/// its text anew on every call, it is prepared once per connection and reused (the set-based
/// statements run thousands of times a second). Binds follow with `.bind::<SqlType, _>(value)`
/// in the order of `$1, $2, …`; rows load into `QueryableByName` structs.
#[derive(Clone, Copy, Debug)]
#[must_use = "a statement runs only when loaded or executed"]
pub struct Prepared(&'static str);

/// [`Prepared`] for `sql`.
pub fn statement(sql: &'static str) -> Prepared {
    Prepared(sql)
}

/// A statement with one more bind value (of SQL type `ST`) than `Q`.
#[derive(Clone, Copy, Debug)]
#[must_use = "a statement runs only when loaded or executed"]
pub struct Bound<Q, V, ST> {
    query: Q,
    value: V,
    sql_type: std::marker::PhantomData<ST>,
}

impl Prepared {
    pub fn bind<ST, V>(self, value: V) -> Bound<Self, V, ST> {
        Bound {
            query: self,
            value,
            sql_type: std::marker::PhantomData,
        }
    }
}

impl<Q, V, ST> Bound<Q, V, ST> {
    pub fn bind<ST2, V2>(self, value: V2) -> Bound<Self, V2, ST2> {
        Bound {
            query: self,
            value,
            sql_type: std::marker::PhantomData,
        }
    }
}

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

impl QueryFragment<Pg> for Prepared {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        out.push_sql(self.0);
        Ok(())
    }
}

impl<Q, V, ST> QueryFragment<Pg> for Bound<Q, V, ST>
where
    Pg: diesel::sql_types::HasSqlType<ST>,
    Q: QueryFragment<Pg>,
    V: diesel::serialize::ToSql<ST, Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        out.push_bind_param_value_only(&self.value)
    }
}

// Cached by their text, which is fixed: no static query id, and never marked unsafe to cache.
impl QueryId for Prepared {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, V, ST> QueryId for Bound<Q, V, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared {
    type SqlType = diesel::sql_types::Untyped;
}

impl<Q, V, ST> Query for Bound<Q, V, ST> {
    type SqlType = diesel::sql_types::Untyped;
}
