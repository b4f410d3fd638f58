//! Balances and statements end to end: orders through the command API, the daily cycle,
//! the sync worker shipping rows to ClickHouse, then the query API.

use mmf_tests::cycle::{cycle, publish};
use mmf_tests::query::{ship, spawn_query};
use mmf_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn balance_path(acct: &str) -> String {
    format!("/v1/accounts/{acct}/balance?fund_code={FUND}")
}

#[tokio::test]
async fn balances_follow_writes_and_statements_list_every_movement() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let q = spawn_query(&app).await;
    let a = app.open_account("p1", "c1").await;
    let b = app.open_account("p2", "c2").await;

    // Thursday 10:00: a subscription is visible at once (read-your-writes), before any sync.
    let (s, body) = app
        .post(
            "p1",
            "/v1/subscriptions",
            json!({"request_id": "s1", "account_id": a, "fund_code": FUND, "amount": "1000.00"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, bal) = q.get("p1", &balance_path(&a)).await;
    assert_eq!(s, StatusCode::OK, "{bal}");
    assert_eq!(bal["pending_subscription"], "1000.00");
    assert_eq!(bal["units"], "0.00");
    assert_eq!(bal["available_units"], "0.00");

    // Friday 09:00: Thursday is confirmed; units effective Friday.
    app.set_now("2026-11-27T09:00:00+08:00");
    cycle(&app, "2026-11-26").await;
    let (_, bal) = q.get("p1", &balance_path(&a)).await;
    assert_eq!(
        (bal["units"].as_str(), bal["pending_subscription"].as_str()),
        (Some("1000.00"), Some("0.00"))
    );

    // A normal redemption (effective Monday, the next trading day: it earns through Sunday)
    // and a fast withdrawal (effective at once).
    app.set_now("2026-11-27T10:00:00+08:00");
    let (s, body) = app
        .post("p1", "/v1/redemptions",
              json!({"request_id": "r1", "account_id": a, "fund_code": FUND, "units": "100.00", "mode": "normal"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = app
        .post("p1", "/v1/redemptions",
              json!({"request_id": "r2", "account_id": a, "fund_code": FUND, "units": "50.00", "mode": "fast"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (_, bal) = q.get("p1", &balance_path(&a)).await;
    assert_eq!(bal["available_units"], "850.00");
    assert_eq!(bal["pending_redemption"], "100.00");
    assert_eq!(bal["units"], "950.00");

    // Saturday: income for Friday on 950 eligible units (the redemption still earns Friday):
    // 950 × 0.6543 / 10,000 = 0.0621585 → 0.06 paid, the rest carried.
    app.set_now("2026-11-28T09:00:00+08:00");
    publish(&app, "2026-11-27", "0.6543").await;
    cycle(&app, "2026-11-27").await;
    let (_, bal) = q.get("p1", &balance_path(&a)).await;
    assert_eq!(bal["yesterday"], "2026-11-27");
    assert_eq!(bal["yesterday_income"], "0.06");
    assert_eq!(bal["cumulative_income"], "0.06");
    assert_eq!(bal["available_units"], "850.06");
    assert_eq!(bal["pending_redemption"], "0.00");
    assert_eq!(bal["units"], "850.06");
    // A day later, yesterday (Saturday) has no income distributed yet.
    app.set_now("2026-11-29T09:00:00+08:00");
    let (_, bal) = q.get("p1", &balance_path(&a)).await;
    assert_eq!(bal["yesterday_income"], "0.00");
    assert_eq!(bal["cumulative_income"], "0.06");

    ship(&app, &q).await;
    let path = format!("/v1/accounts/{a}/statement?fund_code={FUND}&from=2026-11-26&to=2026-11-30");
    let (s, st) = q.get("p1", &path).await;
    assert_eq!(s, StatusCode::OK, "{st}");
    let rows: Vec<(String, String, String)> = st["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["date"].as_str().unwrap().into(),
                e["kind"].as_str().unwrap().into(),
                e["units"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("2026-11-27", "subscription", "1000.00"),
        ("2026-11-27", "fast_redemption", "-50.00"),
        ("2026-11-28", "income", "0.06"),
        ("2026-11-30", "redemption", "-100.00"),
    ];
    assert_eq!(
        rows,
        want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    assert!(
        st.get("opening_units").is_none(),
        "balances only when asked for"
    );
    let (_, with) = q.get("p1", &format!("{path}&balances=true")).await;
    assert_eq!(with["opening_units"], "0.00");
    assert_eq!(with["closing_units"], "850.06");
    assert_eq!(with["entries"], st["entries"]);
    assert_eq!(st["entries"][2]["income_date"], "2026-11-27");
    assert!(st["entries"][2]["order_id"].is_null());
    assert!(st["entries"][0]["order_id"].as_u64().is_some());
    assert!(st["next_cursor"].is_null());
    // Opening balance of a later range.
    let (_, st2) = q
        .get(
            "p1",
            &format!("/v1/accounts/{a}/statement?from=2026-11-28&to=2026-11-28&balances=true"),
        )
        .await;
    assert_eq!(st2["opening_units"], "950.00");
    assert_eq!(st2["entries"].as_array().unwrap().len(), 1);

    // Pages of one and of two, following the opaque cursor: a page reads a window of
    // limit + 1 days first, then the rest of the range, so both paths are taken.
    for (limit, want_pages) in [(1, 4), (2, 2)] {
        let mut seen: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let p = match &cursor {
                Some(c) => format!("{path}&limit={limit}&cursor={c}"),
                None => format!("{path}&limit={limit}"),
            };
            let (s, page) = q.get("p1", &p).await;
            assert_eq!(s, StatusCode::OK, "{page}");
            pages += 1;
            seen.extend(page["entries"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(pages, want_pages, "limit {limit}");
        assert_eq!(
            seen,
            st["entries"].as_array().unwrap().clone(),
            "limit {limit}"
        );
    }

    // CSV of the same range.
    let (s, csv) = q.get_raw("p1", &path, Some("text/csv")).await;
    assert_eq!(s, StatusCode::OK);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "date,fund_code,kind,units,order_id,income_date,booked_at,entry_id"
    );
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(
        lines[1].starts_with(&format!("2026-11-27,{FUND},subscription,1000.00,")),
        "{csv}"
    );
    assert!(
        lines[3].starts_with(&format!("2026-11-28,{FUND},income,0.06,,2026-11-27,")),
        "{csv}"
    );
    assert!(
        lines[4].starts_with(&format!("2026-11-30,{FUND},redemption,-100.00,")),
        "{csv}"
    );

    // Yields as published.
    let (s, y) = q
        .get(
            "p2",
            &format!("/v1/funds/{FUND}/yields?from=2026-11-01&to=2026-11-30"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{y}");
    assert_eq!(
        y["days"],
        json!([{"date": "2026-11-27", "per10k": "0.6543", "yield_7d": null}])
    );

    // Partner isolation: p2 cannot see p1's account (404, as if it did not exist), and p1
    // sees its account but not p2's.
    for p in [
        balance_path(&a),
        format!("/v1/accounts/{a}/statement?from=2026-11-26&to=2026-11-30"),
    ] {
        let (s, e) = q.get("p2", &p).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("account_not_found")),
            "{p}"
        );
    }
    let (s, bal) = q.get("p2", &balance_path(&b)).await;
    assert_eq!((s, bal["units"].as_str()), (StatusCode::OK, Some("0.00")));
    let (s, _) = q.get("p1", &balance_path(&b)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    q.finish().await;
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let q = spawn_query(&app).await;
    let a = app.open_account("p1", "c1").await;
    let st = |qs: &str| format!("/v1/accounts/{a}/statement?{qs}");
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (
            format!("/v1/accounts/{a}/balance"),
            StatusCode::BAD_REQUEST,
            "missing_parameter",
        ),
        (
            format!("/v1/accounts/{a}/balance?fund_code=0001%27"),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            format!("/v1/accounts/{a}/balance?fund_code=999999"),
            StatusCode::NOT_FOUND,
            "fund_not_found",
        ),
        (
            "/v1/accounts/1%27%20OR%20%271%27=%271/balance?fund_code=000001".into(),
            StatusCode::NOT_FOUND,
            "account_not_found",
        ),
        (
            "/v1/accounts/999999999999/balance?fund_code=000001".into(),
            StatusCode::NOT_FOUND,
            "account_not_found",
        ),
        (
            st("from=2026-11-01"),
            StatusCode::BAD_REQUEST,
            "missing_parameter",
        ),
        (
            st("from=2026-13-01&to=2026-12-01"),
            StatusCode::BAD_REQUEST,
            "invalid_date",
        ),
        (
            st("from=2026-02-30&to=2026-03-01"),
            StatusCode::BAD_REQUEST,
            "invalid_date",
        ),
        (
            st("from=26-1-1&to=2026-03-01"),
            StatusCode::BAD_REQUEST,
            "invalid_date",
        ),
        (
            st("from=2026-11-01%27%20OR%201=1--&to=2026-12-01"),
            StatusCode::BAD_REQUEST,
            "invalid_date",
        ),
        (
            st("from=2026-12-01&to=2026-11-01"),
            StatusCode::BAD_REQUEST,
            "invalid_range",
        ),
        (
            st("from=2000-01-01&to=2026-12-01"),
            StatusCode::BAD_REQUEST,
            "range_too_large",
        ),
        (
            st("from=2026-11-01&to=2026-12-01&cursor=zz"),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            st("from=2026-11-01&to=2026-12-01&limit=0"),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            st("from=2026-11-01&to=2026-12-01&limit=100000"),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            st("from=2026-11-01&to=2026-12-01&balances=1%20OR%201"),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            st("from=2026-11-01&to=2026-12-01&fund_code=x%27)--"),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "/v1/funds/ABC/yields?from=2026-11-01&to=2026-12-01".to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "/v1/funds/999999/yields?from=2026-11-01&to=2026-12-01".to_string(),
            StatusCode::NOT_FOUND,
            "fund_not_found",
        ),
        (
            format!("/v1/funds/{FUND}/yields?from=2026-11-01"),
            StatusCode::BAD_REQUEST,
            "missing_parameter",
        ),
    ];
    for (path, status, code) in cases {
        let (s, e) = q.get("p1", &path).await;
        assert_eq!((s, e["code"].as_str()), (status, Some(code)), "{path}: {e}");
    }
    // Unsigned and wrongly signed requests.
    let resp = q
        .http
        .get(format!(
            "{}/v1/accounts/{a}/balance?fund_code={FUND}",
            q.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (s, _) = q
        .get(
            "nobody",
            &format!("/v1/accounts/{a}/balance?fund_code={FUND}"),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // The service's own endpoints.
    let (s, doc) = json_of(
        q.http
            .get(format!("{}/openapi.json", q.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    for p in [
        "/v1/accounts/{id}/balance",
        "/v1/accounts/{id}/statement",
        "/v1/funds/{code}/yields",
        "/v1/reports/{name}",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing from OpenAPI");
    }
    let resp = q
        .http
        .get(format!("{}/health", q.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let metrics = q
        .http
        .get(format!("{}/metrics", q.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("/v1/accounts/{id}/statement"), "{metrics}");
    // The clock: ops token required; moving it moves "yesterday".
    let resp = q
        .http
        .put(format!("{}/v1/ops/clock", q.base))
        .json(&json!({"now": "2026-12-01T09:00:00+08:00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = q
        .http
        .put(format!("{}/v1/ops/clock", q.base))
        .bearer_auth(OPS_TOKEN)
        .json(&json!({"now": "2026-12-01T09:00:00+08:00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, bal) = q
        .get("p1", &format!("/v1/accounts/{a}/balance?fund_code={FUND}"))
        .await;
    assert_eq!(bal["yesterday"], "2026-11-30");
    q.finish().await;
}
