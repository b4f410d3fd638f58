//! `POST /v1/subscriptions`: a subscription of cash into a fund, accepted at once and confirmed
//! (units credited) by the daily cycle of its trade date.

use super::{amount, fund_code, request_date, respond};
use crate::idempotency::fingerprint;
use crate::state::AppState;
use crate::writer::{Command, Subscribe};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Extension;
use mmf_domain::calendar::business_date;
use mmf_domain::ids::{AccountId, RequestId};
use mmf_shared::auth::PartnerId;
use mmf_shared::http::{ApiError, Json};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRequest {
    request_id: String,
    account_id: String,
    fund_code: String,
    /// Yuan, e.g. `"100.00"`.
    amount: String,
    /// The Shanghai day (`YYYY-MM-DD`) the request was first sent, the same on every retry:
    /// with it, a retry older than the request-key window (35 days) is refused
    /// (`request_expired`) rather than taken as a new request.
    request_date: Option<String>,
}

/// Accepts a subscription; units are credited when the trade date is confirmed.
#[utoipa::path(post, path = "/v1/subscriptions", request_body = SubscribeRequest,
    responses((status = 201, body = super::Order, description = "order accepted"),
              (status = 404, body = mmf_shared::http::ErrorBody), (status = 409, body = mmf_shared::http::ErrorBody),
              (status = 422, body = mmf_shared::http::ErrorBody)))]
pub async fn subscribe(
    State(state): State<AppState>,
    Extension(PartnerId(partner)): Extension<PartnerId>,
    Json(req): Json<SubscribeRequest>,
) -> Result<impl IntoResponse, ApiError> {
    mmf_shared::http::record_request(Some(&req.request_id), None);
    let request_id = RequestId::try_from(req.request_id)?;
    let account_id = AccountId::try_from(req.account_id)?;
    let amount = amount("amount", &req.amount)?;
    // The fund's existence and limits are checked by the order statement, against the funds
    // table as it is when the order is applied (any instance may have just changed it).
    let fund_code = fund_code(req.fund_code)?;
    let now = state.clock.now();
    let request_date = request_date(&state, req.request_date.as_deref(), now)?;
    let hash = fingerprint(
        "subscription",
        &[account_id.as_str(), fund_code.as_str(), &amount.to_string()],
        request_date,
    );
    let cmd = Command::Subscribe(Subscribe {
        partner,
        request_id,
        hash,
        account_id,
        fund_code,
        amount,
        trade_date: state.reference.calendar().trade_date(now).date(),
        day: business_date(now),
        now,
    });
    Ok(respond(state.writer.submit(cmd).await?))
}
