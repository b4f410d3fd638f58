//! Reports by person: one investor's accounts at two partners are one row of the AML and
//! suspicious-pattern reports (the thresholds apply to the person's totals) and one holder of
//! the concentration report, under a keyed hash of the ID number that ClickHouse holds instead
//! of the number.

use mmf_sync::config::DEV_INVESTOR_SECRET;
use mmf_sync::investor::{identity, investor_key_hex};
use mmf_tests::cycle::*;
use mmf_tests::query::{ship, spawn_query};
use mmf_tests::sync::{ch_u64, holdings_built, wait_until};
use mmf_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn one_person_at_two_partners_is_one_investor() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let (s, body) = app
        .ops(
            Method::PUT,
            &format!("/v1/ops/funds/{FUND}"),
            json!({"name": "Spare Cash MMF", "max_subscription_per_order": "1000000.00",
                   "max_subscription_per_day": "5000000.00", "fast_withdrawal_daily_cap": "100000.00"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let q = spawn_query(&app).await;
    q.ch_exec(
        "INSERT INTO report_parameters (name, value, updated_at) VALUES \
         ('concentration_top_n', 1, now())",
    )
    .await;
    // Alice has an account at each partner (the same ID number); Bob one at p1.
    let alice_p1 = app.open_account("p1", "alice").await;
    let alice_p2 = app.open_account("p2", "alice").await;
    let bob = app.open_account("p1", "bob").await;
    seed_units(&app, &alice_p1, "600.00").await;
    seed_units(&app, &alice_p2, "100000.00").await;
    seed_units(&app, &bob, "1000.00").await;

    // Thursday: each of Alice's subscriptions is below the 500,000 threshold, together they
    // are above it; Bob's one is larger than either but below it.
    subscribe(&app, "p1", &alice_p1, "300000.00").await;
    subscribe(&app, "p2", &alice_p2, "250000.00").await;
    subscribe(&app, "p1", &bob, "400000.00").await;
    publish(&app, "2026-11-26", "0.6000").await;
    app.set_now("2026-11-27T09:00:00+08:00");
    cycle(&app, "2026-11-26").await;
    ship(&app, &q).await;
    let pg = app.pg().await;
    wait_until("holdings of 11-26", Duration::from_secs(180), || async {
        holdings_built(&pg).await == Some("2026-11-26".parse().unwrap())
    })
    .await;

    let alice = investor_key_hex(
        DEV_INVESTOR_SECRET.as_bytes(),
        &identity("resident_id", &valid_resident_id("alice")),
    );
    let (s, aml) = q
        .ops_get("/v1/reports/aml_large_transactions?date=2026-11-26")
        .await;
    assert_eq!(s, StatusCode::OK, "{aml}");
    let rows = aml["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{aml}");
    let mut accounts = vec![alice_p1.clone(), alice_p2.clone()];
    accounts.sort();
    let row = &rows[0];
    assert_eq!(row["investor_key"], alice.as_str());
    assert_eq!(row["partner_ids"], json!(["p1", "p2"]));
    assert_eq!(row["account_ids"], json!(accounts));
    assert_eq!(row["in_amount"], "550000.00");
    assert_eq!(row["order_count"], 2);
    assert_eq!(row["rules"], "transfer");
    assert_eq!(row["id_masked"].as_str().unwrap().matches('*').count(), 8);

    // End of Thursday: Alice holds 100,600 over her two accounts, Bob 1,000 (the
    // subscriptions are effective on Friday). Two investors; the largest is Alice.
    let (s, conc) = q
        .ops_get("/v1/reports/investor_concentration?date=2026-11-26")
        .await;
    assert_eq!(s, StatusCode::OK, "{conc}");
    let bucket = |name: &str| -> Value {
        let r = conc["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["bucket"] == name)
            .unwrap_or_else(|| panic!("bucket {name}: {conc}"));
        json!([r["holders"], r["units"]])
    };
    assert_eq!(bucket("top_n"), json!([1, "100600.00"]));
    assert_eq!(bucket("all"), json!([2, "101600.00"]));
    assert_eq!(bucket("100k-1m"), json!([1, "100600.00"]));
    assert_eq!(bucket("1k-10k"), json!([1, "1000.00"]));

    // Friday: Alice takes 340,000 out at p2. That account alone put in 250,000 (less than 80%
    // of it); Alice put in 550,000 over both: in and out.
    app.set_now("2026-11-27T10:00:00+08:00");
    redeem(&app, "p2", &alice_p2, "340000.00", "normal").await;
    ship(&app, &q).await;
    let (s, sus) = q
        .ops_get("/v1/reports/suspicious_patterns?date=2026-11-27")
        .await;
    assert_eq!(s, StatusCode::OK, "{sus}");
    let pick = |r: &Value| {
        json!([
            r["pattern"],
            r["investor_key"],
            r["partner_ids"],
            r["account_ids"],
            r["amount_in"],
            r["amount_out"]
        ])
    };
    let got: Vec<Value> = sus["rows"].as_array().unwrap().iter().map(pick).collect();
    assert_eq!(
        got,
        vec![json!([
            "in_and_out",
            alice,
            ["p1", "p2"],
            accounts,
            "550000.00",
            "340000.00"
        ])],
        "{sus}"
    );

    // ClickHouse has the key on every account, order and holding row, never the ID number.
    let ch = q.ch();
    for table in ["accounts FINAL", "orders FINAL", "orders_by_day FINAL"] {
        let sql = format!("SELECT count() FROM {table} WHERE empty(investor_key)");
        assert_eq!(ch_u64(&ch, &sql).await, 0, "{table}");
    }
    let sql = "SELECT count() FROM daily_holdings WHERE day = '2026-11-26' AND empty(investor_key)";
    assert_eq!(ch_u64(&ch, sql).await, 0);
    let sql = format!(
        "SELECT count() FROM daily_holdings WHERE lower(hex(investor_key)) = '{alice}' \
         AND day = '2026-11-26'"
    );
    assert_eq!(ch_u64(&ch, &sql).await, 2);
    for id in [valid_resident_id("alice"), valid_resident_id("bob")] {
        let sql = format!(
            "SELECT count() FROM accounts WHERE has([account_id, partner_id, customer_id, name, \
             id_type, id_masked, investor_key], '{id}')"
        );
        assert_eq!(ch_u64(&ch, &sql).await, 0, "ID number in ClickHouse");
    }
    let columns = ch_u64(
        &ch,
        "SELECT count() FROM system.columns WHERE database = currentDatabase() AND name = 'id_number'",
    )
    .await;
    assert_eq!(columns, 0);
    q.finish().await;
}
