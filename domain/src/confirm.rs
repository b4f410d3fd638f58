//! Confirmation of one trade date T in the T+1 clearing (DESIGN §3): every subscription and
//! normal redemption of T still `accepted` becomes `confirmed`.
//! - A subscription credits its amount as units to its position, moving it out of
//!   `pending_subscription`, with effective date the next trading day after T (it earns from
//!   then on), and writes a journal row of kind `subscription`.
//! - A normal redemption was debited at acceptance with its effective date; confirming it only
//!   changes its status (the cash is settled to the partner).
//!
//! Cancelled and already confirmed orders, fast redemptions and orders of other trade dates
//! are left as they are, so confirming T twice changes nothing the second time.

use crate::calendar::{Calendar, TradeDate};
use crate::ids::{AccountId, FundCode};
use crate::money::{Amount, Units};
use crate::orders::{Order, OrderKind, OrderStatus};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// A position's balances that confirmation moves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub units: Units,
    /// Subscriptions accepted and not yet confirmed (not redeemable).
    pub pending_subscription: Amount,
}

/// A movement of units with the date it takes effect for income (`unit_journal`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    pub account_id: AccountId,
    pub fund_code: FundCode,
    pub order_id: i64,
    pub kind: OrderKind,
    pub units: Units,
    pub effective_date: NaiveDate,
}

/// What the confirmation of a trade date reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Confirmed {
    pub subscriptions: i64,
    pub subscription_amount: Decimal,
    pub redemptions: i64,
    pub redemption_amount: Decimal,
}

/// The effect of confirming one trade date.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Confirmation {
    /// The orders confirmed, as they are afterwards, in the order given.
    pub orders: Vec<Order>,
    /// One entry per confirmed subscription.
    pub journal: Vec<JournalEntry>,
    /// Units credited per position (the sum of its confirmed subscriptions).
    pub credits: BTreeMap<(AccountId, FundCode), Units>,
    pub totals: Confirmed,
}

/// Whether confirming `t` confirms `o`.
pub fn is_confirmed_by(o: &Order, t: TradeDate) -> bool {
    o.trade_date == t.date()
        && o.status == OrderStatus::Accepted
        && matches!(o.kind, OrderKind::Subscription | OrderKind::Redemption)
}

/// Confirms trade date `t` over `orders` (any orders; only those of `t` still open count).
pub fn confirm<'a>(
    calendar: &Calendar,
    t: TradeDate,
    orders: impl IntoIterator<Item = &'a Order>,
) -> Confirmation {
    let effective = calendar.subscription_effective(t);
    let mut c = Confirmation::default();
    for o in orders.into_iter().filter(|o| is_confirmed_by(o, t)) {
        let mut done = o.clone();
        done.status = OrderStatus::Confirmed;
        let amount = o.amount.decimal();
        if o.kind == OrderKind::Subscription {
            done.effective_date = Some(effective);
            let units = o.amount.as_units();
            c.journal.push(JournalEntry {
                account_id: o.account_id.clone(),
                fund_code: o.fund_code.clone(),
                order_id: o.order_id,
                kind: OrderKind::Subscription,
                units,
                effective_date: effective,
            });
            let credit = c
                .credits
                .entry((o.account_id.clone(), o.fund_code.clone()))
                .or_default();
            *credit = credit.checked_add(units).expect("credit within range");
            c.totals.subscriptions += 1;
            c.totals.subscription_amount += amount;
        } else {
            c.totals.redemptions += 1;
            c.totals.redemption_amount += amount;
        }
        c.orders.push(done);
    }
    c
}

impl Confirmation {
    /// Applies the credits to the positions they belong to.
    ///
    /// # Panics
    /// When a position does not hold the pending subscriptions being confirmed (which the
    /// order statements guarantee, and the database checks).
    pub fn apply(&self, positions: &mut BTreeMap<(AccountId, FundCode), Position>) {
        for (key, units) in &self.credits {
            let p = positions
                .get_mut(key)
                .expect("a subscription has its position");
            p.units = p.units.checked_add(*units).expect("units within range");
            p.pending_subscription = p
                .pending_subscription
                .checked_sub(units.as_amount())
                .expect("the position holds its pending subscriptions");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settlement::tests::{order, orders};
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_worked_scenario() {
        use OrderKind::*;
        use OrderStatus::*;
        // tests/tests/cycle_scenario.rs: trade date Friday 2026-11-27, Monday a holiday.
        let cal = Calendar::new([d("2026-11-30")]);
        let t = TradeDate::new(&cal, d("2026-11-27")).unwrap();
        let mut red = order(3, "p1", Redemption, "2000.00", Accepted, "2026-12-01");
        red.effective_date = Some(d("2026-12-02"));
        let orders = [
            order(1, "p1", Subscription, "20000.00", Accepted, "2026-11-27"),
            order(2, "p1", Subscription, "3000.00", Accepted, "2026-11-27"),
            red.clone(),
            order(4, "p1", FastRedemption, "1000.00", Confirmed, "2026-11-27"),
            order(5, "p1", Subscription, "7.00", Cancelled, "2026-11-27"),
        ];
        let c = confirm(&cal, t, &orders);
        assert_eq!(c.totals.subscriptions, 2);
        assert_eq!(c.totals.subscription_amount, dec!(23000.00));
        assert_eq!(c.totals.redemptions, 0);
        assert!(c
            .journal
            .iter()
            .all(|j| j.effective_date == d("2026-12-01")));
        let mut positions: BTreeMap<_, _> = c
            .credits
            .keys()
            .map(|k| {
                let pending = if k.0.as_str().ends_with('1') {
                    "20000"
                } else {
                    "3000"
                };
                (
                    k.clone(),
                    Position {
                        units: Units::ZERO,
                        pending_subscription: pending.parse().unwrap(),
                    },
                )
            })
            .collect();
        c.apply(&mut positions);
        assert!(positions.values().all(|p| p.pending_subscription.is_zero()));
        // Tuesday's confirmation takes the redemption, which keeps its effective date.
        let tue = TradeDate::new(&cal, d("2026-12-01")).unwrap();
        let c = confirm(&cal, tue, &orders);
        assert_eq!(c.orders.len(), 1);
        assert_eq!(c.orders[0].effective_date, Some(d("2026-12-02")));
        assert_eq!(c.orders[0].status, Confirmed);
        assert_eq!(c.totals.redemption_amount, dec!(2000.00));
        assert!(c.journal.is_empty());
    }

    fn calendar() -> impl Strategy<Value = Calendar> {
        prop::collection::vec(0u64..10, 0..4).prop_map(|n| {
            Calendar::new(
                n.into_iter()
                    .map(|k| d("2026-11-26") + chrono::Days::new(k)),
            )
        })
    }

    proptest! {
        #[test]
        fn confirmation_conserves_units_and_touches_only_open_orders_of_t(
            orders in orders(), cal in calendar(), shift in 0u64..3,
        ) {
            let day = cal.trading_day_on_or_after(d("2026-11-26") + chrono::Days::new(shift));
            let t = TradeDate::new(&cal, day).unwrap();
            let mut positions: BTreeMap<(AccountId, FundCode), Position> = BTreeMap::new();
            for o in orders.iter().filter(|o| o.kind == OrderKind::Subscription && o.status == OrderStatus::Accepted) {
                let p = positions.entry((o.account_id.clone(), o.fund_code.clone())).or_default();
                p.pending_subscription = p.pending_subscription.checked_add(o.amount).unwrap();
            }
            let before = positions.clone();
            let c = confirm(&cal, t, &orders);
            c.apply(&mut positions);
            let credited: Decimal = c.credits.values().map(|u| u.decimal()).sum();
            let journal: Decimal = c.journal.iter().map(|j| j.units.decimal()).sum();
            prop_assert_eq!(credited, c.totals.subscription_amount);
            prop_assert_eq!(journal, c.totals.subscription_amount);
            let held = |m: &BTreeMap<_, Position>| -> Decimal {
                m.values().map(|p| p.units.decimal() + p.pending_subscription.decimal()).sum()
            };
            prop_assert_eq!(held(&positions), held(&before));
            prop_assert_eq!(c.totals.subscriptions + c.totals.redemptions, c.orders.len() as i64);
            for o in &c.orders {
                let was = orders.iter().find(|x| x.order_id == o.order_id).unwrap();
                prop_assert!(is_confirmed_by(was, t));
                prop_assert_eq!(o.status, OrderStatus::Confirmed);
                if o.kind == OrderKind::Subscription {
                    let e = o.effective_date.unwrap();
                    prop_assert!(e > day && cal.is_trading_day(e));
                } else {
                    prop_assert_eq!(o.effective_date, was.effective_date);
                }
                prop_assert_eq!((&o.account_id, o.amount, o.kind), (&was.account_id, was.amount, was.kind));
            }
            let open = orders.iter().filter(|o| is_confirmed_by(o, t)).count();
            prop_assert_eq!(open, c.orders.len());
            // A second confirmation of T finds nothing left.
            let after: Vec<Order> = orders.iter().map(|o| {
                c.orders.iter().find(|x| x.order_id == o.order_id).unwrap_or(o).clone()
            }).collect();
            prop_assert_eq!(confirm(&cal, t, &after), Confirmation::default());
        }
    }
}
