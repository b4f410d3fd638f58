//! Reconciliation with partners through OFD files (JR/T 0017 business codes): the TA's trade
//! confirmation file (type 04) per partner and trade date, and the import of a partner's trade
//! request file (type 02, daily or hourly), compared with the orders the system received.
//! Every difference is listed in a discrepancy report, stored with the import.

pub mod ofd;

use crate::app::AppState;
use crate::income::parse_day;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Asia::Shanghai;
use deadpool_postgres::Pool;
use mmf_shared::http::ErrorCode;
use mmf_shared::http::{ApiError, Path, Query, RawBody};
use ofd::{Header, ParsedValue, Value};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use utoipa::{IntoParams, ToSchema};

/// JR/T 0017 business codes: requests and their confirmations.
pub const SUBSCRIPTION_REQUEST: &str = "022";
pub const REDEMPTION_REQUEST: &str = "024";
pub const SUBSCRIPTION_CONFIRM: &str = "122";
pub const REDEMPTION_CONFIRM: &str = "124";
/// Return codes in confirmation files.
pub const RETURN_CONFIRMED: &str = "0000";
pub const RETURN_CANCELLED: &str = "9001";

/// Fields of the trade confirmation file (type 04), in order.
pub const CONFIRMATION_FIELDS: &[&str] = &[
    "AppSheetSerialNo",
    "TASerialNO",
    "TransactionDate",
    "TransactionCfmDate",
    "BusinessCode",
    "TAAccountID",
    "FundCode",
    "ConfirmedAmount",
    "ConfirmedVol",
    "FastRedeemFlag",
    "ReturnCode",
];

/// Fields a trade request file (type 02) must declare; `FastRedeemFlag`, `CancelFlag` and
/// `TransactionTime` are optional (default: normal, not cancelled).
pub const REQUEST_FIELDS: &[&str] = &[
    "AppSheetSerialNo",
    "TransactionDate",
    "BusinessCode",
    "TAAccountID",
    "FundCode",
    "ApplicationAmount",
    "ApplicationVol",
];

fn code_fits(partner: &str) -> Result<(), ApiError> {
    if partner.len() > 8 {
        return Err(ApiError::new(
            ErrorCode::PartnerCodeTooLong,
            "OFD sender and recipient codes are at most 8 characters",
        )
        .with_field("partner"));
    }
    Ok(())
}

async fn partner_exists(pool: &Pool, partner: &str) -> Result<(), ApiError> {
    let client = pool.get().await?;
    client
        .query_opt("SELECT 1 FROM partners WHERE partner_id = $1", &[&partner])
        .await?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::UnknownPartner, "no such partner").with_field("partner")
        })?;
    Ok(())
}

/// The trade confirmation file of `partner` for `trade_date`: (file name, GB18030 bytes).
/// Every order of the trade date is listed: confirmed ones with their amount, cancelled ones
/// with return code 9001 and nothing confirmed.
pub async fn confirmation_file(
    pool: &Pool,
    ta_code: &str,
    partner: &str,
    trade_date: NaiveDate,
) -> Result<(String, Vec<u8>), ApiError> {
    partner_exists(pool, partner).await?;
    code_fits(partner)?;
    let client = pool.get().await?;
    let confirmed = client
        .query_opt(
            "SELECT 1 FROM cycle_steps WHERE trade_date = $1 AND step = 'confirm'",
            &[&trade_date],
        )
        .await?;
    if confirmed.is_none() {
        return Err(ApiError::new(
            ErrorCode::TradeDateNotConfirmed,
            "the daily cycle has not confirmed this trade date yet",
        )
        .with_field("date"));
    }
    let rows = client
        .query(
            "SELECT request_id, order_id, kind, account_id, fund_code, amount, status,
                    (coalesce(confirmed_at, cancelled_at) AT TIME ZONE 'Asia/Shanghai')::date AS cfm
             FROM orders WHERE partner_id = $1 AND trade_date = $2 AND status <> 'accepted'
             ORDER BY order_id",
            &[&partner, &trade_date],
        )
        .await?;
    let ymd = |d: NaiveDate| d.format("%Y%m%d").to_string();
    let records: Vec<Vec<Value>> = rows
        .iter()
        .map(|r| {
            let kind: String = r.get("kind");
            let confirmed = r.get::<_, String>("status") == "confirmed";
            let amount: Decimal = if confirmed {
                r.get("amount")
            } else {
                Decimal::ZERO
            };
            vec![
                Value::Text(r.get("request_id")),
                Value::Text(r.get::<_, i64>("order_id").to_string()),
                Value::Text(ymd(trade_date)),
                Value::Text(ymd(r.get("cfm"))),
                Value::Text(
                    if kind == "subscription" {
                        SUBSCRIPTION_CONFIRM
                    } else {
                        REDEMPTION_CONFIRM
                    }
                    .into(),
                ),
                Value::Text(r.get("account_id")),
                Value::Text(r.get("fund_code")),
                Value::Num(amount),
                Value::Num(amount),
                Value::Text(if kind == "fast_redemption" { "1" } else { "0" }.into()),
                Value::Text(
                    if confirmed {
                        RETURN_CONFIRMED
                    } else {
                        RETURN_CANCELLED
                    }
                    .into(),
                ),
            ]
        })
        .collect();
    let header = Header {
        creator: ta_code.into(),
        receiver: partner.into(),
        date: trade_date,
        summary: 0,
        file_type: "04".into(),
        sender: ta_code.into(),
        recipient: partner.into(),
    };
    let bytes = ofd::write(&header, CONFIRMATION_FIELDS, &records)
        .map_err(|e| ApiError::internal(format!("value does not fit its OFD field: {e:?}")))?;
    Ok((ofd::file_name(ta_code, partner, trade_date, "04"), bytes))
}

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
              (status = 404, body = mmf_shared::http::ErrorBody), (status = 409, body = mmf_shared::http::ErrorBody)))]
pub async fn get_confirmations(
    State(state): State<AppState>,
    Path((partner, date)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let day = parse_day("date", &date)?;
    let (name, bytes) =
        confirmation_file(&state.pool, &state.config.cycle.ta_code, &partner, day).await?;
    Ok(file_response(&name, bytes))
}

/// Downloads the OFDCFIDX index file listing the data files sent to a partner for a date.
#[utoipa::path(get, path = "/v1/ops/reconciliation/{partner}/{date}/index",
    responses((status = 200, description = "GB18030 OFD index file", content_type = "text/plain"),
              (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn get_index(
    State(state): State<AppState>,
    Path((partner, date)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let day = parse_day("date", &date)?;
    partner_exists(&state.pool, &partner).await?;
    code_fits(&partner)?;
    let ta = &state.config.cycle.ta_code;
    let names = vec![ofd::file_name(ta, &partner, day, "04")];
    let bytes = ofd::write_index(ta, &partner, day, &names)
        .map_err(|e| ApiError::internal(format!("{e:?}")))?;
    Ok(file_response(
        &format!("OFD_{ta}_{partner}_{}.TXT", day.format("%Y%m%d")),
        bytes,
    ))
}

/// One request from the partner's file.
#[derive(Clone, Debug, Serialize)]
struct Request {
    line: usize,
    request_id: String,
    business_code: String,
    account_id: String,
    fund_code: String,
    #[serde(serialize_with = "mmf_shared::money::as_str2::serialize")]
    amount: Decimal,
    fast: bool,
    cancelled: bool,
    transaction_date: NaiveDate,
}

impl Request {
    /// The order kind this request stands for.
    fn kind(&self) -> &'static str {
        match (self.business_code.as_str(), self.fast) {
            (SUBSCRIPTION_REQUEST, _) => "subscription",
            (_, true) => "fast_redemption",
            _ => "redemption",
        }
    }
}

/// A file rejected as a whole.
pub struct MalformedFile(pub ofd::Malformed);

impl IntoResponse for MalformedFile {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "code": "malformed_file",
                "message": self.0.to_string(),
                "field": "file",
                "line": self.0.line,
            })),
        )
            .into_response()
    }
}

fn malformed(line: usize, message: impl Into<String>) -> MalformedFile {
    MalformedFile(ofd::Malformed {
        line,
        message: message.into(),
    })
}

/// Parses and validates a partner's trade request file for `date`.
fn read_requests(
    bytes: &[u8],
    ta_code: &str,
    partner: &str,
    date: NaiveDate,
) -> Result<(String, Vec<Request>), MalformedFile> {
    let p = ofd::parse(bytes).map_err(MalformedFile)?;
    let h = &p.header;
    if h.creator != partner {
        return Err(malformed(
            3,
            format!("creator must be the partner code {partner}"),
        ));
    }
    if h.receiver != ta_code {
        return Err(malformed(
            4,
            format!("receiver must be the TA code {ta_code}"),
        ));
    }
    if h.date != date {
        return Err(malformed(
            5,
            format!("file date must be {}", date.format("%Y%m%d")),
        ));
    }
    if h.file_type != "02" {
        return Err(malformed(7, "a trade request file has file type 02"));
    }
    for f in REQUEST_FIELDS {
        if !p.fields.iter().any(|g| g.name == *f) {
            return Err(malformed(10, format!("required field {f} is not declared")));
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(p.records.len());
    for (line, rec) in &p.records {
        let line = *line;
        let text = |name: &str| match p.get(rec, name) {
            Some(ParsedValue::Text(s)) => s.clone(),
            _ => String::new(),
        };
        let num = |name: &str| match p.get(rec, name) {
            Some(ParsedValue::Num(n)) => *n,
            _ => Decimal::ZERO,
        };
        let flag = |name: &str| -> Result<bool, MalformedFile> {
            match text(name).as_str() {
                "" | "0" => Ok(false),
                "1" => Ok(true),
                other => Err(malformed(
                    line,
                    format!("{name} must be 0 or 1, not {other:?}"),
                )),
            }
        };
        let request_id = text("AppSheetSerialNo");
        if request_id.is_empty() {
            return Err(malformed(line, "AppSheetSerialNo is empty"));
        }
        if !seen.insert(request_id.clone()) {
            return Err(malformed(
                line,
                format!("AppSheetSerialNo {request_id} appears twice"),
            ));
        }
        let business_code = text("BusinessCode");
        let fast = flag("FastRedeemFlag")?;
        let amount = match business_code.as_str() {
            SUBSCRIPTION_REQUEST if !fast => num("ApplicationAmount"),
            REDEMPTION_REQUEST => num("ApplicationVol"),
            SUBSCRIPTION_REQUEST => {
                return Err(malformed(line, "FastRedeemFlag applies to 024 only"))
            }
            other => {
                return Err(malformed(
                    line,
                    format!("BusinessCode {other:?} is not a trade request (022 or 024)"),
                ))
            }
        };
        if amount.is_zero() {
            return Err(malformed(line, "the requested amount is zero"));
        }
        let transaction_date = NaiveDate::parse_from_str(&text("TransactionDate"), "%Y%m%d")
            .map_err(|_| malformed(line, "TransactionDate must be YYYYMMDD"))?;
        out.push(Request {
            line,
            request_id,
            business_code,
            account_id: text("TAAccountID"),
            fund_code: text("FundCode"),
            amount,
            fast,
            cancelled: flag("CancelFlag")?,
            transaction_date,
        });
    }
    Ok((ofd::file_name(&h.creator, &h.receiver, h.date, "02"), out))
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Discrepancy {
    /// missing_in_system, missing_in_file, amount_mismatch, status_mismatch or kind_mismatch.
    pub kind: String,
    pub request_id: String,
    pub order_id: Option<i64>,
    /// Line of the partner's file, when the request is in it.
    pub line: Option<i32>,
    /// The two sides as each one has them.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Report {
    pub import_id: i64,
    pub partner_id: String,
    pub date: NaiveDate,
    pub hour: Option<i16>,
    pub file_name: String,
    pub records: i32,
    pub matched: i32,
    pub discrepancies: Vec<Discrepancy>,
}

struct Order {
    order_id: i64,
    request_id: String,
    kind: String,
    account_id: String,
    fund_code: String,
    amount: Decimal,
    status: String,
    trade_date: NaiveDate,
}

fn order_json(o: &Order) -> serde_json::Value {
    json!({"order_id": o.order_id, "kind": o.kind, "account_id": o.account_id, "fund_code": o.fund_code,
           "amount": mmf_shared::money::fmt2(o.amount), "status": o.status, "trade_date": o.trade_date})
}

/// Compares the partner's requests with the system's orders of the same scope.
fn compare(requests: &[Request], scope: &[Order], others: &[Order]) -> (i32, Vec<Discrepancy>) {
    let by_request: HashMap<&str, &Order> =
        scope.iter().map(|o| (o.request_id.as_str(), o)).collect();
    let elsewhere: HashMap<&str, &Order> =
        others.iter().map(|o| (o.request_id.as_str(), o)).collect();
    let mut out = Vec::new();
    let mut matched = 0;
    let mut d = |kind: &str, r: Option<&Request>, o: Option<&Order>, note: Option<&str>| {
        out.push(Discrepancy {
            kind: kind.into(),
            request_id: r
                .map(|r| r.request_id.clone())
                .or_else(|| o.map(|o| o.request_id.clone()))
                .unwrap_or_default(),
            order_id: o.map(|o| o.order_id),
            line: r.map(|r| r.line as i32),
            detail: json!({
                "file": r.map(|r| serde_json::to_value(r).expect("serializable")),
                "system": o.map(order_json),
                "note": note,
            }),
        })
    };
    for r in requests {
        let Some(o) = by_request.get(r.request_id.as_str()) else {
            let note = elsewhere.get(r.request_id.as_str()).map(|o| {
                format!(
                    "the system has this request with trade date {}",
                    o.trade_date
                )
            });
            d(
                "missing_in_system",
                Some(r),
                elsewhere.get(r.request_id.as_str()).copied(),
                note.as_deref(),
            );
            continue;
        };
        let mut clean = true;
        if r.kind() != o.kind || r.account_id != o.account_id || r.fund_code != o.fund_code {
            d("kind_mismatch", Some(r), Some(o), None);
            clean = false;
        }
        if r.amount != o.amount {
            d("amount_mismatch", Some(r), Some(o), None);
            clean = false;
        }
        if r.cancelled != (o.status == "cancelled") {
            d("status_mismatch", Some(r), Some(o), None);
            clean = false;
        }
        if clean {
            matched += 1;
        }
    }
    let in_file: HashSet<&str> = requests.iter().map(|r| r.request_id.as_str()).collect();
    for o in scope {
        if !in_file.contains(o.request_id.as_str()) {
            d("missing_in_file", None, Some(o), None);
        }
    }
    (matched, out)
}

fn order_of(r: &tokio_postgres::Row) -> Order {
    Order {
        order_id: r.get("order_id"),
        request_id: r.get("request_id"),
        kind: r.get("kind"),
        account_id: r.get("account_id"),
        fund_code: r.get("fund_code"),
        amount: r.get("amount"),
        status: r.get("status"),
        trade_date: r.get("trade_date"),
    }
}

/// Imports a partner's trade request file for `date` (daily: compared with the orders of trade
/// date `date`; hourly: with the orders accepted in that hour of calendar day `date`) and
/// stores the file's records and the discrepancy report, all in one transaction, as imported
/// at `now`.
pub async fn import_requests(
    pool: &Pool,
    ta_code: &str,
    partner: &str,
    date: NaiveDate,
    hour: Option<i16>,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<Result<Report, MalformedFile>, ApiError> {
    partner_exists(pool, partner).await?;
    let (file_name, requests) = match read_requests(bytes, ta_code, partner, date) {
        Ok(v) => v,
        Err(m) => return Ok(Err(m)),
    };
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let scope_rows = match hour {
        None => {
            tx.query(
                "SELECT * FROM orders WHERE partner_id = $1 AND trade_date = $2",
                &[&partner, &date],
            )
            .await?
        }
        Some(h) => {
            let from = date
                .and_time(NaiveTime::from_hms_opt(h as u32, 0, 0).expect("hour 0..23"))
                .and_local_timezone(Shanghai)
                .single()
                .expect("Shanghai has no DST")
                .with_timezone(&chrono::Utc);
            let to = from + chrono::Duration::hours(1);
            tx.query(
                "SELECT * FROM orders WHERE partner_id = $1 AND accepted_at >= $2 AND accepted_at < $3",
                &[&partner, &from, &to],
            )
            .await?
        }
    };
    let scope: Vec<Order> = scope_rows.iter().map(order_of).collect();
    let ids: Vec<&str> = requests.iter().map(|r| r.request_id.as_str()).collect();
    let others: Vec<Order> = tx
        .query(
            "SELECT * FROM orders WHERE partner_id = $1 AND request_id = ANY($2)",
            &[&partner, &ids],
        )
        .await?
        .iter()
        .map(order_of)
        .collect();
    let (matched, discrepancies) = compare(&requests, &scope, &others);
    let import_id: i64 = tx
        .query_one(
            "INSERT INTO recon_imports (partner_id, file_date, hour, file_name, records, matched, discrepancies,
                                        imported_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING import_id",
            &[
                &partner,
                &date,
                &hour,
                &file_name,
                &(requests.len() as i32),
                &matched,
                &(discrepancies.len() as i32),
                &now,
            ],
        )
        .await?
        .get(0);
    tx.execute(
        "INSERT INTO recon_requests (import_id, line_no, request_id, business_code, account_id,
                                     fund_code, amount, fast, cancelled, transaction_date)
         SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[],
                                  $7::numeric[], $8::bool[], $9::bool[], $10::date[])",
        &[
            &import_id,
            &requests.iter().map(|r| r.line as i32).collect::<Vec<_>>(),
            &ids,
            &requests
                .iter()
                .map(|r| r.business_code.as_str())
                .collect::<Vec<_>>(),
            &requests
                .iter()
                .map(|r| r.account_id.as_str())
                .collect::<Vec<_>>(),
            &requests
                .iter()
                .map(|r| r.fund_code.as_str())
                .collect::<Vec<_>>(),
            &requests.iter().map(|r| r.amount).collect::<Vec<_>>(),
            &requests.iter().map(|r| r.fast).collect::<Vec<_>>(),
            &requests.iter().map(|r| r.cancelled).collect::<Vec<_>>(),
            &requests
                .iter()
                .map(|r| r.transaction_date)
                .collect::<Vec<_>>(),
        ],
    )
    .await?;
    tx.execute(
        "INSERT INTO recon_discrepancies (import_id, seq, kind, request_id, order_id, line_no, detail)
         SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::bigint[], $6::int[], $7::jsonb[])",
        &[
            &import_id,
            &(0..discrepancies.len() as i32).collect::<Vec<_>>(),
            &discrepancies
                .iter()
                .map(|d| d.kind.as_str())
                .collect::<Vec<_>>(),
            &discrepancies
                .iter()
                .map(|d| d.request_id.as_str())
                .collect::<Vec<_>>(),
            &discrepancies.iter().map(|d| d.order_id).collect::<Vec<_>>(),
            &discrepancies.iter().map(|d| d.line).collect::<Vec<_>>(),
            &discrepancies.iter().map(|d| &d.detail).collect::<Vec<_>>(),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(Report {
        import_id,
        partner_id: partner.into(),
        date,
        hour,
        file_name,
        records: requests.len() as i32,
        matched,
        discrepancies,
    }))
}

/// The report of the latest import for a partner, date and (for hourly files) hour.
pub async fn latest_report(
    pool: &Pool,
    partner: &str,
    date: NaiveDate,
    hour: Option<i16>,
) -> Result<Option<Report>, ApiError> {
    let client = pool.get().await?;
    let Some(r) = client
        .query_opt(
            "SELECT * FROM recon_imports WHERE partner_id = $1 AND file_date = $2
               AND hour IS NOT DISTINCT FROM $3
             ORDER BY import_id DESC LIMIT 1",
            &[&partner, &date, &hour],
        )
        .await?
    else {
        return Ok(None);
    };
    let import_id: i64 = r.get("import_id");
    let discrepancies = client
        .query(
            "SELECT kind, request_id, order_id, line_no, detail FROM recon_discrepancies
             WHERE import_id = $1 ORDER BY seq",
            &[&import_id],
        )
        .await?
        .iter()
        .map(|d| Discrepancy {
            kind: d.get(0),
            request_id: d.get(1),
            order_id: d.get(2),
            line: d.get(3),
            detail: d.get(4),
        })
        .collect();
    Ok(Some(Report {
        import_id,
        partner_id: partner.into(),
        date,
        hour,
        file_name: r.get("file_name"),
        records: r.get("records"),
        matched: r.get("matched"),
        discrepancies,
    }))
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
    responses((status = 200, body = Report), (status = 400, body = mmf_shared::http::ErrorBody),
              (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn post_requests(
    State(state): State<AppState>,
    Path((partner, date)): Path<(String, String)>,
    Query(q): Query<HourQuery>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let day = parse_day("date", &date)?;
    let hour = hour_of(&q)?;
    Ok(
        match import_requests(
            &state.pool,
            &state.config.cycle.ta_code,
            &partner,
            day,
            hour,
            &body,
            state.clock.now(),
        )
        .await?
        {
            Ok(report) => axum::Json(report).into_response(),
            Err(m) => m.into_response(),
        },
    )
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
    latest_report(&state.pool, &partner, day, hour)
        .await?
        .map(axum::Json)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoImport,
                "no request file imported for this date",
            )
        })
}

/// Request files of a busy partner run to tens of megabytes.
const MAX_FILE: usize = 256 << 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/ops/reconciliation/{partner}/{date}/confirmations",
            get(get_confirmations),
        )
        .route(
            "/v1/ops/reconciliation/{partner}/{date}/index",
            get(get_index),
        )
        .route(
            "/v1/ops/reconciliation/{partner}/{date}/requests",
            axum::routing::post(post_requests).layer(DefaultBodyLimit::max(MAX_FILE)),
        )
        .route(
            "/v1/ops/reconciliation/{partner}/{date}/discrepancies",
            get(get_discrepancies),
        )
}
