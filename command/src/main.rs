use anyhow::Context;
use mmf_command::{build_app, AppState, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mmf_shared::telemetry::init();
    let config = Config::from_environment()?;
    mmf_shared::db::migrate(&config.common.database_url).await?;
    let clock = config.common.clock();
    let addr = config.addr.clone();
    let state = AppState::new(config, clock).await?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, "command service listening");
    axum::serve(listener, build_app(state))
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}
