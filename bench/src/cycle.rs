//! Daily cycle: T+1 confirmation of 1M orders and income distribution for 10M positions, each
//! next to a bare set-based UPDATE of the same rows (rolled back) measured in the same run.
//!
//! Options (key=value): positions=10000000 orders=1000000 batch=20000 parallel=2 clients=4
//! sync=1 policies=carry_forward,redistribute (one income day per policy, in that order, each
//! over every position)
//!
//! API latency: `clients` partner clients send subscriptions through the real HTTP API (command
//! service in this process) for 10 s before the distribution (idle) and during it.
//!
//! Seeding uses COPY with foreign-key triggers off (`session_replication_role = replica`):
//! positions, orders and journal rows refer to accounts that are not created, which only the
//! seed needs to know.

use crate::{connect, opt, opt_str, recreate, recreate_ch, shipped_after};
use anyhow::Context;
use bytes::Bytes;
use chrono::{NaiveDate, TimeZone, Utc};
use futures::SinkExt;
use hdrhistogram::Histogram;
use mmf_command::cycle::confirm;
use mmf_command::cycle::distribute::{self, Batching, Distribution};
use mmf_command::{build_app, income, AppState};
use mmf_domain::calendar::Calendar;
use mmf_shared::clock::Clock;
use mmf_sync::snapshots::STREAM;
use mmf_tests::sync::CH_URL;
use mmf_tests::{Signer, TestDb};
use rand::Rng;
use rust_decimal::Decimal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// Accounts the latency clients subscribe for (real rows, outside the seeded ranges).
const LOAD_ACCOUNTS: u64 = 1000;

/// Runs `clients` subscription loops against `base` until `stop`; latencies in µs.
async fn load(base: String, clock: Clock, clients: u64, stop: Arc<AtomicBool>) -> Histogram<u64> {
    let http = reqwest::Client::new();
    let tasks: Vec<_> = (0..clients)
        .map(|t| {
            let (http, base, clock, stop) = (http.clone(), base.clone(), clock.clone(), stop.clone());
            tokio::spawn(async move {
                let signer = Signer::new("p1");
                let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let acct = rand::thread_rng().gen_range(1..=LOAD_ACCOUNTS);
                    let body = serde_json::json!({"request_id": format!("l{t}-{n}-{}", rand::random::<u32>()),
                        "account_id": format!("9{acct:011}"), "fund_code": FUND, "amount": "1.00"});
                    let start = Instant::now();
                    let resp = signer
                        .send(&http, reqwest::Method::POST, &base, "/v1/subscriptions", Some(&body), clock.now(), None)
                        .await;
                    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
                    hist.record(start.elapsed().as_micros() as u64).unwrap();
                }
                hist
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
    for t in tasks {
        hist.add(t.await.unwrap()).unwrap();
    }
    hist
}

fn latency(h: &Histogram<u64>) -> String {
    format!(
        "{} orders, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    )
}

const DB: &str = "mmf_bench_cycle";
const FUND: &str = "000001";

fn account(i: u64) -> String {
    format!("8{:011}", i + 1)
}

/// Units held by position `i`, in fen: spread from 0.01 to 100,000.00.
fn units_fen(i: u64) -> u64 {
    (i.wrapping_mul(7_919_993) % 10_000_000) + 1
}

/// Subscription amount of order `i`, in fen.
fn order_fen(i: u64) -> u64 {
    (i.wrapping_mul(104_729) % 5_000_000) + 100
}

fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// Streams `rows` lines produced by `line(i)` into `COPY <target> FROM STDIN`.
async fn copy(
    client: &Client,
    target: &str,
    rows: u64,
    line: impl Fn(u64, &mut String),
) -> anyhow::Result<()> {
    let sink = client.copy_in(&format!("COPY {target} FROM STDIN")).await?;
    futures::pin_mut!(sink);
    let mut buf = String::with_capacity(1 << 20);
    for i in 0..rows {
        line(i, &mut buf);
        if buf.len() > (1 << 20) - 256 {
            sink.send(Bytes::from(std::mem::take(&mut buf))).await?;
            buf.reserve(1 << 20);
        }
    }
    if !buf.is_empty() {
        sink.send(Bytes::from(buf)).await?;
    }
    sink.finish().await?;
    Ok(())
}

/// Starts the sync worker on fresh ClickHouse tables and waits until it has shipped the
/// seeded history and built its position snapshots.
async fn start_history(seed: &Client, url: &str) -> anyhow::Result<mmf_sync::Worker> {
    recreate_ch(DB).await?;
    let journal_rows: i64 = seed
        .query_one("SELECT count(*) FROM unit_journal", &[])
        .await?
        .get(0);
    let started = Instant::now();
    let worker = mmf_sync::start(mmf_sync::Config::new(url, CH_URL, DB)).await?;
    let shipped = shipped_after(seed, "unit_journal", journal_rows, started).await?;
    println!(
        "history catch-up: {journal_rows} journal rows in ClickHouse after {}",
        seconds(shipped)
    );
    let snapshots = shipped_after(seed, STREAM, journal_rows, started).await?;
    println!(
        "position snapshots of the seeded history: {}",
        seconds(snapshots)
    );
    timed("checkpoint", async {
        seed.batch_execute("CHECKPOINT").await?;
        anyhow::Ok(())
    })
    .await?;

    Ok(worker)
}

/// Waits until the distribution's income is in ClickHouse and checks it against Postgres;
/// then waits for the snapshots, so that the next measured step does not share the machine
/// with them. Returns the income entries and how long they took.
async fn income_in_clickhouse(
    seed: &Client,
    finished: Instant,
) -> anyhow::Result<(i64, Option<f64>)> {
    let ch = mmf_shared::ch::client_for(CH_URL, DB);
    let payments: i64 = seed
        .query_one("SELECT count(*) FROM income_payments", &[])
        .await?
        .get(0);
    let visible = shipped_after(seed, "income_payments", payments, finished).await?;
    println!(
        "income in ClickHouse ({payments} payments): {} after the distribution finished",
        seconds(visible)
    );
    let r = seed
        .query_one(
            "SELECT count(*), (sum(units) * 100)::bigint FROM unit_movements WHERE kind = 'income'",
            &[],
        )
        .await?;
    let (entries, fen): (i64, i64) = (r.get(0), r.get(1));
    let (ch_entries, ch_fen): (u64, i64) = ch
        .query(
            "SELECT count(), toInt64(sum(units) * 100) FROM unit_journal FINAL WHERE kind = 'income'",
        )
        .fetch_one()
        .await?;
    anyhow::ensure!(
        ch_entries == entries as u64 && ch_fen == fen,
        "ClickHouse holds {ch_entries} income rows, {ch_fen} fen; Postgres {entries}, {fen}"
    );
    println!(
        "ClickHouse income rows: {ch_entries}, {} yuan, equal to Postgres",
        yuan(fen as u64)
    );
    let income_snapshots =
        shipped_after(seed, "position_snapshots_income", payments, finished).await?;
    println!(
        "position snapshots with the income: {} after the distribution finished",
        seconds(income_snapshots)
    );
    Ok((entries, visible))
}

fn seconds(s: Option<f64>) -> String {
    s.map_or("not within 15 min".into(), |s| format!("{s:.1} s"))
}

async fn timed<T, E: Into<anyhow::Error>>(
    label: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<(T, f64)> {
    let t = Instant::now();
    let v = f
        .await
        .map_err(Into::into)
        .with_context(|| label.to_string())?;
    let s = t.elapsed().as_secs_f64();
    println!("{label}: {s:.1} s");
    Ok((v, s))
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        mmf_shared::telemetry::init();
    }
    let positions = opt(args, "positions", 10_000_000);
    let orders = opt(args, "orders", 1_000_000).min(positions);
    let clients = opt(args, "clients", 4);
    let batching = Batching {
        batch_size: opt(args, "batch", 20_000) as usize,
        parallel: opt(args, "parallel", 2) as usize,
    };
    let day: NaiveDate = "2026-11-26".parse()?;
    let trade_date = day;
    let calendar = Calendar::default();
    let effective = calendar.next_trading_day(trade_date);
    let redeemed_effective = day + chrono::Days::new(2);

    let url = recreate(DB).await?;
    mmf_shared::db::migrate(&url).await?;
    let seed = connect(&url).await?;
    seed.batch_execute(
        "SET session_replication_role = replica;
         INSERT INTO partners (partner_id, name, secret) VALUES ('p1', 'p1', 'secret');
         INSERT INTO funds (fund_code, name, max_subscription_per_order, max_subscription_per_day)
         VALUES ('000001', 'Spare Cash MMF', 1000000, 5000000);",
    )
    .await?;
    println!("seeding {positions} positions, {positions} journal rows, {orders} orders (COPY)");
    timed("seed positions", async {
        copy(
            &seed,
            "positions (account_id, fund_code, units, pending_subscription)",
            positions,
            |i, b| {
                let pending = if i < orders { order_fen(i) } else { 0 };
                b.push_str(&format!(
                    "{}\t{FUND}\t{}\t{}\n",
                    account(i),
                    yuan(units_fen(i)),
                    yuan(pending)
                ));
            },
        )
        .await
    })
    .await?;
    // Every position's units came from a subscription effective before the income day; one in
    // a hundred also has a redemption effective after it (debited already, still eligible).
    timed("seed journal", async {
        copy(
            &seed,
            "unit_journal (account_id, fund_code, kind, units, effective_date, booked_at)",
            positions + positions / 100,
            |i, b| {
                if i < positions {
                    let extra = if i % 100 == 0 { 100 } else { 0 };
                    b.push_str(&format!(
                        "{}\t{FUND}\tsubscription\t{}\t2026-11-20\t2026-11-19 10:00:00+08\n",
                        account(i),
                        yuan(units_fen(i) + extra)
                    ));
                } else {
                    let j = (i - positions) * 100;
                    b.push_str(&format!(
                        "{}\t{FUND}\tredemption\t-1.00\t{redeemed_effective}\t2026-11-26 10:00:00+08\n",
                        account(j)
                    ));
                }
            },
        )
        .await
    })
    .await?;
    timed("seed orders", async {
        copy(
            &seed,
            "orders (partner_id, request_id, account_id, fund_code, kind, amount, status, trade_date, accepted_at)",
            orders,
            |i, b| {
                b.push_str(&format!(
                    "p1\tr{i}\t{}\t{FUND}\tsubscription\t{}\taccepted\t{trade_date}\t2026-11-26 10:00:00+08\n",
                    account(i),
                    yuan(order_fen(i))
                ));
            },
        )
        .await
    })
    .await?;
    seed.batch_execute(&format!(
        "SET session_replication_role = DEFAULT;
         INSERT INTO accounts (account_id, partner_id, customer_id, name, id_type, id_number, id_masked, opened_at)
         SELECT '9' || lpad(i::text, 11, '0'), 'p1', 'load' || i, 'Load', 'resident_id', 'x', 'x', now()
         FROM generate_series(1, {LOAD_ACCOUNTS}) i;"
    ))
    .await?;
    let pool = mmf_shared::db::db_pool(&url, 8)?;
    income::publish(&pool, FUND, day, "0.6500".parse()?, Utc::now()).await?;
    let vacuum = || async {
        // One statement per call: VACUUM refuses to run in a multi-statement batch.
        for stmt in [
            "VACUUM ANALYZE positions, unit_journal, orders",
            "CHECKPOINT",
        ] {
            seed.batch_execute(stmt).await?;
        }
        anyhow::Ok(())
    };
    timed("vacuum analyze + checkpoint", vacuum()).await?;

    // Confirmation of 1M orders.
    let (_, base_confirm) = timed(
        &format!("baseline: bare UPDATE of {orders} orders + their positions (rolled back)"),
        async {
            seed.batch_execute(&format!(
                "BEGIN;
                 UPDATE orders SET status = 'confirmed', confirmed_at = now(), effective_date = '{effective}'
                 WHERE trade_date = '{trade_date}' AND status = 'accepted';
                 UPDATE positions SET units = units + pending_subscription, pending_subscription = 0
                 WHERE pending_subscription > 0;
                 ROLLBACK"
            ))
            .await?;
            anyhow::Ok(())
        },
    )
    .await?;
    timed("vacuum + checkpoint", vacuum()).await?;
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 1, 0, 0).unwrap();
    let (confirmed, confirm_s) = timed(
        &format!(
            "confirmation of {orders} orders (batches of {})",
            batching.batch_size
        ),
        confirm::confirm(
            &pool,
            trade_date,
            effective,
            now,
            batching.batch_size,
            &|_| {},
        ),
    )
    .await?;
    anyhow::ensure!(
        confirmed.subscriptions as u64 == orders,
        "confirmed {confirmed:?}"
    );
    timed("vacuum + checkpoint", vacuum()).await?;

    // Income distribution for every position.
    let (_, base_dist) = timed(
        &format!("baseline: bare UPDATE of {positions} positions (rolled back)"),
        async {
            seed.batch_execute(&format!(
                "BEGIN;
                 UPDATE positions SET units = units + trunc(units * 0.000065, 2),
                     cum_income = cum_income + trunc(units * 0.000065, 2),
                     last_income = trunc(units * 0.000065, 2), last_income_date = '{day}'
                 WHERE fund_code = '{FUND}';
                 ROLLBACK"
            ))
            .await?;
            anyhow::Ok(())
        },
    )
    .await?;
    timed("vacuum + checkpoint", vacuum()).await?;

    // The history store: the sync worker ships the seeded history first, then runs through the
    // distribution as it does in production (`sync=0` leaves it out).
    let worker = if opt(args, "sync", 1) == 1 {
        Some(start_history(&seed, &url).await?)
    } else {
        None
    };

    // The command service on the same database, for API latency.
    let mut config = mmf_tests::test_config(&TestDb {
        name: DB.into(),
        url: url.clone(),
    });
    config.common.db_pool = 8;
    let clock = Clock::simulated(Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).unwrap());
    let state = AppState::new(config, clock.clone()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, build_app(state)).await });
    let stop = Arc::new(AtomicBool::new(false));
    let idle = tokio::spawn(load(base.clone(), clock.clone(), clients, stop.clone()));
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.store(true, Ordering::Relaxed);
    let idle = idle.await?;
    println!(
        "API latency, idle ({clients} clients, 10 s): {}",
        latency(&idle)
    );
    // One income day per policy, each over every position (the later days include the
    // earlier days' income).
    let mut days = Vec::new();
    for (k, policy) in opt_str(args, "policies", "carry_forward,redistribute")
        .split(',')
        .enumerate()
    {
        let day = day + chrono::Days::new(k as u64);
        seed.execute("UPDATE funds SET income_policy = $1", &[&policy])
            .await?;
        if k > 0 {
            income::publish(&pool, FUND, day, "0.6431".parse()?, clock.now()).await?;
            timed("vacuum + checkpoint", vacuum()).await?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let busy = tokio::spawn(load(base.clone(), clock.clone(), clients, stop.clone()));
        let (dist, dist_s) = timed(
            &format!(
                "income distribution ({policy}) of {positions} positions (batches of {}, {} in parallel)",
                batching.batch_size, batching.parallel
            ),
            distribute::distribute(&pool, FUND, day, batching, clock.now(), &|_, _| {}),
        )
        .await?;
        let finished = Instant::now();
        stop.store(true, Ordering::Relaxed);
        let busy = busy.await?;
        println!("API latency during the distribution: {}", latency(&busy));
        check_distribution(&seed, &dist).await?;
        let income = match worker {
            Some(_) => Some(income_in_clickhouse(&seed, finished).await?),
            None => None,
        };
        days.push((dist, dist_s, busy, income));
    }
    if let Some(worker) = worker {
        worker.stop().await;
    }
    println!();
    println!("| step | rows | baseline bare UPDATE | mmf-ta | rows/s |");
    println!("|---|---|---|---|---|");
    println!(
        "| T+1 confirmation | {orders} orders | {base_confirm:.1} s | {confirm_s:.1} s | {:.0} |",
        orders as f64 / confirm_s
    );
    for (dist, dist_s, _, income) in &days {
        println!(
            "| income distribution, {} | {positions} positions | {base_dist:.1} s | {dist_s:.1} s ({:.2}×) | {:.0} |",
            dist.policy,
            dist_s / base_dist,
            positions as f64 / dist_s
        );
        if let Some((entries, visible)) = income {
            println!(
                "| income visible in ClickHouse | {entries} rows | | {} after | |",
                seconds(*visible)
            );
        }
    }
    println!();
    println!("API subscriptions, idle: {}", latency(&idle));
    for (dist, _, busy, _) in &days {
        println!(
            "API subscriptions, during distribution ({}): {}",
            dist.policy,
            latency(busy)
        );
    }
    Ok(())
}

/// The invariants every distribution keeps, checked against Postgres: Σ eligible = Σ movements
/// effective on or before the day; paid + carry change + to_fund = accrued exactly; under
/// `redistribute`, Σ paid = F (less any negative payment capped at the units held).
async fn check_distribution(seed: &Client, dist: &Distribution) -> anyhow::Result<()> {
    let t = &dist.totals;
    let expected_eligible: Decimal = seed
        .query_one(
            "SELECT sum(units) FROM unit_movements WHERE effective_date <= $1",
            &[&dist.day],
        )
        .await?
        .get(0);
    anyhow::ensure!(t.eligible == expected_eligible, "eligible {t:?}");
    anyhow::ensure!(
        t.paid + t.carry_after - t.carry_before + t.to_fund == t.accrued,
        "paid + carry change + to_fund = accrued: {t:?}"
    );
    println!(
        "distribution ({}): {} positions, {} batches, paid {} + carry change {} + to fund {} = accrued {} (exact)",
        dist.policy,
        t.positions,
        dist.batches,
        t.paid,
        t.carry_after - t.carry_before,
        t.to_fund,
        t.accrued
    );
    if let Some(f) = dist.fund_income {
        anyhow::ensure!(t.paid == f, "Σ paid {} = F {f}", t.paid);
        println!("fund income F = {f} = Σ paid (exact)");
    }
    Ok(())
}
