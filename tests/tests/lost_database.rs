//! Losing Postgres under load: every backend of the command service is terminated while
//! requests are in flight. Each answer is a success, a refusal, or `503 unavailable` with
//! `Retry-After` (never a 500); nothing acknowledged is lost; the service recovers by itself.

use mmf_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

const TERMINATE: &str = "SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity
                         WHERE datname = current_database() AND pid <> pg_backend_pid()";

/// A hung request fails the test with its name instead of stalling it.
static HTTP: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
});

struct Answer {
    what: String,
    status: StatusCode,
    retry_after: Option<String>,
    body: String,
}

/// A signed partner request; the answer with its `Retry-After` header.
async fn send(app: &TestApp, method: Method, path: &str, body: Option<&Value>) -> Answer {
    let resp = Signer::new("p1")
        .send(&HTTP, method, &app.base, path, body, app.clock.now(), None)
        .await;
    answer(path, resp).await
}

async fn answer(what: &str, resp: reqwest::Response) -> Answer {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    Answer {
        what: what.to_string(),
        status,
        retry_after,
        body: resp.text().await.unwrap(),
    }
}

async fn put_fund(app: &TestApp) -> Answer {
    let resp = HTTP
        .put(format!("{}/v1/ops/funds/{FUND}", app.base))
        .bearer_auth(OPS_TOKEN)
        .json(
            &json!({"name": "Spare Cash MMF", "max_subscription_per_order": "1000000.00",
                      "max_subscription_per_day": "5000000.00"}),
        )
        .send()
        .await
        .unwrap();
    answer("PUT fund", resp).await
}

fn assert_503(a: &Answer) {
    assert_eq!(
        a.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}: {}",
        a.what,
        a.body
    );
    assert_eq!(a.retry_after.as_deref(), Some("1"), "{}", a.what);
    let body: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(body["code"], "unavailable", "{}", a.what);
}

async fn connect(app: &TestApp) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&app.db.url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// Retries `f` until it gives `want`, for at most 30 s (a loaded machine may be slow to hand
/// out new connections).
async fn eventually<F, Fut>(what: &str, want: &[StatusCode], mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = f().await;
        if want.contains(&a.status) {
            return;
        }
        assert_ne!(
            a.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{what}: {}",
            a.body
        );
        assert!(
            Instant::now() < deadline,
            "{what} did not recover: {} {}",
            a.status,
            a.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn terminated_backends_answer_503_and_the_service_recovers() {
    let app = Arc::new(spawn_command().await);
    app.setup_fund().await;
    let mut accounts = Vec::new();
    for i in 0..6 {
        accounts.push(app.open_account("p1", &format!("c{i}")).await);
    }
    app.give_units(&accounts[0], "1000.00").await;

    // Steady load on both paths: the order writer (subscriptions) and the pool (account
    // opening, order lookup).
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(Vec::<(String, Answer)>::new()));
    let mut load = Vec::new();
    for t in 0..4 {
        let (app, stop, answers) = (app.clone(), stop.clone(), answers.clone());
        let account = accounts[1 + t % 5].clone();
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let rid = format!("load-{t}-{n}");
                let a = send(
                    &app,
                    Method::POST,
                    "/v1/subscriptions",
                    Some(&json!({"request_id": rid, "account_id": account, "fund_code": FUND,
                                 "amount": "1.00"})),
                )
                .await;
                answers.lock().unwrap().push((rid.clone(), a));
                let open = json!({"request_id": format!("open-{rid}"), "customer_id": format!("cust-{rid}"),
                                  "name": "Zhao Liu", "id_type": "resident_id",
                                  "id_number": valid_resident_id(&rid)});
                let a = send(&app, Method::POST, "/v1/accounts", Some(&open)).await;
                answers.lock().unwrap().push((String::new(), a));
                let a = send(&app, Method::GET, &format!("/v1/orders?request_id={rid}"), None).await;
                answers.lock().unwrap().push((String::new(), a));
            }
        }));
    }

    // Two requests held mid-transaction by row locks: a fast redemption in the order writer and
    // a fund update on a pooled connection. The lock holder is the one session left alive. Its
    // locks let foreign-key checks (every order references its fund) through.
    let killer = connect(&app).await;
    killer
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM positions WHERE account_id = '{}' FOR NO KEY UPDATE;
             SELECT 1 FROM funds WHERE fund_code = '{FUND}' FOR NO KEY UPDATE",
            accounts[0]
        ))
        .await
        .unwrap();
    let redeem = {
        let (app, account) = (app.clone(), accounts[0].clone());
        tokio::spawn(async move {
            send(
                &app,
                Method::POST,
                "/v1/redemptions",
                Some(
                    &json!({"request_id": "held-1", "account_id": account, "fund_code": FUND,
                             "units": "10.00", "mode": "fast"}),
                ),
            )
            .await
        })
    };
    let fund = {
        let app = app.clone();
        tokio::spawn(async move { put_fund(&app).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = killer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE pg_backend_pid() = ANY (pg_blocking_pids(pid))",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the held requests never waited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed: i32 = killer.query_one(TERMINATE, &[]).await.unwrap().get(0);
    assert!(killed >= 2, "{killed} backends terminated");
    // Their sessions are gone: releasing the locks cannot let them through any more.
    killer.batch_execute("ROLLBACK").await.unwrap();
    assert_503(&redeem.await.unwrap());
    assert_503(&fund.await.unwrap());

    // More rounds while the load goes on.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        killer.query_one(TERMINATE, &[]).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    assert!(!answers.is_empty());
    for (_, a) in &answers {
        match a.status.as_u16() {
            200..=299 | 400..=499 => {}
            503 => assert_eq!(
                a.retry_after.as_deref(),
                Some("1"),
                "{}: {}",
                a.what,
                a.body
            ),
            _ => panic!("{}: {} {}", a.what, a.status, a.body),
        }
    }

    // Recovery, on both paths, without a restart.
    eventually("the order writer", &[StatusCode::CREATED], || {
        let (app, account) = (app.clone(), accounts[1].clone());
        async move {
            let rid = format!("after-{}", rand::random::<u32>());
            let sub = json!({"request_id": rid, "account_id": account, "fund_code": FUND, "amount": "1.00"});
            send(&app, Method::POST, "/v1/subscriptions", Some(&sub)).await
        }
    })
    .await;
    eventually("account opening", &[StatusCode::CREATED], || {
        let app = app.clone();
        async move {
            let c = format!("after-{}", rand::random::<u32>());
            let open = json!({"request_id": c, "customer_id": c, "name": "Zhao Liu", "id_type": "resident_id",
                              "id_number": valid_resident_id(&c)});
            send(&app, Method::POST, "/v1/accounts", Some(&open)).await
        }
    })
    .await;
    eventually("ops", &[StatusCode::OK], || {
        let app = app.clone();
        async move { put_fund(&app).await }
    })
    .await;

    // Every acknowledged subscription is there; the held redemption was not applied.
    let check = connect(&app).await;
    for (rid, a) in &answers {
        if a.status == StatusCode::CREATED && !rid.is_empty() {
            let found = check
                .query_opt(
                    "SELECT 1 FROM orders WHERE partner_id = 'p1' AND request_id = $1",
                    &[rid],
                )
                .await
                .unwrap();
            assert!(found.is_some(), "acknowledged {rid} is missing");
        }
    }
    let held = check
        .query_opt("SELECT 1 FROM orders WHERE request_id = 'held-1'", &[])
        .await
        .unwrap();
    assert!(held.is_none(), "the refused redemption was written");
}
