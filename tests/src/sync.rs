//! Harness for the sync worker: run it in-process or as the `mmf-sync` binary (for `kill -9`),
//! read the test's ClickHouse database, and seed the write side with plain SQL where a test
//! needs control over transactions.

use crate::{TestDb, FUND};
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CH_URL: &str = "http://127.0.0.1:8123";

/// The test's ClickHouse database (same name as its Postgres database).
pub fn ch(db: &TestDb) -> clickhouse::Client {
    mmf_shared::ch::client_for(CH_URL, &db.name)
}

/// Creates the test's ClickHouse database with every migration applied and returns a client
/// for it (the sync worker does the same on start; re-running is harmless).
pub async fn migrated_ch(db: &TestDb) -> clickhouse::Client {
    mmf_shared::ch::migrate(&mmf_shared::ch::client(CH_URL), &db.name)
        .await
        .expect("ClickHouse migrations");
    ch(db)
}

pub fn sync_config(db: &TestDb) -> mmf_sync::Config {
    let mut c = mmf_sync::Config::new(&db.url, CH_URL, &db.name);
    c.poll = Duration::from_millis(10);
    c
}

/// Starts the sync worker in this process on the test's databases.
pub async fn spawn_sync(db: &TestDb) -> mmf_sync::Worker {
    crate::init_logs();
    mmf_sync::start(sync_config(db))
        .await
        .expect("start sync worker")
}

/// Polls `check` every 20 ms until it returns true; panics after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A single number from ClickHouse (0 while the table does not exist yet).
pub async fn ch_u64(ch: &clickhouse::Client, sql: &str) -> u64 {
    ch.query(sql).fetch_one::<u64>().await.unwrap_or(0)
}

/// One day's holding of an account in a fund, amounts in fen: (account, fund, units, units in,
/// units out, income, cumulative income).
pub type Holding = (String, String, i64, i64, i64, i64, i64);

/// ClickHouse's `daily_holdings` of `day` (empty while the table does not exist yet).
pub async fn holdings(ch: &clickhouse::Client, day: &str) -> Vec<Holding> {
    ch.query(
        "SELECT account_id, fund_code, toInt64(units * 100), toInt64(units_in * 100), \
                toInt64(units_out * 100), toInt64(income * 100), toInt64(cum_income * 100) \
         FROM daily_holdings WHERE day = toDate(?) ORDER BY account_id, fund_code",
    )
    .bind(day)
    .fetch_all()
    .await
    .unwrap_or_default()
}

/// The holdings of `day` computed from Postgres's whole journal, independently of how the sync
/// worker builds them: every account and fund with a movement effective on or before `day`.
pub async fn journal_holdings(pg: &tokio_postgres::Client, day: &str) -> Vec<Holding> {
    let day: chrono::NaiveDate = day.parse().unwrap();
    pg.query(
        "SELECT account_id, fund_code,
                (sum(units) FILTER (WHERE effective_date <= $1) * 100)::bigint,
                (coalesce(sum(units) FILTER (WHERE effective_date = $1 AND kind <> 'income'
                                             AND units > 0), 0) * 100)::bigint,
                (coalesce(-sum(units) FILTER (WHERE effective_date = $1 AND kind <> 'income'
                                              AND units < 0), 0) * 100)::bigint,
                (coalesce(sum(units) FILTER (WHERE effective_date = $1 + 1
                                             AND kind = 'income'), 0) * 100)::bigint,
                (coalesce(sum(units) FILTER (WHERE effective_date <= $1 + 1
                                             AND kind = 'income'), 0) * 100)::bigint
         FROM unit_movements GROUP BY account_id, fund_code
         HAVING min(effective_date) <= $1 ORDER BY account_id, fund_code",
        &[&day],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
        )
    })
    .collect()
}

/// The latest day whose holdings the sync worker has built.
pub async fn holdings_built(pg: &tokio_postgres::Client) -> Option<chrono::NaiveDate> {
    pg.query_one("SELECT max(day) FROM holdings_days", &[])
        .await
        .unwrap()
        .get(0)
}

/// The last day whose per-person order flows are built.
pub async fn flows_built(pg: &tokio_postgres::Client) -> Option<chrono::NaiveDate> {
    pg.query_one("SELECT max(day) FROM flows_days", &[])
        .await
        .unwrap()
        .get(0)
}

/// Partner `p1`, fund [`FUND`] and `n` accounts `800000000001..`, written with SQL.
pub async fn seed_accounts(pg: &tokio_postgres::Client, n: usize) -> Vec<String> {
    pg.batch_execute(&format!(
        "INSERT INTO partners (partner_id, name, secret) VALUES ('p1', 'Partner 1', 's')
             ON CONFLICT DO NOTHING;
         INSERT INTO funds (fund_code, name, max_subscription_per_order, max_subscription_per_day)
             VALUES ('{FUND}', 'Spare Cash MMF', 1000000, 5000000) ON CONFLICT DO NOTHING;"
    ))
    .await
    .unwrap();
    let ids: Vec<String> = (1..=n).map(|i| format!("8{i:011}")).collect();
    pg.execute(
        "INSERT INTO accounts (account_id, partner_id, customer_id, name, id_type, id_number,
                               id_masked, mobile, opened_at)
         SELECT a, 'p1', 'c' || a, 'Li Si', 'resident_id', '110105199001010012',
                '110105********0012', '13800138000', now()
         FROM unnest($1::text[]) a",
        &[&ids],
    )
    .await
    .unwrap();
    ids
}

/// Connects to the test's Postgres database outside any pool.
pub async fn connect(db: &TestDb) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect to Postgres");
    tokio::spawn(conn);
    c
}

/// The `mmf-sync` binary of this build.
pub fn sync_binary() -> PathBuf {
    crate::binary("mmf-sync")
}

/// The worker as a separate process, so a test can `kill -9` it.
pub struct SyncProcess {
    child: Child,
}

impl SyncProcess {
    pub fn start(db: &TestDb, clickhouse_url: &str) -> SyncProcess {
        SyncProcess::start_with(db, clickhouse_url, &[])
    }

    /// Starts with extra environment variables (e.g. `MMF_SYNC_BATCH_ROWS`).
    pub fn start_with(db: &TestDb, clickhouse_url: &str, env: &[(&str, &str)]) -> SyncProcess {
        let child = Command::new(sync_binary())
            .envs(env.iter().copied())
            .env("MMF_DATABASE_URL", &db.url)
            .env("MMF_CLICKHOUSE_URL", clickhouse_url)
            .env("MMF_CLICKHOUSE_DB", &db.name)
            .env("MMF_SYNC_ADDR", "127.0.0.1:0")
            .env("MMF_SYNC_POLL_MS", "10")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start mmf-sync");
        SyncProcess { child }
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill mmf-sync");
        self.child.wait().expect("reap mmf-sync");
    }
}

impl Drop for SyncProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of ClickHouse that a test can take down (every connection is cut and
/// new ones are closed at once) and bring back, without touching the shared server.
pub struct Proxy {
    /// `http://127.0.0.1:<port>`, to use as the worker's ClickHouse URL.
    pub url: String,
    up: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(target: &'static str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (up, up_rx) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !*up_rx.borrow() {
                    continue; // dropped: the client sees the connection closed
                }
                let mut down = up_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy { url, up }
    }

    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}
