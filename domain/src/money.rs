//! Cash amounts, fund units and the per-10k income, as values that cannot hold what the rules
//! forbid: amounts and units are non-negative with at most two decimals (fen) and below
//! [`MAX_AMOUNT`]; per-10k income has a sign, at most four decimals and |x| < 10,000.
//!
//! `Amount` (yuan) and `Units` (fund units) are distinct types although NAV is fixed at 1.00:
//! the conversion is explicit ([`Amount::as_units`], [`Units::as_amount`]), so a limit in yuan
//! is never compared with a holding by accident. Both travel in JSON as strings (`"100.00"`).

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Largest amount a single field may carry: fits numeric(18,2) with room for sums.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0); // 1e12

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MoneyError {
    /// Not a plain decimal string (sign, exponent, spaces, missing digits).
    Format,
    /// More decimals than the type allows.
    Scale,
    /// Negative, or zero where a positive value is required.
    NotPositive,
    /// Above [`MAX_AMOUNT`] (or |per10k| ≥ 10,000).
    TooLarge,
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MoneyError::Format => "must be a decimal string like \"100.00\"",
            MoneyError::Scale => "has too many decimal places",
            MoneyError::NotPositive => "must be greater than zero",
            MoneyError::TooLarge => "is too large",
        })
    }
}

impl std::error::Error for MoneyError {}

/// `"123"`, `"123.4"` or `"123.45"`: digits, an optional point followed by digits, nothing else.
fn parse2(s: &str) -> Result<Decimal, MoneyError> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) {
        return Err(MoneyError::Format);
    }
    if int.len() > 16 {
        return Err(MoneyError::TooLarge);
    }
    if let Some(f) = frac {
        if !digits(f) {
            return Err(MoneyError::Format);
        }
        if f.len() > 2 {
            return Err(MoneyError::Scale);
        }
    }
    let d = Decimal::from_str(s).map_err(|_| MoneyError::Format)?;
    check2(d)
}

/// A decimal with at most two significant decimals, in `0..=MAX_AMOUNT`, at scale 2.
fn check2(d: Decimal) -> Result<Decimal, MoneyError> {
    if d.is_sign_negative() && !d.is_zero() {
        return Err(MoneyError::NotPositive);
    }
    if d.normalize().scale() > 2 {
        return Err(MoneyError::Scale);
    }
    if d > MAX_AMOUNT {
        return Err(MoneyError::TooLarge);
    }
    let mut d = d.abs();
    d.rescale(2);
    Ok(d)
}

/// Formats a decimal with exactly two decimals.
pub fn fmt2(d: Decimal) -> String {
    let mut d = d;
    d.rescale(2);
    d.to_string()
}

/// Integer fen of a decimal with at most two decimals.
fn fen_of(d: Decimal) -> i64 {
    let mut d = d;
    d.rescale(2);
    i64::try_from(d.mantissa()).expect("amount within i64 fen")
}

macro_rules! fen_value {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Decimal);

        impl $name {
            pub const ZERO: $name = $name(Decimal::ZERO);

            /// Parses `"123"`, `"123.4"` or `"123.45"`; rejects signs, exponents, spaces and
            /// extra decimals. Zero is accepted.
            pub fn parse(s: &str) -> Result<$name, MoneyError> {
                parse2(s).map($name)
            }

            /// [`Self::parse`], refusing zero (orders carry a positive amount).
            pub fn parse_positive(s: &str) -> Result<$name, MoneyError> {
                let v = $name::parse(s)?;
                if v.0.is_zero() {
                    return Err(MoneyError::NotPositive);
                }
                Ok(v)
            }

            /// Accepts a decimal that has at most two decimals and lies in range.
            pub fn from_decimal(d: Decimal) -> Result<$name, MoneyError> {
                check2(d).map($name)
            }

            /// `fen` hundredths; panics on a negative count or one above [`MAX_AMOUNT`].
            pub fn from_fen(fen: i64) -> $name {
                $name::from_decimal(Decimal::new(fen, 2)).expect("fen within range")
            }

            pub fn decimal(self) -> Decimal {
                self.0
            }

            /// Integer fen (hundredths), as ClickHouse Decimal(18,2) travels.
            pub fn fen(self) -> i64 {
                fen_of(self.0)
            }

            pub fn is_zero(self) -> bool {
                self.0.is_zero()
            }

            /// The sum, if it stays within range.
            pub fn checked_add(self, o: $name) -> Option<$name> {
                $name::from_decimal(self.0 + o.0).ok()
            }

            /// The difference, if it is not negative.
            pub fn checked_sub(self, o: $name) -> Option<$name> {
                $name::from_decimal(self.0 - o.0).ok()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&fmt2(self.0))
            }
        }

        impl FromStr for $name {
            type Err = MoneyError;
            fn from_str(s: &str) -> Result<$name, MoneyError> {
                $name::parse(s)
            }
        }

        impl TryFrom<Decimal> for $name {
            type Error = MoneyError;
            fn try_from(d: Decimal) -> Result<$name, MoneyError> {
                $name::from_decimal(d)
            }
        }

        impl From<$name> for Decimal {
            fn from(v: $name) -> Decimal {
                v.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fen_value!(
    /// Cash in yuan: a subscription's amount, a fund's limits, a day's usage of them.
    Amount
);

fen_value!(
    /// Fund units: holdings and redemptions. NAV is 1.00, so one unit is worth one yuan.
    Units
);

impl Amount {
    /// The units this cash buys at NAV 1.00.
    pub fn as_units(self) -> Units {
        Units(self.0)
    }
}

impl Units {
    /// The cash these units are worth at NAV 1.00.
    pub fn as_amount(self) -> Amount {
        Amount(self.0)
    }
}

/// Income per 10,000 units for one fund and calendar day: optional sign, at most four decimals,
/// |x| < 10,000 (so that 1 + x/10,000 is always positive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Per10k(Decimal);

const PER10K_LIMIT: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

impl Per10k {
    pub const ZERO: Per10k = Per10k(Decimal::ZERO);

    /// Parses an optional `-`, one to four digits and at most four decimals (`"0.65"`,
    /// `"-0.1500"`, `"12"`); rejects `+`, exponents, spaces, `"1."` and `".5"`.
    pub fn parse(s: &str) -> Result<Per10k, MoneyError> {
        let body = s.strip_prefix('-').unwrap_or(s);
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        let well_formed = !int.is_empty()
            && digits(int)
            && digits(frac)
            && (frac.is_empty() != body.contains('.'));
        if !well_formed {
            return Err(MoneyError::Format);
        }
        if frac.len() > 4 {
            return Err(MoneyError::Scale);
        }
        if int.len() > 4 {
            return Err(MoneyError::TooLarge);
        }
        Per10k::from_decimal(Decimal::from_str(s).map_err(|_| MoneyError::Format)?)
    }

    /// Accepts a decimal with at most four significant decimals and |d| < 10,000.
    pub fn from_decimal(d: Decimal) -> Result<Per10k, MoneyError> {
        if d.normalize().scale() > 4 {
            return Err(MoneyError::Scale);
        }
        if d.abs() >= PER10K_LIMIT {
            return Err(MoneyError::TooLarge);
        }
        // "-0" is zero: no sign survives without a magnitude.
        let mut d = if d.is_zero() { Decimal::ZERO } else { d };
        d.rescale(4);
        Ok(Per10k(d))
    }

    /// `n` ten-thousandths (per10k × 10,000 as an integer).
    pub fn from_scaled(n: i64) -> Result<Per10k, MoneyError> {
        Per10k::from_decimal(Decimal::new(n, 4))
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }

    /// Income per single unit: per10k / 10,000 (exact, at most eight decimals).
    pub fn per_unit(self) -> Decimal {
        self.0 / Decimal::from(10_000)
    }
}

impl fmt::Display for Per10k {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Per10k {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Per10k, MoneyError> {
        Per10k::parse(s)
    }
}

impl TryFrom<Decimal> for Per10k {
    type Error = MoneyError;
    fn try_from(d: Decimal) -> Result<Per10k, MoneyError> {
        Per10k::from_decimal(d)
    }
}

impl Serialize for Per10k {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Per10k {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Per10k::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn parses_valid_amounts() {
        assert_eq!(Amount::parse("100").unwrap().to_string(), "100.00");
        assert_eq!(Amount::parse("100.5").unwrap().to_string(), "100.50");
        assert_eq!(Units::parse("0.01").unwrap().decimal(), dec!(0.01));
        assert_eq!(
            Amount::parse("999999999999.99").unwrap().fen(),
            99_999_999_999_999
        );
        assert_eq!(Units::parse("0").unwrap(), Units::ZERO);
    }

    #[test]
    fn rejects_bad_formats() {
        for s in [
            "", "-1", "+1", "1e3", "1E3", " 1", "1 ", "1.", ".5", "1,000", "abc", "0x10", "NaN",
            "-0",
        ] {
            assert_eq!(Amount::parse(s), Err(MoneyError::Format), "{s:?}");
            assert_eq!(Units::parse(s), Err(MoneyError::Format), "{s:?}");
        }
        assert_eq!(Amount::parse("1.001"), Err(MoneyError::Scale));
        assert_eq!(
            Amount::parse("12345678901234567"),
            Err(MoneyError::TooLarge)
        );
        assert_eq!(Amount::parse("1000000000000.01"), Err(MoneyError::TooLarge));
        assert_eq!(Amount::parse_positive("0.00"), Err(MoneyError::NotPositive));
        assert_eq!(Units::from_decimal(dec!(-1)), Err(MoneyError::NotPositive));
        assert_eq!(Units::from_decimal(dec!(1.005)), Err(MoneyError::Scale));
        // Trailing zeros beyond the fen are not extra precision.
        assert_eq!(
            Units::from_decimal(dec!(1.500)).unwrap().to_string(),
            "1.50"
        );
    }

    #[test]
    fn fen_and_conversions() {
        assert_eq!(Amount::parse("12.34").unwrap().fen(), 1234);
        assert_eq!(Units::from_fen(1234).decimal(), dec!(12.34));
        assert_eq!(fmt2(dec!(5)), "5.00");
        let a = Amount::parse("7.10").unwrap();
        assert_eq!(a.as_units().as_amount(), a);
        assert_eq!(a.checked_sub(Amount::parse("7.11").unwrap()), None);
        assert_eq!(
            a.checked_add(a).map(|s| s.to_string()),
            Some("14.20".into())
        );
    }

    #[test]
    fn serde_as_strings() {
        let a: Amount = serde_json::from_str("\"100.5\"").unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"100.50\"");
        assert!(
            serde_json::from_str::<Units>("100.5").is_err(),
            "numbers refused"
        );
        assert!(serde_json::from_str::<Units>("\"1.234\"").is_err());
        let p: Per10k = serde_json::from_str("\"-0.15\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"-0.1500\"");
    }

    #[test]
    fn per10k_has_at_most_four_decimals_and_may_be_negative() {
        assert_eq!(Per10k::parse("0.65").unwrap().to_string(), "0.6500");
        assert_eq!(Per10k::parse("-0.1500").unwrap().to_string(), "-0.1500");
        assert_eq!(Per10k::parse("12").unwrap().to_string(), "12.0000");
        assert_eq!(Per10k::parse("-0").unwrap().to_string(), "0.0000");
        assert_eq!(
            Per10k::parse("9999.9999").unwrap().per_unit(),
            dec!(0.99999999)
        );
        for bad in [
            "", "-", "1.", ".5", "0.12345", "+1", "1e2", "10000", " 1", "--1", "-10000",
        ] {
            assert!(Per10k::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Per10k::from_decimal(dec!(10000)), Err(MoneyError::TooLarge));
    }

    proptest! {
        #[test]
        fn amounts_round_trip_through_their_text(fen in 0i64..=100_000_000_000_000) {
            let a = Amount::from_fen(fen);
            prop_assert_eq!(Amount::parse(&a.to_string()), Ok(a));
            prop_assert_eq!(a.fen(), fen);
            let u = Units::from_fen(fen);
            prop_assert_eq!(serde_json::from_str::<Units>(&serde_json::to_string(&u).unwrap()).unwrap(), u);
        }

        #[test]
        fn per10k_round_trips_and_stays_in_range(n in -99_999_999i64..=99_999_999) {
            let p = Per10k::from_scaled(n).unwrap();
            prop_assert_eq!(Per10k::parse(&p.to_string()), Ok(p));
            prop_assert!(p.decimal().abs() < dec!(10000));
            prop_assert!(Decimal::ONE + p.per_unit() > Decimal::ZERO);
        }

        #[test]
        fn parsing_never_accepts_what_the_database_would_not_store(s in "[-+0-9.e ]{0,20}") {
            if let Ok(a) = Amount::parse(&s) {
                prop_assert!(a.decimal() >= Decimal::ZERO && a.decimal() <= MAX_AMOUNT);
                prop_assert_eq!(a.decimal().scale(), 2);
                prop_assert!(s.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
            }
            if let Ok(p) = Per10k::parse(&s) {
                prop_assert!(p.decimal().abs() < dec!(10000));
                prop_assert_eq!(p.decimal().scale(), 4);
            }
        }
    }
}
