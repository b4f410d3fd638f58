//! The daily cycle yields to partners (docs/decisions/0037-cycle-pacing.md): every API instance
//! publishes its partner requests' p99 to Postgres, and the cycle's batches pause while a fresh
//! reading is above the target — and not otherwise.

use mmf_tests::cycle::*;
use mmf_tests::query::spawn_query;
use mmf_tests::sync::wait_until;
use mmf_tests::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

/// Fresh readings with partner requests in them, by instance prefix (`command@`, `query@`, …).
async fn readings(app: &TestApp, prefix: &str) -> Vec<(i64, i64)> {
    app.pg()
        .await
        .query(
            "SELECT p99_us, requests FROM api_latency
             WHERE instance LIKE $1 || '%' AND requests > 0 AND measured_at > now() - interval '3 seconds'",
            &[&prefix],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// True once the command instance has published a window that began after `since` (so every
/// partner request before it is published) and no reading with partner requests is fresh.
async fn quiet_since(app: &TestApp, since: &str) -> bool {
    app.pg()
        .await
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM api_latency WHERE instance LIKE 'command@%'
                              AND measured_at > $1::text::timestamptz + interval '1500 ms')
                AND NOT EXISTS (SELECT 1 FROM api_latency WHERE requests > 0
                              AND measured_at > now() - interval '3 seconds')",
            &[&since],
        )
        .await
        .unwrap()
        .get(0)
}

async fn db_now(app: &TestApp) -> String {
    app.pg()
        .await
        .query_one("SELECT now()::text", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn command_and_query_instances_publish_their_partner_latency() {
    // A row of an instance gone for two days is deleted when an instance starts.
    let db = fresh_db().await;
    pg_pool(&db.url, 1)
        .get()
        .await
        .unwrap()
        .execute(
            "INSERT INTO api_latency VALUES ('gone@old', 5000, 7, now() - interval '2 days')",
            &[],
        )
        .await
        .unwrap();
    let app = spawn_command_on(db, test_config).await;
    wait_until(
        "the gone instance's row deleted",
        Duration::from_secs(30),
        || async {
            app.pg()
                .await
                .query("SELECT 1 FROM api_latency WHERE instance = 'gone@old'", &[])
                .await
                .unwrap()
                .is_empty()
        },
    )
    .await;
    app.setup_fund().await;
    let query = spawn_query(&app).await;
    // Client round trips bound what the servers can have measured.
    let mut slowest = Duration::ZERO;
    let mut accounts = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        accounts.push(app.open_account("p1", &format!("lat-{i}")).await);
        slowest = slowest.max(started.elapsed());
    }
    wait_until("a command reading", Duration::from_secs(30), || async {
        !readings(&app, "command@").await.is_empty()
    })
    .await;
    for (p99_us, requests) in readings(&app, "command@").await {
        assert!(p99_us > 0 && requests <= 5, "{p99_us} µs over {requests}");
        assert!(
            p99_us as u128 <= slowest.as_micros(),
            "server p99 {p99_us} µs, slowest round trip {slowest:?}"
        );
    }
    for a in &accounts {
        let (s, b) = query
            .get("p1", &format!("/v1/accounts/{a}/balance?fund_code={FUND}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    wait_until("a query reading", Duration::from_secs(30), || async {
        !readings(&app, "query@").await.is_empty()
    })
    .await;
    // Operations' calls are not partners waiting: with only ops calls, readings go stale.
    let since = db_now(&app).await;
    wait_until(
        "partner readings to go stale",
        Duration::from_secs(60),
        || async {
            let (s, b) = app
                .ops(
                    reqwest::Method::GET,
                    &format!("/v1/ops/funds/{FUND}/income/2026-11-27"),
                    json!(null),
                )
                .await;
            assert!(s == StatusCode::OK || s == StatusCode::NOT_FOUND, "{s} {b}");
            quiet_since(&app, &since).await
        },
    )
    .await;
}

/// Pretends to be an API instance whose partners wait `p99`, publishing every 200 ms until
/// dropped.
struct SlowInstance(tokio::task::JoinHandle<()>);

impl SlowInstance {
    fn start(app: &TestApp, p99: Duration) -> SlowInstance {
        let pool = app.checks.clone();
        SlowInstance(tokio::spawn(async move {
            loop {
                pool.get()
                    .await
                    .unwrap()
                    .execute(
                        "INSERT INTO api_latency (instance, p99_us, requests, measured_at)
                         VALUES ('slow@test', $1, 50, now())
                         ON CONFLICT (instance) DO UPDATE SET p99_us = EXCLUDED.p99_us,
                             requests = EXCLUDED.requests, measured_at = EXCLUDED.measured_at",
                        &[&(p99.as_micros() as i64)],
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }))
    }
}

impl Drop for SlowInstance {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn paused(summary: &serde_json::Value) -> (u64, u64) {
    let confirm = summary["confirmed"]["paused_ms"].as_u64().unwrap();
    let distribute = summary["distributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["paused_ms"].as_u64().unwrap())
        .sum();
    (confirm, distribute)
}

#[tokio::test]
async fn the_cycle_pauses_while_partners_wait_and_runs_at_full_speed_otherwise() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let mut accounts = Vec::new();
    for i in 0..12 {
        let a = app.open_account("p1", &format!("pace-{i}")).await;
        subscribe(&app, "p1", &a, &format!("{}.00", 1000 + i)).await;
        accounts.push(a);
    }
    // Nobody is waiting once this test's own requests are no longer fresh.
    let since = db_now(&app).await;
    wait_until(
        "partner readings to go stale",
        Duration::from_secs(60),
        || async { quiet_since(&app, &since).await },
    )
    .await;
    app.set_now("2026-11-27T09:00:00+08:00");
    let options = json!({"batch_size": 1, "parallel": 2, "api_p99_ms": 100});
    let (s, calm) = run_cycle(&app, "2026-11-26", options.clone()).await;
    assert_eq!(s, StatusCode::OK, "{calm}");
    assert_eq!(calm["confirmed"]["subscriptions"], 12, "{calm}");
    assert_eq!(paused(&calm), (0, 0), "no partner waited: {calm}");

    // Trade date 11-27: more subscriptions; income of 11-27 is distributed by its cycle.
    for a in &accounts {
        subscribe(&app, "p1", a, "10.00").await;
    }
    publish(&app, "2026-11-27", "0.7123").await;
    publish(&app, "2026-11-28", "0.7001").await;
    publish(&app, "2026-11-29", "0.6999").await;
    app.set_now("2026-11-30T09:00:00+08:00");
    let slow = SlowInstance::start(&app, Duration::from_secs(2));
    wait_until(
        "the slow instance's reading",
        Duration::from_secs(30),
        || async { !readings(&app, "slow@").await.is_empty() },
    )
    .await;
    let (s, busy) = run_cycle(&app, "2026-11-27", options).await;
    drop(slow);
    assert_eq!(s, StatusCode::OK, "{busy}");
    assert_eq!(busy["status"], "completed", "{busy}");
    assert_eq!(busy["confirmed"]["subscriptions"], 12, "{busy}");
    assert_eq!(busy["distributions"].as_array().unwrap().len(), 3, "{busy}");
    let (confirm, distribute) = paused(&busy);
    assert!(confirm > 0 && distribute > 0, "partners waited: {busy}");
    check_invariants(&app).await;
}
