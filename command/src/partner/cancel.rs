//! `POST /v1/orders/{order_id}/cancel`: withdraws a subscription or normal redemption before
//! the cut-off of its trade date.

use super::{order_id, request_date, respond};
use crate::idempotency::{self, fingerprint};
use crate::state::AppState;
use crate::writer::{Cancel, Command};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Extension;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mmf_domain::ids::RequestId;
use mmf_shared::auth::PartnerId;
use mmf_shared::http::{ApiError, ErrorCode, Json, Path};
use mmf_shared::schema::orders;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    request_id: String,
    /// The Shanghai day (`YYYY-MM-DD`) the request was first sent, the same on every retry:
    /// with it, a retry older than the request-key window (35 days) is refused
    /// (`request_expired`) rather than taken as a new request.
    request_date: Option<String>,
}

/// Cancels a subscription or normal redemption before the cut-off of its trade date.
#[utoipa::path(post, path = "/v1/orders/{order_id}/cancel", request_body = CancelRequest,
    responses((status = 200, body = super::Order, description = "order cancelled"),
              (status = 404, body = mmf_shared::http::ErrorBody), (status = 409, body = mmf_shared::http::ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(PartnerId(partner)): Extension<PartnerId>,
    Path(id): Path<String>,
    Json(req): Json<CancelRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let request_id = RequestId::try_from(req.request_id)?;
    let order_id = order_id(&id)?;
    mmf_shared::http::record_request(Some(request_id.as_str()), Some(order_id));
    let now = state.clock.now();
    let request_date = request_date(&state, req.request_date.as_deref(), now)?;
    let hash = fingerprint("cancel", &[&order_id.to_string()], request_date);
    let mut conn = state.conn().await?;
    // The order's account picks the writer shard, so the cancel is ordered with its other orders.
    let account: Option<String> = orders::table
        .find(order_id)
        .filter(orders::partner_id.eq(&partner))
        .select(orders::account_id)
        .first(&mut conn)
        .await
        .optional()?;
    let Some(account_id) = account else {
        // The order may have left Postgres (retention) after this request cancelled it.
        if let Some(prior) = idempotency::stored(&mut conn, &partner, request_id.as_str()).await? {
            return Ok(respond(idempotency::replay(&hash, &prior)?));
        }
        return Err(ApiError::new(ErrorCode::OrderNotFound, "no such order").with_field("order_id"));
    };
    drop(conn);
    let cmd = Command::Cancel(Cancel {
        partner,
        hash,
        request_id,
        account_id,
        order_id,
        open_from: state.reference.calendar().trade_date(now).date(),
        now,
    });
    Ok(respond(state.writer.submit(cmd).await?))
}
