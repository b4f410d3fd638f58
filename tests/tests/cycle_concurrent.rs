//! An order that changes a position while the distribution batch holding it runs: the batch
//! read the position before the order committed and updates it after. The payment is computed
//! from what the batch read (the order's units are effective after the income day) and added
//! to the position as the order left it.

use mmf_tests::cycle::*;
use mmf_tests::sync::wait_until;
use mmf_tests::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn order_committed_mid_batch_keeps_its_units_and_the_income() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let mut accounts = Vec::new();
    for i in 0..6 {
        let a = app.open_account("p1", &format!("h{i}")).await;
        seed_units(&app, &a, "1000.00").await;
        accounts.push(a);
    }
    publish(&app, "2026-11-26", "0.6500").await;
    app.set_now("2026-11-27T09:00:00+08:00");
    let target = &accounts[4];

    // An order's transaction, as the order writer does it: a fast redemption of 100.00 debited
    // now, effective today (after the income day). It holds the row until it commits.
    let (order, conn) = tokio_postgres::connect(&app.db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    order
        .batch_execute(&format!(
            "BEGIN;
             UPDATE positions SET units = units - 100 WHERE account_id = '{target}';
             INSERT INTO unit_journal (account_id, fund_code, kind, units, effective_date, booked_at)
             VALUES ('{target}', '{FUND}', 'fast_redemption', -100, '2026-11-27', now());"
        ))
        .await
        .unwrap();
    let run = {
        let base = app.base.clone();
        tokio::spawn(async move {
            let resp = reqwest::Client::new()
                .post(format!("{base}/v1/ops/cycles/2026-11-26"))
                .bearer_auth(OPS_TOKEN)
                .json(&json!({"batch_size": 3, "parallel": 1}))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, resp.json::<serde_json::Value>().await.unwrap())
        })
    };
    // The batch has read the position (the order is not committed) and waits to update it.
    let c = app.pg().await;
    wait_until(
        "the batch to wait for the order's row",
        Duration::from_secs(120),
        || async {
            c.query_opt(
                "SELECT 1 FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .is_some()
        },
    )
    .await;
    order.batch_execute("COMMIT").await.unwrap();
    let (status, body) = run.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "completed", "{body}");

    // Eligible on 2026-11-26: 1000.00 (the redemption is effective 11-27); 1000 × 0.000065 =
    // 0.065 → 0.06 paid, 0.005 carried. Units: 1000.00 − 100.00 + 0.06.
    let p = position(&app, target).await;
    assert_eq!(p.units, dec("900.06"));
    assert_eq!(p.carry, dec("0.005"));
    assert_eq!(p.last_income, dec("0.06"));
    assert_eq!(income_of(&app, target, "2026-11-26").await, dec("0.06"));
    for a in accounts.iter().filter(|a| *a != target) {
        assert_eq!(position(&app, a).await.units, dec("1000.06"));
    }
    check_invariants(&app).await;
}
