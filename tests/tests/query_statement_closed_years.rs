//! The sync worker merges each closed year of the statements' journal to one part (a week
//! into the next year), and statements read the same entries before and after.

use chrono::NaiveDate;
use mmf_tests::query::spawn_query;
use mmf_tests::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn parts(ch: &clickhouse::Client, year: &str) -> u64 {
    ch.query(
        "SELECT count() FROM system.parts WHERE database = currentDatabase() \
         AND table = 'journal_by_account' AND active AND partition = ?",
    )
    .bind(year)
    .fetch_one()
    .await
    .unwrap()
}

#[tokio::test]
async fn a_closed_year_becomes_one_part_and_statements_stay_the_same() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let a = app.open_account("p1", "alice").await;
    let q = spawn_query(&app).await;
    // Daily income of December 2025 in two inserts (two parts), and of January's first days;
    // ClickHouse's own merges are held until the years to merge are named.
    q.ch_exec("SYSTEM STOP MERGES journal_by_account").await;
    for (from, days) in [("2025-12-01", 15), ("2025-12-16", 16), ("2026-01-01", 10)] {
        q.ch_exec(&format!(
            "INSERT INTO unit_journal (entry_id, account_id, fund_code, order_id, kind, units,
                                       effective_date, booked_at, txid)
             SELECT 900000 + toUInt64(toDate('{from}') + number), '{a}', '{FUND}', 0, 'income',
                    toDecimal64(1 + number % 3, 2) / 100, toDate('{from}') + number,
                    toDateTime(toDate('{from}') + number) + 3600, 1
             FROM numbers({days})"
        ))
        .await;
    }
    let ch = q.ch();
    assert_eq!(parts(&ch, "2025").await, 2);
    let path = format!("/v1/accounts/{a}/statement?from=2025-12-01&to=2026-01-10&balances=true");
    let (s, before) = q.get("p1", &path).await;
    assert_eq!(s, StatusCode::OK, "{before}");
    assert_eq!(before["entries"].as_array().unwrap().len(), 41);

    let day = |s: &str| s.parse::<NaiveDate>().unwrap();
    let closed = |d: &'static str| mmf_sync::compact::closed_years(&ch, day(d));
    assert!(
        closed("2026-01-07").await.unwrap().is_empty(),
        "rows may still arrive in the first week"
    );
    assert_eq!(closed("2026-01-08").await.unwrap(), vec![2025]);
    assert!(closed("2025-12-31").await.unwrap().is_empty());

    q.ch_exec("SYSTEM START MERGES journal_by_account").await;
    mmf_sync::compact::merge_closed_years(&ch, day("2026-01-08"))
        .await
        .unwrap();
    assert_eq!(parts(&ch, "2025").await, 1);
    assert!(closed("2026-01-09").await.unwrap().is_empty());

    let (s, after) = q.get("p1", &path).await;
    assert_eq!(s, StatusCode::OK, "{after}");
    let entries = |v: &Value| v["entries"].clone();
    assert_eq!(entries(&after), entries(&before));
    assert_eq!(after["closing_units"], before["closing_units"]);
    q.finish().await;
}
