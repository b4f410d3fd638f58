//! Benchmarks: each prints its numbers next to a baseline measured in the same run.
//! `cargo run --release -p mmf-bench -- <name> [options]`; see BENCHMARKS.md.

mod cycle;
mod orders;
mod query;
mod sync;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("orders") => orders::run(rest).await,
        Some("query") => query::run(rest).await,
        Some("sync") => sync::run(rest).await,
        Some("cycle") => cycle::run(rest).await,
        _ => {
            eprintln!("usage: mmf-bench <orders|query|sync|cycle> [options]");
            std::process::exit(2)
        }
    }
}
