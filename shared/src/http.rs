//! What the HTTP services share: the error every handler returns (with connection loss as
//! `503 unavailable`), extractors that refuse bad input with a stable code, the error answers
//! every operation documents, request metrics, `/health` + `/metrics`, the simulated clock's
//! routes and the JSON answers for unknown routes and methods.

mod extract;
mod openapi;

pub use extract::{Json, OptionalJson, Path, Query, RawBody};
pub use openapi::{document_errors, Caller};

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use serde::Serialize;
use std::error::Error as StdError;
use std::sync::LazyLock;
use std::time::Instant;

/// Seconds a client is asked to wait before retrying a `503 unavailable`.
const RETRY_AFTER_SECS: u32 = 1;

/// A user-facing error: HTTP status, a stable machine-readable `code`, a message and, when one
/// input field is to blame, its name. Internal causes are logged, never returned.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable error code, e.g. `insufficient_units`.
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: &str) -> ApiError {
        ApiError {
            status,
            code,
            message: message.to_string(),
            field: None,
        }
    }
    pub fn with_field(mut self, field: &str) -> ApiError {
        self.field = Some(field.to_string());
        self
    }
    pub fn bad_request(code: &'static str, message: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// Invalid value of one input field.
    pub fn invalid(field: &str, message: &str) -> ApiError {
        ApiError::bad_request("invalid_field", message).with_field(field)
    }
    pub fn unprocessable(code: &'static str, message: &str) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    pub fn not_found(code: &'static str, message: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn conflict(code: &'static str, message: &str) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }
    pub fn unauthorized(code: &'static str, message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn unavailable(message: &str) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
    /// An unexpected failure: the cause is logged here, the client sees only `internal`.
    pub fn internal(cause: impl std::fmt::Debug) -> ApiError {
        tracing::error!(?cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.status == StatusCode::SERVICE_UNAVAILABLE;
        let body = ErrorBody {
            code: self.code.to_string(),
            message: self.message,
            field: self.field,
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if retry {
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
    if let Some(e) = e.downcast_ref::<tokio_postgres::Error>() {
        // Class 08: connection exceptions; 57P01..03: admin/crash shutdown, cannot connect now.
        let code = e.code().map(|c| c.code()).unwrap_or("");
        return e.is_closed()
            || code.starts_with("08")
            || matches!(code, "57P01" | "57P02" | "57P03")
            || e.source().is_some_and(|s| s.is::<std::io::Error>());
    }
    if e.is::<deadpool_postgres::PoolError>() {
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

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> ApiError {
        from_chain(std::iter::once(&e as &(dyn StdError + 'static)), &e)
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> ApiError {
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
        from_chain(std::iter::once(&e as &(dyn StdError + 'static)), &e)
    }
}

pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new("http_requests_total", "HTTP requests by route and status"),
        &["route", "method", "status"],
    )
    .expect("metric");
    REGISTRY.register(Box::new(c.clone())).expect("register");
    c
});

static HTTP_LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    let opts = HistogramOpts::new(
        "http_request_duration_seconds",
        "HTTP request latency by route",
    )
    .buckets(vec![
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
    ]);
    let h = HistogramVec::new(opts, &["route", "method"]).expect("metric");
    REGISTRY.register(Box::new(h.clone())).expect("register");
    h
});

/// Middleware: counts and times every request by matched route, inside a span that carries
/// the route (handlers add the partner's request_id).
pub async fn observe(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let span = tracing::info_span!("request", %method, %route);
    let resp = tracing::Instrument::instrument(next.run(req), span).await;
    HTTP_LATENCY
        .with_label_values(&[&route, &method])
        .observe(start.elapsed().as_secs_f64());
    HTTP_REQUESTS
        .with_label_values(&[&route, &method, resp.status().as_str()])
        .inc();
    resp
}

/// Prometheus text exposition of everything registered in [`REGISTRY`].
pub async fn metrics() -> Response {
    LazyLock::force(&HTTP_REQUESTS);
    LazyLock::force(&HTTP_LATENCY);
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&REGISTRY.gather(), &mut buf) {
        return ApiError::internal(e).into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        buf,
    )
        .into_response()
}

/// Readiness: the database answers.
pub async fn health(pool: &deadpool_postgres::Pool) -> Response {
    let ok = match pool.get().await {
        Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({ "status": if ok { "ok" } else { "unavailable" } })),
    )
        .into_response()
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockRequest {
    /// RFC 3339 instant, e.g. `2026-11-26T14:59:59+08:00`.
    now: String,
    /// `true` stops the clock at `now`; by default it runs on with real time from `now`.
    frozen: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ClockState {
    pub now: chrono::DateTime<chrono::Utc>,
    /// False when the service runs on the system clock.
    pub simulated: bool,
    /// True when the simulated clock stands still.
    pub frozen: bool,
}

impl ClockState {
    fn of(clock: &crate::clock::Clock) -> ClockState {
        ClockState {
            now: clock.now(),
            simulated: clock.is_simulated(),
            frozen: clock.is_frozen(),
        }
    }
}

/// `PUT /v1/ops/clock` (set the simulated clock) and `GET /v1/ops/clock`, for any service;
/// the caller puts them behind the ops token.
pub fn clock_routes<S: Clone + Send + Sync + 'static>(
    clock: crate::clock::Clock,
) -> axum::Router<S> {
    axum::Router::new()
        .route(
            "/v1/ops/clock",
            axum::routing::put(put_clock).get(get_clock),
        )
        .with_state(clock)
}

/// Sets the simulated clock, running from `now` or (with `frozen`) standing still there.
/// Refused unless the service runs with `MMF_SIMULATED_CLOCK=1`.
#[utoipa::path(put, path = "/v1/ops/clock", request_body = ClockRequest,
    responses((status = 200, body = ClockState), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn put_clock(
    axum::extract::State(clock): axum::extract::State<crate::clock::Clock>,
    Json(req): Json<ClockRequest>,
) -> Result<axum::Json<ClockState>, ApiError> {
    let now = chrono::DateTime::parse_from_rfc3339(&req.now)
        .map_err(|_| ApiError::invalid("now", "now must be an RFC 3339 instant"))?
        .with_timezone(&chrono::Utc);
    let set = if req.frozen.unwrap_or(false) {
        clock.freeze(now)
    } else {
        clock.set(now)
    };
    set.map_err(|_| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "clock_not_simulated",
            "this service runs on the system clock",
        )
    })?;
    Ok(axum::Json(ClockState::of(&clock)))
}

/// The service's clock now.
#[utoipa::path(get, path = "/v1/ops/clock",
    responses((status = 200, body = ClockState), (status = 401, body = ErrorBody)))]
pub async fn get_clock(
    axum::extract::State(clock): axum::extract::State<crate::clock::Clock>,
) -> axum::Json<ClockState> {
    axum::Json(ClockState::of(&clock))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(put_clock, get_clock), components(schemas(ErrorBody)))]
struct ClockApi;

/// The clock routes' part of a service's OpenAPI document.
pub fn clock_openapi() -> utoipa::openapi::OpenApi {
    <ClockApi as utoipa::OpenApi>::openapi()
}

async fn no_route() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint")
}

async fn no_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take this method",
    )
}

/// Wraps a service's API routes with what every service serves (`/openapi.json`, `/health`,
/// `/metrics`), JSON errors for unknown routes and methods, and the request metrics layer.
pub fn service(
    api: axum::Router,
    pool: deadpool_postgres::Pool,
    openapi: utoipa::openapi::OpenApi,
) -> axum::Router {
    axum::Router::new()
        .merge(api)
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { axum::Json(openapi) }),
        )
        .route(
            "/health",
            axum::routing::get(move || {
                let pool = pool.clone();
                async move { health(&pool).await }
            }),
        )
        .route("/metrics", axum::routing::get(metrics))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(axum::middleware::from_fn(observe))
}
