//! Retention: movements beyond the window (journal rows and income payment entries) are deleted
//! only once ClickHouse (fed by the real sync worker) holds the same counts and sums per day; a
//! difference refuses and reports.

use mmf_tests::cycle::*;
use mmf_tests::sync::{ch, ch_u64, spawn_sync, wait_until};
use mmf_tests::*;
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::json;
use std::time::Duration;

async fn shipped(app: &TestApp) {
    let pg_rows: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM unit_movements", &[])
        .await
        .unwrap()
        .get(0);
    let ch = ch(&app.db);
    wait_until("journal shipped to ClickHouse", Duration::from_secs(120), || {
        let ch = ch.clone();
        async move { ch_u64(&ch, "SELECT count() FROM unit_journal FINAL").await == pg_rows as u64 }
    })
    .await;
}

#[tokio::test]
async fn deletes_only_what_clickhouse_verifiably_holds() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let a = app.open_account("p1", "old-1").await;
    let b = app.open_account("p1", "old-2").await;
    // Old movements (effective 2026-11-01), old income (day 2026-11-10, paid effective 11-11:
    // a 500.00 × 0.000065 = 0.0325 → 0.03, b 250.25 × 0.000065 = 0.01626625 → 0.01) and recent
    // ones (a subscription confirmed Friday).
    seed_units(&app, &a, "500.00").await;
    seed_units(&app, &b, "250.25").await;
    publish(&app, "2026-11-10", "0.6500").await;
    subscribe(&app, "p1", &a, "10.00").await;
    app.set_now("2026-11-27T09:00:00+08:00");
    cycle(&app, "2026-11-26").await;
    check_invariants(&app).await;
    assert_eq!(income_of(&app, &a, "2026-11-10").await, dec("0.03"));
    assert_eq!(income_of(&app, &b, "2026-11-10").await, dec("0.01"));

    let sync = spawn_sync(&app.db).await;
    shipped(&app).await;
    sync.stop().await;

    // A late movement for an old day that the sync worker has not shipped yet.
    app.pg()
        .await
        .execute(
            "INSERT INTO unit_journal (account_id, fund_code, kind, units, effective_date, booked_at)
             VALUES ($1, $2, 'cancel', 1.00, '2026-11-01', now())",
            &[&b, &FUND],
        )
        .await
        .unwrap();
    app.pg()
        .await
        .execute(
            "UPDATE positions SET units = units + 1 WHERE account_id = $1",
            &[&b],
        )
        .await
        .unwrap();
    let (s, r) = app.ops(Method::POST, "/v1/ops/retention", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{r}");
    assert_eq!(r["code"], "history_mismatch");
    assert_eq!(r["cutoff"], "2026-11-20", "7 days before 2026-11-27");
    assert_eq!(r["deleted_rows"], 0);
    let day = &r["days"][0];
    assert_eq!(day["effective_date"], "2026-11-01");
    assert_eq!(day["postgres_rows"], 3);
    assert_eq!(day["clickhouse_rows"], 2);
    assert_eq!(day["postgres_units"], "751.25");
    assert_eq!(day["clickhouse_units"], "750.25");
    assert_eq!(day["matches"], false);
    let rows: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM unit_journal", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 4, "nothing deleted");
    let payments: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM income_payments", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(payments, 1, "nothing deleted");

    // Once shipped, the old day is deleted and recorded; recent rows stay.
    let sync = spawn_sync(&app.db).await;
    shipped(&app).await;
    sync.stop().await;
    let (s, r) = app
        .ops(Method::POST, "/v1/ops/retention", json!({"dry_run": true}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["deleted_rows"], 0);
    assert_eq!(r["days"][0]["matches"], true);
    assert_eq!(r["days"][1]["effective_date"], "2026-11-11");
    assert_eq!(r["days"][1]["postgres_rows"], 2);
    assert_eq!(r["days"][1]["clickhouse_rows"], 2);
    assert_eq!(r["days"][1]["postgres_units"], "0.04");
    assert_eq!(r["days"][1]["matches"], true);
    let (s, r) = app.ops(Method::POST, "/v1/ops/retention", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["refused"], false);
    assert_eq!(r["deleted_rows"], 5);
    let c = app.pg().await;
    let left: Vec<chrono::NaiveDate> = c
        .query("SELECT effective_date FROM unit_movements", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        left,
        vec!["2026-11-27".parse::<chrono::NaiveDate>().unwrap()]
    );
    let r = c
        .query_one(
            "SELECT (SELECT sum(units) FROM positions),
                    (SELECT sum(units) FROM unit_movements) + (SELECT sum(units) FROM retained_days)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        r.get::<_, Decimal>(0),
        r.get::<_, Decimal>(1),
        "Σ positions = Σ journal kept + Σ deleted"
    );
    // ClickHouse still has the whole history.
    assert_eq!(
        ch_u64(&ch(&app.db), "SELECT count() FROM unit_journal FINAL").await,
        6
    );
}
