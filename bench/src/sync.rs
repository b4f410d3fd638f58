//! Sync worker benchmark.
//!
//! 1. Bulk catch-up: `rows` unit-journal rows are written with COPY in one transaction (the
//!    shape of an income distribution), then the worker ships them. Baselines in the same run:
//!    reading the same rows from Postgres with `COPY (SELECT ...) TO STDOUT`, and inserting
//!    them into ClickHouse over HTTP as TSV (no Postgres involved).
//! 2. Commit→visible lag under steady order traffic through the partner API (70% fast
//!    redemptions / 30% subscriptions, `clients` concurrent clients): the time from the
//!    order's 201 response to the order being readable in ClickHouse, probed every 10 ms.
//!    Baseline: a single-row ClickHouse insert followed by the select that finds it.
//!
//! Options (key=value): rows=1000000 accounts=100000 batch=100000 clients=16 seconds=15
//! hold=0 (1: keep a transaction open in another database during the load)

use crate::{
    connect, opt, recreate, recreate_ch, seed_holders, send_random_order, shipped_after, ADMIN,
};
use anyhow::Context;
use bytes::Bytes;
use futures::SinkExt;
use hdrhistogram::Histogram;
use mmf_command::{build_app, AppState};
use mmf_shared::clock::Clock;
use mmf_tests::{test_config, Signer, TestDb, FUND};
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DB: &str = "mmf_bench_sync";
const CH_URL: &str = "http://127.0.0.1:8123";

fn account(i: u64) -> String {
    format!("8{i:011}")
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        mmf_shared::telemetry::init();
    }
    let rows = opt(args, "rows", 1_000_000);
    let accounts = opt(args, "accounts", 100_000);
    let batch = opt(args, "batch", 100_000) as usize;
    let clients = opt(args, "clients", 16);
    let seconds = opt(args, "seconds", 15);

    // Fresh Postgres and ClickHouse databases.
    let url = recreate(DB).await?;
    mmf_shared::db::migrate(&url).await?;
    let ch = recreate_ch(DB).await?;

    let db = TestDb {
        name: DB.into(),
        url: url.clone(),
    };
    let config = test_config(&db);
    let pg = connect(&url).await?;
    seed_holders(&pg, &url, &config.partners, accounts).await?;

    println!(
        "seeding {rows} unit_journal rows with COPY (one transaction) over {accounts} accounts"
    );
    let started = Instant::now();
    seed_journal(&pg, rows, accounts).await?;
    pg.batch_execute("VACUUM ANALYZE").await?;
    println!("  seeded in {:.1} s", started.elapsed().as_secs_f64());

    let (pg_read, ch_write) = baselines(&pg, &ch, DB, rows).await?;
    let worker = bulk_catch_up(&pg, &ch, &url, rows, batch, (pg_read, ch_write)).await?;

    steady_lag(
        &db,
        &ch,
        accounts,
        clients,
        seconds,
        opt(args, "hold", 0) == 1,
    )
    .await?;
    worker.stop().await;
    Ok(())
}

/// Seconds Postgres takes to hand out the journal (`COPY … TO STDOUT`) and ClickHouse to
/// ingest the same rows as TSV over HTTP: what the worker's bulk rate is measured against.
pub(crate) async fn baselines(
    pg: &tokio_postgres::Client,
    ch: &clickhouse::Client,
    db: &str,
    rows: u64,
) -> anyhow::Result<(f64, f64)> {
    let export =
        "COPY (SELECT entry_id, account_id, fund_code, coalesce(order_id, 0), kind, units, \
         effective_date, to_char(booked_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI:SS'), \
         txid FROM unit_journal ORDER BY txid, entry_id) TO STDOUT";
    let started = Instant::now();
    let tsv = copy_out(pg, export).await?;
    let pg_read = started.elapsed().as_secs_f64();
    println!(
        "baseline: Postgres COPY TO STDOUT of the rows   {:>9.0} rows/s ({:.2} s, {} MB)",
        rows as f64 / pg_read,
        pg_read,
        tsv.len() / 1_000_000
    );
    ch.query("CREATE TABLE unit_journal_baseline AS unit_journal")
        .execute()
        .await?;
    let started = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!(
            "{CH_URL}/?database={db}&query=INSERT%20INTO%20unit_journal_baseline%20FORMAT%20TabSeparated"
        ))
        .body(tsv)
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "ClickHouse TSV insert: {}",
        resp.text().await?
    );
    let ch_write = started.elapsed().as_secs_f64();
    println!(
        "baseline: ClickHouse TSV insert over HTTP       {:>9.0} rows/s ({:.2} s)",
        rows as f64 / ch_write,
        ch_write
    );
    Ok((pg_read, ch_write))
}

/// Starts the worker from an empty cursor and reports how fast it ships the seeded rows;
/// returns the running worker.
async fn bulk_catch_up(
    pg: &tokio_postgres::Client,
    ch: &clickhouse::Client,
    url: &str,
    rows: u64,
    batch: usize,
    (pg_read, ch_write): (f64, f64),
) -> anyhow::Result<mmf_sync::Worker> {
    let mut sync_config = mmf_sync::Config::new(url, CH_URL, DB);
    sync_config.batch_rows = batch;
    let outside = OutsideTransactions::watch(url).await?;
    let started = Instant::now();
    let worker = mmf_sync::start(sync_config).await?;
    let shipped_at = wait_cursor(pg, "unit_journal", rows, started).await?;
    println!(
        "sync:     bulk catch-up (batch {batch})            {:>9.0} rows/s ({:.2} s)",
        rows as f64 / shipped_at,
        shipped_at
    );
    let ch_rows: u64 = ch
        .query("SELECT count() FROM unit_journal FINAL")
        .fetch_one()
        .await?;
    anyhow::ensure!(ch_rows == rows, "ClickHouse has {ch_rows} of {rows} rows");
    println!("  {}", outside.report().await);
    println!(
        "  ratio to Postgres COPY read = {:.2}x, to ClickHouse TSV insert = {:.2}x",
        pg_read / shipped_at,
        ch_write / shipped_at
    );
    Ok(worker)
}

/// Income-shaped rows: one credit per account round robin, effective tomorrow.
async fn seed_journal(pg: &tokio_postgres::Client, rows: u64, accounts: u64) -> anyhow::Result<()> {
    let sink = pg
        .copy_in(
            "COPY unit_journal (account_id, fund_code, kind, units, effective_date, booked_at) \
             FROM STDIN",
        )
        .await?;
    futures::pin_mut!(sink);
    let mut rng = rand::thread_rng();
    let mut buf = String::with_capacity(8 << 20);
    for i in 0..rows {
        let fen: u32 = rng.gen_range(1..100_000);
        buf.push_str(&format!(
            "{}\t{FUND}\tincome\t{}.{:02}\t2026-11-27\t2026-11-27 02:00:00+08\n",
            account(i % accounts + 1),
            fen / 100,
            fen % 100
        ));
        if buf.len() > 8 << 20 {
            sink.send(Bytes::from(std::mem::take(&mut buf))).await?;
        }
    }
    sink.send(Bytes::from(buf)).await?;
    sink.finish().await?;
    Ok(())
}

pub(crate) async fn copy_out(pg: &tokio_postgres::Client, sql: &str) -> anyhow::Result<Vec<u8>> {
    use futures::TryStreamExt;
    let stream = pg.copy_out(sql).await?;
    futures::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.try_next().await? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Seconds from `started` until `stream` has saved at least `rows` shipped rows.
async fn wait_cursor(
    pg: &tokio_postgres::Client,
    stream: &str,
    rows: u64,
    started: Instant,
) -> anyhow::Result<f64> {
    shipped_after(pg, stream, i64::try_from(rows)?, started)
        .await?
        .with_context(|| format!("{stream} did not catch up"))
}

async fn steady_lag(
    db: &TestDb,
    ch: &clickhouse::Client,
    accounts: u64,
    clients: u64,
    seconds: u64,
    hold: bool,
) -> anyhow::Result<()> {
    insert_select_floor(ch).await?;
    println!(
        "load: {clients} API clients for {seconds} s, 70% fast redemptions / 30% subscriptions"
    );
    let outside = OutsideTransactions::watch(&db.url).await?;
    // hold=1: an open transaction elsewhere on the cluster keeps the watermark still for the
    // whole load, as a long batch job or an idle-in-transaction session would.
    let holder = if hold {
        let c = connect(ADMIN).await?;
        c.batch_execute("BEGIN; SELECT pg_current_xact_id();")
            .await?;
        println!("  holding a transaction open in database postgres during the load");
        Some(c)
    } else {
        None
    };
    let clock = Clock::simulated(mmf_tests::default_now());
    let state = AppState::new(test_config(db), clock.clone()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, build_app(state)).await });

    // order id → when its 201 arrived; removed when the probe sees it in ClickHouse.
    let pending: Arc<Mutex<BTreeMap<u64, Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let (pending, stop, ch) = (pending.clone(), stop.clone(), ch.clone());
        tokio::spawn(async move { probe(ch, pending, stop).await })
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients as usize)
        .build()?;
    let tasks: Vec<_> = (0..clients)
        .map(|t| {
            let client = LoadClient {
                http: http.clone(),
                base: base.clone(),
                clock: clock.clone(),
                pending: pending.clone(),
                accounts,
            };
            tokio::spawn(async move { client.send_until(t, deadline).await })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    let accepted_by = Instant::now();
    while !pending.lock().unwrap().is_empty() {
        anyhow::ensure!(
            accepted_by.elapsed() < Duration::from_secs(60),
            "orders still missing from ClickHouse a minute after the load ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let lag = probe.await??;
    let outside = outside.report().await;
    drop(holder);
    println!(
        "sync:     acknowledged → visible in ClickHouse   p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} orders ({:.0} orders/s)",
        lag.value_at_quantile(0.5) as f64 / 1000.0,
        lag.value_at_quantile(0.99) as f64 / 1000.0,
        lag.max() as f64 / 1000.0,
        lag.len(),
        lag.len() as f64 / seconds as f64
    );
    println!("  {outside}");
    Ok(())
}

/// The floor any pipeline into ClickHouse has: insert one row, select it back.
async fn insert_select_floor(ch: &clickhouse::Client) -> anyhow::Result<()> {
    ch.query("CREATE TABLE IF NOT EXISTS lag_probe (id UInt64) ENGINE = MergeTree ORDER BY id")
        .execute()
        .await?;
    let mut floor = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for id in 0..200u64 {
        let started = Instant::now();
        ch.query("INSERT INTO lag_probe (id) VALUES (?)")
            .bind(id)
            .execute()
            .await?;
        let n: u64 = ch
            .query("SELECT count() FROM lag_probe WHERE id = ?")
            .bind(id)
            .fetch_one()
            .await?;
        anyhow::ensure!(n == 1);
        floor.record(started.elapsed().as_micros() as u64)?;
    }
    println!(
        "baseline: ClickHouse insert + select of one row  p50 {:.1} ms, p99 {:.1} ms",
        floor.value_at_quantile(0.5) as f64 / 1000.0,
        floor.value_at_quantile(0.99) as f64 / 1000.0
    );
    Ok(())
}

/// One API client of the steady load: random accounts, 70% fast redemptions (payments, so the
/// cap does not refuse them), 30% subscriptions; each accepted order is noted as pending.
struct LoadClient {
    http: reqwest::Client,
    base: String,
    clock: Clock,
    pending: Arc<Mutex<BTreeMap<u64, Instant>>>,
    accounts: u64,
}

impl LoadClient {
    async fn send_until(self, t: u64, deadline: Instant) {
        let signer = Signer::new("p1");
        let mut n = 0u64;
        while Instant::now() < deadline {
            n += 1;
            let resp = send_random_order(
                &self.http,
                &self.base,
                &signer,
                self.clock.now(),
                self.accounts,
                format!("s{t}-{n}"),
            )
            .await;
            if resp.status() == reqwest::StatusCode::CREATED {
                let at = Instant::now();
                let v: serde_json::Value = resp.json().await.unwrap_or_default();
                if let Some(id) = v["order_id"].as_u64() {
                    self.pending.lock().unwrap().insert(id, at);
                }
            }
        }
    }
}

/// Samples, every 100 ms, the oldest running transaction of *other* databases on the same
/// Postgres cluster: transaction ids are cluster-wide, so such a transaction holds the sync
/// watermark back and the numbers above are not the worker's own.
struct OutsideTransactions {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<f64>>,
}

impl OutsideTransactions {
    async fn watch(url: &str) -> anyhow::Result<OutsideTransactions> {
        let pg = connect(url).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut longest = 0f64;
            while !flag.load(Ordering::SeqCst) {
                let age: f64 = pg
                    .query_one(
                        "SELECT coalesce(extract(epoch FROM max(now() - xact_start)), 0)::float8 \
                         FROM pg_stat_activity WHERE backend_xid IS NOT NULL \
                           AND datname <> current_database()",
                        &[],
                    )
                    .await?
                    .get(0);
                longest = longest.max(age);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(longest)
        });
        Ok(OutsideTransactions { stop, task })
    }

    async fn report(self) -> String {
        self.stop.store(true, Ordering::SeqCst);
        match self.task.await {
            Ok(Ok(s)) if s >= 0.5 => format!(
                "note: a transaction in another database of this cluster ran {s:.1} s meanwhile \
                 (it holds the watermark back; rerun on a quiet server)"
            ),
            Ok(Ok(s)) => format!("no long transaction elsewhere on the cluster (longest {s:.2} s)"),
            Ok(Err(e)) => format!("could not watch other transactions: {e}"),
            Err(e) => format!("could not watch other transactions: {e}"),
        }
    }
}

/// Every 10 ms, finds which pending orders ClickHouse has and records how long they took.
async fn probe(
    ch: clickhouse::Client,
    pending: Arc<Mutex<BTreeMap<u64, Instant>>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Histogram<u64>> {
    let mut lag = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    while !stop.load(Ordering::SeqCst) {
        let lowest = pending.lock().unwrap().keys().next().copied();
        if let Some(lowest) = lowest {
            let seen: Vec<u64> = ch
                .query("SELECT order_id FROM orders WHERE order_id >= ?")
                .bind(lowest)
                .fetch_all()
                .await
                .context("probing ClickHouse")?;
            let now = Instant::now();
            let mut pending = pending.lock().unwrap();
            for id in seen {
                if let Some(at) = pending.remove(&id) {
                    lag.record(now.duration_since(at).as_micros() as u64)?;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(lag)
}
