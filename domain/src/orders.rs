//! Orders: their kinds and states as the database stores them, and the checks that accept or
//! refuse a subscription, a redemption or a cancellation (DESIGN §3,
//! docs/decisions/0005-rule-interpretations.md).
//!
//! Each check reports the first rule that refuses, in the order the API reports them:
//! - subscription: unknown fund, account not the partner's, below the fund's minimum, above its
//!   per-order limit, above its per-day limit with today's earlier subscriptions;
//! - redemption (normal, fast withdrawal, fast payment): unknown fund, account not the
//!   partner's, more units than available, then (fast withdrawals only) today's fast
//!   withdrawals plus this one above the fund's daily cap;
//! - cancellation: no such order of the partner, a fast redemption (paid at once), not
//!   `accepted` any more, its trade date's cut-off passed.

use crate::ids::{AccountId, FundCode, PartnerId, RequestId};
use crate::money::{Amount, Units};
use chrono::NaiveDate;
use std::fmt;

macro_rules! db_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text the database stores.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s),+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

db_enum!(
    /// `orders.kind`.
    OrderKind {
        Subscription => "subscription",
        Redemption => "redemption",
        FastRedemption => "fast_redemption",
    }
);

db_enum!(
    /// `orders.status`: normal orders are `accepted` until the clearing of their trade date
    /// confirms them; fast redemptions are `confirmed` at once.
    OrderStatus {
        Accepted => "accepted",
        Confirmed => "confirmed",
        Cancelled => "cancelled",
    }
);

db_enum!(
    /// `mode` of a redemption request.
    RedemptionMode {
        Normal => "normal",
        Fast => "fast",
    }
);

db_enum!(
    /// `orders.purpose` of a fast redemption: only withdrawals count against the daily cap.
    Purpose {
        Withdrawal => "withdrawal",
        Payment => "payment",
    }
);

/// JR/T 0017 business codes of trade requests in a partner's file.
pub const SUBSCRIPTION_REQUEST: &str = "022";
pub const REDEMPTION_REQUEST: &str = "024";

impl OrderKind {
    /// The kind a partner's file record stands for: 022 is a subscription, 024 a redemption,
    /// fast when its `FastRedeemFlag` is set. `None` for what the file format refuses.
    pub fn of_request(business_code: &str, fast: bool) -> Option<OrderKind> {
        match (business_code, fast) {
            (SUBSCRIPTION_REQUEST, false) => Some(OrderKind::Subscription),
            (REDEMPTION_REQUEST, false) => Some(OrderKind::Redemption),
            (REDEMPTION_REQUEST, true) => Some(OrderKind::FastRedemption),
            _ => None,
        }
    }
}

/// One order as the database holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub order_id: i64,
    pub partner_id: PartnerId,
    pub request_id: RequestId,
    pub account_id: AccountId,
    pub fund_code: FundCode,
    pub kind: OrderKind,
    /// Fast redemptions only.
    pub purpose: Option<Purpose>,
    /// Cash for a subscription, units for a redemption (equal in value at NAV 1.00).
    pub amount: Amount,
    pub status: OrderStatus,
    pub trade_date: NaiveDate,
    /// When the units start (subscription, set at confirmation) or stop (redemptions, set at
    /// acceptance) earning.
    pub effective_date: Option<NaiveDate>,
}

/// A fund's order limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FundLimits {
    pub min_subscription: Amount,
    pub max_subscription_per_order: Amount,
    /// Per account and Shanghai calendar day of acceptance; a cancelled subscription gives
    /// its amount back.
    pub max_subscription_per_day: Amount,
    /// Fast withdrawals per account and Shanghai calendar day.
    pub fast_withdrawal_daily_cap: Amount,
}

/// Why an order or a cancellation is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    UnknownFund,
    AccountNotFound,
    AmountBelowMinimum,
    AmountAboveOrderLimit,
    SubscriptionDayLimitExceeded,
    InsufficientUnits,
    FastWithdrawalCapExceeded,
    OrderNotFound,
    /// Fast redemptions are paid at once.
    FastNotCancellable,
    /// The order is already confirmed or cancelled.
    NotOpen(OrderStatus),
    CutOffPassed,
}

impl Refusal {
    /// The API's error code.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::UnknownFund => "unknown_fund",
            Refusal::AccountNotFound => "account_not_found",
            Refusal::AmountBelowMinimum => "amount_below_minimum",
            Refusal::AmountAboveOrderLimit => "amount_above_order_limit",
            Refusal::SubscriptionDayLimitExceeded => "subscription_day_limit_exceeded",
            Refusal::InsufficientUnits => "insufficient_units",
            Refusal::FastWithdrawalCapExceeded => "fast_withdrawal_cap_exceeded",
            Refusal::OrderNotFound => "order_not_found",
            Refusal::FastNotCancellable | Refusal::NotOpen(_) => "order_not_cancellable",
            Refusal::CutOffPassed => "cut_off_passed",
        }
    }
}

/// A subscription of `amount` to a fund with `fund`'s limits (`None`: no such fund), into an
/// account that is (`account_ok`) the requesting partner's, with `used_today` already
/// subscribed by the account to the fund this Shanghai calendar day.
pub fn check_subscription(
    fund: Option<&FundLimits>,
    account_ok: bool,
    amount: Amount,
    used_today: Amount,
) -> Result<(), Refusal> {
    let f = fund.ok_or(Refusal::UnknownFund)?;
    if !account_ok {
        return Err(Refusal::AccountNotFound);
    }
    if amount < f.min_subscription {
        return Err(Refusal::AmountBelowMinimum);
    }
    if amount > f.max_subscription_per_order {
        return Err(Refusal::AmountAboveOrderLimit);
    }
    if used_today.decimal() + amount.decimal() > f.max_subscription_per_day.decimal() {
        return Err(Refusal::SubscriptionDayLimitExceeded);
    }
    Ok(())
}

/// What a redemption request asks for: its mode and, for a fast one, its purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Redemption {
    Normal,
    FastWithdrawal,
    FastPayment,
}

impl Redemption {
    pub const ALL: [Redemption; 3] = [
        Redemption::Normal,
        Redemption::FastWithdrawal,
        Redemption::FastPayment,
    ];

    /// From a request's `mode` and `purpose`; a fast redemption without a purpose is a
    /// withdrawal (the capped one), a normal one takes none.
    pub fn of_request(mode: RedemptionMode, purpose: Option<Purpose>) -> Option<Redemption> {
        match (mode, purpose) {
            (RedemptionMode::Normal, None) => Some(Redemption::Normal),
            (RedemptionMode::Normal, Some(_)) => None,
            (RedemptionMode::Fast, None | Some(Purpose::Withdrawal)) => {
                Some(Redemption::FastWithdrawal)
            }
            (RedemptionMode::Fast, Some(Purpose::Payment)) => Some(Redemption::FastPayment),
        }
    }

    pub fn kind(self) -> OrderKind {
        match self {
            Redemption::Normal => OrderKind::Redemption,
            _ => OrderKind::FastRedemption,
        }
    }

    pub fn purpose(self) -> Option<Purpose> {
        match self {
            Redemption::Normal => None,
            Redemption::FastWithdrawal => Some(Purpose::Withdrawal),
            Redemption::FastPayment => Some(Purpose::Payment),
        }
    }

    /// Whether it counts against the fund's daily fast-withdrawal cap.
    pub fn capped(self) -> bool {
        self == Redemption::FastWithdrawal
    }
}

/// A redemption of `units` from a position with `available` units (zero when there is no
/// position), with `withdrawn_today` already fast-withdrawn by the account from the fund this
/// Shanghai calendar day (it matters for fast withdrawals only).
pub fn check_redemption(
    fund: Option<&FundLimits>,
    account_ok: bool,
    what: Redemption,
    units: Units,
    available: Units,
    withdrawn_today: Units,
) -> Result<(), Refusal> {
    let f = fund.ok_or(Refusal::UnknownFund)?;
    if !account_ok {
        return Err(Refusal::AccountNotFound);
    }
    if units > available {
        return Err(Refusal::InsufficientUnits);
    }
    if what.capped()
        && withdrawn_today.decimal() + units.decimal() > f.fast_withdrawal_daily_cap.decimal()
    {
        return Err(Refusal::FastWithdrawalCapExceeded);
    }
    Ok(())
}

/// What a cancellation needs to know of the order it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancellable {
    pub kind: OrderKind,
    pub status: OrderStatus,
    pub trade_date: NaiveDate,
}

impl From<&Order> for Cancellable {
    fn from(o: &Order) -> Cancellable {
        Cancellable {
            kind: o.kind,
            status: o.status,
            trade_date: o.trade_date,
        }
    }
}

/// A cancellation of `order` (`None`: no such order of the partner), when orders received
/// now get trade date `open_from` (`Calendar::trade_date(now)`): an order whose trade date is
/// earlier has passed its cut-off.
pub fn check_cancel(order: Option<Cancellable>, open_from: NaiveDate) -> Result<(), Refusal> {
    let o = order.ok_or(Refusal::OrderNotFound)?;
    if o.kind == OrderKind::FastRedemption {
        return Err(Refusal::FastNotCancellable);
    }
    if o.status != OrderStatus::Accepted {
        return Err(Refusal::NotOpen(o.status));
    }
    if o.trade_date < open_from {
        return Err(Refusal::CutOffPassed);
    }
    Ok(())
}

/// Why a request's `request_date` is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestDateRefusal {
    /// After today: a request cannot be dated later than the day it arrives.
    InFuture,
    /// Before the request-key window: its key may be gone, so it cannot be told from a retry.
    Expired,
}

/// The first day whose request keys are kept on `today`: keys of earlier days are deleted.
pub fn first_kept_key_day(today: NaiveDate, key_days: u32) -> NaiveDate {
    today - chrono::Days::new(u64::from(key_days))
}

/// A request dated `request_date` (the day the partner first sent it; every retry carries the
/// same date) is accepted on `today` only while the key of its first use must still be kept:
/// that key's day is the day it arrived, never before `request_date`.
pub fn check_request_date(
    request_date: NaiveDate,
    today: NaiveDate,
    key_days: u32,
) -> Result<(), RequestDateRefusal> {
    if request_date > today {
        return Err(RequestDateRefusal::InFuture);
    }
    if request_date < first_kept_key_day(today, key_days) {
        return Err(RequestDateRefusal::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(s: &str) -> Amount {
        s.parse().unwrap()
    }
    fn u(s: &str) -> Units {
        s.parse().unwrap()
    }

    fn limits() -> FundLimits {
        FundLimits {
            min_subscription: a("1.00"),
            max_subscription_per_order: a("1000.00"),
            max_subscription_per_day: a("1500.00"),
            fast_withdrawal_daily_cap: a("10000.00"),
        }
    }

    #[test]
    fn strings_match_the_database() {
        for k in OrderKind::ALL {
            assert_eq!(OrderKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(OrderKind::FastRedemption.as_str(), "fast_redemption");
        assert_eq!(
            OrderStatus::parse("cancelled"),
            Some(OrderStatus::Cancelled)
        );
        assert_eq!(OrderStatus::parse("Cancelled"), None);
        assert_eq!(RedemptionMode::parse("fast"), Some(RedemptionMode::Fast));
        assert_eq!(Purpose::parse("payment"), Some(Purpose::Payment));
        assert_eq!(
            OrderKind::of_request("024", true),
            Some(OrderKind::FastRedemption)
        );
        assert_eq!(OrderKind::of_request("022", true), None);
        assert_eq!(OrderKind::of_request("052", false), None);
        assert_eq!(
            Redemption::of_request(RedemptionMode::Fast, None),
            Some(Redemption::FastWithdrawal)
        );
        assert_eq!(
            Redemption::of_request(RedemptionMode::Normal, Some(Purpose::Payment)),
            None
        );
    }

    #[test]
    fn subscription_refusals_in_order() {
        let f = limits();
        let ok = |amount: &str, used: &str| check_subscription(Some(&f), true, a(amount), a(used));
        assert_eq!(
            check_subscription(None, false, a("0.01"), a("0")),
            Err(Refusal::UnknownFund)
        );
        assert_eq!(
            check_subscription(Some(&f), false, a("0.01"), a("0")),
            Err(Refusal::AccountNotFound)
        );
        assert_eq!(ok("0.99", "0"), Err(Refusal::AmountBelowMinimum));
        assert_eq!(ok("1000.01", "0"), Err(Refusal::AmountAboveOrderLimit));
        // Above the per-order limit is reported before the day limit.
        assert_eq!(ok("1000.01", "1500"), Err(Refusal::AmountAboveOrderLimit));
        assert_eq!(
            ok("500.01", "1000"),
            Err(Refusal::SubscriptionDayLimitExceeded)
        );
        assert_eq!(ok("500.00", "1000"), Ok(()));
        assert_eq!(ok("1.00", "0"), Ok(()));
    }

    #[test]
    fn redemption_refusals_in_order() {
        let f = limits();
        assert_eq!(
            check_redemption(
                Some(&f),
                true,
                Redemption::FastWithdrawal,
                u("10.00"),
                u("9.99"),
                u("9999")
            ),
            Err(Refusal::InsufficientUnits),
            "units are checked before the cap"
        );
        assert_eq!(
            check_redemption(
                Some(&f),
                true,
                Redemption::FastWithdrawal,
                u("10.00"),
                u("10.00"),
                u("9990.01")
            ),
            Err(Refusal::FastWithdrawalCapExceeded)
        );
        assert_eq!(
            check_redemption(
                Some(&f),
                true,
                Redemption::FastWithdrawal,
                u("10.00"),
                u("10.00"),
                u("9990.00")
            ),
            Ok(())
        );
        assert_eq!(
            check_redemption(
                Some(&f),
                true,
                Redemption::FastPayment,
                u("20000"),
                u("20000"),
                Units::ZERO
            ),
            Ok(()),
            "payments are not capped"
        );
        assert_eq!(
            check_redemption(
                Some(&f),
                true,
                Redemption::Normal,
                u("0.01"),
                Units::ZERO,
                Units::ZERO
            ),
            Err(Refusal::InsufficientUnits)
        );
        assert_eq!(
            check_redemption(
                None,
                true,
                Redemption::Normal,
                u("0.01"),
                u("1"),
                Units::ZERO
            ),
            Err(Refusal::UnknownFund)
        );
    }

    #[test]
    fn cancel_refusals_in_order() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let o = |kind, status, t: &str| {
            Some(Cancellable {
                kind,
                status,
                trade_date: d(t),
            })
        };
        let open = d("2026-11-27");
        assert_eq!(check_cancel(None, open), Err(Refusal::OrderNotFound));
        assert_eq!(
            check_cancel(
                o(
                    OrderKind::FastRedemption,
                    OrderStatus::Confirmed,
                    "2026-11-20"
                ),
                open
            ),
            Err(Refusal::FastNotCancellable)
        );
        assert_eq!(
            check_cancel(
                o(
                    OrderKind::Subscription,
                    OrderStatus::Cancelled,
                    "2026-11-20"
                ),
                open
            ),
            Err(Refusal::NotOpen(OrderStatus::Cancelled))
        );
        assert_eq!(
            check_cancel(
                o(OrderKind::Redemption, OrderStatus::Accepted, "2026-11-26"),
                open
            ),
            Err(Refusal::CutOffPassed)
        );
        assert_eq!(
            check_cancel(
                o(OrderKind::Redemption, OrderStatus::Accepted, "2026-11-27"),
                open
            ),
            Ok(())
        );
        assert_eq!(
            Refusal::NotOpen(OrderStatus::Confirmed).code(),
            "order_not_cancellable"
        );
    }

    fn amount() -> impl Strategy<Value = Amount> {
        prop_oneof![1i64..200_000, 1i64..100_000_000].prop_map(Amount::from_fen)
    }

    fn fund() -> impl Strategy<Value = FundLimits> {
        (
            1i64..10_000,
            0i64..1_000_000,
            0i64..2_000_000,
            0i64..2_000_000,
        )
            .prop_map(|(min, order, day, cap)| FundLimits {
                min_subscription: Amount::from_fen(min),
                max_subscription_per_order: Amount::from_fen(min + order),
                max_subscription_per_day: Amount::from_fen(min + order + day),
                fast_withdrawal_daily_cap: Amount::from_fen(cap),
            })
    }

    /// Refusals a larger amount can only make worse (every rule but the minimum).
    fn upper(r: Result<(), Refusal>) -> bool {
        matches!(
            r,
            Err(Refusal::AmountAboveOrderLimit
                | Refusal::SubscriptionDayLimitExceeded
                | Refusal::InsufficientUnits
                | Refusal::FastWithdrawalCapExceeded)
        )
    }

    proptest! {
        #[test]
        fn subscription_accepts_exactly_an_interval(f in fund(), x in amount(), y in amount(), used in amount()) {
            let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
            let check = |v| check_subscription(Some(&f), true, v, used);
            // Accepted amounts form an interval: between two accepted, everything is.
            if check(lo).is_ok() && check(hi).is_ok() {
                let mid = Amount::from_fen((lo.fen() + hi.fen()) / 2);
                prop_assert_eq!(check(mid), Ok(()));
            }
            // Monotone above the minimum: an upper-limit refusal stays for larger amounts, an
            // acceptance for smaller ones down to the minimum.
            if upper(check(lo)) { prop_assert!(upper(check(hi))); }
            if check(hi).is_ok() && lo >= f.min_subscription { prop_assert_eq!(check(lo), Ok(())); }
            // More used today never turns a refusal into an acceptance.
            let more = used.checked_add(x).unwrap();
            if check_subscription(Some(&f), true, y, used).is_err() {
                prop_assert!(check_subscription(Some(&f), true, y, more).is_err());
            }
            let accepted = check(x).is_ok();
            let expected = x >= f.min_subscription && x <= f.max_subscription_per_order
                && used.decimal() + x.decimal() <= f.max_subscription_per_day.decimal();
            prop_assert_eq!(accepted, expected);
        }

        #[test]
        fn redemptions_are_monotone_in_units(f in fund(), x in amount(), y in amount(), held in amount(), used in amount()) {
            let (lo, hi) = if x <= y { (x.as_units(), y.as_units()) } else { (y.as_units(), x.as_units()) };
            for what in Redemption::ALL {
                let check = |v| check_redemption(Some(&f), true, what, v, held.as_units(), used.as_units());
                if check(hi).is_ok() { prop_assert_eq!(check(lo), Ok(())); }
                if upper(check(lo)) { prop_assert!(upper(check(hi))); }
                // Never more than the units available, whatever the purpose.
                if check(hi).is_ok() { prop_assert!(hi <= held.as_units()); }
                if what.capped() && check(hi).is_ok() {
                    prop_assert!(used.decimal() + hi.decimal() <= f.fast_withdrawal_daily_cap.decimal());
                }
            }
            // A payment is refused only where a withdrawal is too.
            let pay = check_redemption(Some(&f), true, Redemption::FastPayment, hi, held.as_units(), Units::ZERO);
            let wd = check_redemption(Some(&f), true, Redemption::FastWithdrawal, hi, held.as_units(), used.as_units());
            if pay.is_err() { prop_assert_eq!(wd, pay); }
            prop_assert_eq!(check_redemption(Some(&f), true, Redemption::Normal, hi, held.as_units(), Units::ZERO), pay);
        }
    }

    proptest! {
        /// A request accepted on any day meets the key of its first use: that key (dated the
        /// day the request first arrived, on or after its request_date) is still kept.
        #[test]
        fn an_accepted_retry_meets_its_key(
            request in 0u32..100, arrived_after in 0u32..50, retried_after in 0u32..100, key_days in 0u32..60,
        ) {
            let d = |n: u32| NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(u64::from(n));
            let (request_date, key_day) = (d(request), d(request + arrived_after));
            let today = d(request + arrived_after + retried_after);
            if check_request_date(request_date, today, key_days).is_ok() {
                prop_assert!(key_day >= first_kept_key_day(today, key_days));
            }
            // Accepted exactly from `key_days` days back to today.
            let accepted = check_request_date(request_date, today, key_days).is_ok();
            prop_assert_eq!(accepted, today >= request_date && (today - request_date).num_days() <= i64::from(key_days));
            prop_assert_eq!(check_request_date(d(request + 1), d(request), key_days), Err(RequestDateRefusal::InFuture));
        }
    }
}
