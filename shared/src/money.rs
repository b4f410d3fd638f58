//! Amounts and units: yuan with at most two decimals, carried as `Decimal`, written in JSON as
//! strings (`"100.00"`). NAV is fixed at 1.00, so units and yuan share one type.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Largest amount a single field may carry: fits numeric(18,2) with room for sums.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0); // 1e12

/// A non-negative amount with at most two decimals, parsed strictly from a decimal string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a decimal string like \"100.00\"")]
    Format,
    #[error("must have at most 2 decimal places")]
    Scale,
    #[error("must be greater than zero")]
    NotPositive,
    #[error("is too large")]
    TooLarge,
}

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Parses `"123"`, `"123.4"` or `"123.45"`; rejects signs, exponents, spaces, extra decimals.
    pub fn parse(s: &str) -> Result<Money, MoneyError> {
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || int.len() > 16 {
            return Err(if digits(int) {
                MoneyError::TooLarge
            } else {
                MoneyError::Format
            });
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
        Money::from_decimal(d)
    }

    /// Accepts a decimal that already has at most two decimals and lies in range.
    pub fn from_decimal(d: Decimal) -> Result<Money, MoneyError> {
        if d.is_sign_negative() && !d.is_zero() {
            return Err(MoneyError::NotPositive);
        }
        if d.normalize().scale() > 2 {
            return Err(MoneyError::Scale);
        }
        if d > MAX_AMOUNT {
            return Err(MoneyError::TooLarge);
        }
        let mut d = d;
        d.rescale(2);
        Ok(Money(d))
    }

    /// A strictly positive amount, as orders require.
    pub fn parse_positive(s: &str) -> Result<Money, MoneyError> {
        let m = Money::parse(s)?;
        if m.0.is_zero() {
            return Err(MoneyError::NotPositive);
        }
        Ok(m)
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }

    /// Integer fen, as ClickHouse Decimal(18,2) travels.
    pub fn fen(self) -> i64 {
        to_fen(self.0)
    }
}

/// Decimal yuan (at most 2 decimals after rounding toward zero) to integer fen.
pub fn to_fen(d: Decimal) -> i64 {
    let mut f = (d * Decimal::ONE_HUNDRED).trunc();
    f.rescale(0);
    i64::try_from(f.mantissa()).expect("amount within i64 fen")
}

/// Integer fen back to decimal yuan with two decimals.
pub fn from_fen(fen: i64) -> Decimal {
    Decimal::new(fen, 2)
}

/// Formats any decimal amount with exactly two decimals, for JSON and files.
pub fn fmt2(d: Decimal) -> String {
    let mut d = d;
    d.rescale(2);
    d.to_string()
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fmt2(self.0))
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Money::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Serializes a `Decimal` as a two-decimal string (for amounts computed by the system).
pub mod as_str2 {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::fmt2(*d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn parses_valid_amounts() {
        assert_eq!(Money::parse("100").unwrap().to_string(), "100.00");
        assert_eq!(Money::parse("100.5").unwrap().to_string(), "100.50");
        assert_eq!(Money::parse("0.01").unwrap().decimal(), dec!(0.01));
        assert_eq!(
            Money::parse("999999999999.99").unwrap().fen(),
            99_999_999_999_999
        );
    }

    #[test]
    fn rejects_bad_formats() {
        for s in [
            "", "-1", "+1", "1e3", "1E3", " 1", "1 ", "1.", ".5", "1,000", "abc", "0x10", "NaN",
        ] {
            assert_eq!(Money::parse(s), Err(MoneyError::Format), "{s:?}");
        }
        assert_eq!(Money::parse("1.001"), Err(MoneyError::Scale));
        assert_eq!(Money::parse("12345678901234567"), Err(MoneyError::TooLarge));
        assert_eq!(Money::parse("1000000000000.01"), Err(MoneyError::TooLarge));
        assert_eq!(Money::parse_positive("0.00"), Err(MoneyError::NotPositive));
        assert_eq!(Money::from_decimal(dec!(-1)), Err(MoneyError::NotPositive));
    }

    #[test]
    fn fen_round_trip() {
        assert_eq!(to_fen(dec!(12.34)), 1234);
        assert_eq!(to_fen(dec!(-0.07)), -7);
        assert_eq!(from_fen(1234), dec!(12.34));
        assert_eq!(fmt2(dec!(5)), "5.00");
    }
}
