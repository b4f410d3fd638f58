//! Orders through the partner API: the happy paths, each rule's refusal (which must write
//! nothing), cut-off trade dates, cancellation and idempotent replays.

use mmf_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn ready() -> (TestApp, String) {
    let app = spawn_command().await;
    app.setup_fund().await;
    let acct = app.open_account("p1", "c1").await;
    (app, acct)
}

fn sub(req: &str, acct: &str, amount: &str) -> Value {
    json!({"request_id": req, "account_id": acct, "fund_code": FUND, "amount": amount})
}

fn red(req: &str, acct: &str, units: &str, mode: &str, purpose: Option<&str>) -> Value {
    let mut v = json!({"request_id": req, "account_id": acct, "fund_code": FUND, "units": units, "mode": mode});
    if let Some(p) = purpose {
        v["purpose"] = json!(p);
    }
    v
}

#[tokio::test]
async fn subscription_then_lookup() {
    let (app, acct) = ready().await;
    let (s, b) = app
        .post("p1", "/v1/subscriptions", sub("r1", &acct, "100.5"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["amount"], "100.50");
    assert_eq!(b["status"], "accepted");
    assert_eq!(b["kind"], "subscription");
    assert_eq!(b["trade_date"], "2026-11-26");
    let (s, l) = app.get("p1", "/v1/orders?request_id=r1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(l["order_id"], b["order_id"]);
    let (s, o) = app
        .get("p1", &format!("/v1/orders/{}", b["order_id"]))
        .await;
    assert_eq!((s, &o["request_id"]), (StatusCode::OK, &json!("r1")));
    // Another partner sees nothing of it.
    let (s, e) = app.get("p2", "/v1/orders?request_id=r1").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("order_not_found"))
    );
    let pending: rust_decimal::Decimal = app
        .pg()
        .await
        .query_one(
            "SELECT pending_subscription FROM positions WHERE account_id = $1",
            &[&acct],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending.to_string(), "100.50");
}

#[tokio::test]
async fn bad_amounts_are_refused_and_write_nothing() {
    let (app, acct) = ready().await;
    let before = write_footprint(&app).await;
    let cases: [(Value, StatusCode, &str, &str); 12] = [
        (
            json!("-1.00"),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
            "amount",
        ),
        (
            json!("0"),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
            "amount",
        ),
        (
            json!("0.00"),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
            "amount",
        ),
        (
            json!("1.001"),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
            "amount",
        ),
        (
            json!("1e3"),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
            "amount",
        ),
        (
            json!("99999999999999999999"),
            StatusCode::BAD_REQUEST,
            "amount_too_large",
            "amount",
        ),
        (
            json!("abc"),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
            "amount",
        ),
        (
            json!(""),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
            "amount",
        ),
        (
            json!(100.5),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "amount",
        ),
        (
            json!(null),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "amount",
        ),
        // Within format, outside the fund's per-order limit (1,000,000.00).
        (
            json!("1000000.01"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_above_order_limit",
            "amount",
        ),
        (
            json!("0.001"),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
            "amount",
        ),
    ];
    for (i, (amount, status, code, field)) in cases.iter().enumerate() {
        let body = json!({"request_id": format!("bad-{i}"), "account_id": acct, "fund_code": FUND, "amount": amount});
        let (s, b) = app.post("p1", "/v1/subscriptions", body).await;
        assert_eq!(s, *status, "{amount}: {b}");
        assert_eq!(b["code"], *code, "{amount}: {b}");
        assert_eq!(b["field"], *field, "{amount}: {b}");
    }
    for (i, units) in ["-5", "0", "1.234", "2E2"].iter().enumerate() {
        let (s, b) = app
            .post(
                "p1",
                "/v1/redemptions",
                red(&format!("badr-{i}"), &acct, units, "fast", None),
            )
            .await;
        assert_eq!(
            (s, b["code"].as_str(), b["field"].as_str()),
            (
                StatusCode::BAD_REQUEST,
                Some("invalid_amount"),
                Some("units")
            ),
            "{b}"
        );
    }
    assert_eq!(write_footprint(&app).await, before);
}

#[tokio::test]
async fn missing_fields_unknown_accounts_and_funds() {
    let (app, acct) = ready().await;
    let other = app.open_account("p2", "someone-else").await;
    let before = write_footprint(&app).await;
    let (subs, reds) = ("/v1/subscriptions", "/v1/redemptions");
    let cases = [
        (
            subs,
            json!({"request_id": "m1", "account_id": acct, "fund_code": FUND}),
            (400, "invalid_field", "amount"),
        ),
        (
            subs,
            json!({"account_id": acct, "fund_code": FUND, "amount": "1"}),
            (400, "invalid_field", "request_id"),
        ),
        (
            subs,
            json!({"request_id": "m2", "account_id": acct, "fund_code": FUND, "amount": "1", "extra": 1}),
            (400, "invalid_field", "extra"),
        ),
        (
            subs,
            sub("m3", "999999999999", "10"),
            (404, "account_not_found", "account_id"),
        ),
        (
            subs,
            sub("m4", "12345", "10"),
            (400, "invalid_field", "account_id"),
        ),
        // Another partner's account is indistinguishable from a missing one.
        (
            subs,
            sub("m5", &other, "10"),
            (404, "account_not_found", "account_id"),
        ),
        (
            reds,
            red("m6", &other, "1", "normal", None),
            (404, "account_not_found", "account_id"),
        ),
        (
            subs,
            json!({"request_id": "m7", "account_id": acct, "fund_code": "999999", "amount": "1"}),
            (422, "unknown_fund", "fund_code"),
        ),
        (
            subs,
            sub("bad id with spaces", &acct, "1"),
            (400, "invalid_field", "request_id"),
        ),
        (
            reds,
            red("m8", &acct, "1", "instant", None),
            (400, "invalid_field", "mode"),
        ),
        (
            reds,
            red("m9", &acct, "1", "fast", Some("gift")),
            (400, "invalid_field", "purpose"),
        ),
        (
            reds,
            red("m10", &acct, "1", "normal", Some("payment")),
            (400, "invalid_field", "purpose"),
        ),
        // No holding at all: nothing to redeem.
        (
            reds,
            red("m11", &acct, "1", "normal", None),
            (422, "insufficient_units", "units"),
        ),
    ];
    for (path, body, expected) in cases {
        let got = app.post("p1", path, body.clone()).await;
        assert_eq!(refusal(&got), expected, "{body}: {got:?}");
    }
    let (s, b) = app.post("p1", subs, json!("not an object")).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field")),
        "{b}"
    );
    assert_eq!(write_footprint(&app).await, before);
}

#[tokio::test]
async fn cut_off_and_holidays_set_trade_dates() {
    let (app, acct) = ready().await;
    let cases = [
        ("2026-11-26T14:59:59+08:00", "2026-11-26"), // Thursday, one second before the cut-off
        ("2026-11-26T15:00:00+08:00", "2026-11-27"), // at the cut-off: Friday
        ("2026-11-27T16:00:00+08:00", "2026-11-30"), // Friday after the cut-off: Monday
        ("2026-11-29T09:00:00+08:00", "2026-11-30"), // Sunday: Monday
        ("2026-10-01T10:00:00+08:00", "2026-10-08"), // National Day holiday: next trading day
        ("2026-12-31T15:30:00+08:00", "2027-01-04"), // past New Year's Day and the weekend
    ];
    for (i, (now, trade_date)) in cases.iter().enumerate() {
        app.set_now(now);
        let (s, b) = app
            .post(
                "p1",
                "/v1/subscriptions",
                sub(&format!("cut-{i}"), &acct, "10"),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{now}: {b}");
        assert_eq!(b["trade_date"], *trade_date, "{now}");
    }
}

#[tokio::test]
async fn redemptions_debit_units_and_fast_withdrawals_are_capped() {
    let (app, acct) = ready().await;
    app.give_units(&acct, "50000.00").await;
    let (s, b) = app
        .post(
            "p1",
            "/v1/redemptions",
            red("n1", &acct, "1000", "normal", None),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(
        (b["status"].as_str(), b["trade_date"].as_str()),
        (Some("accepted"), Some("2026-11-26"))
    );
    // Redeemed units stop earning after T: effective T + 1 calendar day.
    assert_eq!(b["effective_date"], "2026-11-27");
    let (s, b) = app
        .post(
            "p1",
            "/v1/redemptions",
            red("f1", &acct, "9000", "fast", None),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(
        (
            b["status"].as_str(),
            b["purpose"].as_str(),
            b["effective_date"].as_str()
        ),
        (Some("confirmed"), Some("withdrawal"), Some("2026-11-26"))
    );
    let before = write_footprint(&app).await;
    let (s, b) = app
        .post(
            "p1",
            "/v1/redemptions",
            red("f2", &acct, "1000.01", "fast", Some("withdrawal")),
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("fast_withdrawal_cap_exceeded")
        ),
        "{b}"
    );
    assert_eq!(write_footprint(&app).await, before);
    // Exactly up to the cap is fine; payments are not capped.
    let (s, b) = app
        .post(
            "p1",
            "/v1/redemptions",
            red("f3", &acct, "1000.00", "fast", None),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app
        .post(
            "p1",
            "/v1/redemptions",
            red("f4", &acct, "20000", "fast", Some("payment")),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let before = write_footprint(&app).await;
    let (s, b) = app
        .post(
            "p1",
            "/v1/redemptions",
            red("f5", &acct, "19000.01", "fast", Some("payment")),
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("insufficient_units")),
        "{b}"
    );
    assert_eq!(write_footprint(&app).await, before);
    // The cap is per calendar day: the next day it is free again.
    app.set_now("2026-11-27T09:00:00+08:00");
    let (s, b) = app
        .post(
            "p1",
            "/v1/redemptions",
            red("f6", &acct, "10000", "fast", None),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let c = app.pg().await;
    let units: rust_decimal::Decimal = c
        .query_one(
            "SELECT units FROM positions WHERE account_id = $1",
            &[&acct],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(units.to_string(), "9000.00"); // 50000 - 1000 - 9000 - 1000 - 20000 - 10000
    let journal: rust_decimal::Decimal = c
        .query_one(
            "SELECT sum(units) FROM unit_journal WHERE account_id = $1",
            &[&acct],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(journal.to_string(), "-41000.00");
}

#[tokio::test]
async fn cancel_before_cut_off_only() {
    let (app, acct) = ready().await;
    app.give_units(&acct, "500.00").await;
    let (_, r) = app
        .post(
            "p1",
            "/v1/redemptions",
            red("n1", &acct, "200", "normal", None),
        )
        .await;
    let (_, s1) = app
        .post("p1", "/v1/subscriptions", sub("s1", &acct, "300"))
        .await;
    let (_, f) = app
        .post(
            "p1",
            "/v1/redemptions",
            red("f1", &acct, "50", "fast", None),
        )
        .await;
    let path = |o: &Value| format!("/v1/orders/{}/cancel", o["order_id"]);
    let (s, b) = app.post("p1", &path(&r), json!({"request_id": "c1"})).await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{b}"
    );
    // Replay of the same cancel returns the same answer.
    let (s, b2) = app.post("p1", &path(&r), json!({"request_id": "c1"})).await;
    assert_eq!((s, &b2), (StatusCode::OK, &b));
    let (s, b) = app.post("p1", &path(&r), json!({"request_id": "c2"})).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("order_not_cancellable")),
        "{b}"
    );
    let (s, b) = app.post("p1", &path(&f), json!({"request_id": "c3"})).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("order_not_cancellable")),
        "{b}"
    );
    let (s, b) = app
        .post("p2", &path(&s1), json!({"request_id": "c4"}))
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("order_not_found")),
        "{b}"
    );
    app.set_now("2026-11-26T15:00:00+08:00");
    let before = write_footprint(&app).await;
    let (s, b) = app
        .post("p1", &path(&s1), json!({"request_id": "c5"}))
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("cut_off_passed")),
        "{b}"
    );
    assert_eq!(write_footprint(&app).await, before);
    let c = app.pg().await;
    let row = c
        .query_one(
            "SELECT units, pending_subscription FROM positions WHERE account_id = $1",
            &[&acct],
        )
        .await
        .unwrap();
    let (units, pending): (rust_decimal::Decimal, rust_decimal::Decimal) = (row.get(0), row.get(1));
    assert_eq!(
        (units.to_string(), pending.to_string()),
        ("450.00".into(), "300.00".into())
    );
}

#[tokio::test]
async fn request_id_replays_and_conflicts() {
    let (app, acct) = ready().await;
    let (s1, b1) = app
        .post("p1", "/v1/subscriptions", sub("same", &acct, "10"))
        .await;
    assert_eq!(s1, StatusCode::CREATED);
    // "10" and "10.00" mean the same request.
    let (s2, b2) = app
        .post("p1", "/v1/subscriptions", sub("same", &acct, "10.00"))
        .await;
    assert_eq!((s2, &b2), (StatusCode::CREATED, &b1));
    let before = write_footprint(&app).await;
    let (s3, b3) = app
        .post("p1", "/v1/subscriptions", sub("same", &acct, "11"))
        .await;
    assert_eq!(
        (s3, b3["code"].as_str()),
        (StatusCode::CONFLICT, Some("request_id_reused")),
        "{b3}"
    );
    let (s4, b4) = app
        .post(
            "p1",
            "/v1/redemptions",
            red("same", &acct, "1", "fast", None),
        )
        .await;
    assert_eq!(
        (s4, b4["code"].as_str()),
        (StatusCode::CONFLICT, Some("request_id_reused")),
        "{b4}"
    );
    assert_eq!(write_footprint(&app).await, before);
    // request_ids are per partner: p2 may use the same one.
    let acct2 = app.open_account("p2", "c2").await;
    let (s5, _) = app
        .post("p2", "/v1/subscriptions", sub("same", &acct2, "10"))
        .await;
    assert_eq!(s5, StatusCode::CREATED);
}
