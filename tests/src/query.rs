//! Harness for the read side: the query service in this process on the test's Postgres
//! database and its own ClickHouse database, with the sync worker running in-process; a
//! scenario that trips every report, driven through the command API and the daily cycle.

use crate::sync::{ch_u64, spawn_sync, wait_until};
use crate::{json_of, Api, Signer, TestApp, OPS_TOKEN};
use mmf_query::{build_app, AppState, Config};
use mmf_shared::config::Common;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

pub use crate::sync::CH_URL;

pub struct QueryApp {
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
    /// The ClickHouse database (named like the Postgres one).
    pub ch_db: String,
    pub sync: mmf_sync::Worker,
}

/// Starts the query service on port 0 against `app`'s Postgres database, sharing its
/// simulated clock, with the ClickHouse schema (history + report views) migrated and the sync
/// worker shipping rows.
pub async fn spawn_query(app: &TestApp) -> QueryApp {
    let ch_db = app.db.name.clone();
    mmf_shared::ch::migrate(&mmf_shared::ch::client(CH_URL), &ch_db)
        .await
        .expect("ClickHouse migrations");
    let config = Config {
        common: Common {
            database_url: app.db.url.clone(),
            db_pool: 4,
            clickhouse_url: CH_URL.into(),
            clickhouse_db: ch_db.clone(),
            ops_token: OPS_TOKEN.into(),
            simulated_clock: true,
        },
        addr: "127.0.0.1:0".into(),
        statement_max_days: 366,
        cursor_key: mmf_query::DEV_CURSOR_KEY.into(),
    };
    let state = AppState::new(config, app.clock.clone()).expect("query state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = build_app(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    QueryApp {
        base: format!("http://{addr}"),
        state,
        http: reqwest::Client::new(),
        ch_db,
        sync: spawn_sync(&app.db).await,
    }
}

impl QueryApp {
    /// A signed partner GET; `accept` sets the Accept header. Returns status and body text.
    pub async fn get_raw(
        &self,
        partner: &str,
        path: &str,
        accept: Option<&str>,
    ) -> (StatusCode, String) {
        let resp = Signer::new(partner)
            .send(
                &self.http,
                Method::GET,
                &self.base,
                path,
                None,
                self.state.clock.now(),
                accept,
            )
            .await;
        (resp.status(), resp.text().await.unwrap())
    }

    pub async fn get(&self, partner: &str, path: &str) -> (StatusCode, Value) {
        let resp = Signer::new(partner)
            .send(
                &self.http,
                Method::GET,
                &self.base,
                path,
                None,
                self.state.clock.now(),
                None,
            )
            .await;
        json_of(resp).await
    }

    /// A GET with the ops bearer token (reports).
    pub async fn ops_get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(OPS_TOKEN)
            .send()
            .await
            .unwrap();
        json_of(resp).await
    }

    pub fn ch(&self) -> clickhouse::Client {
        mmf_shared::ch::client_for(CH_URL, &self.ch_db)
    }

    /// Runs one statement on this test's ClickHouse database.
    pub async fn ch_exec(&self, sql: &str) {
        self.ch()
            .query(sql)
            .execute()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Stops the sync worker and drops the ClickHouse database.
    pub async fn finish(self) {
        self.sync.stop().await;
        mmf_shared::ch::client(CH_URL)
            .query(&format!("DROP DATABASE IF EXISTS `{}`", self.ch_db))
            .execute()
            .await
            .unwrap();
    }
}

/// Waits until the sync worker has shipped every row now in Postgres: unit movements,
/// accounts, and the latest version of every order, fund and published income.
pub async fn ship(app: &TestApp, q: &QueryApp) {
    let pg = app.pg().await;
    let row = pg
        .query_one(
            "SELECT (SELECT count(*) FROM unit_movements)::bigint,
                    (SELECT count(*) FROM accounts)::bigint,
                    (SELECT coalesce(sum(version), 0) FROM orders)::bigint,
                    (SELECT coalesce(sum(version), 0) FROM funds)::bigint,
                    (SELECT coalesce(sum(version), 0) FROM fund_income)::bigint",
            &[],
        )
        .await
        .unwrap();
    let want: Vec<u64> = (0..5).map(|i| row.get::<_, i64>(i) as u64).collect();
    let ch = q.ch();
    // Generous: on a loaded 2-core machine (the whole suite in parallel) shipping can take a
    // while; the wait ends as soon as everything is there.
    wait_until("the sync worker to catch up", Duration::from_secs(120), || {
        let ch = ch.clone();
        let want = want.clone();
        async move {
            let got = [
                ch_u64(&ch, "SELECT uniqExact(entry_id, account_id) FROM unit_journal").await,
                ch_u64(&ch, "SELECT uniqExact(account_id) FROM accounts").await,
                ch_u64(&ch, "SELECT toUInt64(sum(v)) FROM (SELECT order_id, max(version) AS v FROM orders GROUP BY order_id)").await,
                ch_u64(&ch, "SELECT toUInt64(sum(v)) FROM (SELECT fund_code, max(version) AS v FROM funds GROUP BY fund_code)").await,
                ch_u64(&ch, "SELECT toUInt64(sum(v)) FROM (SELECT fund_code, day, max(version) AS v FROM fund_income GROUP BY fund_code, day)").await,
            ];
            got[..] == want[..]
        }
    })
    .await;
}

/// The accounts of [`report_scenario`].
pub struct Scenario {
    pub app: TestApp,
    pub q: QueryApp,
    /// p1's customers c1, c2, c3 and p2's customer c4.
    pub a: String,
    pub b: String,
    pub c: String,
    pub d: String,
    /// The 7-day yield the cycle computed for Friday 2026-11-27.
    pub yield_7d: String,
}

/// A two-day scenario that trips every report, shipped to ClickHouse. Fund [`crate::FUND`]
/// with a fast-withdrawal cap of 100,000.00.
///
/// Income of 1.0000 per 10k is published for 2026-11-20 .. 11-27 (so Friday has a 7-day yield).
/// Thu 2026-11-26: A subscribes 600,000 (large transfer), B 460,000 (just below 500,000),
/// C 60,000, D (partner p2) 1,000. Fri 09:00 cycle for Thursday: confirmed, effective Fri.
/// Fri 2026-11-27: B subscribes 470,000 (below the threshold again), A redeems 100,000
/// (normal, effective Mon 2026-11-30, the next trading day) and fast-withdraws 5,000, C fast-withdraws 55,000 (cash-like, and out
/// within days of coming in), D pays 200 from the balance (fast, payment).
/// Sat 09:00 cycle for Friday: Friday's income (A 59.50, B 46.00, C 0.50, D 0.08), Friday
/// confirmed (B's units effective Mon 2026-11-30).
pub async fn report_scenario() -> Scenario {
    let app = crate::spawn_command().await;
    app.setup_fund().await;
    let (s, body) = app
        .ops(
            Method::PUT,
            &format!("/v1/ops/funds/{}", crate::FUND),
            serde_json::json!({"name": "Spare Cash MMF", "max_subscription_per_order": "1000000.00",
                   "max_subscription_per_day": "5000000.00", "fast_withdrawal_daily_cap": "100000.00"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let q = spawn_query(&app).await;
    let a = app.open_account("p1", "c1").await;
    let b = app.open_account("p1", "c2").await;
    let c = app.open_account("p1", "c3").await;
    let d = app.open_account("p2", "c4").await;
    let order = |partner: &'static str, path: &'static str, body: Value| {
        let app = &app;
        async move {
            let (s, resp) = app.post(partner, path, body).await;
            assert_eq!(s, StatusCode::CREATED, "{resp}");
        }
    };
    let sub = |req: &str, acct: &str, amount: &str| serde_json::json!({"request_id": req, "account_id": acct, "fund_code": crate::FUND, "amount": amount});
    let red = |req: &str, acct: &str, units: &str, mode: &str, purpose: Option<&str>| {
        let mut v = serde_json::json!({"request_id": req, "account_id": acct, "fund_code": crate::FUND,
                                       "units": units, "mode": mode});
        if let Some(p) = purpose {
            v["purpose"] = p.into();
        }
        v
    };
    for day in 20..=26 {
        crate::cycle::publish(&app, &format!("2026-11-{day}"), "1.0000").await;
    }
    order("p1", "/v1/subscriptions", sub("a1", &a, "600000.00")).await;
    order("p1", "/v1/subscriptions", sub("b1", &b, "460000.00")).await;
    order("p1", "/v1/subscriptions", sub("c1", &c, "60000.00")).await;
    order("p2", "/v1/subscriptions", sub("d1", &d, "1000.00")).await;
    app.set_now("2026-11-27T09:00:00+08:00");
    crate::cycle::cycle(&app, "2026-11-26").await;
    app.set_now("2026-11-27T10:00:00+08:00");
    order("p1", "/v1/subscriptions", sub("b2", &b, "470000.00")).await;
    order(
        "p1",
        "/v1/redemptions",
        red("a2", &a, "100000.00", "normal", None),
    )
    .await;
    order(
        "p1",
        "/v1/redemptions",
        red("a3", &a, "5000.00", "fast", Some("withdrawal")),
    )
    .await;
    order(
        "p1",
        "/v1/redemptions",
        red("c2", &c, "55000.00", "fast", Some("withdrawal")),
    )
    .await;
    order(
        "p2",
        "/v1/redemptions",
        red("d2", &d, "200.00", "fast", Some("payment")),
    )
    .await;
    app.set_now("2026-11-28T09:00:00+08:00");
    let published = crate::cycle::publish(&app, "2026-11-27", "1.0000").await;
    let yield_7d = published["yield_7d"]
        .as_str()
        .expect("7-day yield")
        .to_string();
    crate::cycle::cycle(&app, "2026-11-27").await;
    ship(&app, &q).await;
    // Income is distributed through Friday: the daily holdings follow.
    let pg = app.pg().await;
    crate::sync::wait_until("holdings of 11-27", Duration::from_secs(120), || async {
        crate::sync::holdings_built(&pg).await == Some("2026-11-27".parse().unwrap())
    })
    .await;
    Scenario {
        app,
        q,
        a,
        b,
        c,
        d,
        yield_7d,
    }
}
