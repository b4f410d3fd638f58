//! The daily holdings the sync worker builds after each distributed day, timed next to two
//! baselines over the same rows in the same run, and checked against Postgres.

use chrono::NaiveDate;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// Waits until the holdings of `day` are built (counted from `since`, the end of `after`),
/// prints each day's build
/// time with its baselines and checks the day's totals against Postgres.
pub async fn wait_and_compare(
    seed: &Client,
    ch: &clickhouse::Client,
    day: NaiveDate,
    since: Instant,
    after: &str,
) -> anyhow::Result<()> {
    loop {
        let built: Option<NaiveDate> = seed
            .query_one("SELECT max(day) FROM holdings_days", &[])
            .await?
            .get(0);
        if built.is_some_and(|b| b >= day) {
            break;
        }
        anyhow::ensure!(
            since.elapsed() < Duration::from_secs(3600),
            "holdings of {day} not built within an hour (last built: {built:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "daily holdings up to {day}: built {:.1} s after {after}",
        since.elapsed().as_secs_f64()
    );
    for r in seed
        .query(
            "SELECT day, positions, seconds FROM holdings_days ORDER BY day",
            &[],
        )
        .await?
    {
        let (d, n, s): (NaiveDate, i64, f64) = (r.get(0), r.get(1), r.get(2));
        println!("  holdings of {d}: {n} positions in {s:.1} s");
    }
    let build: f64 = seed
        .query_one("SELECT seconds FROM holdings_days WHERE day = $1", &[&day])
        .await?
        .get(0);
    let (input, counted, copied) = crate::holdings::baselines(ch, day).await?;
    println!(
        "holdings of {day}: {build:.1} s to build from {input} input rows; baselines in this \
         run: SELECT count() over those rows {counted:.1} s, bare INSERT SELECT of the previous \
         day's rows {copied:.1} s (build = {:.2}× the copy)",
        build / copied
    );
    compare(seed, ch, day).await
}

/// The day's positions, units and income in ClickHouse equal Postgres's journal and payments.
async fn compare(seed: &Client, ch: &clickhouse::Client, day: NaiveDate) -> anyhow::Result<()> {
    let r = seed
        .query_one(
            "SELECT count(*)::bigint, (sum(units) * 100)::bigint,
                    (SELECT (coalesce(sum(units), 0) * 100)::bigint FROM unit_movements
                     WHERE kind = 'income' AND effective_date = $1 + 1)
             FROM (SELECT sum(units) AS units FROM unit_movements WHERE effective_date <= $1
                   GROUP BY account_id, fund_code) held",
            &[&day],
        )
        .await?;
    let pg: (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
    let (n, units, income) = mmf_sync::holdings::totals(ch, day).await?;
    anyhow::ensure!(
        (n as i64, units, income) == pg,
        "holdings of {day}: ClickHouse {n} positions, {units} fen, income {income} fen; \
         Postgres {pg:?}"
    );
    println!("holdings of {day}: {n} positions, units and income equal to Postgres");
    Ok(())
}
