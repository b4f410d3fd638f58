//! `POST|GET /v1/ops/cycles/{trade_date}`: run (or resume) the daily cycle of a trade date, and
//! its recorded state.

use super::parse_day;
use crate::cycle::distribute::Batching;
use crate::cycle::{run, summary, CycleSummary};
use crate::state::AppState;
use axum::extract::State;
use mmf_domain::pace::Pace;
use mmf_shared::http::{ApiError, ErrorCode, OptionalJson, Path};
use serde::Deserialize;
use tracing::Instrument;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CycleRequest {
    /// Positions or orders per batch; defaults to `MMF_CYCLE_BATCH`.
    batch_size: Option<usize>,
    /// Income batches in flight; defaults to `MMF_CYCLE_PARALLEL`.
    parallel: Option<usize>,
    /// Partners' p99 (ms) above which batches pause; defaults to `MMF_CYCLE_API_P99_MS`, 0
    /// never pauses.
    api_p99_ms: Option<u64>,
}

/// Runs or resumes the daily cycle for a trade date and returns its summary. The run goes on
/// to completion even if the caller disconnects; calling again afterwards returns the summary.
#[utoipa::path(post, path = "/v1/ops/cycles/{trade_date}", request_body = CycleRequest,
    responses((status = 200, body = CycleSummary), (status = 409, body = mmf_shared::http::ErrorBody),
              (status = 422, body = mmf_shared::http::ErrorBody)))]
pub async fn post_cycle(
    State(state): State<AppState>,
    Path(date): Path<String>,
    OptionalJson(req): OptionalJson<CycleRequest>,
) -> Result<axum::Json<CycleSummary>, ApiError> {
    let trade_date = parse_day("trade_date", &date)?;
    let req = req.unwrap_or_default();
    let batching = Batching {
        batch_size: req
            .batch_size
            .unwrap_or(state.config.cycle.batch_size)
            .clamp(1, 1_000_000),
        parallel: req
            .parallel
            .unwrap_or(state.config.cycle.parallel)
            .clamp(1, 16),
        pace: match req.api_p99_ms {
            Some(ms) => Pace {
                target: std::time::Duration::from_millis(ms.min(60_000)),
                ..state.config.cycle.pace
            },
            None => state.config.cycle.pace,
        },
    };
    let calendar = state.reference.calendar();
    let now = state.clock.now();
    let pool = state.db.clone();
    let span = tracing::info_span!("daily_cycle", %trade_date);
    let task = tokio::spawn(
        async move {
            run(
                &pool,
                &calendar,
                now,
                trade_date,
                batching,
                &|e| tracing::info!(event = ?e, "daily cycle"),
            )
            .await
        }
        .instrument(span),
    );
    let summary = task
        .await
        .map_err(|e| ApiError::internal(format!("cycle task: {e}")))??;
    Ok(axum::Json(summary))
}

/// The recorded state of a trade date's cycle.
#[utoipa::path(get, path = "/v1/ops/cycles/{trade_date}",
    responses((status = 200, body = CycleSummary), (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn get_cycle(
    State(state): State<AppState>,
    Path(date): Path<String>,
) -> Result<axum::Json<CycleSummary>, ApiError> {
    let trade_date = parse_day("trade_date", &date)?;
    let mut conn = state.conn().await?;
    summary(&mut conn, trade_date)
        .await?
        .map(axum::Json)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::CycleNotRun,
                "no cycle has run for this trade date",
            )
        })
}
