//! The 7-day yield statement (YIELDS_SQL, run by `mmf_command::income::publish`) against its
//! Rust twin (`mmf_domain::income::yields`) on random per-10k series of both signs: ordinary
//! days, negative days, extreme days (up to ±9999.9999 per 10k, where yields outgrow the table), gaps, days
//! published out of order and corrections of days already published. After every
//! publication, the yield it returns, and at the end the yield stored for every day, must
//! equal the Rust result.

mod sql_twins;

use chrono::NaiveDate;
use mmf_domain::income::yields;
use mmf_domain::Per10k;
use mmf_tests::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use rust_decimal::Decimal;
use sql_twins::*;
use std::collections::BTreeMap;

const DAYS: u64 = 150;

fn per10k(rng: &mut StdRng, negative_bias: bool) -> Per10k {
    let n: i64 = match rng.gen_range(0..44) {
        0 => rng.gen_range(-99_999_999..=-90_000_000),
        1 => rng.gen_range(-8_000_000..8_000_000),
        2 => 0,
        // Weeks whose yield is beyond what the table stores (and none is computed).
        40 => rng.gen_range(50_000_000..=99_999_999),
        // Mixed weeks of large days, some with yields of 10^12 % to 10^15 % (where the last
        // decimal needs every digit).
        41..=43 => rng.gen_range(-80_000_000..80_000_000),
        3..=9 => rng.gen_range(-30_000..0),
        _ if negative_bias => rng.gen_range(-20_000..5_000),
        _ => rng.gen_range(0..30_000),
    };
    Per10k::from_scaled(n).unwrap()
}

async fn check_fund(app: &TestApp, fund: &str, negative_bias: bool, rng: &mut StdRng) -> usize {
    let first = day("2026-06-01");
    let mut order: Vec<NaiveDate> = (0..DAYS)
        .map(|n| plus_days(first, n))
        .filter(|_| rng.gen_bool(0.96))
        .collect();
    // Mostly in order, some swapped, some corrected later.
    for i in 0..order.len() {
        if rng.gen_bool(0.1) {
            let j = (i + rng.gen_range(0..10)).min(order.len() - 1);
            order.swap(i, j);
        }
    }
    let corrections: Vec<NaiveDate> = order.choose_multiple(rng, 15).copied().collect();
    order.extend(corrections);
    let mut published = BTreeMap::new();
    for d in order {
        let p = per10k(rng, negative_bias);
        published.insert(d, p);
        let got = mmf_command::income::publish(&app.state.db, fund, d, p.decimal(), app.now())
            .await
            .unwrap();
        let expect = yields(&published)[&d];
        assert_eq!(
            got.yield_7d.map(|y| y.parse::<Decimal>().unwrap()),
            expect,
            "{fund} {d}: yield returned by publish (per10k {p})"
        );
    }
    let expect = yields(&published);
    let rows = app
        .pg()
        .await
        .query(
            "SELECT day, per10k, yield_7d FROM fund_income WHERE fund_code = $1 ORDER BY day",
            &[&fund],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), published.len());
    let mut present = 0;
    for r in &rows {
        let d: NaiveDate = r.get(0);
        assert_eq!(
            r.get::<_, Decimal>(1),
            published[&d].decimal(),
            "{fund} {d}: per10k"
        );
        assert_eq!(
            r.get::<_, Option<Decimal>>(2),
            expect[&d],
            "{fund} {d}: stored yield"
        );
        present += usize::from(expect[&d].is_some());
    }
    present
}

#[tokio::test]
async fn yield_sql_equals_the_rust_rule_on_random_series() {
    let app = spawn_command().await;
    let mut rng = rng();
    let mut present = 0;
    for (fund, negative) in [("000021", false), ("000022", true)] {
        app.create_fund(fund, "redistribute").await;
        present += check_fund(&app, fund, negative, &mut rng).await;
    }
    // Gaps leave days without a yield, but most have one.
    assert!(present > 100, "{present} yields compared");
}
