//! Reconciliation with partners through OFD files (JR/T 0017 business codes): the TA's trade
//! confirmation file (type 04) per partner and trade date, and the import of a partner's trade
//! request file (type 02, daily or hourly), compared with the orders the system received.
//! Every difference is listed in a discrepancy report, stored with the import.

pub mod ofd;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Asia::Shanghai;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mmf_domain::ids::{AccountId, FundCode, PartnerId, RequestId};
use mmf_domain::money::Amount;
use mmf_domain::orders::{self as rules, OrderKind, OrderStatus, Purpose};
use mmf_domain::reconcile::{self as rules_reconcile, compare};
use mmf_shared::db::{DbError, DbPool};
use mmf_shared::http::{ApiError, ErrorCode};
use mmf_shared::schema::{
    cycle_steps, partners, recon_discrepancies, recon_imports, recon_requests, retained_records,
};
use mmf_shared::views::order_states;
use ofd::{Header, Parsed, ParsedValue, Value};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use utoipa::ToSchema;

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

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("no such partner")]
    UnknownPartner,
    #[error("OFD sender and recipient codes are at most 8 characters")]
    PartnerCodeTooLong,
    #[error("the daily cycle has not confirmed this trade date yet")]
    NotConfirmed,
    #[error("the orders of this date have left the current database (retention)")]
    Retained,
    #[error("{0}")]
    Malformed(ofd::Malformed),
    #[error("{0}")]
    Inconsistent(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ReconcileError {
    fn from(e: diesel::result::Error) -> ReconcileError {
        ReconcileError::Db(e.into())
    }
}

impl From<mmf_shared::db::PoolError> for ReconcileError {
    fn from(e: mmf_shared::db::PoolError) -> ReconcileError {
        ReconcileError::Db(e.into())
    }
}

impl From<ReconcileError> for ApiError {
    fn from(e: ReconcileError) -> ApiError {
        let message = e.to_string();
        match e {
            ReconcileError::UnknownPartner => {
                ApiError::new(ErrorCode::UnknownPartner, message).with_field("partner")
            }
            ReconcileError::PartnerCodeTooLong => {
                ApiError::new(ErrorCode::PartnerCodeTooLong, message).with_field("partner")
            }
            ReconcileError::NotConfirmed => {
                ApiError::new(ErrorCode::TradeDateNotConfirmed, message).with_field("date")
            }
            ReconcileError::Retained => {
                ApiError::new(ErrorCode::DateRetained, message).with_field("date")
            }
            ReconcileError::Malformed(m) => ApiError::new(ErrorCode::MalformedFile, message)
                .with_field("file")
                .with_detail("line", m.line.into()),
            ReconcileError::Inconsistent(_) => ApiError::internal(message),
            ReconcileError::Db(e) => e.into(),
        }
    }
}

fn code_fits(partner: &str) -> Result<(), ReconcileError> {
    if partner.len() > 8 {
        return Err(ReconcileError::PartnerCodeTooLong);
    }
    Ok(())
}

/// 404 unless the partner exists, else that its code fits OFD headers.
pub async fn check_partner(pool: &DbPool, partner: &str) -> Result<(), ReconcileError> {
    let found: Option<String> = partners::table
        .find(partner)
        .select(partners::partner_id)
        .first(&mut pool.get().await?)
        .await
        .optional()?;
    found.ok_or(ReconcileError::UnknownPartner)?;
    code_fits(partner)
}

#[derive(Queryable)]
struct Confirmation {
    request_id: String,
    order_id: i64,
    kind: String,
    account_id: String,
    fund_code: String,
    amount: Decimal,
    status: String,
    confirmed_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
}

impl Confirmation {
    /// The order's record in the confirmation file of `trade_date`, in `CONFIRMATION_FIELDS`
    /// order.
    fn record(self, trade_date: NaiveDate) -> Vec<Value> {
        let ymd = |d: NaiveDate| Value::Text(d.format("%Y%m%d").to_string());
        let confirmed = self.status == "confirmed";
        let amount = if confirmed {
            self.amount
        } else {
            Decimal::ZERO
        };
        // The confirmation date in Asia/Shanghai.
        let cfm = self
            .confirmed_at
            .or(self.cancelled_at)
            .map(mmf_domain::calendar::business_date)
            .unwrap_or(trade_date);
        let business_code = if self.kind == "subscription" {
            SUBSCRIPTION_CONFIRM
        } else {
            REDEMPTION_CONFIRM
        };
        let fast = if self.kind == "fast_redemption" {
            "1"
        } else {
            "0"
        };
        let return_code = if confirmed {
            RETURN_CONFIRMED
        } else {
            RETURN_CANCELLED
        };
        vec![
            Value::Text(self.request_id),
            Value::Text(self.order_id.to_string()),
            ymd(trade_date),
            ymd(cfm),
            Value::Text(business_code.into()),
            Value::Text(self.account_id),
            Value::Text(self.fund_code),
            Value::Num(amount),
            Value::Num(amount),
            Value::Text(fast.into()),
            Value::Text(return_code.into()),
        ]
    }
}

/// The trade confirmation file of `partner` for `trade_date`: (file name, GB18030 bytes).
/// Every order of the trade date is listed: confirmed ones with their amount, cancelled ones
/// with return code 9001 and nothing confirmed.
#[tracing::instrument(skip(pool), err)]
pub async fn confirmation_file(
    pool: &DbPool,
    ta_code: &str,
    partner: &str,
    trade_date: NaiveDate,
) -> Result<(String, Vec<u8>), ReconcileError> {
    check_partner(pool, partner).await?;
    let mut conn = pool.get().await?;
    check_not_retained(&mut conn, trade_date).await?;
    let confirmed: Option<String> = cycle_steps::table
        .find((trade_date, "confirm"))
        .select(cycle_steps::step)
        .first(&mut conn)
        .await
        .optional()?;
    if confirmed.is_none() {
        return Err(ReconcileError::NotConfirmed);
    }
    let rows: Vec<Confirmation> = order_states::table
        .filter(order_states::partner_id.eq(partner))
        .filter(order_states::trade_date.eq(trade_date))
        .filter(order_states::status.ne("accepted"))
        .order(order_states::order_id)
        .select((
            order_states::request_id,
            order_states::order_id,
            order_states::kind,
            order_states::account_id,
            order_states::fund_code,
            order_states::amount,
            order_states::status,
            order_states::confirmed_at,
            order_states::cancelled_at,
        ))
        .load(&mut conn)
        .await?;
    let records: Vec<Vec<Value>> = rows.into_iter().map(|r| r.record(trade_date)).collect();
    let header = Header {
        creator: ta_code.into(),
        receiver: partner.into(),
        date: trade_date,
        summary: 0,
        file_type: "04".into(),
        sender: ta_code.into(),
        recipient: partner.into(),
    };
    let bytes = ofd::write(&header, CONFIRMATION_FIELDS, &records).map_err(|e| {
        ReconcileError::Inconsistent(format!("value does not fit its OFD field: {e:?}"))
    })?;
    Ok((ofd::file_name(ta_code, partner, trade_date, "04"), bytes))
}

/// The OFDCFIDX index file listing the data files sent to a partner for a date:
/// (file name, GB18030 bytes).
pub async fn index_file(
    pool: &DbPool,
    ta_code: &str,
    partner: &str,
    day: NaiveDate,
) -> Result<(String, Vec<u8>), ReconcileError> {
    check_partner(pool, partner).await?;
    let names = vec![ofd::file_name(ta_code, partner, day, "04")];
    let bytes = ofd::write_index(ta_code, partner, day, &names)
        .map_err(|e| ReconcileError::Inconsistent(format!("{e:?}")))?;
    Ok((
        format!("OFD_{ta_code}_{partner}_{}.TXT", day.format("%Y%m%d")),
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
    #[serde(serialize_with = "mmf_shared::json::amount::serialize")]
    amount: Decimal,
    fast: bool,
    cancelled: bool,
    transaction_date: NaiveDate,
}

impl Request {
    /// The order kind this request stands for (the file reader accepts only valid pairs).
    fn kind(&self) -> OrderKind {
        OrderKind::of_request(&self.business_code, self.fast).unwrap_or(OrderKind::Redemption)
    }

    /// As the reconciliation rule reads it.
    fn rule(&self) -> rules_reconcile::Request {
        rules_reconcile::Request {
            line: self.line,
            request_id: self.request_id.clone(),
            kind: self.kind(),
            account_id: self.account_id.clone(),
            fund_code: self.fund_code.clone(),
            amount: self.amount,
            cancelled: self.cancelled,
        }
    }
}

fn malformed(line: usize, message: impl Into<String>) -> ReconcileError {
    ReconcileError::Malformed(ofd::Malformed {
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
) -> Result<(String, Vec<Request>), ReconcileError> {
    let p = ofd::parse(bytes).map_err(ReconcileError::Malformed)?;
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
        let r = request(&p, *line, rec)?;
        if !seen.insert(r.request_id.clone()) {
            return Err(malformed(
                r.line,
                format!("AppSheetSerialNo {} appears twice", r.request_id),
            ));
        }
        out.push(r);
    }
    Ok((ofd::file_name(&h.creator, &h.receiver, h.date, "02"), out))
}

/// The trade request on record line `line`.
fn request(p: &Parsed, line: usize, rec: &[ParsedValue]) -> Result<Request, ReconcileError> {
    let text = |name: &str| match p.get(rec, name) {
        Some(ParsedValue::Text(s)) => s.clone(),
        _ => String::new(),
    };
    let num = |name: &str| match p.get(rec, name) {
        Some(ParsedValue::Num(n)) => *n,
        _ => Decimal::ZERO,
    };
    let flag = |name: &str| -> Result<bool, ReconcileError> {
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
    let business_code = text("BusinessCode");
    let fast = flag("FastRedeemFlag")?;
    let amount = match business_code.as_str() {
        SUBSCRIPTION_REQUEST if !fast => num("ApplicationAmount"),
        REDEMPTION_REQUEST => num("ApplicationVol"),
        SUBSCRIPTION_REQUEST => return Err(malformed(line, "FastRedeemFlag applies to 024 only")),
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
    Ok(Request {
        line,
        request_id,
        business_code,
        account_id: text("TAAccountID"),
        fund_code: text("FundCode"),
        amount,
        fast,
        cancelled: flag("CancelFlag")?,
        transaction_date,
    })
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

/// An order as `orders` stores it, read for the compare.
#[derive(Queryable, Selectable)]
#[diesel(table_name = order_states, check_for_backend(diesel::pg::Pg))]
struct OrderRow {
    order_id: i64,
    partner_id: String,
    request_id: String,
    account_id: String,
    fund_code: String,
    kind: String,
    purpose: Option<String>,
    amount: Decimal,
    status: String,
    trade_date: NaiveDate,
    effective_date: Option<NaiveDate>,
}

impl OrderRow {
    /// The order as the rules see it.
    fn rule(self) -> Result<rules::Order, ReconcileError> {
        let bad =
            |what: &str| ReconcileError::Inconsistent(format!("order {}: {what}", self.order_id));
        Ok(rules::Order {
            order_id: self.order_id,
            partner_id: PartnerId::parse(&self.partner_id).map_err(|_| bad("partner_id"))?,
            request_id: RequestId::parse(&self.request_id).map_err(|_| bad("request_id"))?,
            account_id: AccountId::parse(&self.account_id).map_err(|_| bad("account_id"))?,
            fund_code: FundCode::parse(&self.fund_code).map_err(|_| bad("fund_code"))?,
            kind: OrderKind::parse(&self.kind).ok_or_else(|| bad("kind"))?,
            purpose: match &self.purpose {
                Some(p) => Some(Purpose::parse(p).ok_or_else(|| bad("purpose"))?),
                None => None,
            },
            amount: Amount::from_decimal(self.amount).map_err(|_| bad("amount"))?,
            status: OrderStatus::parse(&self.status).ok_or_else(|| bad("status"))?,
            trade_date: self.trade_date,
            effective_date: self.effective_date,
        })
    }
}

fn order_json(o: &rules::Order) -> serde_json::Value {
    json!({"order_id": o.order_id, "kind": o.kind.as_str(), "account_id": o.account_id.as_str(),
           "fund_code": o.fund_code.as_str(), "amount": o.amount.to_string(),
           "status": o.status.as_str(), "trade_date": o.trade_date})
}

/// The discrepancies of the rule's compare, with both sides as each one has them.
fn report_of(
    requests: &[Request],
    orders: &[&rules::Order],
    comparison: rules_reconcile::Comparison,
) -> (i32, Vec<Discrepancy>) {
    let by_line: HashMap<usize, &Request> = requests.iter().map(|r| (r.line, r)).collect();
    let by_id: HashMap<i64, &rules::Order> = orders.iter().map(|o| (o.order_id, *o)).collect();
    let discrepancies = comparison
        .discrepancies
        .into_iter()
        .map(|d| {
            let r = d.line.and_then(|l| by_line.get(&l));
            let o = d.order_id.and_then(|id| by_id.get(&id));
            Discrepancy {
                kind: d.kind.as_str().into(),
                request_id: d.request_id,
                order_id: d.order_id,
                line: d.line.map(|l| l as i32),
                detail: json!({
                    "file": r.map(|r| serde_json::to_value(r).expect("serializable")),
                    "system": o.map(|o| order_json(o)),
                    "note": d.note,
                }),
            }
        })
        .collect();
    (comparison.matched as i32, discrepancies)
}

/// The partner's orders in a file's scope: of the trade date (daily file) or accepted within
/// the Shanghai hour (hourly file), in order-id order.
async fn orders_in_scope(
    c: &mut AsyncPgConnection,
    partner: &str,
    date: NaiveDate,
    hour: Option<i16>,
) -> QueryResult<Vec<OrderRow>> {
    let q = order_states::table
        .filter(order_states::partner_id.eq(partner))
        .select(OrderRow::as_select())
        .order(order_states::order_id)
        .into_boxed();
    let q = match hour {
        None => q.filter(order_states::trade_date.eq(date)),
        Some(h) => {
            let from = date
                .and_time(NaiveTime::from_hms_opt(h as u32, 0, 0).expect("hour 0..23"))
                .and_local_timezone(Shanghai)
                .single()
                .expect("Shanghai has no DST")
                .with_timezone(&Utc);
            let to = from + chrono::Duration::hours(1);
            q.filter(order_states::accepted_at.ge(from))
                .filter(order_states::accepted_at.lt(to))
        }
    };
    q.load(c).await
}

/// Files of a date whose orders retention has deleted would be built from, or compared with,
/// nothing: they are refused.
async fn check_not_retained(
    conn: &mut AsyncPgConnection,
    date: NaiveDate,
) -> Result<(), ReconcileError> {
    let retained: Option<i64> = retained_records::table
        .find((date, "orders"))
        .select(retained_records::rows)
        .first(conn)
        .await
        .optional()?;
    match retained {
        Some(_) => Err(ReconcileError::Retained),
        None => Ok(()),
    }
}

/// Imports a partner's trade request file for `date` (and `hour`, for an hourly file),
/// compares it with the orders the system received and stores the file's records and the
/// discrepancy report, all in one transaction. A malformed file stores nothing.
#[tracing::instrument(skip(pool, bytes), fields(bytes = bytes.len()), err)]
pub async fn import_requests(
    pool: &DbPool,
    ta_code: &str,
    partner: &str,
    date: NaiveDate,
    hour: Option<i16>,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<Report, ReconcileError> {
    check_partner(pool, partner).await?;
    let (file_name, requests) = read_requests(bytes, ta_code, partner, date)?;
    let mut conn = pool.get().await?;
    check_not_retained(&mut conn, date).await?;
    conn.transaction(async |c| {
        let scope = orders_in_scope(c, partner, date, hour).await?;
        let ids: Vec<&str> = requests.iter().map(|r| r.request_id.as_str()).collect();
        let others: Vec<OrderRow> = order_states::table
            .filter(order_states::partner_id.eq(partner))
            .filter(order_states::request_id.eq_any(&ids))
            .select(OrderRow::as_select())
            .order(order_states::order_id)
            .load(c)
            .await?;
        let scope = scope
            .into_iter()
            .map(OrderRow::rule)
            .collect::<Result<Vec<_>, _>>()?;
        let others = others
            .into_iter()
            .map(OrderRow::rule)
            .collect::<Result<Vec<_>, _>>()?;
        let file: Vec<rules_reconcile::Request> = requests.iter().map(Request::rule).collect();
        let comparison = compare(&file, &scope, &others);
        let all: Vec<&rules::Order> = scope.iter().chain(&others).collect();
        let (matched, discrepancies) = report_of(&requests, &all, comparison);
        let import_id = store(
            c,
            partner,
            date,
            hour,
            &file_name,
            &requests,
            matched,
            &discrepancies,
            now,
        )
        .await?;
        Ok(Report {
            import_id,
            partner_id: partner.into(),
            date,
            hour,
            file_name: file_name.clone(),
            records: requests.len() as i32,
            matched,
            discrepancies,
        })
    })
    .await
}

/// Stores an import: its summary, its records and its discrepancies.
#[allow(clippy::too_many_arguments)]
async fn store(
    c: &mut AsyncPgConnection,
    partner: &str,
    date: NaiveDate,
    hour: Option<i16>,
    file_name: &str,
    requests: &[Request],
    matched: i32,
    discrepancies: &[Discrepancy],
    now: DateTime<Utc>,
) -> Result<i64, ReconcileError> {
    let import_id: i64 = diesel::insert_into(recon_imports::table)
        .values((
            recon_imports::partner_id.eq(partner),
            recon_imports::file_date.eq(date),
            recon_imports::hour.eq(hour),
            recon_imports::file_name.eq(file_name),
            recon_imports::records.eq(requests.len() as i32),
            recon_imports::matched.eq(matched),
            recon_imports::discrepancies.eq(discrepancies.len() as i32),
            recon_imports::imported_at.eq(now),
        ))
        .returning(recon_imports::import_id)
        .get_result(c)
        .await?;
    let records: Vec<_> = requests
        .iter()
        .map(|r| {
            (
                recon_requests::import_id.eq(import_id),
                recon_requests::line_no.eq(r.line as i32),
                recon_requests::request_id.eq(&r.request_id),
                recon_requests::business_code.eq(&r.business_code),
                recon_requests::account_id.eq(&r.account_id),
                recon_requests::fund_code.eq(&r.fund_code),
                recon_requests::amount.eq(r.amount),
                recon_requests::fast.eq(r.fast),
                recon_requests::cancelled.eq(r.cancelled),
                recon_requests::transaction_date.eq(r.transaction_date),
            )
        })
        .collect();
    // Large files go in chunks: a statement takes at most 65,535 parameters.
    for chunk in records.chunks(5_000) {
        diesel::insert_into(recon_requests::table)
            .values(chunk)
            .execute(c)
            .await?;
    }
    let found: Vec<_> = discrepancies
        .iter()
        .enumerate()
        .map(|(seq, d)| {
            (
                recon_discrepancies::import_id.eq(import_id),
                recon_discrepancies::seq.eq(seq as i32),
                recon_discrepancies::kind.eq(&d.kind),
                recon_discrepancies::request_id.eq(&d.request_id),
                recon_discrepancies::order_id.eq(d.order_id),
                recon_discrepancies::line_no.eq(d.line),
                recon_discrepancies::detail.eq(&d.detail),
            )
        })
        .collect();
    for chunk in found.chunks(5_000) {
        diesel::insert_into(recon_discrepancies::table)
            .values(chunk)
            .execute(c)
            .await?;
    }
    Ok(import_id)
}

/// The discrepancy report of the latest import for a partner and date (and hour).
pub async fn latest_report(
    pool: &DbPool,
    partner: &str,
    date: NaiveDate,
    hour: Option<i16>,
) -> Result<Option<Report>, ReconcileError> {
    let mut conn = pool.get().await?;
    let mut q = recon_imports::table
        .filter(recon_imports::partner_id.eq(partner))
        .filter(recon_imports::file_date.eq(date))
        .into_boxed();
    q = match hour {
        Some(h) => q.filter(recon_imports::hour.eq(h)),
        None => q.filter(recon_imports::hour.is_null()),
    };
    let import: Option<(i64, String, i32, i32)> = q
        .order(recon_imports::import_id.desc())
        .select((
            recon_imports::import_id,
            recon_imports::file_name,
            recon_imports::records,
            recon_imports::matched,
        ))
        .first(&mut conn)
        .await
        .optional()?;
    let Some((import_id, file_name, records, matched)) = import else {
        return Ok(None);
    };
    let discrepancies = recon_discrepancies::table
        .filter(recon_discrepancies::import_id.eq(import_id))
        .order(recon_discrepancies::seq)
        .select((
            recon_discrepancies::kind,
            recon_discrepancies::request_id,
            recon_discrepancies::order_id,
            recon_discrepancies::line_no,
            recon_discrepancies::detail,
        ))
        .load::<(String, String, Option<i64>, Option<i32>, serde_json::Value)>(&mut conn)
        .await?
        .into_iter()
        .map(|(kind, request_id, order_id, line, detail)| Discrepancy {
            kind,
            request_id,
            order_id,
            line,
            detail,
        })
        .collect();
    Ok(Some(Report {
        import_id,
        partner_id: partner.into(),
        date,
        hour,
        file_name,
        records,
        matched,
        discrepancies,
    }))
}
