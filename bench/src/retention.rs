//! `mmf-bench retention`: business days of orders, the daily cycle and retention, one after
//! another, with the size of every Postgres table printed after each day. Orders go through the
//! order writer in this process (the HTTP layer left out: the point is what the days leave
//! behind, not request latency); the sync worker ships to ClickHouse throughout; each day ends
//! with retention, retried while ClickHouse has not caught up yet. With retention the tables
//! stay the size of their window: the last day's sizes are compared with day 10's.
//!
//! Options: `days=30` business days, `accounts=200000`, `orders=100000` a day, `window=7`
//! (`MMF_RETENTION_DAYS`), `key_days=14` (`MMF_REQUEST_KEY_DAYS`; its keys fill their window
//! after `key_days` calendar days, so the default lets them level off within the run),
//! `compare=10` (the day the last day's sizes are compared with).

use crate::{connect, opt, recreate, recreate_ch, seed_holders};
use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc, Weekday};
use futures::StreamExt;
use mmf_command::cycle::{self, distribute::Batching, retention};
use mmf_command::income;
use mmf_command::state::AppState;
use mmf_command::writer::{Command, Redeem, Subscribe};
use mmf_domain::ids::{AccountId, FundCode, RequestId};
use mmf_domain::money::Amount;
use mmf_domain::orders::Redemption;
use mmf_shared::clock::Clock;
use mmf_tests::sync::CH_URL;
use mmf_tests::TestDb;
use rand::Rng;
use std::time::Instant;

const DB: &str = "mmf_bench_retention";
const FUND: &str = mmf_tests::FUND;

/// The tables whose size is followed, in the order printed.
const TABLES: [&str; 12] = [
    "orders",
    "idempotency",
    "request_keys",
    "daily_usage",
    "settlements",
    "unit_journal",
    "income_payments",
    "positions",
    "accounts",
    "retained_records",
    "retained_days",
    "income_batches",
];

struct Settings {
    days: u64,
    accounts: u64,
    orders: u64,
    window: u32,
    key_days: u32,
    /// The day the last day's sizes are compared with.
    compare: usize,
}

/// One simulated business day's measurements.
struct DayResult {
    date: NaiveDate,
    orders_s: f64,
    accepted: u64,
    cycle_s: f64,
    retention_s: f64,
    attempts: u32,
    sizes: Vec<i64>,
}

/// `hour`:00 in Shanghai (UTC+8 all year) on `day`.
fn at(day: NaiveDate, hour: u32) -> DateTime<Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .from_local_datetime(&day.and_hms_opt(hour, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn next_business_day(d: NaiveDate) -> NaiveDate {
    let mut n = d + Days::new(1);
    while matches!(n.weekday(), Weekday::Sat | Weekday::Sun) {
        n = n + Days::new(1);
    }
    n
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let s = Settings {
        days: opt(args, "days", 30),
        accounts: opt(args, "accounts", 200_000),
        orders: opt(args, "orders", 100_000),
        window: opt(args, "window", 7) as u32,
        key_days: opt(args, "key_days", 14) as u32,
        compare: (opt(args, "compare", 10) as usize).max(5),
    };
    println!(
        "retention: {} business days, {} accounts, {} orders a day, window {} days, request keys {} days",
        s.days, s.accounts, s.orders, s.window, s.key_days
    );
    let url = recreate(DB).await?;
    mmf_shared::db::migrate(&url).await?;
    let pg = connect(&url).await?;
    seed_holders(&pg, &url, "p1:secret", s.accounts).await?;
    pg.batch_execute("UPDATE funds SET fast_withdrawal_daily_cap = 10000")
        .await?;
    pg.batch_execute("VACUUM ANALYZE").await?;
    recreate_ch(DB).await?;
    let ch = mmf_shared::ch::client_for(CH_URL, DB);
    let sync = mmf_sync::start(mmf_sync::Config::new(&url, CH_URL, DB)).await?;

    let mut config = mmf_tests::test_config(&TestDb {
        name: DB.into(),
        url: url.clone(),
    });
    config.common.db_pool = 8;
    config.writer_shards = 4;
    config.writer_batch = 256;
    let mut day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    let clock = Clock::frozen(at(day, 10));
    let state = AppState::new(config, clock.clone()).await?;
    let batching = Batching {
        batch_size: 20_000,
        parallel: 2,
        pace: mmf_domain::pace::Pace::OFF,
    };

    print!(
        "{:>3} {:>10} {:>8} {:>8} {:>7} {:>9}",
        "day", "date", "orders", "accepted", "cycle", "retention"
    );
    for t in TABLES {
        print!(" {:>9}", abbreviate(t));
    }
    println!("   (seconds; sizes in MB, tables with their indexes)");
    let mut results: Vec<DayResult> = Vec::new();
    for k in 1..=s.days {
        clock.freeze(at(day, 10))?;
        let started = Instant::now();
        let accepted = orders(&state, &s, day, k).await;
        let orders_s = started.elapsed().as_secs_f64();
        // Income is published for every calendar day, weekends included.
        let next = next_business_day(day);
        let mut d = day;
        while d < next {
            income::publish(&state.db, FUND, d, "0.6500".parse()?, clock.now()).await?;
            d = d + Days::new(1);
        }
        clock.freeze(at(next, 9))?;
        let started = Instant::now();
        let calendar = state.reference.calendar();
        cycle::run(&state.db, &calendar, clock.now(), day, batching, &|_| {}).await?;
        let cycle_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let report =
                retention::run(&state.db, &ch, clock.now(), s.window, s.key_days, false).await?;
            if !report.refused {
                break;
            }
            anyhow::ensure!(attempts < 600, "retention refused for 10 minutes");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        let retention_s = started.elapsed().as_secs_f64();
        let sizes = sizes(&pg).await?;
        let r = DayResult {
            date: day,
            orders_s,
            accepted,
            cycle_s,
            retention_s,
            attempts,
            sizes,
        };
        print_day(k, &r);
        results.push(r);
        day = next;
    }
    sync.stop().await;
    summary(&results, s.compare);
    Ok(())
}

/// Sends the day's orders through the writer, 512 at a time: half subscriptions, a quarter
/// fast withdrawals, a quarter normal redemptions, 1 to 100 yuan, on random accounts.
/// Returns how many were accepted.
async fn orders(state: &AppState, s: &Settings, day: NaiveDate, k: u64) -> u64 {
    let now = state.clock.now();
    let calendar = state.reference.calendar();
    let trade_date = calendar.trade_date(now).date();
    let next = calendar.next_trading_day(trade_date);
    let accepted = futures::stream::iter(0..s.orders)
        .map(|i| {
            let mut rng = rand::thread_rng();
            let account = AccountId::try_from(format!("8{:011}", rng.gen_range(1..=s.accounts)))
                .expect("account id");
            let fund_code = FundCode::try_from(FUND.to_string()).expect("fund code");
            let request_id = RequestId::try_from(format!("d{k}-{i}")).expect("request id");
            let amount: Amount = format!("{}.00", rng.gen_range(1..=100))
                .parse()
                .expect("amount");
            let hash = mmf_command::idempotency::fingerprint("bench", &[&format!("{k}-{i}")], None);
            let cmd = match rng.gen_range(0..4) {
                0 | 1 => Command::Subscribe(Subscribe {
                    partner: "p1".into(),
                    request_id,
                    hash,
                    account_id: account,
                    fund_code,
                    amount,
                    trade_date,
                    day,
                    now,
                }),
                n => {
                    let what = if n == 2 {
                        Redemption::FastWithdrawal
                    } else {
                        Redemption::Normal
                    };
                    Command::Redeem(Redeem {
                        partner: "p1".into(),
                        request_id,
                        hash,
                        account_id: account,
                        fund_code,
                        what,
                        units: amount.as_units(),
                        trade_date,
                        effective_date: if what == Redemption::Normal {
                            next
                        } else {
                            day
                        },
                        day,
                        now,
                    })
                }
            };
            state.writer.submit(cmd)
        })
        .buffer_unordered(512)
        .filter(|r| std::future::ready(r.is_ok()))
        .count()
        .await;
    accepted as u64
}

async fn sizes(pg: &tokio_postgres::Client) -> anyhow::Result<Vec<i64>> {
    let mut out = Vec::new();
    for t in TABLES {
        let n: i64 = pg
            .query_one("SELECT pg_total_relation_size($1::text::regclass)", &[&t])
            .await?
            .get(0);
        out.push(n);
    }
    Ok(out)
}

fn abbreviate(table: &str) -> String {
    table.chars().take(9).collect()
}

fn mb(bytes: i64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn print_day(k: u64, r: &DayResult) {
    print!(
        "{k:>3} {} {:>8.1} {:>8} {:>7.1} {:>6.1} ({})",
        r.date, r.orders_s, r.accepted, r.cycle_s, r.retention_s, r.attempts
    );
    for b in &r.sizes {
        print!(" {:>9.1}", mb(*b));
    }
    println!();
}

/// Each table's size and the cycle's time on the last day against day `compare` (target
/// ≤ 1.1×).
fn summary(results: &[DayResult], compare: usize) {
    let (Some(first), Some(last)) = (results.get(compare - 1), results.last()) else {
        println!("fewer than {compare} days: no comparison");
        return;
    };
    println!(
        "\nday {} against day {compare} (target: every table ≤ 1.1×, no VACUUM FULL):",
        results.len()
    );
    let mut worst: f64 = 0.0;
    for (i, t) in TABLES.iter().enumerate() {
        let ratio = last.sizes[i] as f64 / first.sizes[i].max(1) as f64;
        worst = worst.max(ratio);
        println!(
            "  {t:<17} {:>9.1} MB → {:>9.1} MB  {ratio:.2}×",
            mb(first.sizes[i]),
            mb(last.sizes[i])
        );
    }
    let total = |r: &DayResult| r.sizes.iter().sum::<i64>();
    println!(
        "  {:<17} {:>9.1} MB → {:>9.1} MB  {:.2}×",
        "all followed",
        mb(total(first)),
        mb(total(last)),
        total(last) as f64 / total(first) as f64
    );
    let mean = |rs: &[DayResult], f: fn(&DayResult) -> f64| {
        rs.iter().map(f).sum::<f64>() / rs.len() as f64
    };
    let early = &results[compare - 5..compare];
    let late = &results[results.len() - 5..];
    println!(
        "daily cycle: the 5 days to day {compare} mean {:.2} s, last 5 days mean {:.2} s ({:.2}×); retention {:.2} s → {:.2} s; worst table ratio {worst:.2}×",
        mean(early, |r| r.cycle_s),
        mean(late, |r| r.cycle_s),
        mean(late, |r| r.cycle_s) / mean(early, |r| r.cycle_s),
        mean(early, |r| r.retention_s),
        mean(late, |r| r.retention_s),
    );
}
