//! The reconciliation import (`POST /v1/ops/reconciliation/{partner}/{date}/requests`) against
//! its Rust twin (`mmf_domain::reconcile::compare`) on random partner files: built from the
//! partner's orders of the date (or of one hour, for hourly files), with records dropped,
//! amounts, cancel flags, kinds, accounts and funds altered, request ids unknown to the system,
//! request ids the system has on another date, and request ids only another partner used.
//! The report (records, matched, and every discrepancy with its kind, request id, order, line
//! and note) must equal the Rust comparison, and so must the stored report read back.

mod sql_twins;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use mmf_command::cycle::reconcile::ofd::{self, Header, ParsedValue, Value};
use mmf_domain::calendar::start_of;
use mmf_domain::orders::{Order, OrderKind, OrderStatus, Purpose};
use mmf_domain::reconcile::{compare, request_of, Comparison, Request};
use mmf_domain::{AccountId, FundCode, PartnerId, RequestId};
use mmf_tests::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use rust_decimal::Decimal;
use serde_json::Value as Json;
use sql_twins::*;

const D: &str = "2026-11-26";
const FUNDS: [&str; 2] = ["000001", "000002"];

fn random_order(
    rng: &mut StdRng,
    id: i64,
    partner: &str,
    accounts: &[AccountId],
) -> (Order, DateTime<Utc>) {
    let kind = OrderKind::ALL[rng.gen_range(0..3)];
    let status = match (kind, rng.gen_range(0..10)) {
        (OrderKind::FastRedemption, _) => OrderStatus::Confirmed,
        (_, 0..=1) => OrderStatus::Cancelled,
        (_, 2..=5) => OrderStatus::Confirmed,
        _ => OrderStatus::Accepted,
    };
    let trade_date = match rng.gen_range(0..10) {
        0 => day("2026-11-25"),
        1 => day("2026-11-27"),
        _ => day(D),
    };
    // Accepted during calendar day D, whatever the trade date, so hourly files mix them.
    let accepted_at = start_of(day(D)) + Duration::seconds(rng.gen_range(0..86_400));
    let order = Order {
        order_id: id,
        partner_id: PartnerId::parse(partner).unwrap(),
        // Both partners number their requests alike, so some request ids are used by both.
        request_id: RequestId::parse(&format!("q-{}", rng.gen_range(0..4_000))).unwrap(),
        account_id: accounts[rng.gen_range(0..accounts.len())].clone(),
        fund_code: FundCode::parse(FUNDS[rng.gen_range(0..2)]).unwrap(),
        kind,
        purpose: (kind == OrderKind::FastRedemption).then_some(Purpose::Payment),
        amount: amount(rng),
        status,
        trade_date,
        effective_date: None,
    };
    (order, accepted_at)
}

/// Random orders of p1 and p2, request ids unique per partner.
async fn seed(app: &TestApp, rng: &mut StdRng) -> Vec<(Order, DateTime<Utc>)> {
    let mut all: Vec<(Order, DateTime<Utc>)> = Vec::new();
    for (partner, prefix, accounts, orders) in [("p1", "81", 300, 1_500), ("p2", "82", 100, 400)] {
        let ids: Vec<AccountId> = (0..accounts)
            .map(|n| AccountId::parse(&format!("{prefix}{n:010}")).unwrap())
            .collect();
        insert_accounts(app, partner, &ids).await;
        let mut used = std::collections::HashSet::new();
        while used.len() < orders {
            let (o, at) = random_order(rng, all.len() as i64 + 1, partner, &ids);
            if used.insert(o.request_id.clone()) {
                all.push((o, at));
            }
        }
    }
    let (orders, at): (Vec<Order>, Vec<DateTime<Utc>>) = all.iter().cloned().unzip();
    insert_orders(app, &orders, &at).await;
    all
}

/// The partner's file for `scope`, altered at random: (the records, what was done).
fn altered_file(
    rng: &mut StdRng,
    scope: &[Order],
    elsewhere: &[Order],
    other_partner: &[Order],
) -> Vec<Request> {
    let mut file: Vec<Request> = Vec::new();
    for o in scope {
        let mut r = request_of(o, 0);
        match rng.gen_range(0..40) {
            0..=1 => continue,
            2..=3 => {
                r.amount += Decimal::new(rng.gen_range(-100..100), 2);
                if r.amount <= Decimal::ZERO {
                    r.amount = Decimal::new(1, 2);
                }
            }
            4..=5 => r.cancelled = !r.cancelled,
            6 => {
                r.kind = match r.kind {
                    OrderKind::Subscription => OrderKind::Redemption,
                    OrderKind::Redemption => OrderKind::FastRedemption,
                    OrderKind::FastRedemption => OrderKind::Subscription,
                }
            }
            7 => r.account_id = format!("8{:011}", rng.gen_range(0..1_000_000)),
            8 => r.fund_code = ["000002", "000001", "ZZZ999"][rng.gen_range(0..3)].into(),
            9 => {
                // Several at once.
                r.amount += Decimal::ONE;
                r.cancelled = !r.cancelled;
            }
            _ => {}
        }
        file.push(r);
    }
    let template = scope.first().or(elsewhere.first()).expect("some orders");
    for n in 0..rng.gen_range(0..20) {
        let mut r = request_of(template, 0);
        r.request_id = format!("unknown-{n}");
        file.push(r);
    }
    for o in elsewhere
        .choose_multiple(rng, 10)
        .chain(other_partner.choose_multiple(rng, 5))
    {
        if !file.iter().any(|r| r.request_id == o.request_id.as_str()) {
            file.push(request_of(o, 0));
        }
    }
    file.shuffle(rng);
    file
}

/// The OFD bytes of `file` and the records with the lines the parser gives them.
fn ofd_file(partner: &str, date: NaiveDate, file: &[Request]) -> (Vec<u8>, Vec<Request>) {
    let records: Vec<Vec<Value>> = file
        .iter()
        .map(|r| {
            let sub = r.kind == OrderKind::Subscription;
            let flag = |b: bool| Value::Text(if b { "1" } else { "0" }.into());
            vec![
                Value::Text(r.request_id.clone()),
                Value::Text(date.format("%Y%m%d").to_string()),
                Value::Text("100000".into()),
                Value::Text(if sub { "022" } else { "024" }.into()),
                Value::Text(r.account_id.clone()),
                Value::Text(r.fund_code.clone()),
                Value::Num(if sub { r.amount } else { Decimal::ZERO }),
                Value::Num(if sub { Decimal::ZERO } else { r.amount }),
                flag(r.kind == OrderKind::FastRedemption),
                flag(r.cancelled),
            ]
        })
        .collect();
    let header = Header {
        creator: partner.into(),
        receiver: "MMFTA".into(),
        date,
        summary: 0,
        file_type: "02".into(),
        sender: partner.into(),
        recipient: "MMFTA".into(),
    };
    let bytes = ofd::write(&header, &mmf_tests::cycle::REQUEST_FIELDS, &records).unwrap();
    let parsed = ofd::parse(&bytes).unwrap();
    let lined = parsed
        .records
        .iter()
        .zip(file)
        .map(|((line, rec), r)| {
            let Some(ParsedValue::Text(id)) = parsed.get(rec, "AppSheetSerialNo") else {
                panic!()
            };
            assert_eq!(id, &r.request_id);
            Request {
                line: *line,
                ..r.clone()
            }
        })
        .collect();
    (bytes, lined)
}

/// A discrepancy as (kind, request id, order id, line, note).
type Listed = (String, String, Option<i64>, Option<usize>, Option<String>);

/// The report's discrepancies in the order it lists them (orders missing from the file last,
/// by order id, as the Rust rule lists them).
fn discrepancies(report: &Json) -> Vec<Listed> {
    report["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["request_id"].as_str().unwrap().to_string(),
                d["order_id"].as_i64(),
                d["line"].as_u64().map(|l| l as usize),
                d["detail"]["note"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn expected(c: &Comparison) -> Vec<Listed> {
    c.discrepancies
        .iter()
        .map(|d| {
            (
                d.kind.as_str().to_string(),
                d.request_id.clone(),
                d.order_id,
                d.line,
                d.note.clone(),
            )
        })
        .collect()
}

async fn import(app: &TestApp, hour: Option<u32>, bytes: Vec<u8>) -> Json {
    let query = hour.map(|h| format!("?hour={h}")).unwrap_or_default();
    let url = format!("{}/v1/ops/reconciliation/p1/{D}/requests{query}", app.base);
    let resp = app
        .http
        .post(url)
        .bearer_auth(OPS_TOKEN)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let url = format!(
        "{}/v1/ops/reconciliation/p1/{D}/discrepancies{query}",
        app.base
    );
    let resp = app
        .http
        .get(url)
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, stored) = json_of(resp).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{stored}");
    assert_eq!(stored, body, "the stored report is the one returned");
    body
}

#[tokio::test]
async fn reconciliation_sql_equals_the_rust_compare_on_random_files() {
    let app = spawn_command().await;
    for f in FUNDS {
        app.create_fund(f, "redistribute").await;
    }
    let mut rng = rng();
    let all = seed(&app, &mut rng).await;
    let p1 = |o: &&(Order, DateTime<Utc>)| o.0.partner_id.as_str() == "p1";
    let p1_orders: Vec<&(Order, DateTime<Utc>)> = all.iter().filter(p1).collect();
    let p2_only: Vec<Order> = all
        .iter()
        .filter(|(o, _)| {
            o.partner_id.as_str() == "p2"
                && !p1_orders.iter().any(|(x, _)| x.request_id == o.request_id)
        })
        .map(|(o, _)| o.clone())
        .collect();
    let mut kinds = std::collections::BTreeSet::new();
    for round in 0..6 {
        let hour = (round >= 4).then(|| rng.gen_range(0..24u32));
        let in_scope = |(o, at): &&&(Order, DateTime<Utc>)| match hour {
            None => o.trade_date == day(D),
            Some(h) => {
                let from = start_of(day(D)) + Duration::hours(h.into());
                *at >= from && *at < from + Duration::hours(1)
            }
        };
        let scope: Vec<Order> = p1_orders
            .iter()
            .filter(in_scope)
            .map(|(o, _)| o.clone())
            .collect();
        let elsewhere: Vec<Order> = p1_orders
            .iter()
            .filter(|x| !in_scope(x))
            .map(|(o, _)| o.clone())
            .collect();
        let file = if round == 0 {
            scope.iter().map(|o| request_of(o, 0)).collect()
        } else {
            altered_file(&mut rng, &scope, &elsewhere, &p2_only)
        };
        let (bytes, file) = ofd_file("p1", day(D), &file);
        let others: Vec<Order> = p1_orders
            .iter()
            .map(|(o, _)| o.clone())
            .filter(|o| file.iter().any(|r| r.request_id == o.request_id.as_str()))
            .collect();
        let expect = compare(&file, &scope, &others);
        let report = import(&app, hour, bytes).await;
        let what = format!("round {round}, hour {hour:?}");
        assert_eq!(report["records"], file.len(), "{what}: records");
        assert_eq!(report["matched"], expect.matched, "{what}: matched");
        assert_eq!(
            discrepancies(&report),
            expected(&expect),
            "{what}: discrepancies"
        );
        if round == 0 {
            assert!(expect.discrepancies.is_empty() && expect.matched == scope.len());
        }
        kinds.extend(
            expect
                .discrepancies
                .iter()
                .map(|d| (d.kind, d.note.is_some())),
        );
    }
    // Every kind of discrepancy occurred, and missing requests with and without a note.
    assert!(kinds.len() >= 6, "{kinds:?}");
}
