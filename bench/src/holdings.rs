//! Daily holdings at scale: one day's build for every holder, and balances as of past days.
//!
//! Seeds ClickHouse on the server with `INSERT ... SELECT FROM numbers()`: `days` days of
//! daily holdings for `accounts` accounts (ending the day before yesterday), and the movements
//! of the next day — each holder's income paid that day, `orders` subscriptions and as many
//! redemptions over random accounts, and the day's income paid the day after. Postgres gets
//! the accounts and the built days. Then:
//! - builds that day with the sync worker's statements (`mmf_sync::holdings::build_daily`,
//!   fund by fund), twice, next to two baselines over the same rows in the same run:
//!   `SELECT count()` over the build's input, and a bare `INSERT ... SELECT` copy of the
//!   previous day's rows;
//! - `GET /v1/accounts/{id}/balance?as_of=` of a random account and past day through the query
//!   service, 1 client then `clients`, next to `/health` and a ClickHouse `SELECT 1`;
//! - every report (`GET /v1/reports/{name}`) for the last seeded day, for the last `range_days`
//!   days in one call (`from=&to=`), and for each of those days in turn (checked to answer the
//!   range's rows), over `history_orders` orders spread over the seeded days (fast
//!   redemptions, subscriptions and redemptions, some over the AML thresholds), next to a
//!   `SELECT count()` of that day's holdings and orders.
//!
//! Options: accounts=10000000 days=30 orders=1000000 history_orders=10000000 peak_orders=0
//! (more orders on the last seeded day, e.g. the 30M of a peak day) samples=2000
//! clients=8 reseed=0 build=1 reports=1 (0 skips that part) range_days=days (how many of the
//! last days each report also runs for as a range)

use crate::opt;
use crate::query::{
    ch_round_trip, line, measure, seed_accounts, signed_get, start_service, PARTNER,
};
use anyhow::Context;
use chrono::{Days, NaiveDate};
use mmf_tests::FUND;
use rand::Rng;
use std::time::{Duration, Instant};

const DB: &str = "mmf_bench_holdings";
const CH_URL: &str = "http://127.0.0.1:8123";

struct Settings {
    accounts: u64,
    days: u64,
    orders: u64,
    history_orders: u64,
    /// Orders on the last seeded day besides its share of `history_orders` (a peak day).
    peak_orders: u64,
    samples: u64,
    clients: u64,
    reseed: bool,
    /// Days each report is also run for as a range (the last `range_days` seeded days).
    range_days: u64,
    /// The first seeded day; the last is the day before yesterday.
    first: NaiveDate,
    /// The day built: yesterday.
    day: NaiveDate,
}

fn account(i: u64) -> String {
    format!("{}", 100_000_000_000u64 + i)
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let days = opt(args, "days", 30);
    let today = mmf_domain::calendar::business_date(chrono::Utc::now());
    let day = today - Days::new(1);
    let s = Settings {
        accounts: opt(args, "accounts", 10_000_000),
        days,
        orders: opt(args, "orders", 1_000_000),
        history_orders: opt(args, "history_orders", 10_000_000),
        peak_orders: opt(args, "peak_orders", 0),
        samples: opt(args, "samples", 2000),
        clients: opt(args, "clients", 8),
        reseed: opt(args, "reseed", 0) == 1,
        range_days: opt(args, "range_days", days).min(days),
        first: day - Days::new(days),
        day,
    };
    let ch = mmf_shared::ch::client_for(CH_URL, DB);
    let url = format!("postgres://postgres@127.0.0.1:5432/{DB}");
    if s.reseed || !seeded(&ch, &s).await {
        seed_postgres(&s).await?;
        seed_clickhouse(&ch, &s).await?;
    } else {
        println!("reusing the seed of {DB} (reseed=1 to rebuild)");
    }
    settle(&ch).await?;
    if opt(args, "build", 1) == 1 {
        build(&ch, &s).await?;
    }
    let base = start_service(url, DB).await?;
    as_of_latency(&s, &base, &ch).await;
    if opt(args, "reports", 1) == 1 {
        reports(&s, &base, &ch).await?;
    }
    Ok(())
}

/// Whether ClickHouse holds a seed of this size.
async fn seeded(ch: &clickhouse::Client, s: &Settings) -> bool {
    let rows: (u64, u64) = ch
        .query(
            "SELECT (SELECT count() FROM daily_holdings WHERE day < toDate(?)), \
                    (SELECT count() FROM orders)",
        )
        .bind(s.day.to_string())
        .fetch_one()
        .await
        .unwrap_or((0, 0));
    rows == (s.accounts * s.days, s.history_orders + s.peak_orders)
}

async fn timed<T>(
    label: &str,
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, f64)> {
    let t = Instant::now();
    let v = f.await.with_context(|| label.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    println!("  {label}: {secs:.1} s");
    Ok((v, secs))
}

async fn seed_postgres(s: &Settings) -> anyhow::Result<()> {
    let (first, last) = (s.first, s.day - Days::new(1));
    timed("Postgres: accounts and built days", async {
        let opened = format!("'{first}'::date - 1");
        let (_, pg) = seed_accounts(DB, s.accounts, &opened).await?;
        pg.batch_execute(&format!(
            "INSERT INTO holdings_days (day, positions, units, income, seconds)
                 SELECT d, {accounts}, 0, 0, 0 FROM generate_series('{first}'::date, '{last}', '1 day') d;
             INSERT INTO flows_days (day, persons, orders, seconds)
             SELECT d, 0, 0, 0 FROM generate_series('{first}'::date, '{last}', '1 day') d;
             ANALYZE;",
            accounts = s.accounts
        ))
        .await?;
        anyhow::Ok(())
    })
    .await?;
    Ok(())
}

/// Holdings of every seeded day, then the built day's movements in the journal by day.
async fn seed_clickhouse(ch: &clickhouse::Client, s: &Settings) -> anyhow::Result<()> {
    crate::recreate_ch(DB).await?;
    let (accounts, days, first) = (s.accounts, s.days, s.first);
    // Account i holds 1000 + i % 100000 yuan on the first day and earns (1 + i % 7) fen a day.
    // Day by day, in account order, one part a day: as the build writes a day.
    let one_part = mmf_sync::holdings::one_part(ch);
    timed(
        &format!("ClickHouse: {} holdings rows ({accounts} accounts x {days} days)", accounts * days),
        async {
            for d in 0..days {
                one_part
                    .query(&format!(
                        "INSERT INTO daily_holdings \
                         SELECT toDate('{first}') + intDiv(number, {accounts}) AS day, '{FUND}', \
                                toString(100000000000 + number % {accounts}), {key}, \
                                toDecimal64((1000 + number % {accounts} % 100000) * 100 \
                                    + (1 + number % {accounts} % 7) * intDiv(number, {accounts}), 2) / 100, \
                                toDecimal64(0, 2), toDecimal64(0, 2), \
                                toDecimal64(1 + number % {accounts} % 7, 2) / 100, \
                                toDecimal64((1 + number % {accounts} % 7) * (1 + intDiv(number, {accounts})), 2) / 100 \
                         FROM (SELECT number + {offset} AS number FROM numbers({accounts}))",
                        offset = d * accounts,
                        key = investor_key(&format!("number % {accounts}"), accounts),
                    ))
                    .execute()
                    .await?;
            }
            anyhow::Ok(())
        },
    )
    .await?;
    history(ch, s).await?;
    timed(
        &format!("ClickHouse: holdings per person and the order read models of {days} days"),
        async {
            for d in 0..days {
                let day = first + Days::new(d);
                mmf_sync::holdings::build_per_person(ch, day).await?;
                for sql in mmf_sync::flows::build_sql(day) {
                    ch.query(&sql).execute().await?;
                }
            }
            anyhow::Ok(())
        },
    )
    .await?;
    let (day, next) = (s.day, s.day + Days::new(1));
    let orders = s.orders;
    timed(
        &format!("ClickHouse: {day}'s movements ({accounts} income rows, {orders} subscriptions, {orders} redemptions) and its income paid {next}"),
        async {
            for sql in [
                format!(
                    "INSERT INTO journal_by_day SELECT toDate('{day}'), toString(100000000000 + number), '{FUND}', \
                     number, 'income', toDecimal64(1 + number % 7, 2) / 100 FROM numbers({accounts})"
                ),
                format!(
                    "INSERT INTO journal_by_day SELECT toDate('{day}'), toString(100000000000 + (number * 7919) % {accounts}), \
                     '{FUND}', {accounts} + number, if(number % 2 = 0, 'subscription', 'redemption'), \
                     if(number % 2 = 0, toDecimal64(100, 2), toDecimal64(-1, 2)) FROM numbers({})",
                    2 * orders
                ),
                format!(
                    "INSERT INTO journal_by_day SELECT toDate('{next}'), toString(100000000000 + number), '{FUND}', \
                     {accounts} + {} + number, 'income', toDecimal64(1 + number % 7, 2) / 100 FROM numbers({accounts})",
                    2 * orders
                ),
            ] {
                ch.query(&sql).execute().await?;
            }
            anyhow::Ok(())
        },
    )
    .await?;
    Ok(())
}

/// Waits until background merges are done, so they do not share the measured steps' cores.
async fn settle(ch: &clickhouse::Client) -> anyhow::Result<()> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(1800) {
        let merging: u64 = ch
            .query("SELECT count() FROM system.merges WHERE database = ?")
            .bind(DB)
            .fetch_one()
            .await?;
        if merging == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

/// The day's build, twice (the worker drops a day's partition before building it), next to
/// its baselines.
async fn build(ch: &clickhouse::Client, s: &Settings) -> anyhow::Result<()> {
    let (day, prev) = (s.day, s.day - Days::new(1));
    println!("holdings of {day} for {} accounts:", s.accounts);
    let (input, counted, copied) = baselines(ch, day).await?;
    println!("  baseline: SELECT count() over the build's input ({input} rows): {counted:.1} s");
    println!("  baseline: INSERT SELECT of the previous day's rows as they are: {copied:.1} s");
    for round in 1..=2 {
        mmf_sync::holdings::drop_day(ch, day).await?;
        settle(ch).await?;
        let ((), built) = timed(
            &format!("mmf-ta build, run {round}: daily holdings"),
            mmf_sync::holdings::build_daily(ch, day),
        )
        .await?;
        let ((), persons) = timed(
            &format!("mmf-ta build, run {round}: holdings per person"),
            mmf_sync::holdings::build_per_person(ch, day),
        )
        .await?;
        println!(
            "    {input} input rows; daily holdings {:.2}× the count, {:.2}× the copy; \
             with the holdings per person {:.1} s, {:.2}× the copy",
            built / counted,
            built / copied,
            built + persons,
            (built + persons) / copied
        );
    }
    let (n, units, income) = mmf_sync::holdings::totals(ch, day).await?;
    let (pn, punits, _) = mmf_sync::holdings::totals(ch, prev).await?;
    let moved: i64 = ch
        .query(
            "SELECT toInt64(sum(units) * 100) FROM journal_by_day FINAL WHERE effective_date = toDate(?)",
        )
        .bind(day.to_string())
        .fetch_one()
        .await?;
    anyhow::ensure!(
        n == pn && units == punits + moved,
        "{day}: {n} rows, {units} fen; previous day {pn} rows, {punits} fen, moved {moved} fen"
    );
    println!(
        "    check: {n} positions, units = previous day + the day's movements ({} yuan), income {} yuan",
        mmf_shared::ch::from_fen(units),
        mmf_shared::ch::from_fen(income)
    );
    Ok(())
}

async fn as_of_latency(s: &Settings, base: &str, ch: &clickhouse::Client) {
    let (samples, clients) = (s.samples, s.clients);
    println!(
        "balance as_of a past day ({samples} requests each; random account and day of {}..{}):",
        s.first,
        s.day - Days::new(2)
    );
    for c in [1, clients] {
        println!(" clients={c}");
        let (b, http) = (base.to_string(), reqwest::Client::new());
        let h = measure(samples, c, move |_| {
            let (b, http) = (b.clone(), http.clone());
            async move {
                let r = http.get(format!("{b}/health")).send().await.unwrap();
                assert!(r.status().is_success());
            }
        })
        .await;
        line("baseline: GET /health (HTTP + PG SELECT 1)", &h);
        let chc = ch.clone();
        let h = measure(samples, c, move |_| ch_round_trip(chc.clone())).await;
        line("baseline: ClickHouse SELECT 1 round trip", &h);
        let (b, http) = (base.to_string(), reqwest::Client::new());
        let (accounts, first, span) = (s.accounts, s.first, s.days - 1);
        let h = measure(samples, c, move |_| {
            let (b, http) = (b.clone(), http.clone());
            let (i, d) = {
                let mut rng = rand::thread_rng();
                (rng.gen_range(0..accounts), rng.gen_range(0..span))
            };
            async move {
                let path = format!(
                    "/v1/accounts/{}/balance?fund_code={FUND}&as_of={}",
                    account(i),
                    first + Days::new(d)
                );
                signed_get(&http, &b, &path, None).await
            }
        })
        .await;
        line("balance as_of (daily holdings)", &h);
    }
}

/// The investor key of the account with index `account` (an SQL expression): one person in
/// ten holds two accounts.
fn investor_key(account: &str, accounts: u64) -> String {
    let people = accounts - accounts / 10;
    format!("MD5(toString(({account}) % {people}))")
}

/// What the reports read besides holdings: accounts, the fund, its daily income,
/// `history_orders` orders spread evenly over the seeded days and `peak_orders` more on the
/// last one (70% fast redemptions, 20% subscriptions, 10% redemptions; one in a thousand at
/// 600,000 yuan).
async fn history(ch: &clickhouse::Client, s: &Settings) -> anyhow::Result<()> {
    let (accounts, days, first, n, peak) =
        (s.accounts, s.days, s.first, s.history_orders, s.peak_orders);
    let per_day = n.div_ceil(days);
    let last = s.day - Days::new(1);
    let label = format!("ClickHouse: accounts, fund, income and {n} orders (+{peak} on {last})");
    timed(&label, async {
        let mut statements = vec![
            format!(
                "INSERT INTO accounts SELECT toString(100000000000 + number), '{PARTNER}', \
                 concat('c', toString(number)), 'Bench', 'resident_id', '110105********0011', \
                 {key}, toDateTime(toDate('{first}') - 1), number, 1 FROM numbers({accounts})",
                key = investor_key("number", accounts)
            ),
            format!(
                "INSERT INTO funds VALUES ('{FUND}', 'Bench MMF', 1, 1000000, 5000000, 10000, \
                 'redistribute', now(), 1, 1)"
            ),
            format!(
                "INSERT INTO fund_income SELECT '{FUND}', toDate('{first}') + number, \
                 toDecimal64(6500, 4) / 10000, NULL, number, 1 FROM numbers({days})"
            ),
            orders_sql(
                s,
                0,
                n,
                &format!("toDate('{first}') + intDiv(number, {per_day})"),
            ),
        ];
        // 18.16 reads `numbers(0)` as every number there is: no peak, no statement.
        if peak > 0 {
            statements.push(orders_sql(s, n, peak, &format!("toDate('{last}')")));
        }
        for sql in statements {
            ch.query(&sql).execute().await?;
        }
        anyhow::Ok(())
    })
    .await?;
    Ok(())
}

/// `n` orders numbered from `from + 1`, accepted on the date `day` (an SQL expression of
/// `number`) between 10:00 and 15:00.
fn orders_sql(s: &Settings, from: u64, n: u64, day: &str) -> String {
    let accounts = s.accounts;
    format!(
        "INSERT INTO orders (order_id, partner_id, request_id, account_id, fund_code, kind, \
                             purpose, amount, status, trade_date, effective_date, accepted_at, \
                             confirmed_at, cancelled_at, txid, version, investor_key) \
         SELECT number + 1, '{PARTNER}', toString(number), \
                toString(100000000000 + (number * 7919) % {accounts}), '{FUND}', \
                multiIf(number % 10 < 7, 'fast_redemption', number % 10 < 9, 'subscription', 'redemption'), \
                if(number % 10 < 7, if(number % 2 = 0, 'withdrawal', 'payment'), ''), \
                if(number % 1000 = 7, toDecimal64(600000, 2), \
                   toDecimal64(100 + (number * 7919) % 1000000, 2) / 100), \
                'confirmed', {day}, NULL, toDateTime({day}) + 36000 + number % 18000, \
                NULL, NULL, number, 1, {key} \
         FROM (SELECT number + {from} AS number FROM numbers({n}))",
        key = investor_key(&format!("(number * 7919) % {accounts}"), accounts)
    )
}

/// Every report for the last seeded day, then for the last `range_days` days as one range and
/// each of them in turn, next to counting that day's holdings and orders.
async fn reports(s: &Settings, base: &str, ch: &clickhouse::Client) -> anyhow::Result<()> {
    let last = s.day - Days::new(1);
    let (holdings, orders): (u64, u64) = ch
        .query(
            "SELECT (SELECT count() FROM daily_holdings WHERE day = toDate(?)), \
                    (SELECT count() FROM orders_by_day WHERE day = toDate(?))",
        )
        .bind(last.to_string())
        .bind(last.to_string())
        .fetch_one()
        .await?;
    let t = Instant::now();
    let _: u64 = ch
        .query("SELECT count() FROM daily_holdings WHERE day = toDate(?)")
        .bind(last.to_string())
        .fetch_one()
        .await?;
    println!(
        "reports ({holdings} holdings and {orders} orders on {last}; baseline SELECT count() of \
         the day's holdings {:.3} s):",
        t.elapsed().as_secs_f64()
    );
    let http = reqwest::Client::new();
    let report = |name: &'static str, range: String| {
        let http = http.clone();
        let url = format!("{base}/v1/reports/{name}?{range}");
        async move {
            let t = Instant::now();
            let resp = http
                .get(url)
                .bearer_auth("bench-ops-token")
                .timeout(Duration::from_secs(1800))
                .send()
                .await?;
            let status = resp.status();
            let body: serde_json::Value = resp.json().await?;
            anyhow::ensure!(status.is_success(), "{name} {range}: {status} {body}");
            let rows = body["rows"].as_array().cloned().unwrap_or_default();
            anyhow::Ok((rows, t.elapsed().as_secs_f64()))
        }
    };
    let (from, to) = (s.first + Days::new(s.days - s.range_days), last);
    for r in mmf_query::reports::REPORTS {
        let (rows, one) = report(r.name, format!("date={last}")).await?;
        let (mut days, mut month) = (Vec::new(), 0.0);
        for day in from.iter_days().take_while(|d| *d <= to) {
            let (rows, secs) = report(r.name, format!("date={day}")).await?;
            days.extend(rows);
            month += secs;
        }
        let (range, secs) = report(r.name, format!("from={from}&to={to}")).await?;
        anyhow::ensure!(
            range == days,
            "{}: the range {from}..{to} differs from its days in turn",
            r.name
        );
        println!(
            "  {:<24} {last}: {:>6} rows in {one:>6.2} s; {from}..{to}: {:>7} rows in {secs:>6.2} s \
             (each day in turn: {month:>6.1} s, the same rows)",
            r.name,
            rows.len(),
            range.len()
        );
        if r.from_flows.is_some() {
            // What the service runs for a day whose flows are not built yet.
            let t = Instant::now();
            ch.query(&mmf_query::reports::sql(r, last, last, false))
                .with_setting(
                    "max_bytes_before_external_group_by",
                    mmf_query::reports::GROUP_BY_SPILL_BYTES,
                )
                .fetch_bytes("TabSeparated")?
                .collect()
                .await?;
            println!(
                "  {:<24} {last} grouping the day's orders instead (days not final yet): {:.2} s",
                "",
                t.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Two baselines over the rows a build of `day` reads, timed: `SELECT count()` of them (returns
/// the count too) and a bare `INSERT … SELECT` copy of the previous day's rows into a table of
/// the same layout.
pub(crate) async fn baselines(
    ch: &clickhouse::Client,
    day: NaiveDate,
) -> anyhow::Result<(u64, f64, f64)> {
    let (prev, next) = (day - Days::new(1), day + Days::new(1));
    let t = Instant::now();
    let input: u64 = ch
        .query(
            "SELECT count() FROM ( \
               SELECT 1 FROM daily_holdings WHERE day = toDate(?) \
               UNION ALL SELECT 1 FROM journal_by_day FINAL \
                 WHERE effective_date = toDate(?) AND kind != 'income' \
               UNION ALL SELECT 1 FROM journal_by_day FINAL \
                 WHERE effective_date = toDate(?) AND kind = 'income')",
        )
        .bind(prev.to_string())
        .bind(day.to_string())
        .bind(next.to_string())
        .fetch_one()
        .await
        .context("counting the build's input")?;
    let counted = t.elapsed().as_secs_f64();
    ch.query("DROP TABLE IF EXISTS holdings_floor")
        .execute()
        .await?;
    ch.query("CREATE TABLE holdings_floor AS daily_holdings")
        .execute()
        .await?;
    let t = Instant::now();
    ch.query("INSERT INTO holdings_floor SELECT * FROM daily_holdings WHERE day = toDate(?)")
        .bind(prev.to_string())
        .execute()
        .await
        .context("copying the previous day")?;
    let copied = t.elapsed().as_secs_f64();
    ch.query("DROP TABLE holdings_floor").execute().await?;
    Ok((input, counted, copied))
}
