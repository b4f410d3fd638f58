//! Write throughput through the real HTTP API, next to `pgbench -b tpcb-like` on the same
//! Postgres in the same run, over 100k seeded holders:
//! - `mmf-bench orders`: 70% fast redemptions / 30% subscriptions;
//! - `mmf-bench accounts`: account openings, each a new customer with a valid resident ID.
//!
//! Every accepted answer is then checked against what was sent and against its row (the order,
//! or the account and its idempotency record).
//!
//! Options (key=value): accounts=100000 clients=64 seconds=20 pgbench_clients=16 shards=8 batch=256
//! pgbench=0 (skip the baseline)

use crate::{connect, opt, random_order, recreate, seed_holders};
use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use mmf_command::{build_app, AppState};
use mmf_shared::clock::Clock;
use mmf_tests::{test_config, Signer, TestDb};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DB: &str = "mmf_bench_orders";

/// What the load clients send.
#[derive(Clone, Copy, PartialEq)]
enum Writes {
    Orders,
    Accounts,
}

/// The options of a run.
struct Settings {
    writes: Writes,
    accounts: u64,
    clients: u64,
    seconds: u64,
    pgbench_clients: u64,
    pgbench: bool,
    shards: usize,
    batch: usize,
}

impl Settings {
    fn from_args(args: &[String], writes: Writes) -> Self {
        Self {
            writes,
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

/// `mmf-bench orders`.
pub async fn orders(args: &[String]) -> anyhow::Result<()> {
    run(Settings::from_args(args, Writes::Orders)).await
}

/// `mmf-bench accounts`.
pub async fn accounts(args: &[String]) -> anyhow::Result<()> {
    run(Settings::from_args(args, Writes::Accounts)).await
}

async fn run(s: Settings) -> anyhow::Result<()> {
    // Baseline first, so both see the same server state and settings.
    let tps = if s.pgbench {
        pgbench_tps(s.pgbench_clients, s.seconds).await?
    } else {
        f64::NAN
    };
    let (pg, api) = start_service(&s).await?;
    let load = send_writes(&s, &api, &pg).await?;
    report(&pg, &load, tps).await?;
    match s.writes {
        Writes::Orders => check_orders(&pg, &load.answers).await,
        Writes::Accounts => check_accounts(&pg, &load.answers).await,
    }
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
    writes: Writes,
    accounts: u64,
    deadline: Instant,
    accepted: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
}

impl LoadClient {
    /// Sends writes until the deadline; latencies in µs, and each accepted write's body with its
    /// answer.
    async fn send_until_deadline(self, t: u64) -> (Histogram<u64>, Vec<(Value, Bytes)>) {
        let signer = Signer::new("p1");
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        let mut n = 0u64;
        let mut answers = Vec::new();
        while Instant::now() < self.deadline {
            n += 1;
            let start = Instant::now();
            let rid = format!("b{t}-{n}");
            let (path, sent) = match self.writes {
                Writes::Orders => random_order(self.accounts, rid),
                Writes::Accounts => new_account(rid, t, n),
            };
            let resp = signer
                .send(
                    &self.http,
                    reqwest::Method::POST,
                    &self.base,
                    path,
                    Some(&sent),
                    self.clock.now(),
                    None,
                )
                .await;
            let ok = resp.status() == reqwest::StatusCode::CREATED;
            let body = resp.bytes().await.unwrap_or_default();
            hist.record(start.elapsed().as_micros() as u64).unwrap();
            if ok { &self.accepted } else { &self.refused }.fetch_add(1, Ordering::Relaxed);
            if ok {
                answers.push((sent, body));
            }
        }
        (hist, answers)
    }
}

/// What the load did: latencies, answers, wall time and CPU seconds (Postgres, this process).
struct Load {
    hist: Histogram<u64>,
    /// Each accepted order's body and answer.
    answers: Vec<(Value, Bytes)>,
    accepted: u64,
    refused: u64,
    elapsed: f64,
    cpu: (f64, f64),
}

/// Runs `clients` load clients for `seconds` and measures them.
async fn send_writes(s: &Settings, api: &Api, pg: &tokio_postgres::Client) -> anyhow::Result<Load> {
    let clients = s.clients;
    let what = match s.writes {
        Writes::Orders => "70% fast redemptions / 30% subscriptions",
        Writes::Accounts => "account openings",
    };
    println!("load: {clients} clients for {} s, {what}", s.seconds);
    let client = LoadClient {
        accepted: Arc::new(AtomicU64::new(0)),
        refused: Arc::new(AtomicU64::new(0)),
        deadline: Instant::now() + Duration::from_secs(s.seconds),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(clients as usize)
            .build()?,
        base: api.base.clone(),
        clock: api.clock.clone(),
        writes: s.writes,
        accounts: s.accounts,
    };
    let tasks: Vec<_> = (0..clients)
        .map(|t| tokio::spawn(client.clone().send_until_deadline(t)))
        .collect();
    let cpu_before = cpu_seconds(pg).await?;
    let started = Instant::now();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut answers = Vec::new();
    for t in tasks {
        let (h, a) = t.await?;
        hist.add(h)?;
        answers.extend(a);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu_seconds(pg).await?;
    Ok(Load {
        hist,
        answers,
        accepted: client.accepted.load(Ordering::Relaxed),
        refused: client.refused.load(Ordering::Relaxed),
        elapsed,
        cpu: (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1),
    })
}

/// A new customer's account opening, request `rid` of client `t`: customer `bench-{t}-{n}`,
/// a resident ID of its own (a birth date and sequence number from `t * 400_000 + n`, so
/// unique while a client sends fewer than 400,000; born 1930–2000 for 64 clients; a valid
/// check digit).
fn new_account(rid: String, t: u64, n: u64) -> (&'static str, Value) {
    let x = t * 400_000 + n;
    let born = chrono::NaiveDate::from_ymd_opt(1930, 1, 1).unwrap() + chrono::Days::new(x / 1000);
    let id = mmf_domain::idcard::with_check_digit(&format!(
        "110105{}{:03}",
        born.format("%Y%m%d"),
        x % 1000
    ));
    (
        "/v1/accounts",
        json!({"request_id": rid, "customer_id": format!("bench-{t}-{n}"), "name": "Zhang San",
               "id_type": "resident_id", "id_number": id, "mobile": "13800138000"}),
    )
}

/// Prints the results.
async fn report(pg: &tokio_postgres::Client, load: &Load, tps: f64) -> anyhow::Result<()> {
    let ok = load.accepted;
    let rate = ok as f64 / load.elapsed;
    let (orders, accounts): (i64, i64) = {
        let r = pg
            .query_one(
                "SELECT (SELECT count(*) FROM orders),
                        (SELECT count(*) FROM accounts WHERE customer_id LIKE 'bench-%')",
                &[],
            )
            .await?;
        (r.get(0), r.get(1))
    };
    println!("results:");
    println!(
        "  accepted writes      = {ok} ({} refused); in Postgres {orders} orders, {accounts} accounts opened",
        load.refused
    );
    println!("  throughput           = {rate:.0} writes/s");
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
        "  CPU per write        = {:.0} us Postgres + {:.0} us service and load client",
        pg_cpu / ok as f64 * 1e6,
        app_cpu / ok as f64 * 1e6
    );
    println!(
        "  CPU-bound ceiling    = {:.0} writes/s on 2 idle cores",
        2.0 * ok as f64 / (pg_cpu + app_cpu)
    );
    print_writer_batches();
    Ok(())
}

/// Each answer's `field` is what was sent.
fn ensure_sent(answer: &Value, fields: &[(&str, &Value)]) -> anyhow::Result<()> {
    for (field, want) in fields {
        anyhow::ensure!(
            answer[field] == **want,
            "{field} sent {want}, answered: {answer}"
        );
    }
    Ok(())
}

/// Every accepted answer is the order that was sent (request id, account, fund, kind, amount)
/// and equals its row in Postgres as the order lookup answers it (`order_json`); no row is
/// left without an answer.
async fn check_orders(
    pg: &tokio_postgres::Client,
    answers: &[(Value, Bytes)],
) -> anyhow::Result<()> {
    let mut stored = HashMap::new();
    for r in pg
        .query("SELECT order_id, order_json(o)::text FROM orders o", &[])
        .await?
    {
        stored.insert(r.get::<_, i64>(0), serde_json::from_str::<Value>(r.get(1))?);
    }
    for (sent, body) in answers {
        let answer: Value = serde_json::from_slice(body)?;
        let (kind, amount) = match sent.get("units") {
            Some(units) => ("fast_redemption", units),
            None => ("subscription", &sent["amount"]),
        };
        ensure_sent(
            &answer,
            &[
                ("request_id", &sent["request_id"]),
                ("account_id", &sent["account_id"]),
                ("fund_code", &sent["fund_code"]),
                ("kind", &Value::from(kind)),
                ("amount", amount),
            ],
        )?;
        let id = answer["order_id"]
            .as_i64()
            .context("an answer without order_id")?;
        let row = stored
            .remove(&id)
            .with_context(|| format!("order {id} was answered but is not stored"))?;
        anyhow::ensure!(row == answer, "order {id}: answered {answer}, stored {row}");
    }
    anyhow::ensure!(
        stored.is_empty(),
        "{} order rows have no accepted answer",
        stored.len()
    );
    println!(
        "  checked              = each of the {} accepted answers is what was sent and its order row",
        answers.len()
    );
    Ok(())
}

/// Every accepted answer is a new account of the customer that was sent, stored as answered
/// (partner, customer, masked ID), with the answer kept for replays under its request id; no
/// account of the load is left without an answer.
async fn check_accounts(
    pg: &tokio_postgres::Client,
    answers: &[(Value, Bytes)],
) -> anyhow::Result<()> {
    let mut stored = HashMap::new();
    for r in pg
        .query(
            "SELECT a.account_id, a.partner_id, a.customer_id, a.id_masked, i.response_body::text
             FROM accounts a
             LEFT JOIN idempotency i ON i.partner_id = a.partner_id
                                    AND i.request_id = 'b' || substr(a.customer_id, 7)
             WHERE a.customer_id LIKE 'bench-%'",
            &[],
        )
        .await?
    {
        let replay: Option<&str> = r.get(4);
        let replay = replay.map(serde_json::from_str::<Value>).transpose()?;
        stored.insert(
            r.get::<_, String>(0),
            (
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3),
                replay,
            ),
        );
    }
    for (sent, body) in answers {
        let answer: Value = serde_json::from_slice(body)?;
        ensure_sent(
            &answer,
            &[
                ("customer_id", &sent["customer_id"]),
                ("created", &Value::Bool(true)),
            ],
        )?;
        let id = answer["account_id"]
            .as_str()
            .context("an answer without account_id")?;
        let (partner, customer, masked, replay) = stored
            .remove(id)
            .with_context(|| format!("account {id} was answered but is not stored"))?;
        anyhow::ensure!(
            partner == "p1" && customer == sent["customer_id"] && masked == answer["id_masked"],
            "account {id}: answered {answer}, stored {partner} {customer} {masked}"
        );
        anyhow::ensure!(
            replay.as_ref() == Some(&answer),
            "account {id}: answered {answer}, kept for replays {replay:?}"
        );
    }
    anyhow::ensure!(
        stored.is_empty(),
        "{} opened accounts have no accepted answer",
        stored.len()
    );
    println!(
        "  checked              = each of the {} accepted answers is a new account as stored, kept for replays",
        answers.len()
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
