//! The seed's peak day: a fresh database with `holders` holders and one trade date of `orders`
//! orders shaped like the seed's record day (43.4% subscriptions, 56.6% redemptions of which
//! half fast, already confirmed at acceptance) over 10 partners, seeded with COPY in shuffled
//! order. Then the daily cycle as operations run it: confirmation, income for every holder,
//! settlement, each partner's confirmation file, the cycle's rows in ClickHouse and the day's
//! holdings, while 4 partners send orders through the HTTP API at a fixed open-loop rate (a
//! stall shows as latency, not as fewer requests). Each step prints next to a bare statement
//! over the same rows measured in the same run, with the API latency and whole-machine CPU
//! during it; the invariants are checked at the end.
//!
//! Options (key=value): holders=10000000 orders=30000000 rate=500 batch=2000 parallel=2
//! pace=100 max_pause=300 (the cycle's pacing, docs/decisions/0037; pace=0 never pauses).
//! `holders=1000000 orders=3000000` is the 1/10 run.

use crate::cycle::{check_distribution, copy, seconds, timed, yuan};
use crate::{connect, opt, recreate, recreate_ch, shipped_after, Background};
use chrono::{NaiveDate, TimeZone, Utc};
use hdrhistogram::Histogram;
use mmf_command::cycle::distribute::{Batching, Distribution};
use mmf_command::cycle::reconcile::{self, ofd};
use mmf_command::cycle::{self, Event};
use mmf_command::income;
use mmf_domain::calendar::Calendar;
use mmf_shared::clock::Clock;
use mmf_tests::sync::CH_URL;
use mmf_tests::Signer;
use rand::Rng;
use rust_decimal::Decimal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

const DB: &str = "mmf_bench_peak";
const FUND: &str = mmf_tests::FUND;
const TA: &str = "MMFTA";
const PARTNERS: usize = 10;
/// Partners p0..p3 send the API load, each for its own holders chosen at random.
const CLIENTS: u64 = 4;
/// Requests in flight at most; beyond it the schedule waits (and the wait counts as latency).
const IN_FLIGHT: u32 = 2000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Subscription,
    Fast,
    Normal,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Subscription => "subscription",
            Kind::Fast => "fast_redemption",
            Kind::Normal => "redemption",
        }
    }
}

/// Order `i` of the seeded trade date.
struct Order {
    holder: u64,
    kind: Kind,
    fen: u64,
}

fn mix(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16
}

/// A permutation of `0..n` (n below 10^9 + 7, which is prime): seeded rows in no account order.
fn shuffle(i: u64, n: u64) -> u64 {
    ((i as u128 * 1_000_000_007) % n as u128) as u64
}

fn order(i: u64, holders: u64) -> Order {
    let h = mix(i);
    let kind = match h % 1000 {
        0..434 => Kind::Subscription,
        434..717 => Kind::Fast,
        _ => Kind::Normal,
    };
    let fen = match kind {
        Kind::Subscription => h / 1000 % 499_900 + 100,
        _ => h / 1000 % 29_900 + 100,
    };
    Order {
        holder: shuffle(i, holders),
        kind,
        fen,
    }
}

fn account(h: u64) -> String {
    format!("8{:011}", h + 1)
}

fn partner(h: u64) -> usize {
    (h % PARTNERS as u64) as usize
}

/// Units a holder held before the trade date, in fen: 1,000.00 (more than three redemptions
/// take) plus up to 100,000.00.
fn held_fen(h: u64) -> u64 {
    100_000 + h.wrapping_mul(7_919_993) % 10_000_000
}

/// When order `i` of `n` was accepted: spread over the trade date until its 15:00 cut-off.
fn accepted_at(i: u64, n: u64, day: NaiveDate) -> String {
    let s = i * 54_000 / n.max(1);
    format!("{day} {:02}:{:02}:{:02}+08", s / 3600, s / 60 % 60, s % 60)
}

/// What the generator put into the trade date, per partner: the expected settlement and files.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
struct Flows {
    subscriptions: (i64, i64),
    redemptions: (i64, i64),
    fast: (i64, i64),
}

impl Flows {
    fn orders(&self) -> i64 {
        self.subscriptions.0 + self.redemptions.0 + self.fast.0
    }
}

/// The seeded day: each holder's redeemed and subscribed fen, and each partner's flows.
struct Day {
    redeemed: Vec<u64>,
    subscribed: Vec<u64>,
    flows: [Flows; PARTNERS],
}

fn generate(holders: u64, orders: u64) -> Day {
    let mut d = Day {
        redeemed: vec![0; holders as usize],
        subscribed: vec![0; holders as usize],
        flows: [Flows::default(); PARTNERS],
    };
    for i in 0..orders {
        let o = order(i, holders);
        let f = &mut d.flows[partner(o.holder)];
        let (slot, total) = match o.kind {
            Kind::Subscription => (&mut f.subscriptions, &mut d.subscribed),
            Kind::Fast => (&mut f.fast, &mut d.redeemed),
            Kind::Normal => (&mut f.redemptions, &mut d.redeemed),
        };
        slot.0 += 1;
        slot.1 += o.fen as i64;
        total[o.holder as usize] += o.fen;
    }
    d
}

struct Settings {
    holders: u64,
    orders: u64,
    rate: u64,
    batching: Batching,
    /// The trade date (a Thursday) and the morning after, when the cycle runs.
    day: NaiveDate,
    effective: NaiveDate,
}

/// A measured stretch of the run: API samples and CPU ticks between its ends.
struct Phase {
    label: String,
    rows: String,
    from: Instant,
    to: Instant,
    cpu: f64,
    seconds: f64,
    baseline: Option<(String, f64)>,
}

/// Whole-machine CPU ticks from /proc/stat: (busy, total).
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// A point in the run: when, and the CPU ticks so far.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    ticks: (u64, u64),
}

impl Mark {
    fn now() -> Mark {
        Mark {
            at: Instant::now(),
            ticks: cpu_ticks(),
        }
    }

    /// A phase from `self` to `end`; CPU as the share of every core that was busy.
    fn to(self, end: Mark, label: &str, rows: String) -> Phase {
        let busy = end.ticks.0.saturating_sub(self.ticks.0) as f64;
        let total = end.ticks.1.saturating_sub(self.ticks.1).max(1) as f64;
        Phase {
            label: label.into(),
            rows,
            from: self.at,
            to: end.at,
            cpu: busy / total,
            seconds: (end.at - self.at).as_secs_f64(),
            baseline: None,
        }
    }
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        mmf_shared::telemetry::init();
    }
    let holders = opt(args, "holders", 10_000_000);
    let day: NaiveDate = "2026-11-26".parse()?;
    let s = Settings {
        holders,
        orders: opt(args, "orders", 30_000_000),
        rate: opt(args, "rate", 500),
        batching: crate::batching(args),
        day,
        effective: Calendar::default().next_trading_day(day),
    };
    anyhow::ensure!(
        s.orders <= 3 * s.holders,
        "at most three orders per holder (their units cover three redemptions)"
    );
    let gen = timed("generate the day", async {
        anyhow::Ok(generate(s.holders, s.orders))
    })
    .await?
    .0;
    let url = recreate(DB).await?;
    mmf_shared::db::migrate(&url).await?;
    let pg = connect(&url).await?;
    seed(&pg, &url, &s, &gen).await?;
    let pool = mmf_shared::db::db_pool(&url, 8)?;
    income::publish(&pool, FUND, s.day, "0.6500".parse()?, Utc::now()).await?;
    timed("vacuum analyze + checkpoint", vacuum(&pg)).await?;

    let confirm_base = confirm_baseline(&pg, &s).await?;
    let income_base = income_baseline(&pg, &s).await?;

    // The trade date's rows reach ClickHouse during the day; here they are shipped in one
    // catch-up, next to a bare COPY out of Postgres and TSV insert into ClickHouse.
    let ch = recreate_ch(DB).await?;
    let journal_rows: i64 = pg
        .query_one("SELECT count(*) FROM unit_journal", &[])
        .await?
        .get(0);
    let (pg_read, ch_write) = crate::sync::baselines(&pg, &ch, DB, journal_rows as u64).await?;
    ch.query("DROP TABLE unit_journal_baseline")
        .execute()
        .await?;
    let start = Mark::now();
    let worker = mmf_sync::start(mmf_sync::Config::new(&url, CH_URL, DB)).await?;
    // The journal and the orders ship in streams of their own, side by side: the journal's
    // time is the one its baseline measures.
    let shipped = shipped_after(&pg, "unit_journal", journal_rows, start.at).await?;
    let journal_done = Mark::now();
    let orders_shipped = shipped_after(&pg, "orders", s.orders as i64, start.at).await?;
    let mut catch_up = start.to(
        journal_done,
        "trade date's journal shipped to ClickHouse",
        format!("{journal_rows} journal rows"),
    );
    catch_up.baseline = Some((
        "COPY unit_journal TO STDOUT + ClickHouse TSV INSERT".into(),
        pg_read + ch_write,
    ));
    println!(
        "journal in ClickHouse after {}, the {} orders (in parallel) after {}",
        seconds(shipped),
        s.orders,
        seconds(orders_shipped)
    );
    timed("checkpoint", pg.batch_execute("CHECKPOINT")).await?;

    let api = crate::cycle::start_service(DB, &url, Some(partner_spec())).await?;
    let epoch = Instant::now();
    let idle_from = Mark::now();
    // Orders sent on a fixed schedule by partners p0..p3 until stopped.
    let (rate, holders) = (s.rate, s.holders);
    let load = Background::start(move |stop| open_loop(api.base, api.clock, rate, holders, stop));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle = idle_from.to(Mark::now(), "idle (before the cycle)", String::new());
    let mut phases = vec![catch_up, idle];
    let summary = run_cycle(&pool, &s, &mut phases).await?;
    let paused = |ms: u64| format!("{:.1} s", ms as f64 / 1e3);
    println!(
        "the cycle paused for partners (target p99 {} ms, at most {}% of a batch): confirmation {}, distribution {}",
        s.batching.pace.target.as_millis(),
        s.batching.pace.max_pct,
        paused(summary.confirmed.as_ref().map_or(0, |c| c.paused_ms)),
        paused(
            summary
                .distributions
                .iter()
                .flatten()
                .map(|d| d.paused_ms)
                .sum()
        ),
    );
    for p in phases.iter_mut() {
        match p.label.as_str() {
            "confirm" => p.baseline = Some(confirm_base.clone()),
            "distribute" => p.baseline = Some(income_base.clone()),
            _ => {}
        }
    }
    let files = partner_files(&pool, &pg, &s, &mut phases).await?;
    let history_from = Mark::now();
    let cycle_journal: i64 = pg
        .query_one("SELECT count(*) FROM unit_journal", &[])
        .await?
        .get(0);
    let payments: i64 = pg
        .query_one("SELECT count(*) FROM income_payments", &[])
        .await?
        .get(0);
    let journal_lag = shipped_after(&pg, "unit_journal", cycle_journal, history_from.at).await?;
    let income_lag = shipped_after(&pg, "income_payments", payments, history_from.at).await?;
    println!(
        "the cycle's journal rows in ClickHouse {} after the files, its income rows {}",
        seconds(journal_lag),
        seconds(income_lag)
    );
    crate::cycle::holdings::wait_and_compare(&pg, &ch, s.day, history_from.at, "the files").await?;
    phases.push(history_from.to(
        Mark::now(),
        "cycle's rows in ClickHouse + day's holdings",
        format!("{} holders", s.holders),
    ));
    let samples = load.stop().await?;
    print_summary(&s, &phases, &samples, epoch);

    check(&pg, &ch, &s, &gen, &summary, &files).await?;
    worker.stop().await;
    Ok(())
}

/// Partners, fund, every holder's account, position and journal, the trade date's orders,
/// and the accounts the API load uses.
async fn seed(pg: &Client, url: &str, s: &Settings, gen: &Day) -> anyhow::Result<()> {
    let (holders, orders, day, effective) = (s.holders, s.orders, s.day, s.effective);
    let spec = partner_spec();
    mmf_shared::auth::seed_partners(&mmf_shared::db::db_pool(url, 1)?, &spec).await?;
    pg.batch_execute(&format!(
        "SET session_replication_role = replica;
         INSERT INTO funds (fund_code, name, max_subscription_per_order, max_subscription_per_day)
         VALUES ('{FUND}', 'Spare Cash MMF', 1000000, 100000000);"
    ))
    .await?;
    println!("seeding {holders} holders and {orders} orders of {day} (COPY, shuffled)");
    timed("seed accounts", async {
        copy(
            pg,
            "accounts (account_id, partner_id, customer_id, name, id_type, id_number, id_masked, opened_at)",
            holders,
            |k, b| {
                let h = shuffle(k, holders);
                b.push_str(&format!(
                    "{}\tp{}\tc{h}\tHolder\tresident_id\tx\tx\t2026-01-05 10:00:00+08\n",
                    account(h),
                    partner(h)
                ));
            },
        )
        .await
    })
    .await?;
    timed("seed positions", async {
        copy(
            pg,
            "positions (account_id, fund_code, units, pending_subscription)",
            holders,
            |k, b| {
                let h = shuffle(k, holders);
                let units = held_fen(h) - gen.redeemed[h as usize];
                b.push_str(&format!(
                    "{}\t{FUND}\t{}\t{}\n",
                    account(h),
                    yuan(units),
                    yuan(gen.subscribed[h as usize])
                ));
            },
        )
        .await
    })
    .await?;
    timed("seed journal", async {
        copy(
            pg,
            "unit_journal (account_id, fund_code, order_id, kind, units, effective_date, booked_at)",
            holders + orders,
            |k, b| {
                if k < holders {
                    let h = shuffle(k, holders);
                    b.push_str(&format!(
                        "{}\t{FUND}\t\\N\tsubscription\t{}\t2026-11-20\t2026-11-19 10:00:00+08\n",
                        account(h),
                        yuan(held_fen(h))
                    ));
                    return;
                }
                let i = k - holders;
                let o = order(i, holders);
                let effective = match o.kind {
                    Kind::Subscription => return,
                    Kind::Fast => day,
                    Kind::Normal => effective,
                };
                b.push_str(&format!(
                    "{}\t{FUND}\t{}\t{}\t-{}\t{effective}\t{}\n",
                    account(o.holder),
                    i + 1,
                    o.kind.name(),
                    yuan(o.fen),
                    accepted_at(i, orders, day)
                ));
            },
        )
        .await
    })
    .await?;
    timed("seed orders", async {
        copy(
            pg,
            "orders (order_id, partner_id, request_id, account_id, fund_code, kind, purpose, amount, \
             status, trade_date, effective_date, accepted_at, confirmed_at)",
            orders,
            |i, b| {
                let o = order(i, holders);
                let at = accepted_at(i, orders, day);
                let (purpose, status, eff, confirmed) = match o.kind {
                    Kind::Subscription => ("\\N", "accepted", "\\N".to_string(), "\\N"),
                    Kind::Fast => ("payment", "confirmed", day.to_string(), at.as_str()),
                    Kind::Normal => ("\\N", "accepted", effective.to_string(), "\\N"),
                };
                b.push_str(&format!(
                    "{}\tp{}\tr{i}\t{}\t{FUND}\t{}\t{purpose}\t{}\t{status}\t{day}\t{eff}\t{at}\t{confirmed}\n",
                    i + 1,
                    partner(o.holder),
                    account(o.holder),
                    o.kind.name(),
                    yuan(o.fen)
                ));
            },
        )
        .await
    })
    .await?;
    pg.batch_execute(&format!(
        "SET session_replication_role = DEFAULT; SELECT setval('order_id_seq', {orders});"
    ))
    .await?;
    Ok(())
}

fn partner_spec() -> String {
    (0..PARTNERS)
        .map(|p| format!("p{p}:secret-p{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

async fn vacuum(pg: &Client) -> anyhow::Result<()> {
    crate::cycle::vacuum_tables(pg, "accounts, positions, unit_journal, orders").await
}

/// A statement over the cycle's rows, run and rolled back; its seconds, then a vacuum.
async fn rolled_back(pg: &Client, label: &str, sql: &str) -> anyhow::Result<(String, f64)> {
    let (_, seconds) = timed(
        &format!("baseline: {label}"),
        pg.batch_execute(&format!("BEGIN; {sql}; ROLLBACK")),
    )
    .await?;
    timed("vacuum + checkpoint", vacuum(pg)).await?;
    Ok((label.into(), seconds))
}

async fn confirm_baseline(pg: &Client, s: &Settings) -> anyhow::Result<(String, f64)> {
    let (day, effective) = (s.day, s.effective);
    rolled_back(
        pg,
        "INSERT the subscriptions' journal rows + UPDATE positions with pending (rolled back)",
        &format!(
            "INSERT INTO unit_journal (account_id, fund_code, order_id, kind, units, effective_date, booked_at)
             SELECT account_id, fund_code, order_id, 'subscription', amount, '{effective}', now()
             FROM orders WHERE trade_date = '{day}' AND status = 'accepted' AND kind = 'subscription';
             UPDATE positions SET units = units + pending_subscription, pending_subscription = 0
             WHERE pending_subscription > 0"
        ),
    )
    .await
}

async fn income_baseline(pg: &Client, s: &Settings) -> anyhow::Result<(String, f64)> {
    let day = s.day;
    rolled_back(
        pg,
        "UPDATE every position with the day's income (rolled back)",
        &format!(
            "UPDATE positions SET units = units + trunc(units * 0.000065, 2),
                 cum_income = cum_income + trunc(units * 0.000065, 2),
                 last_income = trunc(units * 0.000065, 2), last_income_date = '{day}'
             WHERE fund_code = '{FUND}'"
        ),
    )
    .await
}

/// The daily cycle as operations run it (`mmfctl cycle run`): one phase per step.
async fn run_cycle(
    pool: &mmf_shared::db::DbPool,
    s: &Settings,
    phases: &mut Vec<Phase>,
) -> anyhow::Result<cycle::CycleSummary> {
    let marks: Mutex<Vec<(&'static str, Mark)>> = Mutex::new(Vec::new());
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 1, 0, 0).unwrap();
    let progress = |e: Event| {
        let step = match e {
            Event::StepStarted(step) | Event::StepFinished(step) => step,
            _ => return,
        };
        marks.lock().unwrap().push((step, Mark::now()));
    };
    let (summary, _) = timed(
        "daily cycle (confirm, distribute, settle)",
        cycle::run(
            pool,
            &Calendar::default(),
            now,
            s.day,
            s.batching,
            &progress,
        ),
    )
    .await?;
    let marks = marks.into_inner().unwrap();
    for pair in marks.chunks(2) {
        let [(step, from), (_, to)] = pair else {
            anyhow::bail!("step {:?} did not finish", pair[0].0)
        };
        let rows = match *step {
            "confirm" => format!("{} orders", s.orders),
            "distribute" => format!("{} positions", s.holders),
            _ => format!("{} orders", s.orders),
        };
        phases.push(from.to(*to, step, rows));
    }
    Ok(summary)
}

/// Each partner's trade confirmation file, then the baselines over the same rows: the
/// settlement's GROUP BY and a COPY of each partner's rows out of Postgres.
async fn partner_files(
    pool: &mmf_shared::db::DbPool,
    pg: &Client,
    s: &Settings,
    phases: &mut Vec<Phase>,
) -> anyhow::Result<Vec<(usize, usize)>> {
    let day = s.day;
    let from = Mark::now();
    let mut files = Vec::new();
    let mut bytes = 0;
    for p in 0..PARTNERS {
        let (_, file) = reconcile::confirmation_file(pool, TA, &format!("p{p}"), day).await?;
        bytes += file.len();
        let parsed = ofd::parse(&file).map_err(|e| anyhow::anyhow!("file of p{p}: {e:?}"))?;
        files.push((p, parsed.records.len()));
    }
    let mut phase = from.to(
        Mark::now(),
        "partners' confirmation files",
        format!("{} records, {} MB", s.orders, bytes / 1_000_000),
    );
    let t = Instant::now();
    for p in 0..PARTNERS {
        let sql = format!(
            "COPY (SELECT request_id, order_id, kind, account_id, fund_code, amount, status, \
             confirmed_at, cancelled_at FROM order_states WHERE partner_id = 'p{p}' \
             AND trade_date = '{day}' AND status <> 'accepted' ORDER BY order_id) TO STDOUT"
        );
        crate::sync::copy_out(pg, &sql).await?;
    }
    phase.baseline = Some((
        "COPY each partner's rows TO STDOUT".into(),
        t.elapsed().as_secs_f64(),
    ));
    phases.push(phase);
    let t = Instant::now();
    pg.query(
        "SELECT partner_id, kind, count(*), sum(amount) FROM orders WHERE trade_date = $1
         AND status <> 'cancelled' GROUP BY 1, 2",
        &[&day],
    )
    .await?;
    let settle_base = t.elapsed().as_secs_f64();
    if let Some(settle) = phases.iter_mut().find(|p| p.label == "settle") {
        settle.baseline = Some((
            "SELECT partner, kind, count, sum FROM the day's orders GROUP BY".into(),
            settle_base,
        ));
    }
    Ok(files)
}

/// One API request: when it was due (seconds after the run's epoch), its latency from then,
/// and whether it was accepted.
struct Sample {
    due: Instant,
    micros: u64,
    ok: bool,
}

/// An order of partner `client` for one of its holders at random: 70% fast redemptions of
/// 0.01 to 9.99 (the seed leaves every holder more than 100.00), 30% subscriptions of 1.00 to
/// 499.00. Both wait for the holder's position if the cycle holds it.
fn load_order(client: u64, holders: u64, rid: String) -> (&'static str, serde_json::Value) {
    let mut rng = rand::thread_rng();
    let h = rng.gen_range(0..holders / PARTNERS as u64) * PARTNERS as u64 + client;
    let acct = account(h);
    if rng.gen_bool(0.7) {
        let units = format!("{}.{:02}", rng.gen_range(0..10), rng.gen_range(1..100));
        (
            "/v1/redemptions",
            serde_json::json!({"request_id": rid, "account_id": acct, "fund_code": FUND,
                "units": units, "mode": "fast", "purpose": "payment"}),
        )
    } else {
        let amount = format!("{}.00", rng.gen_range(1..500));
        (
            "/v1/subscriptions",
            serde_json::json!({"request_id": rid, "account_id": acct, "fund_code": FUND,
                "amount": amount}),
        )
    }
}

async fn open_loop(
    base: String,
    clock: Clock,
    rate: u64,
    holders: u64,
    stop: Arc<AtomicBool>,
) -> Vec<Sample> {
    let http = reqwest::Client::new();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT as usize));
    let period = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let start = tokio::time::Instant::now();
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = start + period.mul_f64(k as f64);
        tokio::time::sleep_until(due).await;
        let slot = slots.clone().acquire_owned().await.expect("semaphore");
        let client = k % CLIENTS;
        let signer = Signer {
            partner: format!("p{client}"),
            secret: format!("secret-p{client}"),
        };
        let (http, base, now, samples) = (http.clone(), base.clone(), clock.now(), samples.clone());
        tokio::spawn(async move {
            let (path, body) = load_order(client, holders, format!("L{k}"));
            let resp = signer
                .send(
                    &http,
                    reqwest::Method::POST,
                    &base,
                    path,
                    Some(&body),
                    now,
                    None,
                )
                .await;
            let sample = Sample {
                due: due.into_std(),
                micros: due.elapsed().as_micros() as u64,
                ok: resp.status() == reqwest::StatusCode::CREATED,
            };
            samples.lock().unwrap().push(sample);
            drop(slot);
        });
        k += 1;
    }
    let _all = slots.acquire_many(IN_FLIGHT).await.expect("semaphore");
    let taken = std::mem::take(&mut *samples.lock().unwrap());
    taken
}

fn latency(samples: &[Sample], phase: &Phase) -> String {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    let mut refused = 0;
    for x in samples
        .iter()
        .filter(|x| x.due >= phase.from && x.due < phase.to)
    {
        h.record(x.micros.max(1)).unwrap();
        refused += usize::from(!x.ok);
    }
    if h.is_empty() {
        return "(no load)".into();
    }
    let refused = if refused > 0 {
        format!(", {refused} NOT accepted")
    } else {
        String::new()
    };
    format!("{}{refused}", crate::cycle::latency(&h))
}

fn print_summary(s: &Settings, phases: &[Phase], samples: &[Sample], epoch: Instant) {
    println!();
    println!(
        "peak day: {} holders, {} orders of {}; API load {} orders/s open loop from {CLIENTS} partners",
        s.holders, s.orders, s.day, s.rate
    );
    println!("| step | rows | mmf-ta | baseline (same rows, same run) | × baseline | machine CPU | API during the step |");
    println!("|---|---|---|---|---|---|---|");
    for p in phases {
        let (base, ratio) = match &p.baseline {
            Some((name, b)) => (
                format!("{b:.1} s: {name}"),
                format!("{:.2}×", p.seconds / b),
            ),
            None => (String::new(), String::new()),
        };
        println!(
            "| {} | {} | {:.1} s | {base} | {ratio} | {:.0}% | {} |",
            p.label,
            p.rows,
            p.seconds,
            p.cpu * 100.0,
            latency(samples, p)
        );
    }
    let whole = Phase {
        label: String::new(),
        rows: String::new(),
        from: epoch,
        to: Instant::now(),
        cpu: 0.0,
        seconds: 0.0,
        baseline: None,
    };
    println!("API over the whole run: {}", latency(samples, &whole));
}

/// The invariants of the day, after the load stopped and the history store caught up.
async fn check(
    pg: &Client,
    ch: &clickhouse::Client,
    s: &Settings,
    gen: &Day,
    summary: &cycle::CycleSummary,
    files: &[(usize, usize)],
) -> anyhow::Result<()> {
    // Money: each partner's settlement is what the generator sent.
    let settlements = summary.settlements.as_deref().unwrap_or_default();
    anyhow::ensure!(
        settlements.len() == PARTNERS,
        "{} settlements",
        settlements.len()
    );
    for st in settlements {
        let p: usize = st.partner_id[1..].parse()?;
        let f = &gen.flows[p];
        let fen = |d: Decimal| (d * Decimal::from(100)).try_into().unwrap_or(i64::MIN);
        let got = Flows {
            subscriptions: (st.subscription_count, fen(st.subscription_amount)),
            redemptions: (st.redemption_count, fen(st.redemption_amount)),
            fast: (st.fast_count, fen(st.fast_amount)),
        };
        anyhow::ensure!(got == *f, "settlement of p{p}: {got:?}, sent {f:?}");
        anyhow::ensure!(st.net_amount == st.subscription_amount - st.redemption_amount);
    }
    println!("settlements: every partner's counts and amounts equal what was sent (exact)");
    for (p, records) in files {
        let sent = gen.flows[*p].orders();
        anyhow::ensure!(
            *records as i64 == sent,
            "file of p{p}: {records} records, {sent} orders"
        );
    }
    println!("confirmation files: each partner's file lists every order it sent");
    let confirmed = summary.confirmed.clone().unwrap_or_default();
    let total = |f: fn(&Flows) -> (i64, i64)| {
        gen.flows
            .iter()
            .map(f)
            .fold((0, Decimal::ZERO), |a, (n, fen)| {
                (a.0 + n, a.1 + Decimal::new(fen, 2))
            })
    };
    let (subs, normal) = (total(|f| f.subscriptions), total(|f| f.redemptions));
    anyhow::ensure!(
        (confirmed.subscriptions, confirmed.subscription_amount) == subs
            && (confirmed.redemptions, confirmed.redemption_amount) == normal,
        "confirmed {confirmed:?}, sent subscriptions {subs:?}, normal redemptions {normal:?}"
    );
    println!("confirmation: every subscription and normal redemption sent, confirmed (exact)");
    let dists: &[Distribution] = summary.distributions.as_deref().unwrap_or_default();
    anyhow::ensure!(dists.len() == 1, "{} distributions", dists.len());
    check_distribution(pg, &dists[0]).await?;

    // Units: every position equals its movements (journal and income); what is pending is the
    // subscriptions still open (the load's, of the next trade date).
    let r = pg
        .query_one(
            "SELECT count(*) FILTER (WHERE p.units <> coalesce(j.units, 0)),
                    sum(p.pending_subscription),
                    (SELECT coalesce(sum(amount), 0) FROM order_states
                     WHERE kind = 'subscription' AND status = 'accepted'),
                    (SELECT count(*) FROM order_states WHERE trade_date = $1 AND status = 'accepted')
             FROM positions p LEFT JOIN (SELECT account_id, fund_code, sum(units) AS units
                                         FROM unit_movements GROUP BY 1, 2) j USING (account_id, fund_code)",
            &[&s.day],
        )
        .await?;
    let (off, pending, open, left): (i64, Decimal, Decimal, i64) =
        (r.get(0), r.get(1), r.get(2), r.get(3));
    anyhow::ensure!(
        off == 0 && pending == open && left == 0,
        "{off} positions differ from their movements; pending {pending}, open subscriptions \
         {open}; {left} orders of {} not confirmed",
        s.day
    );
    println!(
        "units: every position equals the sum of its movements; pending = open subscriptions \
         ({open}); every order of {} confirmed",
        s.day
    );

    // Counts and sums, Postgres = ClickHouse, once the worker has shipped the load's last rows.
    let r = pg
        .query_one(
            "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM unit_movements),
                    (SELECT (sum(units) * 100)::bigint FROM unit_movements)",
            &[],
        )
        .await?;
    let want: (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
    let t = Instant::now();
    loop {
        let (orders, journal, fen): (u64, u64, i64) = ch
            .query(
                "SELECT (SELECT count() FROM orders FINAL), (SELECT count() FROM unit_journal FINAL),
                        (SELECT toInt64(sum(units) * 100) FROM unit_journal FINAL)",
            )
            .fetch_one()
            .await?;
        if (orders as i64, journal as i64, fen) == want {
            println!(
                "Postgres = ClickHouse: {} orders, {} movements (journal and income), {} units",
                want.0,
                want.1,
                yuan(want.2 as u64)
            );
            return Ok(());
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(900),
            "ClickHouse {orders} orders, {journal} journal rows, {fen} fen; Postgres {want:?}"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
