//! The settlement statement (`mmf_command::cycle::settle::settle`) against its Rust twin
//! (`mmf_domain::settlement::settle`) on random orders of several partners and funds: every
//! kind, every status, the trade date and its neighbours. The returned rows and the stored
//! `settlements` rows must equal the Rust result; recomputing after more orders are confirmed
//! updates them in place.

mod sql_twins;

use chrono::{DateTime, NaiveDate, Utc};
use mmf_domain::calendar::start_of;
use mmf_domain::orders::{Order, OrderKind, OrderStatus, Purpose};
use mmf_domain::settlement::{settle, Settlement};
use mmf_domain::{AccountId, FundCode, PartnerId, RequestId};
use mmf_tests::*;
use rand::rngs::StdRng;
use rand::Rng;
use sql_twins::*;

const PARTNERS: [&str; 4] = ["p1", "p2", "wallet_3", "Z-9"];
const FUNDS: [&str; 3] = ["000001", "000002", "MMF0A1"];
const ORDERS: usize = 4_000;
const T: &str = "2026-11-27";

fn settlement_of(r: &tokio_postgres::Row) -> Settlement {
    Settlement {
        partner_id: PartnerId::parse(r.get("partner_id")).unwrap(),
        fund_code: FundCode::parse(r.get("fund_code")).unwrap(),
        trade_date: r.get("trade_date"),
        subscription_count: r.get("subscription_count"),
        subscription_amount: r.get("subscription_amount"),
        redemption_count: r.get("redemption_count"),
        redemption_amount: r.get("redemption_amount"),
        net_amount: r.get("net_amount"),
        fast_count: r.get("fast_count"),
        fast_amount: r.get("fast_amount"),
    }
}

fn random_order(rng: &mut StdRng, id: i64, accounts: &[Vec<AccountId>]) -> (Order, DateTime<Utc>) {
    let p = rng.gen_range(0..PARTNERS.len());
    // A partner with few orders, so that some of its groups hold one kind only.
    let p = if p == 3 && rng.gen_bool(0.8) { 0 } else { p };
    let kind = OrderKind::ALL[rng.gen_range(0..3)];
    let status = if kind == OrderKind::FastRedemption {
        OrderStatus::Confirmed
    } else {
        OrderStatus::ALL[rng.gen_range(0..3)]
    };
    let t = plus_days(day(T), rng.gen_range(0..3)) - chrono::Days::new(1);
    let order = Order {
        order_id: id,
        partner_id: PartnerId::parse(PARTNERS[p]).unwrap(),
        request_id: RequestId::parse(&format!("s-{id}")).unwrap(),
        account_id: accounts[p][rng.gen_range(0..accounts[p].len())].clone(),
        fund_code: FundCode::parse(FUNDS[rng.gen_range(0..FUNDS.len())]).unwrap(),
        kind,
        purpose: (kind == OrderKind::FastRedemption).then_some(Purpose::Withdrawal),
        amount: amount(rng),
        status,
        trade_date: t,
        effective_date: None,
    };
    (order, start_of(t))
}

async fn check(app: &TestApp, t: NaiveDate, orders: &[Order]) -> Vec<Settlement> {
    let expect = settle(t, orders);
    let got: Vec<Settlement> = mmf_command::cycle::settle::settle(&app.state.db, t, app.now())
        .await
        .unwrap()
        .iter()
        .map(|s| Settlement {
            partner_id: PartnerId::parse(&s.partner_id).unwrap(),
            fund_code: FundCode::parse(&s.fund_code).unwrap(),
            trade_date: s.trade_date,
            subscription_count: s.subscription_count,
            subscription_amount: s.subscription_amount,
            redemption_count: s.redemption_count,
            redemption_amount: s.redemption_amount,
            net_amount: s.net_amount,
            fast_count: s.fast_count,
            fast_amount: s.fast_amount,
        })
        .collect();
    assert_eq!(got, expect, "settlements of {t} as returned");
    let stored: Vec<Settlement> = app
        .pg()
        .await
        .query(
            "SELECT * FROM settlements WHERE trade_date = $1 ORDER BY partner_id COLLATE \"C\", fund_code",
            &[&t],
        )
        .await
        .unwrap()
        .iter()
        .map(settlement_of)
        .collect();
    assert_eq!(stored, expect, "settlements of {t} as stored");
    expect
}

#[tokio::test]
async fn settlement_sql_equals_the_rust_rules_on_random_orders() {
    let app = spawn_command().await;
    for f in FUNDS {
        app.create_fund(f, "redistribute").await;
    }
    let mut rng = rng();
    let mut accounts = Vec::new();
    for (i, p) in PARTNERS.iter().enumerate() {
        insert_partner(&app, p).await;
        let ids: Vec<AccountId> = (0..200)
            .map(|n| AccountId::parse(&format!("8{i:03}{n:08}")).unwrap())
            .collect();
        insert_accounts(&app, p, &ids).await;
        accounts.push(ids);
    }
    let t = day(T);
    // Random orders until T's settlements (by the Rust rules) go both ways and include fast
    // redemptions: a rare sample whose every group nets the same way would test one direction.
    let (mut orders, at) = loop {
        let (orders, at): (Vec<Order>, Vec<DateTime<Utc>>) = (1..=ORDERS as i64)
            .map(|id| random_order(&mut rng, id, &accounts))
            .unzip();
        let expected = settle(t, &orders);
        if expected.iter().any(|s| s.net_amount.is_sign_negative())
            && expected.iter().any(|s| s.fast_count > 0)
        {
            break (orders, at);
        }
    };
    insert_orders(&app, &orders, &at).await;
    assert_eq!(read_orders(&app).await, orders);
    let first = check(&app, t, &orders).await;
    assert!(first.len() >= 10, "{} groups", first.len());
    assert!(
        first.iter().any(|s| s.net_amount.is_sign_negative())
            && first.iter().any(|s| s.fast_count > 0),
        "both directions and fast redemptions occur"
    );
    // More orders of T confirmed since, and some new ones: the recomputation updates the rows.
    let reconfirm: Vec<i64> = orders
        .iter()
        .filter(|o| o.trade_date == t && o.status == OrderStatus::Accepted && rng.gen_bool(0.5))
        .map(|o| o.order_id)
        .collect();
    app.pg()
        .await
        .execute(
            "UPDATE orders SET status = 'confirmed', confirmed_at = now() WHERE order_id = ANY($1)",
            &[&reconfirm],
        )
        .await
        .unwrap();
    for o in orders
        .iter_mut()
        .filter(|o| reconfirm.contains(&o.order_id))
    {
        o.status = OrderStatus::Confirmed;
    }
    let (more, at): (Vec<Order>, Vec<DateTime<Utc>>) = (ORDERS as i64 + 1..=ORDERS as i64 + 500)
        .map(|id| random_order(&mut rng, id, &accounts))
        .unzip();
    insert_orders(&app, &more, &at).await;
    orders.extend(more);
    let second = check(&app, t, &orders).await;
    assert_ne!(first, second);
    // The neighbouring trade dates, each on its own.
    for d in [t.pred_opt().unwrap(), t.succ_opt().unwrap()] {
        check(&app, d, &orders).await;
    }
    check(&app, t, &orders).await;
}
