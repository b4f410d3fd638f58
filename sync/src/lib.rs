//! Sync worker: streams committed Postgres changes into the ClickHouse history store.
//!
//! One shipping loop per replicated table reads rows past its saved cursor and below the
//! visibility watermark (`pg_snapshot_xmin`), inserts them into ClickHouse and only then saves
//! the cursor (docs/decisions/0002-sync-outbox.md). A further loop builds each day's holdings
//! once the day's movements and income are shipped, and each day's per-person order flows once
//! its orders are final. `/metrics` and `/health` are served on
//! `MMF_SYNC_ADDR`.

pub mod compact;
pub mod config;
pub mod cursor;
pub mod flows;
pub mod holdings;
pub mod investor;
pub mod lag;
pub mod metrics;
pub mod shipper;
pub mod status;
pub mod tables;

pub use config::Config;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tables::{
    Accounts, FundIncome, Funds, IncomePayments, Orders, TradeConfirmations, UnitJournal,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What every loop of the worker shares.
pub struct Shared {
    pub config: Config,
    pub pg: mmf_shared::db::DbPool,
    pub ch: clickhouse::Client,
    pub status: status::Status,
}

/// A running worker. Dropping it leaves the tasks running; call [`Worker::stop`].
pub struct Worker {
    /// Where `/metrics` and `/health` are served.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Worker {
    /// Stops after the batches in flight and waits for every loop to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts the worker: serves HTTP at once, applies the ClickHouse migrations (retrying while
/// ClickHouse is unreachable), then starts the shipping loops.
pub async fn start(config: Config) -> anyhow::Result<Worker> {
    let pg = mmf_shared::db::db_pool(&config.database_url, 16)?;
    let ch = mmf_shared::ch::client_for(&config.clickhouse_url, &config.clickhouse_db);
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        config,
        pg,
        ch,
        status: status::Status::default(),
    });
    let (stop, stop_rx) = watch::channel(false);

    let app = axum::Router::new()
        .route("/metrics", get(mmf_shared::http::metrics))
        .route("/health", get(health))
        .with_state(shared.clone());
    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(async move {
        let shutdown = async move {
            let _ = http_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "sync HTTP server failed");
        }
    });

    let loops = tokio::spawn(supervise(shared, stop_rx));
    tracing::info!(%addr, "sync worker started");
    Ok(Worker {
        addr,
        stop,
        tasks: vec![http, loops],
    })
}

async fn supervise(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    shared.status.register("clickhouse_schema");
    let base = mmf_shared::ch::client(&shared.config.clickhouse_url);
    let mut backoff = shipper::MIN_BACKOFF;
    loop {
        match mmf_shared::ch::migrate_exclusive(
            &base,
            &shared.config.clickhouse_db,
            &shared.config.database_url,
        )
        .await
        {
            Ok(_) => {
                shared.status.succeeded("clickhouse_schema", true);
                break;
            }
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "ClickHouse migrations failed, retrying"
                );
                shared.status.failed("clickhouse_schema", format!("{e:#}"));
                if !shipper::pause(&mut stop, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    let tasks = vec![
        tokio::spawn(shipper::run::<Funds>(shared.clone(), stop.clone())),
        tokio::spawn(shipper::run::<Accounts>(shared.clone(), stop.clone())),
        tokio::spawn(shipper::run::<Orders>(shared.clone(), stop.clone())),
        tokio::spawn(shipper::run::<UnitJournal>(shared.clone(), stop.clone())),
        tokio::spawn(shipper::run::<FundIncome>(shared.clone(), stop.clone())),
        tokio::spawn(shipper::run::<IncomePayments>(shared.clone(), stop.clone())),
        tokio::spawn(shipper::run::<TradeConfirmations>(
            shared.clone(),
            stop.clone(),
        )),
        tokio::spawn(holdings::run(shared.clone(), stop.clone())),
        tokio::spawn(lag::run(shared.clone(), stop.clone())),
    ];
    for t in tasks {
        let _ = t.await;
    }
}

/// 200 while every stream's last attempt succeeded, 503 naming the failing ones.
async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let streams = shared.status.snapshot();
    let failing: serde_json::Map<String, serde_json::Value> = streams
        .iter()
        .filter_map(|(name, s)| {
            s.error
                .as_ref()
                .map(|e| (name.to_string(), e.clone().into()))
        })
        .collect();
    if failing.is_empty() {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "degraded", "failing": failing})),
        )
            .into_response()
    }
}
