//! Benchmarks: each prints its numbers next to a baseline measured in the same run.
//! `cargo run --release -p mmf-bench -- <name> [options]`; see BENCHMARKS.md.

mod cycle;
mod holdings;
mod peak;
mod query;
mod retention;
mod sync;
mod writes;

/// A task that runs until told to stop, then hands back what it gathered (API load clients).
pub struct Background<T> {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<T>,
}

impl<T: Send + 'static> Background<T> {
    /// Spawns `run(stop)`; `stop` turns true when [`Background::stop`] is called.
    pub fn start<F>(run: impl FnOnce(std::sync::Arc<std::sync::atomic::AtomicBool>) -> F) -> Self
    where
        F: std::future::Future<Output = T> + Send + 'static,
    {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = tokio::spawn(run(stop.clone()));
        Background { stop, task }
    }

    pub async fn stop(self) -> anyhow::Result<T> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(self.task.await?)
    }
}

/// The Postgres database benchmarks create their own databases from.
pub const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A `key=value` option of a benchmark, or its default.
pub fn opt(args: &[String], key: &str, default: u64) -> u64 {
    args.iter()
        .filter_map(|a| a.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(default)
}

/// The daily cycle's batching from `batch=`, `parallel=`, `pace=` (partners' p99 target in ms,
/// 0: never pause) and `max_pause=` (percent of a batch's time), with the service's defaults.
pub fn batching(args: &[String]) -> mmf_command::cycle::distribute::Batching {
    let d = mmf_command::config::CycleSettings::default();
    mmf_command::cycle::distribute::Batching {
        batch_size: opt(args, "batch", d.batch_size as u64) as usize,
        parallel: opt(args, "parallel", d.parallel as u64) as usize,
        pace: mmf_domain::pace::Pace {
            target: std::time::Duration::from_millis(opt(
                args,
                "pace",
                d.pace.target.as_millis() as u64,
            )),
            max_pct: opt(args, "max_pause", u64::from(d.pace.max_pct)) as u32,
        },
    }
}

/// A `key=value` option of a benchmark that is text, or its default.
pub fn opt_str<'a>(args: &'a [String], key: &str, default: &'a str) -> &'a str {
    args.iter()
        .filter_map(|a| a.split_once('='))
        .find(|(k, _)| *k == key)
        .map_or(default, |(_, v)| v)
}

pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(c)
}

/// Drops and creates a benchmark database; returns its URL.
pub async fn recreate(db: &str) -> anyhow::Result<String> {
    let admin = connect(ADMIN).await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await?;
    Ok(format!("postgres://postgres@127.0.0.1:5432/{db}"))
}

/// Drops and recreates a benchmark's ClickHouse database with every migration applied;
/// returns a client for it.
pub async fn recreate_ch(db: &str) -> anyhow::Result<clickhouse::Client> {
    let base = mmf_shared::ch::client(mmf_tests::sync::CH_URL);
    base.clone()
        .with_database("default")
        .query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute()
        .await?;
    mmf_shared::ch::migrate(&base, db).await?;
    Ok(mmf_shared::ch::client_for(mmf_tests::sync::CH_URL, db))
}

/// How long after `since` the sync stream `stream` had shipped `rows` rows (None after 15 min).
pub async fn shipped_after(
    pg: &tokio_postgres::Client,
    stream: &str,
    rows: i64,
    since: std::time::Instant,
) -> anyhow::Result<Option<f64>> {
    while since.elapsed() < std::time::Duration::from_secs(900) {
        let n: Option<i64> = pg
            .query_opt(
                "SELECT rows_shipped FROM sync_cursors WHERE stream = $1",
                &[&stream],
            )
            .await?
            .map(|r| r.get(0));
        if n.unwrap_or(0) >= rows {
            return Ok(Some(since.elapsed().as_secs_f64()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(None)
}

/// The fund, `accounts` accounts of partner p1 (`8` + 11 digits) and a large holding each, for
/// benchmarks that send orders through the API.
pub async fn seed_holders(
    pg: &tokio_postgres::Client,
    url: &str,
    partners: &str,
    accounts: u64,
) -> anyhow::Result<()> {
    mmf_shared::auth::seed_partners(&mmf_shared::db::db_pool(url, 1)?, partners).await?;
    let fund = mmf_tests::FUND;
    pg.batch_execute(&format!(
        "INSERT INTO funds (fund_code, name, max_subscription_per_order, max_subscription_per_day)
             VALUES ('{fund}', 'Bench MMF', 1000000, 100000000);
         INSERT INTO accounts (account_id, partner_id, customer_id, name, id_type, id_number, id_masked, opened_at)
             SELECT '8' || lpad(i::text, 11, '0'), 'p1', 'c' || i, 'Bench', 'resident_id', 'x', 'x', now()
             FROM generate_series(1, {accounts}) i;
         SELECT setval('account_no_seq', {accounts});
         INSERT INTO positions (account_id, fund_code, units)
             SELECT '8' || lpad(i::text, 11, '0'), '{fund}', 1000000 FROM generate_series(1, {accounts}) i;"
    ))
    .await?;
    Ok(())
}

/// Signs and sends [`random_order`] as partner `signer` at `now` to the command service at
/// `base`.
pub async fn send_random_order(
    http: &reqwest::Client,
    base: &str,
    signer: &mmf_tests::Signer,
    now: chrono::DateTime<chrono::Utc>,
    accounts: u64,
    rid: String,
) -> reqwest::Response {
    let (path, body) = random_order(accounts, rid);
    signer
        .send(
            http,
            reqwest::Method::POST,
            base,
            path,
            Some(&body),
            now,
            None,
        )
        .await
}

/// A random order of the steady load, request `rid`: 70% fast redemptions (payments, so the
/// daily cap never refuses them) and 30% subscriptions, 1 to 499 yuan, on one of `accounts`
/// seeded holders. Returns the path to POST and the body.
pub fn random_order(accounts: u64, rid: String) -> (&'static str, serde_json::Value) {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let acct = format!("8{:011}", rng.gen_range(1..=accounts));
    let amount = format!("{}.00", rng.gen_range(1..500));
    if rng.gen_bool(0.7) {
        (
            "/v1/redemptions",
            serde_json::json!({"request_id": rid, "account_id": acct, "fund_code": mmf_tests::FUND,
                "units": amount, "mode": "fast", "purpose": "payment"}),
        )
    } else {
        (
            "/v1/subscriptions",
            serde_json::json!({"request_id": rid, "account_id": acct, "fund_code": mmf_tests::FUND,
                "amount": amount}),
        )
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("orders") => writes::orders(rest).await,
        Some("accounts") => writes::accounts(rest).await,
        Some("query") => query::run(rest).await,
        Some("sync") => sync::run(rest).await,
        Some("cycle") => cycle::run(rest).await,
        Some("holdings") => holdings::run(rest).await,
        Some("retention") => retention::run(rest).await,
        Some("peak-day") => peak::run(rest).await,
        _ => {
            eprintln!(
                "usage: mmf-bench <orders|accounts|query|sync|cycle|holdings|retention|peak-day> [options]"
            );
            std::process::exit(2)
        }
    }
}
