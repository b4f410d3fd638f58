//! Business dates in Asia/Shanghai, the trading calendar, the 15:00 cut-off, and the dates on
//! which orders take effect for income (DESIGN §3):
//! - an order received at instant t has trade date T = t's Shanghai date if that is a trading
//!   day and t is before 15:00, else the next trading day;
//! - a subscription of T earns from the next trading day after T;
//! - a normal redemption of T stops earning on the next trading day after T (its units earn
//!   through the weekend or holiday that follows a Friday);
//! - a fast redemption stops earning the calendar day it is accepted.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Asia::Shanghai;
use serde::{Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;

/// Orders received at or after this local time belong to the next trading day.
pub const CUT_OFF: NaiveTime = match NaiveTime::from_hms_opt(15, 0, 0) {
    Some(t) => t,
    None => panic!("valid time"),
};

/// The calendar date of an instant in Asia/Shanghai.
pub fn business_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&Shanghai).date_naive()
}

/// The instant a Shanghai calendar day starts.
pub fn start_of(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN)
        .and_local_timezone(Shanghai)
        .single()
        .expect("Shanghai has no DST")
        .with_timezone(&Utc)
}

/// Trading days are weekdays that are not holidays. Ops load holidays per year.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Calendar {
    holidays: BTreeSet<NaiveDate>,
}

/// A trading day of some calendar: the trade date of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TradeDate(NaiveDate);

impl TradeDate {
    /// `d`, if it is a trading day of `calendar`.
    pub fn new(calendar: &Calendar, d: NaiveDate) -> Option<TradeDate> {
        calendar.is_trading_day(d).then_some(TradeDate(d))
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }

    /// The instant orders for this trade date stop being accepted (15:00 Shanghai).
    pub fn cut_off(self) -> DateTime<Utc> {
        Calendar::cut_off(self.0)
    }
}

impl fmt::Display for TradeDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for TradeDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl From<TradeDate> for NaiveDate {
    fn from(t: TradeDate) -> NaiveDate {
        t.0
    }
}

impl Calendar {
    pub fn new(holidays: impl IntoIterator<Item = NaiveDate>) -> Calendar {
        Calendar {
            holidays: holidays.into_iter().collect(),
        }
    }

    pub fn is_trading_day(&self, d: NaiveDate) -> bool {
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&d)
    }

    /// The first trading day strictly after `d`.
    pub fn next_trading_day(&self, d: NaiveDate) -> NaiveDate {
        let mut n = d + Days::new(1);
        while !self.is_trading_day(n) {
            n = n + Days::new(1);
        }
        n
    }

    /// `d` itself if it is a trading day, else the next one.
    pub fn trading_day_on_or_after(&self, d: NaiveDate) -> NaiveDate {
        if self.is_trading_day(d) {
            d
        } else {
            self.next_trading_day(d)
        }
    }

    /// Trade date of an order received at `t`: its Shanghai date when that is a trading day
    /// and the local time is before 15:00, else the next trading day.
    pub fn trade_date(&self, t: DateTime<Utc>) -> TradeDate {
        let local = t.with_timezone(&Shanghai);
        let d = local.date_naive();
        TradeDate(if self.is_trading_day(d) && local.time() < CUT_OFF {
            d
        } else {
            self.next_trading_day(d)
        })
    }

    /// The instant orders for trade date `d` stop being accepted (15:00 Shanghai on `d`).
    pub fn cut_off(d: NaiveDate) -> DateTime<Utc> {
        d.and_time(CUT_OFF)
            .and_local_timezone(Shanghai)
            .single()
            .expect("Shanghai has no DST")
            .with_timezone(&Utc)
    }

    /// Whether an order of trade date `trade_date` is still before its cut-off at `now`: the
    /// trade date is not earlier than the trade date an order received now would get.
    pub fn before_cut_off(&self, trade_date: NaiveDate, now: DateTime<Utc>) -> bool {
        trade_date >= self.trade_date(now).date()
    }

    /// The day a subscription of trade date `t` starts earning: the next trading day.
    pub fn subscription_effective(&self, t: TradeDate) -> NaiveDate {
        self.next_trading_day(t.date())
    }

    /// The day a normal redemption of trade date `t` stops earning: the next trading day,
    /// the same day a subscription of `t` starts.
    pub fn redemption_effective(&self, t: TradeDate) -> NaiveDate {
        self.next_trading_day(t.date())
    }
}

/// The day a fast redemption accepted at `accepted_at` stops earning: its Shanghai calendar
/// day (it earns nothing that day).
pub fn fast_redemption_effective(accepted_at: DateTime<Utc>) -> NaiveDate {
    business_date(accepted_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn cut_off_and_weekends() {
        let cal = Calendar::new([d("2026-10-01"), d("2026-10-02")]);
        let td = |s: &str| cal.trade_date(at(s)).date();
        // Thursday 2026-11-26.
        assert_eq!(td("2026-11-26T14:59:59+08:00"), d("2026-11-26"));
        assert_eq!(td("2026-11-26T15:00:00+08:00"), d("2026-11-27"));
        // Friday after cut-off and the weekend roll to Monday.
        assert_eq!(td("2026-11-27T15:00:00+08:00"), d("2026-11-30"));
        assert_eq!(td("2026-11-28T10:00:00+08:00"), d("2026-11-30"));
        // Holiday Thursday rolls past the holiday Friday and the weekend.
        assert_eq!(td("2026-10-01T09:00:00+08:00"), d("2026-10-05"));
        // Late UTC evening is already the next Shanghai day.
        assert_eq!(td("2026-11-25T23:30:00Z"), d("2026-11-26"));
        assert_eq!(
            Calendar::cut_off(d("2026-11-26")),
            at("2026-11-26T07:00:00Z")
        );
        assert_eq!(start_of(d("2026-11-26")), at("2026-11-25T16:00:00Z"));
    }

    #[test]
    fn effective_dates() {
        // Monday 2026-11-30 is a holiday.
        let cal = Calendar::new([d("2026-11-30")]);
        let fri = cal.trade_date(at("2026-11-27T10:00:00+08:00"));
        assert_eq!(cal.subscription_effective(fri), d("2026-12-01"));
        // A Friday redemption earns through the weekend and the holiday.
        assert_eq!(cal.redemption_effective(fri), d("2026-12-01"));
        // A fast redemption on Saturday stops earning on Saturday.
        assert_eq!(
            fast_redemption_effective(at("2026-11-28T10:00:00+08:00")),
            d("2026-11-28")
        );
        assert_eq!(TradeDate::new(&cal, d("2026-11-30")), None);
        assert!(cal.before_cut_off(d("2026-11-27"), at("2026-11-27T14:59:59+08:00")));
        assert!(!cal.before_cut_off(d("2026-11-27"), at("2026-11-27T15:00:00+08:00")));
        assert!(cal.before_cut_off(d("2026-12-01"), at("2026-11-28T10:00:00+08:00")));
    }

    /// Holidays drawn from one year and a half around the instants, so that runs of holidays
    /// and weekends occur.
    fn calendar() -> impl Strategy<Value = Calendar> {
        prop::collection::vec(0u64..540, 0..120).prop_map(|days| {
            Calendar::new(days.into_iter().map(|n| d("2026-01-01") + Days::new(n)))
        })
    }

    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        // 2026-01-01 .. 2027-03-01, to the second.
        (0i64..36_000_000)
            .prop_map(|s| at("2026-01-01T00:00:00+08:00") + chrono::Duration::seconds(s))
    }

    proptest! {
        #[test]
        fn trade_date_is_a_trading_day_never_before_the_acceptance_day(cal in calendar(), t in instant()) {
            let td = cal.trade_date(t);
            prop_assert!(cal.is_trading_day(td.date()));
            prop_assert!(td.date() >= business_date(t));
            // Nothing skipped: no trading day lies between the acceptance day and T, other than
            // the acceptance day itself when the order came after its cut-off.
            let mut day = business_date(t);
            while day < td.date() {
                prop_assert!(!cal.is_trading_day(day) || t >= Calendar::cut_off(day));
                day = day + Days::new(1);
            }
            if cal.is_trading_day(business_date(t)) && t < Calendar::cut_off(business_date(t)) {
                prop_assert_eq!(td.date(), business_date(t));
            }
        }

        #[test]
        fn effective_dates_follow_the_trade_date(cal in calendar(), t in instant()) {
            let td = cal.trade_date(t);
            for e in [cal.subscription_effective(td), cal.redemption_effective(td)] {
                prop_assert!(e > td.date());
                prop_assert!(cal.is_trading_day(e));
                prop_assert_eq!(cal.trading_day_on_or_after(td.date() + Days::new(1)), e);
            }
            prop_assert!(fast_redemption_effective(t) <= td.date());
        }

        #[test]
        fn before_cut_off_is_before_15_00_of_the_trade_date(cal in calendar(), t in instant(), n in 0u64..30) {
            let day = cal.trading_day_on_or_after(d("2026-01-05") + Days::new(n * 13));
            prop_assert_eq!(cal.before_cut_off(day, t), t < Calendar::cut_off(day));
        }
    }
}
