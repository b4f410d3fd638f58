//! The one error vocabulary of both services: every failure a client can see carries a stable
//! machine-readable [`ErrorCode`], which fixes its HTTP status, a message and, when one input is
//! to blame, its name. Internal causes are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::error::Error as StdError;

/// Seconds a client is asked to wait before retrying a `503 unavailable`.
const RETRY_AFTER_SECS: u32 = 1;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $code:literal $status:ident,)*) => {
        /// Stable error codes of the partner and operations contract; each has one HTTP status.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }
        }
    };
}

error_codes! {
    /// A field, path segment or query parameter is missing a valid value (see `field`).
    InvalidField = "invalid_field" BAD_REQUEST,
    /// The body is not JSON.
    BadJson = "bad_json" BAD_REQUEST,
    /// The body could not be read.
    BadBody = "bad_body" BAD_REQUEST,
    /// An amount or units value is not a decimal string with at most 2 decimals.
    InvalidAmount = "invalid_amount" BAD_REQUEST,
    AmountTooLarge = "amount_too_large" BAD_REQUEST,
    /// A required query parameter is absent.
    MissingParameter = "missing_parameter" BAD_REQUEST,
    /// A date is not `YYYY-MM-DD` (or out of the supported range).
    InvalidDate = "invalid_date" BAD_REQUEST,
    /// `from` is after `to`.
    InvalidRange = "invalid_range" BAD_REQUEST,
    RangeTooLarge = "range_too_large" BAD_REQUEST,
    /// A statement cursor this service did not issue for this statement.
    InvalidCursor = "invalid_cursor" BAD_REQUEST,
    /// An uploaded exchange file is malformed (see `line`).
    MalformedFile = "malformed_file" BAD_REQUEST,
    MissingAuth = "missing_auth" UNAUTHORIZED,
    BadTimestamp = "bad_timestamp" UNAUTHORIZED,
    /// `X-Timestamp` is outside the ±300 s window.
    StaleTimestamp = "stale_timestamp" UNAUTHORIZED,
    BadSignature = "bad_signature" UNAUTHORIZED,
    BadOpsToken = "bad_ops_token" UNAUTHORIZED,
    /// The service runs on the system clock.
    ClockNotSimulated = "clock_not_simulated" FORBIDDEN,
    /// No such route.
    NotFound = "not_found" NOT_FOUND,
    /// No such account for this partner (another partner's account looks the same).
    AccountNotFound = "account_not_found" NOT_FOUND,
    OrderNotFound = "order_not_found" NOT_FOUND,
    /// The account did not exist yet on the day asked for.
    AccountNotOpen = "account_not_open" NOT_FOUND,
    /// The fund named in the path or query does not exist.
    FundNotFound = "fund_not_found" NOT_FOUND,
    UnknownPartner = "unknown_partner" NOT_FOUND,
    UnknownReport = "unknown_report" NOT_FOUND,
    IncomeNotPublished = "income_not_published" NOT_FOUND,
    CycleNotRun = "cycle_not_run" NOT_FOUND,
    /// No request file was imported for this partner and date.
    NoImport = "no_import" NOT_FOUND,
    MethodNotAllowed = "method_not_allowed" METHOD_NOT_ALLOWED,
    /// The `request_id` was used before with a different request.
    RequestIdReused = "request_id_reused" CONFLICT,
    CustomerIdentityMismatch = "customer_identity_mismatch" CONFLICT,
    OrderNotCancellable = "order_not_cancellable" CONFLICT,
    CutOffPassed = "cut_off_passed" CONFLICT,
    IncomeAlreadyDistributed = "income_already_distributed" CONFLICT,
    /// The trade date's cut-off has not passed.
    TradeDateOpen = "trade_date_open" CONFLICT,
    CycleRunning = "cycle_running" CONFLICT,
    TradeDateNotConfirmed = "trade_date_not_confirmed" CONFLICT,
    /// Postgres and ClickHouse differ; nothing was deleted.
    HistoryMismatch = "history_mismatch" CONFLICT,
    /// The request is older than the service keeps requests for: a request_id past its replay
    /// window (`detail` names its order), or a `request_date` before the request-key window.
    RequestExpired = "request_expired" CONFLICT,
    /// The trade date's orders have left Postgres (retention); ClickHouse holds them.
    DateRetained = "date_retained" GONE,
    BodyTooLarge = "body_too_large" PAYLOAD_TOO_LARGE,
    BadContentType = "bad_content_type" UNSUPPORTED_MEDIA_TYPE,
    /// The fund named in the order does not exist.
    UnknownFund = "unknown_fund" UNPROCESSABLE_ENTITY,
    AmountBelowMinimum = "amount_below_minimum" UNPROCESSABLE_ENTITY,
    AmountAboveOrderLimit = "amount_above_order_limit" UNPROCESSABLE_ENTITY,
    SubscriptionDayLimitExceeded = "subscription_day_limit_exceeded" UNPROCESSABLE_ENTITY,
    InsufficientUnits = "insufficient_units" UNPROCESSABLE_ENTITY,
    FastWithdrawalCapExceeded = "fast_withdrawal_cap_exceeded" UNPROCESSABLE_ENTITY,
    InvalidIdNumber = "invalid_id_number" UNPROCESSABLE_ENTITY,
    NotTradingDay = "not_trading_day" UNPROCESSABLE_ENTITY,
    PartnerCodeTooLong = "partner_code_too_long" UNPROCESSABLE_ENTITY,
    /// A day asked about has not begun yet.
    DateInFuture = "date_in_future" UNPROCESSABLE_ENTITY,
    Internal = "internal" INTERNAL_SERVER_ERROR,
    /// A store cannot be reached; retry after `Retry-After` seconds.
    Unavailable = "unavailable" SERVICE_UNAVAILABLE,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user-facing error.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    /// Extra members of the answer (e.g. the `line` of a malformed file).
    pub detail: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The JSON body of every error answer.
#[derive(Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            field: None,
            detail: None,
        }
    }

    pub fn with_field(mut self, field: &str) -> ApiError {
        self.field = Some(field.to_string());
        self
    }

    /// Adds a member to the answer besides code, message and field.
    pub fn with_detail(mut self, key: &str, value: serde_json::Value) -> ApiError {
        self.detail
            .get_or_insert_with(Default::default)
            .insert(key.to_string(), value);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// Invalid value of one input field.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidField, message).with_field(field)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unavailable, message)
    }

    /// An unexpected failure: the cause is logged here, the client sees only `internal`.
    pub fn internal(cause: impl std::fmt::Debug) -> ApiError {
        tracing::error!(?cause, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = serde_json::Map::new();
        body.insert("code".into(), self.code.as_str().into());
        body.insert("message".into(), self.message.into());
        if let Some(f) = self.field {
            body.insert("field".into(), f.into());
        }
        for (k, v) in self.detail.into_iter().flatten() {
            body.entry(k).or_insert(v);
        }
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        resp
    }
}

/// True when `e` means a store could not be reached or the connection to it was lost (the
/// server shut the session down, the socket failed, the pool timed out), so the same request
/// may succeed once it is back; any other failure is a bug or a broken invariant.
fn is_connection_lost(e: &(dyn StdError + 'static)) -> bool {
    if let Some(e) = e.downcast_ref::<diesel::result::Error>() {
        return crate::db::is_connection_lost(e);
    }
    if e.is::<crate::db::PoolError>() {
        return true;
    }
    if let Some(e) = e.downcast_ref::<clickhouse::error::Error>() {
        return matches!(
            e,
            clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut
        );
    }
    false
}

/// `503 unavailable` when any error in the chain is a lost connection, else `500 internal`.
fn from_chain<'a>(
    mut chain: impl Iterator<Item = &'a (dyn StdError + 'static)>,
    cause: impl std::fmt::Debug,
) -> ApiError {
    if chain.any(is_connection_lost) {
        tracing::warn!(?cause, "store unavailable");
        ApiError::unavailable("temporarily unavailable; retry")
    } else {
        ApiError::internal(cause)
    }
}

fn from_error(e: &(dyn StdError + 'static)) -> ApiError {
    let mut chain = vec![e];
    let mut next = e.source();
    while let Some(s) = next {
        chain.push(s);
        next = s.source();
    }
    from_chain(chain.into_iter(), e)
}

/// A malformed identifier in a request: 400 on its field.
impl From<mmf_domain::ids::IdError> for ApiError {
    fn from(e: mmf_domain::ids::IdError) -> ApiError {
        ApiError::invalid(e.field(), e.message())
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> ApiError {
        from_error(&e)
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> ApiError {
        match e {
            crate::db::DbError::Query(e) => e.into(),
            crate::db::DbError::Pool(e) => e.into(),
        }
    }
}

impl From<crate::db::PoolError> for ApiError {
    fn from(e: crate::db::PoolError) -> ApiError {
        tracing::warn!(error = %e, "database pool exhausted or unreachable");
        ApiError::unavailable("database temporarily unavailable")
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        from_chain(e.chain(), &e)
    }
}

impl From<clickhouse::error::Error> for ApiError {
    fn from(e: clickhouse::error::Error) -> ApiError {
        from_error(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's table is what partners read: every code is there, on its status's row.
    #[test]
    fn readme_lists_every_code_with_its_status() {
        let readme = include_str!("../../../README.md");
        for code in ErrorCode::ALL {
            let row = readme
                .lines()
                .filter(|l| l.starts_with("| 4") || l.starts_with("| 5"))
                .find(|l| l.contains(&format!("`{}`", code.as_str())))
                .unwrap_or_else(|| panic!("{} is not in the README's error table", code.as_str()));
            let status = code.status().as_u16().to_string();
            assert!(
                row.starts_with(&format!("| {status}")) || row.contains(&format!(", {status} |")),
                "{} is listed on the row {row:?}, not under {status}",
                code.as_str()
            );
        }
    }

    #[test]
    fn codes_serialize_as_their_contract_names() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str(), "{code:?}");
        }
    }
}
