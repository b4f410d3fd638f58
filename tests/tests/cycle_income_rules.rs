//! The money-fund income rules (DESIGN §3), worked by hand: redeemed units earn until the next
//! trading day after their trade date, and each income policy's treatment of the fen that
//! truncation cuts off.
//!
//! Calendar: Thu 2026-11-26, Fri 11-27 trading; Sat 11-28, Sun 11-29 weekend; Mon 11-30 a
//! holiday; Tue 12-01, Wed 12-02 trading. Opening holdings (effective 11-01): A 10000.00,
//! B 3333.33, C 1234.56. Income per 10,000 units: 11-26 0.6000, 11-27 0.7000, 11-28 0.7000,
//! 11-29 -0.2000, 11-30 0.6500, 12-01 0.6600.
//!
//! Orders:
//!   Thu 10:00  C redeems 1000.00 (normal): T = Thu, effective Fri 11-27.
//!   Fri 09:00  cycle T=Thu: confirms C's redemption, distributes 11-26.
//!   Fri 10:00  A redeems 4000.00 (normal): T = Fri, effective Tue 12-01, the next trading
//!              day. The units are debited at once but earn Fri, Sat, Sun and the Monday
//!              holiday (under the old rule, T + 1 calendar day, they stopped on Saturday:
//!              4000 × (0.00007 − 0.00002 + 0.000065) = 0.46 lost).
//!   Fri 11:00  B fast withdrawal 1000.00: effective Fri at once, no income on it Friday.
//!   Tue 09:00  cycle T=Fri: confirms A's redemption, distributes 11-27 .. 11-30.
//!   Wed 09:00  cycle T=Tue: distributes 12-01, the first day without A's 4000.
//!
//! Eligible units of a day = every movement effective on or before it (income of day D is
//! effective D + 1). Exact income = eligible × per10k / 10,000.
//!
//! carry_forward (accrued = carry + exact; paid = accrued truncated; carry = the rest):
//!   11-26 A 10000.00 × 0.00006 = 0.6        paid 0.60  carry 0
//!         B  3333.33 × 0.00006 = 0.1999998  paid 0.19  carry 0.0099998
//!         C  1234.56 × 0.00006 = 0.0740736  paid 0.07  carry 0.0040736
//!   11-27 A 10000.60 × 0.00007 = 0.700042                     paid 0.70 carry 0.000042
//!         B  2333.52 × 0.00007 = 0.1633464; + 0.0099998 = 0.1733462 paid 0.17 carry 0.0033462
//!         C   234.63 × 0.00007 = 0.0164241; + 0.0040736 = 0.0204977 paid 0.02 carry 0.0004977
//!   11-28 A 10001.30 × 0.00007 = 0.700091;  + 0.000042  = 0.700133  paid 0.70 carry 0.000133
//!         B  2333.69 × 0.00007 = 0.1633583; + 0.0033462 = 0.1667045 paid 0.16 carry 0.0067045
//!         C   234.65 × 0.00007 = 0.0164255; + 0.0004977 = 0.0169232 paid 0.01 carry 0.0069232
//!   11-29 A 10002.00 × -0.00002 = -0.20004;   + 0.000133  = -0.199907  paid -0.19 carry -0.009907
//!         B  2333.85 × -0.00002 = -0.046677;  + 0.0067045 = -0.0399725 paid -0.03 carry -0.0099725
//!         C   234.66 × -0.00002 = -0.0046932; + 0.0069232 = 0.00223    paid 0    carry 0.00223
//!   11-30 A 10001.81 × 0.000065 = 0.65011765; − 0.009907  = 0.64021065 paid 0.64 carry 0.00021065
//!         B  2333.82 × 0.000065 = 0.1516983;  − 0.0099725 = 0.1417258  paid 0.14 carry 0.0017258
//!         C   234.66 × 0.000065 = 0.0152529;  + 0.00223   = 0.0174829  paid 0.01 carry 0.0074829
//!   12-01 A  6002.45 × 0.000066 = 0.3961617;  + 0.00021065 = 0.39637235 paid 0.39 carry 0.00637235
//!         B  2333.96 × 0.000066 = 0.15404136; + 0.0017258  = 0.15576716 paid 0.15 carry 0.00576716
//!         C   234.67 × 0.000066 = 0.01548822; + 0.0074829  = 0.02297112 paid 0.02 carry 0.00297112
//!   → A 10000 − 4000 + 2.84 = 6002.84; B 3333.33 − 1000 + 0.78 = 2334.11; C 1234.56 − 1000 + 0.13 = 234.69
//!
//! to_fund (paid = exact truncated; the rest is the fund's):
//!   11-26 A 0.6 → 0.60        B 0.1999998 → 0.19    C 0.0740736 → 0.07
//!   11-27 A 10000.60 → 0.700042 → 0.70  B 2333.52 → 0.1633464 → 0.16  C 234.63 → 0.0164241 → 0.01
//!   11-28 A 10001.30 → 0.700091 → 0.70  B 2333.68 → 0.1633576 → 0.16  C 234.64 → 0.0164248 → 0.01
//!   11-29 A 10002.00 → -0.20004 → -0.20 B 2333.84 → -0.0466768 → -0.04 C 234.65 → -0.004693 → 0
//!   11-30 A 10001.80 → 0.650117 → 0.65  B 2333.80 → 0.151697 → 0.15   C 234.65 → 0.01525225 → 0.01
//!   12-01 A 6002.45 → 0.3961617 → 0.39  B 2333.95 → 0.1540407 → 0.15  C 234.66 → 0.01548756 → 0.01
//!   → A 6002.84, B 2334.10, C 234.67
//!
//! redistribute (F = Σ exact truncated; each gets its truncated income, the fen left over go to
//! the largest remainders):
//!   11-26 Σ 0.6 + 0.1999998 + 0.0740736 = 0.8740734 → F 0.87; truncated 0.60 + 0.19 + 0.07 = 0.86:
//!         one fen to B (remainder 0.0099998 > C's 0.0040736 > A's 0) → A 0.60 B 0.20 C 0.07
//!   11-27 A 10000.60 → 0.700042, B 2333.53 → 0.1633471, C 234.63 → 0.0164241; Σ 0.8798132 → F 0.87
//!         = 0.70 + 0.16 + 0.01: nothing left over
//!   11-28 A 10001.30 → 0.700091, B 2333.69 → 0.1633583, C 234.64 → 0.0164248; F 0.87 = 0.70 + 0.16 + 0.01
//!   11-29 A 10002.00 → -0.20004, B 2333.85 → -0.046677, C 234.65 → -0.004693; Σ -0.25141 → F -0.25;
//!         truncated -0.20 − 0.04 − 0 = -0.24: one fen more to take, from the largest remainder
//!         toward zero, B's 0.006677 → A -0.20 B -0.05 C 0
//!   11-30 A 10001.80 → 0.650117, B 2333.80 → 0.151697, C 234.65 → 0.01525225; Σ 0.81706625
//!         → F 0.81 = 0.65 + 0.15 + 0.01
//!   12-01 A 6002.45 → 0.3961617, B 2333.95 → 0.1540407, C 234.66 → 0.01548756; Σ 0.56568996
//!         → F 0.56; truncated 0.55: one fen to A (0.0061617 > C's 0.00548756 > B's 0.0040407)
//!         → A 0.40 B 0.15 C 0.01
//!   → A 6002.85, B 2334.10, C 234.67, nothing carried

use mmf_tests::cycle::*;
use mmf_tests::*;
use reqwest::StatusCode;
use serde_json::json;

const DAYS: [&str; 6] = [
    "2026-11-26",
    "2026-11-27",
    "2026-11-28",
    "2026-11-29",
    "2026-11-30",
    "2026-12-01",
];
const PER10K: [&str; 6] = ["0.6000", "0.7000", "0.7000", "-0.2000", "0.6500", "0.6600"];

struct Expected {
    /// Income of A, B, C for each day of [`DAYS`].
    daily: [[&'static str; 3]; 6],
    units: [&'static str; 3],
    cum_income: [&'static str; 3],
    carry: [&'static str; 3],
    /// Policy redistribute: F of each day.
    fund_income: Option<[&'static str; 6]>,
}

async fn scenario(policy: &str, e: &Expected) {
    let app = spawn_command().await;
    app.setup_fund_with(policy).await;
    holiday_calendar(&app).await;
    let (a, b, c) = (
        app.open_account("p1", "alice").await,
        app.open_account("p1", "bob").await,
        app.open_account("p1", "carol").await,
    );
    seed_units(&app, &a, "10000.00").await;
    seed_units(&app, &b, "3333.33").await;
    seed_units(&app, &c, "1234.56").await;

    // Thursday 10:00.
    let c_redeemed = redeem(&app, "p1", &c, "1000.00", "normal").await;
    publish(&app, DAYS[0], PER10K[0]).await;
    app.set_now("2026-11-27T09:00:00+08:00");
    let mut distributions = vec![cycle(&app, "2026-11-26").await];
    app.set_now("2026-11-27T10:00:00+08:00");
    let a_redeemed = redeem(&app, "p1", &a, "4000.00", "normal").await;
    app.set_now("2026-11-27T11:00:00+08:00");
    redeem(&app, "p1", &b, "1000.00", "fast").await;
    for i in 1..5 {
        publish(&app, DAYS[i], PER10K[i]).await;
    }
    app.set_now("2026-12-01T09:00:00+08:00");
    distributions.push(cycle(&app, "2026-11-27").await);
    publish(&app, DAYS[5], PER10K[5]).await;
    app.set_now("2026-12-02T09:00:00+08:00");
    distributions.push(cycle(&app, "2026-12-01").await);
    check_invariants(&app).await;

    for (order, effective) in [(c_redeemed, "2026-11-27"), (a_redeemed, "2026-12-01")] {
        let (s, o) = app.get("p1", &format!("/v1/orders/{order}")).await;
        assert_eq!(s, StatusCode::OK, "{o}");
        assert_eq!(o["effective_date"], effective, "{policy}: {o}");
        assert_eq!(o["status"], "confirmed", "{policy}: {o}");
    }
    for (d, day) in DAYS.iter().enumerate() {
        for (i, acct) in [&a, &b, &c].into_iter().enumerate() {
            assert_eq!(
                income_of(&app, acct, day).await,
                dec(e.daily[d][i]),
                "{policy}: income of {} on {day}",
                ["A", "B", "C"][i]
            );
        }
    }
    for (i, acct) in [&a, &b, &c].into_iter().enumerate() {
        let p = position(&app, acct).await;
        let who = ["A", "B", "C"][i];
        assert_eq!(p.units, dec(e.units[i]), "{policy}: {who} units");
        assert_eq!(p.cum_income, dec(e.cum_income[i]), "{policy}: {who} income");
        assert_eq!(p.carry, dec(e.carry[i]), "{policy}: {who} carry");
    }
    let days: Vec<&serde_json::Value> = distributions
        .iter()
        .flat_map(|r| r["distributions"].as_array().unwrap())
        .collect();
    assert_eq!(days.len(), 6, "{policy}");
    for (d, dist) in days.iter().enumerate() {
        assert_eq!(dist["day"], DAYS[d]);
        assert_eq!(dist["policy"], policy);
        match e.fund_income {
            Some(f) => assert_eq!(dist["fund_income"], f[d], "{policy} {}", DAYS[d]),
            None => assert!(dist["fund_income"].is_null(), "{dist}"),
        }
    }
}

#[tokio::test]
async fn redeemed_units_earn_until_the_next_trading_day_under_every_policy() {
    let carry_forward = Expected {
        daily: [
            ["0.60", "0.19", "0.07"],
            ["0.70", "0.17", "0.02"],
            ["0.70", "0.16", "0.01"],
            ["-0.19", "-0.03", "0"],
            ["0.64", "0.14", "0.01"],
            ["0.39", "0.15", "0.02"],
        ],
        units: ["6002.84", "2334.11", "234.69"],
        cum_income: ["2.84", "0.78", "0.13"],
        carry: ["0.00637235", "0.00576716", "0.00297112"],
        fund_income: None,
    };
    let to_fund = Expected {
        daily: [
            ["0.60", "0.19", "0.07"],
            ["0.70", "0.16", "0.01"],
            ["0.70", "0.16", "0.01"],
            ["-0.20", "-0.04", "0"],
            ["0.65", "0.15", "0.01"],
            ["0.39", "0.15", "0.01"],
        ],
        units: ["6002.84", "2334.10", "234.67"],
        cum_income: ["2.84", "0.77", "0.11"],
        carry: ["0", "0", "0"],
        fund_income: None,
    };
    let redistribute = Expected {
        daily: [
            ["0.60", "0.20", "0.07"],
            ["0.70", "0.16", "0.01"],
            ["0.70", "0.16", "0.01"],
            ["-0.20", "-0.05", "0"],
            ["0.65", "0.15", "0.01"],
            ["0.40", "0.15", "0.01"],
        ],
        units: ["6002.85", "2334.10", "234.67"],
        cum_income: ["2.85", "0.77", "0.11"],
        carry: ["0", "0", "0"],
        fund_income: Some(["0.87", "0.87", "0.87", "-0.25", "0.81", "0.56"]),
    };
    tokio::join!(
        scenario("carry_forward", &carry_forward),
        scenario("to_fund", &to_fund),
        scenario("redistribute", &redistribute),
    );
}

/// Three holders of 100.00 (accounts opened in order, so account ids ascend):
///   11-26 +0.5000: 100.00 × 0.00005 = 0.005 each, Σ 0.015 → F 0.01; remainders tie, so the
///         fen goes to the smallest account id → 1: 100.01
///   11-27 -0.5000: 1: 100.01 × -0.00005 = -0.0050005, 2 and 3: -0.005; Σ -0.0150005 → F -0.01,
///         taken from the largest remainder toward zero, 1's → 1: 100.00
///   11-28 -0.5000: -0.005 each → F -0.01; a tie, taken from the smallest id → 1: 99.99
///   11-29 +0.5000: 1: 99.99 × 0.00005 = 0.0049995, 2 and 3: 0.005; Σ 0.0149995 → F 0.01 to the
///         largest remainders, 2 and 3 tie → 2: 100.01
#[tokio::test]
async fn redistribute_breaks_ties_by_account_id_and_mirrors_negative_days() {
    let app = spawn_command().await;
    app.setup_fund_with("redistribute").await;
    let mut holders = Vec::new();
    for name in ["h1", "h2", "h3"] {
        let acct = app.open_account("p1", name).await;
        seed_units(&app, &acct, "100.00").await;
        holders.push(acct);
    }
    assert!(holders.windows(2).all(|w| w[0] < w[1]));
    for (day, per10k) in [
        ("2026-11-26", "0.5000"),
        ("2026-11-27", "-0.5000"),
        ("2026-11-28", "-0.5000"),
        ("2026-11-29", "0.5000"),
    ] {
        publish(&app, day, per10k).await;
    }
    app.set_now("2026-11-27T09:00:00+08:00");
    cycle(&app, "2026-11-26").await;
    app.set_now("2026-11-30T09:00:00+08:00");
    let r = cycle(&app, "2026-11-27").await;
    let f: Vec<&str> = r["distributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["fund_income"].as_str().unwrap())
        .collect();
    assert_eq!(f, ["-0.01", "-0.01", "0.01"]);
    check_invariants(&app).await;
    let expected = [
        ["0.01", "-0.01", "-0.01", "0"],
        ["0", "0", "0", "0.01"],
        ["0", "0", "0", "0"],
    ];
    let days = ["2026-11-26", "2026-11-27", "2026-11-28", "2026-11-29"];
    for (h, acct) in holders.iter().enumerate() {
        for (d, day) in days.iter().enumerate() {
            assert_eq!(
                income_of(&app, acct, day).await,
                dec(expected[h][d]),
                "holder {} on {day}",
                h + 1
            );
        }
    }
    let units: Vec<_> = futures::future::join_all(holders.iter().map(|a| position(&app, a)))
        .await
        .into_iter()
        .map(|p| p.units)
        .collect();
    assert_eq!(units, [dec("99.99"), dec("100.01"), dec("100.00")]);
}

/// A fund whose holders span many batches, run three at a time: every position gets exactly
/// what `mmf_domain::income` gives it when it sees all holders at once, and Σ paid = F.
#[tokio::test]
async fn redistribute_over_many_parallel_batches_equals_the_rule_over_all_holders() {
    use mmf_domain::income::{distribute, Holding, IncomePolicy};
    let app = spawn_command().await;
    app.setup_fund_with("redistribute").await;
    let mut holdings = Vec::new();
    for i in 0..120u32 {
        let acct = app.open_account("p1", &format!("many-{i}")).await;
        // From sub-yuan holdings (income below a fen) to large ones; some identical, so
        // remainders tie across batches.
        let fen = match i % 4 {
            0 => 1 + i64::from(i) * 37,
            1 => 12_345,
            _ => i64::from(i) * 1_000_003 % 90_000_000,
        };
        let units = rust_decimal::Decimal::new(fen, 2);
        seed_units(&app, &acct, &units.to_string()).await;
        holdings.push(Holding {
            account_id: acct,
            eligible: units,
            carry: rust_decimal::Decimal::ZERO,
            units,
        });
    }
    publish(&app, "2026-11-26", "0.6543").await;
    app.set_now("2026-11-27T09:00:00+08:00");
    let (s, r) = run_cycle(&app, "2026-11-26", json!({"batch_size": 7, "parallel": 3})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let dist = &r["distributions"][0];
    assert!(dist["batches"].as_u64().unwrap() >= 15, "{dist}");
    check_invariants(&app).await;

    let (allocation, payouts) = distribute(IncomePolicy::Redistribute, dec("0.6543"), &holdings);
    let allocation = allocation.unwrap();
    assert!(
        allocation.extra_fen > 10,
        "enough fen left over to matter: {allocation:?}"
    );
    assert_eq!(dist["fund_income"], allocation.fund_income().to_string());
    for p in payouts {
        assert_eq!(
            income_of(&app, &p.account_id, "2026-11-26").await,
            p.paid,
            "{}",
            p.account_id
        );
    }
}

/// Redemptions accepted under the old rule (effective the next calendar day) are re-dated by
/// the migration when no distribution has used their date yet; the journal reverses and
/// re-books the movement.
#[tokio::test]
async fn the_migration_re_dates_redemptions_not_yet_used_by_a_distribution() {
    let db = fresh_db_at(23).await;
    let c = mmf_tests::sync::connect(&db).await;
    c.batch_execute(
        "INSERT INTO partners VALUES ('p1', 'p1', 's', now());
         INSERT INTO funds (fund_code, name, max_subscription_per_order, max_subscription_per_day)
             VALUES ('000001', 'F', 1000, 1000), ('000002', 'G', 1000, 1000);
         INSERT INTO calendar_years (year) VALUES (2026);
         INSERT INTO holidays VALUES ('2026-11-30', 2026);
         INSERT INTO accounts (account_id, partner_id, customer_id, name, id_type, id_number, id_masked, opened_at)
             VALUES ('800000000001', 'p1', 'c1', 'A', 'passport', 'X1234', 'X1234', now());
         -- Friday redemptions: the old rule dated them Saturday.
         INSERT INTO orders (order_id, partner_id, request_id, account_id, fund_code, kind, amount, status,
                             trade_date, effective_date, accepted_at)
             VALUES (1, 'p1', 'r1', '800000000001', '000001', 'redemption', 40, 'accepted',
                     '2026-11-27', '2026-11-28', '2026-11-27 10:00+08'),
                    (2, 'p1', 'r2', '800000000001', '000002', 'redemption', 30, 'accepted',
                     '2026-11-27', '2026-11-28', '2026-11-27 10:00+08');
         INSERT INTO unit_journal (account_id, fund_code, order_id, kind, units, effective_date, booked_at)
             VALUES ('800000000001', '000001', 1, 'redemption', -40, '2026-11-28', '2026-11-27 10:00+08'),
                    ('800000000001', '000002', 2, 'redemption', -30, '2026-11-28', '2026-11-27 10:00+08');
         -- Fund 000002's Saturday is already distributed: its redemption keeps its date.
         INSERT INTO fund_income (fund_code, day, per10k) VALUES ('000002', '2026-11-28', 0.5);
         INSERT INTO income_runs (fund_code, day, per10k, policy, bounds)
             VALUES ('000002', '2026-11-28', 0.5, 'carry_forward', '{NULL,NULL}');",
    )
    .await
    .unwrap();
    mmf_shared::db::migrate(&db.url).await.unwrap();
    let dates: Vec<(i64, String)> = c
        .query(
            "SELECT order_id, effective_date::text FROM orders ORDER BY order_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        dates,
        [(1, "2026-12-01".to_string()), (2, "2026-11-28".to_string())]
    );
    let journal: Vec<(i64, String, String)> = c
        .query(
            "SELECT order_id, effective_date::text, units::text FROM unit_journal
             ORDER BY order_id, entry_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let row = |o: i64, d: &str, u: &str| (o, d.to_string(), u.to_string());
    assert_eq!(
        journal,
        [
            row(1, "2026-11-28", "-40.00"),
            row(1, "2026-11-28", "40.00"),
            row(1, "2026-12-01", "-40.00"),
            row(2, "2026-11-28", "-30.00"),
        ]
    );
}
