//! Order throughput: 70% fast redemptions / 30% subscriptions over 100k accounts through the
//! real HTTP API, next to `pgbench -b tpcb-like` on the same Postgres in the same run.
//!
//! Options (key=value): accounts=100000 clients=64 seconds=20 pgbench_clients=16 shards=8 batch=256
//! pgbench=0 (skip the baseline)

use crate::{connect, opt, recreate, seed_holders, send_random_order};
use anyhow::Context;
use hdrhistogram::Histogram;
use mmf_command::{build_app, AppState};
use mmf_shared::clock::Clock;
use mmf_tests::{test_config, Signer, TestDb};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DB: &str = "mmf_bench_orders";

/// The options of a run.
struct Settings {
    accounts: u64,
    clients: u64,
    seconds: u64,
    pgbench_clients: u64,
    pgbench: bool,
    shards: usize,
    batch: usize,
}

impl Settings {
    fn from_args(args: &[String]) -> Self {
        Self {
            accounts: opt(args, "accounts", 100_000),
            clients: opt(args, "clients", 64),
            seconds: opt(args, "seconds", 20),
            pgbench_clients: opt(args, "pgbench_clients", 16),
            pgbench: opt(args, "pgbench", 1) == 1,
            shards: opt(args, "shards", 8) as usize,
            batch: opt(args, "batch", 256) as usize,
        }
    }
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let s = Settings::from_args(args);
    // Baseline first, so both see the same server state and settings.
    let tps = if s.pgbench {
        pgbench_tps(s.pgbench_clients, s.seconds).await?
    } else {
        f64::NAN
    };
    let (pg, api) = start_service(&s).await?;
    let load = send_orders(&s, &api, &pg).await?;
    report(&pg, &load, tps).await
}

/// The command service under test: where it listens and the clock it runs on.
struct Api {
    base: String,
    clock: Clock,
}

/// Seeds a fresh database with `accounts` holders and starts the command service on it;
/// returns a connection to the database and the service.
async fn start_service(s: &Settings) -> anyhow::Result<(tokio_postgres::Client, Api)> {
    println!("seeding {} accounts with positions", s.accounts);
    let url = recreate(DB).await?;
    mmf_shared::db::migrate(&url).await?;
    let db = TestDb {
        name: DB.into(),
        url: url.clone(),
    };
    let mut config = test_config(&db);
    config.common.db_pool = 16;
    config.writer_shards = s.shards;
    config.writer_batch = s.batch;
    let pg = connect(&url).await?;
    seed_holders(&pg, &url, &config.partners, s.accounts).await?;
    pg.batch_execute("VACUUM ANALYZE").await?;

    // A trading-day morning, fixed, so every order gets the same trade date.
    let clock = Clock::simulated(mmf_tests::default_now());
    let state = AppState::new(config, clock.clone()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, build_app(state)).await });
    Ok((pg, Api { base, clock }))
}

/// One load client's view of the run: where to send, until when, and the shared counts.
#[derive(Clone)]
struct LoadClient {
    http: reqwest::Client,
    base: String,
    clock: Clock,
    accounts: u64,
    deadline: Instant,
    accepted: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
}

impl LoadClient {
    /// Sends random orders until the deadline; latencies in µs.
    async fn send_until_deadline(self, t: u64) -> Histogram<u64> {
        let signer = Signer::new("p1");
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        let mut n = 0u64;
        while Instant::now() < self.deadline {
            n += 1;
            let start = Instant::now();
            let resp = send_random_order(
                &self.http,
                &self.base,
                &signer,
                self.clock.now(),
                self.accounts,
                format!("b{t}-{n}"),
            )
            .await;
            let ok = resp.status() == reqwest::StatusCode::CREATED;
            let _ = resp.bytes().await;
            hist.record(start.elapsed().as_micros() as u64).unwrap();
            if ok { &self.accepted } else { &self.refused }.fetch_add(1, Ordering::Relaxed);
        }
        hist
    }
}

/// What the load did: latencies, answers, wall time and CPU seconds (Postgres, this process).
struct Load {
    hist: Histogram<u64>,
    accepted: u64,
    refused: u64,
    elapsed: f64,
    cpu: (f64, f64),
}

/// Runs `clients` load clients for `seconds` and measures them.
async fn send_orders(s: &Settings, api: &Api, pg: &tokio_postgres::Client) -> anyhow::Result<Load> {
    let clients = s.clients;
    println!(
        "load: {clients} clients for {} s, 70% fast redemptions / 30% subscriptions",
        s.seconds
    );
    let client = LoadClient {
        accepted: Arc::new(AtomicU64::new(0)),
        refused: Arc::new(AtomicU64::new(0)),
        deadline: Instant::now() + Duration::from_secs(s.seconds),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(clients as usize)
            .build()?,
        base: api.base.clone(),
        clock: api.clock.clone(),
        accounts: s.accounts,
    };
    let tasks: Vec<_> = (0..clients)
        .map(|t| tokio::spawn(client.clone().send_until_deadline(t)))
        .collect();
    let cpu_before = cpu_seconds(pg).await?;
    let started = Instant::now();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for t in tasks {
        hist.add(t.await?)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu_seconds(pg).await?;
    Ok(Load {
        hist,
        accepted: client.accepted.load(Ordering::Relaxed),
        refused: client.refused.load(Ordering::Relaxed),
        elapsed,
        cpu: (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1),
    })
}

/// Prints the results and checks that every accepted order is in Postgres.
async fn report(pg: &tokio_postgres::Client, load: &Load, tps: f64) -> anyhow::Result<()> {
    let ok = load.accepted;
    let rate = ok as f64 / load.elapsed;
    let orders: i64 = pg
        .query_one("SELECT count(*) FROM orders", &[])
        .await?
        .get(0);
    println!("results:");
    println!(
        "  accepted orders      = {ok} ({} refused), {orders} order rows in Postgres",
        load.refused
    );
    println!("  throughput           = {rate:.0} orders/s");
    let hist = &load.hist;
    println!(
        "  latency p50 / p99    = {:.1} ms / {:.1} ms (max {:.1} ms)",
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0
    );
    if tps.is_finite() {
        println!("  ratio to pgbench tps = {:.2}x", rate / tps);
    }
    let (pg_cpu, app_cpu) = load.cpu;
    println!(
        "  CPU per order        = {:.0} us Postgres + {:.0} us service and load client",
        pg_cpu / ok as f64 * 1e6,
        app_cpu / ok as f64 * 1e6
    );
    println!(
        "  CPU-bound ceiling    = {:.0} orders/s on 2 idle cores",
        2.0 * ok as f64 / (pg_cpu + app_cpu)
    );
    print_writer_batches();
    anyhow::ensure!(
        orders as u64 == ok,
        "order rows ({orders}) differ from accepted responses ({ok})"
    );
    Ok(())
}

/// The mean number of orders per order-writer transaction, from the service's metrics.
fn print_writer_batches() {
    if let Some(h) = mmf_shared::http::REGISTRY
        .gather()
        .iter()
        .find(|m| m.name() == "order_writer_batch_size")
    {
        let h = h.get_metric()[0].get_histogram();
        println!(
            "  orders per writer tx = {:.1} (mean of {} transactions)",
            h.get_sample_sum() / h.get_sample_count().max(1) as f64,
            h.get_sample_count()
        );
    }
}

/// CPU seconds used so far by this database's Postgres backends and by this process (from
/// /proc, so other load on the machine does not count).
async fn cpu_seconds(c: &tokio_postgres::Client) -> anyhow::Result<(f64, f64)> {
    let ticks = |pid: &str| -> f64 {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
                Some(rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?)
            })
            .unwrap_or(0.0)
            / 100.0
    };
    let pids = c
        .query("SELECT pid::text FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND backend_type = 'client backend'", &[])
        .await?;
    let pg: f64 = pids.iter().map(|r| ticks(r.get::<_, &str>(0))).sum();
    Ok((pg, ticks("self")))
}

/// `pgbench -b tpcb-like` (scale 10) on a database of its own; returns transactions/s.
async fn pgbench_tps(clients: u64, seconds: u64) -> anyhow::Result<f64> {
    println!("baseline: pgbench -b tpcb-like -c {clients} -j 2 -T {seconds} (scale 10)");
    let url = recreate("mmf_bench_pgbench").await?;
    let init = Command::new("pgbench")
        .args(["-i", "-q", "-s", "10", &url])
        .output()
        .context("running pgbench -i")?;
    anyhow::ensure!(
        init.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let out = Command::new("pgbench")
        .args([
            "-b",
            "tpcb-like",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-n",
            &url,
        ])
        .output()
        .context("running pgbench")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let tps: f64 = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no tps in pgbench output: {text}"))?;
    let latency = text
        .lines()
        .find(|l| l.starts_with("latency average"))
        .unwrap_or("");
    println!("  pgbench tps = {tps:.0} ({latency})");
    Ok(tps)
}
