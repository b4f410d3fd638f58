//! Read-side latency with a large history: balance (Postgres position row) and one-year
//! statement (ClickHouse) p50/p99 through the real HTTP API, and each report's run time.
//! Baselines in the same run: `/health` (HTTP + Postgres `SELECT 1`) for the balance and a
//! ClickHouse `SELECT 1` round trip for the statement.
//!
//! History is seeded on the server with `INSERT ... SELECT FROM numbers()`: `rows` journal
//! entries (one per account and day: daily income plus subscriptions and fast redemptions)
//! over `accounts` accounts and `days` days, `orders` orders, and the funds' daily income.
//! An existing seed of the same size is reused (`reseed=1` forces a new one).
//!
//! Options (key=value): rows=100000000 accounts=250000 orders=10000000 samples=2000 clients=8
//! reseed=0 reports=1 latency=1 (0 skips the latency part)

use crate::{connect, opt, recreate};
use anyhow::Context;
use hdrhistogram::Histogram;
use mmf_query::{build_app, AppState, Config};
use mmf_shared::clock::Clock;
use mmf_shared::config::Common;
use mmf_tests::{Signer, FUND};
use rand::Rng;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DB: &str = "mmf_bench_query";
const CH_URL: &str = "http://127.0.0.1:8123";
const PARTNER: &str = "p1";
/// The first day of history; the seed covers `days` days from here.
const START: &str = "2025-10-01";

fn account(i: u64) -> String {
    format!("{}", 100_000_000_000u64 + i)
}

async fn ch_exec(ch: &clickhouse::Client, sql: &str) -> anyhow::Result<()> {
    ch.query(sql)
        .execute()
        .await
        .with_context(|| sql.chars().take(200).collect::<String>())
}

async fn seed_postgres(accounts: u64) -> anyhow::Result<String> {
    let url = recreate(DB).await?;
    mmf_shared::db::migrate(&url).await?;
    let pg = connect(&url).await?;
    let secret = Signer::new(PARTNER).secret;
    pg.batch_execute(&format!(
        "INSERT INTO partners (partner_id, name, secret) VALUES ('{PARTNER}', '{PARTNER}', '{secret}');
         INSERT INTO funds (fund_code, name, max_subscription_per_order, max_subscription_per_day)
             VALUES ('{FUND}', 'Bench MMF', 1000000, 5000000);
         INSERT INTO accounts (account_id, partner_id, customer_id, name, id_type, id_number,
                               id_masked, opened_at)
             SELECT (100000000000 + i)::text, '{PARTNER}', 'c' || i, 'Bench', 'resident_id',
                    '110105199001010011', '110105********0011', now()
             FROM generate_series(0, {n}) i;
         INSERT INTO positions (account_id, fund_code, units, cum_income, last_income, last_income_date)
             SELECT (100000000000 + i)::text, '{FUND}', 1000 + i % 100000, 12.34, 0.12,
                    current_date - 1
             FROM generate_series(0, {n}) i;
         ANALYZE;",
        n = accounts - 1
    ))
    .await?;
    Ok(url)
}

/// Seeds ClickHouse unless a seed of this size is there already. Returns whether it seeded.
async fn seed_clickhouse(
    ch: &clickhouse::Client,
    rows: u64,
    accounts: u64,
    orders: u64,
    days: u64,
    reseed: bool,
) -> anyhow::Result<bool> {
    let have: u64 = ch
        .query("SELECT count() FROM unit_journal")
        .fetch_one()
        .await
        .unwrap_or(0);
    let have_orders: u64 = ch
        .query("SELECT count() FROM orders")
        .fetch_one()
        .await
        .unwrap_or(0);
    if !reseed && have == rows && have_orders == orders {
        // Keep the data, but recreate the report views and parameters from the current
        // migrations (the runner records versions, so forget them first).
        let views: Vec<String> = ch
            .query("SELECT name FROM system.tables WHERE database = ? AND engine = 'View'")
            .bind(DB)
            .fetch_all()
            .await?;
        for v in views {
            ch_exec(ch, &format!("DROP TABLE IF EXISTS {v}")).await?;
        }
        ch_exec(ch, "DROP TABLE IF EXISTS report_parameters").await?;
        ch_exec(ch, "DROP TABLE IF EXISTS schema_migrations").await?;
        mmf_shared::ch::migrate(&mmf_shared::ch::client(CH_URL), DB).await?;
        return Ok(false);
    }
    mmf_shared::ch::client(CH_URL)
        .query(&format!("DROP DATABASE IF EXISTS {DB}"))
        .execute()
        .await?;
    mmf_shared::ch::migrate(&mmf_shared::ch::client(CH_URL), DB).await?;
    ch_exec(
        ch,
        &format!(
            "INSERT INTO accounts (account_id, partner_id, customer_id, name, id_type, id_masked,
                                   opened_at, txid, version)
             SELECT toString(100000000000 + number), '{PARTNER}', concat('c', toString(number)),
                    'Bench', 'resident_id', '110105********0011', toDateTime('{START} 09:00:00'),
                    number, 1
             FROM numbers({accounts})"
        ),
    )
    .await?;
    ch_exec(
        ch,
        &format!(
            "INSERT INTO funds (fund_code, name, min_subscription, max_subscription_per_order,
                                max_subscription_per_day, fast_withdrawal_daily_cap,
                                income_policy, updated_at, txid, version)
             VALUES ('{FUND}', 'Bench MMF', 0.01, 1000000, 5000000, 10000, 'carry_forward',
                     toDateTime('{START} 09:00:00'), 1, 1)"
        ),
    )
    .await?;
    ch_exec(
        ch,
        &format!(
            "INSERT INTO fund_income (fund_code, day, per10k, yield_7d, txid, version)
             SELECT '{FUND}', toDate('{START}') + number,
                    toDecimal64(5000 + number % 1000, 4) / 10000,
                    if(number >= 6, toNullable(toDecimal64(2000 + number % 300, 3) / 1000), NULL),
                    number, 1
             FROM numbers({days})"
        ),
    )
    .await?;
    // Entry n: account n mod A on day n div A. Every 13th a subscription of 1,000.00, every
    // 29th a fast redemption of 10.00, the rest daily income of 0.05 to 0.11.
    let started = Instant::now();
    ch_exec(
        ch,
        &format!(
            "INSERT INTO unit_journal (entry_id, account_id, fund_code, order_id, kind, units,
                                       effective_date, booked_at, txid)
             SELECT number + 1, toString(100000000000 + number % {accounts}), '{FUND}',
                    if(number % 13 = 0 OR number % 29 = 0, number + 1, 0),
                    multiIf(number % 13 = 0, 'subscription', number % 29 = 0, 'fast_redemption', 'income'),
                    toDecimal64(multiIf(number % 13 = 0, 100000, number % 29 = 0, -1000, 5 + number % 7), 2) / 100,
                    toDate('{START}') + intDiv(number, {accounts}),
                    toDateTime(toDate('{START}') + intDiv(number, {accounts})) + 3600,
                    number
             FROM numbers({rows})"
        ),
    )
    .await?;
    println!(
        "  unit_journal: {rows} rows inserted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let per_day = (orders / days).max(1);
    ch_exec(
        ch,
        &format!(
            "INSERT INTO orders (order_id, partner_id, request_id, account_id, fund_code, kind,
                                 purpose, amount, status, trade_date, effective_date, accepted_at,
                                 confirmed_at, cancelled_at, txid, version)
             SELECT number + 1, '{PARTNER}', toString(number),
                    toString(100000000000 + number % {accounts}), '{FUND}',
                    multiIf(number % 10 < 3, 'subscription', number % 10 < 9, 'fast_redemption', 'redemption'),
                    if(number % 10 >= 3 AND number % 10 < 9, if(number % 2 = 0, 'withdrawal', 'payment'), ''),
                    toDecimal64(100 + (number * 7919) % 1000000, 2) / 100,
                    'confirmed', toDate('{START}') + intDiv(number, {per_day}), NULL,
                    toDateTime(toDate('{START}') + intDiv(number, {per_day})) + 36000 + number % 18000,
                    NULL, NULL, number, 1
             FROM numbers({orders})"
        ),
    )
    .await?;
    println!(
        "  orders: {orders} rows inserted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(true)
}

/// Waits for background merges to finish, so that they do not distort the latencies.
async fn settle(ch: &clickhouse::Client) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let merges: u64 = ch
            .query("SELECT count() FROM system.merges WHERE database = ?")
            .bind(DB)
            .fetch_one()
            .await?;
        if merges == 0 || started.elapsed() > Duration::from_secs(1800) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let parts: u64 = ch
        .query("SELECT count() FROM system.parts WHERE database = ? AND table = 'unit_journal' AND active")
        .bind(DB)
        .fetch_one()
        .await?;
    println!(
        "  merges settled after {:.0} s; unit_journal has {parts} active parts",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs `f` `samples` times across `clients` concurrent loops; latencies in microseconds.
async fn measure<F, Fut>(samples: u64, clients: u64, f: F) -> Histogram<u64>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let per = samples.div_ceil(clients);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
            for i in 0..per {
                let t = Instant::now();
                f(c * per + i).await;
                h.record(t.elapsed().as_micros().max(1) as u64).unwrap();
            }
            h
        }));
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
    for t in tasks {
        all.add(t.await.unwrap()).unwrap();
    }
    all
}

fn line(name: &str, h: &Histogram<u64>) {
    println!(
        "  {name:<44} n={:<6} p50={:>8.2} ms  p99={:>8.2} ms  max={:>8.2} ms",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

async fn signed_get(http: &reqwest::Client, base: &str, path: &str, accept: Option<&str>) {
    let resp = Signer::new(PARTNER)
        .send(
            http,
            reqwest::Method::GET,
            base,
            path,
            None,
            chrono::Utc::now(),
            accept,
        )
        .await;
    let status = resp.status();
    let body = resp.bytes().await.unwrap();
    assert!(
        status.is_success(),
        "{path}: {status} {}",
        String::from_utf8_lossy(&body)
    );
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let rows = opt(args, "rows", 100_000_000);
    let accounts = opt(args, "accounts", 250_000);
    let orders = opt(args, "orders", 10_000_000);
    let samples = opt(args, "samples", 2000);
    let clients = opt(args, "clients", 8);
    let reseed = opt(args, "reseed", 0) == 1;
    let with_reports = opt(args, "reports", 1) == 1;
    let with_latency = opt(args, "latency", 1) == 1;
    let days = rows.div_ceil(accounts);
    let start: chrono::NaiveDate = START.parse()?;
    let last = start + chrono::Days::new(days - 1);

    println!("seeding Postgres: {accounts} accounts with positions");
    let url = seed_postgres(accounts).await?;
    println!(
        "seeding ClickHouse: {rows} journal rows ({accounts} accounts x {days} days, {START}..{last}), {orders} orders"
    );
    let ch = mmf_shared::ch::client_for(CH_URL, DB);
    if !seed_clickhouse(&ch, rows, accounts, orders, days, reseed).await? {
        println!("  reusing the existing seed (reseed=1 to rebuild)");
    }
    settle(&ch).await?;

    let config = Config {
        common: Common {
            database_url: url,
            db_pool: 16,
            clickhouse_url: CH_URL.into(),
            clickhouse_db: DB.into(),
            ops_token: "bench-ops-token".into(),
            simulated_clock: false,
        },
        addr: "127.0.0.1:0".into(),
        statement_max_days: 366,
        cursor_key: mmf_query::DEV_CURSOR_KEY.into(),
    };
    let state = AppState::new(config, Clock::system())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, build_app(state)).await });
    let http = reqwest::Client::new();

    let year_from = last - chrono::Days::new(364);
    println!("latency ({samples} requests each; 1 client, then {clients} concurrent clients):");
    let rounds: &[u64] = if with_latency { &[1, clients] } else { &[] };
    for &c in rounds {
        println!(" clients={c}");
        let (h, b) = (http.clone(), base.clone());
        let hist = measure(samples, c, move |_| {
            let (h, b) = (h.clone(), b.clone());
            async move {
                let r = h.get(format!("{b}/health")).send().await.unwrap();
                assert!(r.status().is_success());
            }
        })
        .await;
        line("baseline: GET /health (HTTP + PG SELECT 1)", &hist);
        let (h, b) = (http.clone(), base.clone());
        let hist = measure(samples, c, move |_| {
            let (h, b) = (h.clone(), b.clone());
            async move {
                let i = rand::thread_rng().gen_range(0..accounts);
                signed_get(
                    &h,
                    &b,
                    &format!("/v1/accounts/{}/balance?fund_code={FUND}", account(i)),
                    None,
                )
                .await
            }
        })
        .await;
        line("balance", &hist);
        let chc = ch.clone();
        let hist = measure(samples, c, move |_| {
            let chc = chc.clone();
            async move {
                let _: u8 = chc.query("SELECT 1").fetch_one().await.unwrap();
            }
        })
        .await;
        line("baseline: ClickHouse SELECT 1 round trip", &hist);
        for (name, extra, accept) in [
            ("statement, 1 year, first page (100)", "", None),
            (
                "statement, 1 year, first page + balances",
                "&balances=true",
                None,
            ),
            ("statement, 1 year, one page of 1000", "&limit=1000", None),
            ("statement, 1 year, CSV", "", Some("text/csv")),
        ] {
            let (h, b) = (http.clone(), base.clone());
            let hist = measure(samples, c, move |_| {
                let (h, b) = (h.clone(), b.clone());
                async move {
                    let i = rand::thread_rng().gen_range(0..accounts);
                    signed_get(
                        &h,
                        &b,
                        &format!(
                            "/v1/accounts/{}/statement?fund_code={FUND}&from={year_from}&to={last}{extra}",
                            account(i)
                        ),
                        accept,
                    )
                    .await
                }
            })
            .await;
            line(name, &hist);
        }
    }

    if with_reports {
        let day = start + chrono::Days::new(days / 2);
        println!("reports for {day} (GET /v1/reports/{{name}}, one run each):");
        for r in mmf_query::reports::REPORTS {
            let t = Instant::now();
            let resp = http
                .get(format!("{base}/v1/reports/{}?date={day}", r.name))
                .bearer_auth("bench-ops-token")
                .timeout(Duration::from_secs(1800))
                .send()
                .await?;
            let status = resp.status();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let n = body["rows"].as_array().map(|a| a.len()).unwrap_or(0);
            println!(
                "  {:<24} {status} {n:>6} rows in {:>8.2} s{}",
                r.name,
                t.elapsed().as_secs_f64(),
                if status.is_success() {
                    String::new()
                } else {
                    format!(" {body}")
                }
            );
        }
    }
    Ok(())
}
