//! Partner writes carry a `request_id` unique per partner. The first write stores its response
//! in the same transaction as the work; a retry with the same body replays it, the same
//! `request_id` with another body is a 409.

use axum::http::StatusCode;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use mmf_shared::http::{ApiError, ErrorCode};
use mmf_shared::schema::idempotency;
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

/// Fingerprint of what a request asks for (its meaning, not its bytes: "100" and "100.00" agree).
pub fn fingerprint(kind: &str, fields: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    for f in fields {
        h.update([0u8]);
        h.update(f.as_bytes());
    }
    hex::encode(h.finalize())
}

/// What a stored record means for a request with fingerprint `hash`.
pub fn replay(hash: &str, stored: &Stored) -> Result<Reply, ApiError> {
    if hash != stored.request_hash {
        return Err(ApiError::new(
            ErrorCode::RequestIdReused,
            "request_id was already used with a different request",
        )
        .with_field("request_id"));
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

/// The stored record of (partner, request_id), if any.
pub async fn stored(
    c: &mut AsyncPgConnection,
    partner: &str,
    request_id: &str,
) -> QueryResult<Option<Stored>> {
    idempotency::table
        .find((partner, request_id))
        .select((
            idempotency::request_hash,
            idempotency::response_status,
            idempotency::response_body,
        ))
        .first(c)
        .await
        .optional()
}
