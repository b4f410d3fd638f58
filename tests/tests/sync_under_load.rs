//! The daily read models are built while orders keep arriving, as they do 7×24. A day is built
//! once the sync worker has shipped every transaction committed by the time the day became
//! final; with orders committing all the time, the next transaction id read afresh on every
//! look is always ahead of what is shipped, so the worker keeps the one it read first.

use mmf_tests::cycle::*;
use mmf_tests::sync::{
    ch, flows_built, holdings, holdings_built, journal_holdings, spawn_sync, wait_until,
};
use mmf_tests::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Two partner clients sending fast redemptions of 0.01 back to back until `stop`; counts the
/// accepted ones.
fn keep_ordering(app: &TestApp, account: &str, stop: Arc<AtomicBool>, accepted: Arc<AtomicU64>) {
    for client in 0..2 {
        let (http, base, clock) = (app.http.clone(), app.base.clone(), app.clock.clone());
        let (account, stop, accepted) = (account.to_string(), stop.clone(), accepted.clone());
        tokio::spawn(async move {
            let signer = Signer::new("p2");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = json!({"request_id": format!("load-{client}-{n}"), "account_id": account,
                    "fund_code": FUND, "units": "0.01", "mode": "fast", "purpose": "payment"});
                let resp = signer
                    .send(
                        &http,
                        reqwest::Method::POST,
                        &base,
                        "/v1/redemptions",
                        Some(&body),
                        clock.now(),
                        None,
                    )
                    .await;
                assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
                accepted.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

#[tokio::test]
async fn holdings_and_flows_are_built_while_orders_keep_coming() {
    let app = spawn_command().await;
    app.setup_fund_with("redistribute").await;
    let alice = app.open_account("p1", "alice").await;
    seed_units(&app, &alice, "10000.00").await;
    let busy = app.open_account("p2", "busy").await;
    seed_units(&app, &busy, "1000000.00").await;
    let worker = spawn_sync(&app.db).await;
    let pg = app.pg().await;

    // Thursday: alice's orders; the day's income published.
    subscribe(&app, "p1", &alice, "500.00").await;
    redeem(&app, "p1", &alice, "100.00", "fast").await;
    publish(&app, "2026-11-26", "0.6000").await;

    // Friday morning: orders keep coming while Thursday is cycled and its holdings are built.
    app.set_now("2026-11-27T09:00:00+08:00");
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    keep_ordering(&app, &busy, stop.clone(), accepted.clone());
    wait_until(
        "the load's first orders",
        Duration::from_secs(60),
        || async { accepted.load(Ordering::Relaxed) > 0 },
    )
    .await;
    cycle(&app, "2026-11-26").await;
    let at_cycle = accepted.load(Ordering::Relaxed);
    wait_until(
        "holdings of 11-26 under load",
        Duration::from_secs(180),
        || async { holdings_built(&pg).await == Some("2026-11-26".parse().unwrap()) },
    )
    .await;
    assert!(
        accepted.load(Ordering::Relaxed) > at_cycle,
        "orders kept coming until the holdings were built"
    );
    let ch = ch(&app.db);
    let built = holdings(&ch, "2026-11-26").await;
    assert_eq!(built, journal_holdings(&pg, "2026-11-26").await);
    assert!(built.iter().any(|h| h.0 == alice), "{built:?}");

    // Monday: Friday's cycle makes Thursday's orders final; its flows are built under load.
    for day in ["2026-11-27", "2026-11-28", "2026-11-29"] {
        publish(&app, day, "0.6000").await;
    }
    app.set_now("2026-11-30T09:00:00+08:00");
    cycle(&app, "2026-11-27").await;
    let at_cycle = accepted.load(Ordering::Relaxed);
    wait_until(
        "flows of 11-26 under load",
        Duration::from_secs(180),
        || async { flows_built(&pg).await >= Some("2026-11-26".parse().unwrap()) },
    )
    .await;
    assert!(
        accepted.load(Ordering::Relaxed) > at_cycle,
        "orders kept coming until the flows were built"
    );
    stop.store(true, Ordering::Relaxed);
    worker.stop().await;
}
