//! Every regulatory report over the scenario of `report_scenario` (orders through the command
//! API, the daily cycle, rows shipped by the sync worker), parameters changed in ClickHouse,
//! and bad report requests.

use mmf_tests::query::report_scenario;
use mmf_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn rows(body: &Value) -> Vec<Value> {
    body["rows"].as_array().expect("rows").clone()
}

/// Only the named columns of each row, for compact comparisons.
fn pick(body: &Value, cols: &[&str]) -> Vec<Value> {
    rows(body)
        .iter()
        .map(|r| Value::Array(cols.iter().map(|c| r[*c].clone()).collect()))
        .collect()
}

#[tokio::test]
async fn every_report_has_the_expected_figures() {
    let s = report_scenario().await;
    let q = &s.q;
    let report = |name: &str, date: &'static str| {
        let path = format!("/v1/reports/{name}?date={date}");
        async move {
            let (st, body) = q.ops_get(&path).await;
            assert_eq!(st, StatusCode::OK, "{path}: {body}");
            assert_eq!(body["date"], date);
            body
        }
    };

    // AML: Thursday A's 600,000 subscription; Friday C's 55,000 cash-like withdrawal. Each
    // customer is another person here: one account per investor.
    let aml = report("aml_large_transactions", "2026-11-26").await;
    assert_eq!(
        pick(
            &aml,
            &[
                "partner_ids",
                "account_ids",
                "in_amount",
                "out_amount",
                "rules"
            ]
        ),
        vec![json!([["p1"], [s.a], "600000.00", "0.00", "transfer"])]
    );
    assert_eq!(rows(&aml)[0]["investor_key"].as_str().unwrap().len(), 32);
    assert_eq!(
        rows(&aml)[0]["id_masked"]
            .as_str()
            .unwrap()
            .matches('*')
            .count(),
        8
    );
    let aml = report("aml_large_transactions", "2026-11-27").await;
    assert_eq!(
        pick(&aml, &["account_ids", "out_amount", "cash_amount", "rules"]),
        vec![json!([[s.c], "55000.00", "55000.00", "cash"])]
    );

    // Suspicious: B stayed just below 500,000 two days running; A and C took money out
    // within days of putting it in.
    let sus = report("suspicious_patterns", "2026-11-27").await;
    let mut got = pick(
        &sus,
        &["pattern", "account_ids", "amount_in", "amount_out", "hits"],
    );
    got.sort_by_key(|v| v.to_string());
    let mut want = vec![
        json!(["in_and_out", [s.a], "600000.00", "105000.00", 1]),
        json!(["in_and_out", [s.c], "60000.00", "55000.00", 1]),
        json!(["structuring", [s.b], "930000.00", "0.00", 2]),
    ];
    want.sort_by_key(|v| v.to_string());
    assert_eq!(got, want);
    let sus = report("suspicious_patterns", "2026-11-26").await;
    assert!(rows(&sus).is_empty(), "{sus}");

    // Fund scale at the end of Friday: 1,121,000 subscribed units effective Friday less
    // 60,200 fast-redeemed; Friday's orders by trade date; Friday's income.
    let scale = report("fund_daily_scale", "2026-11-27").await;
    assert_eq!(
        pick(
            &scale,
            &[
                "fund_code",
                "units",
                "holders",
                "subscriptions",
                "redemptions",
                "fast_redemptions",
                "income",
                "per10k",
                "yield_7d"
            ]
        ),
        vec![json!([
            FUND,
            "1060800.00",
            4,
            "470000.00",
            "100000.00",
            "60200.00",
            "106.08",
            "1.0000",
            s.yield_7d
        ])]
    );
    // Saturday: Friday's income has arrived; A's redemption still counts (effective Monday,
    // the next trading day after its trade date, it earns through Sunday).
    // Saturday's income is not distributed, so its holdings are not built: no guess.
    let (st, body) = q
        .ops_get("/v1/reports/fund_daily_scale?date=2026-11-28")
        .await;
    assert_eq!(
        (st, body["code"].as_str(), body["field"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("unavailable"),
            Some("date")
        ),
        "{body}"
    );

    // Nor is a range that reaches Saturday answered in part.
    let (st, body) = q
        .ops_get("/v1/reports/investor_concentration?from=2026-11-27&to=2026-11-28")
        .await;
    assert_eq!(
        (st, body["code"].as_str(), body["field"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("unavailable"),
            Some("to")
        ),
        "{body}"
    );

    // Partner flows and settlement by trade date.
    let flows = report("partner_flows", "2026-11-27").await;
    assert_eq!(
        pick(
            &flows,
            &[
                "partner_id",
                "subscriptions",
                "redemptions",
                "fast_redemption_orders",
                "fast_redemptions",
                "net_settlement",
                "unconfirmed"
            ]
        ),
        vec![
            json!([
                "p1",
                "470000.00",
                "100000.00",
                2,
                "60000.00",
                "370000.00",
                0
            ]),
            json!(["p2", "0.00", "0.00", 1, "200.00", "0.00", 0]),
        ]
    );

    // Concentration at the end of Friday: A 595,000, B 460,000, C 5,000, D 800.
    let conc = report("investor_concentration", "2026-11-27").await;
    assert_eq!(
        pick(&conc, &["bucket", "holders", "units", "share_pct"]),
        vec![
            json!(["100k-1m", 2, "1055000.00", "99.45"]),
            json!(["1k-10k", 1, "5000.00", "0.47"]),
            json!(["<1k", 1, "800.00", "0.07"]),
            json!(["all", 4, "1060800.00", "100.00"]),
            json!(["top_n", 4, "1060800.00", "100.00"]),
        ]
    );

    // T+0 against the limits (cap 100,000 per investor, fund limit 100,000,000 a day).
    let t0 = report("t0_usage", "2026-11-27").await;
    assert_eq!(
        pick(
            &t0,
            &[
                "withdrawals",
                "payments",
                "total",
                "investors",
                "max_investor_withdrawals",
                "investor_daily_cap",
                "investors_at_cap",
                "over_cap",
                "limit_used_pct"
            ]
        ),
        vec![json!([
            "60000.00",
            "200.00",
            "60200.00",
            3,
            "55000.00",
            "100000.00",
            0,
            0,
            "0.06"
        ])]
    );

    // Compliance changes parameters in ClickHouse; the reports follow.
    q.ch_exec(
        "INSERT INTO report_parameters (name, value, updated_at) VALUES \
         ('aml_transfer_threshold', 450000, now()), ('concentration_top_n', 2, now())",
    )
    .await;
    let aml = report("aml_large_transactions", "2026-11-26").await;
    let mut accts: Vec<String> = rows(&aml)
        .iter()
        .map(|r| r["account_ids"][0].as_str().unwrap().into())
        .collect();
    accts.sort();
    let mut want = vec![s.a.clone(), s.b.clone()];
    want.sort();
    assert_eq!(accts, want);
    let conc = report("investor_concentration", "2026-11-27").await;
    let top: Vec<Value> = pick(&conc, &["bucket", "holders", "units", "share_pct"])
        .into_iter()
        .filter(|r| r[0] == "top_n")
        .collect();
    assert_eq!(top, vec![json!(["top_n", 2, "1055000.00", "99.45"])]);

    // A range answers each of its days in turn, in order, in one call (the holdings are built
    // for Friday only; query_reports_vs_views compares longer ranges on holdings).
    for r in mmf_query::reports::REPORTS {
        let (from, to) = if r.reads_holdings {
            ("2026-11-27", "2026-11-27")
        } else {
            ("2026-11-26", "2026-11-27")
        };
        let path = format!("/v1/reports/{}?from={from}&to={to}", r.name);
        let (st, range) = q.ops_get(&path).await;
        assert_eq!(st, StatusCode::OK, "{path}: {range}");
        assert_eq!((&range["from"], &range["to"]), (&json!(from), &json!(to)));
        assert!(range.get("date").is_none(), "{range}");
        let mut days = rows(&report(r.name, from).await);
        if to != from {
            days.extend(rows(&report(r.name, to).await));
        }
        assert!(!days.is_empty(), "{} has rows on {from} or {to}", r.name);
        assert_eq!(rows(&range), days, "{}", r.name);
    }
    // A day without activity is an empty report, not an error.
    let empty = report("partner_flows", "2030-01-01").await;
    assert!(rows(&empty).is_empty());
    assert!(!empty["columns"].as_array().unwrap().is_empty());
    let _ = (&s.app, &s.d);
    s.q.finish().await;
}

#[tokio::test]
async fn report_requests_are_checked() {
    let app = spawn_command().await;
    let q = mmf_tests::query::spawn_query(&app).await;
    let cases = [
        (
            "/v1/reports/no_such_report?date=2026-11-26",
            StatusCode::NOT_FOUND,
            "unknown_report",
        ),
        (
            "/v1/reports/report_settings?date=2026-11-26",
            StatusCode::NOT_FOUND,
            "unknown_report",
        ),
        (
            "/v1/reports/aml_large_transactions%3B%20DROP%20TABLE%20orders?date=2026-11-26",
            StatusCode::NOT_FOUND,
            "unknown_report",
        ),
        (
            "/v1/reports/aml_large_transactions",
            StatusCode::BAD_REQUEST,
            "missing_parameter",
        ),
        (
            "/v1/reports/aml_large_transactions?date=2026-11-31",
            StatusCode::BAD_REQUEST,
            "invalid_date",
        ),
        (
            "/v1/reports/aml_large_transactions?date=yesterday",
            StatusCode::BAD_REQUEST,
            "invalid_date",
        ),
        (
            "/v1/reports/t0_usage?from=2026-11-27&to=2026-11-26",
            StatusCode::BAD_REQUEST,
            "invalid_range",
        ),
        (
            "/v1/reports/t0_usage?from=2026-01-01&to=2026-11-26",
            StatusCode::BAD_REQUEST,
            "range_too_large",
        ),
        (
            "/v1/reports/t0_usage?from=2026-11-26",
            StatusCode::BAD_REQUEST,
            "missing_parameter",
        ),
        (
            "/v1/reports/t0_usage?date=2026-11-26&from=2026-11-26&to=2026-11-27",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "/v1/reports/t0_usage?date=2026-11-26%27%20OR%20%271%27=%271",
            StatusCode::BAD_REQUEST,
            "invalid_date",
        ),
        (
            "/v1/reports/t0_usage?date=2026-11-26)%20UNION%20ALL%20SELECT%201--",
            StatusCode::BAD_REQUEST,
            "invalid_date",
        ),
    ];
    for (path, status, code) in cases {
        let (s, e) = q.ops_get(path).await;
        assert_eq!((s, e["code"].as_str()), (status, Some(code)), "{path}: {e}");
    }
    // Reports are for ops, not partners.
    let (s, e) = q.get("p1", "/v1/reports/t0_usage?date=2026-11-26").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_ops_token"))
    );
    // On an empty history the reports on orders are empty; those on holdings wait for the
    // day's holdings (no income is distributed).
    for r in mmf_query::reports::REPORTS {
        let (s, body) = q
            .ops_get(&format!("/v1/reports/{}?date=2026-11-26", r.name))
            .await;
        if r.reads_holdings {
            assert_eq!(
                (s, body["code"].as_str()),
                (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")),
                "{}: {body}",
                r.name
            );
        } else {
            assert_eq!(s, StatusCode::OK, "{}: {body}", r.name);
            assert!(rows(&body).is_empty());
        }
    }
    q.finish().await;
}
