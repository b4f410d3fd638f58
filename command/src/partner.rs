//! The partner API: open an account, subscribe, redeem, cancel, look an order up. Requests are
//! signed by the partner (`mmf_shared::auth`); handlers validate into domain values, compute
//! trade dates and hand orders to the [`crate::writer`].

pub mod cancel;
pub mod lookup;
pub mod open_account;
pub mod redeem;
pub mod subscribe;

pub use lookup::Order;

use crate::idempotency::Reply;
use crate::state::AppState;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use chrono::NaiveDate;
use mmf_domain::calendar::business_date;
use mmf_domain::ids::FundCode;
use mmf_domain::money::{Amount, MoneyError};
use mmf_domain::orders::{check_request_date, RequestDateRefusal};
use mmf_shared::http::{ApiError, ErrorCode};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/accounts", post(open_account::open_account))
        .route("/v1/subscriptions", post(subscribe::subscribe))
        .route("/v1/redemptions", post(redeem::redeem))
        .route("/v1/orders/{order_id}/cancel", post(cancel::cancel))
        .route("/v1/orders", get(lookup::lookup))
        .route("/v1/orders/{order_id}", get(lookup::get_order))
}

/// A positive amount or number of units with at most two decimals.
fn amount(field: &str, v: &str) -> Result<Amount, ApiError> {
    Amount::parse_positive(v).map_err(|e| {
        let code = match e {
            MoneyError::TooLarge => ErrorCode::AmountTooLarge,
            _ => ErrorCode::InvalidAmount,
        };
        ApiError::new(code, format!("{field} {e}")).with_field(field)
    })
}

/// A fund code in an order. One that cannot be a fund's is refused as an unknown fund (422),
/// as the order statement refuses a well-formed code that names no fund.
fn fund_code(v: String) -> Result<FundCode, ApiError> {
    FundCode::try_from(v)
        .map_err(|_| ApiError::new(ErrorCode::UnknownFund, "no such fund").with_field("fund_code"))
}

/// The optional `request_date` of a write: the Shanghai day the partner first sent the
/// request, the same on every retry. Accepted while the request's key is kept
/// (`MMF_REQUEST_KEY_DAYS`), so a retry of an older request is refused, never taken as new.
fn request_date(
    state: &AppState,
    v: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<NaiveDate>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    let date = NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
        ApiError::new(ErrorCode::InvalidDate, "request_date is YYYY-MM-DD")
            .with_field("request_date")
    })?;
    let key_days = state.config.cycle.request_key_days;
    match check_request_date(date, business_date(now), key_days) {
        Ok(()) => Ok(Some(date)),
        Err(RequestDateRefusal::InFuture) => Err(ApiError::new(
            ErrorCode::DateInFuture,
            "request_date is after today (Asia/Shanghai)",
        )
        .with_field("request_date")),
        Err(RequestDateRefusal::Expired) => Err(ApiError::new(
            ErrorCode::RequestExpired,
            format!("request_date is more than {key_days} days ago: the request can no longer be told from a retry"),
        )
        .with_field("request_date")),
    }
}

fn order_id(v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid("order_id", "order_id is a positive integer"))
}

/// The answer to a write: its stored response, replayed verbatim to retries.
fn respond(reply: Reply) -> impl IntoResponse {
    (reply.status, axum::Json(reply.body))
}
