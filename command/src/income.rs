//! Publishing a fund's daily income: the per-10k income of a calendar day and the 7-day
//! annualized yield of the seven days whose window contains it (DESIGN §3).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Date, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mmf_shared::db::{statement, DbError, DbPool};
use mmf_shared::http::{ApiError, ErrorCode};
use mmf_shared::schema::{fund_income, funds, income_runs};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use utoipa::ToSchema;

/// One fund's published income for one day.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct IncomeDay {
    pub fund_code: String,
    pub day: NaiveDate,
    /// Income per 10,000 units, 4 decimals.
    #[schema(value_type = String)]
    pub per10k: String,
    /// 7-day annualized yield in percent, 3 decimals; absent until 7 days are published.
    #[schema(value_type = Option<String>)]
    pub yield_7d: Option<String>,
    pub distributed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IncomeError {
    #[error("no such fund")]
    FundNotFound,
    #[error(
        "income for this day or a later one has been distributed; this day can no longer change"
    )]
    AlreadyDistributed,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for IncomeError {
    fn from(e: diesel::result::Error) -> IncomeError {
        IncomeError::Db(e.into())
    }
}

impl From<IncomeError> for ApiError {
    fn from(e: IncomeError) -> ApiError {
        match e {
            IncomeError::FundNotFound => {
                ApiError::new(ErrorCode::FundNotFound, e.to_string()).with_field("fund_code")
            }
            IncomeError::AlreadyDistributed => {
                ApiError::new(ErrorCode::IncomeAlreadyDistributed, e.to_string()).with_field("day")
            }
            IncomeError::Db(e) => e.into(),
        }
    }
}

/// Parses a per-10k income: optional sign, digits, at most 4 decimals, |x| < 10,000.
pub fn parse_per10k(s: &str) -> Option<Decimal> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let ok = !int.is_empty()
        && int.len() <= 4
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 4
        && (frac.is_empty() != body.contains('.'))
        && frac.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return None;
    }
    let mut d = Decimal::from_str(s).ok()?;
    d.rescale(4);
    Some(d)
}

/// Recomputes the 7-day yield of the seven days from $2: ((Π (1 + per10k/10,000))^(365/7) − 1)
/// × 100, the product taken as exp(Σ ln) in Postgres numeric, rounded half away from zero
/// (half-up for the usual positive yields) to 3 decimals. The logarithms are taken at 40
/// decimals: at the default precision a yield of 10^13 % already rounds wrong in its last
/// decimal. A yield beyond ±10^15 % (none a fund publishes; numeric(18,3) cannot hold it) is
/// stored as none, as `mmf_domain::income::yield_7d` defines it.
const YIELDS_SQL: &str = "
UPDATE fund_income f SET yield_7d = CASE WHEN abs(y.v) < 1e15 THEN y.v END
FROM (
    SELECT d.day,
           CASE WHEN count(w.day) = 7
                THEN round((exp(sum(ln((1 + w.per10k * 0.0001)::numeric(60, 40))) * 365 / 7) - 1) * 100, 3)
           END AS v
    FROM fund_income d
    JOIN fund_income w ON w.fund_code = d.fund_code AND w.day BETWEEN d.day - 6 AND d.day
    WHERE d.fund_code = $1 AND d.day BETWEEN $2::date AND $2::date + 6
    GROUP BY d.day
) y
WHERE f.fund_code = $1 AND f.day = y.day
  AND f.yield_7d IS DISTINCT FROM (CASE WHEN abs(y.v) < 1e15 THEN y.v END)";

/// Stores (or corrects, while undistributed) a day's per-10k income and recomputes the 7-day
/// yields it enters. Publishing the value already stored changes nothing, before or after
/// distribution. `now` is the publication instant.
#[tracing::instrument(skip(pool), err)]
pub async fn publish(
    pool: &DbPool,
    fund: &str,
    day: NaiveDate,
    per10k: Decimal,
    now: DateTime<Utc>,
) -> Result<IncomeDay, IncomeError> {
    let mut conn = pool.get().await.map_err(DbError::from)?;
    conn.transaction(async |c| store(c, fund, day, per10k, now).await)
        .await?;
    Ok(income_day(pool, fund, day)
        .await?
        .expect("row written above"))
}

async fn store(
    c: &mut AsyncPgConnection,
    fund: &str,
    day: NaiveDate,
    per10k: Decimal,
    now: DateTime<Utc>,
) -> Result<(), IncomeError> {
    let exists: Option<String> = funds::table
        .find(fund)
        .select(funds::fund_code)
        .first(c)
        .await
        .optional()?;
    if exists.is_none() {
        return Err(IncomeError::FundNotFound);
    }
    let stored: Option<Decimal> = fund_income::table
        .find((fund, day))
        .select(fund_income::per10k)
        .first(c)
        .await
        .optional()?;
    if stored == Some(per10k) {
        return Ok(());
    }
    let distributed: Option<NaiveDate> = income_runs::table
        .filter(income_runs::fund_code.eq(fund))
        .filter(income_runs::day.ge(day))
        .select(income_runs::day)
        .first(c)
        .await
        .optional()?;
    if distributed.is_some() {
        return Err(IncomeError::AlreadyDistributed);
    }
    diesel::insert_into(fund_income::table)
        .values((
            fund_income::fund_code.eq(fund),
            fund_income::day.eq(day),
            fund_income::per10k.eq(per10k),
            fund_income::published_at.eq(now),
        ))
        .on_conflict((fund_income::fund_code, fund_income::day))
        .do_update()
        .set((
            fund_income::per10k.eq(per10k),
            fund_income::published_at.eq(now),
        ))
        .execute(c)
        .await?;
    statement(YIELDS_SQL)
        .bind::<Text, _>(fund)
        .bind::<Date, _>(day)
        .execute(c)
        .await?;
    Ok(())
}

/// A fund's published income for `day`, with whether it has been distributed.
pub async fn income_day(
    pool: &DbPool,
    fund: &str,
    day: NaiveDate,
) -> Result<Option<IncomeDay>, IncomeError> {
    let mut conn = pool.get().await.map_err(DbError::from)?;
    let row: Option<(Decimal, Option<Decimal>, Option<DateTime<Utc>>)> = fund_income::table
        .left_join(
            income_runs::table.on(income_runs::fund_code
                .eq(fund_income::fund_code)
                .and(income_runs::day.eq(fund_income::day))),
        )
        .filter(fund_income::fund_code.eq(fund))
        .filter(fund_income::day.eq(day))
        .select((
            fund_income::per10k,
            fund_income::yield_7d,
            income_runs::finished_at.nullable(),
        ))
        .first(&mut conn)
        .await
        .optional()?;
    Ok(row.map(|(per10k, yield_7d, finished)| IncomeDay {
        fund_code: fund.to_string(),
        day,
        per10k: per10k.to_string(),
        yield_7d: yield_7d.map(|d| d.to_string()),
        distributed: finished.is_some(),
    }))
}

#[cfg(test)]
mod tests {
    use super::parse_per10k;

    #[test]
    fn per10k_has_at_most_four_decimals_and_may_be_negative() {
        assert_eq!(parse_per10k("0.65").unwrap().to_string(), "0.6500");
        assert_eq!(parse_per10k("-0.1500").unwrap().to_string(), "-0.1500");
        assert_eq!(parse_per10k("12").unwrap().to_string(), "12.0000");
        for bad in [
            "", "-", "1.", ".5", "0.12345", "+1", "1e2", "10000", " 1", "--1",
        ] {
            assert!(parse_per10k(bad).is_none(), "{bad:?}");
        }
    }
}
