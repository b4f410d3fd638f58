//! Account statements from the history store: every unit movement (subscriptions,
//! redemptions, fast redemptions, cancels) and every day's income in a date range, ordered by
//! effective date, with an opaque cursor for the next page, or as CSV.

use crate::{date_range, own_account, AppState, Partner};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{Days, NaiveDate};
use hmac::{Hmac, Mac};
use mmf_domain::ids::FundCode;
use mmf_shared::auth::PartnerId;
use mmf_shared::http::ErrorCode;
use mmf_shared::http::{ApiError, Path, Query};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt::Write;
use utoipa::{IntoParams, ToSchema};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// Page size used internally to assemble a CSV export.
const CSV_PAGE: u32 = 5000;

#[derive(Deserialize, IntoParams)]
pub struct StatementQuery {
    /// Only this fund; all funds of the account when absent.
    fund_code: Option<String>,
    /// First effective date, `YYYY-MM-DD` (inclusive).
    from: Option<String>,
    /// Last effective date, `YYYY-MM-DD` (inclusive).
    to: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Entries per page, 1..=1000, default 100.
    limit: Option<String>,
    /// `true` adds `opening_units` and `closing_units` to the first page (reads the account's
    /// whole history, so it is asked for, not default).
    balances: Option<String>,
}

#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct Entry {
    pub entry_id: u64,
    /// The day the movement takes effect for income.
    pub date: NaiveDate,
    pub fund_code: String,
    /// subscription, redemption, fast_redemption, cancel or income.
    pub kind: String,
    /// Signed: credits positive, debits negative.
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub units: Decimal,
    /// The order behind the movement (absent for income).
    pub order_id: Option<u64>,
    /// For income: the calendar day it was earned (the day before `date`).
    pub income_date: Option<NaiveDate>,
    /// When the movement was booked, RFC 3339 in Asia/Shanghai.
    pub booked_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct Statement {
    pub account_id: String,
    pub fund_code: Option<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Units effective before `from` (first page, with `balances=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub opening_units: Option<String>,
    /// Units effective on or before `to` (first page, with `balances=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub closing_units: Option<String>,
    pub entries: Vec<Entry>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(clickhouse::Row, Deserialize)]
struct JournalRow {
    entry_id: u64,
    d: String,
    fund_code: String,
    kind: String,
    order_id: u64,
    u: String,
    b: String,
}

/// Position after the last entry of a page: (effective date, entry id). A client gets it as
/// hex of `date|entry_id` followed by an HMAC-SHA256 (key `MMF_CURSOR_KEY`) over the statement
/// it pages (account, fund, from, to) and that text, so that it can neither forge a cursor nor
/// use one on another statement; a decoded date always lies within the request's range, so no
/// input puts a date ClickHouse cannot read into a query.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cursor {
    date: NaiveDate,
    entry_id: u64,
}

const MAC_LEN: usize = 32;

impl Cursor {
    fn encode(self, key: &str, r: &Request<'_>) -> String {
        let mut bytes = format!("{}|{}", self.date, self.entry_id).into_bytes();
        let tag = mac(key, r, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag);
        hex::encode(bytes)
    }

    fn decode(s: &str, key: &str, r: &Request<'_>) -> Result<Cursor, ApiError> {
        let bad = || {
            ApiError::new(
                ErrorCode::InvalidCursor,
                "cursor is not one this service issued",
            )
            .with_field("cursor")
        };
        let bytes = hex::decode(s).map_err(|_| bad())?;
        if bytes.len() <= MAC_LEN {
            return Err(bad());
        }
        let (text, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        mac(key, r, text).verify_slice(tag).map_err(|_| bad())?;
        let text = std::str::from_utf8(text).map_err(|_| bad())?;
        let (d, id) = text.split_once('|').ok_or_else(bad)?;
        let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| bad())?;
        if date < r.from || date > r.to {
            return Err(bad());
        }
        Ok(Cursor {
            date,
            entry_id: id.parse().map_err(|_| bad())?,
        })
    }
}

fn mac(key: &str, r: &Request<'_>, text: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    // Path and query values hold no control characters (the extractors refuse them), so the
    // newlines keep the fields apart.
    let scope = format!(
        "statement\n{}\n{}\n{}\n{}\n",
        r.account,
        r.fund.unwrap_or(""),
        r.from,
        r.to
    );
    m.update(scope.as_bytes());
    m.update(text);
    m
}

fn dec(s: &str) -> Result<Decimal, ApiError> {
    s.parse()
        .map_err(|e| ApiError::internal(format!("ClickHouse decimal {s:?}: {e}")))
}

fn date(s: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| ApiError::internal(format!("ClickHouse date {s:?}: {e}")))
}

struct Request<'a> {
    account: &'a str,
    fund: Option<&'a str>,
    from: NaiveDate,
    to: NaiveDate,
}

/// One page after `after`: at most `limit` entries and whether more follow.
///
/// A page's rows lie at the start of what is left of its range, and the journal's parts are
/// slices of time (rows arrive in effective-date order and merges join neighbouring parts), so
/// a page first reads a window of `limit + 1` days: ClickHouse skips every part whose dates lie
/// outside it without opening it, and what a read costs is the parts it opens (decision 0034).
/// An account with an entry a day fills its page from the window; a sparser one reads the rest
/// of the range too.
async fn page(
    state: &AppState,
    r: &Request<'_>,
    after: Option<Cursor>,
    limit: u32,
) -> Result<(Vec<Entry>, bool), ApiError> {
    let start = after.map_or(r.from, |c| c.date);
    let window_end = start + Days::new(limit.into());
    if window_end >= r.to {
        return rows_between(state, r, after, limit, (r.from, r.to)).await;
    }
    let (mut entries, more) = rows_between(state, r, after, limit, (r.from, window_end)).await?;
    if more {
        return Ok((entries, true));
    }
    let rest = limit - entries.len() as u32;
    let after_window = (window_end + Days::new(1), r.to);
    let (tail, more) = rows_between(state, r, after, rest, after_window).await?;
    entries.extend(tail);
    Ok((entries, more))
}

/// At most `limit` entries after `after` effective within `dates`, and whether more follow
/// there. Replayed rows (at-least-once delivery) are collapsed by `LIMIT 1 BY entry_id`.
async fn rows_between(
    state: &AppState,
    r: &Request<'_>,
    after: Option<Cursor>,
    limit: u32,
    (from, to): (NaiveDate, NaiveDate),
) -> Result<(Vec<Entry>, bool), ApiError> {
    let mut sql = String::from(
        // Aliases differ from column names: ClickHouse would apply them in WHERE too.
        "SELECT entry_id, toString(effective_date) AS d, fund_code, kind, order_id, \
         toString(units) AS u, toString(booked_at) AS b \
         FROM journal_by_account \
         WHERE account_id = ? AND effective_date >= toDate(?) AND effective_date <= toDate(?)",
    );
    if r.fund.is_some() {
        sql.push_str(" AND fund_code = ?");
    }
    if after.is_some() {
        sql.push_str(
            " AND (effective_date > toDate(?) OR (effective_date = toDate(?) AND entry_id > ?))",
        );
    }
    sql.push_str(" ORDER BY effective_date, entry_id LIMIT 1 BY entry_id LIMIT ?");
    let mut q = state
        .ch
        .query(&sql)
        .bind(r.account)
        .bind(from.to_string())
        .bind(to.to_string());
    if let Some(f) = r.fund {
        q = q.bind(f);
    }
    if let Some(c) = after {
        q = q
            .bind(c.date.to_string())
            .bind(c.date.to_string())
            .bind(c.entry_id);
    }
    let rows: Vec<JournalRow> = q.bind(limit + 1).fetch_all().await?;
    let more = rows.len() > limit as usize;
    let mut entries = Vec::with_capacity(rows.len().min(limit as usize));
    for row in rows.into_iter().take(limit as usize) {
        let d = date(&row.d)?;
        let income = row.kind == "income";
        entries.push(Entry {
            entry_id: row.entry_id,
            date: d,
            fund_code: row.fund_code,
            order_id: (row.order_id != 0).then_some(row.order_id),
            income_date: income.then(|| d - Days::new(1)),
            kind: row.kind,
            units: dec(&row.u)?,
            booked_at: format!("{}+08:00", row.b.replacen(' ', "T", 1)),
        });
    }
    Ok((entries, more))
}

/// Units effective before `from` and on or before `to`, each journal entry counted once.
async fn opening_closing(
    state: &AppState,
    r: &Request<'_>,
) -> Result<(Decimal, Decimal), ApiError> {
    let mut sql = String::from(
        "SELECT toString(sumIf(u, d < toDate(?))), toString(sum(u)) FROM \
         (SELECT entry_id, any(units) AS u, any(effective_date) AS d FROM journal_by_account \
          WHERE account_id = ? AND effective_date <= toDate(?)",
    );
    if r.fund.is_some() {
        sql.push_str(" AND fund_code = ?");
    }
    sql.push_str(" GROUP BY entry_id)");
    let mut q = state
        .ch
        .query(&sql)
        .bind(r.from.to_string())
        .bind(r.account)
        .bind(r.to.to_string());
    if let Some(f) = r.fund {
        q = q.bind(f);
    }
    let (open, close): (String, String) = q.fetch_one().await?;
    Ok((dec(&open)?, dec(&close)?))
}

fn limit_of(v: Option<&str>) -> Result<u32, ApiError> {
    match v {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", "limit must be 1..=1000")),
    }
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"))
}

/// Movements and daily income of an account in a date range. JSON pages by default; with
/// `Accept: text/csv` the whole range (from `cursor`, if given) as one CSV document.
#[utoipa::path(get, path = "/v1/accounts/{id}/statement", params(("id" = String, Path), StatementQuery),
    responses((status = 200, body = Statement, description = "JSON page, or text/csv"),
              (status = 400, body = mmf_shared::http::ErrorBody), (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn get_statement(
    State(state): State<AppState>,
    Extension(PartnerId(partner)): Partner,
    Path(account): Path<String>,
    Query(q): Query<StatementQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(f) = &q.fund_code {
        FundCode::parse(f)?;
    }
    let (from, to) = date_range(
        q.from.as_deref(),
        q.to.as_deref(),
        state.config.statement_max_days,
    )?;
    let limit = limit_of(q.limit.as_deref())?;
    let with_balances = match q.balances.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("balances", "balances is true or false")),
    };
    let r = Request {
        account: &account,
        fund: q.fund_code.as_deref(),
        from,
        to,
    };
    let key = &state.config.cursor_key;
    let after = q
        .cursor
        .as_deref()
        .map(|c| Cursor::decode(c, key, &r))
        .transpose()?;
    own_account(&state, &partner, &account).await?;
    if wants_csv(&headers) {
        return csv(&state, &r, after).await;
    }
    // On request the first page also carries the balances; both queries run at once.
    let balances = async {
        match (after, with_balances) {
            (None, true) => opening_closing(&state, &r).await.map(Some),
            _ => Ok(None),
        }
    };
    let ((entries, more), balances) = futures::try_join!(page(&state, &r, after, limit), balances)?;
    let (opening, closing) = match balances {
        Some((o, c)) => (
            Some(mmf_domain::money::fmt2(o)),
            Some(mmf_domain::money::fmt2(c)),
        ),
        None => (None, None),
    };
    let next_cursor = more.then(|| entries.last()).flatten().map(|e| {
        Cursor {
            date: e.date,
            entry_id: e.entry_id,
        }
        .encode(key, &r)
    });
    Ok(axum::Json(Statement {
        account_id: account.clone(),
        fund_code: q.fund_code,
        from,
        to,
        opening_units: opening,
        closing_units: closing,
        entries,
        next_cursor,
    })
    .into_response())
}

async fn csv(
    state: &AppState,
    r: &Request<'_>,
    mut after: Option<Cursor>,
) -> Result<Response, ApiError> {
    let mut out =
        String::from("date,fund_code,kind,units,order_id,income_date,booked_at,entry_id\r\n");
    loop {
        let (entries, more) = page(state, r, after, CSV_PAGE).await?;
        for e in &entries {
            // Every field is a date, number or fixed code word: nothing needs quoting.
            let _ = write!(
                out,
                "{},{},{},{},{},{},{},{}\r\n",
                e.date,
                e.fund_code,
                e.kind,
                mmf_domain::money::fmt2(e.units),
                e.order_id.map(|o| o.to_string()).unwrap_or_default(),
                e.income_date.map(|d| d.to_string()).unwrap_or_default(),
                e.booked_at,
                e.entry_id
            );
        }
        match (more, entries.last()) {
            (true, Some(e)) => {
                after = Some(Cursor {
                    date: e.date,
                    entry_id: e.entry_id,
                })
            }
            _ => break,
        }
    }
    let name = format!("statement_{}_{}_{}.csv", r.account, r.from, r.to);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn cursors_are_signed_for_their_statement_and_range_checked() {
        let r = Request {
            account: "800000000001",
            fund: Some("000001"),
            from: day("2026-11-01"),
            to: day("2026-11-30"),
        };
        let c = Cursor {
            date: day("2026-11-27"),
            entry_id: 42,
        };
        let s = c.encode("k", &r);
        assert_eq!(Cursor::decode(&s, "k", &r).unwrap(), c);
        let other_account = Request {
            account: "800000000002",
            ..r
        };
        let other_fund = Request { fund: None, ..r };
        let other_range = Request {
            to: day("2026-11-29"),
            ..r
        };
        let outside = Cursor {
            date: day("2026-12-01"),
            ..c
        }
        .encode("k", &r);
        let mut altered = hex::decode(&s).unwrap();
        altered[9] = b'8'; // 2026-11-27 -> 2026-11-28
        for (cursor, key, req) in [
            (s.as_str(), "other key", &r),
            (&s, "k", &other_account),
            (&s, "k", &other_fund),
            (&s, "k", &other_range),
            (&outside, "k", &r),
            (&hex::encode(altered), "k", &r),
            (&hex::encode("+99999-01-01|1"), "k", &r),
            (&hex::encode("-0001-01-01|1"), "k", &r),
            ("", "k", &r),
            ("zz", "k", &r),
        ] {
            let e = Cursor::decode(cursor, key, req).unwrap_err();
            assert_eq!(
                (e.code.as_str(), e.field.as_deref()),
                ("invalid_cursor", Some("cursor"))
            );
        }
    }
}
