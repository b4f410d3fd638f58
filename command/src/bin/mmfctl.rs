//! `mmfctl`, the operator CLI (see `mmf_command::cli`).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mmf_command::cli::run(mmf_command::cli::Cli::parse()).await
}
