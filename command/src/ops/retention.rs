//! `POST /v1/ops/retention`: deletes movements, orders and their records older than the window
//! from Postgres once ClickHouse verifiably holds them.

use crate::cycle::retention::{run, RetentionReport};
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use mmf_shared::http::{ApiError, ErrorCode, OptionalJson};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RetentionRequest {
    /// Days of journal, orders and records to keep; defaults to `MMF_RETENTION_DAYS` (7).
    window_days: Option<u32>,
    /// Verify only.
    dry_run: Option<bool>,
}

/// Deletes movements older than the window after verifying them against ClickHouse;
/// 409 `history_mismatch` with the per-day comparison when they differ (nothing deleted).
#[utoipa::path(post, path = "/v1/ops/retention", request_body = RetentionRequest,
    responses((status = 200, body = RetentionReport), (status = 409, body = RetentionReport)))]
pub async fn post_retention(
    State(state): State<AppState>,
    OptionalJson(req): OptionalJson<RetentionRequest>,
) -> Result<Response, ApiError> {
    let req = req.unwrap_or_default();
    let window = req.window_days.unwrap_or(state.config.cycle.retention_days);
    if window < 1 {
        return Err(ApiError::invalid(
            "window_days",
            "window_days is at least 1",
        ));
    }
    let report = run(
        &state.db,
        &state.ch,
        state.clock.now(),
        window,
        state.config.cycle.request_key_days,
        req.dry_run.unwrap_or(false),
    )
    .await?;
    if report.refused {
        let code = ErrorCode::HistoryMismatch;
        let mut body = serde_json::to_value(&report).map_err(ApiError::internal)?;
        body["code"] = code.as_str().into();
        body["message"] =
            "Postgres and ClickHouse differ; days that differ were not deleted".into();
        return Ok((code.status(), axum::Json(body)).into_response());
    }
    Ok(axum::Json(report).into_response())
}
