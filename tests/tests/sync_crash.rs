//! Crash safety: the `mmf-sync` process is killed with SIGKILL at random moments while 20,000
//! orders (and their unit movements and later status changes) are written by concurrent
//! transactions; after restarts, every order appears exactly once in ClickHouse query results
//! with its latest status, and units per account equal Postgres.

use mmf_tests::fresh_db;
use mmf_tests::sync::{ch, ch_u64, connect, seed_accounts, wait_until, SyncProcess, CH_URL};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ORDERS: usize = 20_000;
const WRITERS: usize = 4;
const PER_TX: usize = 50;
const ACCOUNTS: usize = 300;

/// One transaction: `PER_TX` subscriptions and their unit movements.
const WRITE: &str = "WITH o AS (
        INSERT INTO orders (partner_id, request_id, account_id, fund_code, kind, amount, status,
                            trade_date, accepted_at)
        SELECT 'p1', r, a, '000001', 'subscription', f::numeric / 100, 'accepted', '2026-11-26', now()
        FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(r, a, f)
        RETURNING order_id, account_id, amount)
    INSERT INTO unit_journal (account_id, fund_code, order_id, kind, units, effective_date, booked_at)
    SELECT account_id, '000001', order_id, 'subscription', amount, '2026-11-27', now() FROM o";

/// Confirms some accepted orders (new version and txid for each).
const CONFIRM: &str = "UPDATE orders SET status = 'confirmed', confirmed_at = now(),
        effective_date = '2026-11-27'
    WHERE order_id IN (SELECT order_id FROM orders WHERE status = 'accepted' LIMIT 40)";

/// Orders ClickHouse holds so far.
async fn delivered(ch: &clickhouse::Client) -> u64 {
    ch_u64(ch, "SELECT count() FROM orders FINAL").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_stream_of_orders_loses_and_duplicates_nothing() {
    let db = fresh_db().await;
    let setup = connect(&db).await;
    let accounts = Arc::new(seed_accounts(&setup, ACCOUNTS).await);
    let seed: u64 = rand::random();
    println!("kill schedule seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (db_url, accounts, done) = (db.url.clone(), accounts.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            let (pg, conn) = tokio_postgres::connect(&db_url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
            let per_writer = ORDERS / WRITERS;
            for batch in 0..per_writer / PER_TX {
                let mut reqs = Vec::with_capacity(PER_TX);
                let mut accts = Vec::with_capacity(PER_TX);
                let mut fen = Vec::with_capacity(PER_TX);
                for i in 0..PER_TX {
                    reqs.push(format!("w{w}-{batch}-{i}"));
                    accts.push(accounts[rng.gen_range(0..accounts.len())].clone());
                    fen.push(rng.gen_range(1..1_000_000i64));
                }
                pg.execute(WRITE, &[&reqs, &accts, &fen]).await.unwrap();
                if w == 0 && batch % 5 == 0 {
                    pg.execute(CONFIRM, &[]).await.unwrap();
                }
                // Spread the stream over a few seconds so that kills land inside it.
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            if w == 0 {
                done.store(true, Ordering::SeqCst);
            }
        }));
    }

    // Kill and restart the worker at random moments while the writers run; each incarnation
    // first delivers something, so every kill lands while the stream is being shipped.
    let ch = ch(&db);
    // Small batches: many cursor saves, so kills fall between insert and save too.
    let start = || SyncProcess::start_with(&db, CH_URL, &[("MMF_SYNC_BATCH_ROWS", "700")]);
    let mut kills = 0;
    let mut progress = Vec::new();
    let mut worker = start();
    while !done.load(Ordering::SeqCst) || kills < 5 {
        let before = progress.last().copied().unwrap_or(0);
        wait_until(
            "the restarted worker to deliver",
            Duration::from_secs(120),
            || async { delivered(&ch).await > before || done.load(Ordering::SeqCst) },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..250))).await;
        worker.kill9();
        kills += 1;
        progress.push(delivered(&ch).await);
        worker = start();
    }
    for w in writers {
        w.await.unwrap();
    }
    println!("killed the worker {kills} times; orders in ClickHouse at each kill: {progress:?}");
    // The kills happened while the stream was being shipped, not only before or after it.
    assert!(
        progress.iter().any(|&n| n > 0 && n < ORDERS as u64),
        "no kill landed mid-stream: {progress:?}"
    );

    let confirmed: i64 = setup
        .query_one(
            "SELECT count(*) FROM orders WHERE status = 'confirmed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    wait_until(
        "every order in ClickHouse",
        Duration::from_secs(180),
        || async {
            ch_u64(&ch, "SELECT count() FROM orders FINAL").await == ORDERS as u64
                && ch_u64(
                    &ch,
                    "SELECT count() FROM orders FINAL WHERE status = 'confirmed'",
                )
                .await
                    == confirmed as u64
                && ch_u64(&ch, "SELECT count() FROM unit_journal FINAL").await == ORDERS as u64
        },
    )
    .await;
    worker.kill9();

    // Exactly once in query results: no order id twice, no journal entry twice.
    assert_eq!(
        ch_u64(&ch, "SELECT uniqExact(order_id) FROM orders FINAL").await,
        ORDERS as u64
    );
    assert_eq!(
        ch_u64(&ch, "SELECT uniqExact(entry_id) FROM unit_journal FINAL").await,
        ORDERS as u64
    );
    let pg_units: BTreeMap<String, i64> = setup
        .query(
            "SELECT account_id, (sum(units) * 100)::bigint FROM unit_journal GROUP BY account_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let ch_units: BTreeMap<String, i64> = ch
        .query(
            "SELECT account_id, toInt64(sum(units) * 100) FROM unit_journal FINAL \
             GROUP BY account_id",
        )
        .fetch_all::<(String, i64)>()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(ch_units.len(), pg_units.len());
    assert_eq!(ch_units, pg_units);
    let pg_amount: i64 = setup
        .query_one("SELECT (sum(amount) * 100)::bigint FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        ch_u64(&ch, "SELECT toUInt64(sum(amount) * 100) FROM orders FINAL").await,
        pg_amount as u64
    );
}
