//! The worked multi-day scenario of tests/tests/cycle_scenario.rs, computed by hand there,
//! reproduced with the domain rules alone: trade and effective dates from the calendar,
//! confirmation and settlement of each trade date, and the daily income of every account
//! (policy carry_forward) from the movements effective on each day.

use chrono::{DateTime, Days, NaiveDate, Utc};
use mmf_domain::calendar::{business_date, fast_redemption_effective, Calendar};
use mmf_domain::confirm::confirm;
use mmf_domain::income::{pay, Holding, IncomePolicy};
use mmf_domain::orders::{Order, OrderKind, OrderStatus, Purpose};
use mmf_domain::settlement::settle;
use mmf_domain::{AccountId, Amount, FundCode, PartnerId, Per10k, RequestId, TradeDate};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Accounts A..E are 800000000001..5.
fn account(name: char) -> AccountId {
    AccountId::parse(&format!("80000000000{}", name as u8 - b'A' + 1)).unwrap()
}

/// An order accepted at `when`, dated by the calendar.
fn order(cal: &Calendar, id: i64, who: char, kind: OrderKind, amount: &str, when: &str) -> Order {
    let t = cal.trade_date(at(when));
    let effective_date = match kind {
        OrderKind::Subscription => None,
        OrderKind::Redemption => Some(cal.redemption_effective(t)),
        OrderKind::FastRedemption => Some(fast_redemption_effective(at(when))),
    };
    Order {
        order_id: id,
        partner_id: PartnerId::parse(if who == 'D' { "p2" } else { "p1" }).unwrap(),
        request_id: RequestId::parse(&format!("r{id}")).unwrap(),
        account_id: account(who),
        fund_code: FundCode::parse("000001").unwrap(),
        kind,
        purpose: (kind == OrderKind::FastRedemption).then_some(Purpose::Withdrawal),
        amount: amount.parse::<Amount>().unwrap(),
        status: if kind == OrderKind::FastRedemption {
            OrderStatus::Confirmed
        } else {
            OrderStatus::Accepted
        },
        trade_date: t.date(),
        effective_date,
    }
}

#[test]
fn the_worked_scenario_by_the_domain_rules() {
    use OrderKind::*;
    let cal = Calendar::new([d("2026-11-30")]);
    let mut orders = vec![
        order(
            &cal,
            1,
            'A',
            Subscription,
            "10000.00",
            "2026-11-26T10:00:00+08:00",
        ),
        order(
            &cal,
            2,
            'E',
            Subscription,
            "100.00",
            "2026-11-26T10:00:00+08:00",
        ),
        order(
            &cal,
            3,
            'C',
            Subscription,
            "3000.00",
            "2026-11-26T15:30:00+08:00",
        ),
        order(
            &cal,
            4,
            'B',
            Subscription,
            "20000.00",
            "2026-11-27T10:00:00+08:00",
        ),
        order(
            &cal,
            5,
            'A',
            FastRedemption,
            "1000.00",
            "2026-11-27T16:00:00+08:00",
        ),
        order(
            &cal,
            6,
            'D',
            Subscription,
            "500.00",
            "2026-11-27T16:00:00+08:00",
        ),
        order(
            &cal,
            7,
            'A',
            Redemption,
            "2000.00",
            "2026-11-28T10:00:00+08:00",
        ),
    ];
    let trade_dates: Vec<String> = orders.iter().map(|o| o.trade_date.to_string()).collect();
    assert_eq!(
        trade_dates,
        [
            "2026-11-26",
            "2026-11-26",
            "2026-11-27",
            "2026-11-27",
            "2026-12-01",
            "2026-12-01",
            "2026-12-01"
        ]
    );
    assert_eq!(
        orders[4].effective_date,
        Some(d("2026-11-27")),
        "fast: no income Friday"
    );
    assert_eq!(
        orders[6].effective_date,
        Some(d("2026-12-02")),
        "earns through Tuesday"
    );
    assert_eq!(
        business_date(at("2026-11-27T16:00:00+08:00")),
        d("2026-11-27")
    );

    // Movements per account: (units, effective date). Redemptions are debited when accepted.
    let mut moves: BTreeMap<AccountId, Vec<(Decimal, NaiveDate)>> = BTreeMap::new();
    for o in orders.iter().filter(|o| o.kind != Subscription) {
        let e = o.effective_date.unwrap();
        moves
            .entry(o.account_id.clone())
            .or_default()
            .push((-o.amount.decimal(), e));
    }
    let mut settled = BTreeMap::new();
    for t in ["2026-11-26", "2026-11-27", "2026-12-01"] {
        let t = TradeDate::new(&cal, d(t)).unwrap();
        let c = confirm(&cal, t, &orders);
        for j in &c.journal {
            moves
                .entry(j.account_id.clone())
                .or_default()
                .push((j.units.decimal(), j.effective_date));
        }
        for done in c.orders {
            let i = orders
                .iter()
                .position(|o| o.order_id == done.order_id)
                .unwrap();
            orders[i] = done;
        }
        settled.insert(t.date(), settle(t.date(), &orders));
    }
    let net = |t: &str, i: usize| settled[&d(t)][i].net_amount;
    assert_eq!(net("2026-11-26", 0), dec("10100.00"));
    assert_eq!(
        settled[&d("2026-11-27")][0].subscription_amount,
        dec("23000.00")
    );
    let tue = &settled[&d("2026-12-01")];
    assert_eq!(
        (tue[0].net_amount, tue[0].fast_count, tue[0].fast_amount),
        (dec("-2000.00"), 1, dec("1000.00"))
    );
    assert_eq!(
        (tue[1].partner_id.as_str(), tue[1].net_amount),
        ("p2", dec("500.00"))
    );

    // Income, day by day; paid income is a movement effective the next day.
    let per10k = [
        ("2026-11-27", "0.7000"),
        ("2026-11-28", "0.6800"),
        ("2026-11-29", "-0.1500"),
        ("2026-11-30", "0.6200"),
        ("2026-12-01", "0.6600"),
        ("2026-12-02", "0.6400"),
    ];
    let mut carry: BTreeMap<AccountId, Decimal> = BTreeMap::new();
    let mut paid: BTreeMap<(char, &str), Decimal> = BTreeMap::new();
    for (day, p) in per10k {
        let p: Per10k = p.parse().unwrap();
        for who in ['A', 'B', 'C', 'D', 'E'] {
            let a = account(who);
            let m = moves.entry(a.clone()).or_default();
            let h = Holding {
                account_id: a.to_string(),
                eligible: m
                    .iter()
                    .filter(|(_, e)| *e <= d(day))
                    .map(|(u, _)| *u)
                    .sum(),
                carry: carry.get(&a).copied().unwrap_or_default(),
                units: m.iter().map(|(u, _)| *u).sum(),
            };
            let Some(x) = pay(IncomePolicy::CarryForward, p.decimal(), &h, None) else {
                continue;
            };
            carry.insert(a, x.carry_after);
            paid.insert((who, day), x.paid);
            if !x.paid.is_zero() {
                m.push((x.paid, d(day) + Days::new(1)));
            }
        }
    }
    let days: Vec<&str> = per10k.iter().map(|(d, _)| *d).collect();
    let of = |who: char| -> Vec<String> {
        days.iter()
            .map(|d| {
                paid.get(&(who, *d))
                    .copied()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(of('A'), ["0.63", "0.61", "-0.13", "0.55", "0.59", "0.45"]);
    assert_eq!(of('E'), ["0.00", "0.01", "0.00", "0.00", "0.01", "0.01"]);
    assert_eq!(of('B')[4..], ["1.32", "1.28"]);
    assert_eq!(of('C')[4..], ["0.19", "0.20"]);
    assert_eq!(of('D')[5], "0.03");
    for (who, units, c) in [
        ('A', "7002.70", "0.00734662"),
        ('B', "20002.60", "0.00008448"),
        ('C', "3000.39", "0.00001216"),
        ('D', "500.03", "0.002"),
        ('E', "100.03", "0.00150241"),
    ] {
        let a = account(who);
        let held: Decimal = moves[&a].iter().map(|(u, _)| *u).sum();
        assert_eq!(held, dec(units), "{who} units");
        assert_eq!(carry[&a].normalize(), dec(c), "{who} carry");
    }
}
