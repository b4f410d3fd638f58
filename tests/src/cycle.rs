//! Harness for daily-cycle tests: orders, income publication and cycle runs through HTTP, and
//! the invariants every cycle test checks against the database.

use crate::{json_of, Api, TestApp, FUND, OPS_TOKEN};
use mmf_command::cycle::reconcile::ofd::{self, Header, Value as OfdValue};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// Loads 2026 with a Monday holiday (2026-11-30) so that the scenario crosses a weekend and a
/// holiday: the next trading day after Friday 2026-11-27 is Tuesday 2026-12-01.
pub async fn holiday_calendar(app: &impl Api) {
    let (s, b) = app
        .ops(
            Method::PUT,
            "/v1/ops/calendar/2026",
            json!({"holidays": ["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07", "2026-11-30"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

pub async fn publish(app: &impl Api, day: &str, per10k: &str) -> Value {
    publish_for(app, FUND, day, per10k).await
}

pub async fn publish_for(app: &impl Api, fund: &str, day: &str, per10k: &str) -> Value {
    let (s, b) = app
        .ops(
            Method::PUT,
            &format!("/v1/ops/funds/{fund}/income/{day}"),
            json!({ "per10k": per10k }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "publish {day}: {b}");
    b
}

pub async fn subscribe(app: &impl Api, partner: &str, account: &str, amount: &str) -> i64 {
    let rid = format!("sub-{}", rand::random::<u64>());
    let (s, b) = app
        .post(
            partner,
            "/v1/subscriptions",
            json!({"request_id": rid, "account_id": account, "fund_code": FUND, "amount": amount}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["order_id"].as_i64().unwrap()
}

/// `mode` is `normal` or `fast`.
pub async fn redeem(app: &impl Api, partner: &str, account: &str, units: &str, mode: &str) -> i64 {
    let rid = format!("red-{}", rand::random::<u64>());
    let (s, b) = app
        .post(
            partner,
            "/v1/redemptions",
            json!({"request_id": rid, "account_id": account, "fund_code": FUND, "units": units, "mode": mode}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["order_id"].as_i64().unwrap()
}

pub async fn run_cycle(app: &impl Api, trade_date: &str, options: Value) -> (StatusCode, Value) {
    app.ops(
        Method::POST,
        &format!("/v1/ops/cycles/{trade_date}"),
        options,
    )
    .await
}

/// Runs the cycle and asserts it completed.
pub async fn cycle(app: &impl Api, trade_date: &str) -> Value {
    let (s, b) = run_cycle(app, trade_date, json!({})).await;
    assert_eq!(s, StatusCode::OK, "cycle {trade_date}: {b}");
    assert_eq!(b["status"], "completed", "{b}");
    b
}

#[derive(Debug, PartialEq, Clone)]
pub struct Position {
    pub units: Decimal,
    pub pending: Decimal,
    pub carry: Decimal,
    pub cum_income: Decimal,
    pub last_income: Decimal,
    pub last_income_date: Option<chrono::NaiveDate>,
}

pub async fn position(app: &TestApp, account: &str) -> Position {
    let r = app
        .pg()
        .await
        .query_one(
            "SELECT units, pending_subscription, carry, cum_income, last_income, last_income_date
             FROM positions WHERE account_id = $1 AND fund_code = $2",
            &[&account, &FUND],
        )
        .await
        .unwrap();
    Position {
        units: r.get(0),
        pending: r.get(1),
        carry: r.get::<_, Decimal>(2).normalize(),
        cum_income: r.get(3),
        last_income: r.get(4),
        last_income_date: r.get(5),
    }
}

/// The income paid to `account` for calendar day `day` (its income entry effective day + 1).
pub async fn income_of(app: &TestApp, account: &str, day: &str) -> Decimal {
    let day: chrono::NaiveDate = day.parse().unwrap();
    app.pg()
        .await
        .query_one(
            "SELECT coalesce(sum(units), 0) FROM unit_movements
             WHERE account_id = $1 AND kind = 'income' AND effective_date = $2::date + 1",
            &[&account, &day],
        )
        .await
        .unwrap()
        .get(0)
}

pub fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Invariants that hold after every cycle:
/// - Σ position units = Σ movement units (every unit credited or debited has its journal row
///   or income payment entry);
/// - for every distributed day: Σ eligible recomputed from the journal (movements effective on
///   or before D) matches what the distribution used; Σ accrued = Σ eligible × per10k / 10,000
///   exactly; Σ paid + Σ carry change + Σ to_fund = Σ accrued; Σ paid = the day's income
///   entries, none of them zero;
/// - Σ carry held in positions = Σ carry changes of all distributions;
/// - policy `redistribute`: Σ paid = F, the fund's day income truncated to the fen.
pub async fn check_invariants(app: &TestApp) {
    let c = app.pg().await;
    let r = c
        .query_one(
            "SELECT (SELECT coalesce(sum(units), 0) FROM positions),
                    (SELECT coalesce(sum(units), 0) FROM unit_movements)",
            &[],
        )
        .await
        .unwrap();
    let (pos, jr): (Decimal, Decimal) = (r.get(0), r.get(1));
    assert_eq!(pos, jr, "Σ position units = Σ movement units");
    let days = c
        .query(
            "SELECT r.fund_code, r.day, r.per10k, sum(b.eligible), sum(b.accrued), sum(b.paid),
                    sum(b.carry_after - b.carry_before), sum(b.to_fund), r.fund_income
             FROM income_runs r JOIN income_batches b USING (fund_code, day)
             WHERE r.finished_at IS NOT NULL
             GROUP BY r.fund_code, r.day, r.per10k, r.fund_income ORDER BY r.day",
            &[],
        )
        .await
        .unwrap();
    let mut carry_total = Decimal::ZERO;
    for d in &days {
        let fund: String = d.get(0);
        let day: chrono::NaiveDate = d.get(1);
        let per10k: Decimal = d.get(2);
        let (eligible, accrued, paid, carry_change, to_fund): (
            Decimal,
            Decimal,
            Decimal,
            Decimal,
            Decimal,
        ) = (d.get(3), d.get(4), d.get(5), d.get(6), d.get(7));
        let from_journal: Decimal = c
            .query_one(
                "SELECT coalesce(sum(units), 0) FROM unit_movements
                 WHERE fund_code = $1 AND effective_date <= $2",
                &[&fund, &day],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(eligible, from_journal, "{day}: Σ eligible");
        assert_eq!(
            accrued,
            eligible * per10k / Decimal::from(10_000),
            "{day}: Σ accrued is exact"
        );
        assert_eq!(
            paid + carry_change + to_fund,
            accrued,
            "{day}: Σ paid + Σ carry change + Σ to_fund = Σ accrued"
        );
        // Policy redistribute: the fund's day income F = Σ accrued truncated to the fen, paid
        // out whole.
        if let Some(f) = d.get::<_, Option<Decimal>>(8) {
            assert_eq!(
                f,
                accrued.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero),
                "{day}: F"
            );
            assert_eq!(paid, f, "{day}: Σ paid = F");
        }
        let r = c
            .query_one(
                "SELECT coalesce(sum(units), 0), count(*) FILTER (WHERE units = 0)
                 FROM unit_movements
                 WHERE fund_code = $1 AND kind = 'income' AND effective_date = $2::date + 1",
                &[&fund, &day],
            )
            .await
            .unwrap();
        let (rows, zero): (Decimal, i64) = (r.get(0), r.get(1));
        assert_eq!(paid, rows, "{day}: Σ paid = income entries");
        assert_eq!(zero, 0, "{day}: no income entry of 0.00");
        carry_total += carry_change;
    }
    let carry: Decimal = c
        .query_one("SELECT coalesce(sum(carry), 0) FROM positions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(carry, carry_total, "Σ carry = Σ carry changes");
}

/// An opening holding: units credited with their journal row (a subscription effective well
/// before the scenario), so that the journal still accounts for every unit.
pub async fn seed_units(app: &TestApp, account: &str, units: &str) {
    let c = app.pg().await;
    let client: &tokio_postgres::Client = &c;
    credit_units(client, account, units).await
}

/// [`seed_units`] through any connection to the database.
pub async fn credit_units(c: &tokio_postgres::Client, account: &str, units: &str) {
    credit_units_in(c, account, FUND, units).await
}

/// [`credit_units`] in another fund.
pub async fn credit_units_in(c: &tokio_postgres::Client, account: &str, fund: &str, units: &str) {
    let units: Decimal = units.parse().unwrap();
    c.execute(
        "WITH p AS (
             INSERT INTO positions (account_id, fund_code, units) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, fund_code) DO UPDATE SET units = positions.units + EXCLUDED.units)
         INSERT INTO unit_journal (account_id, fund_code, kind, units, effective_date, booked_at)
         VALUES ($1, $2, 'subscription', $3, '2026-11-01', now())",
        &[&account, &fund, &units],
    )
    .await
    .unwrap();
}

/// Downloads a confirmation file (OFD type 04): (file name, parsed file).
pub async fn confirmation_file(
    app: &TestApp,
    partner: &str,
    trade_date: &str,
) -> (String, mmf_command::cycle::reconcile::ofd::Parsed) {
    let resp = app
        .http
        .get(format!(
            "{}/v1/ops/reconciliation/{partner}/{trade_date}/confirmations",
            app.base
        ))
        .bearer_auth(crate::OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let name = resp
        .headers()
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .split("filename=\"")
        .nth(1)
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let bytes = resp.bytes().await.unwrap();
    let parsed = mmf_command::cycle::reconcile::ofd::parse(&bytes).expect("well-formed OFD file");
    (name, parsed)
}

/// Totals of a confirmation file: (Σ 122 confirmed, Σ 124 normal, Σ 124 fast).
pub fn file_totals(p: &mmf_command::cycle::reconcile::ofd::Parsed) -> (Decimal, Decimal, Decimal) {
    use mmf_command::cycle::reconcile::ofd::ParsedValue;
    let mut t = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for (_, r) in &p.records {
        let text = |n: &str| match p.get(r, n) {
            Some(ParsedValue::Text(s)) => s.clone(),
            _ => panic!("{n}"),
        };
        let amount = match p.get(r, "ConfirmedAmount") {
            Some(ParsedValue::Num(n)) => *n,
            _ => panic!("ConfirmedAmount"),
        };
        match (
            text("BusinessCode").as_str(),
            text("FastRedeemFlag").as_str(),
        ) {
            ("122", _) => t.0 += amount,
            ("124", "0") => t.1 += amount,
            ("124", "1") => t.2 += amount,
            other => panic!("unexpected record {other:?}"),
        }
    }
    t
}

/// Confirmation file totals equal the settlement totals, for every partner of a trade date.
pub async fn check_confirmation_files(app: &TestApp, trade_date: &str) {
    let day: chrono::NaiveDate = trade_date.parse().unwrap();
    let rows = app
        .pg()
        .await
        .query(
            "SELECT p.partner_id, coalesce(sum(s.subscription_amount), 0), coalesce(sum(s.redemption_amount), 0),
                    coalesce(sum(s.fast_amount), 0)
             FROM partners p LEFT JOIN settlements s ON s.partner_id = p.partner_id AND s.trade_date = $1
             GROUP BY p.partner_id",
            &[&day],
        )
        .await
        .unwrap();
    for r in rows {
        let partner: String = r.get(0);
        let (_, file) = confirmation_file(app, &partner, trade_date).await;
        assert_eq!(
            file_totals(&file),
            (r.get(1), r.get(2), r.get(3)),
            "{partner} {trade_date}: confirmation file totals = settlement totals"
        );
    }
}

/// One request of the partner's file: (request id, business code, account, amount, fast, cancelled).
pub type Req<'a> = (&'a str, &'a str, &'a str, &'a str, bool, bool);

/// The fields of a partner's request file, in order.
pub const REQUEST_FIELDS: [&str; 10] = [
    "AppSheetSerialNo",
    "TransactionDate",
    "TransactionTime",
    "BusinessCode",
    "TAAccountID",
    "FundCode",
    "ApplicationAmount",
    "ApplicationVol",
    "FastRedeemFlag",
    "CancelFlag",
];

/// A partner's request file (OFD trade requests) for `date` (`YYYY-MM-DD`).
pub fn partner_request_file(partner: &str, date: &str, reqs: &[Req]) -> Vec<u8> {
    let compact = date.replace('-', "");
    let records: Vec<Vec<OfdValue>> = reqs
        .iter()
        .map(|(rid, code, acct, amount, fast, cancelled)| {
            let amount: Decimal = amount.parse().unwrap();
            let (app_amount, vol) = if *code == "022" {
                (amount, Decimal::ZERO)
            } else {
                (Decimal::ZERO, amount)
            };
            vec![
                OfdValue::Text(rid.to_string()),
                OfdValue::Text(compact.clone()),
                OfdValue::Text("100000".into()),
                OfdValue::Text(code.to_string()),
                OfdValue::Text(acct.to_string()),
                OfdValue::Text(FUND.into()),
                OfdValue::Num(app_amount),
                OfdValue::Num(vol),
                OfdValue::Text(if *fast { "1" } else { "0" }.into()),
                OfdValue::Text(if *cancelled { "1" } else { "0" }.into()),
            ]
        })
        .collect();
    ofd::write(
        &Header {
            creator: partner.into(),
            receiver: "MMFTA".into(),
            date: date.parse().unwrap(),
            summary: 0,
            file_type: "02".into(),
            sender: partner.into(),
            recipient: "MMFTA".into(),
        },
        &REQUEST_FIELDS,
        &records,
    )
    .unwrap()
}

/// Imports a partner's request file for `date` through the operations API.
pub async fn import_requests(
    app: &TestApp,
    partner: &str,
    date: &str,
    query: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let resp = app
        .http
        .post(format!(
            "{}/v1/ops/reconciliation/{partner}/{date}/requests{query}",
            app.base
        ))
        .bearer_auth(OPS_TOKEN)
        .header("Content-Type", "text/plain; charset=GB18030")
        .body(bytes)
        .send()
        .await
        .unwrap();
    json_of(resp).await
}
