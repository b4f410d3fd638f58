//! Postgres pool and migrations.

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

/// Session advisory lock held while migrating ("mmf_mig").
const MIGRATION_LOCK: i64 = 0x006d_6d66_5f6d_6967;

mod embedded {
    refinery::embed_migrations!("../migrations/postgres");
}

pub fn pool(url: &str, size: usize) -> anyhow::Result<Pool> {
    let cfg: tokio_postgres::Config = url.parse().context("MMF_DATABASE_URL")?;
    // A connection whose server session ended is closed by the time it is next checked out
    // and is then replaced; one that ends while checked out fails its request with 503
    // `unavailable` (http::ApiError) and is replaced at its next checkout. So the pool recovers
    // by itself without the round trip per checkout that `RecyclingMethod::Verified` costs.
    let mgr = Manager::from_config(
        cfg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(size)
        .wait_timeout(Some(std::time::Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .context("building Postgres pool")
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
