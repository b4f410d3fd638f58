//! The operations API (`/v1/ops/...`, ops bearer token): fund parameters, the trading
//! calendar, daily income, the daily cycle, a day's holdings, reconciliation files and retention. Handlers
//! parse and check input, run the job and map its error; the jobs are `crate::income` and
//! `crate::cycle`. (The simulated clock's routes are `mmf_shared::http::clock_routes`.)

pub mod calendar;
pub mod cycles;
pub mod funds;
pub mod holdings;
pub mod income;
pub mod reconciliation;
pub mod retention;

use calendar::put_calendar;
use cycles::{get_cycle, post_cycle};
use funds::put_fund;
use holdings::get_holdings;
use income::{get_income, put_income};
use reconciliation::{get_confirmations, get_discrepancies, get_index, post_requests};
use retention::post_retention;

use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;
use chrono::NaiveDate;
use mmf_shared::http::{ApiError, ErrorCode};

/// Request files of a busy partner run to tens of megabytes.
const MAX_FILE: usize = 256 << 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/ops/funds/{code}", put(put_fund))
        .route("/v1/ops/funds/{code}/holdings", get(get_holdings))
        .route("/v1/ops/calendar/{year}", put(put_calendar))
        .route(
            "/v1/ops/funds/{code}/income/{date}",
            put(put_income).get(get_income),
        )
        .route(
            "/v1/ops/cycles/{trade_date}",
            post(post_cycle).get(get_cycle),
        )
        .route(
            "/v1/ops/reconciliation/{partner}/{date}/confirmations",
            get(get_confirmations),
        )
        .route(
            "/v1/ops/reconciliation/{partner}/{date}/index",
            get(get_index),
        )
        .route(
            "/v1/ops/reconciliation/{partner}/{date}/requests",
            post(post_requests).layer(DefaultBodyLimit::max(MAX_FILE)),
        )
        .route(
            "/v1/ops/reconciliation/{partner}/{date}/discrepancies",
            get(get_discrepancies),
        )
        .route("/v1/ops/retention", post(post_retention))
}

/// A `YYYY-MM-DD` path segment.
fn parse_day(field: &str, s: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidDate,
            format!("{field} must be a YYYY-MM-DD date"),
        )
        .with_field(field)
    })
}

/// Picks up a reference change at once on this instance (the others poll for it). The change
/// is committed either way, so a failed reload is only logged: the next poll retries it.
async fn reload_reference(state: &AppState) {
    if let Err(e) = state.reference.reload(&state.db).await {
        tracing::warn!(error = %e, "reloading reference data failed");
    }
}
