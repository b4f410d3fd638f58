//! Harness for the read side: the query service in this process on the test's Postgres
//! database and its own ClickHouse database, with the sync worker running in-process, plus a
//! stand-in for the daily cycle until it lands: `confirm`/`distribute_income` change Postgres
//! as the cycle does (and publish the day's income to ClickHouse).

use crate::sync::{ch_u64, spawn_sync, wait_until};
use crate::{json_of, Signer, TestApp, OPS_TOKEN};
use chrono::{NaiveDate, Utc};
use mmf_query::{build_app, AppState, Config};
use mmf_shared::config::Common;
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
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

/// Waits until the sync worker has shipped every row now in Postgres: journal entries,
/// accounts, and the latest version of every order and fund.
pub async fn ship(app: &TestApp, q: &QueryApp) {
    let pg = app.pg().await;
    let row = pg
        .query_one(
            "SELECT (SELECT count(*) FROM unit_journal)::bigint,
                    (SELECT count(*) FROM accounts)::bigint,
                    (SELECT coalesce(sum(version), 0) FROM orders)::bigint,
                    (SELECT coalesce(sum(version), 0) FROM funds)::bigint",
            &[],
        )
        .await
        .unwrap();
    let want: Vec<u64> = (0..4).map(|i| row.get::<_, i64>(i) as u64).collect();
    let ch = q.ch();
    wait_until("the sync worker to catch up", Duration::from_secs(30), || {
        let ch = ch.clone();
        let want = want.clone();
        async move {
            let got = [
                ch_u64(&ch, "SELECT uniqExact(entry_id) FROM unit_journal").await,
                ch_u64(&ch, "SELECT uniqExact(account_id) FROM accounts").await,
                ch_u64(&ch, "SELECT toUInt64(sum(v)) FROM (SELECT order_id, max(version) AS v FROM orders GROUP BY order_id)").await,
                ch_u64(&ch, "SELECT toUInt64(sum(v)) FROM (SELECT fund_code, max(version) AS v FROM funds GROUP BY fund_code)").await,
            ];
            got[..] == want[..]
        }
    })
    .await;
}

/// Confirms trade date `t` as the daily cycle does: subscriptions credit units effective
/// `effective` (the next trading day), normal redemptions are marked confirmed.
pub async fn confirm(app: &TestApp, t: NaiveDate, effective: NaiveDate) {
    let now = app.clock.now();
    let mut pg = app.pg().await;
    let tx = pg.transaction().await.unwrap();
    tx.execute(
        "WITH o AS (
            UPDATE orders SET status = 'confirmed', confirmed_at = $2, effective_date = $3
            WHERE trade_date = $1 AND status = 'accepted' AND kind = 'subscription'
            RETURNING account_id, fund_code, order_id, amount
         ), per_position AS (
            SELECT account_id, fund_code, sum(amount) AS amount FROM o GROUP BY 1, 2
         ), p AS (
            UPDATE positions p SET units = p.units + x.amount,
                   pending_subscription = p.pending_subscription - x.amount
            FROM per_position x WHERE p.account_id = x.account_id AND p.fund_code = x.fund_code
         )
         INSERT INTO unit_journal (account_id, fund_code, order_id, kind, units, effective_date, booked_at)
         SELECT account_id, fund_code, order_id, 'subscription', amount, $3, $2 FROM o",
        &[&t, &now, &effective],
    )
    .await
    .unwrap();
    tx.execute(
        "UPDATE orders SET status = 'confirmed', confirmed_at = $2
         WHERE trade_date = $1 AND status = 'accepted' AND kind = 'redemption'",
        &[&t, &now],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Distributes income for calendar day `day` at `per10k` (carry_forward policy) as the daily
/// cycle does, and publishes the day's per-10k income and 7-day yield to ClickHouse.
pub async fn distribute_income(
    app: &TestApp,
    q: &QueryApp,
    fund: &str,
    day: NaiveDate,
    per10k: &str,
    yield_7d: Option<&str>,
) {
    let per10k: Decimal = per10k.parse().unwrap();
    let now = app.clock.now();
    let next = day.succ_opt().unwrap();
    let mut pg = app.pg().await;
    let tx = pg.transaction().await.unwrap();
    tx.execute(
        "WITH eligible AS (
            SELECT p.account_id, p.fund_code,
                   p.carry + coalesce((SELECT sum(j.units) FROM unit_journal j
                        WHERE j.account_id = p.account_id AND j.fund_code = p.fund_code
                          AND j.effective_date <= $2), 0) * $3 / 10000 AS accrued
            FROM positions p WHERE p.fund_code = $1
         ), paid AS (
            SELECT account_id, fund_code, accrued, trunc(accrued, 2) AS paid FROM eligible
         ), upd AS (
            UPDATE positions p SET units = p.units + x.paid, cum_income = p.cum_income + x.paid,
                   last_income = x.paid, last_income_date = $2, carry = x.accrued - x.paid
            FROM paid x WHERE p.account_id = x.account_id AND p.fund_code = x.fund_code
         )
         INSERT INTO unit_journal (account_id, fund_code, kind, units, effective_date, booked_at)
         SELECT account_id, fund_code, 'income', paid, $4, $5 FROM paid WHERE paid <> 0",
        &[&fund, &day, &per10k, &next, &now],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let y = yield_7d
        .map(|y| y.to_string())
        .unwrap_or_else(|| "NULL".into());
    q.ch_exec(&format!(
        "INSERT INTO fund_income (fund_code, day, per10k, yield_7d, txid, version) \
         VALUES ('{fund}', '{day}', {per10k}, {y}, 1, {})",
        Utc::now().timestamp()
    ))
    .await;
}
