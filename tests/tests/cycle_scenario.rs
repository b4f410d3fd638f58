//! The worked multi-day scenario of the daily cycle, computed by hand.
//!
//! Calendar: Thu 2026-11-26, Fri 11-27 trading; Sat 11-28, Sun 11-29 weekend; Mon 11-30 a
//! holiday; Tue 12-01, Wed 12-02, Thu 12-03 trading. Income per 10,000 units (fund 000001):
//!   11-20 .. 11-26  0.6500 each      11-29  -0.1500 (a negative day)
//!   11-27           0.7000           11-30   0.6200
//!   11-28           0.6800           12-01   0.6600     12-02  0.6400
//!
//! Orders (partner p1 unless noted):
//!   Thu 10:00  A subscribes 10000.00, E subscribes 100.00  → T = Thu, effective Fri 11-27
//!   Thu 15:30  C subscribes 3000.00 (after cut-off)        → T = Fri, effective Tue 12-01
//!   Fri 09:00  cycle T=Thu: confirms A and E; distributes 11-20..11-26 (nobody eligible yet)
//!   Fri 10:00  B subscribes 20000.00                       → T = Fri, effective Tue 12-01
//!   Fri 16:00  A fast withdrawal 1000.00                   → effective Fri: no income Fri on it
//!   Fri 16:00  D (partner p2) subscribes 500.00            → T = Tue (Mon is a holiday), eff. Wed
//!   Sat 10:00  A normal redemption 2000.00                 → T = Tue, effective Wed 12-02:
//!              the units are debited now but keep earning through Tue 12-01
//!   Tue 09:00  cycle T=Fri: confirms B, C; distributes Fri, Sat, Sun, Mon
//!   Wed 09:00  cycle T=Tue: confirms D and A's redemption; distributes Tue
//!   Thu 09:00  cycle T=Wed: nothing to confirm; distributes Wed
//!
//! Eligible units, accrual (carry + eligible × per10k / 10,000), paid (truncated to the fen)
//! and carry, per account and day:
//!   A Fri  9000.00 × 0.00007   = 0.63                          paid 0.63 carry 0
//!     Sat  9000.63 × 0.000068  = 0.61204284                    paid 0.61 carry 0.00204284
//!     Sun  9001.24 × -0.000015 = -0.1350186; + carry = -0.13297576
//!                                                              paid -0.13 carry -0.00297576
//!     Mon  9001.11 × 0.000062  = 0.55806882; + carry = 0.55509306 paid 0.55 carry 0.00509306
//!     Tue  9001.66 × 0.000066  = 0.59410956; + carry = 0.59920262 paid 0.59 carry 0.00920262
//!     Wed  7002.25 × 0.000064  = 0.448144;   + carry = 0.45734662 paid 0.45 carry 0.00734662
//!     → units 10000 − 1000 − 2000 + 2.70 = 7002.70, cumulative income 2.70
//!   E Fri  100.00 × 0.00007 = 0.007                            paid 0    carry 0.007
//!     Sat  100.00 × 0.000068 = 0.0068; + 0.007 = 0.0138        paid 0.01 carry 0.0038
//!     Sun  100.01 × -0.000015 = -0.00150015; + 0.0038 = 0.00229985 paid 0 carry 0.00229985
//!     Mon  100.01 × 0.000062 = 0.00620062; → 0.00850047        paid 0    carry 0.00850047
//!     Tue  100.01 × 0.000066 = 0.00660066; → 0.01510113        paid 0.01 carry 0.00510113
//!     Wed  100.02 × 0.000064 = 0.00640128; → 0.01150241        paid 0.01 carry 0.00150241
//!     → units 100.03 (sub-fen income carried forward until it reaches a fen)
//!   B Tue  20000.00 × 0.000066 = 1.32                          paid 1.32 carry 0
//!     Wed  20001.32 × 0.000064 = 1.28008448                    paid 1.28 carry 0.00008448
//!     → units 20002.60
//!   C Tue  3000.00 × 0.000066 = 0.198                          paid 0.19 carry 0.008
//!     Wed  3000.19 × 0.000064 = 0.19201216; + 0.008 = 0.20001216 paid 0.20 carry 0.00001216
//!     → units 3000.39
//!   D Wed  500.00 × 0.000064 = 0.032                           paid 0.03 carry 0.002
//!
//! 7-day yield = ((Π over 7 days of (1 + per10k/10,000))^(365/7) − 1) × 100, half-up to 3
//! decimals: 11-25 absent (6 days); 11-26: Π = 1.000065^7 = 1.00045508873…, yield 2.40079 →
//! 2.401; 11-27 2.427; 11-28 2.444; 11-29 2.017; 11-30 2.001; 12-01 2.006; 12-02 2.001.
//!
//! Settlements: T=Thu p1 subscriptions 10100.00 (2), net +10100.00; T=Fri p1 23000.00 (2);
//! T=Tue p1 redemption 2000.00 (net −2000.00) and fast redemption 1000.00 reported apart,
//! p2 subscription 500.00.

use mmf_tests::cycle::*;
use mmf_tests::*;

#[tokio::test]
async fn worked_multi_day_scenario() {
    let app = spawn_command().await;
    app.setup_fund().await;
    holiday_calendar(&app).await;
    let a = app.open_account("p1", "alice").await;
    let b = app.open_account("p1", "bob").await;
    let c = app.open_account("p1", "carol").await;
    let d = app.open_account("p2", "dave").await;
    let e = app.open_account("p1", "erin").await;

    for day in 20..=25 {
        publish(&app, &format!("2026-11-{day}"), "0.6500").await;
    }
    let y = publish(&app, "2026-11-25", "0.6500").await;
    assert!(y["yield_7d"].is_null(), "six days published: no yield");

    // Thursday.
    subscribe(&app, "p1", &a, "10000.00").await;
    subscribe(&app, "p1", &e, "100.00").await;
    app.set_now("2026-11-26T15:30:00+08:00");
    subscribe(&app, "p1", &c, "3000.00").await;
    let y = publish(&app, "2026-11-26", "0.6500").await;
    assert_eq!(y["yield_7d"], "2.401");
    // The cycle of a trade date cannot run before its cut-off.
    app.set_now("2026-11-26T14:00:00+08:00");
    let (s, body) = run_cycle(&app, "2026-11-26", serde_json::json!({})).await;
    assert_eq!(s, reqwest::StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "trade_date_open");

    // Friday.
    app.set_now("2026-11-27T09:00:00+08:00");
    let r = cycle(&app, "2026-11-26").await;
    check_confirmation_files(&app, "2026-11-26").await;
    assert_eq!(r["confirmed"]["subscriptions"], 2);
    assert_eq!(r["confirmed"]["subscription_amount"], "10100.00");
    let days: Vec<&str> = r["distributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["day"].as_str().unwrap())
        .collect();
    assert_eq!(days.first(), Some(&"2026-11-20"));
    assert_eq!(days.last(), Some(&"2026-11-26"));
    assert_eq!(r["settlements"][0]["net_amount"], "10100.00");
    check_invariants(&app).await;
    let pa = position(&app, &a).await;
    assert_eq!(pa.units, dec("10000.00"));
    assert_eq!(pa.pending, dec("0"));
    assert_eq!(
        pa.cum_income,
        dec("0"),
        "effective Friday: no income for Thursday"
    );

    app.set_now("2026-11-27T10:00:00+08:00");
    subscribe(&app, "p1", &b, "20000.00").await;
    app.set_now("2026-11-27T16:00:00+08:00");
    redeem(&app, "p1", &a, "1000.00", "fast").await;
    subscribe(&app, "p2", &d, "500.00").await;
    publish(&app, "2026-11-27", "0.7000").await;
    // Saturday.
    app.set_now("2026-11-28T10:00:00+08:00");
    redeem(&app, "p1", &a, "2000.00", "normal").await;
    publish(&app, "2026-11-28", "0.6800").await;
    publish(&app, "2026-11-29", "-0.1500").await;
    publish(&app, "2026-11-30", "0.6200").await;

    // Tuesday: the cycle of Friday distributes Friday, the weekend and the holiday.
    app.set_now("2026-12-01T09:00:00+08:00");
    let r = cycle(&app, "2026-11-27").await;
    check_confirmation_files(&app, "2026-11-27").await;
    assert_eq!(r["confirmed"]["subscription_amount"], "23000.00");
    let days: Vec<&str> = r["distributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["day"].as_str().unwrap())
        .collect();
    assert_eq!(
        days,
        ["2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30"]
    );
    check_invariants(&app).await;
    assert_eq!(income_of(&app, &a, "2026-11-27").await, dec("0.63"));
    assert_eq!(income_of(&app, &a, "2026-11-28").await, dec("0.61"));
    assert_eq!(income_of(&app, &a, "2026-11-29").await, dec("-0.13"));
    assert_eq!(income_of(&app, &a, "2026-11-30").await, dec("0.55"));
    assert_eq!(income_of(&app, &e, "2026-11-27").await, dec("0"));
    assert_eq!(income_of(&app, &e, "2026-11-28").await, dec("0.01"));
    assert_eq!(income_of(&app, &b, "2026-11-30").await, dec("0"));
    let pa = position(&app, &a).await;
    // 10000 − 1000 fast − 2000 normal (debited at acceptance) + 1.66 income.
    assert_eq!(pa.units, dec("7001.66"));
    assert_eq!(pa.carry, dec("0.00509306"));
    assert_eq!(pa.last_income, dec("0.55"));
    assert_eq!(pa.last_income_date, Some("2026-11-30".parse().unwrap()));
    let pe = position(&app, &e).await;
    assert_eq!(pe.units, dec("100.01"));
    assert_eq!(pe.carry, dec("0.00850047"));
    let pb = position(&app, &b).await;
    assert_eq!(pb.units, dec("20000.00"));
    assert_eq!(pb.cum_income, dec("0"));

    publish(&app, "2026-12-01", "0.6600").await;
    // Wednesday.
    app.set_now("2026-12-02T09:00:00+08:00");
    let r = cycle(&app, "2026-12-01").await;
    check_confirmation_files(&app, "2026-12-01").await;
    assert_eq!(r["confirmed"]["subscription_amount"], "500.00");
    assert_eq!(r["confirmed"]["redemptions"], 1);
    assert_eq!(r["confirmed"]["redemption_amount"], "2000.00");
    let s = &r["settlements"];
    assert_eq!(s[0]["partner_id"], "p1");
    assert_eq!(s[0]["redemption_amount"], "2000.00");
    assert_eq!(s[0]["net_amount"], "-2000.00");
    assert_eq!(s[0]["fast_count"], 1);
    assert_eq!(s[0]["fast_amount"], "1000.00");
    assert_eq!(s[1]["partner_id"], "p2");
    assert_eq!(s[1]["net_amount"], "500.00");
    check_invariants(&app).await;
    assert_eq!(income_of(&app, &a, "2026-12-01").await, dec("0.59"));
    assert_eq!(income_of(&app, &b, "2026-12-01").await, dec("1.32"));
    assert_eq!(income_of(&app, &c, "2026-12-01").await, dec("0.19"));
    assert_eq!(income_of(&app, &e, "2026-12-01").await, dec("0.01"));
    assert_eq!(income_of(&app, &d, "2026-12-01").await, dec("0"));

    publish(&app, "2026-12-02", "0.6400").await;
    app.set_now("2026-12-03T09:00:00+08:00");
    let r = cycle(&app, "2026-12-02").await;
    check_confirmation_files(&app, "2026-12-02").await;
    assert_eq!(r["confirmed"]["subscriptions"], 0);
    check_invariants(&app).await;

    let expect = [
        (&a, "7002.70", "0.00734662", "2.70", "0.45"),
        (&b, "20002.60", "0.00008448", "2.60", "1.28"),
        (&c, "3000.39", "0.00001216", "0.39", "0.20"),
        (&d, "500.03", "0.002", "0.03", "0.03"),
        (&e, "100.03", "0.00150241", "0.03", "0.01"),
    ];
    for (acct, units, carry, cum, last) in expect {
        let p = position(&app, acct).await;
        assert_eq!(p.units, dec(units), "{acct} units");
        assert_eq!(p.carry, dec(carry), "{acct} carry");
        assert_eq!(p.cum_income, dec(cum), "{acct} cumulative income");
        assert_eq!(p.last_income, dec(last), "{acct} last income");
        assert_eq!(p.last_income_date, Some("2026-12-02".parse().unwrap()));
    }

    // Yields as published, and running a completed cycle again changes nothing.
    for (day, y) in [
        ("2026-11-27", "2.427"),
        ("2026-11-28", "2.444"),
        ("2026-11-29", "2.017"),
        ("2026-11-30", "2.001"),
        ("2026-12-01", "2.006"),
        ("2026-12-02", "2.001"),
    ] {
        let (s, b) = app
            .ops(
                reqwest::Method::GET,
                &format!("/v1/ops/funds/{FUND}/income/{day}"),
                serde_json::json!(null),
            )
            .await;
        assert_eq!(s, reqwest::StatusCode::OK, "{b}");
        assert_eq!(b["yield_7d"], y, "{day}");
        assert_eq!(b["distributed"], true);
    }
    let again = cycle(&app, "2026-12-01").await;
    assert_eq!(again["confirmed"], r_confirmed_of(&app, "2026-12-01").await);
    let p = position(&app, &a).await;
    assert_eq!(p.units, dec("7002.70"));
    check_invariants(&app).await;

    // A distributed day cannot be republished.
    let (s, b) = app
        .ops(
            reqwest::Method::PUT,
            &format!("/v1/ops/funds/{FUND}/income/2026-11-29"),
            serde_json::json!({"per10k": "0.1000"}),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::CONFLICT, "{b}");
    assert_eq!(b["code"], "income_already_distributed");

    // The daily-cycle routes are in the published contract.
    let spec: serde_json::Value = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/ops/funds/{code}/income/{date}",
        "/v1/ops/cycles/{trade_date}",
        "/v1/ops/reconciliation/{partner}/{date}/confirmations",
        "/v1/ops/reconciliation/{partner}/{date}/requests",
        "/v1/ops/retention",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} in openapi.json");
    }
}

async fn r_confirmed_of(app: &TestApp, date: &str) -> serde_json::Value {
    let (s, b) = app
        .ops(
            reqwest::Method::GET,
            &format!("/v1/ops/cycles/{date}"),
            serde_json::json!(null),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::OK, "{b}");
    b["confirmed"].clone()
}
