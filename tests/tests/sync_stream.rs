//! Orders written through the partner API reach ClickHouse: accounts with the masked ID only,
//! orders with their latest status, every unit movement (also in the journal by day) and
//! funds, all agreeing with Postgres. The worker reports itself on /health and /metrics.

use mmf_tests::sync::{ch, ch_u64, spawn_sync, wait_until};
use mmf_tests::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn partner_writes_reach_clickhouse() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let a1 = app.open_account("p1", "c1").await;
    let a2 = app.open_account("p2", "c2").await;
    app.give_units(&a1, "500.00").await;

    let worker = spawn_sync(&app.db).await;

    let (s, b) = app
        .post(
            "p1",
            "/v1/subscriptions",
            json!({"request_id": "s1", "account_id": a1, "fund_code": FUND, "amount": "100.50"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, red) = app
        .post(
            "p1",
            "/v1/redemptions",
            json!({"request_id": "r1", "account_id": a1, "fund_code": FUND, "units": "200.00", "mode": "normal"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{red}");
    let (s, b) = app
        .post(
            "p1",
            "/v1/redemptions",
            json!({"request_id": "f1", "account_id": a1, "fund_code": FUND, "units": "50.25",
                   "mode": "fast", "purpose": "withdrawal"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let ch = ch(&app.db);
    // The redemption first arrives accepted, then its cancellation replaces it.
    wait_until("accepted redemption", Duration::from_secs(120), || async {
        ch_u64(
            &ch,
            "SELECT count() FROM orders FINAL WHERE request_id = 'r1'",
        )
        .await
            == 1
    })
    .await;
    let (s, b) = app
        .post(
            "p1",
            &format!("/v1/orders/{}/cancel", red["order_id"]),
            json!({"request_id": "c1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let pg = app.pg().await;
    let journal_rows: i64 = pg
        .query_one("SELECT count(*) FROM unit_journal", &[])
        .await
        .unwrap()
        .get(0);
    assert!(journal_rows >= 3, "redemption, fast redemption, cancel");
    wait_until("orders and journal", Duration::from_secs(120), || async {
        ch_u64(
            &ch,
            "SELECT count() FROM orders FINAL WHERE status = 'cancelled'",
        )
        .await
            == 1
            && ch_u64(&ch, "SELECT count() FROM unit_journal FINAL").await == journal_rows as u64
            // Fed by a materialized view of the same insert, written after unit_journal's part.
            && ch_u64(&ch, "SELECT count() FROM journal_by_day FINAL").await
                == journal_rows as u64
    })
    .await;

    // Orders: one row each with the latest status and exact amounts.
    let mut orders: Vec<(String, String, String, i64, u64)> = ch
        .query(
            "SELECT request_id, kind, status, toInt64(amount * 100), version \
             FROM orders FINAL ORDER BY request_id",
        )
        .fetch_all()
        .await
        .unwrap();
    orders.sort();
    assert_eq!(
        orders,
        vec![
            (
                "f1".into(),
                "fast_redemption".into(),
                "confirmed".into(),
                5025,
                1
            ),
            (
                "r1".into(),
                "redemption".into(),
                "cancelled".into(),
                20000,
                2
            ),
            (
                "s1".into(),
                "subscription".into(),
                "accepted".into(),
                10050,
                1
            ),
        ]
    );

    // Units per account agree with Postgres, in the journal and in the journal by day.
    let pg_sums: Vec<(String, i64)> = pg
        .query(
            "SELECT account_id, (sum(units) * 100)::bigint FROM unit_journal \
             GROUP BY account_id ORDER BY account_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let ch_sums: Vec<(String, i64)> = ch
        .query(
            "SELECT account_id, toInt64(sum(units) * 100) FROM unit_journal FINAL \
             GROUP BY account_id ORDER BY account_id",
        )
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(ch_sums, pg_sums);
    assert_eq!(pg_sums, vec![(a1.clone(), -5025)]);
    // The journal by effective day, fed from unit_journal, holds the same rows.
    let by_day: Vec<(String, i64)> = ch
        .query(
            "SELECT account_id, toInt64(sum(units) * 100) FROM journal_by_day FINAL \
             GROUP BY account_id ORDER BY account_id",
        )
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(by_day, pg_sums);

    // Accounts carry the masked ID only; the fund carries its limits.
    let accounts: Vec<(String, String, String)> = ch
        .query("SELECT account_id, partner_id, id_masked FROM accounts FINAL ORDER BY partner_id")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(accounts.len(), 2);
    assert_eq!((&accounts[0].0, &accounts[1].0), (&a1, &a2));
    for (_, _, masked) in &accounts {
        assert!(masked.contains('*'), "{masked}");
    }
    let columns: Vec<String> = ch
        .query("SELECT name FROM system.columns WHERE database = ? AND table = 'accounts'")
        .bind(&app.db.name)
        .fetch_all()
        .await
        .unwrap();
    assert!(!columns.iter().any(|c| c == "id_number" || c == "mobile"));
    assert_eq!(
        ch_u64(
            &ch,
            "SELECT toUInt64(fast_withdrawal_daily_cap * 100) FROM funds FINAL WHERE fund_code = '000001'"
        )
        .await,
        1_000_000
    );

    // The worker reports what it did.
    let base = format!("http://{}", worker.addr);
    let health = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "sync_rows_shipped_total{stream=\"orders\"}",
        "sync_batch_rows_count{stream=\"unit_journal\"}",
        "sync_lag_seconds{stream=\"orders\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    worker.stop().await;
}
