//! Shared by the SQL-vs-Rust tests (`*_sql_vs_rust.rs`): the seeded random source, seeding
//! Postgres directly with accounts and orders, and reading orders back as domain values.
#![allow(dead_code)]

use chrono::{DateTime, Days, NaiveDate, Utc};
use mmf_domain::calendar::{start_of, Calendar};
use mmf_domain::orders::{Order, OrderKind, OrderStatus, Purpose};
use mmf_domain::{AccountId, Amount, FundCode, PartnerId, RequestId};
use mmf_tests::TestApp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

/// A random source seeded from `MMF_TEST_SEED` when set (to replay a failure), else at random;
/// the seed is printed either way.
pub fn rng() -> StdRng {
    let seed: u64 = std::env::var("MMF_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (replay with MMF_TEST_SEED={seed})");
    StdRng::seed_from_u64(seed)
}

pub fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// The calendar the tests load (`Api::setup_fund` plus `cycle::holiday_calendar`): the
/// October holidays, Monday 2026-11-30, and 2027-01-01.
pub fn holiday_calendar() -> Calendar {
    Calendar::new(
        [
            "2026-10-01",
            "2026-10-02",
            "2026-10-05",
            "2026-10-06",
            "2026-10-07",
            "2026-11-30",
            "2027-01-01",
        ]
        .map(day),
    )
}

/// An amount in fen, spread over sub-yuan, ordinary and large values.
pub fn amount(rng: &mut StdRng) -> Amount {
    Amount::from_fen(match rng.gen_range(0..10) {
        0..=2 => rng.gen_range(1..100),
        3..=7 => rng.gen_range(100..10_000_000),
        _ => rng.gen_range(10_000_000..100_000_000_000),
    })
}

pub async fn insert_partner(app: &TestApp, partner: &str) {
    app.pg()
        .await
        .execute(
            "INSERT INTO partners (partner_id, name, secret) VALUES ($1, $1, 'unused')
             ON CONFLICT DO NOTHING",
            &[&partner],
        )
        .await
        .unwrap();
}

pub async fn insert_accounts(app: &TestApp, partner: &str, accounts: &[AccountId]) {
    let ids: Vec<&str> = accounts.iter().map(|a| a.as_str()).collect();
    app.pg()
        .await
        .execute(
            "INSERT INTO accounts (account_id, partner_id, customer_id, name, id_type, id_number, id_masked, opened_at)
             SELECT a, $2, a, 'R', 'passport', 'X1234', 'X1234', now() FROM unnest($1::text[]) a",
            &[&ids, &partner],
        )
        .await
        .unwrap();
}

/// Inserts `orders` with their ids, accepted at `accepted_at` (one per order); confirmed and
/// cancelled ones a day later.
pub async fn insert_orders(app: &TestApp, orders: &[Order], accepted_at: &[DateTime<Utc>]) {
    let col = |f: fn(&Order) -> String| orders.iter().map(f).collect::<Vec<String>>();
    let ids: Vec<i64> = orders.iter().map(|o| o.order_id).collect();
    let purpose: Vec<Option<&str>> = orders
        .iter()
        .map(|o| o.purpose.map(Purpose::as_str))
        .collect();
    let amount: Vec<Decimal> = orders.iter().map(|o| o.amount.decimal()).collect();
    let trade: Vec<NaiveDate> = orders.iter().map(|o| o.trade_date).collect();
    let effective: Vec<Option<NaiveDate>> = orders.iter().map(|o| o.effective_date).collect();
    let at = accepted_at.to_vec();
    app.pg()
        .await
        .execute(
            "INSERT INTO orders (order_id, partner_id, request_id, account_id, fund_code, kind, purpose, amount,
                                 status, trade_date, effective_date, accepted_at, confirmed_at, cancelled_at)
             SELECT id, p, r, a, f, k, pu, am, s, t, e, at,
                    CASE WHEN s = 'confirmed' THEN at + interval '1 day' END,
                    CASE WHEN s = 'cancelled' THEN at + interval '1 hour' END
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::numeric[], $9::text[], $10::date[], $11::date[], $12::timestamptz[])
                  AS x(id, p, r, a, f, k, pu, am, s, t, e, at)",
            &[
                &ids,
                &col(|o| o.partner_id.to_string()),
                &col(|o| o.request_id.to_string()),
                &col(|o| o.account_id.to_string()),
                &col(|o| o.fund_code.to_string()),
                &col(|o| o.kind.as_str().to_string()),
                &purpose,
                &amount,
                &col(|o| o.status.as_str().to_string()),
                &trade,
                &effective,
                &at,
            ],
        )
        .await
        .unwrap();
    app.pg()
        .await
        .execute(
            "SELECT setval('order_id_seq', (SELECT max(order_id) FROM orders))",
            &[],
        )
        .await
        .unwrap();
}

pub fn order_of(r: &tokio_postgres::Row) -> Order {
    let text = |c: &str| r.get::<_, String>(c);
    Order {
        order_id: r.get("order_id"),
        partner_id: PartnerId::parse(&text("partner_id")).unwrap(),
        request_id: RequestId::parse(&text("request_id")).unwrap(),
        account_id: AccountId::parse(&text("account_id")).unwrap(),
        fund_code: FundCode::parse(&text("fund_code")).unwrap(),
        kind: OrderKind::parse(&text("kind")).unwrap(),
        purpose: r
            .get::<_, Option<String>>("purpose")
            .map(|p| Purpose::parse(&p).unwrap()),
        amount: Amount::from_decimal(r.get("amount")).unwrap(),
        status: OrderStatus::parse(&text("status")).unwrap(),
        trade_date: r.get("trade_date"),
        effective_date: r.get("effective_date"),
    }
}

/// Every order, by id.
pub async fn read_orders(app: &TestApp) -> Vec<Order> {
    app.pg()
        .await
        .query("SELECT * FROM order_states ORDER BY order_id", &[])
        .await
        .unwrap()
        .iter()
        .map(order_of)
        .collect()
}

/// A random instant of Shanghai calendar day `d`.
pub fn instant_on(rng: &mut StdRng, d: NaiveDate) -> DateTime<Utc> {
    start_of(d) + chrono::Duration::seconds(rng.gen_range(0..86_400))
}

/// The trading day `n` trading days after `d`.
pub fn trading_days_after(cal: &Calendar, d: NaiveDate, n: usize) -> NaiveDate {
    (0..n).fold(d, |d, _| cal.next_trading_day(d))
}

pub fn plus_days(d: NaiveDate, n: u64) -> NaiveDate {
    d + Days::new(n)
}
