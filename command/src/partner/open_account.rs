//! Account opening: idempotent per (partner, customer id); the resident ID is checked against
//! GB 11643 and never logged.

use crate::idempotency::{self, fingerprint, Reply};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Extension;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mmf_domain::idcard;
use mmf_domain::ids::RequestId;
use mmf_shared::auth::PartnerId;
use mmf_shared::http::{ApiError, ErrorCode, Json};
use mmf_shared::schema::{accounts, idempotency as idem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    RequestId::parse(&req.request_id)?;
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

/// The fund account of a partner's customer.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Account {
    /// The 12-digit fund account number.
    pub account_id: String,
    pub customer_id: String,
    /// The ID number with all but the first 6 and last 4 characters masked.
    pub id_masked: String,
    pub opened_at: DateTime<Utc>,
    /// False when the customer already had this account (then the answer is 200).
    pub created: bool,
}

/// Opens a fund account, or returns the one this partner's customer already has.
#[utoipa::path(post, path = "/v1/accounts", request_body = OpenAccountRequest,
    responses((status = 201, body = Account, description = "account opened"),
              (status = 200, body = Account, description = "the customer already had an account"),
              (status = 409, body = mmf_shared::http::ErrorBody), (status = 422, body = mmf_shared::http::ErrorBody)))]
pub async fn open_account(
    State(state): State<AppState>,
    Extension(PartnerId(partner)): Extension<PartnerId>,
    Json(req): Json<OpenAccountRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let request_id = req.request_id.clone();
    mmf_shared::http::record_request(Some(&request_id), None);
    let v = validate(req)?;
    let mobile = v.mobile.clone().unwrap_or_default();
    let hash = fingerprint(
        "open_account",
        &[&v.customer_id, &v.name, &v.id_type, &v.id_number, &mobile],
        None,
    );
    let now = state.clock.now();
    let mut conn = state.conn().await?;
    // A concurrent retry may win the race for the idempotency key: then replay its response.
    for _ in 0..3 {
        let attempt = conn
            .transaction(async |c| try_open(c, &partner, &request_id, &hash, &v, now).await)
            .await;
        match attempt {
            Ok(reply) => return Ok((reply.status, axum::Json(reply.body))),
            Err(Attempt::Raced) => continue,
            Err(Attempt::Failed(e)) => return Err(e),
        }
    }
    Err(ApiError::unavailable(
        "concurrent requests with this request_id; retry",
    ))
}

/// Why an attempt's transaction rolled back.
enum Attempt {
    /// A concurrent request with the same request_id stored its reply first.
    Raced,
    Failed(ApiError),
}

impl From<diesel::result::Error> for Attempt {
    fn from(e: diesel::result::Error) -> Attempt {
        Attempt::Failed(e.into())
    }
}

impl From<ApiError> for Attempt {
    fn from(e: ApiError) -> Attempt {
        Attempt::Failed(e)
    }
}

/// The account the partner already opened for the customer: (account id, opened at). The same
/// customer_id with another identity is refused.
async fn existing(
    c: &mut AsyncPgConnection,
    partner: &str,
    v: &Validated,
) -> Result<(String, DateTime<Utc>), Attempt> {
    let (account_id, opened_at, id_type, id_number): (String, DateTime<Utc>, String, String) =
        accounts::table
            .filter(accounts::partner_id.eq(partner))
            .filter(accounts::customer_id.eq(&v.customer_id))
            .select((
                accounts::account_id,
                accounts::opened_at,
                accounts::id_type,
                accounts::id_number,
            ))
            .first(c)
            .await?;
    if id_type != v.id_type || id_number != v.id_number {
        return Err(ApiError::new(
            ErrorCode::CustomerIdentityMismatch,
            "this customer_id already has an account with another identity",
        )
        .with_field("id_number")
        .into());
    }
    Ok((account_id, opened_at))
}

/// One attempt, in a transaction: the stored reply of an earlier request, or the account
/// (opened now or found) with its reply stored in the same transaction.
async fn try_open(
    c: &mut AsyncPgConnection,
    partner: &str,
    request_id: &str,
    hash: &str,
    v: &Validated,
    now: DateTime<Utc>,
) -> Result<Reply, Attempt> {
    if let Some(prior) = idempotency::stored(c, partner, request_id).await? {
        return Ok(idempotency::replay(hash, &prior)?);
    }
    let masked = idcard::mask(&v.id_number);
    let inserted: Option<(String, DateTime<Utc>)> = diesel::insert_into(accounts::table)
        .values((
            accounts::account_id.eq(diesel::dsl::sql::<Text>(
                "'8' || lpad(nextval('account_no_seq')::text, 11, '0')",
            )),
            accounts::partner_id.eq(partner),
            accounts::customer_id.eq(&v.customer_id),
            accounts::name.eq(&v.name),
            accounts::id_type.eq(&v.id_type),
            accounts::id_number.eq(&v.id_number),
            accounts::id_masked.eq(&masked),
            accounts::mobile.eq(&v.mobile),
            accounts::opened_at.eq(now),
        ))
        .on_conflict((accounts::partner_id, accounts::customer_id))
        .do_nothing()
        .returning((accounts::account_id, accounts::opened_at))
        .get_result(c)
        .await
        .optional()?;
    let (status, (account_id, opened_at)) = match inserted {
        Some(row) => (StatusCode::CREATED, row),
        None => (StatusCode::OK, existing(c, partner, v).await?),
    };
    let body = serde_json::to_value(Account {
        account_id,
        customer_id: v.customer_id.clone(),
        id_masked: masked,
        opened_at,
        created: status == StatusCode::CREATED,
    })
    .map_err(|e| Attempt::Failed(ApiError::internal(e)))?;
    let stored = diesel::insert_into(idem::table)
        .values((
            idem::partner_id.eq(partner),
            idem::request_id.eq(request_id),
            idem::request_hash.eq(hash),
            idem::response_status.eq(status.as_u16() as i16),
            idem::response_body.eq(&body),
            idem::created_at.eq(now),
            idem::day.eq(mmf_domain::calendar::business_date(now)),
        ))
        .on_conflict_do_nothing()
        .execute(c)
        .await?;
    if stored == 0 {
        return Err(Attempt::Raced);
    }
    Ok(Reply { status, body })
}
