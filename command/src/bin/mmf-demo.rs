//! `mmf-demo`, the end-to-end demo `scripts/up.sh` runs (see `mmf_command::demo`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mmf_command::demo::run().await
}
