//! Account opening: idempotent per (partner, customer id); the resident ID is checked against
//! GB 11643 and never logged.

use crate::app::AppState;
use crate::idempotency::{self, fingerprint, Reply};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Extension, Router};
use mmf_shared::auth::PartnerId;
use mmf_shared::http::ErrorCode;
use mmf_shared::http::{ApiError, Json};
use mmf_shared::idcard;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/accounts", post(open_account))
}

/// Identity document types (JR/T 0017 codes in the account files).
pub const ID_TYPES: [&str; 4] = [
    "resident_id",
    "passport",
    "hk_macau_permit",
    "taiwan_permit",
];

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAccountRequest {
    request_id: String,
    customer_id: String,
    name: String,
    /// `resident_id` (checked against GB 11643), `passport`, `hk_macau_permit`, `taiwan_permit`.
    id_type: String,
    id_number: String,
    mobile: Option<String>,
}

struct Validated {
    customer_id: String,
    name: String,
    id_type: String,
    id_number: String,
    mobile: Option<String>,
}

fn validate(req: OpenAccountRequest) -> Result<Validated, ApiError> {
    idempotency::validate_request_id(&req.request_id)?;
    let customer_id = req.customer_id.trim().to_string();
    if customer_id.is_empty() || customer_id.len() > 64 || customer_id.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(
            "customer_id",
            "customer_id must be 1 to 64 characters",
        ));
    }
    let name = req.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid("name", "name must be 1 to 60 characters"));
    }
    if !ID_TYPES.contains(&req.id_type.as_str()) {
        return Err(ApiError::invalid(
            "id_type",
            "id_type must be one of resident_id, passport, hk_macau_permit, taiwan_permit",
        ));
    }
    let id_number = req.id_number.trim().to_ascii_uppercase();
    let id_ok = if req.id_type == "resident_id" {
        idcard::is_valid_resident_id(&id_number)
    } else {
        (5..=20).contains(&id_number.len()) && id_number.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    if !id_ok {
        return Err(ApiError::new(
            ErrorCode::InvalidIdNumber,
            "id_number is not a valid identity number",
        )
        .with_field("id_number"));
    }
    let mobile = req
        .mobile
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty());
    if let Some(m) = &mobile {
        let ok = m.len() == 11 && m.starts_with('1') && m.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return Err(ApiError::invalid(
                "mobile",
                "mobile must be an 11-digit mainland number",
            ));
        }
    }
    Ok(Validated {
        customer_id,
        name,
        id_type: req.id_type,
        id_number,
        mobile,
    })
}

/// Opens a fund account, or returns the one this partner's customer already has.
#[utoipa::path(post, path = "/v1/accounts", request_body = OpenAccountRequest,
    responses((status = 201, description = "account opened"), (status = 200, description = "customer already had an account"),
              (status = 400, body = mmf_shared::http::ErrorBody), (status = 409, body = mmf_shared::http::ErrorBody),
              (status = 422, body = mmf_shared::http::ErrorBody)))]
pub async fn open_account(
    State(state): State<AppState>,
    Extension(PartnerId(partner)): Extension<PartnerId>,
    Json(req): Json<OpenAccountRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let request_id = req.request_id.clone();
    tracing::info!(%request_id, "open account");
    let v = validate(req)?;
    let mobile = v.mobile.clone().unwrap_or_default();
    let hash = fingerprint(
        "open_account",
        &[&v.customer_id, &v.name, &v.id_type, &v.id_number, &mobile],
    );
    // A concurrent retry may win the race for the idempotency key: then replay its response.
    for _ in 0..3 {
        if let Some(reply) = try_open(&state, &partner, &request_id, &hash, &v).await? {
            return Ok((reply.status, axum::Json(reply.body)));
        }
    }
    Err(ApiError::unavailable(
        "concurrent requests with this request_id; retry",
    ))
}

async fn try_open(
    state: &AppState,
    partner: &str,
    request_id: &str,
    hash: &str,
    v: &Validated,
) -> Result<Option<Reply>, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if let Some((h, status, body)) = idempotency::stored(&tx, partner, request_id).await? {
        return idempotency::replay(hash, &h, status, body).map(Some);
    }
    let now = state.clock.now();
    let inserted = tx
        .query_opt(
            "INSERT INTO accounts (account_id, partner_id, customer_id, name, id_type, id_number, id_masked, mobile, opened_at)
             VALUES ('8' || lpad(nextval('account_no_seq')::text, 11, '0'), $1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (partner_id, customer_id) DO NOTHING
             RETURNING account_id, opened_at",
            &[&partner, &v.customer_id, &v.name, &v.id_type, &v.id_number, &idcard::mask(&v.id_number), &v.mobile, &now],
        )
        .await?;
    let (status, row) = match inserted {
        Some(row) => (StatusCode::CREATED, row),
        None => {
            let row = tx
                .query_one(
                    "SELECT account_id, opened_at, id_type, id_number FROM accounts WHERE partner_id = $1 AND customer_id = $2",
                    &[&partner, &v.customer_id],
                )
                .await?;
            if row.get::<_, String>("id_type") != v.id_type
                || row.get::<_, String>("id_number") != v.id_number
            {
                return Err(ApiError::new(
                    ErrorCode::CustomerIdentityMismatch,
                    "this customer_id already has an account with another identity",
                )
                .with_field("id_number"));
            }
            (StatusCode::OK, row)
        }
    };
    let account_id: String = row.get("account_id");
    let opened_at: chrono::DateTime<chrono::Utc> = row.get("opened_at");
    let body = json!({
        "account_id": account_id,
        "customer_id": v.customer_id,
        "id_masked": idcard::mask(&v.id_number),
        "opened_at": opened_at,
        "created": status == StatusCode::CREATED,
    });
    let stored = tx
        .execute(
            "INSERT INTO idempotency (partner_id, request_id, request_hash, response_status, response_body)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[&partner, &request_id, &hash, &(status.as_u16() as i16), &body],
        )
        .await?;
    if stored == 0 {
        return Ok(None);
    }
    tx.commit().await?;
    Ok(Some(Reply { status, body }))
}
