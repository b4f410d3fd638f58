//! Partner authentication, ops authorization, account opening and the service endpoints.

use mmf_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn signatures_and_timestamps_are_checked() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let before = write_footprint(&app).await;
    let body = json!({"request_id": "a1", "customer_id": "c1", "name": "Li Si", "id_type": "resident_id",
                      "id_number": valid_resident_id("c1")});
    let now = app.clock.now();
    let send = |signer: Signer, ts: chrono::DateTime<chrono::Utc>| {
        let (http, base, body) = (app.http.clone(), app.base.clone(), body.clone());
        async move {
            json_of(
                signer
                    .send(
                        &http,
                        Method::POST,
                        &base,
                        "/v1/accounts",
                        Some(&body),
                        ts,
                        None,
                    )
                    .await,
            )
            .await
        }
    };
    // Wrong secret.
    let (s, b) = send(
        Signer {
            partner: "p1".into(),
            secret: "wrong".into(),
        },
        now,
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_signature")),
        "{b}"
    );
    // Unknown partner.
    let (s, b) = send(
        Signer {
            partner: "nobody".into(),
            secret: "x".into(),
        },
        now,
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_signature")),
        "{b}"
    );
    // Stale and future timestamps, just outside the ±300 s window.
    for skew in [-301, 301] {
        let (s, b) = send(Signer::new("p1"), now + chrono::Duration::seconds(skew)).await;
        assert_eq!(
            (s, b["code"].as_str(), b["field"].as_str()),
            (
                StatusCode::UNAUTHORIZED,
                Some("stale_timestamp"),
                Some("X-Timestamp")
            ),
            "{b}"
        );
    }
    // A body altered after signing.
    let sig = mmf_shared::auth::sign("secret-1", "POST", "/v1/accounts", now.timestamp(), b"{}");
    let resp = app
        .http
        .post(format!("{}/v1/accounts", app.base))
        .header("X-Partner-Id", "p1")
        .header("X-Timestamp", now.timestamp().to_string())
        .header("X-Signature", sig)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (s, b) = json_of(resp).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_signature"))
    );
    // No headers at all.
    let resp = app
        .http
        .post(format!("{}/v1/accounts", app.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (s, b) = json_of(resp).await;
    assert_eq!(
        (s, b["code"].as_str(), b["field"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("missing_auth"),
            Some("x-partner-id")
        )
    );
    assert_eq!(write_footprint(&app).await, before);
    // Inside the window it works.
    let (s, b) = send(Signer::new("p1"), now - chrono::Duration::seconds(299)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

#[tokio::test]
async fn ops_endpoints_need_the_ops_token() {
    let app = spawn_command().await;
    let fund =
        json!({"name": "X", "max_subscription_per_order": "10", "max_subscription_per_day": "20"});
    let resp = app
        .http
        .put(format!("{}/v1/ops/funds/000002", app.base))
        .json(&fund)
        .send()
        .await
        .unwrap();
    let (s, b) = json_of(resp).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_ops_token"))
    );
    let resp = app
        .http
        .put(format!("{}/v1/ops/funds/000002", app.base))
        .bearer_auth("guess")
        .json(&fund)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Partner signatures do not open ops endpoints.
    let (s, _) = app
        .call("p1", Method::PUT, "/v1/ops/funds/000002", Some(&fund))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = app
        .ops(Method::PUT, "/v1/ops/funds/000002", fund.clone())
        .await;
    assert_eq!(
        (
            s,
            b["fast_withdrawal_daily_cap"].as_str(),
            b["income_policy"].as_str()
        ),
        (StatusCode::OK, Some("10000.00"), Some("redistribute")),
        "{b}"
    );
    // A fund keeps its income policy when an update does not name one.
    let mut carry = fund.clone();
    carry["income_policy"] = json!("carry_forward");
    let (s, b) = app.ops(Method::PUT, "/v1/ops/funds/000002", carry).await;
    assert_eq!(
        (s, b["income_policy"].as_str()),
        (StatusCode::OK, Some("carry_forward"))
    );
    let (s, b) = app
        .ops(Method::PUT, "/v1/ops/funds/000002", fund.clone())
        .await;
    assert_eq!(
        (s, b["income_policy"].as_str()),
        (StatusCode::OK, Some("carry_forward"))
    );
    let mut bad = fund.clone();
    bad["income_policy"] = json!("round_up");
    let (s, b) = app.ops(Method::PUT, "/v1/ops/funds/000002", bad).await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("income_policy"))
    );
    let (s, b) = app
        .ops(Method::PUT, "/v1/ops/funds/00002", fund.clone())
        .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("fund_code"))
    );
    let (s, b) = app
        .ops(Method::PUT, "/v1/ops/funds/000002", json!({"name": "X", "max_subscription_per_order": "30", "max_subscription_per_day": "20"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = app
        .ops(
            Method::PUT,
            "/v1/ops/calendar/2026",
            json!({"holidays": ["2027-01-01"]}),
        )
        .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("holidays"))
    );
    let (s, b) = app
        .ops(Method::PUT, "/v1/ops/clock", json!({"now": "yesterday"}))
        .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("now"))
    );
}

#[tokio::test]
async fn simulated_clock_is_refused_on_the_system_clock() {
    let db = fresh_db().await;
    // Configuration builds the clock: simulation only when asked for, never in production.
    std::env::set_var("MMF_SIMULATED_CLOCK", "1");
    std::env::set_var("MMF_ENV", "production");
    assert!(mmf_shared::config::Common::from_environment().is_err());
    std::env::set_var("MMF_ENV", "staging");
    assert!(mmf_shared::config::Common::from_environment()
        .unwrap()
        .clock()
        .is_simulated());
    std::env::remove_var("MMF_SIMULATED_CLOCK");
    assert!(!mmf_shared::config::Common::from_environment()
        .unwrap()
        .clock()
        .is_simulated());
    let state = mmf_command::AppState::new(test_config(&db), mmf_shared::clock::Clock::system())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, mmf_command::build_app(state))
            .await
            .unwrap()
    });
    let resp = reqwest::Client::new()
        .put(format!("{base}/v1/ops/clock"))
        .bearer_auth(OPS_TOKEN)
        .json(&json!({"now": "2026-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    let (s, b) = json_of(resp).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("clock_not_simulated"))
    );
}

#[tokio::test]
async fn account_opening_is_idempotent_per_customer() {
    let app = spawn_command().await;
    let id = valid_resident_id("c1");
    let open = |req: &str, customer: &str, id_number: &str| json!({"request_id": req, "customer_id": customer, "name": "Wang Wu", "id_type": "resident_id", "id_number": id_number, "mobile": "13912345678"});
    let (s, a) = app.post("p1", "/v1/accounts", open("o1", "c1", &id)).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["account_id"].as_str().unwrap().len(), 12);
    assert_eq!(
        a["id_masked"].as_str().unwrap(),
        format!("{}********{}", &id[..6], &id[14..])
    );
    assert!(!a.to_string().contains(&id));
    // Same request replayed: same response. New request for the same customer: same account.
    let (s, r) = app.post("p1", "/v1/accounts", open("o1", "c1", &id)).await;
    assert_eq!((s, &r), (StatusCode::CREATED, &a));
    let (s, r) = app.post("p1", "/v1/accounts", open("o2", "c1", &id)).await;
    assert_eq!(
        (s, &r["account_id"], &r["created"]),
        (StatusCode::OK, &a["account_id"], &json!(false))
    );
    // The same customer id at another partner is another investor account.
    let (s, r) = app.post("p2", "/v1/accounts", open("o1", "c1", &id)).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_ne!(r["account_id"], a["account_id"]);
    let before = write_footprint(&app).await;
    let (s, r) = app
        .post(
            "p1",
            "/v1/accounts",
            open("o3", "c1", &valid_resident_id("other")),
        )
        .await;
    assert_eq!(
        (s, r["code"].as_str()),
        (StatusCode::CONFLICT, Some("customer_identity_mismatch")),
        "{r}"
    );
    let mut bad = id.clone();
    bad.replace_range(17..18, if &id[17..] == "0" { "1" } else { "0" });
    let (s, r) = app.post("p1", "/v1/accounts", open("o4", "c9", &bad)).await;
    assert_eq!(
        (s, r["code"].as_str(), r["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("invalid_id_number"),
            Some("id_number")
        )
    );
    let mut v = open("o5", "c9", &id);
    v["mobile"] = json!("12345");
    let (s, r) = app.post("p1", "/v1/accounts", v).await;
    assert_eq!(
        (s, r["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("mobile"))
    );
    let mut v = open("o6", "c9", &id);
    v["id_type"] = json!("library_card");
    let (s, r) = app.post("p1", "/v1/accounts", v).await;
    assert_eq!(
        (s, r["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("id_type"))
    );
    let (s, r) = app
        .post(
            "p1",
            "/v1/accounts",
            open("o1", "c1", &valid_resident_id("x")),
        )
        .await;
    assert_eq!(
        (s, r["code"].as_str()),
        (StatusCode::CONFLICT, Some("request_id_reused"))
    );
    assert_eq!(write_footprint(&app).await, before);
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let app = spawn_command().await;
    let get = |p: &str| app.http.get(format!("{}{p}", app.base)).send();
    assert_eq!(get("/health").await.unwrap().status(), StatusCode::OK);
    let spec: serde_json::Value = get("/openapi.json").await.unwrap().json().await.unwrap();
    for path in [
        "/v1/accounts",
        "/v1/subscriptions",
        "/v1/redemptions",
        "/v1/orders/{order_id}/cancel",
        "/v1/orders",
    ] {
        assert!(
            spec["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    app.open_account("p1", "m1").await;
    // The registry is the process's: other tests of this binary open accounts too.
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    let opened = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "http_requests_total{method=\"POST\",route=\"/v1/accounts\",status=\"201\"} ",
            )
        })
        .and_then(|n| n.parse::<u64>().ok());
    assert!(opened.is_some_and(|n| n >= 1), "{metrics}");
}
