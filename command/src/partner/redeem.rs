//! `POST /v1/redemptions`: normal redemptions (units debited at once, cash settled at
//! confirmation) and fast ones (debited and paid at once).

use super::{account_id, amount, respond};
use crate::idempotency::{self, fingerprint};
use crate::state::AppState;
use crate::writer::{Command, Redeem};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Extension;
use mmf_domain::calendar::business_date;
use mmf_shared::auth::PartnerId;
use mmf_shared::http::{ApiError, Json};
use serde::Deserialize;
use utoipa::ToSchema;

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
    responses((status = 201, body = super::Order, description = "order accepted (normal) or confirmed (fast)"),
              (status = 404, body = mmf_shared::http::ErrorBody), (status = 409, body = mmf_shared::http::ErrorBody),
              (status = 422, body = mmf_shared::http::ErrorBody)))]
pub async fn redeem(
    State(state): State<AppState>,
    Extension(PartnerId(partner)): Extension<PartnerId>,
    Json(req): Json<RedeemRequest>,
) -> Result<impl IntoResponse, ApiError> {
    mmf_shared::http::record_request(Some(&req.request_id), None);
    idempotency::validate_request_id(&req.request_id)?;
    account_id(&req.account_id)?;
    let units = amount("units", &req.units)?;
    let now = state.clock.now();
    let calendar = state.reference.calendar();
    let trade_date = calendar.trade_date(now).date();
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
