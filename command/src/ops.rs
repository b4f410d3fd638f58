//! Operations endpoints: fund parameters and the trading calendar (the simulated clock is
//! `mmf_shared::http::clock_routes`).

use crate::app::AppState;
use axum::extract::State;
use axum::routing::put;
use axum::Router;
use chrono::{Datelike, NaiveDate};
use mmf_domain::income::IncomePolicy;
use mmf_shared::http::ErrorCode;
use mmf_shared::http::{ApiError, Json, Path};
use mmf_shared::money::Money;
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/ops/funds/{code}", put(put_fund))
        .route("/v1/ops/calendar/{year}", put(put_calendar))
}

/// A fund's parameters as stored.
#[derive(Clone, Debug, serde::Serialize, ToSchema)]
pub struct Fund {
    pub fund_code: String,
    pub name: String,
    #[serde(with = "mmf_shared::money::as_str2")]
    #[schema(value_type = String)]
    pub min_subscription: Decimal,
    #[serde(with = "mmf_shared::money::as_str2")]
    #[schema(value_type = String)]
    pub max_subscription_per_order: Decimal,
    #[serde(with = "mmf_shared::money::as_str2")]
    #[schema(value_type = String)]
    pub max_subscription_per_day: Decimal,
    #[serde(with = "mmf_shared::money::as_str2")]
    #[schema(value_type = String)]
    pub fast_withdrawal_daily_cap: Decimal,
    pub income_policy: String,
}

impl Fund {
    fn from_row(r: &tokio_postgres::Row) -> Fund {
        Fund {
            fund_code: r.get("fund_code"),
            name: r.get("name"),
            min_subscription: r.get("min_subscription"),
            max_subscription_per_order: r.get("max_subscription_per_order"),
            max_subscription_per_day: r.get("max_subscription_per_day"),
            fast_withdrawal_daily_cap: r.get("fast_withdrawal_daily_cap"),
            income_policy: r.get("income_policy"),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundRequest {
    name: String,
    /// Defaults for a new fund: 0.01, 10000.00 fast-withdrawal cap, `redistribute`.
    min_subscription: Option<String>,
    max_subscription_per_order: String,
    max_subscription_per_day: String,
    fast_withdrawal_daily_cap: Option<String>,
    /// `redistribute`, `carry_forward` or `to_fund`; an existing fund keeps its policy when
    /// absent.
    income_policy: Option<String>,
}

fn money(field: &str, v: &str) -> Result<Money, ApiError> {
    Money::parse(v).map_err(|e| {
        ApiError::new(ErrorCode::InvalidAmount, format!("{field} {e}")).with_field(field)
    })
}

/// Creates or updates a fund's parameters.
#[utoipa::path(put, path = "/v1/ops/funds/{code}", request_body = FundRequest,
    responses((status = 200, body = Fund), (status = 400, body = mmf_shared::http::ErrorBody)))]
pub async fn put_fund(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Json(req): Json<FundRequest>,
) -> Result<axum::Json<Fund>, ApiError> {
    if code.len() != 6
        || !code
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        return Err(ApiError::invalid(
            "fund_code",
            "fund code is 6 digits or capital letters",
        ));
    }
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "name",
            "name must be 1 to 100 characters",
        ));
    }
    let min = money(
        "min_subscription",
        req.min_subscription.as_deref().unwrap_or("0.01"),
    )?;
    let per_order = money(
        "max_subscription_per_order",
        &req.max_subscription_per_order,
    )?;
    let per_day = money("max_subscription_per_day", &req.max_subscription_per_day)?;
    let cap = money(
        "fast_withdrawal_daily_cap",
        req.fast_withdrawal_daily_cap.as_deref().unwrap_or("10000"),
    )?;
    if min.decimal().is_zero() || min > per_order || per_order > per_day {
        return Err(ApiError::invalid(
            "max_subscription_per_order",
            "limits must satisfy 0 < min_subscription <= max_subscription_per_order <= max_subscription_per_day",
        ));
    }
    let policy = match req.income_policy.as_deref() {
        None => None,
        Some(p) => Some(IncomePolicy::parse(p).ok_or_else(|| {
            ApiError::invalid(
                "income_policy",
                "income_policy is redistribute, carry_forward or to_fund",
            )
        })?),
    };
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "INSERT INTO funds (fund_code, name, min_subscription, max_subscription_per_order,
                                max_subscription_per_day, fast_withdrawal_daily_cap, income_policy, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, 'redistribute'), $8)
             ON CONFLICT (fund_code) DO UPDATE SET name = EXCLUDED.name,
                 min_subscription = EXCLUDED.min_subscription,
                 max_subscription_per_order = EXCLUDED.max_subscription_per_order,
                 max_subscription_per_day = EXCLUDED.max_subscription_per_day,
                 fast_withdrawal_daily_cap = EXCLUDED.fast_withdrawal_daily_cap,
                 income_policy = coalesce($7, funds.income_policy), updated_at = EXCLUDED.updated_at
             RETURNING *",
            &[
                &code,
                &name,
                &min.decimal(),
                &per_order.decimal(),
                &per_day.decimal(),
                &cap.decimal(),
                &policy.map(IncomePolicy::as_str),
                &state.clock.now(),
            ],
        )
        .await?;
    reload_reference(&state).await;
    Ok(axum::Json(Fund::from_row(&row)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarRequest {
    /// Every non-trading weekday of the year, `YYYY-MM-DD`. Weekends need not be listed.
    holidays: Vec<String>,
}

/// Replaces the holidays of one year.
#[utoipa::path(put, path = "/v1/ops/calendar/{year}", request_body = CalendarRequest,
    responses((status = 200, description = "year loaded"), (status = 400, body = mmf_shared::http::ErrorBody)))]
pub async fn put_calendar(
    State(state): State<AppState>,
    Path(year): Path<String>,
    Json(req): Json<CalendarRequest>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let year: i32 = year
        .parse()
        .ok()
        .filter(|y| (2000..=2100).contains(y))
        .ok_or_else(|| ApiError::invalid("year", "year must be 2000..2100"))?;
    let mut days = Vec::with_capacity(req.holidays.len());
    for s in &req.holidays {
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
            ApiError::invalid("holidays", format!("{s:?} is not a YYYY-MM-DD date"))
        })?;
        if d.year() != year {
            return Err(ApiError::invalid(
                "holidays",
                format!("{s} is not in {year}"),
            ));
        }
        days.push(d);
    }
    days.sort();
    days.dedup();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("INSERT INTO calendar_years (year, loaded_at) VALUES ($1, $2) ON CONFLICT (year) DO UPDATE SET loaded_at = EXCLUDED.loaded_at", &[&year, &state.clock.now()])
        .await?;
    tx.execute("DELETE FROM holidays WHERE year = $1", &[&year])
        .await?;
    tx.execute(
        "INSERT INTO holidays (day, year) SELECT unnest($1::date[]), $2",
        &[&days, &year],
    )
    .await?;
    tx.commit().await?;
    reload_reference(&state).await;
    Ok(axum::Json(
        serde_json::json!({ "year": year, "holidays": days }),
    ))
}

/// Picks up a reference change at once on this instance (the others poll for it). The change
/// is committed either way, so a failed reload is only logged: the next poll retries it.
async fn reload_reference(state: &AppState) {
    if let Err(e) = state.reference.reload(&state.pool).await {
        tracing::warn!(error = %e, "reloading reference data failed");
    }
}
