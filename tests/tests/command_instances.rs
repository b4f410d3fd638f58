//! Money rules hold with any number of command instances: two `mmf-command` processes on one
//! database receive conflicting requests at the same instant, and exactly the feasible maximum
//! is accepted (refusing too much would be as wrong as accepting too much), with no 5xx.

use futures::future::join_all;
use mmf_tests::cycle::{credit_units, run_cycle};
use mmf_tests::instances::CommandProcess;
use mmf_tests::sync::wait_until;
use mmf_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Two instances on a fresh database with [`FUND`] (fast-withdrawal cap 10,000.00) set up
/// through the first before the second starts (so that what the races below test is the
/// rules, not how fast the second instance learns of the fund).
async fn two_instances() -> (TestDb, CommandProcess, CommandProcess) {
    let db = fresh_db().await;
    let a = CommandProcess::start(&db).await;
    a.setup_fund().await;
    let b = CommandProcess::start(&db).await;
    (db, a, b)
}

async fn pg(db: &TestDb) -> tokio_postgres::Client {
    mmf_tests::sync::connect(db).await
}

/// Sends every request at once, alternating between the instances; returns the answers in
/// order. No answer may be a 5xx.
async fn split(
    a: &CommandProcess,
    b: &CommandProcess,
    path: &str,
    bodies: Vec<Value>,
) -> Vec<(StatusCode, Value)> {
    let answers = join_all(bodies.into_iter().enumerate().map(|(i, body)| async move {
        let api: &CommandProcess = if i % 2 == 0 { a } else { b };
        api.post("p1", path, body).await
    }))
    .await;
    for (s, body) in &answers {
        assert!(!s.is_server_error(), "{s} {body}");
    }
    answers
}

fn accepted(answers: &[(StatusCode, Value)]) -> usize {
    answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count()
}

fn refused_with(answers: &[(StatusCode, Value)], code: &str) -> usize {
    answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::UNPROCESSABLE_ENTITY && b["code"] == code)
        .count()
}

fn withdrawal(rid: String, account: &str, units: &str) -> Value {
    json!({"request_id": rid, "account_id": account, "fund_code": FUND, "units": units,
           "mode": "fast", "purpose": "withdrawal"})
}

#[tokio::test]
async fn the_fast_withdrawal_cap_holds_across_instances() {
    let (db, a, b) = two_instances().await;
    // 30 accounts, two withdrawals of 9,000.00 each, one to each instance at the same instant:
    // one of each pair fits under the 10,000.00 cap.
    let mut accounts = Vec::new();
    for i in 0..30 {
        let acct = a.open_account("p1", &format!("pair-{i}")).await;
        seed_units_in(&db, &acct, "20000.00").await;
        accounts.push(acct);
    }
    let bodies = accounts
        .iter()
        .flat_map(|acct| [0, 1].map(|k| withdrawal(format!("pair-{acct}-{k}"), acct, "9000.00")))
        .collect();
    let answers = split(&a, &b, "/v1/redemptions", bodies).await;
    assert_eq!(accepted(&answers), 30, "one of each pair");
    assert_eq!(refused_with(&answers, "fast_withdrawal_cap_exceeded"), 30);

    // 100 withdrawals of 333.33 on one account, split between the instances: 30 fit.
    let acct = a.open_account("p1", "small").await;
    seed_units_in(&db, &acct, "20000.00").await;
    let bodies = (0..100)
        .map(|i| withdrawal(format!("small-{i}"), &acct, "333.33"))
        .collect();
    let answers = split(&a, &b, "/v1/redemptions", bodies).await;
    assert_eq!(accepted(&answers), 30);
    assert_eq!(refused_with(&answers, "fast_withdrawal_cap_exceeded"), 70);
    let c = pg(&db).await;
    let usage: rust_decimal::Decimal = c
        .query_one(
            "SELECT amount FROM daily_usage WHERE account_id = $1 AND kind = 'fast_withdrawal'",
            &[&acct],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(usage, "9999.90".parse().unwrap());
    let units: rust_decimal::Decimal = c
        .query_one(
            "SELECT units FROM positions WHERE account_id = $1",
            &[&acct],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(units, "10000.10".parse().unwrap());
}

#[tokio::test]
async fn the_daily_subscription_limit_and_the_units_hold_across_instances() {
    let db = fresh_db().await;
    let a = CommandProcess::start(&db).await;
    a.setup_fund().await;
    let (s, body) = a
        .ops(
            Method::PUT,
            "/v1/ops/funds/000002",
            json!({"name": "Limited", "max_subscription_per_order": "1000.00",
                   "max_subscription_per_day": "1000.00"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let b = CommandProcess::start(&db).await;
    // 40 subscriptions of 100.00 against a 1,000.00 daily limit: 10 fit.
    let acct = a.open_account("p1", "subscriber").await;
    let bodies = (0..40)
        .map(|i| json!({"request_id": format!("sub-{i}"), "account_id": acct, "fund_code": "000002", "amount": "100.00"}))
        .collect();
    let answers = split(&a, &b, "/v1/subscriptions", bodies).await;
    assert_eq!(accepted(&answers), 10);
    assert_eq!(
        refused_with(&answers, "subscription_day_limit_exceeded"),
        30
    );

    // 50 normal redemptions of 30.00 against 1,000.00 units: 33 fit, 10.00 stay.
    let acct = a.open_account("p1", "redeemer").await;
    seed_units_in(&db, &acct, "1000.00").await;
    let bodies = (0..50)
        .map(|i| {
            json!({"request_id": format!("red-{i}"), "account_id": acct, "fund_code": FUND,
                        "units": "30.00", "mode": "normal"})
        })
        .collect();
    let answers = split(&a, &b, "/v1/redemptions", bodies).await;
    assert_eq!(accepted(&answers), 33);
    assert_eq!(refused_with(&answers, "insufficient_units"), 17);
    let left: rust_decimal::Decimal = pg(&db)
        .await
        .query_one(
            "SELECT units FROM positions WHERE account_id = $1",
            &[&acct],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, "10.00".parse().unwrap());
}

#[tokio::test]
async fn one_request_id_sent_to_both_instances_makes_one_order() {
    let (db, a, b) = two_instances().await;
    let acct = a.open_account("p1", "twice").await;
    let pairs = join_all((0..20).map(|i| {
        let body = json!({"request_id": format!("twice-{i}"), "account_id": acct,
                          "fund_code": FUND, "amount": "10.00"});
        let (a, b) = (&a, &b);
        async move {
            let (x, y) = tokio::join!(
                a.post("p1", "/v1/subscriptions", body.clone()),
                b.post("p1", "/v1/subscriptions", body.clone())
            );
            (x, y)
        }
    }))
    .await;
    for ((sx, x), (sy, y)) in &pairs {
        assert_eq!(
            (*sx, *sy),
            (StatusCode::CREATED, StatusCode::CREATED),
            "{x} {y}"
        );
        assert_eq!(x, y, "the retry replays the original response");
    }
    let orders: i64 = pg(&db)
        .await
        .query_one(
            "SELECT count(*) FROM orders WHERE account_id = $1",
            &[&acct],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orders, 20);
}

#[tokio::test]
async fn a_change_made_through_one_instance_holds_at_once_on_the_other() {
    let (db, a, b) = two_instances().await;
    // The cap lowered through one instance binds the orders the other receives next.
    let (s, body) = a
        .ops(
            Method::PUT,
            &format!("/v1/ops/funds/{FUND}"),
            json!({"name": "Spare Cash MMF", "max_subscription_per_order": "1000000.00",
                   "max_subscription_per_day": "5000000.00", "fast_withdrawal_daily_cap": "500.00"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let acct = a.open_account("p1", "capped").await;
    seed_units_in(&db, &acct, "5000.00").await;
    let answers = join_all((0..10).map(|i| {
        b.post(
            "p1",
            "/v1/redemptions",
            withdrawal(format!("cap-{i}"), &acct, "100.00"),
        )
    }))
    .await;
    assert_eq!(accepted(&answers), 5);
    assert_eq!(refused_with(&answers, "fast_withdrawal_cap_exceeded"), 5);

    // A fund created through one instance takes orders through the other at once.
    let (s, body) = a
        .ops(
            Method::PUT,
            "/v1/ops/funds/000009",
            json!({"name": "New", "max_subscription_per_order": "100.00", "max_subscription_per_day": "200.00"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = b
        .post(
            "p1",
            "/v1/subscriptions",
            json!({"request_id": "new-fund", "account_id": acct,
                                                 "fund_code": "000009", "amount": "100.00"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = b
        .post(
            "p1",
            "/v1/subscriptions",
            json!({"request_id": "new-fund-2", "account_id": acct,
                                                 "fund_code": "000009", "amount": "100.01"}),
        )
        .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("amount_above_order_limit")
        )
    );

    // A holiday loaded through one instance moves the other's trade dates: Thursday after the
    // cut-off with Friday a holiday is trade date Monday.
    a.set_now("2026-11-26T15:30:00+08:00").await;
    b.set_now("2026-11-26T15:30:00+08:00").await;
    let (s, body) = a
        .ops(
            Method::PUT,
            "/v1/ops/calendar/2026",
            json!({"holidays": ["2026-11-27"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let loaded = Instant::now();
    let mut n = 0;
    wait_until(
        "the other instance to see the holiday",
        Duration::from_secs(30),
        || {
            n += 1;
            let (b, acct) = (&b, acct.clone());
            async move {
                let (s, o) = b
                    .post(
                        "p1",
                        "/v1/subscriptions",
                        json!({"request_id": format!("cal-{n}"),
                      "account_id": acct, "fund_code": FUND, "amount": "1.00"}),
                    )
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{o}");
                o["trade_date"] == "2026-11-30"
            }
        },
    )
    .await;
    println!(
        "the other instance used the new calendar {:?} after it was loaded",
        loaded.elapsed()
    );
}

/// The daily cycle runs once at a time across instances: while one instance runs it, the
/// other refuses with 409 `cycle_running`; afterwards either returns the completed summary.
#[tokio::test]
async fn the_daily_cycle_runs_once_across_instances() {
    let (db, a, b) = two_instances().await;
    let acct = a.open_account("p1", "cycler").await;
    let (s, o) = a
        .post(
            "p1",
            "/v1/subscriptions",
            json!({"request_id": "c1", "account_id": acct,
                                                 "fund_code": FUND, "amount": "100.00"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    a.set_now("2026-11-27T09:00:00+08:00").await;
    b.set_now("2026-11-27T09:00:00+08:00").await;
    // Hold the subscriber's position: the first instance's confirmation waits on it.
    let holder = pg(&db).await;
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM positions WHERE account_id = '{acct}' FOR UPDATE"
        ))
        .await
        .unwrap();
    let first = tokio::spawn({
        let base = a.base().to_string();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/v1/ops/cycles/2026-11-26"))
                .bearer_auth(OPS_TOKEN)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let watcher = pg(&db).await;
    wait_until("the first cycle to wait on the held row", Duration::from_secs(60), || async {
        watcher
            .query_opt(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let (s, body) = run_cycle(&b, "2026-11-26", json!({})).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("cycle_running")),
        "{body}"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    let (s, body) = run_cycle(&b, "2026-11-26", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["confirmed"]["subscriptions"], 1);
}

/// Instances starting together on an empty database take turns migrating it.
#[tokio::test]
async fn instances_starting_together_migrate_once() {
    let db = empty_db().await;
    let (a, b, c) = tokio::join!(
        CommandProcess::start(&db),
        CommandProcess::start(&db),
        CommandProcess::start(&db)
    );
    for api in [&a, &b, &c] {
        let (s, body) = api.ops(Method::GET, "/v1/ops/clock", json!(null)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let applied: i64 = pg(&db)
        .await
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    let files = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../migrations/postgres"
    ))
    .unwrap()
    .count();
    assert_eq!(applied as usize, files);
}

async fn seed_units_in(db: &TestDb, account: &str, units: &str) {
    credit_units(&pg(db).await, account, units).await
}
