//! The outbox-skip bug does not exist: a transaction that takes its ids (order id, entry id,
//! transaction id) first and commits after later transactions is still delivered, once; and
//! while it is open, the transactions that committed after it are delivered anyway.

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
    let early_txid: String = tx
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .unwrap()
        .get(0);

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
    // The later orders arrive although the early transaction holds the watermark back...
    wait_until("the later orders", Duration::from_secs(120), || async {
        ch_u64(&ch, "SELECT count() FROM orders FINAL").await == 3
            && ch_u64(&ch, "SELECT count() FROM unit_journal FINAL").await == 3
    })
    .await;
    // ...while the saved cursor stays below it.
    let cursor_txid: i64 = late
        .query_one(
            "SELECT txid::text::bigint FROM sync_cursors WHERE stream = 'orders'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let early_txid: i64 = early_txid.parse().unwrap();
    assert!(
        cursor_txid < early_txid,
        "cursor {cursor_txid} passed the open transaction {early_txid}"
    );

    tx.commit().await.unwrap();
    wait_until("all four orders", Duration::from_secs(120), || async {
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
    assert_eq!(
        ch_u64(&ch, "SELECT uniqExact(order_id) FROM orders FINAL").await,
        4
    );
    worker.stop().await;
}

/// An even older transaction (here in another database: transaction ids are cluster-wide)
/// keeps the watermark still for the whole test. The late committer is delivered when it
/// commits, not when the older transaction ends.
#[tokio::test]
async fn late_commit_is_delivered_while_an_older_transaction_runs() {
    let db = fresh_db().await;
    let setup = connect(&db).await;
    let accounts = seed_accounts(&setup, 2).await;
    let amount: rust_decimal::Decimal = "100.00".parse().unwrap();

    // The worker is reading (it has shipped the accounts) before the older transaction begins.
    let worker = spawn_sync(&db).await;
    let ch = ch(&db);
    wait_until("the accounts", Duration::from_secs(120), || async {
        ch_u64(&ch, "SELECT count() FROM accounts FINAL").await == 2
    })
    .await;
    let (holder, conn) = tokio_postgres::connect(mmf_tests::PG_ADMIN, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    holder
        .batch_execute("BEGIN; SELECT pg_current_xact_id();")
        .await
        .unwrap();

    let mut early = connect(&db).await;
    let tx = early.transaction().await.unwrap();
    tx.execute(INSERT_ORDER, &[&"early", &accounts[0], &FUND, &amount])
        .await
        .unwrap();
    let late = connect(&db).await;
    for i in 0..3 {
        late.execute(
            INSERT_ORDER,
            &[&format!("late-{i}"), &accounts[1], &FUND, &amount],
        )
        .await
        .unwrap();
    }

    // Other tests' transactions on the same cluster can hold the above-watermark shipping for
    // a while; the holder below keeps running throughout, so any delivery proves the point.
    wait_until("the later orders", Duration::from_secs(60), || async {
        ch_u64(&ch, "SELECT count() FROM orders FINAL").await == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.commit().await.unwrap();
    wait_until(
        "the early order while the older transaction runs",
        Duration::from_secs(60),
        || async {
            ch_u64(&ch, "SELECT count() FROM orders FINAL").await == 4
                && ch_u64(&ch, "SELECT count() FROM unit_journal FINAL").await == 4
        },
    )
    .await;
    let cursor_rows: i64 = late
        .query_one(
            "SELECT rows_shipped FROM sync_cursors WHERE stream = 'orders'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        cursor_rows, 0,
        "the saved cursor cannot pass the older transaction"
    );

    holder.batch_execute("ROLLBACK").await.unwrap();
    wait_until(
        "the saved cursor to catch up",
        Duration::from_secs(120),
        || async {
            let n: i64 = late
                .query_one(
                    "SELECT rows_shipped FROM sync_cursors WHERE stream = 'orders'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            n == 4
        },
    )
    .await;
    assert_eq!(
        ch_u64(&ch, "SELECT uniqExact(order_id) FROM orders FINAL").await,
        4
    );
    assert_eq!(ch_u64(&ch, "SELECT count() FROM orders FINAL").await, 4);
    worker.stop().await;
}
