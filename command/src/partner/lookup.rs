//! `GET /v1/orders?request_id=` (a partner whose call timed out asks what became of it) and
//! `GET /v1/orders/{order_id}`: the order as it stands now.

use super::order_id;
use crate::state::AppState;
use axum::extract::State;
use axum::Extension;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mmf_domain::ids::RequestId;
use mmf_shared::auth::PartnerId;
use mmf_shared::http::{ApiError, ErrorCode, Path, Query};
use mmf_shared::schema::orders;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// An order as partners see it. Writes answer with it as it was created (stored for replays by
/// the order statement's `order_json`, which writes the same fields the same way).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = orders, check_for_backend(diesel::pg::Pg))]
pub struct Order {
    pub order_id: i64,
    pub request_id: String,
    pub account_id: String,
    pub fund_code: String,
    /// `subscription`, `redemption` or `fast_redemption`.
    pub kind: String,
    /// Fast redemptions: `withdrawal` or `payment`.
    pub purpose: Option<String>,
    /// Cash (subscriptions) or units (redemptions), 2 decimals.
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub amount: Decimal,
    /// `accepted`, `confirmed` or `cancelled`.
    pub status: String,
    pub trade_date: NaiveDate,
    /// When the units start (subscriptions) or stop (redemptions) earning.
    pub effective_date: Option<NaiveDate>,
    #[serde(with = "mmf_shared::json::utc_micros")]
    #[schema(value_type = String, example = "2026-11-26T02:00:00.000000Z")]
    pub accepted_at: DateTime<Utc>,
    #[serde(with = "mmf_shared::json::utc_micros::option")]
    #[schema(value_type = Option<String>)]
    pub confirmed_at: Option<DateTime<Utc>>,
    #[serde(with = "mmf_shared::json::utc_micros::option")]
    #[schema(value_type = Option<String>)]
    pub cancelled_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, IntoParams)]
pub struct LookupQuery {
    request_id: Option<String>,
}

fn not_found(field: &str, message: &str) -> ApiError {
    ApiError::new(ErrorCode::OrderNotFound, message).with_field(field)
}

/// The current state of the order a request created (for a partner whose call timed out).
#[utoipa::path(get, path = "/v1/orders", params(LookupQuery),
    responses((status = 200, body = Order), (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn lookup(
    State(state): State<AppState>,
    Extension(PartnerId(partner)): Extension<PartnerId>,
    Query(q): Query<LookupQuery>,
) -> Result<axum::Json<Order>, ApiError> {
    let request_id = q
        .request_id
        .ok_or_else(|| ApiError::invalid("request_id", "request_id is required"))?;
    let request_id = RequestId::try_from(request_id)?;
    mmf_shared::http::record_request(Some(request_id.as_str()), None);
    orders::table
        .filter(orders::partner_id.eq(&partner))
        .filter(orders::request_id.eq(request_id.as_str()))
        .select(Order::as_select())
        .first(&mut state.conn().await?)
        .await
        .optional()?
        .map(axum::Json)
        .ok_or_else(|| not_found("request_id", "no order for this request_id"))
}

/// One order by id.
#[utoipa::path(get, path = "/v1/orders/{order_id}",
    responses((status = 200, body = Order), (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn get_order(
    State(state): State<AppState>,
    Extension(PartnerId(partner)): Extension<PartnerId>,
    Path(id): Path<String>,
) -> Result<axum::Json<Order>, ApiError> {
    let order_id = order_id(&id)?;
    mmf_shared::http::record_request(None, Some(order_id));
    orders::table
        .find(order_id)
        .filter(orders::partner_id.eq(&partner))
        .select(Order::as_select())
        .first(&mut state.conn().await?)
        .await
        .optional()?
        .map(axum::Json)
        .ok_or_else(|| not_found("order_id", "no such order"))
}
