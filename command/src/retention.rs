//! Retention of unit movements in Postgres (DESIGN §1, §3): journal rows and income payments
//! older than the window are deleted only after ClickHouse is verified to hold the same
//! movements, as counts and sums per effective date. Any difference refuses the whole run and reports every day compared.
//! What was deleted is recorded per day in `retained_days`.

use crate::app::AppState;
use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Days, NaiveDate, Utc};
use deadpool_postgres::Pool;
use mmf_shared::calendar::business_date;
use mmf_shared::http::{ApiError, OptionalJson};
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
    pub dry_run: bool,
    /// True when Postgres and ClickHouse differ for some day: nothing was deleted.
    pub refused: bool,
    pub days: Vec<DayCheck>,
    pub deleted_rows: i64,
}

#[derive(clickhouse::Row, Deserialize)]
struct ChDay {
    day: String,
    rows: u64,
    units: String,
}

/// Compares every effective date before `cutoff` still held in Postgres (journal rows and
/// income payment entries) with ClickHouse's `unit_journal` (read with FINAL, so replayed rows count once).
pub async fn verify(
    pool: &Pool,
    ch: &clickhouse::Client,
    cutoff: NaiveDate,
) -> anyhow::Result<Vec<DayCheck>> {
    let client = pool.get().await?;
    let pg = client
        .query(
            "SELECT effective_date, count(*), coalesce(sum(units), 0) FROM unit_movements
             WHERE effective_date < $1 GROUP BY effective_date ORDER BY effective_date",
            &[&cutoff],
        )
        .await?;
    if pg.is_empty() {
        return Ok(Vec::new());
    }
    let first: NaiveDate = pg[0].get(0);
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
        .await
        .context("reading unit_journal totals from ClickHouse")?;
    let mut ch_by_day = BTreeMap::new();
    for d in ch_days {
        let day = NaiveDate::from_str(&d.day).context("ClickHouse date")?;
        let units = Decimal::from_str(&d.units).context("ClickHouse sum")?;
        ch_by_day.insert(day, (d.rows as i64, units));
    }
    Ok(pg
        .iter()
        .map(|r| {
            let day: NaiveDate = r.get(0);
            let (rows, units): (i64, Decimal) = (r.get(1), r.get(2));
            let (ch_rows, ch_units) = ch_by_day.get(&day).copied().unwrap_or_default();
            DayCheck {
                effective_date: day,
                postgres_rows: rows,
                postgres_units: units,
                clickhouse_rows: ch_rows,
                clickhouse_units: ch_units,
                matches: rows == ch_rows && units == ch_units,
            }
        })
        .collect())
}

/// Verifies, then (unless `dry_run`, and only if every day matches) deletes the movements
/// effective before `today − window_days` (today: the business date of `now`, the instant
/// the deletions are recorded at), one transaction per day. A row arriving for a day
/// between verification and deletion makes that day's deleted totals differ from the verified
/// ones: the day's transaction is rolled back and the run reports the day as refused.
pub async fn run(
    pool: &Pool,
    ch: &clickhouse::Client,
    now: DateTime<Utc>,
    window_days: u32,
    dry_run: bool,
) -> anyhow::Result<RetentionReport> {
    let mut cutoff = business_date(now) - Days::new(window_days as u64);
    // Distributing day D reads the movements effective after D: keep those of every day
    // still to distribute.
    let pending: Option<NaiveDate> = pool
        .get()
        .await?
        .query_one(
            "SELECT min(f.day) FROM fund_income f LEFT JOIN income_runs r USING (fund_code, day)
             WHERE r.finished_at IS NULL",
            &[],
        )
        .await?
        .get(0);
    if let Some(d) = pending {
        cutoff = cutoff.min(d + Days::new(1));
    }
    let mut days = verify(pool, ch, cutoff).await?;
    let refused = days.iter().any(|d| !d.matches);
    let mut deleted_rows = 0;
    if !refused && !dry_run {
        let mut client = pool.get().await?;
        for d in days.iter_mut() {
            let tx = client.transaction().await?;
            let r = tx
                .query_one(
                    "WITH journal AS (
                         DELETE FROM unit_journal WHERE effective_date = $1 RETURNING units),
                     income AS (
                         DELETE FROM income_payments WHERE effective_date = $1 RETURNING units),
                     gone AS (
                         SELECT units FROM journal
                         UNION ALL SELECT unnest(units) FROM income)
                     SELECT count(*), coalesce(sum(units), 0) FROM gone",
                    &[&d.effective_date],
                )
                .await?;
            let (rows, units): (i64, Decimal) = (r.get(0), r.get(1));
            if rows != d.postgres_rows || units != d.postgres_units {
                tx.rollback().await?;
                d.matches = false;
                d.postgres_rows = rows;
                d.postgres_units = units;
                return Ok(RetentionReport {
                    cutoff,
                    dry_run,
                    refused: true,
                    days,
                    deleted_rows,
                });
            }
            tx.execute(
                "INSERT INTO retained_days (effective_date, rows, units, deleted_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (effective_date) DO UPDATE SET rows = retained_days.rows + EXCLUDED.rows,
                     units = retained_days.units + EXCLUDED.units, deleted_at = EXCLUDED.deleted_at",
                &[&d.effective_date, &rows, &units, &now],
            )
            .await?;
            tx.commit().await?;
            deleted_rows += rows;
        }
    }
    Ok(RetentionReport {
        cutoff,
        dry_run,
        refused,
        days,
        deleted_rows,
    })
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RetentionRequest {
    /// Days of journal to keep; defaults to `MMF_RETENTION_DAYS` (7).
    window_days: Option<u32>,
    /// Verify only.
    dry_run: Option<bool>,
}

/// Deletes movements older than the window after verifying them against ClickHouse;
/// 409 `history_mismatch` with the per-day comparison when they differ (nothing deleted).
#[utoipa::path(post, path = "/v1/ops/retention", request_body = RetentionRequest,
    responses((status = 200, body = RetentionReport), (status = 409, body = RetentionReport)))]
pub async fn post_retention(
    State(state): State<AppState>,
    OptionalJson(req): OptionalJson<RetentionRequest>,
) -> Result<Response, ApiError> {
    let req = req.unwrap_or_default();
    let window = req.window_days.unwrap_or(state.config.cycle.retention_days);
    if window < 1 {
        return Err(ApiError::invalid(
            "window_days",
            "window_days is at least 1",
        ));
    }
    let ch = mmf_shared::ch::client_for(
        &state.config.common.clickhouse_url,
        &state.config.common.clickhouse_db,
    );
    let report = run(
        &state.pool,
        &ch,
        state.clock.now(),
        window,
        req.dry_run.unwrap_or(false),
    )
    .await?;
    if report.refused {
        let mut body = serde_json::to_value(&report).map_err(ApiError::internal)?;
        body["code"] = "history_mismatch".into();
        body["message"] =
            "Postgres and ClickHouse differ; days that differ were not deleted".into();
        return Ok((StatusCode::CONFLICT, axum::Json(body)).into_response());
    }
    Ok(axum::Json(report).into_response())
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/ops/retention", post(post_retention))
}
