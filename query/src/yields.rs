//! Published fund income: income per 10,000 units and the 7-day annualized yield per day.

use crate::{date_range, AppState};
use axum::extract::State;
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mmf_domain::ids::FundCode;
use mmf_shared::http::ErrorCode;
use mmf_shared::http::{ApiError, Path, Query};
use mmf_shared::schema::funds;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Ten years of daily figures per request at most.
const MAX_DAYS: i64 = 3660;

#[derive(Deserialize, IntoParams)]
pub struct YieldsQuery {
    /// First day, `YYYY-MM-DD`.
    from: Option<String>,
    /// Last day, `YYYY-MM-DD`.
    to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DailyYield {
    pub date: NaiveDate,
    /// Income per 10,000 units for the day, 4 decimals (may be negative).
    pub per10k: String,
    /// 7-day annualized yield in percent, 3 decimals; absent until 7 days are published.
    pub yield_7d: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Yields {
    pub fund_code: String,
    pub days: Vec<DailyYield>,
}

#[derive(clickhouse::Row, Deserialize)]
struct Row {
    d: String,
    p: String,
    y: String,
}

fn fixed(s: &str, scale: u32) -> Result<String, ApiError> {
    let mut d: Decimal = s
        .parse()
        .map_err(|e| ApiError::internal(format!("ClickHouse decimal {s:?}: {e}")))?;
    d.rescale(scale);
    Ok(d.to_string())
}

/// Per-10k income and 7-day yield of a fund for each published day in the range.
#[utoipa::path(get, path = "/v1/funds/{code}/yields", params(("code" = String, Path), YieldsQuery),
    responses((status = 200, body = Yields), (status = 400, body = mmf_shared::http::ErrorBody),
              (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn get_yields(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<YieldsQuery>,
) -> Result<axum::Json<Yields>, ApiError> {
    FundCode::parse(&code)?;
    let (from, to) = date_range(q.from.as_deref(), q.to.as_deref(), MAX_DAYS)?;
    let known: Option<String> = funds::table
        .find(&code)
        .select(funds::fund_code)
        .first(&mut state.pool.get().await?)
        .await
        .optional()?;
    if known.is_none() {
        return Err(ApiError::new(ErrorCode::FundNotFound, "no such fund").with_field("fund_code"));
    }
    let rows: Vec<Row> = state
        .ch
        .query(
            // Aliases differ from column names: ClickHouse would apply them in WHERE too.
            "SELECT toString(day) AS d, toString(per10k) AS p, ifNull(toString(yield_7d), '') AS y \
             FROM fund_income FINAL \
             WHERE fund_code = ? AND day >= toDate(?) AND day <= toDate(?) ORDER BY day",
        )
        .bind(&code)
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all()
        .await?;
    let mut days = Vec::with_capacity(rows.len());
    for r in rows {
        days.push(DailyYield {
            date: NaiveDate::parse_from_str(&r.d, "%Y-%m-%d")
                .map_err(|e| ApiError::internal(format!("ClickHouse date {:?}: {e}", r.d)))?,
            per10k: fixed(&r.p, 4)?,
            yield_7d: if r.y.is_empty() {
                None
            } else {
                Some(fixed(&r.y, 3)?)
            },
        });
    }
    Ok(axum::Json(Yields {
        fund_code: code,
        days,
    }))
}
