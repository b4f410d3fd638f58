//! Retention in Postgres (DESIGN §3, §4): journal rows and income payments older than the
//! window are deleted only after ClickHouse is verified to hold the same movements, as counts
//! and sums per effective date; orders and the records around them likewise ([`records`]).
//! Any difference refuses the whole run and reports every day compared. What was deleted is
//! recorded per day in `retained_days` (movements) and `retained_records` (the rest).

mod records;

use super::JobError;
use chrono::{DateTime, Days, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Numeric};
use diesel::upsert::excluded;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mmf_domain::calendar::business_date;
use mmf_domain::orders::first_kept_key_day;
use mmf_shared::db::{statement, DbPool};
use mmf_shared::schema::{fund_income, income_runs, retained_days};
pub use records::RecordCheck;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::str::FromStr;
use utoipa::ToSchema;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DayCheck {
    pub effective_date: NaiveDate,
    pub postgres_rows: i64,
    #[schema(value_type = String)]
    pub postgres_units: Decimal,
    pub clickhouse_rows: i64,
    #[schema(value_type = String)]
    pub clickhouse_units: Decimal,
    pub matches: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RetentionReport {
    /// Movements effective before this date are beyond the window.
    pub cutoff: NaiveDate,
    /// Orders (by trade date), usage counters, settlements and reconciliation records (by
    /// file date) and idempotency records of days before this date are beyond the window.
    pub records_cutoff: NaiveDate,
    /// Request keys of days before this date are beyond the request-key window.
    pub key_cutoff: NaiveDate,
    pub dry_run: bool,
    /// True when Postgres and ClickHouse differ for some day: nothing was deleted.
    pub refused: bool,
    /// The journal's days.
    pub days: Vec<DayCheck>,
    /// Journal rows deleted.
    pub deleted_rows: i64,
    /// Orders, usage counters, settlements and reconciliation records, per day.
    pub records: Vec<RecordCheck>,
    /// Rows deleted per kind: `orders`, `daily_usage`, `settlements`, `recon_imports` (with
    /// their records and discrepancies), `idempotency` (compacted to keys), `request_keys`.
    pub deleted_records: BTreeMap<String, i64>,
}

#[derive(clickhouse::Row, Deserialize)]
struct ChDay {
    day: String,
    rows: u64,
    units: String,
}

#[derive(QueryableByName)]
struct PgDay {
    #[diesel(sql_type = Date)]
    effective_date: NaiveDate,
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = Numeric)]
    units: Decimal,
}

/// Compares every effective date before `cutoff` still held in Postgres (journal rows and
/// income payment entries) with ClickHouse's `unit_journal` (read with FINAL, so replayed rows
/// count once).
pub async fn verify(
    pool: &DbPool,
    ch: &clickhouse::Client,
    cutoff: NaiveDate,
) -> Result<Vec<DayCheck>, JobError> {
    let pg: Vec<PgDay> = statement(
        "SELECT effective_date, count(*) AS rows, coalesce(sum(units), 0) AS units
         FROM unit_movements WHERE effective_date < $1 GROUP BY effective_date ORDER BY effective_date",
    )
    .bind::<Date, _>(cutoff)
    .load(&mut pool.get().await?)
    .await?;
    let Some(first) = <[PgDay]>::first(&pg).map(|d| d.effective_date) else {
        return Ok(Vec::new());
    };
    let ch_days: Vec<ChDay> = ch
        .query(
            "SELECT toString(effective_date) AS day, count() AS rows, toString(sum(units)) AS units
             FROM unit_journal FINAL
             WHERE effective_date >= toDate(?) AND effective_date < toDate(?)
             GROUP BY effective_date",
        )
        .bind(first.to_string())
        .bind(cutoff.to_string())
        .fetch_all()
        .await?;
    let mut ch_by_day = BTreeMap::new();
    for d in ch_days {
        let bad =
            |what: &str| JobError::Inconsistent(format!("ClickHouse {what} {d:?}", d = d.day));
        let day = NaiveDate::from_str(&d.day).map_err(|_| bad("date"))?;
        let units = Decimal::from_str(&d.units).map_err(|_| bad("sum of"))?;
        ch_by_day.insert(day, (d.rows as i64, units));
    }
    Ok(pg
        .into_iter()
        .map(|d| {
            let (ch_rows, ch_units) = ch_by_day
                .get(&d.effective_date)
                .copied()
                .unwrap_or_default();
            DayCheck {
                effective_date: d.effective_date,
                postgres_rows: d.rows,
                postgres_units: d.units,
                clickhouse_rows: ch_rows,
                clickhouse_units: ch_units,
                matches: d.rows == ch_rows && d.units == ch_units,
            }
        })
        .collect())
}

#[derive(QueryableByName)]
struct Deleted {
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = Numeric)]
    units: Decimal,
}

/// Verifies, then (unless `dry_run`, and only if every day of every kind matches) deletes the
/// movements effective before `today − window_days` (today: the business date of `now`, the
/// instant the deletions are recorded at), one transaction per day, and the orders and
/// records of the days before it ([`records`]); compacts idempotency records of those days to
/// keys and expires the keys older than `key_days`. A row arriving for a day between
/// verification and deletion makes that day's deleted totals differ from the verified ones:
/// the day's transaction is rolled back and the run reports the day as refused.
#[tracing::instrument(skip(pool, ch), err)]
pub async fn run(
    pool: &DbPool,
    ch: &clickhouse::Client,
    now: DateTime<Utc>,
    window_days: u32,
    key_days: u32,
    dry_run: bool,
) -> Result<RetentionReport, JobError> {
    let today = business_date(now);
    let records_cutoff = today - Days::new(window_days as u64);
    let key_cutoff = first_kept_key_day(today, key_days).min(records_cutoff);
    let mut cutoff = records_cutoff;
    // Distributing day D reads the movements effective after D: keep those of every day
    // still to distribute.
    let pending: Option<NaiveDate> = fund_income::table
        .left_join(
            income_runs::table.on(income_runs::fund_code
                .eq(fund_income::fund_code)
                .and(income_runs::day.eq(fund_income::day))),
        )
        .filter(income_runs::finished_at.is_null())
        .select(diesel::dsl::min(fund_income::day))
        .first(&mut pool.get().await?)
        .await?;
    if let Some(d) = pending {
        cutoff = cutoff.min(d + Days::new(1));
    }
    let mut days = verify(pool, ch, cutoff).await?;
    let mut checks = records::verify_streamed(pool, ch, records_cutoff).await?;
    // Settlements and reconciliation records are copied to be verified, also in a dry run.
    checks.extend(records::copy_and_verify(pool, ch, records_cutoff).await?);
    let mut report = RetentionReport {
        cutoff,
        records_cutoff,
        key_cutoff,
        dry_run,
        refused: days.iter().any(|d| !d.matches) || checks.iter().any(|c| !c.matches),
        days: Vec::new(),
        deleted_rows: 0,
        records: Vec::new(),
        deleted_records: BTreeMap::new(),
    };
    if !report.refused && !dry_run {
        let mut conn = pool.get().await?;
        for d in days.iter_mut() {
            let (rows, units) = (d.postgres_rows, d.postgres_units);
            let day = d.effective_date;
            let outcome = conn
                .transaction(async |c| delete_day(c, day, rows, units, now).await)
                .await;
            match outcome {
                Ok(n) => report.deleted_rows += n,
                Err(DeleteError::Changed(found)) => {
                    d.matches = false;
                    d.postgres_rows = found.rows;
                    d.postgres_units = found.units;
                    report.refused = true;
                    break;
                }
                Err(DeleteError::Db(e)) => return Err(e.into()),
            }
        }
        if !report.refused {
            let done = records::delete(pool, &mut checks, records_cutoff, key_cutoff, now).await?;
            report.refused = done.refused;
            report.deleted_records = done.rows;
        }
    }
    if report.deleted_rows > 0 || report.deleted_records.values().any(|n| *n > 0) {
        // Deleted rows' space is reusable once vacuumed: do it now rather than when
        // autovacuum's thresholds are next crossed, so the tables stay the size of the window.
        diesel::sql_query(VACUUM)
            .execute(&mut pool.get().await?)
            .await?;
    }
    report.days = days;
    report.records = checks;
    Ok(report)
}

const VACUUM: &str =
    "VACUUM (ANALYZE) unit_journal, income_payments, orders, daily_usage, idempotency,
    request_keys, settlements, recon_imports, recon_requests, recon_discrepancies";

/// A day's deletion rolled back: it found other rows than were verified, or failed.
enum DeleteError<T> {
    Changed(T),
    Db(diesel::result::Error),
}

impl<T> From<diesel::result::Error> for DeleteError<T> {
    fn from(e: diesel::result::Error) -> DeleteError<T> {
        DeleteError::Db(e)
    }
}

/// Deletes the movements of one effective date and records them, if they are exactly the
/// verified ones.
async fn delete_day(
    c: &mut AsyncPgConnection,
    day: NaiveDate,
    rows: i64,
    units: Decimal,
    now: DateTime<Utc>,
) -> Result<i64, DeleteError<Deleted>> {
    let gone: Deleted = statement(
        "WITH journal AS (
             DELETE FROM unit_journal WHERE effective_date = $1 RETURNING units),
         income AS (
             DELETE FROM income_payments WHERE effective_date = $1 RETURNING units),
         gone AS (
             SELECT units FROM journal
             UNION ALL SELECT unnest(units) FROM income)
         SELECT count(*) AS rows, coalesce(sum(units), 0) AS units FROM gone",
    )
    .bind::<Date, _>(day)
    .get_result(c)
    .await?;
    if gone.rows != rows || gone.units != units {
        return Err(DeleteError::Changed(gone));
    }
    diesel::insert_into(retained_days::table)
        .values((
            retained_days::effective_date.eq(day),
            retained_days::rows.eq(rows),
            retained_days::units.eq(units),
            retained_days::deleted_at.eq(now),
        ))
        .on_conflict(retained_days::effective_date)
        .do_update()
        .set((
            retained_days::rows.eq(retained_days::rows + excluded(retained_days::rows)),
            retained_days::units.eq(retained_days::units + excluded(retained_days::units)),
            retained_days::deleted_at.eq(excluded(retained_days::deleted_at)),
        ))
        .execute(c)
        .await?;
    Ok(rows)
}
