//! ClickHouse unreachable during writes: the worker reports itself unhealthy, retries with
//! backoff, and when ClickHouse is back the backlog drains with nothing lost or doubled.

use mmf_tests::fresh_db;
use mmf_tests::sync::{ch, ch_u64, connect, seed_accounts, sync_config, wait_until, Proxy};
use reqwest::StatusCode;
use std::time::Duration;

const WRITE: &str = "WITH o AS (
        INSERT INTO orders (partner_id, request_id, account_id, fund_code, kind, amount, status,
                            trade_date, accepted_at)
        SELECT 'p1', 'r' || g, $1, '000001', 'subscription', 1 + g % 100, 'accepted',
               '2026-11-26', now()
        FROM generate_series($2::int, $3::int) g
        RETURNING order_id, account_id, amount)
    INSERT INTO unit_journal (account_id, fund_code, order_id, kind, units, effective_date, booked_at)
    SELECT account_id, '000001', order_id, 'subscription', amount, '2026-11-27', now() FROM o";

#[tokio::test]
async fn backlog_drains_after_clickhouse_returns() {
    let db = fresh_db().await;
    let pg = connect(&db).await;
    let accounts = seed_accounts(&pg, 3).await;
    let proxy = Proxy::start("127.0.0.1:8123").await;
    let mut config = sync_config(&db);
    config.clickhouse_url = proxy.url.clone();
    config.batch_rows = 1_000;
    let worker = mmf_sync::start(config).await.unwrap();
    let health = format!("http://{}/health", worker.addr);
    let ch = ch(&db);

    pg.execute(WRITE, &[&accounts[0], &1i32, &1000i32])
        .await
        .unwrap();
    wait_until("first 1000 orders", Duration::from_secs(120), || async {
        ch_u64(&ch, "SELECT count() FROM orders FINAL").await == 1000
    })
    .await;

    proxy.set_up(false);
    for (i, from) in [1001i32, 2001, 3001].into_iter().enumerate() {
        pg.execute(WRITE, &[&accounts[i], &from, &(from + 999)])
            .await
            .unwrap();
    }
    wait_until(
        "worker to report ClickHouse down",
        Duration::from_secs(120),
        || async {
            reqwest::get(&health).await.unwrap().status() == StatusCode::SERVICE_UNAVAILABLE
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ch_u64(&ch, "SELECT count() FROM orders FINAL").await, 1000);

    proxy.set_up(true);
    wait_until("backlog drained", Duration::from_secs(120), || async {
        ch_u64(&ch, "SELECT count() FROM orders FINAL").await == 4000
            && ch_u64(&ch, "SELECT count() FROM unit_journal FINAL").await == 4000
    })
    .await;
    wait_until("healthy again", Duration::from_secs(120), || async {
        reqwest::get(&health).await.unwrap().status() == StatusCode::OK
    })
    .await;
    let pg_units: i64 = pg
        .query_one("SELECT (sum(units) * 100)::bigint FROM unit_journal", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        ch_u64(
            &ch,
            "SELECT toUInt64(sum(units) * 100) FROM unit_journal FINAL"
        )
        .await,
        pg_units as u64
    );
    assert_eq!(
        ch_u64(&ch, "SELECT uniqExact(order_id) FROM orders FINAL").await,
        4000
    );
    let metrics = reqwest::get(format!("http://{}/metrics", worker.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sync_errors_total{stream=\"orders\"}"),
        "failed batches are counted"
    );
    worker.stop().await;
}
