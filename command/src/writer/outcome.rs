//! What an order statement's row means for its order: the stored response of the new order,
//! the replay of an earlier use of the request_id, or the rule that refused it. The refusals
//! are reported in the order the statement checks them.

use super::statements::{CancelRow, Prior, RedeemRow, SubscribeRow};
use super::{Cancel, Redeem, Subscribe};
use crate::idempotency::{replay, Reply, Stored};
use axum::http::StatusCode;
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

fn refuse(code: ErrorCode, message: &str, field: &str) -> Outcome {
    Outcome::Done(Err(ApiError::new(code, message).with_field(field)))
}

fn unknown_fund() -> Outcome {
    refuse(ErrorCode::UnknownFund, "no such fund", "fund_code")
}

fn account_not_found() -> Outcome {
    refuse(
        ErrorCode::AccountNotFound,
        "no such account for this partner",
        "account_id",
    )
}

pub fn outcome_of_subscribe(c: &Subscribe, row: SubscribeRow) -> Outcome {
    if let Some(done) = written(row.created, StatusCode::CREATED, row.prior, &c.hash) {
        return done;
    }
    if !row.fund_ok {
        return unknown_fund();
    }
    if !row.account_ok {
        return account_not_found();
    }
    let limit = |v: Option<Decimal>| v.unwrap_or(Decimal::MAX);
    if c.amount < row.min_subscription.unwrap_or_default() {
        return refuse(
            ErrorCode::AmountBelowMinimum,
            "amount is below the fund's minimum subscription",
            "amount",
        );
    }
    if c.amount > limit(row.max_subscription_per_order) {
        return refuse(
            ErrorCode::AmountAboveOrderLimit,
            "amount exceeds the fund's per-order limit",
            "amount",
        );
    }
    if row.used + c.amount > limit(row.day_limit) {
        return refuse(
            ErrorCode::SubscriptionDayLimitExceeded,
            "amount exceeds the fund's per-day subscription limit",
            "amount",
        );
    }
    Outcome::Retry
}

pub fn outcome_of_redeem(c: &Redeem, row: RedeemRow) -> Outcome {
    if let Some(done) = written(row.created, StatusCode::CREATED, row.prior, &c.hash) {
        return done;
    }
    if !row.fund_ok {
        return unknown_fund();
    }
    if !row.account_ok {
        return account_not_found();
    }
    if row.units.unwrap_or_default() < c.units {
        return refuse(
            ErrorCode::InsufficientUnits,
            "units exceed the available units",
            "units",
        );
    }
    if row.cap.is_some_and(|cap| row.used + c.units > cap) {
        return refuse(
            ErrorCode::FastWithdrawalCapExceeded,
            "fast withdrawals today would exceed the daily cap",
            "units",
        );
    }
    Outcome::Retry
}

pub fn outcome_of_cancel(c: &Cancel, row: CancelRow) -> Outcome {
    if let Some(done) = written(row.created, StatusCode::OK, row.prior, &c.hash) {
        return done;
    }
    let conflict = |code, message: &str| Outcome::Done(Err(ApiError::new(code, message)));
    match (
        row.order_status.as_deref(),
        row.order_kind.as_deref(),
        row.order_trade_date,
    ) {
        (None, _, _) => refuse(ErrorCode::OrderNotFound, "no such order", "order_id"),
        (_, Some("fast_redemption"), _) => conflict(
            ErrorCode::OrderNotCancellable,
            "fast redemptions are paid at once and cannot be cancelled",
        ),
        (Some(s), _, _) if s != "accepted" => {
            conflict(ErrorCode::OrderNotCancellable, &format!("the order is {s}"))
        }
        (_, _, Some(t)) if t < c.open_from => conflict(
            ErrorCode::CutOffPassed,
            "the cut-off of the order's trade date has passed",
        ),
        _ => Outcome::Retry,
    }
}
