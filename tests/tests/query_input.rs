//! Bad input on the query service is a 4xx in the JSON error shape: statement cursors that are
//! forged, altered, replayed on another statement or out of ClickHouse's date range, and
//! repeated query parameters. Both services' OpenAPI documents list the errors they answer.

use mmf_tests::query::{ship, spawn_query};
use mmf_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn statement_cursors_are_verified_and_range_checked() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let q = spawn_query(&app).await;
    let a = app.open_account("p1", "c1").await;
    app.give_units(&a, "100.00").await;
    for i in 0..3 {
        let (s, b) = app
            .post(
                "p1",
                "/v1/redemptions",
                json!({"request_id": format!("f{i}"), "account_id": a, "fund_code": FUND,
                       "units": "1.00", "mode": "fast"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    ship(&app, &q).await;
    let before = write_footprint(&app).await;
    let st = |range: &str, cursor: &str| {
        format!("/v1/accounts/{a}/statement?{range}&limit=1&cursor={cursor}")
    };
    let range = "from=2026-11-20&to=2026-11-30";
    let (s, first) = q
        .get("p1", &format!("/v1/accounts/{a}/statement?{range}&limit=1"))
        .await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let (s, second) = q.get("p1", &st(range, &cursor)).await;
    assert_eq!(s, StatusCode::OK, "{second}");
    assert_ne!(second["entries"][0], first["entries"][0]);

    // The cursor's first byte is its date's first digit ('2', hex 32): '3' makes it 3026.
    let altered = format!("33{}", &cursor[2..]);
    let cases = [
        ("+99999-01-01", st(range, &hex::encode("+99999-01-01|1"))),
        ("-0001-01-01", st(range, &hex::encode("-0001-01-01|1"))),
        ("unsigned", st(range, &hex::encode("2026-11-26|1"))),
        ("altered", st(range, &altered)),
        (
            "another range",
            st("from=2026-11-21&to=2026-11-30", &cursor),
        ),
        (
            "another fund",
            st(&format!("{range}&fund_code={FUND}"), &cursor),
        ),
    ];
    for (what, path) in &cases {
        let got = q.get("p1", path).await;
        assert_eq!(
            refusal(&got),
            (400, "invalid_cursor", "cursor"),
            "{what}: {got:?}"
        );
    }
    // The CSV export reads the cursor the same way.
    let (s, body) = q.get_raw("p1", &cases[0].1, Some("text/csv")).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (s.as_u16(), body["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    assert_eq!(write_footprint(&app).await, before);
    q.finish().await;
}

#[tokio::test]
async fn a_repeated_query_parameter_is_invalid_field() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let q = spawn_query(&app).await;
    let a = app.open_account("p1", "c1").await;
    let before = write_footprint(&app).await;
    let got = q
        .get(
            "p1",
            &format!("/v1/accounts/{a}/statement?from=2026-11-01&to=x&to=y"),
        )
        .await;
    assert_eq!(refusal(&got), (400, "invalid_field", "to"), "{got:?}");
    let got = q
        .get(
            "p1",
            &format!("/v1/accounts/{a}/balance?fund_code={FUND}&fund_code={FUND}"),
        )
        .await;
    assert_eq!(
        refusal(&got),
        (400, "invalid_field", "fund_code"),
        "{got:?}"
    );
    let got = q
        .get(
            "p1",
            &format!("/v1/accounts/{a}/statement?from=2026-11-01%00&to=2026-11-30"),
        )
        .await;
    assert_eq!(refusal(&got), (400, "invalid_field", "from"), "{got:?}");
    assert_eq!(write_footprint(&app).await, before);
    q.finish().await;
}

/// Every operation lists 400, 401 and 503, and 413 and 415 where it reads a JSON body (the
/// clock's operations, which read no store, list no 503).
#[tokio::test]
async fn openapi_lists_the_errors_every_operation_can_answer() {
    let app = spawn_command().await;
    let q = spawn_query(&app).await;
    for base in [&app.base, &q.base] {
        let spec: Value = app
            .http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let paths = spec["paths"].as_object().unwrap();
        assert!(paths.len() > 3, "{base}: {spec}");
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                    continue;
                }
                let responses = op["responses"].as_object().unwrap();
                let has = |s: &str| responses.contains_key(s);
                let what = format!("{base} {method} {path}: {:?}", responses.keys());
                let json_body = op["requestBody"]["content"]
                    .get("application/json")
                    .is_some();
                if path != "/v1/ops/clock" {
                    assert!(has("400") && has("401") && has("503"), "{what}");
                    assert!(
                        op["responses"]["503"]["headers"]["Retry-After"].is_object(),
                        "{what}"
                    );
                }
                if json_body {
                    assert!(has("400") && has("413") && has("415"), "{what}");
                }
                if path.starts_with("/v1/subscriptions") || path.starts_with("/v1/accounts/") {
                    assert!(
                        has("413"),
                        "{what}: partner bodies are read by the signature check"
                    );
                }
            }
        }
    }
    q.finish().await;
}
