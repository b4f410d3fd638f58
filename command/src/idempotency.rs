//! Partner writes carry a `request_id` unique per partner. The first write stores its response
//! in the same transaction as the work; a retry with the same body replays it, the same
//! `request_id` with another body is a 409.

use axum::http::StatusCode;
use mmf_shared::http::ApiError;
use mmf_shared::http::ErrorCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The stored outcome of a write, replayed to retries.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

pub fn validate_request_id(id: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "request_id",
            "request_id must be 1 to 64 characters of [A-Za-z0-9-_.:]",
        ))
    }
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
pub fn replay(hash: &str, stored_hash: &str, status: i16, body: Value) -> Result<Reply, ApiError> {
    if hash != stored_hash {
        return Err(ApiError::new(
            ErrorCode::RequestIdReused,
            "request_id was already used with a different request",
        )
        .with_field("request_id"));
    }
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    Ok(Reply { status, body })
}

/// Looks up a stored response for (partner, request_id).
pub async fn stored(
    client: &impl deadpool_postgres::GenericClient,
    partner: &str,
    request_id: &str,
) -> Result<Option<(String, i16, Value)>, ApiError> {
    let row = client
        .query_opt(
            "SELECT request_hash, response_status, response_body FROM idempotency WHERE partner_id = $1 AND request_id = $2",
            &[&partner, &request_id],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
}
