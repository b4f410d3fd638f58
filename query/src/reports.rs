//! Regulatory reports: each is one SQL file (`query/src/reports/*.sql`, documented in
//! docs/reports.md) over a range of days of the read models: daily holdings and orders laid out
//! by day, one row set per day. The first and last day are the parameters, `{from:Date}` and
//! `{to:Date}` as current clickhouse-client takes them; the service substitutes the validated
//! dates (18.16 has no query parameters). One day is the range from it to itself. Only names from [`REPORTS`]
//! reach SQL. The reports that read orders read the read models the sync worker builds once a
//! day's orders are final (docs/decisions/0035-investor-read-models.md,
//! 0038-order-read-models.md); for the last days, whose orders can still change, they group
//! the orders themselves (the same rows, slower).

use crate::{date_range, parse_date, AppState};
use axum::extract::State;
use chrono::NaiveDate;
use diesel::dsl::max;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mmf_shared::http::ErrorCode;
use mmf_shared::http::{ApiError, Path, Query};
use mmf_shared::schema::{flows_days, holdings_days};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

pub struct Report {
    /// The name in `/v1/reports/{name}`.
    pub name: &'static str,
    /// The query, with `{from:Date}` and `{to:Date}` for its days.
    pub sql: &'static str,
    /// The order of one day's rows (the days come in order).
    pub order_by: &'static str,
    /// Reads the day's holdings, which exist once the day's income is distributed.
    pub reads_holdings: bool,
    /// The same query over the read models of the orders (`investor_flows`, `order_flows`,
    /// `t0_flows`), for days whose flows are built (with the days before them).
    pub from_flows: Option<&'static str>,
}

pub const REPORTS: &[Report] = &[
    Report {
        name: "aml_large_transactions",
        sql: include_str!("reports/aml_large_transactions.sql"),
        order_by: "account_ids, investor_key",
        reads_holdings: false,
        from_flows: Some(include_str!(
            "reports/aml_large_transactions_from_flows.sql"
        )),
    },
    Report {
        name: "suspicious_patterns",
        sql: include_str!("reports/suspicious_patterns.sql"),
        order_by: "pattern, account_ids, investor_key",
        reads_holdings: false,
        from_flows: Some(include_str!("reports/suspicious_patterns_from_flows.sql")),
    },
    Report {
        name: "fund_daily_scale",
        sql: include_str!("reports/fund_daily_scale.sql"),
        order_by: "fund_code",
        reads_holdings: true,
        from_flows: Some(include_str!("reports/fund_daily_scale_from_flows.sql")),
    },
    Report {
        name: "partner_flows",
        sql: include_str!("reports/partner_flows.sql"),
        order_by: "partner_id, fund_code",
        reads_holdings: false,
        from_flows: Some(include_str!("reports/partner_flows_from_flows.sql")),
    },
    Report {
        name: "investor_concentration",
        sql: include_str!("reports/investor_concentration.sql"),
        order_by: "fund_code, bucket",
        reads_holdings: true,
        from_flows: None,
    },
    Report {
        name: "t0_usage",
        sql: include_str!("reports/t0_usage.sql"),
        order_by: "fund_code",
        reads_holdings: false,
        from_flows: Some(include_str!("reports/t0_usage_from_flows.sql")),
    },
];

pub fn find(name: &str) -> Option<&'static Report> {
    REPORTS.iter().find(|r| r.name == name)
}

/// Memory a report's grouping may take before it spills to disk: one report runs as two
/// queries side by side, each under ClickHouse's per-query limit (10 GB by default).
pub const GROUP_BY_SPILL_BYTES: &str = "3000000000";

/// The longest range one call reports on.
pub const MAX_RANGE_DAYS: i64 = 92;

/// The SQL that selects the days `from..=to` of a report, day by day in the report's order:
/// from the per-person flows when `flows_built` (`to`'s and every earlier day's are) and the
/// report has that form.
pub fn sql(report: &Report, from: NaiveDate, to: NaiveDate, flows_built: bool) -> String {
    let query = match report.from_flows {
        Some(q) if flows_built => q,
        _ => report.sql,
    };
    format!(
        "SELECT * FROM (\n{}\n) ORDER BY day, {}",
        query
            .replace("{from:Date}", &format!("toDate('{from}')"))
            .replace("{to:Date}", &format!("toDate('{to}')")),
        report.order_by
    )
}

/// `from..=to` as its first and second half (one part for one day).
fn split(from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    let days = (to - from).num_days();
    if days < 1 {
        return vec![(from, to)];
    }
    let mid = from + chrono::Days::new((days / 2) as u64);
    vec![(from, mid), (mid + chrono::Days::new(1), to)]
}

#[derive(Deserialize, IntoParams)]
pub struct ReportQuery {
    /// One day, `YYYY-MM-DD`.
    date: Option<String>,
    /// The first day of a range (with `to`, instead of `date`).
    from: Option<String>,
    /// The last day of a range (inclusive); a range spans at most 92 days.
    to: Option<String>,
}

/// One report row: column name to value.
pub type Row = Map<String, Value>;

#[derive(Serialize, ToSchema)]
pub struct ReportBody {
    pub report: String,
    /// The day asked for with `date`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    pub from: String,
    pub to: String,
    pub columns: Vec<String>,
    /// One object per row: amounts as strings with their decimals, counts as numbers.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Row>,
}

/// A regulatory report for one day (`date`) or each day of a range (`from`, `to`), ops token.
/// Names: aml_large_transactions, suspicious_patterns, fund_daily_scale, partner_flows,
/// investor_concentration, t0_usage.
#[utoipa::path(get, path = "/v1/reports/{name}", params(("name" = String, Path), ReportQuery),
    responses((status = 200, body = ReportBody), (status = 400, body = mmf_shared::http::ErrorBody),
              (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn get_report(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<axum::Json<ReportBody>, ApiError> {
    let report = find(&name).ok_or_else(|| {
        ApiError::new(ErrorCode::UnknownReport, "no such report").with_field("name")
    })?;
    let (from, to) = match (&q.date, &q.from, &q.to) {
        (Some(date), None, None) => {
            let day = parse_date("date", date)?;
            (day, day)
        }
        (Some(_), _, _) => {
            return Err(
                ApiError::new(ErrorCode::InvalidField, "give either date or from and to")
                    .with_field("date"),
            )
        }
        (None, None, None) => {
            return Err(ApiError::new(
                ErrorCode::MissingParameter,
                "date (or from and to) is required",
            )
            .with_field("date"))
        }
        (None, from, to) => date_range(from.as_deref(), to.as_deref(), MAX_RANGE_DAYS)?,
    };
    let mut conn = state.pool.get().await?;
    let mut flows_built = false;
    if report.from_flows.is_some() {
        let last: Option<NaiveDate> = flows_days::table
            .select(max(flows_days::day))
            .get_result(&mut conn)
            .await?;
        flows_built = last.is_some_and(|last| last >= to);
    }
    if report.reads_holdings {
        let built: i64 = holdings_days::table
            .filter(holdings_days::day.between(from, to))
            .count()
            .get_result(&mut conn)
            .await?;
        if built <= (to - from).num_days() {
            return Err(ApiError::unavailable(format!(
                "the holdings of {from}..{to} are not all built yet (income not distributed)"
            ))
            .with_field(if q.date.is_some() { "date" } else { "to" }));
        }
    }
    // Not held while ClickHouse runs the report.
    drop(conn);
    // A range runs as two halves side by side: 18.16 reads `FINAL` in one stream, so one query
    // over orders keeps one core busy; each day's rows do not depend on the other days'.
    let halves = split(from, to);
    let answers = futures::future::try_join_all(halves.iter().map(|&(a, b)| {
        let query = state
            .ch
            .query(&sql(report, a, b, flows_built))
            // A peak day's groupings (30M orders) spill to disk rather than fail.
            .with_setting("max_bytes_before_external_group_by", GROUP_BY_SPILL_BYTES);
        async move {
            let bytes = query
                .fetch_bytes("TabSeparatedWithNamesAndTypes")?
                .collect()
                .await?;
            let text = String::from_utf8(bytes.to_vec()).map_err(ApiError::internal)?;
            parse_tsv(&text).map_err(ApiError::internal)
        }
    }))
    .await?;
    let mut answers = answers.into_iter();
    let (columns, mut rows) = answers.next().unwrap_or_default();
    for (_, more) in answers {
        rows.extend(more);
    }
    Ok(axum::Json(ReportBody {
        report: report.name.to_string(),
        date: q.date.map(|_| from.to_string()),
        from: from.to_string(),
        to: to.to_string(),
        columns,
        rows,
    }))
}

/// Reads `TabSeparatedWithNamesAndTypes` into JSON objects: Decimal(P, S) as a string with S
/// decimals (servers differ in trailing zeros), integers as numbers, NULL as null, arrays of
/// strings as arrays, the rest as strings.
pub fn parse_tsv(text: &str) -> Result<(Vec<String>, Vec<Row>), String> {
    let mut lines = text.lines();
    let names: Vec<String> = lines
        .next()
        .ok_or("no header")?
        .split('\t')
        .map(unescape)
        .collect();
    let types: Vec<String> = lines
        .next()
        .ok_or("no types")?
        .split('\t')
        .map(unescape)
        .collect();
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let mut row = Map::new();
        for ((name, ty), raw) in names.iter().zip(&types).zip(line.split('\t')) {
            row.insert(name.clone(), value(ty, raw)?);
        }
        rows.push(row);
    }
    Ok((names, rows))
}

fn value(ty: &str, raw: &str) -> Result<Value, String> {
    let ty = match ty.strip_prefix("Nullable(") {
        Some(inner) => {
            if raw == "\\N" {
                return Ok(Value::Null);
            }
            inner.strip_suffix(')').unwrap_or(inner)
        }
        None => ty,
    };
    if let Some(args) = ty.strip_prefix("Decimal(") {
        let scale: u32 = args
            .trim_end_matches(')')
            .split(',')
            .nth(1)
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| format!("type {ty}"))?;
        let mut d: Decimal = raw.parse().map_err(|e| format!("{raw:?}: {e}"))?;
        d.rescale(scale);
        return Ok(Value::String(d.to_string()));
    }
    if ty == "Array(String)" {
        return string_array(raw);
    }
    if ty.starts_with("UInt") || ty.starts_with("Int") {
        let n: i128 = raw.parse().map_err(|e| format!("{raw:?}: {e}"))?;
        return Ok(match (i64::try_from(n), u64::try_from(n)) {
            (Ok(i), _) => Value::from(i),
            (_, Ok(u)) => Value::from(u),
            _ => Value::String(raw.to_string()),
        });
    }
    Ok(Value::String(unescape(raw)))
}

/// `['a','b']` (as TabSeparated writes an `Array(String)`) as a JSON array.
fn string_array(raw: &str) -> Result<Value, String> {
    let inner = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| format!("array {raw:?}"))?;
    let mut items = Vec::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            ',' => {}
            '\'' => {
                let mut item = String::new();
                loop {
                    match chars.next().ok_or_else(|| format!("array {raw:?}"))? {
                        '\'' => break,
                        // TabSeparated escapes the backslash of the array's own escape too.
                        '\\' => {
                            let mut e = chars.next().ok_or_else(|| format!("array {raw:?}"))?;
                            if e == '\\' {
                                e = chars.next().ok_or_else(|| format!("array {raw:?}"))?;
                            }
                            item.push(e);
                        }
                        o => item.push(o),
                    }
                }
                items.push(Value::String(item));
            }
            _ => return Err(format!("array {raw:?}")),
        }
    }
    Ok(Value::Array(items))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_values_by_type() {
        let text = "day\tamount\tn\tname\ty\n\
                    Date\tDecimal(38, 2)\tUInt64\tString\tNullable(Decimal(18, 3))\n\
                    2026-11-26\t600000\t3\ta\\tb\t\\N\n";
        let (cols, rows) = parse_tsv(text).unwrap();
        assert_eq!(cols, ["day", "amount", "n", "name", "y"]);
        assert_eq!(rows[0]["day"], "2026-11-26");
        assert_eq!(rows[0]["amount"], "600000.00");
        assert_eq!(rows[0]["n"], 3);
        assert_eq!(rows[0]["name"], "a\tb");
        assert!(rows[0]["y"].is_null());
    }

    #[test]
    fn a_range_splits_into_two_halves_that_cover_it() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            split(d("2026-11-26"), d("2026-11-26")),
            [(d("2026-11-26"), d("2026-11-26"))]
        );
        assert_eq!(
            split(d("2026-11-26"), d("2026-11-27")),
            [
                (d("2026-11-26"), d("2026-11-26")),
                (d("2026-11-27"), d("2026-11-27"))
            ]
        );
        for days in 1..100u64 {
            let (from, to) = (d("2026-11-01"), d("2026-11-01") + chrono::Days::new(days));
            let parts = split(from, to);
            assert_eq!((parts[0].0, parts[1].1), (from, to));
            assert_eq!(parts[0].1 + chrono::Days::new(1), parts[1].0);
            assert!(parts[0].0 <= parts[0].1 && parts[1].0 <= parts[1].1);
            let len = |p: (NaiveDate, NaiveDate)| (p.1 - p.0).num_days();
            assert!((len(parts[0]) - len(parts[1])).abs() <= 1);
        }
    }

    #[test]
    fn string_arrays() {
        assert_eq!(string_array("[]").unwrap(), serde_json::json!([]));
        assert_eq!(
            string_array("['p1','p-2']").unwrap(),
            serde_json::json!(["p1", "p-2"])
        );
        assert_eq!(
            string_array(r"['it\\'s']").unwrap(),
            serde_json::json!(["it's"])
        );
        assert!(string_array("['open").is_err());
        assert!(string_array("p1").is_err());
    }

    #[test]
    fn names_are_unique_and_every_query_takes_the_range() {
        let (from, to) = (
            NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        );
        for r in REPORTS {
            assert_eq!(REPORTS.iter().filter(|x| x.name == r.name).count(), 1);
            for q in std::iter::once(r.sql).chain(r.from_flows) {
                assert!(
                    q.contains("{from:Date}") && q.contains("{to:Date}"),
                    "{}",
                    r.name
                );
                assert!(!q.contains("{day:"), "{}", r.name);
            }
            for flows in [false, true] {
                let sql = sql(r, from, to, flows);
                assert!(
                    sql.contains("toDate('2026-11-26')") && sql.contains("toDate('2026-11-30')")
                );
                assert!(!sql.contains(":Date}"));
                let models = ["investor_flows", "order_flows", "t0_flows"];
                assert_eq!(
                    models.iter().any(|m| sql.contains(m)),
                    flows && r.from_flows.is_some(),
                    "{}",
                    r.name
                );
            }
        }
        assert!(find("aml_large_transactions").is_some());
        assert!(find("x; DROP TABLE orders").is_none());
    }
}
