//! Reconciliation of a partner's trade request file with the orders the system received
//! (DESIGN §3). Each request of the file is looked up by its request id among the orders in
//! scope (those of the file's trade date, or of its hour for an hourly file):
//! - not there: `missing_in_system` (noting the order's trade date when the partner has the
//!   request id on another date);
//! - there, but for another kind, account or fund: `kind_mismatch`; another amount:
//!   `amount_mismatch`; cancelled on one side only: `status_mismatch` (a request can have
//!   several of these);
//! - otherwise it matches.
//!
//! Then every order in scope that the file does not list is `missing_in_file`.

use crate::orders::{Order, OrderKind, OrderStatus};
use rust_decimal::Decimal;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// One record of the partner's file, as the file states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Line of the file.
    pub line: usize,
    pub request_id: String,
    /// From the business code and the fast-redemption flag ([`OrderKind::of_request`]).
    pub kind: OrderKind,
    pub account_id: String,
    pub fund_code: String,
    /// Cash for a subscription, units for a redemption.
    pub amount: Decimal,
    pub cancelled: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiscrepancyKind {
    MissingInSystem,
    MissingInFile,
    AmountMismatch,
    StatusMismatch,
    KindMismatch,
}

impl DiscrepancyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscrepancyKind::MissingInSystem => "missing_in_system",
            DiscrepancyKind::MissingInFile => "missing_in_file",
            DiscrepancyKind::AmountMismatch => "amount_mismatch",
            DiscrepancyKind::StatusMismatch => "status_mismatch",
            DiscrepancyKind::KindMismatch => "kind_mismatch",
        }
    }
}

impl fmt::Display for DiscrepancyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discrepancy {
    pub kind: DiscrepancyKind,
    pub request_id: String,
    /// The system's order, when it has one (for `missing_in_system`: the order the request id
    /// names on another date).
    pub order_id: Option<i64>,
    /// The file's line, when the request is in the file.
    pub line: Option<usize>,
    pub note: Option<String>,
}

/// The outcome of comparing a file with the system.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Requests that agree with their order in every respect.
    pub matched: usize,
    /// In the file's order, then the orders missing from the file in the order given.
    pub discrepancies: Vec<Discrepancy>,
}

/// Compares `requests` with the partner's orders in `scope`; `others` are the partner's
/// orders (of any date) whose request ids the file names, to say where a missing one is.
pub fn compare(requests: &[Request], scope: &[Order], others: &[Order]) -> Comparison {
    let by_request: HashMap<&str, &Order> =
        scope.iter().map(|o| (o.request_id.as_str(), o)).collect();
    let elsewhere: HashMap<&str, &Order> =
        others.iter().map(|o| (o.request_id.as_str(), o)).collect();
    let mut c = Comparison::default();
    let mut d = |kind, r: Option<&Request>, o: Option<&Order>, note: Option<String>| {
        c.discrepancies.push(Discrepancy {
            kind,
            request_id: r
                .map(|r| r.request_id.clone())
                .or_else(|| o.map(|o| o.request_id.to_string()))
                .unwrap_or_default(),
            order_id: o.map(|o| o.order_id),
            line: r.map(|r| r.line),
            note,
        })
    };
    let mut matched = 0;
    for r in requests {
        let Some(o) = by_request.get(r.request_id.as_str()) else {
            let other = elsewhere.get(r.request_id.as_str()).copied();
            let note = other.map(|o| {
                format!(
                    "the system has this request with trade date {}",
                    o.trade_date
                )
            });
            d(DiscrepancyKind::MissingInSystem, Some(r), other, note);
            continue;
        };
        let mut clean = true;
        if r.kind != o.kind
            || r.account_id != o.account_id.as_str()
            || r.fund_code != o.fund_code.as_str()
        {
            d(DiscrepancyKind::KindMismatch, Some(r), Some(o), None);
            clean = false;
        }
        if r.amount != o.amount.decimal() {
            d(DiscrepancyKind::AmountMismatch, Some(r), Some(o), None);
            clean = false;
        }
        if r.cancelled != (o.status == OrderStatus::Cancelled) {
            d(DiscrepancyKind::StatusMismatch, Some(r), Some(o), None);
            clean = false;
        }
        if clean {
            matched += 1;
        }
    }
    let in_file: HashSet<&str> = requests.iter().map(|r| r.request_id.as_str()).collect();
    for o in scope {
        if !in_file.contains(o.request_id.as_str()) {
            d(DiscrepancyKind::MissingInFile, None, Some(o), None);
        }
    }
    c.matched = matched;
    c
}

/// The request a partner's file would list for `o`, on `line`.
pub fn request_of(o: &Order, line: usize) -> Request {
    Request {
        line,
        request_id: o.request_id.to_string(),
        kind: o.kind,
        account_id: o.account_id.to_string(),
        fund_code: o.fund_code.to_string(),
        amount: o.amount.decimal(),
        cancelled: o.status == OrderStatus::Cancelled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settlement::tests::{order, orders};
    use proptest::prelude::*;
    use rust_decimal_macros::dec;
    use DiscrepancyKind::*;

    fn kinds(c: &Comparison) -> Vec<(DiscrepancyKind, &str)> {
        c.discrepancies
            .iter()
            .map(|d| (d.kind, d.request_id.as_str()))
            .collect()
    }

    #[test]
    fn each_kind_of_discrepancy() {
        use OrderKind::*;
        use OrderStatus::*;
        let t = "2026-11-26";
        let scope = [
            order(1, "p1", Subscription, "100.00", Confirmed, t),
            order(2, "p1", Redemption, "50.00", Confirmed, t),
            order(3, "p1", Subscription, "70.00", Cancelled, t),
            order(4, "p1", FastRedemption, "30.00", Confirmed, t),
        ];
        let other = order(9, "p1", Subscription, "5.00", Confirmed, "2026-11-25");
        let mut file: Vec<Request> = scope
            .iter()
            .enumerate()
            .map(|(i, o)| request_of(o, i + 12))
            .collect();
        assert_eq!(
            compare(&file, &scope, &[]),
            Comparison {
                matched: 4,
                discrepancies: vec![]
            }
        );
        file[0].amount = dec!(100.01);
        file[1].kind = FastRedemption;
        file[2].cancelled = false;
        file.remove(3);
        file.push(request_of(&other, 40));
        let c = compare(&file, &scope, std::slice::from_ref(&other));
        assert_eq!(c.matched, 0);
        assert_eq!(
            kinds(&c),
            [
                (AmountMismatch, "r1"),
                (KindMismatch, "r2"),
                (StatusMismatch, "r3"),
                (MissingInSystem, "r9"),
                (MissingInFile, "r4"),
            ]
        );
        let missing = &c.discrepancies[3];
        assert_eq!((missing.order_id, missing.line), (Some(9), Some(40)));
        assert_eq!(
            missing.note.as_deref(),
            Some("the system has this request with trade date 2026-11-25")
        );
        assert_eq!(
            (c.discrepancies[4].order_id, c.discrepancies[4].line),
            (Some(4), None)
        );
    }

    /// One alteration of a file that lists every order in scope.
    #[derive(Clone, Debug)]
    enum Change {
        Remove,
        Add,
        Amount,
        Cancel,
        Kind,
        Account,
    }

    proptest! {
        #[test]
        fn a_file_equal_to_the_orders_has_no_discrepancy(orders in orders()) {
            let file: Vec<Request> = orders.iter().enumerate().map(|(i, o)| request_of(o, i + 12)).collect();
            let c = compare(&file, &orders, &orders);
            prop_assert_eq!(c.matched, orders.len());
            prop_assert!(c.discrepancies.is_empty());
        }

        #[test]
        fn one_change_gives_exactly_its_discrepancy(
            orders in orders().prop_filter("some orders", |o| !o.is_empty()),
            pick in any::<prop::sample::Index>(),
            change in prop_oneof![Just(Change::Remove), Just(Change::Add), Just(Change::Amount),
                                  Just(Change::Cancel), Just(Change::Kind), Just(Change::Account)],
        ) {
            let mut file: Vec<Request> = orders.iter().enumerate().map(|(i, o)| request_of(o, i + 12)).collect();
            let i = pick.index(file.len());
            let rid = file[i].request_id.clone();
            let expect = match change {
                Change::Remove => { file.remove(i); MissingInFile }
                Change::Add => {
                    let mut r = file[i].clone();
                    r.request_id = "not-in-system".into();
                    r.line = 99_999;
                    file.push(r);
                    MissingInSystem
                }
                Change::Amount => { file[i].amount += dec!(0.01); AmountMismatch }
                Change::Cancel => { file[i].cancelled = !file[i].cancelled; StatusMismatch }
                Change::Kind => {
                    file[i].kind = if file[i].kind == OrderKind::Subscription { OrderKind::Redemption } else { OrderKind::Subscription };
                    KindMismatch
                }
                Change::Account => { file[i].account_id = "899999999999".into(); KindMismatch }
            };
            let c = compare(&file, &orders, &orders);
            prop_assert_eq!(c.discrepancies.len(), 1, "{:?}", c.discrepancies);
            let d = &c.discrepancies[0];
            prop_assert_eq!(d.kind, expect);
            let expect_rid = if matches!(change, Change::Add) { "not-in-system" } else { rid.as_str() };
            prop_assert_eq!(d.request_id.as_str(), expect_rid);
            let unmatched = usize::from(!matches!(change, Change::Add | Change::Remove));
            prop_assert_eq!(c.matched, orders.len() - usize::from(matches!(change, Change::Remove)) - unmatched);
        }
    }
}
