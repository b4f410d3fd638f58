//! `PUT|GET /v1/ops/funds/{code}/income/{date}`: a fund's per-10k income of a calendar day.

use super::parse_day;
use crate::income::{income_day, parse_per10k, publish, IncomeDay};
use crate::state::AppState;
use axum::extract::State;
use mmf_shared::http::{ApiError, ErrorCode, Json, Path};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncomeRequest {
    /// Income per 10,000 units with at most 4 decimals, e.g. `"0.6500"`; may be negative.
    per10k: String,
}

/// Publishes a fund's income per 10,000 units for one calendar day.
#[utoipa::path(put, path = "/v1/ops/funds/{code}/income/{date}", request_body = IncomeRequest,
    responses((status = 200, body = IncomeDay), (status = 404, body = mmf_shared::http::ErrorBody),
              (status = 409, body = mmf_shared::http::ErrorBody)))]
pub async fn put_income(
    State(state): State<AppState>,
    Path((code, date)): Path<(String, String)>,
    Json(req): Json<IncomeRequest>,
) -> Result<axum::Json<IncomeDay>, ApiError> {
    let day = parse_day("date", &date)?;
    let per10k = parse_per10k(&req.per10k).ok_or_else(|| {
        ApiError::invalid(
            "per10k",
            "per10k is a decimal string with at most 4 decimals, e.g. \"0.6500\" or \"-0.0100\"",
        )
    })?;
    let now = state.clock.now();
    Ok(axum::Json(
        publish(&state.db, &code, day, per10k, now).await?,
    ))
}

/// A fund's published income for one day.
#[utoipa::path(get, path = "/v1/ops/funds/{code}/income/{date}",
    responses((status = 200, body = IncomeDay), (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn get_income(
    State(state): State<AppState>,
    Path((code, date)): Path<(String, String)>,
) -> Result<axum::Json<IncomeDay>, ApiError> {
    let day = parse_day("date", &date)?;
    income_day(&state.db, &code, day)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::new(ErrorCode::IncomeNotPublished, "no income for this day"))
}
