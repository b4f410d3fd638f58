//! ClickHouse schema: migrations apply once, re-run harmlessly, apply once when several
//! services start at the same time, and the tables collapse replayed and updated rows as
//! queries with FINAL see them.

use mmf_shared::ch;

const CH_URL: &str = "http://127.0.0.1:8123";

async fn fresh_db(tag: &str) -> (clickhouse::Client, String) {
    let db = format!("mmf_t_schema_{tag}_{}", std::process::id());
    let base = ch::client(CH_URL);
    drop_db(&base, &db).await;
    (base, db)
}

async fn drop_db(base: &clickhouse::Client, db: &str) {
    base.clone()
        .with_database("default")
        .query(&format!("DROP DATABASE IF EXISTS `{db}`"))
        .execute()
        .await
        .unwrap();
}

#[tokio::test]
async fn migrations_apply_once_and_rerun_harmlessly() {
    let (base, db) = fresh_db("rerun").await;
    let first = ch::migrate(&base, &db).await.unwrap();
    let all: Vec<u32> = ch::MIGRATIONS.iter().map(|m| m.0).collect();
    assert_eq!(first, all);
    assert!(ch::migrate(&base, &db).await.unwrap().is_empty());

    let client = ch::client_for(CH_URL, &db);
    let tables: Vec<String> = client
        .query("SELECT name FROM system.tables WHERE database = ? ORDER BY name")
        .bind(&db)
        .fetch_all()
        .await
        .unwrap();
    for t in [
        "accounts",
        "daily_holdings",
        "fund_income",
        "funds",
        "journal_by_day",
        "orders",
        "unit_journal",
    ] {
        assert!(tables.iter().any(|n| n == t), "{t} missing in {tables:?}");
    }
    drop_db(&base, &db).await;
}

#[tokio::test]
async fn replayed_and_updated_orders_count_once() {
    let (base, db) = fresh_db("final").await;
    ch::migrate(&base, &db).await.unwrap();
    let client = ch::client_for(CH_URL, &db);
    // Order 7 accepted (v1), replayed, then confirmed (v2): one row, the confirmed one.
    for (status, version) in [("accepted", 1), ("accepted", 1), ("confirmed", 2)] {
        client
            .query(&format!(
                "INSERT INTO orders (order_id, account_id, fund_code, kind, amount, status, \
                 trade_date, accepted_at, txid, version) VALUES \
                 (7, 'A1', '000001', 'subscription', 100.25, '{status}', '2026-03-02', \
                 '2026-03-02 10:00:00', {version}, {version})"
            ))
            .execute()
            .await
            .unwrap();
    }
    let (n, status, amount): (u64, String, i64) = client
        .query("SELECT count(), any(status), toInt64(sum(amount) * 100) FROM orders FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((n, status.as_str(), amount), (1, "confirmed", 10025));
    drop_db(&base, &db).await;
}

/// Services started together each apply the migrations; the Postgres lock lets one run a file
/// and the others find it applied, so a backfill (V47 fills the fund totals of the days
/// already built) runs once. Set up as an upgrade finds it: days of holdings built, V47 not
/// applied yet.
#[tokio::test]
async fn migrations_started_together_apply_a_backfill_once() {
    let (base, db) = fresh_db("together").await;
    ch::migrate(&base, &db).await.unwrap();
    let client = ch::client_for(CH_URL, &db);
    for stmt in [
        "INSERT INTO daily_holdings (day, fund_code, account_id, units, units_in, units_out, \
         income, cum_income) VALUES ('2026-11-26', '000001', '000000000001', 100, 0, 0, 0.01, 0.01), \
         ('2026-11-26', '000001', '000000000002', 50, 0, 0, 0.01, 0.01), \
         ('2026-11-27', '000001', '000000000001', 100.01, 0, 0, 0.01, 0.02)",
        "DROP TABLE fund_holdings",
        "CREATE TABLE applied AS schema_migrations",
        "INSERT INTO applied SELECT * FROM schema_migrations WHERE version != 47",
        "DROP TABLE schema_migrations",
        "RENAME TABLE applied TO schema_migrations",
    ] {
        client.query(stmt).execute().await.unwrap();
    }
    let pg = mmf_tests::empty_db().await;
    let runs = (0..4).map(|_| ch::migrate_exclusive(&base, &db, &pg.url));
    let applied = futures::future::try_join_all(runs).await.unwrap();
    assert_eq!(
        applied.iter().filter(|a| a.as_slice() == [47]).count(),
        1,
        "{applied:?}"
    );
    let rows: Vec<(String, u64, u64)> = client
        .query(
            "SELECT toString(day), holders, toUInt64(units * 100) FROM fund_holdings \
             ORDER BY day",
        )
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        rows,
        [
            ("2026-11-26".to_string(), 2, 15000),
            ("2026-11-27".to_string(), 1, 10001)
        ]
    );
    drop_db(&base, &db).await;
}
