//! Daily cycle: T+1 confirmation of 1M orders and income distribution for 10M positions, each
//! next to a bare set-based UPDATE of the same rows (rolled back) measured in the same run.
//!
//! Options (key=value): positions=10000000 orders=1000000 batch=2000 parallel=2 clients=4
//! sync=1 policies=carry_forward,redistribute (one income day per policy, in that order, each
//! over every position) pace=100 max_pause=300 (the cycle's pacing, docs/decisions/0037)
//!
//! API latency: `clients` partner clients send subscriptions through the real HTTP API (command
//! service in this process) for 10 s before the distribution (idle) and during it.
//!
//! Seeding uses COPY with foreign-key triggers off (`session_replication_role = replica`):
//! positions, orders and journal rows refer to accounts that are not created, which only the
//! seed needs to know.

pub(crate) mod holdings;

use crate::{connect, opt, opt_str, recreate, recreate_ch, shipped_after, Background};
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
use mmf_shared::db::DbPool;
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

pub(crate) fn latency(h: &Histogram<u64>) -> String {
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

pub(crate) fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// Streams `rows` lines produced by `line(i)` into `COPY <target> FROM STDIN`.
pub(crate) async fn copy(
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
/// seeded history.
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
    timed("checkpoint", async {
        seed.batch_execute("CHECKPOINT").await?;
        anyhow::Ok(())
    })
    .await?;

    Ok(worker)
}

/// Waits until the distribution's income is in ClickHouse and checks it against Postgres;
/// then waits for the daily holdings up to `day`, so that the next measured step does not
/// share the machine with them. Returns the income entries and how long they took.
async fn income_in_clickhouse(
    seed: &Client,
    finished: Instant,
    day: NaiveDate,
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
    holdings::wait_and_compare(seed, &ch, day, finished, "the distribution finished").await?;
    Ok((entries, visible))
}

pub(crate) fn seconds(s: Option<f64>) -> String {
    s.map_or("not within 15 min".into(), |s| format!("{s:.1} s"))
}

pub(crate) async fn timed<T, E: Into<anyhow::Error>>(
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

/// The options of a run and the days it works on.
struct Settings {
    positions: u64,
    orders: u64,
    clients: u64,
    batching: Batching,
    sync: bool,
    policies: String,
    /// The seeded orders' trade date and the first income day.
    day: NaiveDate,
    /// When the seeded orders take effect.
    effective: NaiveDate,
    /// When the seeded redemptions take effect: after the income day.
    redeemed_effective: NaiveDate,
}

impl Settings {
    fn from_args(args: &[String]) -> anyhow::Result<Self> {
        let positions = opt(args, "positions", 10_000_000);
        let day: NaiveDate = "2026-11-26".parse()?;
        Ok(Self {
            positions,
            orders: opt(args, "orders", 1_000_000).min(positions),
            clients: opt(args, "clients", 4),
            batching: crate::batching(args),
            sync: opt(args, "sync", 1) == 1,
            policies: opt_str(args, "policies", "carry_forward,redistribute").to_string(),
            day,
            effective: Calendar::default().next_trading_day(day),
            redeemed_effective: day + chrono::Days::new(2),
        })
    }
}

/// The benchmark database: a plain connection for seeding and checks, a pool for mmf-ta's jobs.
struct Db {
    url: String,
    seed: Client,
    pool: DbPool,
}

/// The command service in this process, for API latency.
pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) clock: Clock,
}

/// One income day: the distribution, its time, the API latency during it, and the income
/// entries in ClickHouse with how long they took (with `sync=1`).
struct Day {
    dist: Distribution,
    elapsed: f64,
    busy: Histogram<u64>,
    income: Option<(i64, Option<f64>)>,
}

/// Everything the summary prints.
struct Results {
    confirm_baseline: f64,
    confirm_seconds: f64,
    distribution_baseline: f64,
    idle: Histogram<u64>,
    days: Vec<Day>,
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        mmf_shared::telemetry::init();
    }
    let s = Settings::from_args(args)?;
    let db = seed(&s).await?;
    income::publish(&db.pool, FUND, s.day, "0.6500".parse()?, Utc::now()).await?;
    timed("vacuum analyze + checkpoint", vacuum(&db.seed)).await?;
    let (confirm_baseline, confirm_seconds) = measure_confirmation(&s, &db).await?;
    let distribution_baseline = distribution_baseline(&s, &db).await?;

    // The history store: the sync worker ships the seeded history first, then runs through the
    // distribution as it does in production (`sync=0` leaves it out).
    let worker = if s.sync {
        Some(start_history(&db.seed, &db.url).await?)
    } else {
        None
    };
    let api = start_service(DB, &db.url, None).await?;
    let idle = idle_latency(&api, s.clients).await?;
    let days = distribute_days(&s, &db, &api, worker.is_some()).await?;
    if let Some(worker) = worker {
        worker.stop().await;
    }
    print_summary(
        &s,
        &Results {
            confirm_baseline,
            confirm_seconds,
            distribution_baseline,
            idle,
            days,
        },
    );
    Ok(())
}

/// Creates the database and seeds it by COPY (positions, journal, accepted orders), then adds
/// the accounts the latency clients subscribe for.
async fn seed(s: &Settings) -> anyhow::Result<Db> {
    let (positions, orders) = (s.positions, s.orders);
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
    seed_positions(&seed, s).await?;
    seed_journal(&seed, s).await?;
    seed_orders(&seed, s).await?;
    seed.batch_execute(&format!(
        "SET session_replication_role = DEFAULT;
         INSERT INTO accounts (account_id, partner_id, customer_id, name, id_type, id_number, id_masked, opened_at)
         SELECT '9' || lpad(i::text, 11, '0'), 'p1', 'load' || i, 'Load', 'resident_id', 'x', 'x', now()
         FROM generate_series(1, {LOAD_ACCOUNTS}) i;"
    ))
    .await?;
    let pool = mmf_shared::db::db_pool(&url, 8)?;
    Ok(Db { url, seed, pool })
}

/// Every position, the first `orders` with their order's subscription pending.
async fn seed_positions(seed: &Client, s: &Settings) -> anyhow::Result<()> {
    let orders = s.orders;
    timed("seed positions", async {
        copy(
            seed,
            "positions (account_id, fund_code, units, pending_subscription)",
            s.positions,
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
    Ok(())
}

/// Every position's units came from a subscription effective before the income day; one in
/// a hundred also has a redemption effective after it (debited already, still eligible).
async fn seed_journal(seed: &Client, s: &Settings) -> anyhow::Result<()> {
    let (positions, redeemed_effective) = (s.positions, s.redeemed_effective);
    timed("seed journal", async {
        copy(
            seed,
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
    Ok(())
}

/// `orders` subscriptions accepted on the trade date, one for each of the first positions.
async fn seed_orders(seed: &Client, s: &Settings) -> anyhow::Result<()> {
    let trade_date = s.day;
    timed("seed orders", async {
        copy(
            seed,
            "orders (partner_id, request_id, account_id, fund_code, kind, amount, status, trade_date, accepted_at)",
            s.orders,
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
    Ok(())
}

/// Vacuums and checkpoints, so that each measured step starts from the same clean state.
async fn vacuum(seed: &Client) -> anyhow::Result<()> {
    vacuum_tables(seed, "positions, unit_journal, orders").await
}

/// VACUUM ANALYZE of `tables`, then a checkpoint.
pub(crate) async fn vacuum_tables(pg: &Client, tables: &str) -> anyhow::Result<()> {
    // One statement per call: VACUUM refuses to run in a multi-statement batch.
    pg.batch_execute(&format!("VACUUM ANALYZE {tables}"))
        .await?;
    pg.batch_execute("CHECKPOINT").await?;
    Ok(())
}

/// T+1 confirmation of every order, after bare set-based statements doing its writes (the
/// journal rows and positions); returns the seconds of both.
async fn measure_confirmation(s: &Settings, db: &Db) -> anyhow::Result<(f64, f64)> {
    let (orders, trade_date, effective) = (s.orders, s.day, s.effective);
    let (_, baseline) = timed(
        &format!(
            "baseline: INSERT the {orders} orders' journal rows + UPDATE their positions (rolled back)"
        ),
        async {
            db.seed.batch_execute(&format!(
                "BEGIN;
                 INSERT INTO unit_journal (account_id, fund_code, order_id, kind, units, effective_date, booked_at)
                 SELECT account_id, fund_code, order_id, 'subscription', amount, '{effective}', now()
                 FROM orders WHERE trade_date = '{trade_date}' AND status = 'accepted';
                 UPDATE positions SET units = units + pending_subscription, pending_subscription = 0
                 WHERE pending_subscription > 0;
                 ROLLBACK"
            ))
            .await?;
            anyhow::Ok(())
        },
    )
    .await?;
    timed("vacuum + checkpoint", vacuum(&db.seed)).await?;
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 1, 0, 0).unwrap();
    let batch_size = s.batching.batch_size;
    let (confirmed, elapsed) = timed(
        &format!("confirmation of {orders} orders (batches of {batch_size})"),
        confirm::confirm(&db.pool, trade_date, effective, now, s.batching, &|_| {}),
    )
    .await?;
    anyhow::ensure!(
        confirmed.subscriptions as u64 == orders,
        "confirmed {confirmed:?}"
    );
    timed("vacuum + checkpoint", vacuum(&db.seed)).await?;
    Ok((baseline, elapsed))
}

/// A bare set-based UPDATE of every position with a day's income (rolled back); its seconds.
async fn distribution_baseline(s: &Settings, db: &Db) -> anyhow::Result<f64> {
    let (positions, day) = (s.positions, s.day);
    let (_, elapsed) = timed(
        &format!("baseline: bare UPDATE of {positions} positions (rolled back)"),
        async {
            db.seed
                .batch_execute(&format!(
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
    timed("vacuum + checkpoint", vacuum(&db.seed)).await?;
    Ok(elapsed)
}

/// Starts the command service on benchmark database `db` (with `partners` as `id:secret,…`
/// instead of the tests' two, if given), its clock the morning after the seeded trade date.
pub(crate) async fn start_service(
    db: &str,
    url: &str,
    partners: Option<String>,
) -> anyhow::Result<Api> {
    let mut config = mmf_tests::test_config(&TestDb {
        name: db.into(),
        url: url.into(),
    });
    if let Some(p) = partners {
        config.partners = p;
    }
    let clock = Clock::simulated(Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).unwrap());
    let state = AppState::new(config, clock.clone()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, build_app(state)).await });
    Ok(Api { base, clock })
}

/// Subscription clients running against the API until stopped; their latencies.
fn start_load(api: &Api, clients: u64) -> Background<Histogram<u64>> {
    let (base, clock) = (api.base.clone(), api.clock.clone());
    Background::start(move |stop| load(base, clock, clients, stop))
}

/// API latency for 10 s with nothing else running.
async fn idle_latency(api: &Api, clients: u64) -> anyhow::Result<Histogram<u64>> {
    let load = start_load(api, clients);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle = load.stop().await?;
    println!(
        "API latency, idle ({clients} clients, 10 s): {}",
        latency(&idle)
    );
    Ok(idle)
}

/// One income day per policy, each over every position (the later days include the earlier
/// days' income), with the latency clients running during each distribution.
async fn distribute_days(
    s: &Settings,
    db: &Db,
    api: &Api,
    with_history: bool,
) -> anyhow::Result<Vec<Day>> {
    let mut days = Vec::new();
    for (k, policy) in s.policies.split(',').enumerate() {
        let day = s.day + chrono::Days::new(k as u64);
        db.seed
            .execute("UPDATE funds SET income_policy = $1", &[&policy])
            .await?;
        if k > 0 {
            income::publish(&db.pool, FUND, day, "0.6431".parse()?, api.clock.now()).await?;
            timed("vacuum + checkpoint", vacuum(&db.seed)).await?;
        }
        let load = start_load(api, s.clients);
        let (dist, elapsed) = timed(
            &format!(
                "income distribution ({policy}) of {} positions (batches of {}, {} in parallel)",
                s.positions, s.batching.batch_size, s.batching.parallel
            ),
            distribute::distribute(&db.pool, FUND, day, s.batching, api.clock.now(), &|_, _| {}),
        )
        .await?;
        let finished = Instant::now();
        let busy = load.stop().await?;
        println!("API latency during the distribution: {}", latency(&busy));
        check_distribution(&db.seed, &dist).await?;
        let income = if with_history {
            Some(income_in_clickhouse(&db.seed, finished, day).await?)
        } else {
            None
        };
        days.push(Day {
            dist,
            elapsed,
            busy,
            income,
        });
    }
    Ok(days)
}

/// The results table and the API latencies, each step next to its baseline.
fn print_summary(s: &Settings, r: &Results) {
    let (orders, positions) = (s.orders, s.positions);
    let (base_confirm, confirm_s, base_dist) = (
        r.confirm_baseline,
        r.confirm_seconds,
        r.distribution_baseline,
    );
    println!();
    println!("| step | rows | baseline bare UPDATE | mmf-ta | rows/s |");
    println!("|---|---|---|---|---|");
    println!(
        "| T+1 confirmation | {orders} orders | {base_confirm:.1} s | {confirm_s:.1} s | {:.0} |",
        orders as f64 / confirm_s
    );
    for d in &r.days {
        let dist_s = d.elapsed;
        println!(
            "| income distribution, {} | {positions} positions | {base_dist:.1} s | {dist_s:.1} s ({:.2}×) | {:.0} |",
            d.dist.policy,
            dist_s / base_dist,
            positions as f64 / dist_s
        );
        if let Some((entries, visible)) = d.income {
            println!(
                "| income visible in ClickHouse | {entries} rows | | {} after | |",
                seconds(visible)
            );
        }
    }
    println!();
    println!("API subscriptions, idle: {}", latency(&r.idle));
    for d in &r.days {
        println!(
            "API subscriptions, during distribution ({}): {}",
            d.dist.policy,
            latency(&d.busy)
        );
    }
}

/// The invariants every distribution keeps, checked against Postgres: Σ eligible = Σ movements
/// effective on or before the day; paid + carry change + to_fund = accrued exactly; under
/// `redistribute`, Σ paid = F (less any negative payment capped at the units held).
pub(crate) async fn check_distribution(seed: &Client, dist: &Distribution) -> anyhow::Result<()> {
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
