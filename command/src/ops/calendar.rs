//! `PUT /v1/ops/calendar/{year}`: a year's holidays (weekdays that are not trading days).

use super::reload_reference;
use crate::state::AppState;
use axum::extract::State;
use chrono::{Datelike, NaiveDate};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use mmf_shared::http::{ApiError, Json, Path};
use mmf_shared::schema::{calendar_years, holidays};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarRequest {
    /// Every non-trading weekday of the year, `YYYY-MM-DD`. Weekends need not be listed.
    holidays: Vec<String>,
}

/// Replaces the holidays of one year.
#[utoipa::path(put, path = "/v1/ops/calendar/{year}", request_body = CalendarRequest,
    responses((status = 200, description = "year loaded"), (status = 400, body = mmf_shared::http::ErrorBody)))]
pub async fn put_calendar(
    State(state): State<AppState>,
    Path(year): Path<String>,
    Json(req): Json<CalendarRequest>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let year: i32 = year
        .parse()
        .ok()
        .filter(|y| (2000..=2100).contains(y))
        .ok_or_else(|| ApiError::invalid("year", "year must be 2000..2100"))?;
    let mut days = Vec::with_capacity(req.holidays.len());
    for s in &req.holidays {
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
            ApiError::invalid("holidays", format!("{s:?} is not a YYYY-MM-DD date"))
        })?;
        if d.year() != year {
            return Err(ApiError::invalid(
                "holidays",
                format!("{s} is not in {year}"),
            ));
        }
        days.push(d);
    }
    days.sort();
    days.dedup();
    let now = state.clock.now();
    let mut conn = state.conn().await?;
    conn.transaction(async |c| {
        diesel::insert_into(calendar_years::table)
            .values((
                calendar_years::year.eq(year),
                calendar_years::loaded_at.eq(now),
            ))
            .on_conflict(calendar_years::year)
            .do_update()
            .set(calendar_years::loaded_at.eq(now))
            .execute(c)
            .await?;
        diesel::delete(holidays::table.filter(holidays::year.eq(year)))
            .execute(c)
            .await?;
        let rows: Vec<_> = days
            .iter()
            .map(|d| (holidays::day.eq(d), holidays::year.eq(year)))
            .collect();
        diesel::insert_into(holidays::table)
            .values(&rows)
            .execute(c)
            .await?;
        Ok::<(), diesel::result::Error>(())
    })
    .await?;
    reload_reference(&state).await;
    Ok(axum::Json(
        serde_json::json!({ "year": year, "holidays": days }),
    ))
}
