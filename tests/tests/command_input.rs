//! Bad input on the command service is a 4xx in the JSON error shape, with a stable code and
//! field, and writes nothing: control characters, oversized bodies, wrong content types,
//! repeated query parameters, unknown routes and methods. Also the simulated clock.

use mmf_tests::*;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// [`write_footprint`] plus what ops endpoints write: funds (with their last change),
/// calendar years, reconciliation imports and cycle runs.
async fn footprint(app: &TestApp) -> Vec<String> {
    let mut f = write_footprint(app).await;
    let row = app
        .pg()
        .await
        .query_one(
            "SELECT (SELECT count(*) || ' ' || coalesce(string_agg(name || updated_at, ',' ORDER BY fund_code), '')
                     FROM funds),
                    (SELECT count(*)::text FROM calendar_years), (SELECT count(*)::text FROM recon_imports),
                    (SELECT count(*)::text FROM cycle_runs)",
            &[],
        )
        .await
        .unwrap();
    f.extend((0..4).map(|i| row.get::<_, String>(i)));
    f
}

/// An ops request with a raw body and content type.
async fn ops_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = app
        .http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(OPS_TOKEN)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    json_of(req.send().await.unwrap()).await
}

fn fund_body(name: &str) -> Value {
    json!({"name": name, "max_subscription_per_order": "1000.00", "max_subscription_per_day": "5000.00"})
}

#[tokio::test]
async fn nul_in_a_json_string_is_invalid_field() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let before = footprint(&app).await;
    let got = app
        .ops(
            Method::PUT,
            &format!("/v1/ops/funds/{FUND}"),
            fund_body("a\u{0}b"),
        )
        .await;
    assert_eq!(refusal(&got), (400, "invalid_field", "name"), "{got:?}");
    // Any control character, anywhere in the body, including inside arrays.
    let got = app
        .ops(
            Method::PUT,
            "/v1/ops/calendar/2026",
            json!({"holidays": ["2026-10-01", "2026-10-02\n"]}),
        )
        .await;
    assert_eq!(refusal(&got), (400, "invalid_field", "holidays"), "{got:?}");
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn nul_in_a_path_segment_is_invalid_field() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let before = footprint(&app).await;
    let got = app
        .ops(
            Method::GET,
            "/v1/ops/reconciliation/hp%00/2026-11-30/index",
            Value::Null,
        )
        .await;
    assert_eq!(refusal(&got), (400, "invalid_field", "partner"), "{got:?}");
    let got = app
        .ops(
            Method::PUT,
            "/v1/ops/funds/00000%01",
            fund_body("Spare Cash MMF"),
        )
        .await;
    assert_eq!(refusal(&got), (400, "invalid_field", "code"), "{got:?}");
    // Not UTF-8 once decoded.
    let got = app
        .ops(
            Method::GET,
            "/v1/ops/reconciliation/p1/2026-11-%FF/index",
            Value::Null,
        )
        .await;
    assert_eq!(refusal(&got), (400, "invalid_field", "date"), "{got:?}");
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn control_characters_in_partner_orders_are_refused() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let acct = app.open_account("p1", "c1").await;
    app.give_units(&acct, "100.00").await;
    let before = footprint(&app).await;
    let sub = |rid: &str, account: &str| json!({"request_id": rid, "account_id": account, "fund_code": FUND, "amount": "10.00"});
    let cases = [
        (
            "/v1/subscriptions",
            sub("r\u{1}1", &acct),
            (400, "invalid_field", "request_id"),
        ),
        (
            "/v1/subscriptions",
            sub("r2", &format!("{}\u{0}", &acct[..11])),
            (400, "invalid_field", "account_id"),
        ),
        (
            "/v1/redemptions",
            json!({"request_id": "r3", "account_id": acct, "fund_code": FUND, "units": "1.00",
                   "mode": "fast\u{7f}"}),
            (400, "invalid_field", "mode"),
        ),
        (
            "/v1/accounts",
            json!({"request_id": "r4", "customer_id": "c\u{0}2", "name": "Li Si", "id_type": "resident_id",
                   "id_number": valid_resident_id("c2")}),
            (400, "invalid_field", "customer_id"),
        ),
    ];
    for (path, body, expected) in cases {
        let got = app.post("p1", path, body.clone()).await;
        assert_eq!(refusal(&got), expected, "{body}: {got:?}");
    }
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn repeated_or_malformed_query_parameters_answer_json() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let before = footprint(&app).await;
    let got = app.get("p1", "/v1/orders?request_id=a&request_id=b").await;
    assert_eq!(
        refusal(&got),
        (400, "invalid_field", "request_id"),
        "{got:?}"
    );
    let got = app.get("p1", "/v1/orders?request_id=a%00").await;
    assert_eq!(
        refusal(&got),
        (400, "invalid_field", "request_id"),
        "{got:?}"
    );
    let got = app
        .ops(
            Method::GET,
            "/v1/ops/reconciliation/p1/2026-11-26/discrepancies?hour=x",
            Value::Null,
        )
        .await;
    assert_eq!(refusal(&got), (400, "invalid_field", "hour"), "{got:?}");
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let before = footprint(&app).await;
    // 10 MB of valid JSON on an ops endpoint.
    let big = serde_json::to_vec(&fund_body(&"x".repeat(10 << 20))).unwrap();
    let got = ops_raw(
        &app,
        Method::PUT,
        &format!("/v1/ops/funds/{FUND}"),
        Some("application/json"),
        big,
    )
    .await;
    assert_eq!(refusal(&got), (413, "body_too_large", ""), "{got:?}");
    // A partner body over the signature check's 64 KiB.
    let body = json!({"request_id": "r1", "account_id": "800000000001", "fund_code": FUND,
                      "amount": "1.00", "pad": "x".repeat(100 << 10)});
    let got = app.post("p1", "/v1/subscriptions", body).await;
    assert_eq!(refusal(&got), (413, "body_too_large", ""), "{got:?}");
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_415() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let before = footprint(&app).await;
    let fund = serde_json::to_vec(&fund_body("Renamed")).unwrap();
    let path = format!("/v1/ops/funds/{FUND}");
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let got = ops_raw(&app, Method::PUT, &path, ct, fund.clone()).await;
        assert_eq!(
            refusal(&got),
            (415, "bad_content_type", ""),
            "{ct:?}: {got:?}"
        );
    }
    // Optional bodies: left out is fine, present must be JSON.
    let got = ops_raw(
        &app,
        Method::POST,
        "/v1/ops/cycles/2026-11-26",
        Some("text/plain"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(refusal(&got), (415, "bad_content_type", ""), "{got:?}");
    // A partner request, correctly signed, with a body that is not declared JSON.
    let body = serde_json::to_vec(&json!({"request_id": "r1", "account_id": "800000000001",
                                         "fund_code": FUND, "amount": "1.00"}))
    .unwrap();
    let ts = app.clock.now().timestamp();
    let sig = mmf_shared::auth::sign("secret-1", "POST", "/v1/subscriptions", ts, &body);
    let resp = app
        .http
        .post(format!("{}/v1/subscriptions", app.base))
        .header("X-Partner-Id", "p1")
        .header("X-Timestamp", ts.to_string())
        .header("X-Signature", sig)
        .header(CONTENT_TYPE, "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    let got = json_of(resp).await;
    assert_eq!(refusal(&got), (415, "bad_content_type", ""), "{got:?}");
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = spawn_command().await;
    let got = app.ops(Method::GET, "/v1/nothing/here", Value::Null).await;
    assert_eq!(refusal(&got), (404, "not_found", ""), "{got:?}");
    let got = app
        .ops(
            Method::DELETE,
            &format!("/v1/ops/funds/{FUND}"),
            Value::Null,
        )
        .await;
    assert_eq!(refusal(&got), (405, "method_not_allowed", ""), "{got:?}");
}

async fn clock_of(app: &TestApp) -> Value {
    let (s, b) = app.ops(Method::GET, "/v1/ops/clock", Value::Null).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

fn instant(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v["now"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_simulated_clock_runs_from_the_instant_set_unless_frozen() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let set = at("2026-12-01T10:00:00+08:00");
    let (s, b) = app
        .ops(
            Method::PUT,
            "/v1/ops/clock",
            json!({"now": "2026-12-01T10:00:00+08:00"}),
        )
        .await;
    assert_eq!((s, &b["frozen"]), (StatusCode::OK, &json!(false)), "{b}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = clock_of(&app).await;
    let ran = instant(&later) - set;
    assert!(
        ran >= chrono::Duration::milliseconds(1500) && ran < chrono::Duration::minutes(5),
        "{later}"
    );
    assert_eq!(later["frozen"], json!(false));
    // Signed requests keep working on the running clock.
    let acct = app.open_account("p1", "c1").await;
    assert_eq!(acct.len(), 12);

    let (s, b) = app
        .ops(
            Method::PUT,
            "/v1/ops/clock",
            json!({"now": "2026-11-26T14:59:59+08:00", "frozen": true}),
        )
        .await;
    assert_eq!((s, &b["frozen"]), (StatusCode::OK, &json!(true)), "{b}");
    let first = clock_of(&app).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = clock_of(&app).await;
    assert_eq!(instant(&first), at("2026-11-26T14:59:59+08:00"));
    assert_eq!(instant(&second), instant(&first));
}
