//! The order statements (SUBSCRIBE_SQL, REDEEM_SQL, CANCEL_SQL through the partner API of
//! the command service) against the Rust limit checks (`mmf_domain::orders`) on random
//! requests sent one at a time: subscriptions around each fund's minimum, per-order and
//! per-day limits, normal redemptions, fast withdrawals and payments around the units held and
//! the daily cap, cancellations of every kind of order before and after their cut-off, accounts
//! of another partner, unknown funds, fund limits changed on the way, trade dates confirmed on
//! the way, and a clock that crosses cut-offs, weekends and a holiday.
//!
//! Before each request the state it depends on is read from Postgres and must equal the state
//! the Rust rules predict (the domain's effects of every earlier answer); the answer (accepted,
//! or the refusal code) must be what the Rust check decides given that state, and an accepted
//! order must carry the trade and effective dates of `mmf_domain::calendar`.

mod sql_twins;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use mmf_domain::calendar::{business_date, fast_redemption_effective, Calendar, TradeDate};
use mmf_domain::confirm::{confirm, Position};
use mmf_domain::orders::{
    check_cancel, check_redemption, check_subscription, Cancellable, FundLimits, Order, OrderKind,
    OrderStatus, Redemption, Refusal,
};
use mmf_domain::{AccountId, Amount, FundCode, PartnerId, RequestId, Units};
use mmf_tests::cycle::holiday_calendar as load_holiday_calendar;
use mmf_tests::*;
use rand::rngs::StdRng;
use rand::Rng;
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sql_twins::*;
use std::collections::{BTreeMap, HashMap};

const FUNDS: [&str; 3] = ["000031", "000032", "MMF033"];
const UNKNOWN_FUND: &str = "999999";
const STEPS: usize = 1_500;
const SUBSCRIPTION: &str = "subscription";
const FAST_WITHDRAWAL: &str = "fast_withdrawal";

type UsageKey = (AccountId, FundCode, NaiveDate, &'static str);

/// What the Rust rules say the database holds.
struct World {
    cal: Calendar,
    accounts: Vec<(PartnerId, AccountId)>,
    limits: BTreeMap<FundCode, FundLimits>,
    positions: BTreeMap<(AccountId, FundCode), Position>,
    usage: BTreeMap<UsageKey, Amount>,
    orders: Vec<Order>,
    accepted_day: HashMap<i64, NaiveDate>,
    /// Answers seen, by code (`accepted_<kind>` for acceptances).
    seen: BTreeMap<String, usize>,
    requests: u64,
}

fn fen(d: Decimal) -> Amount {
    let d = d.round_dp(2).max(Decimal::new(1, 2));
    Amount::from_decimal(d).unwrap()
}

/// An amount near one of `points` (a limit, a remaining allowance, a holding): just below,
/// at, just above, or anywhere.
fn near(rng: &mut StdRng, points: &[Decimal]) -> Amount {
    let p = points[rng.gen_range(0..points.len())];
    match rng.gen_range(0..9) {
        0 => fen(p - Decimal::new(1, 2)),
        1..=2 => fen(p),
        3..=4 => fen(p + Decimal::new(1, 2)),
        5..=6 => fen(p * Decimal::new(rng.gen_range(0..100), 2)),
        _ => amount(rng),
    }
}

fn random_limits(rng: &mut StdRng) -> FundLimits {
    let min = [1, 100, 10_000][rng.gen_range(0..3)];
    let order = min + rng.gen_range(0..5_000_000);
    let day = order + rng.gen_range(0..order / 2 + 1);
    FundLimits {
        min_subscription: Amount::from_fen(min),
        max_subscription_per_order: Amount::from_fen(order),
        max_subscription_per_day: Amount::from_fen(day),
        fast_withdrawal_daily_cap: Amount::from_fen([0, 50_000, 1_000_000][rng.gen_range(0..3)]),
    }
}

async fn put_fund(app: &TestApp, code: &FundCode, f: &FundLimits) {
    let (s, b) = app
        .ops(
            Method::PUT,
            &format!("/v1/ops/funds/{code}"),
            json!({"name": "Twin MMF", "min_subscription": f.min_subscription,
                   "max_subscription_per_order": f.max_subscription_per_order,
                   "max_subscription_per_day": f.max_subscription_per_day,
                   "fast_withdrawal_daily_cap": f.fast_withdrawal_daily_cap}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

async fn db_limits(app: &TestApp, fund: &str) -> Option<FundLimits> {
    let row = app
        .pg()
        .await
        .query_opt(
            "SELECT min_subscription, max_subscription_per_order, max_subscription_per_day,
                    fast_withdrawal_daily_cap FROM funds WHERE fund_code = $1",
            &[&fund],
        )
        .await
        .unwrap()?;
    let a = |i: usize| Amount::from_decimal(row.get(i)).unwrap();
    Some(FundLimits {
        min_subscription: a(0),
        max_subscription_per_order: a(1),
        max_subscription_per_day: a(2),
        fast_withdrawal_daily_cap: a(3),
    })
}

async fn db_account_ok(app: &TestApp, partner: &PartnerId, account: &AccountId) -> bool {
    app.pg()
        .await
        .query_opt(
            "SELECT 1 FROM accounts WHERE account_id = $1 AND partner_id = $2",
            &[&account.as_str(), &partner.as_str()],
        )
        .await
        .unwrap()
        .is_some()
}

async fn db_position(app: &TestApp, account: &AccountId, fund: &str) -> Position {
    app.pg()
        .await
        .query_opt(
            "SELECT units, pending_subscription FROM positions WHERE account_id = $1 AND fund_code = $2",
            &[&account.as_str(), &fund],
        )
        .await
        .unwrap()
        .map(|r| Position {
            units: Units::from_decimal(r.get(0)).unwrap(),
            pending_subscription: Amount::from_decimal(r.get(1)).unwrap(),
        })
        .unwrap_or_default()
}

async fn db_usage(app: &TestApp, key: &UsageKey) -> Amount {
    app.pg()
        .await
        .query_opt(
            "SELECT amount FROM daily_usage WHERE account_id = $1 AND fund_code = $2 AND day = $3 AND kind = $4",
            &[&key.0.as_str(), &key.1.as_str(), &key.2, &key.3],
        )
        .await
        .unwrap()
        .map(|r| Amount::from_decimal(r.get(0)).unwrap())
        .unwrap_or_default()
}

impl World {
    fn request_id(&mut self) -> String {
        self.requests += 1;
        format!("twin-{}", self.requests)
    }

    fn pick_account(&self, rng: &mut StdRng) -> (PartnerId, AccountId) {
        // The requesting partner is mostly the account's own.
        let (owner, account) = self.accounts[rng.gen_range(0..self.accounts.len())].clone();
        let partner = if rng.gen_bool(0.1) {
            self.accounts[rng.gen_range(0..self.accounts.len())]
                .0
                .clone()
        } else {
            owner
        };
        (partner, account)
    }

    fn pick_fund(&self, rng: &mut StdRng) -> String {
        if rng.gen_bool(0.03) {
            UNKNOWN_FUND.into()
        } else {
            FUNDS[rng.gen_range(0..FUNDS.len())].into()
        }
    }

    fn position(&self, account: &AccountId, fund: &str) -> Position {
        FundCode::parse(fund)
            .ok()
            .and_then(|f| self.positions.get(&(account.clone(), f)).copied())
            .unwrap_or_default()
    }

    fn usage_key(
        account: &AccountId,
        fund: &str,
        now: DateTime<Utc>,
        kind: &'static str,
    ) -> UsageKey {
        (
            account.clone(),
            FundCode::parse(fund).unwrap(),
            business_date(now),
            kind,
        )
    }

    fn usage(&self, key: &UsageKey) -> Amount {
        self.usage.get(key).copied().unwrap_or_default()
    }

    fn add_usage(&mut self, key: UsageKey, a: Amount, add: bool) {
        let u = self.usage.entry(key).or_default();
        *u = if add {
            u.checked_add(a)
        } else {
            u.checked_sub(a)
        }
        .unwrap();
    }

    fn saw(&mut self, what: String) {
        *self.seen.entry(what).or_default() += 1;
    }
}

/// Reads the state a request depends on from Postgres and checks it against the Rust world.
async fn state_before(
    app: &TestApp,
    w: &World,
    partner: &PartnerId,
    account: &AccountId,
    fund: &str,
) -> (Option<FundLimits>, bool, Position) {
    let limits = db_limits(app, fund).await;
    let expect = FundCode::parse(fund)
        .ok()
        .and_then(|f| w.limits.get(&f).copied());
    assert_eq!(limits, expect, "fund {fund} limits");
    let account_ok = db_account_ok(app, partner, account).await;
    assert_eq!(
        account_ok,
        w.accounts.contains(&(partner.clone(), account.clone())),
        "{account} of {partner}"
    );
    let position = db_position(app, account, fund).await;
    assert_eq!(
        position,
        w.position(account, fund),
        "position {account} {fund}"
    );
    (limits, account_ok, position)
}

/// Accepted (the order's JSON) or refused (the error code).
fn answer((status, body): (StatusCode, Value)) -> Result<Value, String> {
    if status.is_success() {
        Ok(body)
    } else {
        assert!(status.is_client_error(), "{status} {body}");
        Err(body["code"].as_str().unwrap_or_default().to_string())
    }
}

fn same_outcome(what: &str, expect: Result<(), Refusal>, got: &Result<Value, String>) {
    match (expect, got) {
        (Ok(()), Ok(_)) => {}
        (Err(r), Err(code)) => assert_eq!(r.code(), code, "{what}"),
        (e, g) => panic!("{what}: the Rust rules say {e:?}, the API answered {g:?}"),
    }
}

/// The order an accepted request created, as the Rust rules say it must be; checks the JSON.
#[allow(clippy::too_many_arguments)]
fn new_order(
    body: &Value,
    partner: &PartnerId,
    request_id: &str,
    account: &AccountId,
    fund: &str,
    kind: OrderKind,
    redemption: Option<Redemption>,
    amount: Amount,
    trade_date: TradeDate,
    effective: Option<NaiveDate>,
) -> Order {
    let status = if kind == OrderKind::FastRedemption {
        OrderStatus::Confirmed
    } else {
        OrderStatus::Accepted
    };
    let o = Order {
        order_id: body["order_id"].as_i64().unwrap(),
        partner_id: partner.clone(),
        request_id: RequestId::parse(request_id).unwrap(),
        account_id: account.clone(),
        fund_code: FundCode::parse(fund).unwrap(),
        kind,
        purpose: redemption.and_then(Redemption::purpose),
        amount,
        status,
        trade_date: trade_date.date(),
        effective_date: effective,
    };
    let date = |d: Option<NaiveDate>| d.map_or(Value::Null, |d| json!(d.to_string()));
    let shown = json!({"kind": kind.as_str(), "status": status.as_str(), "amount": amount.to_string(),
                       "trade_date": trade_date.to_string(), "effective_date": date(effective),
                       "purpose": o.purpose.map(|p| p.as_str())});
    for (k, v) in shown.as_object().unwrap() {
        assert_eq!(&body[k], v, "{k} of {body}");
    }
    o
}

async fn subscribe(app: &TestApp, w: &mut World, rng: &mut StdRng) {
    let (partner, account) = w.pick_account(rng);
    let fund = w.pick_fund(rng);
    let (limits, account_ok, _) = state_before(app, w, &partner, &account, &fund).await;
    let now = app.now();
    let used = match FundCode::parse(&fund) {
        Ok(_) if limits.is_some() => {
            let key = World::usage_key(&account, &fund, now, SUBSCRIPTION);
            let used = db_usage(app, &key).await;
            assert_eq!(used, w.usage(&key), "usage {key:?}");
            used
        }
        _ => Amount::ZERO,
    };
    let amount = match &limits {
        Some(f) => near(
            rng,
            &[
                f.min_subscription.decimal(),
                f.max_subscription_per_order.decimal(),
                f.max_subscription_per_day.decimal() - used.decimal(),
            ],
        ),
        None => amount(rng),
    };
    let expect = check_subscription(limits.as_ref(), account_ok, amount, used);
    let rid = w.request_id();
    let got = answer(
        app.post(
            partner.as_str(),
            "/v1/subscriptions",
            json!({"request_id": rid, "account_id": account, "fund_code": fund, "amount": amount}),
        )
        .await,
    );
    let what = format!("subscription {rid} of {amount} to {fund} by {partner} for {account}, used {used}, {limits:?}");
    same_outcome(&what, expect, &got);
    let Ok(body) = got else {
        w.saw(expect.unwrap_err().code().into());
        return;
    };
    let t = w.cal.trade_date(now);
    let o = new_order(
        &body,
        &partner,
        &rid,
        &account,
        &fund,
        OrderKind::Subscription,
        None,
        amount,
        t,
        None,
    );
    let p = w
        .positions
        .entry((account.clone(), o.fund_code.clone()))
        .or_default();
    p.pending_subscription = p.pending_subscription.checked_add(amount).unwrap();
    w.add_usage(
        World::usage_key(&account, &fund, now, SUBSCRIPTION),
        amount,
        true,
    );
    w.accepted_day.insert(o.order_id, business_date(now));
    w.orders.push(o);
    w.saw("accepted_subscription".into());
}

async fn redeem(app: &TestApp, w: &mut World, rng: &mut StdRng, what: Redemption) {
    let (partner, account) = w.pick_account(rng);
    let fund = w.pick_fund(rng);
    let (limits, account_ok, position) = state_before(app, w, &partner, &account, &fund).await;
    let now = app.now();
    let withdrawn = match FundCode::parse(&fund) {
        Ok(_) if limits.is_some() => {
            let key = World::usage_key(&account, &fund, now, FAST_WITHDRAWAL);
            let used = db_usage(app, &key).await;
            assert_eq!(used, w.usage(&key), "usage {key:?}");
            used
        }
        _ => Amount::ZERO,
    };
    let mut points = vec![position.units.decimal()];
    if let (Some(f), true) = (&limits, what.capped()) {
        points.push(f.fast_withdrawal_daily_cap.decimal() - withdrawn.decimal());
    }
    let units = near(rng, &points).as_units();
    let expect = check_redemption(
        limits.as_ref(),
        account_ok,
        what,
        units,
        position.units,
        withdrawn.as_units(),
    );
    let rid = w.request_id();
    let mut body = json!({"request_id": rid, "account_id": account, "fund_code": fund, "units": units,
                          "mode": if what == Redemption::Normal { "normal" } else { "fast" }});
    match what {
        Redemption::FastPayment => body["purpose"] = json!("payment"),
        Redemption::FastWithdrawal if rng.gen_bool(0.5) => body["purpose"] = json!("withdrawal"),
        _ => {}
    }
    let got = answer(app.post(partner.as_str(), "/v1/redemptions", body).await);
    let desc = format!("{what:?} {rid} of {units} from {fund} by {partner} for {account}, held {position:?}, withdrawn {withdrawn}, {limits:?}");
    same_outcome(&desc, expect, &got);
    let Ok(body) = got else {
        w.saw(expect.unwrap_err().code().into());
        return;
    };
    let t = w.cal.trade_date(now);
    let effective = match what {
        Redemption::Normal => w.cal.redemption_effective(t),
        _ => fast_redemption_effective(now),
    };
    let o = new_order(
        &body,
        &partner,
        &rid,
        &account,
        &fund,
        what.kind(),
        Some(what),
        units.as_amount(),
        t,
        Some(effective),
    );
    let p = w
        .positions
        .get_mut(&(account.clone(), o.fund_code.clone()))
        .unwrap();
    p.units = p.units.checked_sub(units).unwrap();
    if what.capped() {
        w.add_usage(
            World::usage_key(&account, &fund, now, FAST_WITHDRAWAL),
            units.as_amount(),
            true,
        );
    }
    w.accepted_day.insert(o.order_id, business_date(now));
    w.orders.push(o);
    w.saw(format!("accepted_{what:?}"));
}

async fn cancel(app: &TestApp, w: &mut World, rng: &mut StdRng) {
    let (order_id, partner) = match (w.orders.is_empty(), rng.gen_range(0..10)) {
        (true, _) | (_, 0) => (rng.gen_range(1_000_000..2_000_000), w.pick_account(rng).0),
        _ => {
            // Half the time an order still open, so that cancellations are accepted too.
            let open: Vec<&Order> = w
                .orders
                .iter()
                .filter(|o| o.status == OrderStatus::Accepted)
                .collect();
            let o = match (open.is_empty(), rng.gen_bool(0.5)) {
                (false, true) => open[rng.gen_range(0..open.len())],
                _ => &w.orders[rng.gen_range(0..w.orders.len())],
            };
            let p = if rng.gen_bool(0.9) {
                o.partner_id.clone()
            } else {
                w.pick_account(rng).0
            };
            (o.order_id, p)
        }
    };
    let order = w
        .orders
        .iter()
        .find(|o| o.order_id == order_id && o.partner_id == partner);
    let db: Option<Cancellable> = app
        .pg()
        .await
        .query_opt(
            "SELECT kind, status, trade_date FROM order_states WHERE order_id = $1 AND partner_id = $2",
            &[&order_id, &partner.as_str()],
        )
        .await
        .unwrap()
        .map(|r| Cancellable {
            kind: OrderKind::parse(r.get(0)).unwrap(),
            status: OrderStatus::parse(r.get(1)).unwrap(),
            trade_date: r.get(2),
        });
    assert_eq!(
        db,
        order.map(Cancellable::from),
        "order {order_id} of {partner}"
    );
    let now = app.now();
    let expect = check_cancel(db, w.cal.trade_date(now).date());
    let rid = w.request_id();
    let got = answer(
        app.post(
            partner.as_str(),
            &format!("/v1/orders/{order_id}/cancel"),
            json!({"request_id": rid}),
        )
        .await,
    );
    same_outcome(
        &format!("cancel {rid} of {order_id} by {partner}: {db:?} at {now}"),
        expect,
        &got,
    );
    let Ok(body) = got else {
        w.saw(expect.unwrap_err().code().into());
        return;
    };
    assert_eq!(body["status"], "cancelled", "{body}");
    let i = w
        .orders
        .iter()
        .position(|o| o.order_id == order_id)
        .unwrap();
    w.orders[i].status = OrderStatus::Cancelled;
    let o = w.orders[i].clone();
    let p = w
        .positions
        .get_mut(&(o.account_id.clone(), o.fund_code.clone()))
        .unwrap();
    if o.kind == OrderKind::Redemption {
        p.units = p.units.checked_add(o.amount.as_units()).unwrap();
    } else {
        p.pending_subscription = p.pending_subscription.checked_sub(o.amount).unwrap();
        let day = w.accepted_day[&o.order_id];
        w.add_usage(
            (o.account_id, o.fund_code, day, SUBSCRIPTION),
            o.amount,
            false,
        );
    }
    w.saw(format!("accepted_cancel_{}", o.kind));
}

/// Confirms the earliest trade date whose cut-off has passed and that has open orders, as
/// the daily cycle would, and applies the Rust confirmation to the world.
async fn confirm_past(app: &TestApp, w: &mut World) {
    let now = app.now();
    let open_from = w.cal.trade_date(now).date();
    let Some(t) = w
        .orders
        .iter()
        .filter(|o| o.status == OrderStatus::Accepted && o.trade_date < open_from)
        .map(|o| o.trade_date)
        .min()
    else {
        return;
    };
    let t = TradeDate::new(&w.cal, t).unwrap();
    let expect = confirm(&w.cal, t, &w.orders);
    let got = mmf_command::cycle::confirm::confirm(
        &app.state.db,
        t.date(),
        w.cal.next_trading_day(t.date()),
        now,
        mmf_command::cycle::distribute::Batching {
            batch_size: 64,
            parallel: 1,
            pace: mmf_domain::pace::Pace::OFF,
        },
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        (
            got.subscriptions,
            got.subscription_amount,
            got.redemptions,
            got.redemption_amount
        ),
        (
            expect.totals.subscriptions,
            expect.totals.subscription_amount,
            expect.totals.redemptions,
            expect.totals.redemption_amount
        ),
        "confirmation of {t}"
    );
    for done in &expect.orders {
        let i = w
            .orders
            .iter()
            .position(|o| o.order_id == done.order_id)
            .unwrap();
        w.orders[i] = done.clone();
    }
    expect.apply(&mut w.positions);
    w.saw("confirmed_trade_date".into());
}

/// Moves the simulated clock forward: mostly minutes, sometimes a day or two, sometimes to
/// just before or at the cut-off.
fn move_clock(app: &TestApp, rng: &mut StdRng) {
    let now = app.now();
    let next = match rng.gen_range(0..100) {
        0..=1 => now + Duration::hours(rng.gen_range(1..40)),
        2 => Calendar::cut_off(business_date(now)) - Duration::seconds(rng.gen_range(0..2)),
        _ => now + Duration::seconds(rng.gen_range(0..900)),
    };
    if next > now {
        // Frozen there, so that the state read before a request holds when it is sent.
        app.set_now(&next.to_rfc3339());
    }
}

async fn setup(app: &TestApp, rng: &mut StdRng) -> World {
    app.setup_fund().await;
    load_holiday_calendar(app).await;
    let mut w = World {
        cal: holiday_calendar(),
        accounts: vec![],
        limits: BTreeMap::new(),
        positions: BTreeMap::new(),
        usage: BTreeMap::new(),
        orders: vec![],
        accepted_day: HashMap::new(),
        seen: BTreeMap::new(),
        requests: 0,
    };
    for code in FUNDS {
        let f = random_limits(rng);
        let code = FundCode::parse(code).unwrap();
        put_fund(app, &code, &f).await;
        w.limits.insert(code, f);
    }
    for (partner, n) in [("p1", 6), ("p2", 2)] {
        for i in 0..n {
            let a = app
                .open_account(partner, &format!("{partner}-twin-{i}"))
                .await;
            w.accounts.push((
                PartnerId::parse(partner).unwrap(),
                AccountId::parse(&a).unwrap(),
            ));
        }
    }
    // Holdings: none, sub-yuan, ordinary, large; some positions missing altogether.
    let c = app.pg().await;
    for (_, account) in &w.accounts {
        for code in w.limits.keys() {
            if rng.gen_bool(0.15) {
                continue;
            }
            let units = if rng.gen_bool(0.2) {
                Units::ZERO
            } else {
                amount(rng).as_units()
            };
            c.execute(
                "INSERT INTO positions (account_id, fund_code, units) VALUES ($1, $2, $3)",
                &[&account.as_str(), &code.as_str(), &units.decimal()],
            )
            .await
            .unwrap();
            w.positions.insert(
                (account.clone(), code.clone()),
                Position {
                    units,
                    pending_subscription: Amount::ZERO,
                },
            );
        }
    }
    w
}

#[tokio::test]
async fn order_statements_decide_as_the_rust_limit_checks() {
    let app = spawn_command().await;
    let mut rng = rng();
    let mut w = setup(&app, &mut rng).await;
    for _ in 0..STEPS {
        move_clock(&app, &mut rng);
        match rng.gen_range(0..100) {
            0..=1 => {
                let code = FundCode::parse(FUNDS[rng.gen_range(0..FUNDS.len())]).unwrap();
                let f = random_limits(&mut rng);
                put_fund(&app, &code, &f).await;
                w.limits.insert(code, f);
            }
            2..=4 => confirm_past(&app, &mut w).await,
            5..=34 => subscribe(&app, &mut w, &mut rng).await,
            35..=54 => redeem(&app, &mut w, &mut rng, Redemption::Normal).await,
            55..=72 => redeem(&app, &mut w, &mut rng, Redemption::FastWithdrawal).await,
            73..=82 => redeem(&app, &mut w, &mut rng, Redemption::FastPayment).await,
            _ => cancel(&app, &mut w, &mut rng).await,
        }
    }
    // Everything the requests wrote, as the Rust rules predict it.
    let mut expect = w.orders.clone();
    expect.sort_by_key(|o| o.order_id);
    let orders: Vec<Order> = read_orders(&app)
        .await
        .into_iter()
        .filter(|o| o.fund_code.as_str() != FUND)
        .collect();
    assert_eq!(orders, expect, "every order");
    for ((account, fund), p) in &w.positions {
        assert_eq!(
            &db_position(&app, account, fund.as_str()).await,
            p,
            "{account} {fund}"
        );
    }
    for (key, used) in &w.usage {
        assert_eq!(&db_usage(&app, key).await, used, "usage {key:?}");
    }
    println!("{:#?}", w.seen);
    for code in [
        "unknown_fund",
        "account_not_found",
        "amount_below_minimum",
        "amount_above_order_limit",
        "subscription_day_limit_exceeded",
        "insufficient_units",
        "fast_withdrawal_cap_exceeded",
        "order_not_found",
        "order_not_cancellable",
        "cut_off_passed",
        "accepted_subscription",
        "accepted_Normal",
        "accepted_FastWithdrawal",
        "accepted_FastPayment",
        "accepted_cancel_subscription",
        "accepted_cancel_redemption",
        "confirmed_trade_date",
    ] {
        assert!(
            w.seen.get(code).copied().unwrap_or(0) > 0,
            "no {code} among {:?}",
            w.seen
        );
    }
}
