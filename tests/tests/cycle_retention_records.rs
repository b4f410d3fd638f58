//! Retention of orders and the records around them: a trade date's orders, the day's usage
//! counters, settlements, reconciliation records and idempotency records leave Postgres only
//! once ClickHouse verifiably holds them (refused while the sync worker lags behind a status
//! change), an old order is still found by its request_id (from ClickHouse), and a late retry
//! never creates a second order: replayed while the full record lasts, `request_expired` with
//! the order's id while its key lasts (on every instance), and refused by its `request_date`
//! after that.

use mmf_tests::cycle::*;
use mmf_tests::instances::CommandProcess;
use mmf_tests::sync::{ch, ch_u64, spawn_sync, wait_until};
use mmf_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// Runs the sync worker until ClickHouse holds every order version and journal row Postgres
/// has (ClickHouse also keeps what retention deleted).
async fn ship(app: &TestApp) {
    let sync = spawn_sync(&app.db).await;
    let c = app.pg().await;
    let versions: Vec<String> = c
        .query(
            "SELECT format('(%s,%s)', order_id, version) FROM orders",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let journal: i64 = c
        .query_one(
            "SELECT (SELECT count(*) FROM unit_movements)
                    + (SELECT coalesce(sum(rows), 0) FROM retained_days)::int8",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let orders_sql = format!(
        "SELECT count() FROM orders FINAL WHERE (order_id, version) IN ({})",
        versions.join(",")
    );
    let expected = versions.len() as u64;
    let ch = ch(&app.db);
    wait_until(
        "orders and journal shipped",
        Duration::from_secs(120),
        || {
            let (ch, orders_sql) = (ch.clone(), orders_sql.clone());
            async move {
                ch_u64(&ch, &orders_sql).await == expected
                    && ch_u64(&ch, "SELECT count() FROM unit_journal FINAL").await == journal as u64
            }
        },
    )
    .await;
    sync.stop().await;
}

async fn count(app: &TestApp, table: &str) -> i64 {
    app.pg()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

async fn retention(app: &TestApp) -> (StatusCode, Value) {
    app.ops(Method::POST, "/v1/ops/retention", json!({})).await
}

/// A subscription of partner p1 with a `request_date`, sent to `api`.
async fn subscribe_dated(
    api: &impl Api,
    rid: &str,
    account: &str,
    amount: &str,
    date: &str,
) -> (StatusCode, Value) {
    let body = json!({"request_id": rid, "account_id": account, "fund_code": FUND,
                      "amount": amount, "request_date": date});
    api.post("p1", "/v1/subscriptions", body).await
}

#[tokio::test]
async fn orders_and_records_leave_once_clickhouse_holds_them() {
    let app = spawn_command().await;
    app.set_now("2026-11-02T10:00:00+08:00");
    app.setup_fund().await;
    let a = app.open_account("p1", "keep-a").await;
    let b = app.open_account("p2", "keep-b").await;
    let (s, sub_a) = subscribe_dated(&app, "sub-a", &a, "1000.00", "2026-11-02").await;
    assert_eq!(s, StatusCode::CREATED, "{sub_a}");
    subscribe(&app, "p2", &b, "500.00").await;
    let withdrawn = subscribe(&app, "p2", &b, "200.00").await;
    let (s, r) = app
        .post(
            "p2",
            &format!("/v1/orders/{withdrawn}/cancel"),
            json!({"request_id": "cancel-b"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    // A retry within the replay window gets the stored answer.
    let (s, replay) = subscribe_dated(&app, "sub-a", &a, "1000.00", "2026-11-02").await;
    assert_eq!((s, &replay), (StatusCode::CREATED, &sub_a));
    ship(&app).await;

    app.set_now("2026-11-03T09:00:00+08:00");
    cycle(&app, "2026-11-02").await;
    app.set_now("2026-11-03T10:00:00+08:00");
    redeem(&app, "p1", &a, "10.00", "fast").await;
    let file = partner_request_file(
        "p1",
        "2026-11-02",
        &[("sub-a", "022", &a, "1000.00", false, false)],
    );
    let (s, r) = import_requests(&app, "p1", "2026-11-02", "", file).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    check_invariants(&app).await;

    // 2026-11-02 was confirmed after ClickHouse last saw it: the counts and amounts agree,
    // the versions (the orders' and the date's confirmation's) do not, and nothing is deleted.
    app.set_now("2026-11-20T10:00:00+08:00");
    let (s, r) = retention(&app).await;
    assert_eq!(s, StatusCode::CONFLICT, "{r}");
    assert_eq!(r["code"], "history_mismatch");
    assert_eq!(r["records_cutoff"], "2026-11-13");
    let orders_day = r["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["what"] == "orders" && c["day"] == "2026-11-02")
        .unwrap_or_else(|| panic!("orders of 2026-11-02 checked: {r}"));
    assert_eq!(orders_day["postgres_rows"], 3);
    assert_eq!(orders_day["clickhouse_rows"], 3);
    assert_eq!(orders_day["postgres_amount"], "1700.00");
    assert_eq!(orders_day["matches"], false);
    assert!(
        orders_day["postgres_versions"].as_i64() > orders_day["clickhouse_versions"].as_i64(),
        "{orders_day}"
    );
    assert_eq!(count(&app, "orders").await, 4, "nothing deleted");
    assert_eq!(count(&app, "idempotency").await, 7, "nothing deleted");

    // Once shipped, every kind leaves, each recorded.
    ship(&app).await;
    let (s, r) = retention(&app).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["refused"], false);
    assert!(
        r["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["matches"] == true),
        "{r}"
    );
    assert_eq!(
        r["deleted_records"],
        json!({"orders": 4, "daily_usage": 3, "settlements": 2, "recon_imports": 1, "idempotency": 7}),
        "{r}"
    );
    for table in [
        "orders",
        "idempotency",
        "daily_usage",
        "settlements",
        "recon_imports",
        "recon_requests",
    ] {
        assert_eq!(count(&app, table).await, 0, "{table} emptied");
    }
    assert_eq!(count(&app, "request_keys").await, 7);
    assert_eq!(position(&app, &a).await.units, dec("990.00"));
    assert_eq!(position(&app, &b).await.units, dec("500.00"));
    let history = ch(&app.db);
    assert_eq!(
        ch_u64(&history, "SELECT count() FROM settlements FINAL").await,
        2
    );
    assert_eq!(
        ch_u64(&history, "SELECT count() FROM recon_requests FINAL").await,
        1
    );
    assert_eq!(
        ch_u64(&history, "SELECT count() FROM orders FINAL").await,
        4
    );

    // The partner still finds the order by its request_id, from ClickHouse; another partner
    // does not.
    let (s, found) = app.get("p1", "/v1/orders?request_id=sub-a").await;
    assert_eq!(s, StatusCode::OK, "{found}");
    assert_eq!(found["order_id"], sub_a["order_id"]);
    assert_eq!(found["status"], "confirmed");
    assert_eq!(found["amount"], "1000.00");
    assert_eq!(found["trade_date"], "2026-11-02");
    assert_eq!(found["effective_date"], "2026-11-03");
    let (s, _) = app.get("p2", "/v1/orders?request_id=sub-a").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // And by its id, from ClickHouse too; not another partner's, nor an id never issued.
    let by_id = format!("/v1/orders/{}", sub_a["order_id"]);
    let (s, found_by_id) = app.get("p1", &by_id).await;
    assert_eq!(s, StatusCode::OK, "{found_by_id}");
    assert_eq!(found_by_id, found);
    let (s, _) = app.get("p2", &by_id).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get("p1", "/v1/orders/999999").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A late retry is refused with the order it created; the same request_id for something
    // else is still a reuse; the cancellation of a retained order is refused the same way.
    let retry = subscribe_dated(&app, "sub-a", &a, "1000.00", "2026-11-02").await;
    assert_eq!(
        refusal(&retry),
        (409, "request_expired", "request_id"),
        "{retry:?}"
    );
    assert_eq!(retry.1["order_id"], sub_a["order_id"]);
    let other = subscribe_dated(&app, "sub-a", &a, "999.00", "2026-11-02").await;
    assert_eq!(refusal(&other), (409, "request_id_reused", "request_id"));
    let cancel = app
        .post(
            "p2",
            &format!("/v1/orders/{withdrawn}/cancel"),
            json!({"request_id": "cancel-b"}),
        )
        .await;
    assert_eq!(
        refusal(&cancel),
        (409, "request_expired", "request_id"),
        "{cancel:?}"
    );
    // Another instance on the same database refuses the same way: the key is read by the
    // order statement in Postgres, not from anything an instance holds.
    let other_instance = CommandProcess::start(&app.db).await;
    other_instance.set_now("2026-11-20T10:00:00+08:00").await;
    let retry = subscribe_dated(&other_instance, "sub-a", &a, "1000.00", "2026-11-02").await;
    assert_eq!(
        refusal(&retry),
        (409, "request_expired", "request_id"),
        "{retry:?}"
    );
    let (s, found) = other_instance
        .get("p1", "/v1/orders?request_id=sub-a")
        .await;
    assert_eq!(
        (s, &found["order_id"]),
        (StatusCode::OK, &sub_a["order_id"]),
        "{found}"
    );
    drop(other_instance);
    assert_eq!(count(&app, "orders").await, 0, "no second order");

    // request_date: older than the key window, or after today, is refused.
    let old = subscribe_dated(&app, "sub-old", &a, "5.00", "2026-10-15").await;
    assert_eq!(refusal(&old), (409, "request_expired", "request_date"));
    let future = subscribe_dated(&app, "sub-new", &a, "5.00", "2026-11-21").await;
    assert_eq!(refusal(&future), (422, "date_in_future", "request_date"));
    let (s, r) = subscribe_dated(&app, "sub-new", &a, "5.00", "2026-10-16").await;
    assert_eq!(s, StatusCode::CREATED, "35 days back is accepted: {r}");

    // The files of a retained trade date cannot be built from Postgres any more.
    let (s, r) = app
        .ops(
            Method::GET,
            "/v1/ops/reconciliation/p1/2026-11-02/confirmations",
            json!(null),
        )
        .await;
    assert_eq!(
        (s, r["code"].as_str()),
        (StatusCode::GONE, Some("date_retained")),
        "{r}"
    );

    // After the key window the keys go too; a retry dated that far back is refused by its date.
    ship(&app).await;
    app.set_now("2026-12-10T10:00:00+08:00");
    let (s, r) = retention(&app).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["key_cutoff"], "2026-11-05");
    assert_eq!(r["deleted_records"]["request_keys"], 7, "{r}");
    assert_eq!(r["deleted_records"]["idempotency"], 1, "{r}");
    assert_eq!(count(&app, "request_keys").await, 1, "sub-new's key stays");
    let retry = subscribe_dated(&app, "sub-a", &a, "1000.00", "2026-11-02").await;
    assert_eq!(refusal(&retry), (409, "request_expired", "request_date"));
    assert_eq!(count(&app, "orders").await, 1, "only sub-new's order");
}
