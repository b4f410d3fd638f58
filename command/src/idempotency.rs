//! Partner writes carry a `request_id` unique per partner. The first write stores its response
//! in the same transaction as the work; a retry with the same body replays it, the same
//! `request_id` with another body is a 409.

use axum::http::StatusCode;
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use mmf_shared::http::{ApiError, ErrorCode};
use mmf_shared::schema::{idempotency, request_keys};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The stored outcome of a write, replayed to retries.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

/// An earlier write's record: what it asked for (fingerprint) and what it was answered.
#[derive(Debug, Clone, Queryable)]
pub struct Stored {
    pub request_hash: String,
    pub response_status: i16,
    pub response_body: Value,
}

/// Fingerprint of what a request asks for (its meaning, not its bytes: "100" and "100.00"
/// agree), with its `request_date` when it has one (undated requests keep the fingerprint they
/// always had).
pub fn fingerprint(kind: &str, fields: &[&str], request_date: Option<NaiveDate>) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    let date = request_date.map(|d| d.to_string());
    for f in fields.iter().copied().chain(date.as_deref()) {
        h.update([0u8]);
        h.update(f.as_bytes());
    }
    hex::encode(h.finalize())
}

/// `response_status` of a request known only by its compact key (`request_keys`): the full
/// record with the answer left with the retention window.
pub const KEY_ONLY: i16 = 0;

/// What a stored record means for a request with fingerprint `hash`: a replay of the stored
/// answer, `request_id_reused` for another request, `request_expired` for the same request
/// past its replay window.
pub fn replay(hash: &str, stored: &Stored) -> Result<Reply, ApiError> {
    if hash != stored.request_hash {
        return Err(ApiError::new(
            ErrorCode::RequestIdReused,
            "request_id was already used with a different request",
        )
        .with_field("request_id"));
    }
    if stored.response_status == KEY_ONLY {
        let mut e = ApiError::new(
            ErrorCode::RequestExpired,
            "this request was processed; its answer is no longer kept for replay \
             (GET /v1/orders?request_id= returns the order)",
        )
        .with_field("request_id");
        if let Value::Object(m) = &stored.response_body {
            for (k, v) in m {
                e = e.with_detail(k, v.clone());
            }
        }
        return Err(e);
    }
    let status = u16::try_from(stored.response_status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    Ok(Reply {
        status,
        body: stored.response_body.clone(),
    })
}

/// The stored record of (partner, request_id), if any: the full one, else its compact key.
pub async fn stored(
    c: &mut AsyncPgConnection,
    partner: &str,
    request_id: &str,
) -> QueryResult<Option<Stored>> {
    let full = idempotency::table
        .find((partner, request_id))
        .select((
            idempotency::request_hash,
            idempotency::response_status,
            idempotency::response_body,
        ))
        .first(c)
        .await
        .optional()?;
    if full.is_some() {
        return Ok(full);
    }
    let key: Option<(Vec<u8>, Option<i64>, NaiveDate)> = request_keys::table
        .find((partner, request_id))
        .select((
            request_keys::request_hash,
            request_keys::order_id,
            request_keys::day,
        ))
        .first(c)
        .await
        .optional()?;
    Ok(key.map(|(hash, order_id, day)| Stored {
        request_hash: hex::encode(hash),
        response_status: KEY_ONLY,
        response_body: serde_json::json!({"order_id": order_id, "day": day}),
    }))
}
