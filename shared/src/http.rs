//! What the HTTP services share: the error every handler returns (with connection loss as
//! `503 unavailable`), extractors that refuse bad input with a stable code, the error answers
//! every operation documents, request metrics, `/health` + `/metrics`, the simulated clock's
//! routes and the JSON answers for unknown routes and methods.

mod error;
mod extract;
mod openapi;

pub use error::{ApiError, ErrorBody, ErrorCode};
pub use extract::{Json, OptionalJson, Path, Query, RawBody};
pub use openapi::{document_errors, Caller};

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use serde::Serialize;
use std::sync::LazyLock;
use std::time::Instant;

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
    let span = tracing::info_span!(
        "request",
        %method,
        %route,
        status = tracing::field::Empty,
        partner_id = tracing::field::Empty,
        request_id = tracing::field::Empty,
        order_id = tracing::field::Empty,
    );
    let resp = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    span.record("status", resp.status().as_u16());
    tracing::info!(parent: &span, elapsed_ms = start.elapsed().as_secs_f64() * 1e3, "request done");
    HTTP_LATENCY
        .with_label_values(&[&route, &method])
        .observe(start.elapsed().as_secs_f64());
    HTTP_REQUESTS
        .with_label_values(&[&route, &method, resp.status().as_str()])
        .inc();
    resp
}

/// Names what the current request is about in its span (and so in every log line under it):
/// the partner's `request_id` and the order it concerns. Identity numbers and names are never
/// recorded.
pub fn record_request(request_id: Option<&str>, order_id: Option<i64>) {
    let span = tracing::Span::current();
    if let Some(r) = request_id {
        span.record("request_id", r);
    }
    if let Some(o) = order_id {
        span.record("order_id", o);
    }
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
pub async fn health(pool: &crate::db::DbPool) -> Response {
    use diesel_async::SimpleAsyncConnection;
    let ok = match pool.get().await {
        Ok(mut c) => c.batch_execute("SELECT 1").await.is_ok(),
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
            ErrorCode::ClockNotSimulated,
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
    ApiError::new(ErrorCode::NotFound, "no such endpoint")
}

async fn no_method() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not take this method",
    )
}

/// Wraps a service's API routes with what every service serves (`/openapi.json`, `/health`,
/// `/metrics`), JSON errors for unknown routes and methods, and the request metrics layer.
pub fn service(
    api: axum::Router,
    pool: crate::db::DbPool,
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
