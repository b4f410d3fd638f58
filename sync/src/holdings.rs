//! Daily holdings: once a calendar day's movements and income are in ClickHouse, build that
//! day's `daily_holdings` rows from the previous day's rows plus the day's movements, never
//! from full history (docs/decisions/0031-daily-holdings.md). Days are built in order; a day
//! is recorded in Postgres (`holdings_days`) only after its rows are in ClickHouse, and a build
//! first drops the day's partition, so a crash in between rebuilds the same rows.

use crate::shipper::{pause, MAX_BACKOFF, MIN_BACKOFF};
use crate::status::Horizon;
use crate::tables::{Accounts, IncomePayments, Table, UnitJournal};
use crate::{metrics, Shared};
use anyhow::{bail, Context};
use chrono::{Days, NaiveDate};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use mmf_shared::ch::from_fen;
use mmf_shared::db::statement;
use mmf_shared::schema::holdings_days::dsl as hd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub const STREAM: &str = "daily_holdings";
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);
/// Holdings wait for a whole day's income: no need to poll as often as the shipping loops.
const IDLE: Duration = Duration::from_millis(250);

pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    shared.status.register(STREAM);
    let mut backoff = MIN_BACKOFF;
    let mut gate = Gate::default();
    let mut flows_horizon = Horizon::default();
    loop {
        let built = async {
            build_ready(&shared, &stop, &mut gate).await?;
            crate::flows::build_ready(&shared, &stop, &mut flows_horizon).await
        };
        let wait = match built.await {
            Ok(()) => {
                backoff = MIN_BACKOFF;
                shared.status.succeeded(STREAM, true);
                IDLE.max(shared.config.poll)
            }
            Err(e) => {
                metrics::ERRORS.with_label_values(&[STREAM]).inc();
                tracing::warn!(
                    stream = STREAM,
                    error = format!("{e:#}"),
                    "holdings build failed, retrying"
                );
                shared.status.failed(STREAM, format!("{e:#}"));
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        if !pause(&mut stop, wait).await {
            return;
        }
    }
}

/// What the next day waits for: `blocked` is a day found waiting for some fund's income, and
/// the funds distributed when it was (while they stay the same, the day stays blocked without
/// asking ClickHouse again); `horizon` is the transaction horizon read once a day's funds were
/// distributed, which the shipped watermarks must pass.
#[derive(Default)]
struct Gate {
    blocked: Option<(NaiveDate, Vec<String>)>,
    horizon: Horizon<(NaiveDate, Vec<String>)>,
}

/// Builds every day that is ready, in order, and refreshes the lag gauge.
async fn build_ready(
    shared: &Shared,
    stop: &watch::Receiver<bool>,
    gate: &mut Gate,
) -> anyhow::Result<()> {
    loop {
        let mut pg = shared.pg.get().await.context("Postgres connection")?;
        let state: BuildState = statement(STATE_SQL)
            .get_result(&mut pg)
            .await
            .context("reading the holdings state")?;
        let lag = match (state.last_built, state.last_income) {
            (Some(built), Some(income)) => (income - built).num_days().max(0),
            // Income distributed and nothing built yet: at least that day behind.
            (None, Some(_)) => 1,
            _ => 0,
        };
        metrics::HOLDINGS_LAG_DAYS.set(lag);
        if *stop.borrow() {
            return Ok(());
        }
        let day = match (state.last_built, state.last_income) {
            (Some(built), _) => built + Days::new(1),
            // Nothing can be built before some income is distributed.
            (None, None) => return Ok(()),
            (None, Some(_)) => match first_day(shared).await? {
                Some(day) => day,
                None => return Ok(()),
            },
        };
        if !ready(shared, &mut pg, day, state.last_built.is_none(), gate).await? {
            return Ok(());
        }
        drop(pg);
        build(shared, day).await?;
    }
}

/// The last day built and the latest income day distributed, in one round trip.
const STATE_SQL: &str = "SELECT (SELECT max(day) FROM holdings_days) AS last_built, \
        (SELECT max(day) FROM income_runs WHERE finished_at IS NOT NULL) AS last_income";

#[derive(QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct BuildState {
    #[diesel(sql_type = Nullable<Date>)]
    last_built: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    last_income: Option<NaiveDate>,
}

/// The earliest effective date in ClickHouse: where the first build starts.
async fn first_day(shared: &Shared) -> anyhow::Result<Option<NaiveDate>> {
    mmf_shared::ch::earliest(&shared.ch, "effective_date", "journal_by_day").await
}

/// The funds whose income is distributed for `$1` or a later day (a fund's days are
/// distributed in order from its first published one, so `$1` is either distributed or
/// before that first day), and the next transaction id: every transaction this snapshot sees
/// is below it.
const FINISHED_SQL: &str =
    "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS horizon, \
        array(SELECT DISTINCT fund_code FROM income_runs \
              WHERE day >= $1 AND finished_at IS NOT NULL ORDER BY fund_code) AS funds";

#[derive(QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct Finished {
    #[diesel(sql_type = BigInt)]
    horizon: i64,
    #[diesel(sql_type = Array<Text>)]
    funds: Vec<String>,
}

/// Day `day` is ready when, for every fund held at the end of the day before or moved on
/// `day`, the income of `day` (or of a later day) is distributed — every movement effective
/// on or before it is then committed (DESIGN §3, daily cycle) — and the sync worker has
/// shipped every transaction committed by then (its watermarks passed them).
async fn ready(
    shared: &Shared,
    pg: &mut AsyncPgConnection,
    day: NaiveDate,
    first: bool,
    gate: &mut Gate,
) -> anyhow::Result<bool> {
    let finished: Finished = statement(FINISHED_SQL)
        .bind::<Date, _>(day)
        .get_result(pg)
        .await
        .context("reading distributed income")?;
    if finished.funds.is_empty()
        || gate
            .blocked
            .as_ref()
            .is_some_and(|(d, funds)| *d == day && *funds == finished.funds)
    {
        return Ok(false);
    }
    let horizon = gate.horizon.of(
        (day, finished.funds.clone()),
        u64::try_from(finished.horizon)?,
    );
    // Accounts too: a holder new on the day takes its investor key from `accounts`.
    let shipped = [UnitJournal::NAME, IncomePayments::NAME, Accounts::NAME]
        .iter()
        .all(|s| shared.status.covered(s) >= horizon);
    if !shipped {
        return Ok(false);
    }
    // A row shipped since the first look may be effective earlier.
    if first && first_day(shared).await? != Some(day) {
        return Ok(false);
    }
    let involved: Vec<String> = shared
        .ch
        .query(
            "SELECT DISTINCT fund_code FROM ( \
               SELECT fund_code FROM daily_holdings WHERE day = toDate(?) AND units != 0 \
               UNION ALL \
               SELECT fund_code FROM journal_by_day WHERE effective_date = toDate(?))",
        )
        .bind(day.pred_opt().unwrap_or(day).to_string())
        .bind(day.to_string())
        .fetch_all()
        .await
        .context("reading the funds held")?;
    let waiting: Vec<&String> = involved
        .iter()
        .filter(|f| !finished.funds.contains(f))
        .collect();
    if !waiting.is_empty() {
        tracing::debug!(%day, ?waiting, "holdings wait for these funds' income");
        gate.blocked = Some((day, finished.funds));
        return Ok(false);
    }
    gate.blocked = None;
    Ok(true)
}

/// Builds `day` from `day - 1` and the day's movements, then records it.
#[tracing::instrument(skip(shared), fields(positions))]
async fn build(shared: &Shared, day: NaiveDate) -> anyhow::Result<()> {
    let started = Instant::now();
    let ch = &shared.ch;
    drop_day(ch, day).await?;
    tokio::time::timeout(BUILD_TIMEOUT, build_daily(ch, day))
        .await
        .context("building daily holdings: timed out")??;
    build_per_person(ch, day).await?;
    let (positions, units, income) = totals(ch, day).await.context("reading the day's totals")?;
    if positions == 0 {
        bail!("no holdings built for {day}");
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut pg = shared.pg.get().await.context("Postgres connection")?;
    diesel::insert_into(hd::holdings_days)
        .values((
            hd::day.eq(day),
            hd::positions.eq(i64::try_from(positions)?),
            hd::units.eq(from_fen(units)),
            hd::income.eq(from_fen(income)),
            hd::seconds.eq(seconds),
        ))
        .execute(&mut pg)
        .await
        .context("recording the day")?;
    tracing::Span::current().record("positions", positions);
    tracing::info!(%day, positions, seconds, "daily holdings built");
    // Once a day is enough to notice that a year has closed.
    if let Err(e) = crate::compact::merge_closed_years(ch, day).await {
        tracing::warn!(
            error = format!("{e:#}"),
            "merging closed years failed, retried next day"
        );
    }
    metrics::ROWS_SHIPPED
        .with_label_values(&[STREAM])
        .inc_by(positions);
    metrics::BATCH_SECONDS
        .with_label_values(&[STREAM])
        .observe(seconds);
    Ok(())
}

/// A built day's positions, Σ units and Σ income (in fen).
pub async fn totals(
    ch: &clickhouse::Client,
    day: NaiveDate,
) -> clickhouse::error::Result<(u64, i64, i64)> {
    ch.query(
        "SELECT count(), toInt64(sum(units) * 100), toInt64(sum(income) * 100) \
         FROM daily_holdings WHERE day = toDate(?)",
    )
    .bind(day.to_string())
    .fetch_one()
    .await
}

/// Builds `day`'s daily holdings, fund by fund: every fund held the day before or moved on the
/// day.
pub async fn build_daily(ch: &clickhouse::Client, day: NaiveDate) -> anyhow::Result<()> {
    let prev = day.pred_opt().unwrap_or(day);
    let funds: Vec<String> = ch
        .query(
            "SELECT DISTINCT fund_code FROM \
             (SELECT fund_code FROM daily_holdings WHERE day = toDate(?) \
              UNION ALL SELECT fund_code FROM journal_by_day WHERE effective_date = toDate(?))",
        )
        .bind(prev.to_string())
        .bind(day.to_string())
        .fetch_all()
        .await
        .context("reading the funds to build")?;
    let ch = one_part(ch);
    for fund in funds {
        ch.query(&build_sql(day, &fund)?)
            .execute()
            .await
            .with_context(|| format!("building daily holdings of {fund} on {day}"))?;
    }
    Ok(())
}

/// A client whose inserts write each statement's rows as one part: a day of a fund is read by
/// point lookups (one part to probe, not several) and never merged again.
pub fn one_part(ch: &clickhouse::Client) -> clickhouse::Client {
    ch.clone()
        .with_setting("min_insert_block_size_rows", "1000000000")
        .with_setting("min_insert_block_size_bytes", "1000000000000")
}

/// Day `day`'s rows of `fund` (`holdings/build.sql`, where `{day:Date}`, `{prev:Date}` and
/// `{next:Date}` are the day and the days around it).
pub fn build_sql(day: NaiveDate, fund: &str) -> anyhow::Result<String> {
    let prev = day.pred_opt().unwrap_or(day);
    let next = day + Days::new(1);
    Ok(include_str!("holdings/build.sql")
        .replace("{day:Date}", &format!("toDate('{day}')"))
        .replace("{prev:Date}", &format!("toDate('{prev}')"))
        .replace("{next:Date}", &format!("toDate('{next}')"))
        .replace("{fund:String}", &fund_literal(fund)?))
}

/// A fund code quoted for SQL. Fund codes are six digits or capital letters
/// (funds.fund_code); nothing else is let through.
fn fund_literal(fund: &str) -> anyhow::Result<String> {
    if fund.len() != 6
        || !fund
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        bail!("unexpected fund code {fund:?}");
    }
    Ok(format!("'{fund}'"))
}

/// Drops whatever a build of `day` wrote: what it writes next is the whole day.
pub async fn drop_day(ch: &clickhouse::Client, day: NaiveDate) -> anyhow::Result<()> {
    for table in [
        "daily_holdings",
        "fund_holdings",
        "investor_holdings",
        "holding_sizes",
    ] {
        ch.query(&format!("ALTER TABLE {table} DROP PARTITION '{day}'"))
            .execute()
            .await
            .with_context(|| format!("dropping {table} of {day}"))?;
    }
    Ok(())
}

/// Builds `day`'s totals per fund, then its holdings per person and by size, fund by fund,
/// once its daily holdings are in.
pub async fn build_per_person(ch: &clickhouse::Client, day: NaiveDate) -> anyhow::Result<()> {
    ch.query(
        "INSERT INTO fund_holdings (day, fund_code, units, holders, income) \
         SELECT day, fund_code, sum(units), countIf(units > 0), sum(income) \
         FROM daily_holdings WHERE day = toDate(?) GROUP BY day, fund_code",
    )
    .bind(day.to_string())
    .execute()
    .await
    .context("building the totals per fund")?;
    let funds: Vec<String> = ch
        .query("SELECT DISTINCT fund_code FROM daily_holdings WHERE day = toDate(?) AND units > 0")
        .bind(day.to_string())
        .fetch_all()
        .await
        .context("reading the funds held")?;
    for fund in funds {
        for sql in investors_sql(day, &fund)? {
            ch.query(&sql)
                .execute()
                .await
                .with_context(|| format!("building the holdings per person of {fund} on {day}"))?;
        }
    }
    Ok(())
}

/// Day `day`'s holdings of `fund` per person and by size (`holdings/investors.sql`, two
/// statements run in order).
pub fn investors_sql(day: NaiveDate, fund: &str) -> anyhow::Result<Vec<String>> {
    let fund = fund_literal(fund)?;
    Ok(include_str!("holdings/investors.sql")
        .split(";\n")
        .map(|sql| {
            sql.replace("{day:Date}", &format!("toDate('{day}')"))
                .replace("{fund:String}", &fund)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_reads_the_day_before_and_the_income_of_the_day_after() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let sql = build_sql(day, "000001").unwrap();
        assert!(sql.contains("WHERE day = toDate('2026-11-30') AND fund_code = '000001'"));
        // The day's income payments are the previous day's income, read from its row.
        assert!(sql.contains("units + income AS u"));
        assert!(sql.contains(
            "effective_date = toDate('2026-12-01') AND kind != 'income' AND fund_code = '000001'"
        ));
        assert!(sql.contains("effective_date = toDate('2026-12-02') AND kind = 'income'"));
        assert!(!sql.contains(":Date}") && !sql.contains(":String}"));
        assert!(build_sql(day, "0001'").is_err());
    }

    #[test]
    fn holdings_per_person_take_one_fund_by_its_code_only() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let sql = investors_sql(day, "000001").unwrap();
        assert_eq!(sql.len(), 2);
        assert!(sql[0].contains("INSERT INTO investor_holdings"));
        assert!(sql[1].contains("INSERT INTO holding_sizes"));
        for s in &sql {
            assert!(s.contains("day = toDate('2026-12-01') AND fund_code = '000001'"));
            assert!(!s.contains(":Date}") && !s.contains(":String}"));
        }
        for bad in ["00001", "000001'", "abcdef", "00 001"] {
            assert!(investors_sql(day, bad).is_err(), "{bad}");
        }
    }
}
