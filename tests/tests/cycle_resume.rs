//! A cycle killed in the middle of the income distribution resumes on the next run and ends
//! exactly where an uninterrupted run ends; orders keep being accepted while it runs.

use mmf_tests::cycle::*;
use mmf_tests::sync::wait_until;
use mmf_tests::*;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::json;
use std::time::Duration;

const ACCOUNTS: usize = 40;

/// 40 accounts subscribe on Thursday (confirmed Friday), income is published for Friday to
/// Sunday; the cycle of Friday (run Monday) distributes three days in batches of 7 positions.
async fn prepare(app: &TestApp, policy: &str) -> Vec<String> {
    app.setup_fund_with(policy).await;
    let mut accounts = Vec::new();
    for i in 0..ACCOUNTS {
        let a = app.open_account("p1", &format!("cust-{i}")).await;
        subscribe(app, "p1", &a, &format!("{}.{:02}", 1000 + 137 * i, i)).await;
        accounts.push(a);
    }
    app.set_now("2026-11-27T09:00:00+08:00");
    cycle(app, "2026-11-26").await;
    publish(app, "2026-11-27", "0.7123").await;
    publish(app, "2026-11-28", "-0.0511").await;
    publish(app, "2026-11-29", "0.6399").await;
    app.set_now("2026-11-30T09:00:00+08:00");
    accounts
}

async fn state(app: &TestApp) -> Vec<String> {
    let c = app.pg().await;
    let mut out: Vec<String> = c
        .query(
            "SELECT account_id, units::text, carry::text, cum_income::text, last_income::text,
                    last_income_date::text, pending_subscription::text FROM positions ORDER BY account_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (0..7)
                .map(|i| r.get::<_, Option<String>>(i).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    out.extend(
        c.query(
            "SELECT account_id, kind, effective_date::text, sum(units)::text FROM unit_movements
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3)
            )
        }),
    );
    out.extend(
        c.query(
            "SELECT day::text, sum(positions)::text, sum(eligible)::text, sum(accrued)::text,
                    sum(paid)::text, sum(carry_after - carry_before)::text, sum(to_fund)::text
             FROM income_batches GROUP BY day ORDER BY day",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (0..7)
                .map(|i| r.get::<_, String>(i))
                .collect::<Vec<_>>()
                .join(" ")
        }),
    );
    out
}

#[tokio::test]
async fn killed_mid_distribution_then_resumed_equals_uninterrupted() {
    killed_then_resumed("carry_forward").await;
}

/// Under `redistribute` the resumed batches must agree with the committed ones on who receives
/// the fen left over, which depends on every holder of the fund.
#[tokio::test]
async fn killed_mid_redistribution_then_resumed_equals_uninterrupted() {
    killed_then_resumed("redistribute").await;
}

async fn killed_then_resumed(policy: &str) {
    let options = json!({"batch_size": 7, "parallel": 1});

    // Reference: the same inputs, run without interruption.
    let reference = spawn_command().await;
    prepare(&reference, policy).await;
    let late = reference.open_account("p1", "late").await;
    subscribe(&reference, "p1", &late, "55.55").await;
    let (s, b) = run_cycle(&reference, "2026-11-27", options.clone()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    check_invariants(&reference).await;

    let app = spawn_command().await;
    let accounts = prepare(&app, policy).await;
    // Hold one position of the fourth batch of the first day: the distribution blocks there.
    let (blocker, conn) = tokio_postgres::connect(&app.db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    blocker
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM positions WHERE account_id = '{}' FOR UPDATE",
            accounts[22]
        ))
        .await
        .unwrap();
    let run = {
        let base = app.base.clone();
        let opts = options.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/v1/ops/cycles/2026-11-27"))
                .bearer_auth(OPS_TOKEN)
                .json(&opts)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let c = app.pg().await;
    let waiter = "SELECT pid FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'";
    wait_until(
        "the distribution to block on the held position",
        Duration::from_secs(120),
        || async { c.query_opt(waiter, &[]).await.unwrap().is_some() },
    )
    .await;
    let waiting = c
        .query_opt(waiter, &[])
        .await
        .unwrap()
        .map(|r| r.get::<_, i32>(0));
    let waiting = waiting.expect("the distribution blocks on the held position");

    // The API keeps accepting orders while the cycle is stuck mid-distribution.
    let late = app.open_account("p1", "late").await;
    let started = std::time::Instant::now();
    subscribe(&app, "p1", &late, "55.55").await;
    // Accepted although the cycle stays stuck until it is killed below: orders never wait for it.
    assert!(started.elapsed() < Duration::from_secs(60));

    // Kill the cycle: its batch connection and the connection holding the cycle lock.
    c.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_locks
         WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        &[],
    )
    .await
    .unwrap();
    c.execute("SELECT pg_terminate_backend($1)", &[&waiting])
        .await
        .unwrap();
    let status = run.await.unwrap();
    assert!(status.is_server_error(), "killed run fails: {status}");
    blocker.batch_execute("ROLLBACK").await.unwrap();
    // The killed connection may sit idle in the pool before its closing is noticed.
    app.state.db.retain(|_, _| false);
    let c = app.pg().await;

    let done: i64 = c
        .query_one(
            "SELECT count(*) FROM income_batches WHERE day = '2026-11-27'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        done, 3,
        "three batches of the first day committed before the kill"
    );
    let (s, b) = app
        .ops(
            reqwest::Method::GET,
            "/v1/ops/cycles/2026-11-27",
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "incomplete");
    // Part of the day is paid: the first accounts have their income, the later ones do not.
    assert_ne!(position(&app, &accounts[0]).await.cum_income, Decimal::ZERO);
    assert_eq!(
        position(&app, &accounts[30]).await.cum_income,
        Decimal::ZERO
    );

    let (s, b) = run_cycle(&app, "2026-11-27", options).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "completed");
    assert_eq!(b["attempts"], 2);
    assert_eq!(b["distributions"][0]["applied_now"], 3);
    check_invariants(&app).await;
    check_confirmation_files(&app, "2026-11-27").await;
    assert_eq!(state(&app).await, state(&reference).await);
}
