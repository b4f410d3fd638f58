//! Test harness: every test gets its own Postgres database cloned from a migrated template,
//! and talks to the real services over HTTP on port 0.

pub mod cycle;
pub mod instances;
pub mod query;
pub mod sync;

use chrono::{DateTime, Utc};
use mmf_command::{build_app, AppState, Config};
use mmf_shared::clock::Clock;
use mmf_shared::config::Common;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::Path;
use tokio_postgres::NoTls;

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const OPS_TOKEN: &str = "test-ops-token";
/// Two partners, so that isolation can be tested.
pub const PARTNERS: [(&str, &str); 2] = [("p1", "secret-1"), ("p2", "secret-2")];
/// The fund every scenario uses unless it sets up its own.
pub const FUND: &str = "000001";

pub fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        mmf_shared::telemetry::init();
    }
}

fn pg_url(db: &str) -> String {
    format!("postgres://postgres@127.0.0.1:5432/{db}")
}

async fn admin() -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(PG_ADMIN, NoTls)
        .await
        .expect("connect to Postgres");
    tokio::spawn(conn);
    c
}

/// The template's name changes whenever a migration file changes.
fn template_name() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/postgres");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("migrations dir")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        h.update(f.file_name().unwrap().to_string_lossy().as_bytes());
        h.update(std::fs::read(&f).unwrap());
    }
    format!("mmf_tpl_{}", &hex::encode(h.finalize())[..16])
}

pub struct TestDb {
    pub name: String,
    pub url: String,
}

/// A fresh, migrated database of its own.
pub async fn fresh_db() -> TestDb {
    let tpl = template_name();
    let admin = admin().await;
    // One process migrates the template; the others wait on the advisory lock.
    admin
        .execute("SELECT pg_advisory_lock(7243001)", &[])
        .await
        .unwrap();
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&tpl])
        .await
        .unwrap()
        .is_some();
    if !exists {
        let building = format!("{tpl}_building");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .await
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {building}"))
            .await
            .unwrap();
        mmf_shared::db::migrate(&pg_url(&building))
            .await
            .expect("migrate template");
        admin
            .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {tpl}"))
            .await
            .unwrap();
    }
    admin
        .execute("SELECT pg_advisory_unlock(7243001)", &[])
        .await
        .unwrap();
    let name = format!("mmf_t_{:016x}", rand::random::<u64>());
    admin
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {tpl}"))
        .await
        .expect("clone template");
    TestDb {
        url: pg_url(&name),
        name,
    }
}

/// A service binary of this build (`target/<profile>/<name>`, next to the test executable's
/// `deps/`). Tests never build: `scripts/test.sh` builds every binary before the suite starts.
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join(name);
    assert!(
        bin.exists(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`, as scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A new database with nothing in it (services migrate it when they start).
pub async fn empty_db() -> TestDb {
    let name = format!("mmf_t_{:016x}", rand::random::<u64>());
    admin()
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    TestDb {
        url: pg_url(&name),
        name,
    }
}

/// A fresh database migrated only up to `version`, as an earlier release left it.
pub async fn fresh_db_at(version: u32) -> TestDb {
    let db = empty_db().await;
    mmf_shared::db::migrate_to(&db.url, Some(version))
        .await
        .expect("migrate");
    db
}

/// 2026-11-26 is a Thursday; 10:00 in Shanghai is before the cut-off.
pub fn default_now() -> DateTime<Utc> {
    at("2026-11-26T10:00:00+08:00")
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// Signs partner requests; the timestamp comes from the clock the service reads.
#[derive(Clone)]
pub struct Signer {
    pub partner: String,
    pub secret: String,
}

impl Signer {
    pub fn new(partner: &str) -> Signer {
        let secret = PARTNERS
            .iter()
            .find(|(p, _)| *p == partner)
            .map(|(_, s)| *s)
            .unwrap_or("no-secret");
        Signer {
            partner: partner.into(),
            secret: secret.into(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        http: &reqwest::Client,
        method: Method,
        base: &str,
        path_and_query: &str,
        body: Option<&Value>,
        now: DateTime<Utc>,
        accept: Option<&str>,
    ) -> reqwest::Response {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let ts = now.timestamp();
        let sig = mmf_shared::auth::sign(&self.secret, method.as_str(), path_and_query, ts, &bytes);
        let mut req = http
            .request(method, format!("{base}{path_and_query}"))
            .header("X-Partner-Id", &self.partner)
            .header("X-Timestamp", ts.to_string())
            .header("X-Signature", sig);
        if body.is_some() {
            req = req.header("Content-Type", "application/json").body(bytes);
        }
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        req.send().await.expect("HTTP request")
    }
}

pub async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

/// The command service running in this process against its own database.
pub struct TestApp {
    pub base: String,
    pub addr: SocketAddr,
    pub db: TestDb,
    pub state: AppState,
    pub clock: Clock,
    pub http: reqwest::Client,
    /// The test's own connections, for seeding and checking rows directly.
    pub checks: deadpool_postgres::Pool,
}

/// A small pool of plain connections to `url`, for tests and benchmarks that write or read
/// rows directly (the services' own pools are typed).
pub fn pg_pool(url: &str, size: usize) -> deadpool_postgres::Pool {
    let cfg: tokio_postgres::Config = url.parse().expect("database URL");
    let mgr = deadpool_postgres::Manager::from_config(
        cfg,
        NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(mgr)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .expect("test pool")
}

pub fn test_config(db: &TestDb) -> Config {
    Config {
        common: Common {
            database_url: db.url.clone(),
            db_pool: 8,
            clickhouse_url: "http://127.0.0.1:8123".into(),
            clickhouse_db: db.name.clone(),
            ops_token: OPS_TOKEN.into(),
            simulated_clock: true,
        },
        addr: "127.0.0.1:0".into(),
        partners: PARTNERS
            .iter()
            .map(|(p, s)| format!("{p}:{s}"))
            .collect::<Vec<_>>()
            .join(","),
        writer_shards: 4,
        writer_batch: 64,
        cycle: Default::default(),
    }
}

/// Starts the command service on port 0 with a simulated clock frozen at [`default_now`].
pub async fn spawn_command() -> TestApp {
    init_logs();
    let db = fresh_db().await;
    spawn_command_on(db, test_config).await
}

pub async fn spawn_command_on(db: TestDb, config: impl FnOnce(&TestDb) -> Config) -> TestApp {
    let clock = Clock::frozen(default_now());
    let state = AppState::new(config(&db), clock.clone())
        .await
        .expect("start command service");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = build_app(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestApp {
        base: format!("http://{addr}"),
        addr,
        checks: pg_pool(&db.url, 4),
        db,
        state,
        clock,
        http: reqwest::Client::new(),
    }
}

/// What a test does over HTTP against a command service, wherever it runs (in this process or
/// as its own process): signed partner calls, ops calls, and the set-up most tests share.
#[allow(async_fn_in_trait)]
pub trait Api {
    fn base(&self) -> &str;
    fn http(&self) -> &reqwest::Client;
    /// The instant partner requests are signed with (the service's simulated clock).
    fn now(&self) -> DateTime<Utc>;

    async fn call(
        &self,
        partner: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let resp = Signer::new(partner)
            .send(
                self.http(),
                method,
                self.base(),
                path,
                body,
                self.now(),
                None,
            )
            .await;
        json_of(resp).await
    }

    async fn post(&self, partner: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(partner, Method::POST, path, Some(&body)).await
    }

    async fn get(&self, partner: &str, path: &str) -> (StatusCode, Value) {
        self.call(partner, Method::GET, path, None).await
    }

    async fn ops(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http()
            .request(method, format!("{}{path}", self.base()))
            .bearer_auth(OPS_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        json_of(resp).await
    }

    /// Creates [`FUND`] with generous limits and income policy `carry_forward`, and loads the
    /// 2026 and 2027 calendars (holidays: 2026-10-01..07 and 2027-01-01).
    async fn setup_fund(&self) {
        self.setup_fund_with("carry_forward").await
    }

    /// [`Api::setup_fund`] with another income policy.
    async fn setup_fund_with(&self, income_policy: &str) {
        self.create_fund(FUND, income_policy).await;
        let (s, b) = self
            .ops(
                Method::PUT,
                "/v1/ops/calendar/2026",
                json!({"holidays": ["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = self
            .ops(
                Method::PUT,
                "/v1/ops/calendar/2027",
                json!({"holidays": ["2027-01-01"]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// Creates (or updates) a fund with generous limits.
    async fn create_fund(&self, code: &str, income_policy: &str) {
        let (s, b) = self
            .ops(
                Method::PUT,
                &format!("/v1/ops/funds/{code}"),
                json!({"name": "Spare Cash MMF", "max_subscription_per_order": "1000000.00",
                       "max_subscription_per_day": "5000000.00", "fast_withdrawal_daily_cap": "10000.00",
                       "income_policy": income_policy}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// Opens an account for `customer` of `partner` and returns its account id.
    async fn open_account(&self, partner: &str, customer: &str) -> String {
        let id = valid_resident_id(customer);
        let (s, b) = self
            .post(
                partner,
                "/v1/accounts",
                json!({"request_id": format!("open-{customer}"), "customer_id": customer, "name": "Zhang San",
                       "id_type": "resident_id", "id_number": id, "mobile": "13800138000"}),
            )
            .await;
        assert!(s == StatusCode::CREATED || s == StatusCode::OK, "{s} {b}");
        b["account_id"].as_str().unwrap().to_string()
    }
}

impl Api for TestApp {
    fn base(&self) -> &str {
        &self.base
    }
    fn http(&self) -> &reqwest::Client {
        &self.http
    }
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

impl TestApp {
    /// Moves the simulated clock and stops it there (the service and the request signatures
    /// follow it), so that a scenario is exact to the second.
    pub fn set_now(&self, rfc3339: &str) {
        self.clock.freeze(at(rfc3339)).unwrap();
    }

    pub async fn pg(&self) -> deadpool_postgres::Object {
        self.checks.get().await.unwrap()
    }

    /// Sets a position's units directly, for tests that start from a holding.
    pub async fn give_units(&self, account: &str, units: &str) {
        let units: rust_decimal::Decimal = units.parse().unwrap();
        let c = self.pg().await;
        c.execute(
            "INSERT INTO positions (account_id, fund_code, units) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, fund_code) DO UPDATE SET units = EXCLUDED.units",
            &[&account, &FUND, &units],
        )
        .await
        .unwrap();
    }
}

/// A valid 18-character resident ID derived from any string (GB 11643 check digit).
pub fn valid_resident_id(seed: &str) -> String {
    let n: u64 = seed
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
        % 1000;
    mmf_domain::idcard::with_check_digit(&format!("11010519900101{n:03}"))
}

/// Row counts and sums of every table a partner write touches; equal before and after a
/// refused request means it wrote nothing.
pub async fn write_footprint(app: &TestApp) -> Vec<String> {
    let c = app.pg().await;
    let row = c
        .query_one(
            "SELECT (SELECT count(*) FROM accounts)::text, (SELECT count(*) FROM orders)::text,
                    (SELECT count(*) FROM idempotency)::text, (SELECT count(*) FROM unit_journal)::text,
                    (SELECT coalesce(sum(units), 0) || '/' || coalesce(sum(pending_subscription), 0) FROM positions),
                    (SELECT coalesce(sum(amount), 0)::text FROM daily_usage)",
            &[],
        )
        .await
        .unwrap();
    (0..6).map(|i| row.get::<_, String>(i)).collect()
}

/// Status, error code and field of a refused request, to compare with one tuple.
pub fn refusal((status, body): &(StatusCode, Value)) -> (u16, &str, &str) {
    (
        status.as_u16(),
        body["code"].as_str().unwrap_or(""),
        body["field"].as_str().unwrap_or(""),
    )
}
