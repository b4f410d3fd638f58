//! `POST /v1/redemptions`: normal redemptions (units debited at once, cash settled at
//! confirmation) and fast ones (debited and paid at once).

use super::{amount, fund_code, request_date, respond};
use crate::idempotency::fingerprint;
use crate::state::AppState;
use crate::writer::{Command, Redeem};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Extension;
use mmf_domain::calendar::business_date;
use mmf_domain::ids::{AccountId, RequestId};
use mmf_domain::orders::{Purpose, Redemption, RedemptionMode};
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
    /// The Shanghai day (`YYYY-MM-DD`) the request was first sent, the same on every retry:
    /// with it, a retry older than the request-key window (35 days) is refused
    /// (`request_expired`) rather than taken as a new request.
    request_date: Option<String>,
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
    let request_id = RequestId::try_from(req.request_id)?;
    let account_id = AccountId::try_from(req.account_id)?;
    let units = amount("units", &req.units)?.as_units();
    let mode = RedemptionMode::parse(&req.mode)
        .ok_or_else(|| ApiError::invalid("mode", "mode is normal or fast"))?;
    let purpose = match req.purpose.as_deref() {
        None => None,
        Some(p) => Some(
            Purpose::parse(p)
                .ok_or_else(|| ApiError::invalid("purpose", "purpose is withdrawal or payment"))?,
        ),
    };
    let what = Redemption::of_request(mode, purpose)
        .ok_or_else(|| ApiError::invalid("purpose", "purpose applies to fast redemptions only"))?;
    let fund_code = fund_code(req.fund_code)?;
    let now = state.clock.now();
    let request_date = request_date(&state, req.request_date.as_deref(), now)?;
    let calendar = state.reference.calendar();
    let trade_date = calendar.trade_date(now).date();
    let today = business_date(now);
    // Redeemed units keep earning until the next trading day after the trade date (the day a
    // subscription of the same trade date starts earning); fast redemptions stop at once.
    let effective_date = match what {
        Redemption::Normal => calendar.next_trading_day(trade_date),
        _ => today,
    };
    let hash = fingerprint(
        what.kind().as_str(),
        &[
            account_id.as_str(),
            fund_code.as_str(),
            &units.to_string(),
            what.purpose().map_or("", Purpose::as_str),
        ],
        request_date,
    );
    let cmd = Command::Redeem(Redeem {
        partner,
        request_id,
        hash,
        account_id,
        fund_code,
        what,
        units,
        trade_date,
        effective_date,
        day: today,
        now,
    });
    Ok(respond(state.writer.submit(cmd).await?))
}
