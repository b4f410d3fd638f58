//! `GET /v1/ops/funds/{code}/holdings?day=`: every holder's units at the end of a day as CSV
//! (the share register of that day, as a regulator or auditor asks for it), streamed from the
//! daily holdings in ClickHouse.

use super::parse_day;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use diesel::dsl::exists;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures::StreamExt;
use mmf_shared::http::{ApiError, ErrorCode, Path, Query};
use mmf_shared::schema::{funds, holdings_days};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
pub struct HoldingsQuery {
    /// The calendar day, `YYYY-MM-DD`.
    day: Option<String>,
}

/// Every account holding the fund at the end of `day`: `account_id,units,income,cum_income`
/// (income earned that day and up to it), by account; 503 while the day's holdings are not
/// built yet.
#[utoipa::path(get, path = "/v1/ops/funds/{code}/holdings", params(("code" = String, Path), HoldingsQuery),
    responses((status = 200, content_type = "text/csv", body = String),
              (status = 400, body = mmf_shared::http::ErrorBody),
              (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn get_holdings(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<HoldingsQuery>,
) -> Result<Response, ApiError> {
    let day = q.day.ok_or_else(|| {
        ApiError::new(ErrorCode::MissingParameter, "day is required").with_field("day")
    })?;
    let day = parse_day("day", &day)?;
    let (fund_known, built): (bool, bool) = diesel::select((
        exists(funds::table.find(&code)),
        exists(holdings_days::table.find(day)),
    ))
    .get_result(&mut state.db.get().await?)
    .await?;
    if !fund_known {
        return Err(ApiError::new(ErrorCode::FundNotFound, "no such fund").with_field("code"));
    }
    if !built {
        return Err(
            ApiError::unavailable(format!("the holdings of {day} are not built yet"))
                .with_field("day"),
        );
    }
    let mut rows = state
        .ch
        .query(
            "SELECT account_id, units, income, cum_income FROM daily_holdings \
         WHERE day = toDate(?) AND fund_code = ? AND units != 0 ORDER BY account_id",
        )
        .bind(day.to_string())
        .bind(&code)
        .fetch_bytes("CSVWithNames")?;
    // The first chunk before the answer starts, so that an unreachable ClickHouse is a 503.
    let first = rows.next().await?;
    let rest = futures::stream::unfold(Some(rows), |rows| async move {
        let mut rows = rows?;
        match rows.next().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(rows))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    let body = futures::stream::iter(first.map(Ok)).chain(rest);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"holdings_{code}_{day}.csv\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
