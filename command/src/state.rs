//! What every handler shares: configuration, the database pool, the clock, the calendar, the
//! order writer, the partner secrets and the history store's client.

use crate::config::Config;
use crate::reference::Reference;
use crate::writer::Writer;
use mmf_shared::auth::Partners;
use mmf_shared::clock::Clock;
use mmf_shared::db::{DbConn, DbPool};
use mmf_shared::http::ApiError;
use mmf_shared::latency::Window;
use std::ops::Deref;
use std::sync::Arc;

pub struct Inner {
    pub config: Config,
    pub db: DbPool,
    pub clock: Clock,
    pub reference: Reference,
    pub writer: Writer,
    pub partners: Partners,
    /// The history store: retention verifies against it, old orders are read from it.
    pub ch: clickhouse::Client,
    /// Partner requests' latency, published for the daily cycle's pacing.
    pub latency: Window,
}

/// Cheap to clone; handlers take it as `State(state)`.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Connects, seeds partners from config and loads reference data. Migrations are the
    /// caller's (the binary runs them at start; tests clone a migrated template).
    pub async fn new(config: Config, clock: Clock) -> anyhow::Result<AppState> {
        let db = mmf_shared::db::db_pool(&config.common.database_url, config.common.db_pool)?;
        mmf_shared::auth::seed_partners(&db, &config.partners).await?;
        let reference = Reference::load(&db).await?;
        reference.watch(db.clone(), std::time::Duration::from_millis(250));
        let writer = Writer::start(
            &config.common.database_url,
            config.writer_shards,
            config.writer_batch,
        )
        .await?;
        let partners = Partners::new(db.clone());
        let ch =
            mmf_shared::ch::client_for(&config.common.clickhouse_url, &config.common.clickhouse_db);
        let latency = Window::default();
        latency.publish(db.clone(), "command");
        Ok(AppState(Arc::new(Inner {
            config,
            db,
            clock,
            reference,
            writer,
            partners,
            ch,
            latency,
        })))
    }

    /// A connection for a request (503 when the pool cannot give one in time).
    pub async fn conn(&self) -> Result<DbConn, ApiError> {
        Ok(self.db.get().await?)
    }
}
