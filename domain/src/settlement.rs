//! Net cash settlement of one trade date with each partner, per fund (DESIGN §3): from the
//! trade date's confirmed orders, the count and sum of subscriptions (cash the partner owes the
//! fund), of normal redemptions (cash the fund owes the partner) and of fast redemptions
//! (already paid at acceptance, so reported apart and not in the net). Net = subscriptions −
//! normal redemptions. Cancelled and still-open orders move no cash.

use crate::ids::{FundCode, PartnerId};
use crate::orders::{Order, OrderKind, OrderStatus};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub partner_id: PartnerId,
    pub fund_code: FundCode,
    pub trade_date: NaiveDate,
    pub subscription_count: i64,
    pub subscription_amount: Decimal,
    pub redemption_count: i64,
    pub redemption_amount: Decimal,
    /// Subscriptions minus normal redemptions: the partner pays the fund when positive.
    pub net_amount: Decimal,
    pub fast_count: i64,
    pub fast_amount: Decimal,
}

impl Settlement {
    fn empty(partner_id: PartnerId, fund_code: FundCode, trade_date: NaiveDate) -> Settlement {
        Settlement {
            partner_id,
            fund_code,
            trade_date,
            subscription_count: 0,
            subscription_amount: Decimal::ZERO,
            redemption_count: 0,
            redemption_amount: Decimal::ZERO,
            net_amount: Decimal::ZERO,
            fast_count: 0,
            fast_amount: Decimal::ZERO,
        }
    }

    fn add(&mut self, o: &Order) {
        let amount = o.amount.decimal();
        let (count, sum) = match o.kind {
            OrderKind::Subscription => {
                (&mut self.subscription_count, &mut self.subscription_amount)
            }
            OrderKind::Redemption => (&mut self.redemption_count, &mut self.redemption_amount),
            OrderKind::FastRedemption => (&mut self.fast_count, &mut self.fast_amount),
        };
        *count += 1;
        *sum += amount;
        self.net_amount = self.subscription_amount - self.redemption_amount;
    }
}

/// The settlements of `trade_date`: one per (partner, fund) with at least one confirmed order
/// of that trade date, ordered by partner then fund.
pub fn settle<'a>(
    trade_date: NaiveDate,
    orders: impl IntoIterator<Item = &'a Order>,
) -> Vec<Settlement> {
    let mut by_key: BTreeMap<(PartnerId, FundCode), Settlement> = BTreeMap::new();
    for o in orders {
        if o.trade_date != trade_date || o.status != OrderStatus::Confirmed {
            continue;
        }
        by_key
            .entry((o.partner_id.clone(), o.fund_code.clone()))
            .or_insert_with(|| {
                Settlement::empty(o.partner_id.clone(), o.fund_code.clone(), trade_date)
            })
            .add(o);
    }
    by_key.into_values().collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ids::{AccountId, RequestId};
    use crate::money::Amount;
    use crate::orders::Purpose;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    pub(crate) fn order(
        id: i64,
        partner: &str,
        kind: OrderKind,
        amount: &str,
        status: OrderStatus,
        trade_date: &str,
    ) -> Order {
        Order {
            order_id: id,
            partner_id: PartnerId::parse(partner).unwrap(),
            request_id: RequestId::parse(&format!("r{id}")).unwrap(),
            account_id: AccountId::parse(&format!("8{id:011}")).unwrap(),
            fund_code: FundCode::parse("000001").unwrap(),
            kind,
            purpose: (kind == OrderKind::FastRedemption).then_some(Purpose::Withdrawal),
            amount: amount.parse().unwrap(),
            status,
            trade_date: trade_date.parse().unwrap(),
            effective_date: None,
        }
    }

    #[test]
    fn the_worked_scenario() {
        use OrderKind::*;
        use OrderStatus::*;
        // tests/tests/cycle_scenario.rs, trade date Tuesday 2026-12-01.
        let t = "2026-12-01";
        let orders = [
            order(1, "p1", Redemption, "2000.00", Confirmed, t),
            order(2, "p1", FastRedemption, "1000.00", Confirmed, t),
            order(3, "p2", Subscription, "500.00", Confirmed, t),
            order(4, "p1", Subscription, "70.00", Cancelled, t),
            order(5, "p1", Subscription, "99.00", Accepted, t),
            order(6, "p1", Subscription, "10000.00", Confirmed, "2026-11-26"),
        ];
        let s = settle(t.parse().unwrap(), &orders);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].partner_id.as_str(), "p1");
        assert_eq!(
            (
                s[0].redemption_count,
                s[0].redemption_amount,
                s[0].net_amount
            ),
            (1, dec!(2000.00), dec!(-2000.00))
        );
        assert_eq!((s[0].fast_count, s[0].fast_amount), (1, dec!(1000.00)));
        assert_eq!(s[0].subscription_count, 0);
        assert_eq!(
            (s[1].partner_id.as_str(), s[1].net_amount),
            ("p2", dec!(500.00))
        );
    }

    pub(crate) fn orders() -> impl Strategy<Value = Vec<Order>> {
        let one = (
            0usize..3,
            0usize..3,
            0usize..3,
            0usize..3,
            1i64..10_000_000,
            0u64..3,
        );
        prop::collection::vec(one, 0..200).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (p, f, k, s, fen, day))| {
                    let mut o = order(
                        i as i64 + 1,
                        ["p1", "p2", "p3"][p],
                        OrderKind::ALL[k],
                        "1",
                        OrderStatus::ALL[s],
                        "2026-11-26",
                    );
                    o.fund_code = FundCode::parse(["000001", "000002", "MMF00A"][f]).unwrap();
                    o.amount = Amount::from_fen(fen);
                    o.trade_date = o.trade_date + chrono::Days::new(day);
                    o
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn net_is_subscriptions_minus_redemptions(orders in orders()) {
            let t: NaiveDate = "2026-11-26".parse().unwrap();
            let s = settle(t, &orders);
            let mine = |o: &&Order| o.trade_date == t && o.status == OrderStatus::Confirmed;
            for x in &s {
                prop_assert_eq!(x.net_amount, x.subscription_amount - x.redemption_amount);
                prop_assert!(x.subscription_count + x.redemption_count + x.fast_count > 0);
                prop_assert_eq!(x.trade_date, t);
            }
            // Every confirmed order of T is counted once, in its own group and kind.
            let total = |k: OrderKind| -> (i64, Decimal) {
                orders.iter().filter(mine).filter(|o| o.kind == k)
                    .fold((0, Decimal::ZERO), |(n, a), o| (n + 1, a + o.amount.decimal()))
            };
            let sum = |f: fn(&Settlement) -> (i64, Decimal)| s.iter().map(f)
                .fold((0, Decimal::ZERO), |(n, a), (m, b)| (n + m, a + b));
            prop_assert_eq!(sum(|x| (x.subscription_count, x.subscription_amount)), total(OrderKind::Subscription));
            prop_assert_eq!(sum(|x| (x.redemption_count, x.redemption_amount)), total(OrderKind::Redemption));
            prop_assert_eq!(sum(|x| (x.fast_count, x.fast_amount)), total(OrderKind::FastRedemption));
            // Sorted, one per partner and fund.
            for w in s.windows(2) {
                prop_assert!((&w[0].partner_id, &w[0].fund_code) < (&w[1].partner_id, &w[1].fund_code));
            }
            // Orders that are not confirmed orders of T change nothing.
            let only: Vec<Order> = orders.iter().filter(mine).cloned().collect();
            prop_assert_eq!(settle(t, &only), s);
        }
    }
}
