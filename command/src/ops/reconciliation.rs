//! `/v1/ops/reconciliation/{partner}/{date}/...`: the OFD files exchanged with a partner — the
//! trade confirmations the TA sends, their index, and the import of the partner's trade
//! requests with the discrepancy report.

use super::parse_day;
use crate::cycle::reconcile::{
    confirmation_file, import_requests, index_file, latest_report, Report,
};
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use mmf_shared::http::{ApiError, ErrorCode, Path, Query, RawBody};
use serde::Deserialize;
use utoipa::IntoParams;

fn file_response(name: &str, bytes: Vec<u8>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=GB18030".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// Downloads the trade confirmation file (OFD type 04) of a partner for a trade date.
#[utoipa::path(get, path = "/v1/ops/reconciliation/{partner}/{date}/confirmations",
    responses((status = 200, description = "GB18030 OFD file", content_type = "text/plain"),
              (status = 404, body = mmf_shared::http::ErrorBody), (status = 409, body = mmf_shared::http::ErrorBody),
              (status = 422, body = mmf_shared::http::ErrorBody)))]
pub async fn get_confirmations(
    State(state): State<AppState>,
    Path((partner, date)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let day = parse_day("date", &date)?;
    let (name, bytes) =
        confirmation_file(&state.db, &state.config.cycle.ta_code, &partner, day).await?;
    Ok(file_response(&name, bytes))
}

/// Downloads the OFDCFIDX index file listing the data files sent to a partner for a date.
#[utoipa::path(get, path = "/v1/ops/reconciliation/{partner}/{date}/index",
    responses((status = 200, description = "GB18030 OFD index file", content_type = "text/plain"),
              (status = 404, body = mmf_shared::http::ErrorBody), (status = 422, body = mmf_shared::http::ErrorBody)))]
pub async fn get_index(
    State(state): State<AppState>,
    Path((partner, date)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let day = parse_day("date", &date)?;
    let (name, bytes) = index_file(&state.db, &state.config.cycle.ta_code, &partner, day).await?;
    Ok(file_response(&name, bytes))
}

#[derive(Deserialize, IntoParams)]
pub struct HourQuery {
    /// 0..23 for an hourly file; absent for the daily file.
    hour: Option<i16>,
}

fn hour_of(q: &HourQuery) -> Result<Option<i16>, ApiError> {
    match q.hour {
        Some(h) if !(0..=23).contains(&h) => Err(ApiError::invalid("hour", "hour is 0..23")),
        h => Ok(h),
    }
}

/// Imports a partner's trade request file (OFD type 02, GB18030) and returns the discrepancy
/// report. A malformed file is rejected whole (400 `malformed_file` with its `line`).
#[utoipa::path(post, path = "/v1/ops/reconciliation/{partner}/{date}/requests", params(HourQuery),
    request_body(content = Vec<u8>, content_type = "text/plain"),
    responses((status = 200, body = Report), (status = 404, body = mmf_shared::http::ErrorBody),
              (status = 422, body = mmf_shared::http::ErrorBody)))]
pub async fn post_requests(
    State(state): State<AppState>,
    Path((partner, date)): Path<(String, String)>,
    Query(q): Query<HourQuery>,
    RawBody(body): RawBody,
) -> Result<axum::Json<Report>, ApiError> {
    let day = parse_day("date", &date)?;
    let hour = hour_of(&q)?;
    let report = import_requests(
        &state.db,
        &state.config.cycle.ta_code,
        &partner,
        day,
        hour,
        &body,
        state.clock.now(),
    )
    .await?;
    Ok(axum::Json(report))
}

/// The discrepancy report of the latest import for a partner and date.
#[utoipa::path(get, path = "/v1/ops/reconciliation/{partner}/{date}/discrepancies", params(HourQuery),
    responses((status = 200, body = Report), (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn get_discrepancies(
    State(state): State<AppState>,
    Path((partner, date)): Path<(String, String)>,
    Query(q): Query<HourQuery>,
) -> Result<axum::Json<Report>, ApiError> {
    let day = parse_day("date", &date)?;
    let hour = hour_of(&q)?;
    latest_report(&state.db, &partner, day, hour)
        .await?
        .map(axum::Json)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoImport,
                "no request file imported for this date",
            )
        })
}
