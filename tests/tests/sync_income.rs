//! Distributed income reaches ClickHouse: every entry of every income payment (one per
//! distribution batch) becomes an `income` row of `unit_journal`, once, with the payment's id,
//! and the daily holdings include it.

use mmf_tests::cycle::*;
use mmf_tests::sync::{
    ch, ch_u64, holdings, holdings_built, journal_holdings, spawn_sync, wait_until,
};
use mmf_tests::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn income_payments_become_journal_rows_in_clickhouse() {
    let app = spawn_command().await;
    app.setup_fund().await;
    // Seven holders; batches of 3 positions make three payments per day.
    let mut accounts = Vec::new();
    for (i, units) in [
        "10000.00", "2500.50", "100.00", "1.00", "777.77", "50000.00", "0.01",
    ]
    .iter()
    .enumerate()
    {
        let a = app.open_account("p1", &format!("h{i}")).await;
        seed_units(&app, &a, units).await;
        accounts.push(a);
    }
    // Two days: Thursday's and Friday's income, distributed by Friday's cycle run on Monday.
    publish(&app, "2026-11-26", "0.6500").await;
    publish(&app, "2026-11-27", "0.6400").await;
    app.set_now("2026-11-30T09:00:00+08:00");
    let (s, b) = run_cycle(&app, "2026-11-27", json!({"batch_size": 3, "parallel": 2})).await;
    assert_eq!(s, reqwest::StatusCode::OK, "{b}");
    check_invariants(&app).await;
    // 10000.00 × 0.000065 = 0.65 on Thursday; (10000.65) × 0.000064 = 0.6400416 → 0.64.
    assert_eq!(
        income_of(&app, &accounts[0], "2026-11-26").await,
        dec("0.65")
    );
    assert_eq!(
        income_of(&app, &accounts[0], "2026-11-27").await,
        dec("0.64")
    );

    let pg = app.pg().await;
    let r = pg
        .query_one(
            "SELECT count(*), (sum(units) * 100)::bigint,
                    (SELECT count(*) FROM income_payments)
             FROM unit_movements WHERE kind = 'income'",
            &[],
        )
        .await
        .unwrap();
    let (entries, fen, payments): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
    // Thursday pays 10000.00, 2500.50, 777.77 and 50000.00 (100.00 accrues 0.0065, 1.00 and
    // 0.01 less); Friday also pays 100.00 (0.0065 + 0.0064 = 0.0129 → 0.01): 4 + 5 entries.
    assert_eq!(entries, 9);
    assert!(payments >= 4, "several batches per day: {payments}");

    let worker = spawn_sync(&app.db).await;
    let ch = ch(&app.db);
    wait_until("income shipped", Duration::from_secs(120), || async {
        ch_u64(
            &ch,
            "SELECT count() FROM unit_journal FINAL WHERE kind = 'income'",
        )
        .await
            == entries as u64
    })
    .await;
    assert_eq!(
        ch_u64(
            &ch,
            "SELECT toUInt64(sum(units) * 100) FROM unit_journal FINAL WHERE kind = 'income'"
        )
        .await,
        fen as u64
    );
    // Each entry carries its payment's id and the day after the income day.
    let pg_entries: Vec<(String, i64, String, i64)> = pg
        .query(
            "SELECT account_id, entry_id, effective_date::text, (units * 100)::bigint
             FROM unit_movements WHERE kind = 'income' ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let ch_entries: Vec<(String, u64, String, i64)> = ch
        .query(
            "SELECT account_id, entry_id, toString(effective_date), toInt64(units * 100) \
             FROM unit_journal FINAL WHERE kind = 'income' ORDER BY account_id, entry_id",
        )
        .fetch_all()
        .await
        .unwrap();
    let ch_entries: Vec<(String, i64, String, i64)> = ch_entries
        .into_iter()
        .map(|(a, e, d, u)| (a, e as i64, d, u))
        .collect();
    assert_eq!(ch_entries, pg_entries);

    // Daily holdings: once both days are distributed, each day from the opening holdings on
    // is built, and the last one carries both incomes.
    wait_until("holdings of 11-27", Duration::from_secs(120), || async {
        holdings_built(&pg).await == Some("2026-11-27".parse().unwrap())
    })
    .await;
    for day in ["2026-11-01", "2026-11-26", "2026-11-27"] {
        assert_eq!(
            holdings(&ch, day).await,
            journal_holdings(&pg, day).await,
            "{day}"
        );
    }
    let last = holdings(&ch, "2026-11-27").await;
    let first = last.iter().find(|h| h.0 == accounts[0]).unwrap();
    // 10000.00 + Thursday's 0.65 (effective Friday); Friday's 0.64 is effective Saturday.
    assert_eq!((first.2, first.5, first.6), (1_000_065, 64, 129));
    assert_eq!(
        ch_u64(
            &ch,
            "SELECT count() FROM daily_holdings WHERE day < toDate('2026-11-01')"
        )
        .await,
        0
    );
    worker.stop().await;
}
