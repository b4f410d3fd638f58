use anyhow::Context;
use mmf_query::{build_app, AppState, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mmf_shared::telemetry::init();
    let config = Config::from_environment()?;
    // The report SQL reads the history schema, so the query service applies it at start as
    // the sync worker does, one at a time under a Postgres lock. Retried: ClickHouse may still
    // be starting.
    let ch = mmf_shared::ch::client(&config.common.clickhouse_url);
    let mut attempt = 0;
    while let Err(e) = mmf_shared::ch::migrate_exclusive(
        &ch,
        &config.common.clickhouse_db,
        &config.common.database_url,
    )
    .await
    {
        attempt += 1;
        if attempt >= 10 {
            return Err(e);
        }
        tracing::warn!(
            error = format!("{e:#}"),
            "ClickHouse migrations failed, retrying"
        );
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let clock = config.common.clock();
    let addr = config.addr.clone();
    let state = AppState::new(config, clock)?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, "query service listening");
    axum::serve(listener, build_app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
