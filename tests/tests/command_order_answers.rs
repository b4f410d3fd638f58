//! An order write answers with the order as stored for replays (the order statement's
//! `order_json`), and a lookup answers with the service's `Order` type read from the row: the
//! two agree field for field, so partners see one shape whichever way they ask.

use mmf_command::partner::Order;
use mmf_tests::*;
use serde_json::json;

#[tokio::test]
async fn write_answers_and_lookups_agree() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let acct = app.open_account("p1", "answers").await;
    app.give_units(&acct, "1000.00").await;
    // Fractions of a second with trailing zeros are where text forms of instants differ.
    app.set_now("2026-11-26T10:00:00.120+08:00");
    let writes = [
        (
            "/v1/subscriptions",
            json!({"request_id": "a1", "account_id": acct, "fund_code": FUND, "amount": "100"}),
        ),
        (
            "/v1/redemptions",
            json!({"request_id": "a2", "account_id": acct, "fund_code": FUND, "units": "10.5", "mode": "normal"}),
        ),
        (
            "/v1/redemptions",
            json!({"request_id": "a3", "account_id": acct, "fund_code": FUND, "units": "1.00", "mode": "fast", "purpose": "payment"}),
        ),
    ];
    let mut ids = Vec::new();
    for (path, body) in writes {
        let (s, written) = app.post("p1", path, body).await;
        assert_eq!(s.as_u16(), 201, "{written}");
        let id = written["order_id"].as_i64().unwrap();
        let (s, looked_up) = app.get("p1", &format!("/v1/orders/{id}")).await;
        assert_eq!(s.as_u16(), 200, "{looked_up}");
        assert_eq!(written, looked_up, "{path}");
        let order: Order = serde_json::from_value(looked_up).unwrap();
        assert_eq!(order.accepted_at.timestamp_subsec_micros(), 120_000);
        ids.push(id);
    }
    // A cancellation answers with the cancelled order.
    app.set_now("2026-11-26T10:05:00.000500+08:00");
    let (s, cancelled) = app
        .post(
            "p1",
            &format!("/v1/orders/{}/cancel", ids[0]),
            json!({"request_id": "a4"}),
        )
        .await;
    assert_eq!(s.as_u16(), 200, "{cancelled}");
    let (_, looked_up) = app.get("p1", "/v1/orders?request_id=a1").await;
    assert_eq!(cancelled, looked_up);
    assert_eq!(cancelled["cancelled_at"], "2026-11-26T02:05:00.000500Z");
    assert_eq!(cancelled["amount"], "100.00");
}
