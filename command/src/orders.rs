//! Subscriptions, redemptions (normal and fast), cancellation and status lookup. Handlers
//! validate into domain values and compute trade dates; the [`writer`] applies orders to
//! Postgres, many per transaction.

pub mod writer;

use crate::app::AppState;
use crate::idempotency::{self, fingerprint, Reply};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Router};
use mmf_shared::auth::PartnerId;
use mmf_shared::calendar::business_date;
use mmf_shared::http::ErrorCode;
use mmf_shared::http::{ApiError, Json, Path, Query};
use mmf_shared::money::{Money, MoneyError};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use writer::{Cancel, Command, Redeem, Subscribe};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/subscriptions", post(subscribe))
        .route("/v1/redemptions", post(redeem))
        .route("/v1/orders/{order_id}/cancel", post(cancel))
        .route("/v1/orders", get(lookup))
        .route("/v1/orders/{order_id}", get(get_order))
}

fn amount(field: &str, v: &str) -> Result<Money, ApiError> {
    Money::parse_positive(v).map_err(|e| {
        let code = match e {
            MoneyError::TooLarge => ErrorCode::AmountTooLarge,
            _ => ErrorCode::InvalidAmount,
        };
        ApiError::new(code, format!("{field} {e}")).with_field(field)
    })
}

fn account_id(v: &str) -> Result<(), ApiError> {
    if v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "account_id",
            "account_id is the 12-digit fund account number",
        ))
    }
}

fn respond(reply: Reply) -> impl IntoResponse {
    (reply.status, axum::Json(reply.body))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRequest {
    request_id: String,
    account_id: String,
    fund_code: String,
    /// Yuan, e.g. `"100.00"`.
    amount: String,
}

/// Accepts a subscription; units are credited when the trade date is confirmed.
#[utoipa::path(post, path = "/v1/subscriptions", request_body = SubscribeRequest,
    responses((status = 201, description = "order accepted"), (status = 400, body = mmf_shared::http::ErrorBody),
              (status = 404, body = mmf_shared::http::ErrorBody), (status = 409, body = mmf_shared::http::ErrorBody),
              (status = 422, body = mmf_shared::http::ErrorBody)))]
pub async fn subscribe(
    State(state): State<AppState>,
    Extension(PartnerId(partner)): Extension<PartnerId>,
    Json(req): Json<SubscribeRequest>,
) -> Result<impl IntoResponse, ApiError> {
    tracing::info!(request_id = %req.request_id, "subscribe");
    idempotency::validate_request_id(&req.request_id)?;
    account_id(&req.account_id)?;
    let amount = amount("amount", &req.amount)?;
    // The fund's existence and limits are checked by the order statement, against the funds
    // table as it is when the order is applied (any instance may have just changed it).
    let now = state.clock.now();
    let hash = fingerprint(
        "subscription",
        &[&req.account_id, &req.fund_code, &amount.to_string()],
    );
    let cmd = Command::Subscribe(Subscribe {
        partner,
        request_id: req.request_id,
        hash,
        account_id: req.account_id,
        fund_code: req.fund_code,
        amount: amount.decimal(),
        trade_date: state.reference.calendar().trade_date(now),
        day: business_date(now),
        now,
    });
    Ok(respond(state.writer.submit(cmd).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    request_id: String,
    account_id: String,
    fund_code: String,
    /// Units, e.g. `"100.00"` (1 unit = 1 yuan).
    units: String,
    /// `normal` (settled at confirmation) or `fast` (paid at once).
    mode: String,
    /// Fast redemptions only: `withdrawal` (capped per day, the default) or `payment`.
    purpose: Option<String>,
}

/// Accepts a redemption. Units are debited at once; fast redemptions are also paid at once.
#[utoipa::path(post, path = "/v1/redemptions", request_body = RedeemRequest,
    responses((status = 201, description = "order accepted (normal) or confirmed (fast)"),
              (status = 400, body = mmf_shared::http::ErrorBody), (status = 404, body = mmf_shared::http::ErrorBody),
              (status = 409, body = mmf_shared::http::ErrorBody), (status = 422, body = mmf_shared::http::ErrorBody)))]
pub async fn redeem(
    State(state): State<AppState>,
    Extension(PartnerId(partner)): Extension<PartnerId>,
    Json(req): Json<RedeemRequest>,
) -> Result<impl IntoResponse, ApiError> {
    tracing::info!(request_id = %req.request_id, "redeem");
    idempotency::validate_request_id(&req.request_id)?;
    account_id(&req.account_id)?;
    let units = amount("units", &req.units)?;
    let now = state.clock.now();
    let calendar = state.reference.calendar();
    let trade_date = calendar.trade_date(now);
    let today = business_date(now);
    // Redeemed units keep earning until the next trading day after the trade date (the day a
    // subscription of the same trade date starts earning); fast redemptions stop at once.
    let (kind, purpose, capped, effective, status) =
        match (req.mode.as_str(), req.purpose.as_deref()) {
            ("normal", None) => (
                "redemption",
                None,
                false,
                calendar.next_trading_day(trade_date),
                "accepted",
            ),
            ("normal", Some(_)) => {
                return Err(ApiError::invalid(
                    "purpose",
                    "purpose applies to fast redemptions only",
                ))
            }
            ("fast", None | Some("withdrawal")) => (
                "fast_redemption",
                Some("withdrawal"),
                true,
                today,
                "confirmed",
            ),
            ("fast", Some("payment")) => (
                "fast_redemption",
                Some("payment"),
                false,
                today,
                "confirmed",
            ),
            ("fast", Some(_)) => {
                return Err(ApiError::invalid(
                    "purpose",
                    "purpose is withdrawal or payment",
                ))
            }
            _ => return Err(ApiError::invalid("mode", "mode is normal or fast")),
        };
    let hash = fingerprint(
        kind,
        &[
            &req.account_id,
            &req.fund_code,
            &units.to_string(),
            purpose.unwrap_or(""),
        ],
    );
    let cmd = Command::Redeem(Redeem {
        partner,
        request_id: req.request_id,
        hash,
        account_id: req.account_id,
        fund_code: req.fund_code,
        kind,
        purpose,
        units: units.decimal(),
        trade_date,
        effective_date: effective,
        status,
        day: today,
        capped,
        now,
    });
    Ok(respond(state.writer.submit(cmd).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    request_id: String,
}

fn order_id(v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid("order_id", "order_id is a positive integer"))
}

/// Cancels a subscription or normal redemption before the cut-off of its trade date.
#[utoipa::path(post, path = "/v1/orders/{order_id}/cancel", request_body = CancelRequest,
    responses((status = 200, description = "order cancelled"), (status = 404, body = mmf_shared::http::ErrorBody),
              (status = 409, body = mmf_shared::http::ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(PartnerId(partner)): Extension<PartnerId>,
    Path(id): Path<String>,
    Json(req): Json<CancelRequest>,
) -> Result<impl IntoResponse, ApiError> {
    tracing::info!(request_id = %req.request_id, order_id = %id, "cancel");
    idempotency::validate_request_id(&req.request_id)?;
    let order_id = order_id(&id)?;
    // The order's account picks the writer shard, so the cancel is ordered with its other orders.
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT account_id FROM orders WHERE order_id = $1 AND partner_id = $2",
            &[&order_id, &partner],
        )
        .await?;
    drop(client);
    let Some(row) = row else {
        return Err(ApiError::new(ErrorCode::OrderNotFound, "no such order").with_field("order_id"));
    };
    let now = state.clock.now();
    let cmd = Command::Cancel(Cancel {
        partner,
        hash: fingerprint("cancel", &[&order_id.to_string()]),
        request_id: req.request_id,
        account_id: row.get(0),
        order_id,
        open_from: state.reference.calendar().trade_date(now),
        now,
    });
    Ok(respond(state.writer.submit(cmd).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct LookupQuery {
    request_id: Option<String>,
}

/// The current state of the order a request created (for a partner whose call timed out).
#[utoipa::path(get, path = "/v1/orders", params(LookupQuery),
    responses((status = 200, description = "the order"), (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn lookup(
    State(state): State<AppState>,
    Extension(PartnerId(partner)): Extension<PartnerId>,
    Query(q): Query<LookupQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let request_id = q
        .request_id
        .ok_or_else(|| ApiError::invalid("request_id", "request_id is required"))?;
    idempotency::validate_request_id(&request_id)?;
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT order_json(o) FROM orders o WHERE partner_id = $1 AND request_id = $2",
            &[&partner, &request_id],
        )
        .await?;
    row.map(|r| axum::Json(r.get(0))).ok_or_else(|| {
        ApiError::new(ErrorCode::OrderNotFound, "no order for this request_id")
            .with_field("request_id")
    })
}

/// One order by id.
#[utoipa::path(get, path = "/v1/orders/{order_id}",
    responses((status = 200, description = "the order"), (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn get_order(
    State(state): State<AppState>,
    Extension(PartnerId(partner)): Extension<PartnerId>,
    Path(id): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let order_id = order_id(&id)?;
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT order_json(o) FROM orders o WHERE partner_id = $1 AND order_id = $2",
            &[&partner, &order_id],
        )
        .await?;
    row.map(|r| axum::Json(r.get(0))).ok_or_else(|| {
        ApiError::new(ErrorCode::OrderNotFound, "no such order").with_field("order_id")
    })
}
