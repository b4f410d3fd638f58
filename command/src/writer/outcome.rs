//! What an order statement's row means for its order: the stored response of the new order,
//! the replay of an earlier use of the request_id, or the rule that refused it — found by the
//! domain's checks (`mmf_domain::orders`) on the values the statement read, so the API reports
//! the same first refusal the Rust rules define.

use super::statements::{CancelRow, FundRow, Prior, RedeemRow, SubscribeRow};
use super::{Cancel, Redeem, Subscribe};
use crate::idempotency::{replay, Reply, Stored};
use axum::http::StatusCode;
use mmf_domain::money::{Amount, MAX_AMOUNT};
use mmf_domain::orders::{
    check_cancel, check_redemption, check_subscription, Cancellable, FundLimits, OrderKind,
    OrderStatus, Refusal,
};
use mmf_shared::http::{ApiError, ErrorCode};
use rust_decimal::Decimal;
use serde_json::Value;

pub enum Outcome {
    Done(Result<Reply, ApiError>),
    /// Nothing was written and no rule explains why: a concurrent change (another instance's
    /// commit) won a race; the order runs again on a fresh snapshot.
    Retry,
}

/// A new order's stored response, or the replay of an earlier use of the request_id.
fn written(
    created: Option<Value>,
    status: StatusCode,
    prior: Prior,
    hash: &str,
) -> Option<Outcome> {
    if let Some(body) = created {
        return Some(Outcome::Done(Ok(Reply { status, body })));
    }
    let Prior {
        prior_hash,
        prior_status,
        prior_body,
    } = prior;
    let stored = Stored {
        request_hash: prior_hash?,
        response_status: prior_status.unwrap_or(200),
        response_body: prior_body.unwrap_or(Value::Null),
    };
    Some(Outcome::Done(replay(hash, &stored)))
}

/// A value the database holds as numeric(18,2), non-negative (CHECK constraints): above
/// [`MAX_AMOUNT`] it is above any order too, so it is read as that.
fn fen_value(d: Decimal) -> Amount {
    Amount::from_decimal(d.min(MAX_AMOUNT)).expect("non-negative numeric(18,2)")
}

impl FundRow {
    /// The fund's limits, `None` when there is no such fund.
    fn limits(&self) -> Option<FundLimits> {
        Some(FundLimits {
            min_subscription: fen_value(self.min_subscription?),
            max_subscription_per_order: fen_value(self.max_subscription_per_order?),
            max_subscription_per_day: fen_value(self.max_subscription_per_day?),
            fast_withdrawal_daily_cap: fen_value(self.fast_withdrawal_daily_cap?),
        })
    }
}

/// The rule that refused an order: a refusal; none (the statement's checks passed on its
/// snapshot but a write found the rows changed): a retry.
fn refused(check: Result<(), Refusal>) -> Outcome {
    match check {
        Ok(()) => Outcome::Retry,
        Err(r) => Outcome::Done(Err(refusal(r))),
    }
}

fn refusal(r: Refusal) -> ApiError {
    let (code, message, field) = match r {
        Refusal::UnknownFund => (
            ErrorCode::UnknownFund,
            "no such fund".to_string(),
            Some("fund_code"),
        ),
        Refusal::AccountNotFound => (
            ErrorCode::AccountNotFound,
            "no such account for this partner".into(),
            Some("account_id"),
        ),
        Refusal::AmountBelowMinimum => (
            ErrorCode::AmountBelowMinimum,
            "amount is below the fund's minimum subscription".into(),
            Some("amount"),
        ),
        Refusal::AmountAboveOrderLimit => (
            ErrorCode::AmountAboveOrderLimit,
            "amount exceeds the fund's per-order limit".into(),
            Some("amount"),
        ),
        Refusal::SubscriptionDayLimitExceeded => (
            ErrorCode::SubscriptionDayLimitExceeded,
            "amount exceeds the fund's per-day subscription limit".into(),
            Some("amount"),
        ),
        Refusal::InsufficientUnits => (
            ErrorCode::InsufficientUnits,
            "units exceed the available units".into(),
            Some("units"),
        ),
        Refusal::FastWithdrawalCapExceeded => (
            ErrorCode::FastWithdrawalCapExceeded,
            "fast withdrawals today would exceed the daily cap".into(),
            Some("units"),
        ),
        Refusal::OrderNotFound => (
            ErrorCode::OrderNotFound,
            "no such order".into(),
            Some("order_id"),
        ),
        Refusal::FastNotCancellable => (
            ErrorCode::OrderNotCancellable,
            "fast redemptions are paid at once and cannot be cancelled".into(),
            None,
        ),
        Refusal::NotOpen(status) => (
            ErrorCode::OrderNotCancellable,
            format!("the order is {status}"),
            None,
        ),
        Refusal::CutOffPassed => (
            ErrorCode::CutOffPassed,
            "the cut-off of the order's trade date has passed".into(),
            None,
        ),
    };
    let e = ApiError::new(code, message);
    match field {
        Some(f) => e.with_field(f),
        None => e,
    }
}

pub fn outcome_of_subscribe(c: &Subscribe, row: SubscribeRow) -> Outcome {
    if let Some(done) = written(row.created, StatusCode::CREATED, row.prior, &c.hash) {
        return done;
    }
    refused(check_subscription(
        row.fund.limits().as_ref(),
        row.account_ok,
        c.amount,
        fen_value(row.used),
    ))
}

pub fn outcome_of_redeem(c: &Redeem, row: RedeemRow) -> Outcome {
    if let Some(done) = written(row.created, StatusCode::CREATED, row.prior, &c.hash) {
        return done;
    }
    refused(check_redemption(
        row.fund.limits().as_ref(),
        row.account_ok,
        c.what,
        c.units,
        fen_value(row.units.unwrap_or_default()).as_units(),
        fen_value(row.used).as_units(),
    ))
}

pub fn outcome_of_cancel(c: &Cancel, row: CancelRow) -> Outcome {
    if let Some(done) = written(row.created, StatusCode::OK, row.prior, &c.hash) {
        return done;
    }
    let order = match (row.order_kind, row.order_status, row.order_trade_date) {
        (Some(kind), Some(status), Some(trade_date)) => Some(Cancellable {
            kind: OrderKind::parse(&kind).expect("orders.kind CHECK"),
            status: OrderStatus::parse(&status).expect("orders.status CHECK"),
            trade_date,
        }),
        _ => None,
    };
    refused(check_cancel(order, c.open_from))
}
