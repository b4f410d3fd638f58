//! Daily income of one fund for one calendar day (DESIGN §3).
//!
//! Every position's exact income is `eligible × per10k / 10,000`. What reaches the investor is
//! whole fen, truncated toward zero; the fund's policy says where the rest goes:
//! - `redistribute`: the fund's day income F = Σ exact, truncated to the fen, is paid out in
//!   full: every position first gets its own truncated amount, and the fen left over go one
//!   each to the positions with the largest truncated-off remainders (ties by ascending account
//!   id). Negative days mirror this toward zero. Nothing is carried.
//! - `carry_forward`: each position keeps its sub-fen remainder in `carry` and adds it to the
//!   next day's income.
//! - `to_fund`: the remainder belongs to the fund.
//!
//! A negative payment never takes more units than the position holds at that moment; what it
//! cannot take stays in carry (`carry_forward`) or is borne by the fund (the others).
//!
//! Exact amounts are integers here: eligible units in fen times per10k in units of 0.0001 is
//! the exact income in units of 10⁻¹⁰ yuan (`TENTHS`), so truncation and remainders are
//! integer division, with no rounding anywhere.
//!
//! The 7-day annualized yield of a published day ([`yield_7d`], [`yields`]) is computed here
//! too, from the per-10k income of the seven calendar days ending on it.

use crate::money::Per10k;
use chrono::{Days, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Units of 10⁻¹⁰ yuan in one fen.
const PER_FEN: i128 = 100_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IncomePolicy {
    Redistribute,
    CarryForward,
    ToFund,
}

impl IncomePolicy {
    pub const ALL: [IncomePolicy; 3] = [
        IncomePolicy::Redistribute,
        IncomePolicy::CarryForward,
        IncomePolicy::ToFund,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncomePolicy::Redistribute => "redistribute",
            IncomePolicy::CarryForward => "carry_forward",
            IncomePolicy::ToFund => "to_fund",
        }
    }

    pub fn parse(s: &str) -> Option<IncomePolicy> {
        IncomePolicy::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// One position as the day's distribution finds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Holding {
    pub account_id: String,
    /// Units earning on the day: every movement effective on or before it.
    pub eligible: Decimal,
    /// Sub-fen income carried from earlier days (`carry_forward`).
    pub carry: Decimal,
    /// Units held now, which a negative payment cannot exceed.
    pub units: Decimal,
}

/// What the day does to one position.
#[derive(Clone, Debug, PartialEq)]
pub struct Payout {
    pub account_id: String,
    /// eligible × per10k / 10,000, exact.
    pub income: Decimal,
    /// Whole fen credited (or debited) as units.
    pub paid: Decimal,
    pub carry_after: Decimal,
    /// What the fund keeps (or bears, when negative).
    pub to_fund: Decimal,
}

/// The exact income of `eligible` units at `per10k`, split into whole fen (toward zero) and the
/// remainder in 10⁻¹⁰ yuan, which has the income's sign.
pub fn split(eligible: Decimal, per10k: Decimal) -> (i64, i64) {
    split_scaled(scaled(eligible, 2), scaled(per10k, 4))
}

/// [`split`] of `eligible_fen` fen at `per10k_scaled` (per10k × 10,000).
fn split_scaled(eligible_fen: i128, per10k_scaled: i128) -> (i64, i64) {
    let exact = eligible_fen * per10k_scaled;
    let fen = exact / PER_FEN;
    let rem = exact % PER_FEN;
    (
        i64::try_from(fen).expect("income within i64 fen"),
        rem as i64,
    )
}

fn scaled(d: Decimal, scale: u32) -> i128 {
    let mut d = d;
    assert!(d.scale() <= scale, "{d} has more than {scale} decimals");
    d.rescale(scale);
    d.mantissa()
}

/// Units with at most two decimals, in fen.
fn fen_of(units: Decimal) -> i64 {
    i64::try_from(scaled(units, 2)).expect("units within i64 fen")
}

fn fen(n: i64) -> Decimal {
    Decimal::new(n, 2)
}

fn trunc2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::ToZero)
}

/// Which positions receive the fen that truncation left over (policy `redistribute`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// F in fen: the fund's day income, Σ exact truncated toward zero.
    pub fund_income_fen: i64,
    /// F − Σ truncated incomes, in fen: positive on a positive day, negative on a negative one.
    pub extra_fen: i64,
    /// The last position that receives one: every position ranked at or before it does.
    pub cutoff: Option<Cutoff>,
}

/// A position's place in the ranking: remainder in the direction of the day (larger first),
/// then account id (smaller first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cutoff {
    pub key: i64,
    pub account_id: String,
}

impl Allocation {
    /// -1, 0 or 1: the extra fen of a position with this remainder.
    pub fn extra(&self, account_id: &str, rem: i64) -> i64 {
        let Some(c) = &self.cutoff else { return 0 };
        let dir = self.extra_fen.signum();
        let key = dir * rem;
        let ranked_in = key > c.key || (key == c.key && account_id <= c.account_id.as_str());
        if ranked_in {
            dir
        } else {
            0
        }
    }

    pub fn fund_income(&self) -> Decimal {
        fen(self.fund_income_fen)
    }
}

/// Builds an [`Allocation`] from every position's eligible units, in any order and in any
/// number of parts (the database reads them per batch).
pub struct Allocator {
    per10k_scaled: i128,
    truncated_fen: i128,
    remainders: i128,
    candidates: Vec<(i64, String)>,
}

impl Allocator {
    pub fn new(per10k: Decimal) -> Allocator {
        Allocator {
            per10k_scaled: scaled(per10k, 4),
            truncated_fen: 0,
            remainders: 0,
            candidates: Vec::new(),
        }
    }

    /// Adds one position holding `eligible_fen` eligible units (in fen).
    pub fn add(&mut self, account_id: String, eligible_fen: i64) {
        let (t, rem) = split_scaled(i128::from(eligible_fen), self.per10k_scaled);
        self.truncated_fen += i128::from(t);
        self.remainders += i128::from(rem);
        if rem != 0 {
            self.candidates.push((rem, account_id));
        }
    }

    pub fn finish(mut self) -> Allocation {
        let exact = self.truncated_fen * PER_FEN + self.remainders;
        let fund = exact / PER_FEN;
        let extra = fund - self.truncated_fen;
        let dir = extra.signum() as i64;
        let n = extra.unsigned_abs() as usize;
        let cutoff = if n == 0 {
            None
        } else {
            // Only remainders in the day's direction can be rounded up; there are always more
            // of them than fen to give, since the fen come from their sum.
            self.candidates.retain(|(rem, _)| dir * rem > 0);
            assert!(
                self.candidates.len() >= n,
                "{n} fen for {} positions",
                self.candidates.len()
            );
            let rank = |a: &(i64, String), b: &(i64, String)| -> Ordering {
                (dir * b.0).cmp(&(dir * a.0)).then_with(|| a.1.cmp(&b.1))
            };
            let (_, last, _) = self.candidates.select_nth_unstable_by(n - 1, rank);
            Some(Cutoff {
                key: dir * last.0,
                account_id: std::mem::take(&mut last.1),
            })
        };
        Allocation {
            fund_income_fen: i64::try_from(fund).expect("fund income within i64 fen"),
            extra_fen: i64::try_from(extra).expect("extra fen within i64"),
            cutoff,
        }
    }
}

/// The allocation of a day's income over `holdings` (policy `redistribute`).
pub fn allocate<'a>(
    per10k: Decimal,
    holdings: impl IntoIterator<Item = &'a Holding>,
) -> Allocation {
    let mut a = Allocator::new(per10k);
    for h in holdings {
        a.add(h.account_id.clone(), fen_of(h.eligible));
    }
    a.finish()
}

/// The day's effect on one position, or `None` when it has nothing to earn or carry.
/// `allocation` is required for `redistribute`.
pub fn pay(
    policy: IncomePolicy,
    per10k: Decimal,
    h: &Holding,
    allocation: Option<&Allocation>,
) -> Option<Payout> {
    if h.eligible.is_zero() && h.carry.is_zero() {
        return None;
    }
    let income = h.eligible * per10k / Decimal::from(10_000);
    let floor = -h.units;
    let payout = |paid: Decimal, carry_after: Decimal, to_fund: Decimal| Payout {
        account_id: h.account_id.clone(),
        income,
        paid,
        carry_after,
        to_fund,
    };
    Some(match policy {
        IncomePolicy::Redistribute => {
            let (t, rem) = split(h.eligible, per10k);
            let a = allocation.expect("redistribute needs the day's allocation");
            let paid = fen(t + a.extra(&h.account_id, rem)).max(floor);
            payout(paid, h.carry, income - paid)
        }
        IncomePolicy::CarryForward => {
            let accrued = h.carry + income;
            let paid = trunc2(accrued).max(floor);
            payout(paid, accrued - paid, Decimal::ZERO)
        }
        IncomePolicy::ToFund => {
            let accrued = h.carry + income;
            let paid = trunc2(accrued).max(floor);
            payout(paid, Decimal::ZERO, accrued - paid)
        }
    })
}

/// One day's distribution over every position of a fund: the allocation (for
/// `redistribute`) and each position's payout, in the order of `holdings`.
pub fn distribute(
    policy: IncomePolicy,
    per10k: Decimal,
    holdings: &[Holding],
) -> (Option<Allocation>, Vec<Payout>) {
    let allocation = (policy == IncomePolicy::Redistribute).then(|| allocate(per10k, holdings));
    let payouts = holdings
        .iter()
        .filter_map(|h| pay(policy, per10k, h, allocation.as_ref()))
        .collect();
    (allocation, payouts)
}

/// Largest yield a fund's income table stores (numeric(18,3)): |yield| < 10^15 %.
const YIELD_LIMIT: Decimal = Decimal::from_parts(0xA4C6_8000, 0x38D7E, 0, false, 0); // 1e15

/// The 7-day annualized yield in percent of the seven consecutive calendar days `week` (oldest
/// first): ((Π (1 + per10k/10,000))^(365/7) − 1) × 100, rounded half away from zero (half-up
/// for the usual positive yields) to 3 decimals. `None` unless exactly seven days are given,
/// and for a yield beyond ±10^15 % (which no fund publishes and the database cannot store).
///
/// Computed in `Decimal` (28 significant digits): the product is rounded once per factor
/// (relative error < 10⁻²⁷), its seventh root is found by Newton's method to the last digit,
/// and raised to the 365th power by squaring, so the yield before rounding is within 10⁻²⁰ %
/// of the exact value. It therefore rounds as the exact value does, unless that lies within
/// 10⁻²⁰ of a rounding midpoint, which (Π^(365/7) being irrational but for trivial weeks)
/// does not happen for any published income.
pub fn yield_7d(week: &[Per10k]) -> Option<Decimal> {
    if week.len() != 7 {
        return None;
    }
    let mut product = Decimal::ONE;
    for p in week {
        product = product.checked_mul(Decimal::ONE + p.per_unit())?;
    }
    let annual = pow(seventh_root(product), 365)?;
    let mut y = (annual - Decimal::ONE)
        .checked_mul(Decimal::ONE_HUNDRED)?
        .round_dp_with_strategy(3, RoundingStrategy::MidpointAwayFromZero);
    y.rescale(3);
    (y.abs() < YIELD_LIMIT).then_some(y)
}

/// The positive seventh root of `x` ≥ 0, to the precision of `Decimal`. Newton's iteration
/// y ← (6y + x / y⁶) / 7 decreases monotonically toward the root from any start above it.
fn seventh_root(x: Decimal) -> Decimal {
    if x.is_zero() {
        return x;
    }
    let mut y = x.max(Decimal::ONE);
    for _ in 0..400 {
        let y2 = y * y;
        let y6 = y2 * y2 * y2;
        if y6.is_zero() {
            break;
        }
        let next = (Decimal::from(6) * y + x / y6) / Decimal::from(7);
        if next >= y {
            break;
        }
        y = next;
    }
    y
}

/// `x` to the power `n` by squaring; `None` on overflow.
fn pow(x: Decimal, mut n: u32) -> Option<Decimal> {
    let (mut base, mut acc) = (x, Decimal::ONE);
    while n > 0 {
        if n & 1 == 1 {
            acc = acc.checked_mul(base)?;
        }
        n >>= 1;
        if n > 0 {
            base = base.checked_mul(base)?;
        }
    }
    Some(acc)
}

/// The 7-day yield of every published day of a fund: present for a day when it and the six
/// calendar days before it are all published.
pub fn yields(published: &BTreeMap<NaiveDate, Per10k>) -> BTreeMap<NaiveDate, Option<Decimal>> {
    published
        .keys()
        .map(|&day| {
            let week: Option<Vec<Per10k>> = (0..7)
                .rev()
                .map(|back| published.get(&(day - Days::new(back))).copied())
                .collect();
            (day, week.and_then(|w| yield_7d(&w)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn holding(id: &str, eligible: Decimal) -> Holding {
        Holding {
            account_id: id.into(),
            eligible,
            carry: Decimal::ZERO,
            units: eligible,
        }
    }

    fn paid_of(p: &[Payout]) -> Vec<Decimal> {
        p.iter().map(|p| p.paid).collect()
    }

    #[test]
    fn split_truncates_toward_zero() {
        // 3333.33 × 0.6 / 10,000 = 0.1999998
        assert_eq!(split(dec!(3333.33), dec!(0.6)), (19, 99_998_000));
        // 2333.85 × -0.2 / 10,000 = -0.046677
        assert_eq!(split(dec!(2333.85), dec!(-0.2)), (-4, -66_770_000));
        assert_eq!(split(dec!(0), dec!(0.65)), (0, 0));
    }

    #[test]
    fn redistribute_gives_the_left_over_fen_to_the_largest_remainders() {
        // Exact 0.6, 0.1999998, 0.0740736: F = 0.87, truncated 0.60 + 0.19 + 0.07 = 0.86, so
        // one fen goes to the largest remainder (0.0099998, the second position).
        let h = [
            holding("A", dec!(10000.00)),
            holding("B", dec!(3333.33)),
            holding("C", dec!(1234.56)),
        ];
        let (a, p) = distribute(IncomePolicy::Redistribute, dec!(0.6), &h);
        assert_eq!(a.unwrap().fund_income(), dec!(0.87));
        assert_eq!(paid_of(&p), [dec!(0.60), dec!(0.20), dec!(0.07)]);
    }

    #[test]
    fn ties_go_to_the_smaller_account_id() {
        // 100.00 × 0.5 / 10,000 = 0.005 each: F = trunc(0.015) = 0.01.
        let h = [
            holding("802", dec!(100)),
            holding("801", dec!(100)),
            holding("803", dec!(100)),
        ];
        let (_, p) = distribute(IncomePolicy::Redistribute, dec!(0.5), &h);
        assert_eq!(paid_of(&p), [dec!(0), dec!(0.01), dec!(0)]);
        // A negative day mirrors it: F = -0.01, taken from the smallest account id.
        let (a, p) = distribute(IncomePolicy::Redistribute, dec!(-0.5), &h);
        assert_eq!(a.unwrap().extra_fen, -1);
        assert_eq!(paid_of(&p), [dec!(0), dec!(-0.01), dec!(0)]);
    }

    #[test]
    fn carry_forward_and_to_fund() {
        let mut h = holding("A", dec!(3333.33));
        h.carry = dec!(0.0040736);
        let p = pay(IncomePolicy::CarryForward, dec!(0.6), &h, None).unwrap();
        // 0.0040736 + 0.1999998 = 0.2040734 → 0.20, carry 0.0040734
        assert_eq!((p.paid, p.carry_after), (dec!(0.20), dec!(0.0040734)));
        let p = pay(
            IncomePolicy::ToFund,
            dec!(0.6),
            &holding("A", dec!(3333.33)),
            None,
        )
        .unwrap();
        assert_eq!((p.paid, p.to_fund), (dec!(0.19), dec!(0.0099998)));
    }

    #[test]
    fn a_negative_payment_never_exceeds_the_units_held() {
        let h = Holding {
            account_id: "A".into(),
            eligible: dec!(100000),
            carry: Decimal::ZERO,
            units: dec!(0.50),
        };
        // -1.00 income on units that were mostly redeemed since: only 0.50 can be taken.
        let p = pay(IncomePolicy::CarryForward, dec!(-0.1), &h, None).unwrap();
        assert_eq!((p.paid, p.carry_after), (dec!(-0.50), dec!(-0.50)));
        let (_, p) = distribute(IncomePolicy::Redistribute, dec!(-0.1), &[h]);
        assert_eq!((p[0].paid, p[0].to_fund), (dec!(-0.50), dec!(-0.50)));
    }

    /// Positions as the generators make them: fen holdings from zero to a million yuan (many
    /// below a yuan, so that income is sub-fen), units held now sometimes below eligible
    /// (redeemed since: a third, or a few fen), carry from earlier days.
    fn holdings() -> impl Strategy<Value = Vec<Holding>> {
        let one = (
            prop_oneof![0i64..100, 0i64..10_000, 0i64..100_000_000],
            prop_oneof![Just(0i64), -99_999_999i64..99_999_999],
            prop_oneof![8 => Just(0usize), 1 => Just(1usize), 1 => Just(2usize)],
        );
        prop::collection::vec(one, 1..300).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (e, carry, redeemed))| Holding {
                    account_id: format!("8{:011}", (i * 7919) % 1000),
                    eligible: Decimal::new(e, 2),
                    carry: Decimal::new(carry, 10),
                    units: Decimal::new([e, e / 3, e % 7][redeemed], 2),
                })
                .collect::<Vec<_>>()
        })
    }

    /// Per-10k income of either sign, sometimes sub-fen on most holdings, sometimes a loss
    /// large enough to exceed what a mostly redeemed position still holds.
    fn per10k() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            4 => -20_000i64..20_000,
            4 => -100i64..100,
            1 => -99_999_999i64..-100_000,
        ]
        .prop_map(|n| Decimal::new(n, 4))
    }

    fn unique(mut h: Vec<Holding>) -> Vec<Holding> {
        h.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        h.dedup_by(|a, b| a.account_id == b.account_id);
        h
    }

    fn p10k(s: &str) -> Per10k {
        s.parse().unwrap()
    }

    #[test]
    fn yields_of_the_worked_scenario() {
        // tests/tests/cycle_scenario.rs: 0.65 from 11-20 to 11-26, then the days below.
        let mut published = BTreeMap::new();
        let day0: NaiveDate = "2026-11-20".parse().unwrap();
        for n in 0..7 {
            published.insert(day0 + Days::new(n), p10k("0.6500"));
        }
        for (n, v) in ["0.7000", "0.6800", "-0.1500", "0.6200", "0.6600", "0.6400"]
            .into_iter()
            .enumerate()
        {
            published.insert(day0 + Days::new(7 + n as u64), p10k(v));
        }
        let y = yields(&published);
        let at = |s: &str| y[&s.parse::<NaiveDate>().unwrap()].map(|d| d.to_string());
        assert_eq!(at("2026-11-25"), None, "six days published");
        for (day, expect) in [
            ("2026-11-26", "2.401"),
            ("2026-11-27", "2.427"),
            ("2026-11-28", "2.444"),
            ("2026-11-29", "2.017"),
            ("2026-11-30", "2.001"),
            ("2026-12-01", "2.006"),
            ("2026-12-02", "2.001"),
        ] {
            assert_eq!(at(day).as_deref(), Some(expect), "{day}");
        }
        // A gap makes the seven days after it absent.
        published.remove(&"2026-11-28".parse().unwrap());
        let y = yields(&published);
        assert_eq!(y[&"2026-12-02".parse().unwrap()], None);
        assert!(y[&"2026-11-27".parse().unwrap()].is_some());
    }

    #[test]
    fn yield_edges() {
        let week = |v: &str| vec![p10k(v); 7];
        assert_eq!(yield_7d(&week("0")), Some(dec!(0.000)));
        assert_eq!(yield_7d(&week("0.65")[..6]), None);
        assert_eq!(yield_7d(&[week("0.65"), week("0.65")].concat()), None);
        // (1.0001)^365 = 1.037172411…: 3.717
        assert_eq!(yield_7d(&week("1")), Some(dec!(3.717)));
        assert_eq!(yield_7d(&week("-1")), Some(dec!(-3.584)));
        // Nearly everything lost every day: −100 %.
        assert_eq!(yield_7d(&week("-9999.9999")), Some(dec!(-100.000)));
        // 0.08 a day: 1.08^365 ≈ 1.6e12, still storable; 0.5 a day is not.
        assert_eq!(yield_7d(&week("800")), Some(dec!(158369210882599.869)));
        // Exact in the third decimal even this far out: (1.07^365 − 1) × 100 =
        // 5309808459697.07296… (Postgres' exp(Σ ln) gives …697.072 here).
        assert_eq!(yield_7d(&week("700")), Some(dec!(5309808459697.073)));
        assert_eq!(yield_7d(&week("5000")), None);
    }

    fn week() -> impl Strategy<Value = Vec<Per10k>> {
        let day = prop_oneof![
            4 => -30_000i64..30_000,
            1 => -99_999_999i64..99_999_999,
            1 => -8_000_000i64..8_000_000,
        ];
        prop::collection::vec(day.prop_map(|n| Per10k::from_scaled(n).unwrap()), 7)
    }

    proptest! {
        #[test]
        fn yield_signs_and_absence(w in week(), short in 0usize..7) {
            prop_assert_eq!(yield_7d(&w[..short]), None);
            let Some(y) = yield_7d(&w) else { return Ok(()) };
            let product: Decimal = w.iter().map(|p| Decimal::ONE + p.per_unit()).product();
            if w.iter().all(|p| p.decimal() > Decimal::ZERO) {
                prop_assert!(y > Decimal::ZERO, "{y}");
            }
            prop_assert!(product >= Decimal::ONE || y <= Decimal::ZERO);
            prop_assert!(product <= Decimal::ONE || y >= Decimal::ZERO);
            prop_assert!(y >= dec!(-100));
            prop_assert_eq!(y.scale(), 3);
        }

        #[test]
        fn yield_rises_with_any_day_and_ignores_their_order(w in week(), i in 0usize..7, up in 1i64..1000) {
            let mut better = w.clone();
            if let Ok(p) = Per10k::from_scaled(better[i].decimal().mantissa() as i64 + up) {
                better[i] = p;
                if let (Some(a), Some(b)) = (yield_7d(&w), yield_7d(&better)) {
                    prop_assert!(b >= a, "{a} → {b}");
                }
            }
            let mut rev = w.clone();
            rev.reverse();
            prop_assert_eq!(yield_7d(&rev), yield_7d(&w));
        }

        #[test]
        fn yield_agrees_with_a_float_estimate(w in week()) {
            // A sanity bound only: floats never compute money here.
            let Some(y) = yield_7d(&w) else { return Ok(()) };
            let ln: f64 = w.iter().map(|p| (1.0 + p.per_unit().to_string().parse::<f64>().unwrap()).ln()).sum();
            let f = ((ln * 365.0 / 7.0).exp() - 1.0) * 100.0;
            let y: f64 = y.to_string().parse().unwrap();
            prop_assert!((y - f).abs() <= 0.0005 + f.abs() * 1e-9, "{y} vs {f}");
        }

        #[test]
        fn redistribute_pays_exactly_the_fund_income(h in holdings(), p in per10k()) {
            let h = unique(h);
            let mut h2 = h.clone();
            for x in &mut h2 { x.units = x.eligible; }
            let (a, pay) = distribute(IncomePolicy::Redistribute, p, &h2);
            let a = a.unwrap();
            let total: Decimal = h2.iter().map(|x| x.eligible * p / Decimal::from(10_000)).sum();
            prop_assert_eq!(a.fund_income(), trunc2(total));
            prop_assert_eq!(pay.iter().map(|x| x.paid).sum::<Decimal>(), a.fund_income());
            for x in &pay {
                // Each position gets its truncated income and at most one fen more.
                let extra = x.paid - trunc2(x.income);
                prop_assert!(extra.is_zero() || extra == fen(a.extra_fen.signum()));
                prop_assert_eq!(x.paid + x.to_fund, x.income);
            }
            // Every position that got a fen has a remainder at least as large as every one
            // that did not.
            let dir = Decimal::from(a.extra_fen.signum());
            let rem = |x: &Payout| dir * (x.income - trunc2(x.income));
            let got: Vec<&Payout> = pay.iter().filter(|x| x.paid != trunc2(x.income)).collect();
            let not: Vec<&Payout> = pay.iter().filter(|x| x.paid == trunc2(x.income)).collect();
            for g in &got {
                for n in &not {
                    prop_assert!(rem(g) > rem(n) || (rem(g) == rem(n) && g.account_id < n.account_id));
                }
            }
        }

        #[test]
        fn every_policy_accounts_for_the_whole_income(h in holdings(), p in per10k()) {
            let h = unique(h);
            for policy in IncomePolicy::ALL {
                let (_, pay) = distribute(policy, p, &h);
                for x in &pay {
                    let carry_before = h.iter().find(|y| y.account_id == x.account_id).unwrap().carry;
                    prop_assert_eq!(x.paid + (x.carry_after - carry_before) + x.to_fund, x.income);
                    prop_assert!(x.paid.scale() <= 2);
                    let held = h.iter().find(|y| y.account_id == x.account_id).unwrap().units;
                    prop_assert!(x.paid >= -held, "never more than the units held");
                    if policy == IncomePolicy::CarryForward {
                        // What is carried is less than a fen, unless a cap left it there.
                        prop_assert!(x.carry_after.abs() < dec!(0.01) || x.paid == -held);
                    }
                    if policy != IncomePolicy::Redistribute && x.paid != -held {
                        // Whole fen toward zero: never more than accrued, never the other sign,
                        // less than a fen left.
                        let accrued = carry_before + x.income;
                        prop_assert!(x.paid.abs() <= accrued.abs(), "{} of {}", x.paid, accrued);
                        prop_assert!(x.paid.is_zero() || x.paid.is_sign_negative() == accrued.is_sign_negative());
                        prop_assert!((accrued - x.paid).abs() < dec!(0.01));
                    }
                }
            }
        }

        #[test]
        fn the_allocation_does_not_depend_on_how_positions_are_split(h in holdings(), p in per10k(), cut in 0usize..300) {
            let h = unique(h);
            let whole = allocate(p, &h);
            let cut = cut.min(h.len());
            let mut parts = Allocator::new(p);
            for part in [&h[cut..], &h[..cut]] {
                for x in part.iter().rev() {
                    parts.add(x.account_id.clone(), fen_of(x.eligible));
                }
            }
            prop_assert_eq!(parts.finish(), whole);
        }
    }
}
