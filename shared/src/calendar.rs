//! Business dates in Asia/Shanghai, the trading calendar and the 15:00 cut-off rule.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Asia::Shanghai;
use std::collections::BTreeSet;

/// Orders received at or after this local time belong to the next trading day.
pub const CUT_OFF: NaiveTime = match NaiveTime::from_hms_opt(15, 0, 0) {
    Some(t) => t,
    None => panic!("valid time"),
};

/// The calendar date of an instant in Asia/Shanghai.
pub fn business_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&Shanghai).date_naive()
}

/// Trading days are weekdays that are not holidays. Ops load holidays per year.
#[derive(Clone, Debug, Default)]
pub struct Calendar {
    holidays: BTreeSet<NaiveDate>,
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
    pub fn trade_date(&self, t: DateTime<Utc>) -> NaiveDate {
        let local = t.with_timezone(&Shanghai);
        let d = local.date_naive();
        if self.is_trading_day(d) && local.time() < CUT_OFF {
            d
        } else {
            self.next_trading_day(d)
        }
    }

    /// The instant orders for trade date `d` stop being accepted (15:00 Shanghai on `d`).
    pub fn cut_off(d: NaiveDate) -> DateTime<Utc> {
        d.and_time(CUT_OFF)
            .and_local_timezone(Shanghai)
            .single()
            .expect("Shanghai has no DST")
            .with_timezone(&Utc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn cut_off_and_weekends() {
        let cal = Calendar::new([d("2026-10-01"), d("2026-10-02")]);
        // Thursday 2026-11-26.
        assert_eq!(
            cal.trade_date(at("2026-11-26T14:59:59+08:00")),
            d("2026-11-26")
        );
        assert_eq!(
            cal.trade_date(at("2026-11-26T15:00:00+08:00")),
            d("2026-11-27")
        );
        // Friday after cut-off and the weekend roll to Monday.
        assert_eq!(
            cal.trade_date(at("2026-11-27T15:00:00+08:00")),
            d("2026-11-30")
        );
        assert_eq!(
            cal.trade_date(at("2026-11-28T10:00:00+08:00")),
            d("2026-11-30")
        );
        // Holiday Thursday rolls past the holiday Friday and the weekend.
        assert_eq!(
            cal.trade_date(at("2026-10-01T09:00:00+08:00")),
            d("2026-10-05")
        );
        // Late UTC evening is already the next Shanghai day.
        assert_eq!(cal.trade_date(at("2026-11-25T23:30:00Z")), d("2026-11-26"));
        assert_eq!(
            Calendar::cut_off(d("2026-11-26")),
            at("2026-11-26T07:00:00Z")
        );
    }
}
