//! The set-based distribution SQL (`mmf_command::cycle::distribute`) against its Rust twin
//! (`mmf_domain::income`) on random funds: 10,000 positions per policy, two days in a row (the
//! second distributes the first's income), holdings from zero through sub-fen to millions,
//! carry from earlier days, future redemptions that leave fewer units held than eligible (so
//! that negative days hit the cap), future credits, and per-10k income of either sign.

use chrono::{Days, NaiveDate};
use mmf_command::cycle::distribute::{self, Batching};
use mmf_domain::income::{distribute, Holding, IncomePolicy};
use mmf_tests::cycle::publish_for;
use mmf_tests::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use std::collections::HashMap;

const POSITIONS: usize = 10_000;

struct Seeded {
    /// Every movement of every account: (units, effective date).
    movements: HashMap<String, Vec<(Decimal, NaiveDate)>>,
    holdings: Vec<Holding>,
}

fn fen(n: i64) -> Decimal {
    Decimal::new(n, 2)
}

/// Random positions of `fund` as of income day `day`, written to Postgres with their journal.
async fn seed(app: &TestApp, fund: &str, day: NaiveDate, carry: bool, rng: &mut StdRng) -> Seeded {
    let mut movements: HashMap<String, Vec<(Decimal, NaiveDate)>> = HashMap::new();
    let mut holdings = Vec::new();
    let (mut acct, mut units_col, mut carry_col) = (vec![], vec![], vec![]);
    let (mut j_acct, mut j_units, mut j_date) = (vec![], vec![], vec![]);
    let opened: NaiveDate = "2026-11-01".parse().unwrap();
    for i in 0..POSITIONS {
        let account = format!("8{:011}", i + 1);
        let eligible = fen(match rng.gen_range(0..10) {
            0 => 0,
            1..=3 => rng.gen_range(1..100),
            4..=6 => rng.gen_range(100..1_000_000),
            _ => rng.gen_range(1_000_000..100_000_000_000),
        });
        let mut moves = vec![];
        if !eligible.is_zero() {
            moves.push((eligible, opened));
        }
        // A redemption accepted already and effective after the day: still eligible, no
        // longer held; sometimes nearly everything.
        if !eligible.is_zero() && rng.gen_bool(0.15) {
            let keep = if rng.gen_bool(0.5) {
                fen(rng.gen_range(0..100))
            } else {
                eligible * fen(rng.gen_range(0..100))
            }
            .round_dp(2)
            .min(eligible);
            if keep < eligible {
                let when = day + Days::new(rng.gen_range(1..8));
                moves.push((keep - eligible, when));
            }
        }
        // A credit effective after the day: held, not yet eligible.
        if rng.gen_bool(0.05) {
            moves.push((
                fen(rng.gen_range(1..1_000_000)),
                day + Days::new(rng.gen_range(1..8)),
            ));
        }
        let units: Decimal = moves.iter().map(|m| m.0).sum();
        let c = if carry && rng.gen_bool(0.7) {
            Decimal::new(rng.gen_range(-99_999_999..99_999_999), 10)
        } else {
            Decimal::ZERO
        };
        for (u, d) in &moves {
            j_acct.push(account.clone());
            j_units.push(*u);
            j_date.push(*d);
        }
        acct.push(account.clone());
        units_col.push(units);
        carry_col.push(c);
        holdings.push(Holding {
            account_id: account.clone(),
            eligible,
            carry: c,
            units,
        });
        movements.insert(account, moves);
    }
    let pg = app.pg().await;
    pg.execute(
        "INSERT INTO accounts (account_id, partner_id, customer_id, name, id_type, id_number, id_masked, opened_at)
         SELECT a, 'p1', a, 'R', 'passport', 'X1234', 'X1234', now() FROM unnest($1::text[]) a
         ON CONFLICT DO NOTHING",
        &[&acct],
    )
    .await
    .unwrap();
    pg.execute(
        "INSERT INTO positions (account_id, fund_code, units, carry)
         SELECT a, $4, u, c FROM unnest($1::text[], $2::numeric[], $3::numeric[]) AS t(a, u, c)",
        &[&acct, &units_col, &carry_col, &fund],
    )
    .await
    .unwrap();
    pg.execute(
        "INSERT INTO unit_journal (account_id, fund_code, kind, units, effective_date, booked_at)
         SELECT a, $4, CASE WHEN u > 0 THEN 'subscription' ELSE 'redemption' END, u, d, now()
         FROM unnest($1::text[], $2::numeric[], $3::date[]) AS t(a, u, d)",
        &[&j_acct, &j_units, &j_date, &fund],
    )
    .await
    .unwrap();
    Seeded {
        movements,
        holdings,
    }
}

/// Each position as Postgres holds it: units, carry, last income and its day.
async fn positions(
    app: &TestApp,
    fund: &str,
) -> HashMap<String, (Decimal, Decimal, Decimal, Option<NaiveDate>)> {
    app.pg()
        .await
        .query(
            "SELECT account_id, units, carry, last_income, last_income_date FROM positions
             WHERE fund_code = $1",
            &[&fund],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                (
                    r.get(1),
                    r.get::<_, Decimal>(2).normalize(),
                    r.get(3),
                    r.get(4),
                ),
            )
        })
        .collect()
}

async fn check_policy(app: &TestApp, policy: IncomePolicy, fund: &str, rng: &mut StdRng) {
    let d1: NaiveDate = "2026-11-29".parse().unwrap();
    let d2 = d1 + Days::new(1);
    let seeded = seed(app, fund, d1, policy == IncomePolicy::CarryForward, rng).await;
    let mut holdings = seeded.holdings;
    let pool = &app.state.db;
    let batching = Batching {
        batch_size: 777,
        parallel: 3,
        pace: mmf_domain::pace::Pace::OFF,
    };
    // Day 1 of either sign; day 2 negative and larger than any day 1, so that payments
    // exceed the units held by the positions mostly redeemed since.
    let per10k = [
        Decimal::new(rng.gen_range(-20_000..20_000), 4),
        Decimal::new(rng.gen_range(-40_000..-25_000), 4),
    ];
    let mut capped = 0;
    for (n, day) in [d1, d2].into_iter().enumerate() {
        publish_for(app, fund, &day.to_string(), &per10k[n].to_string()).await;
        let dist = distribute::distribute(pool, fund, day, batching, app.clock.now(), &|_, _| {})
            .await
            .unwrap();
        assert!(dist.batches > 10, "{dist:?}");
        let (allocation, payouts) = distribute(policy, per10k[n], &holdings);
        let pg = positions(app, fund).await;
        let what = format!("{} day {} per10k {}", policy.as_str(), day, per10k[n]);
        let by_account: HashMap<&str, _> =
            payouts.iter().map(|p| (p.account_id.as_str(), p)).collect();
        for h in &mut holdings {
            let (units, carry, last, last_day) = pg[&h.account_id];
            match by_account.get(h.account_id.as_str()) {
                Some(p) => {
                    capped +=
                        usize::from(p.paid == -h.units && p.paid != p.income.trunc_with_scale(2));
                    h.units += p.paid;
                    h.carry = p.carry_after;
                    assert_eq!(last, p.paid, "{what}: {} paid", h.account_id);
                    assert_eq!(last_day, Some(day), "{what}: {}", h.account_id);
                }
                None => assert_ne!(last_day, Some(day), "{what}: {} untouched", h.account_id),
            }
            assert_eq!(units, h.units, "{what}: {} units", h.account_id);
            assert_eq!(carry, h.carry.normalize(), "{what}: {} carry", h.account_id);
        }
        let t = &dist.totals;
        let sum =
            |f: fn(&mmf_domain::income::Payout) -> Decimal| payouts.iter().map(f).sum::<Decimal>();
        assert_eq!(t.paid, sum(|p| p.paid), "{what}: Σ paid");
        assert_eq!(t.accrued, sum(|p| p.income), "{what}: Σ income");
        assert_eq!(t.to_fund, sum(|p| p.to_fund), "{what}: Σ to_fund");
        assert_eq!(
            dist.fund_income,
            allocation.as_ref().map(|a| a.fund_income()),
            "{what}: F"
        );
        if n == 0 {
            // Tomorrow's eligible units: every movement effective on or before it, with
            // today's income (effective tomorrow).
            for h in &mut holdings {
                let moved: Decimal = seeded.movements[&h.account_id]
                    .iter()
                    .filter(|(_, d)| *d <= d2)
                    .map(|(u, _)| *u)
                    .sum();
                let paid = by_account
                    .get(h.account_id.as_str())
                    .map_or(Decimal::ZERO, |p| p.paid);
                h.eligible = moved + paid;
            }
        }
    }
    // Capped negative payments are what the generators are for.
    assert!(
        capped > 10,
        "{}: {capped} payments capped at the units held",
        policy.as_str()
    );
}

#[tokio::test]
async fn distribution_sql_equals_the_rust_rules_on_random_funds() {
    let app = spawn_command().await;
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    for (policy, fund) in [
        (IncomePolicy::Redistribute, "000011"),
        (IncomePolicy::CarryForward, "000012"),
        (IncomePolicy::ToFund, "000013"),
    ] {
        app.create_fund(fund, policy.as_str()).await;
        check_policy(&app, policy, fund, &mut rng).await;
    }
}
