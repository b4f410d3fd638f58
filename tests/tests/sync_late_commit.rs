//! The outbox-skip bug does not exist: a transaction that takes its ids (order id, entry id,
//! transaction id) first and commits after later transactions is still delivered, once.

use mmf_tests::sync::{ch, ch_u64, connect, seed_accounts, spawn_sync, wait_until};
use mmf_tests::{fresh_db, FUND};
use std::time::Duration;

const INSERT_ORDER: &str = "WITH o AS (
        INSERT INTO orders (partner_id, request_id, account_id, fund_code, kind, amount, status,
                            trade_date, accepted_at)
        VALUES ('p1', $1, $2, $3, 'subscription', $4, 'accepted', '2026-11-26', now())
        RETURNING order_id, account_id, fund_code, amount)
    INSERT INTO unit_journal (account_id, fund_code, order_id, kind, units, effective_date, booked_at)
    SELECT account_id, fund_code, order_id, 'subscription', amount, '2026-11-27', now() FROM o";

#[tokio::test]
async fn late_committing_transaction_is_delivered() {
    let db = fresh_db().await;
    let setup = connect(&db).await;
    let accounts = seed_accounts(&setup, 2).await;
    let amount: rust_decimal::Decimal = "100.00".parse().unwrap();

    // The early transaction takes the lower order id, entry id and txid, then waits.
    let mut early = connect(&db).await;
    let tx = early.transaction().await.unwrap();
    tx.execute(INSERT_ORDER, &[&"early", &accounts[0], &FUND, &amount])
        .await
        .unwrap();

    // Later transactions commit first.
    let late = connect(&db).await;
    for i in 0..3 {
        late.execute(
            INSERT_ORDER,
            &[&format!("late-{i}"), &accounts[1], &FUND, &amount],
        )
        .await
        .unwrap();
    }
    let ids: Vec<i64> = late
        .query("SELECT order_id FROM orders ORDER BY order_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids.len(), 3, "the early order is not visible yet");
    assert!(
        ids[0] > 1,
        "the early transaction holds the lowest order id"
    );

    let worker = spawn_sync(&db).await;
    let ch = ch(&db);
    // The accounts committed before the early transaction began ship; the later orders wait
    // behind the early one, so the cursor cannot pass it.
    wait_until(
        "accounts in ClickHouse",
        Duration::from_secs(20),
        || async { ch_u64(&ch, "SELECT count() FROM accounts FINAL").await == 2 },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ch_u64(&ch, "SELECT count() FROM orders").await, 0);

    tx.commit().await.unwrap();
    wait_until("all four orders", Duration::from_secs(20), || async {
        ch_u64(&ch, "SELECT count() FROM orders FINAL").await == 4
            && ch_u64(&ch, "SELECT count() FROM unit_journal FINAL").await == 4
    })
    .await;
    assert_eq!(
        ch_u64(
            &ch,
            "SELECT count() FROM orders FINAL WHERE request_id = 'early'"
        )
        .await,
        1
    );
    assert_eq!(
        ch_u64(
            &ch,
            "SELECT toUInt64(sum(units) * 100) FROM unit_journal FINAL"
        )
        .await,
        40_000
    );
    // Nothing is shipped twice in steady state either.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ch_u64(&ch, "SELECT count() FROM orders").await, 4);
    worker.stop().await;
}
