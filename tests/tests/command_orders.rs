//! Orders through the partner API: the happy paths, each rule's refusal, cut-off dates and
//! concurrency.

use mmf_tests::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn subscription_then_lookup() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let acct = app.open_account("p1", "c1").await;
    let (s, b) = app
        .post(
            "p1",
            "/v1/subscriptions",
            json!({"request_id": "r1", "account_id": acct, "fund_code": FUND, "amount": "100.5"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["amount"], "100.50");
    assert_eq!(b["status"], "accepted");
    assert_eq!(b["trade_date"], "2026-11-26");
    let (s, l) = app.get("p1", "/v1/orders?request_id=r1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(l["order_id"], b["order_id"]);
    let (s, _) = app.get("p2", "/v1/orders?request_id=r1").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
