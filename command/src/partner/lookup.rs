//! `GET /v1/orders?request_id=` (a partner whose call timed out asks what became of it) and
//! `GET /v1/orders/{order_id}`: the order as it stands now. An order older than the retention
//! window is read from the history store.

use super::order_id;
use crate::state::AppState;
use axum::extract::State;
use axum::Extension;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mmf_domain::ids::RequestId;
use mmf_shared::auth::PartnerId;
use mmf_shared::db::DbConn;
use mmf_shared::http::{ApiError, ErrorCode, Path, Query};
use mmf_shared::schema::{retained_records, trade_confirmations};
use mmf_shared::views::order_states;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// An order as partners see it. Writes answer with it as it was created (stored for replays by
/// the order statement's `order_json`, which writes the same fields the same way).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = order_states, check_for_backend(diesel::pg::Pg))]
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
    let mut conn = state.conn().await?;
    let current = order_states::table
        .filter(order_states::partner_id.eq(&partner))
        .filter(order_states::request_id.eq(request_id.as_str()))
        .select(Order::as_select())
        .first(&mut conn)
        .await
        .optional()?;
    or_from_history(
        &state,
        conn,
        &partner,
        current,
        HistoryKey::Request(request_id.as_str()),
    )
    .await?
    .map(axum::Json)
    .ok_or_else(|| not_found("request_id", "no order for this request_id"))
}

/// The order Postgres found, or else the history store's: orders older than the retention
/// window are only there. Until retention first deletes orders, Postgres holds them all.
async fn or_from_history(
    state: &AppState,
    mut conn: DbConn,
    partner: &str,
    current: Option<Order>,
    key: HistoryKey<'_>,
) -> Result<Option<Order>, ApiError> {
    if current.is_some() {
        return Ok(current);
    }
    let retained: bool = diesel::select(diesel::dsl::exists(
        retained_records::table.filter(retained_records::what.eq("orders")),
    ))
    .get_result(&mut conn)
    .await?;
    if !retained {
        return Ok(None);
    }
    match from_history(&state.ch, partner, key).await? {
        Some(order) => Ok(Some(with_confirmation(&mut conn, order).await?)),
        None => Ok(None),
    }
}

/// The history store keeps a confirmed order as it was accepted (confirmation does not
/// rewrite order rows); its trade date's confirmation, kept in Postgres, applies as in the
/// `order_states` view.
async fn with_confirmation(conn: &mut DbConn, mut order: Order) -> Result<Order, ApiError> {
    if order.status != "accepted" || !matches!(order.kind.as_str(), "subscription" | "redemption") {
        return Ok(order);
    }
    let confirmation: Option<(NaiveDate, DateTime<Utc>, i64)> = trade_confirmations::table
        .find(order.trade_date)
        .select((
            trade_confirmations::effective_date,
            trade_confirmations::confirmed_at,
            trade_confirmations::through_order_id,
        ))
        .first(conn)
        .await
        .optional()?;
    if let Some((effective, at, through)) = confirmation {
        if order.order_id <= through {
            order.status = "confirmed".into();
            order.confirmed_at = Some(at);
            if order.kind == "subscription" {
                order.effective_date = Some(effective);
            }
        }
    }
    Ok(order)
}

/// An order as the history store holds it (its latest version; times to the second). Read by
/// position: ClickHouse 18.16 lets an alias shadow a column of the same name, so the
/// converted columns are named apart.
#[derive(clickhouse::Row, Deserialize)]
struct HistoryOrder {
    order_id: u64,
    request_id: String,
    account_id: String,
    fund_code: String,
    kind: String,
    purpose: String,
    amount: String,
    status: String,
    trade_date: String,
    effective_date: String,
    accepted_at: u32,
    confirmed_at: u32,
    cancelled_at: u32,
}

#[derive(clickhouse::Row, Deserialize)]
struct OrderKey {
    account_id: String,
    trade_date: String,
    order_id: u64,
}

/// Where to find an order in the history store.
enum HistoryKey<'a> {
    Request(&'a str),
    Order(u64),
}

/// The partner's order from ClickHouse: `order_requests` (by request_id) or `order_ids` (by
/// order id) gives its key in `orders`, so both reads are key lookups.
async fn from_history(
    ch: &clickhouse::Client,
    partner: &str,
    by: HistoryKey<'_>,
) -> Result<Option<Order>, ApiError> {
    let located = match by {
        HistoryKey::Request(request_id) => ch
            .query(
                "SELECT account_id, toString(trade_date) AS day, order_id FROM order_requests FINAL
                 WHERE partner_id = ? AND request_id = ?",
            )
            .bind(partner)
            .bind(request_id),
        HistoryKey::Order(order_id) => ch
            .query(
                "SELECT account_id, toString(trade_date) AS day, order_id FROM order_ids FINAL
                 WHERE order_id = ? AND partner_id = ?",
            )
            .bind(order_id)
            .bind(partner),
    };
    let key: Option<OrderKey> = located.fetch_optional().await?;
    let Some(key) = key else { return Ok(None) };
    let row: Option<HistoryOrder> = ch
        .query(
            "SELECT order_id, request_id, account_id, fund_code, kind, purpose,
                    toString(amount) AS amount_s, status, toString(trade_date) AS trade_date_s,
                    ifNull(toString(effective_date), '') AS effective_date_s,
                    toUInt32(accepted_at) AS accepted_s,
                    ifNull(toUInt32(confirmed_at), 0) AS confirmed_s,
                    ifNull(toUInt32(cancelled_at), 0) AS cancelled_s
             FROM orders FINAL
             WHERE account_id = ? AND trade_date = toDate(?) AND order_id = ? AND partner_id = ?",
        )
        .bind(&key.account_id)
        .bind(&key.trade_date)
        .bind(key.order_id)
        .bind(partner)
        .fetch_optional()
        .await?;
    row.map(HistoryOrder::into_order).transpose()
}

impl HistoryOrder {
    fn into_order(self) -> Result<Order, ApiError> {
        let bad =
            |what: &str| ApiError::internal(format!("history order {}: {what}", self.order_id));
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad("date"));
        let time =
            |secs: u32| DateTime::from_timestamp(i64::from(secs), 0).ok_or_else(|| bad("time"));
        let optional_time = |secs: u32| (secs != 0).then(|| time(secs)).transpose();
        Ok(Order {
            order_id: i64::try_from(self.order_id).map_err(|_| bad("order_id"))?,
            amount: self.amount.parse().map_err(|_| bad("amount"))?,
            trade_date: date(&self.trade_date)?,
            effective_date: (!self.effective_date.is_empty())
                .then(|| date(&self.effective_date))
                .transpose()?,
            accepted_at: time(self.accepted_at)?,
            confirmed_at: optional_time(self.confirmed_at)?,
            cancelled_at: optional_time(self.cancelled_at)?,
            purpose: (!self.purpose.is_empty()).then_some(self.purpose),
            request_id: self.request_id,
            account_id: self.account_id,
            fund_code: self.fund_code,
            kind: self.kind,
            status: self.status,
        })
    }
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
    let mut conn = state.conn().await?;
    let current = order_states::table
        .find(order_id)
        .filter(order_states::partner_id.eq(&partner))
        .select(Order::as_select())
        .first(&mut conn)
        .await
        .optional()?;
    // Ids are positive (order_id checked it).
    let id = u64::try_from(order_id).map_err(ApiError::internal)?;
    or_from_history(&state, conn, &partner, current, HistoryKey::Order(id))
        .await?
        .map(axum::Json)
        .ok_or_else(|| not_found("order_id", "no such order"))
}
