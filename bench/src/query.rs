//! Read-side latency with a large history: balance (Postgres position row) and one-year
//! statement (ClickHouse) p50/p99 through the real HTTP API. (Reports and balances as of a
//! past day read daily holdings: `mmf-bench holdings`.)
//! Baselines in the same run: `/health` (HTTP + Postgres `SELECT 1`) for the balance and a
//! ClickHouse `SELECT 1` round trip for the statement; the statement's first page is also read
//! straight from ClickHouse from both journal layouts (`unit_journal`, `journal_by_account`).
//!
//! History is seeded on the server with `INSERT ... SELECT FROM numbers()`: `rows` journal
//! entries (one per account and day: daily income plus subscriptions and fast redemptions)
//! over `accounts` accounts and `days` days, `orders` orders, and the funds' daily income.
//! An existing seed of the same size is reused (`reseed=1` forces a new one).
//!
//! Options (key=value): rows=100000000 accounts=250000 orders=10000000 samples=2000 clients=8
//! reseed=0 latency=1 (0 skips the latency part) compact=1 (then merges the closed years of
//! `journal_by_account` as the sync worker does, and measures again; 0 skips it)

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
pub(crate) const PARTNER: &str = "p1";
/// The first day of history; the seed covers `days` days from here.
const START: &str = "2025-10-01";

/// The options of a run and the history they make.
struct Settings {
    rows: u64,
    accounts: u64,
    orders: u64,
    samples: u64,
    clients: u64,
    reseed: bool,
    latency: bool,
    /// Measure again after the sync worker's merge of closed years.
    compact: bool,
    /// Days of history: one journal entry per account and day.
    days: u64,
    last: chrono::NaiveDate,
}

impl Settings {
    fn from_args(args: &[String]) -> anyhow::Result<Self> {
        let rows = opt(args, "rows", 100_000_000);
        let accounts = opt(args, "accounts", 250_000);
        let days = rows.div_ceil(accounts);
        let start: chrono::NaiveDate = START.parse()?;
        Ok(Self {
            rows,
            accounts,
            orders: opt(args, "orders", 10_000_000),
            samples: opt(args, "samples", 2000),
            clients: opt(args, "clients", 8),
            reseed: opt(args, "reseed", 0) == 1,
            latency: opt(args, "latency", 1) == 1,
            compact: opt(args, "compact", 1) == 1,
            days,
            last: start + chrono::Days::new(days - 1),
        })
    }
}

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
    let (url, pg) = seed_accounts(DB, accounts, "now()").await?;
    pg.batch_execute(&format!(
        "INSERT INTO positions (account_id, fund_code, units, cum_income, last_income, last_income_date)
             SELECT (100000000000 + i)::text, '{FUND}', 1000 + i % 100000, 12.34, 0.12,
                    current_date - 1
             FROM generate_series(0, {n}) i;
         ANALYZE;",
        n = accounts - 1
    ))
    .await?;
    Ok(url)
}

/// A fresh, migrated Postgres database `db` with partner [`PARTNER`] (its test secret), fund
/// [`FUND`] and `accounts` accounts numbered from 100000000000, opened at `opened_at` (an SQL
/// expression). Returns its URL and a connection to it.
pub(crate) async fn seed_accounts(
    db: &str,
    accounts: u64,
    opened_at: &str,
) -> anyhow::Result<(String, tokio_postgres::Client)> {
    let url = recreate(db).await?;
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
                    '110105199001010011', '110105********0011', {opened_at}
             FROM generate_series(0, {n}) i;",
        n = accounts - 1
    ))
    .await?;
    Ok((url, pg))
}

/// Seeds ClickHouse unless a seed of this size is there already. Returns whether it seeded.
async fn seed_clickhouse(ch: &clickhouse::Client, s: &Settings) -> anyhow::Result<bool> {
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
    if !s.reseed && have == s.rows && have_orders == s.orders {
        // Tables a newer schema adds (the runner applies only what is missing).
        mmf_shared::ch::migrate(&mmf_shared::ch::client(CH_URL), DB).await?;
        return Ok(false);
    }
    mmf_shared::ch::client(CH_URL)
        .query(&format!("DROP DATABASE IF EXISTS {DB}"))
        .execute()
        .await?;
    mmf_shared::ch::migrate(&mmf_shared::ch::client(CH_URL), DB).await?;
    insert_accounts_and_fund(ch, s).await?;
    insert_journal(ch, s).await?;
    insert_orders(ch, s).await?;
    Ok(true)
}

/// The accounts, the fund and the fund's daily income over every day of the history.
async fn insert_accounts_and_fund(ch: &clickhouse::Client, s: &Settings) -> anyhow::Result<()> {
    let (accounts, days) = (s.accounts, s.days);
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
    .await
}

/// `rows` journal entries. Entry n: account n mod A on day n div A. Every 13th a subscription
/// of 1,000.00, every 29th a fast redemption of 10.00, the rest daily income of 0.05 to 0.11.
async fn insert_journal(ch: &clickhouse::Client, s: &Settings) -> anyhow::Result<()> {
    let (rows, accounts) = (s.rows, s.accounts);
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
    Ok(())
}

/// `orders` confirmed orders spread evenly over the days of the history.
async fn insert_orders(ch: &clickhouse::Client, s: &Settings) -> anyhow::Result<()> {
    let (orders, accounts) = (s.orders, s.accounts);
    let started = Instant::now();
    let per_day = (orders / s.days).max(1);
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
    Ok(())
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
    println!(
        "  merges settled after {:.0} s",
        started.elapsed().as_secs_f64()
    );
    for table in ["unit_journal", "journal_by_account"] {
        let (parts, partitions): (u64, u64) = ch
            .query(
                "SELECT count(), uniqExact(partition) FROM system.parts
                 WHERE database = ? AND table = ? AND active",
            )
            .bind(DB)
            .bind(table)
            .fetch_one()
            .await?;
        println!("  {table}: {parts} active parts in {partitions} partitions");
    }
    Ok(())
}

/// Calls each client makes before it records any. The first calls open the client's
/// connections and the service's (its Postgres and ClickHouse pools open connections as they
/// are first needed), which a running service has open long since: with 8 clients and 400
/// samples, those 8 cold calls alone would be the p99.
const WARM_UP: u64 = 10;

/// Runs `f` `samples` times across `clients` concurrent loops, after `WARM_UP` unrecorded calls
/// per client; latencies in microseconds.
pub(crate) async fn measure<F, Fut>(samples: u64, clients: u64, f: F) -> Histogram<u64>
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
            for i in 0..WARM_UP {
                f(c * per + i % per.max(1)).await;
            }
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

pub(crate) fn line(name: &str, h: &Histogram<u64>) {
    println!(
        "  {name:<44} n={:<6} p50={:>8.2} ms  p99={:>8.2} ms  max={:>8.2} ms",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

pub(crate) async fn signed_get(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    accept: Option<&str>,
) {
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
    let s = Settings::from_args(args)?;
    let (url, ch) = seed(&s).await?;
    let base = start_service(url, DB).await?;
    let api = Api {
        http: reqwest::Client::new(),
        base,
        accounts: s.accounts,
    };
    measure_latency(&s, &api, &ch).await;
    if s.compact {
        println!(
            "the sync worker's merge of closed years (mmf_sync::compact, as of {}):",
            s.last
        );
        let started = Instant::now();
        let years = mmf_sync::compact::merge_closed_years(&ch, s.last).await?;
        println!(
            "  merged {years:?} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        settle(&ch).await?;
        measure_latency(&s, &api, &ch).await;
    }
    Ok(())
}

/// Seeds both stores and waits for ClickHouse to finish merging; returns the Postgres URL and
/// a ClickHouse client for the benchmark database.
async fn seed(s: &Settings) -> anyhow::Result<(String, clickhouse::Client)> {
    let (rows, accounts, days, orders, last) = (s.rows, s.accounts, s.days, s.orders, s.last);
    println!("seeding Postgres: {accounts} accounts with positions");
    let url = seed_postgres(accounts).await?;
    println!(
        "seeding ClickHouse: {rows} journal rows ({accounts} accounts x {days} days, {START}..{last}), {orders} orders"
    );
    let ch = mmf_shared::ch::client_for(CH_URL, DB);
    if !seed_clickhouse(&ch, s).await? {
        println!("  reusing the existing seed (reseed=1 to rebuild)");
    }
    settle(&ch).await?;
    Ok((url, ch))
}

/// Starts the query service on the seeded stores (ClickHouse database `db`); returns its base
/// URL.
pub(crate) async fn start_service(database_url: String, db: &str) -> anyhow::Result<String> {
    let config = Config {
        common: Common {
            database_url,
            db_pool: 16,
            clickhouse_url: CH_URL.into(),
            clickhouse_db: db.into(),
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
    Ok(base)
}

/// The query service under test; each request owns a clone, as `measure` runs it on a task.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    accounts: u64,
}

impl Api {
    /// `GET /health`: HTTP and a Postgres `SELECT 1`.
    async fn health(self) {
        let r = self
            .http
            .get(format!("{}/health", self.base))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// The balance of a random account.
    async fn balance(self) {
        let i = rand::thread_rng().gen_range(0..self.accounts);
        signed_get(
            &self.http,
            &self.base,
            &format!("/v1/accounts/{}/balance?fund_code={FUND}", account(i)),
            None,
        )
        .await
    }

    /// The statement of a random account from `from` to `to`, with `extra` query parameters.
    async fn statement(
        self,
        (from, to): (chrono::NaiveDate, chrono::NaiveDate),
        extra: &str,
        accept: Option<&str>,
    ) {
        let i = rand::thread_rng().gen_range(0..self.accounts);
        signed_get(
            &self.http,
            &self.base,
            &format!(
                "/v1/accounts/{}/statement?fund_code={FUND}&from={from}&to={to}{extra}",
                account(i)
            ),
            accept,
        )
        .await
    }
}

/// A ClickHouse `SELECT 1` round trip.
pub(crate) async fn ch_round_trip(ch: clickhouse::Client) {
    let _: u8 = ch.query("SELECT 1").fetch_one().await.unwrap();
}

/// Latencies with one client, then with `clients` concurrent clients (none with `latency=0`).
async fn measure_latency(s: &Settings, api: &Api, ch: &clickhouse::Client) {
    let (samples, clients) = (s.samples, s.clients);
    println!("latency ({samples} requests each; 1 client, then {clients} concurrent clients):");
    let rounds: &[u64] = if s.latency { &[1, clients] } else { &[] };
    for &c in rounds {
        latency_round(s, api, ch, c).await;
    }
}

/// Each request kind `samples` times across `c` concurrent clients, next to its baseline.
async fn latency_round(s: &Settings, api: &Api, ch: &clickhouse::Client, c: u64) {
    println!(" clients={c}");
    let a = api.clone();
    let hist = measure(s.samples, c, move |_| a.clone().health()).await;
    line("baseline: GET /health (HTTP + PG SELECT 1)", &hist);
    let a = api.clone();
    let hist = measure(s.samples, c, move |_| a.clone().balance()).await;
    line("balance", &hist);
    let chc = ch.clone();
    let hist = measure(s.samples, c, move |_| ch_round_trip(chc.clone())).await;
    line("baseline: ClickHouse SELECT 1 round trip", &hist);
    let year = (s.last - chrono::Days::new(364), s.last);
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
        let a = api.clone();
        let hist = measure(s.samples, c, move |_| {
            a.clone().statement(year, extra, accept)
        })
        .await;
        line(name, &hist);
    }
    layout_round(s, ch, c).await;
}

/// The first page of a one-year statement read straight from ClickHouse, from the journal as
/// shipped (`unit_journal`, monthly partitions) and as laid out for statements
/// (`journal_by_account`): the layout choice of docs/decisions/0034, in the same run; and from
/// the layout over the first 101 days of the year only, as the query service reads a page.
async fn layout_round(s: &Settings, ch: &clickhouse::Client, c: u64) {
    for (table, window) in [
        ("unit_journal", None),
        ("journal_by_account", None),
        ("journal_by_account", Some(101)),
    ] {
        let from = s.last - chrono::Days::new(364);
        let to = window.map_or(s.last, |days| from + chrono::Days::new(days - 1));
        let sql = Arc::new(format!(
            "SELECT count() FROM (
                 SELECT entry_id, toString(effective_date) AS d, fund_code, kind, order_id,
                        toString(units) AS u, toString(booked_at) AS b
                 FROM {table}
                 WHERE account_id = ? AND effective_date >= toDate(?) AND effective_date <= toDate(?)
                   AND fund_code = ?
                 ORDER BY effective_date, entry_id LIMIT 1 BY entry_id LIMIT 101)"
        ));
        let ch = ch.clone();
        let accounts = s.accounts;
        let hist = measure(s.samples, c, move |_| {
            let (ch, sql) = (ch.clone(), sql.clone());
            async move {
                let i = rand::thread_rng().gen_range(0..accounts);
                let n: u64 = ch
                    .query(&sql)
                    .bind(account(i))
                    .bind(from.to_string())
                    .bind(to.to_string())
                    .bind(FUND)
                    .fetch_one()
                    .await
                    .unwrap();
                assert_eq!(n, 101, "a full first page");
            }
        })
        .await;
        let window = window.map_or(String::new(), |d| format!(", its first {d} days"));
        line(
            &format!("ClickHouse only: 1-year first page from {table}{window}"),
            &hist,
        );
    }
}
