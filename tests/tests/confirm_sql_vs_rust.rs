//! The confirmation statement (`mmf_command::cycle::confirm::confirm`, CONFIRM_SQL) against its Rust
//! twin (`mmf_domain::confirm`) on thousands of random orders over many accounts and two
//! funds: subscriptions and normal redemptions of several trade dates, some cancelled or
//! already confirmed, fast redemptions among them. Trade dates include a Friday before a
//! Monday holiday, so the next trading day is four calendar days later. Every order, every
//! position, the new journal rows and the returned totals must equal the Rust result; a second
//! run of the same trade date changes nothing, and runs of one date on several instances at
//! once confirm each order once.

mod sql_twins;

use chrono::{DateTime, Utc};
use mmf_domain::calendar::{fast_redemption_effective, start_of, TradeDate};
use mmf_domain::confirm::{confirm, Confirmation, JournalEntry, Position};
use mmf_domain::orders::{Order, OrderKind, OrderStatus, Purpose};
use mmf_domain::{AccountId, Amount, Calendar, FundCode, PartnerId, RequestId, Units};
use mmf_tests::cycle::holiday_calendar as load_holiday_calendar;
use mmf_tests::*;
use rand::rngs::StdRng;
use rand::Rng;
use rust_decimal::Decimal;
use sql_twins::*;
use std::collections::BTreeMap;

const ACCOUNTS: usize = 2_000;
const ORDERS: usize = 6_000;
const FUNDS: [&str; 2] = ["000001", "000002"];
const TRADE_DATES: [&str; 4] = ["2026-11-25", "2026-11-26", "2026-11-27", "2026-12-01"];

type Positions = BTreeMap<(AccountId, FundCode), Position>;

fn random_order(
    rng: &mut StdRng,
    cal: &Calendar,
    id: i64,
    accounts: &[(PartnerId, AccountId)],
) -> (Order, DateTime<Utc>) {
    let (partner, account) = accounts[rng.gen_range(0..accounts.len())].clone();
    let t = day(TRADE_DATES[rng.gen_range(0..TRADE_DATES.len())]);
    let accepted_at = start_of(t) + chrono::Duration::seconds(rng.gen_range(0..15 * 3600));
    let kind = match rng.gen_range(0..20) {
        0..=10 => OrderKind::Subscription,
        11..=16 => OrderKind::Redemption,
        _ => OrderKind::FastRedemption,
    };
    let status = match (kind, rng.gen_range(0..20)) {
        (OrderKind::FastRedemption, _) => OrderStatus::Confirmed,
        (_, 0..=2) => OrderStatus::Cancelled,
        (_, 3..=4) => OrderStatus::Confirmed,
        _ => OrderStatus::Accepted,
    };
    let effective_date = match (kind, status) {
        (OrderKind::Subscription, OrderStatus::Confirmed) => Some(cal.next_trading_day(t)),
        (OrderKind::Subscription, _) => None,
        (OrderKind::Redemption, _) => Some(cal.next_trading_day(t)),
        (OrderKind::FastRedemption, _) => Some(fast_redemption_effective(accepted_at)),
    };
    let order = Order {
        order_id: id,
        partner_id: partner,
        request_id: RequestId::parse(&format!("c-{id}")).unwrap(),
        account_id: account,
        fund_code: FundCode::parse(FUNDS[rng.gen_range(0..FUNDS.len())]).unwrap(),
        kind,
        purpose: (kind == OrderKind::FastRedemption).then_some(Purpose::Payment),
        amount: amount(rng),
        status,
        trade_date: t,
        effective_date,
    };
    (order, accepted_at)
}

/// Random orders and the positions they imply (pending = the open subscriptions, sometimes
/// with more from elsewhere; any units), written to Postgres.
async fn seed(app: &TestApp, cal: &Calendar, rng: &mut StdRng) -> (Vec<Order>, Positions) {
    let mut accounts = Vec::new();
    for (partner, n) in [("p1", ACCOUNTS * 3 / 4), ("p2", ACCOUNTS / 4)] {
        let ids: Vec<AccountId> = (0..n)
            .map(|i| AccountId::parse(&format!("8{:011}", accounts.len() + i)).unwrap())
            .collect();
        insert_accounts(app, partner, &ids).await;
        let p = PartnerId::parse(partner).unwrap();
        accounts.extend(ids.into_iter().map(|a| (p.clone(), a)));
    }
    let (orders, at): (Vec<Order>, Vec<DateTime<Utc>>) = (1..=ORDERS as i64)
        .map(|id| random_order(rng, cal, id, &accounts))
        .unzip();
    insert_orders(app, &orders, &at).await;
    let mut positions = Positions::new();
    for o in &orders {
        let p = positions
            .entry((o.account_id.clone(), o.fund_code.clone()))
            .or_default();
        if o.kind == OrderKind::Subscription && o.status == OrderStatus::Accepted {
            p.pending_subscription = p.pending_subscription.checked_add(o.amount).unwrap();
        }
    }
    for p in positions.values_mut() {
        if rng.gen_bool(0.2) {
            p.pending_subscription = p.pending_subscription.checked_add(amount(rng)).unwrap();
        }
        p.units = if rng.gen_bool(0.3) {
            Units::ZERO
        } else {
            amount(rng).as_units()
        };
    }
    let (mut a, mut f, mut u, mut pend) = (vec![], vec![], vec![], vec![]);
    for ((acct, fund), p) in &positions {
        a.push(acct.as_str());
        f.push(fund.as_str());
        u.push(p.units.decimal());
        pend.push(p.pending_subscription.decimal());
    }
    app.pg()
        .await
        .execute(
            "INSERT INTO positions (account_id, fund_code, units, pending_subscription)
             SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[])",
            &[&a, &f, &u, &pend],
        )
        .await
        .unwrap();
    (orders, positions)
}

async fn read_positions(app: &TestApp) -> Positions {
    app.pg()
        .await
        .query(
            "SELECT account_id, fund_code, units, pending_subscription FROM positions",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    AccountId::parse(r.get(0)).unwrap(),
                    FundCode::parse(r.get(1)).unwrap(),
                ),
                Position {
                    units: Units::from_decimal(r.get(2)).unwrap(),
                    pending_subscription: Amount::from_decimal(r.get(3)).unwrap(),
                },
            )
        })
        .collect()
}

/// The journal rows booked at `now`, by order id.
async fn journal_at(app: &TestApp, now: DateTime<Utc>) -> Vec<JournalEntry> {
    app.pg()
        .await
        .query(
            "SELECT account_id, fund_code, order_id, kind, units, effective_date FROM unit_journal
             WHERE booked_at = $1 ORDER BY order_id",
            &[&now],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| JournalEntry {
            account_id: AccountId::parse(r.get(0)).unwrap(),
            fund_code: FundCode::parse(r.get(1)).unwrap(),
            order_id: r.get(2),
            kind: OrderKind::parse(r.get(3)).unwrap(),
            units: Units::from_decimal(r.get(4)).unwrap(),
            effective_date: r.get(5),
        })
        .collect()
}

/// Confirms `t` through the command library and checks the database against `expect`.
/// Confirms trade date `t` with `instances` runs at once, each on its own pool (as command
/// instances would), and checks the result against the Rust rules.
#[allow(clippy::too_many_arguments)]
async fn check(
    app: &TestApp,
    cal: &Calendar,
    t: TradeDate,
    batch: usize,
    now: DateTime<Utc>,
    instances: usize,
    orders: &mut [Order],
    positions: &mut Positions,
) -> Confirmation {
    let expect = confirm(cal, t, orders.iter());
    let effective = cal.next_trading_day(t.date());
    let pools: Vec<_> = (0..instances)
        .map(|_| mmf_shared::db::db_pool(&app.db.url, 2).unwrap())
        .collect();
    let runs = pools.iter().map(|pool| {
        let batching = mmf_command::cycle::distribute::Batching {
            batch_size: batch,
            parallel: 1,
            pace: mmf_domain::pace::Pace::OFF,
        };
        mmf_command::cycle::confirm::confirm(pool, t.date(), effective, now, batching, &|_| {})
    });
    let mut got = mmf_command::cycle::confirm::Confirmed::default();
    for r in futures::future::join_all(runs).await {
        let r = r.unwrap();
        got.subscriptions += r.subscriptions;
        got.subscription_amount += r.subscription_amount;
        got.redemptions += r.redemptions;
        got.redemption_amount += r.redemption_amount;
        got.batches += r.batches;
    }
    let what = format!("trade date {t}, {instances} instance(s)");
    let e = &expect.totals;
    assert_eq!(
        (
            got.subscriptions,
            got.subscription_amount,
            got.redemptions,
            got.redemption_amount
        ),
        (
            e.subscriptions,
            e.subscription_amount,
            e.redemptions,
            e.redemption_amount
        ),
        "{what}: totals"
    );
    if instances == 1 {
        assert_eq!(
            got.batches as usize,
            expect.orders.len().div_ceil(batch),
            "{what}: batches"
        );
    }
    for done in &expect.orders {
        let i = orders
            .iter()
            .position(|o| o.order_id == done.order_id)
            .unwrap();
        orders[i] = done.clone();
    }
    expect.apply(positions);
    let db_orders = read_orders(app).await;
    assert_eq!(db_orders.len(), orders.len());
    for (db, rust) in db_orders.iter().zip(orders.iter()) {
        assert_eq!(db, rust, "{what}: order {}", rust.order_id);
    }
    let confirmed_now: Vec<i64> = app
        .pg()
        .await
        .query(
            "SELECT order_id FROM order_states WHERE confirmed_at = $1 ORDER BY order_id",
            &[&now],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut ids: Vec<i64> = expect.orders.iter().map(|o| o.order_id).collect();
    ids.sort();
    assert_eq!(confirmed_now, ids, "{what}: confirmed_at");
    let db_positions = read_positions(app).await;
    assert_eq!(db_positions.len(), positions.len());
    for (key, p) in positions.iter() {
        assert_eq!(db_positions.get(key), Some(p), "{what}: position {key:?}");
    }
    let mut journal = expect.journal.clone();
    journal.sort_by_key(|j| j.order_id);
    assert_eq!(journal_at(app, now).await, journal, "{what}: journal");
    expect
}

#[tokio::test]
async fn confirmation_sql_equals_the_rust_rules_on_random_orders() {
    let app = spawn_command().await;
    app.setup_fund().await;
    load_holiday_calendar(&app).await;
    for f in FUNDS {
        app.create_fund(f, "redistribute").await;
    }
    let cal = holiday_calendar();
    let mut rng = rng();
    let (mut orders, mut positions) = seed(&app, &cal, &mut rng).await;
    let db_positions = read_positions(&app).await;
    assert_eq!(db_positions, positions);
    // Friday before the Monday holiday first (subscriptions effective Tuesday), then the
    // Thursday before it, then Friday again (nothing left), then the Wednesday.
    // The Wednesday by three instances at once: each order is confirmed by exactly one.
    let runs = [
        ("2026-11-27", 333, "2026-12-01T09:00:00+08:00", 1),
        ("2026-11-26", 1000, "2026-12-01T09:30:00+08:00", 1),
        ("2026-11-27", 333, "2026-12-01T10:00:00+08:00", 1),
        ("2026-11-25", 50, "2026-12-01T10:30:00+08:00", 3),
    ];
    let mut confirmed = 0;
    for (n, (t, batch, now, instances)) in runs.into_iter().enumerate() {
        let t = TradeDate::new(&cal, day(t)).unwrap();
        let (orders, positions) = (&mut orders, &mut positions);
        let c = check(&app, &cal, t, batch, at(now), instances, orders, positions).await;
        if n == 2 {
            assert_eq!(c, Confirmation::default(), "a second run confirms nothing");
        }
        confirmed += c.orders.len();
    }
    // The generators are doing their job: many orders confirmed, several per position.
    assert!(confirmed > ORDERS / 3, "{confirmed} confirmed");
    let held: Decimal = positions.values().map(|p| p.units.decimal()).sum();
    assert!(held > Decimal::ZERO);
}
