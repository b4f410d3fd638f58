//! Partner request signing (HMAC-SHA256 over method, path and query, timestamp and body) and
//! the ops bearer token. Both services use the same middleware.

use crate::clock::Clock;
use crate::db::DbPool;
use crate::http::ApiError;
use crate::http::ErrorCode;
use crate::schema::partners;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Requests older or newer than this many seconds are refused.
pub const TIMESTAMP_WINDOW_SECS: i64 = 300;
const MAX_BODY: usize = 64 * 1024;

/// The authenticated partner, put into request extensions by [`require_partner`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartnerId(pub String);

/// `X-Signature` for a request: lowercase hex HMAC-SHA256(secret, "METHOD\nPATH_AND_QUERY\nTS\nBODY").
pub fn sign(
    secret: &str,
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{method}\n{path_and_query}\n{timestamp}\n").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn verify(secret: &str, method: &str, pq: &str, ts: i64, body: &[u8], sig_hex: &str) -> bool {
    let Ok(sig) = hex::decode(sig_hex) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{method}\n{pq}\n{ts}\n").as_bytes());
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Partner secrets, read from Postgres and cached; a miss reloads once.
#[derive(Clone)]
pub struct Partners {
    pool: DbPool,
    cache: Arc<RwLock<HashMap<String, String>>>,
}

impl Partners {
    pub fn new(pool: DbPool) -> Partners {
        Partners {
            pool,
            cache: Arc::default(),
        }
    }

    async fn secret(&self, partner: &str) -> Result<Option<String>, ApiError> {
        if let Some(s) = self.cache.read().expect("cache lock").get(partner) {
            return Ok(Some(s.clone()));
        }
        let mut conn = self.pool.get().await?;
        let secret: Option<String> = partners::table
            .find(partner)
            .select(partners::secret)
            .first(&mut conn)
            .await
            .optional()?;
        if let Some(s) = &secret {
            self.cache
                .write()
                .expect("cache lock")
                .insert(partner.to_string(), s.clone());
        }
        Ok(secret)
    }
}

/// Upserts partners from `id:secret` pairs separated by commas (config `MMF_PARTNERS`).
pub async fn seed_partners(pool: &DbPool, spec: &str) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, secret) = pair.split_once(':').ok_or_else(|| {
            anyhow::anyhow!(
                "MMF_PARTNERS entry {id:?} is not id:secret",
                id = pair.split(':').next()
            )
        })?;
        diesel::insert_into(partners::table)
            .values((
                partners::partner_id.eq(id),
                partners::name.eq(id),
                partners::secret.eq(secret),
            ))
            .on_conflict(partners::partner_id)
            .do_update()
            .set(partners::secret.eq(secret))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

#[derive(Clone)]
pub struct PartnerAuth {
    pub partners: Partners,
    pub clock: Clock,
}

fn header<'a>(req: &'a Request, name: &'static str) -> Result<&'a str, ApiError> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(ErrorCode::MissingAuth, format!("header {name} is required"))
                .with_field(name)
        })
}

/// Verifies partner headers and signature; on success the body is passed on untouched.
pub async fn require_partner(
    State(auth): State<PartnerAuth>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let partner = header(&req, "x-partner-id")?.to_string();
    let ts: i64 = header(&req, "x-timestamp")?.parse().map_err(|_| {
        ApiError::new(ErrorCode::BadTimestamp, "X-Timestamp must be unix seconds")
            .with_field("X-Timestamp")
    })?;
    let sig = header(&req, "x-signature")?.to_string();
    if (auth.clock.now().timestamp() - ts).abs() > TIMESTAMP_WINDOW_SECS {
        return Err(ApiError::new(
            ErrorCode::StaleTimestamp,
            "X-Timestamp is outside the ±300 s window",
        )
        .with_field("X-Timestamp"));
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::new(ErrorCode::BodyTooLarge, "request body is too large"))?;
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let secret = auth.partners.secret(&partner).await?;
    let ok = secret.is_some_and(|s| verify(&s, parts.method.as_str(), pq, ts, &bytes, &sig));
    if !ok {
        return Err(
            ApiError::new(ErrorCode::BadSignature, "unknown partner or bad signature")
                .with_field("X-Signature"),
        );
    }
    tracing::Span::current().record("partner_id", partner.as_str());
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(PartnerId(partner));
    Ok(next.run(req).await)
}

/// `Authorization: Bearer <ops token>` for `/v1/ops/...`.
pub async fn require_ops(
    State(token): State<Arc<str>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compare as HMACs so the comparison time does not depend on where the strings differ.
    let digest = |s: &str| sign(&token, "", s, 0, b"");
    match given {
        Some(g) if digest(g) == digest(&token) => Ok(next.run(req).await),
        _ => Err(ApiError::new(
            ErrorCode::BadOpsToken,
            "a valid ops bearer token is required",
        )
        .with_field("Authorization")),
    }
}
