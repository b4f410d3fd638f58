//! `mmf-sync`: runs the sync worker until SIGINT or SIGTERM.

use tokio::signal::unix::{signal, SignalKind};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mmf_shared::telemetry::init();
    let config = mmf_sync::Config::from_environment()?;
    let worker = mmf_sync::start(config).await?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    worker.stop().await;
    Ok(())
}
