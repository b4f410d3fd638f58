//! Concurrent requests never overdraw a position, never exceed the fast-withdrawal cap and
//! never create two orders for one request_id.

use futures::future::join_all;
use mmf_tests::*;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::json;

async fn units(app: &TestApp, acct: &str) -> Decimal {
    app.pg()
        .await
        .query_one(
            "SELECT units FROM positions WHERE account_id = $1",
            &[&acct],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn parallel_redemptions_never_overdraw() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let acct = app.open_account("p1", "c1").await;
    app.give_units(&acct, "1000.00").await;
    // 50 × 30.00 = 1500 asked against 1000 held: exactly 33 fit.
    let calls = (0..50).map(|i| {
        let body = json!({"request_id": format!("r{i}"), "account_id": acct, "fund_code": FUND, "units": "30.00",
                          "mode": if i % 2 == 0 { "normal" } else { "fast" }, "purpose": null});
        let mut body = body;
        if i % 2 == 0 {
            body.as_object_mut().unwrap().remove("purpose");
        } else {
            body["purpose"] = json!("payment");
        }
        app.post("p1", "/v1/redemptions", body)
    });
    let results = join_all(calls).await;
    let ok = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused = results
        .iter()
        .filter(|(s, b)| {
            *s == StatusCode::UNPROCESSABLE_ENTITY && b["code"] == "insufficient_units"
        })
        .count();
    assert_eq!((ok, refused), (33, 17), "{results:?}");
    assert_eq!(units(&app, &acct).await.to_string(), "10.00");
    let orders: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(orders, 33);
}

#[tokio::test]
async fn parallel_fast_withdrawals_never_exceed_the_cap() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let acct = app.open_account("p1", "c1").await;
    app.give_units(&acct, "100000.00").await;
    // Cap 10,000.00 a day; 50 × 333.33 = 16,666.50 asked: 30 fit (9,999.90).
    let calls = (0..50).map(|i| {
        app.post(
            "p1",
            "/v1/redemptions",
            json!({"request_id": format!("w{i}"), "account_id": acct, "fund_code": FUND, "units": "333.33", "mode": "fast"}),
        )
    });
    let results = join_all(calls).await;
    let ok = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let capped = results
        .iter()
        .filter(|(_, b)| b["code"] == "fast_withdrawal_cap_exceeded")
        .count();
    assert_eq!((ok, capped), (30, 20), "{results:?}");
    assert_eq!(units(&app, &acct).await.to_string(), "90000.10");
    let used: Decimal = app
        .pg()
        .await
        .query_one(
            "SELECT amount FROM daily_usage WHERE kind = 'fast_withdrawal'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(used.to_string(), "9999.90");
}

#[tokio::test]
async fn parallel_retries_create_one_order() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let acct = app.open_account("p1", "c1").await;
    app.give_units(&acct, "1000.00").await;
    let body = json!({"request_id": "once", "account_id": acct, "fund_code": FUND, "units": "10.00", "mode": "fast"});
    let results = join_all((0..50).map(|_| app.post("p1", "/v1/redemptions", body.clone()))).await;
    let first = &results[0];
    assert_eq!(first.0, StatusCode::CREATED, "{first:?}");
    assert!(results.iter().all(|r| r == first), "{results:?}");
    let c = app.pg().await;
    let orders: i64 = c
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(orders, 1);
    assert_eq!(units(&app, &acct).await.to_string(), "990.00");
    // Account opening, too: 50 retries, one account.
    let open = json!({"request_id": "open-once", "customer_id": "c77", "name": "Zhao Liu", "id_type": "resident_id",
                      "id_number": valid_resident_id("c77")});
    let results = join_all((0..50).map(|_| app.post("p2", "/v1/accounts", open.clone()))).await;
    assert!(
        results
            .iter()
            .all(|r| r == &results[0] && r.0 == StatusCode::CREATED),
        "{results:?}"
    );
    let accounts: i64 = c
        .query_one("SELECT count(*) FROM accounts WHERE partner_id = 'p2'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(accounts, 1);
}

#[tokio::test]
async fn mixed_batches_answer_each_order_on_its_own() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let mut accts = Vec::new();
    for i in 0..40 {
        let a = app.open_account("p1", &format!("m{i}")).await;
        app.give_units(&a, if i % 4 == 3 { "20000.00" } else { "100.00" })
            .await;
        accts.push(a);
    }
    // Per account, one order of a kind chosen by i % 4: a fitting fast redemption, an
    // overdrawing one, a subscription, and a fast withdrawal over the cap. Sent all at once,
    // they share writer transactions.
    let calls = accts.iter().enumerate().map(|(i, a)| {
        let (path, body) = match i % 4 {
            0 => ("/v1/redemptions", json!({"request_id": format!("x{i}"), "account_id": a, "fund_code": FUND, "units": "60.00", "mode": "fast", "purpose": "payment"})),
            1 => ("/v1/redemptions", json!({"request_id": format!("x{i}"), "account_id": a, "fund_code": FUND, "units": "100.01", "mode": "normal"})),
            2 => ("/v1/subscriptions", json!({"request_id": format!("x{i}"), "account_id": a, "fund_code": FUND, "amount": "25.00"})),
            _ => ("/v1/redemptions", json!({"request_id": format!("x{i}"), "account_id": a, "fund_code": FUND, "units": "10000.01", "mode": "fast"})),
        };
        app.post("p1", path, body)
    });
    let results = join_all(calls).await;
    for (i, (s, b)) in results.iter().enumerate() {
        match i % 4 {
            0 | 2 => assert_eq!(
                (*s, b["request_id"].as_str()),
                (StatusCode::CREATED, Some(format!("x{i}").as_str())),
                "{i}: {b}"
            ),
            1 => assert_eq!(
                (*s, b["code"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("insufficient_units")),
                "{i}: {b}"
            ),
            _ => assert_eq!(
                (*s, b["code"].as_str()),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("fast_withdrawal_cap_exceeded")
                ),
                "{i}: {b}"
            ),
        }
    }
    for (i, a) in accts.iter().enumerate() {
        let expect = match i % 4 {
            0 => "40.00",
            3 => "20000.00",
            _ => "100.00",
        };
        assert_eq!(units(&app, a).await.to_string(), expect, "account {i}");
    }
    let c = app.pg().await;
    let row = c
        .query_one("SELECT count(*), sum(amount)::text FROM orders", &[])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, String>(1)),
        (20, "850.00".to_string())
    ); // 10 × 60 + 10 × 25
}
