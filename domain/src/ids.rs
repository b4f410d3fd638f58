//! Identifiers, validated when they are made, so that a malformed one never reaches a rule or
//! the database. The formats are those the database checks or the API promises:
//! - `AccountId`: the 12-digit fund account number;
//! - `FundCode`: 6 characters, digits or capital letters (`funds.fund_code`);
//! - `PartnerId`: 1 to 32 of `[A-Za-z0-9_-]` (`partners.partner_id`);
//! - `RequestId`: 1 to 64 of `[A-Za-z0-9-_.:]`, unique per partner (idempotency key).
//!
//! They order as their bytes do, which is the order of `COLLATE "C"` in Postgres.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Which identifier was malformed; its [`IdError::field`] is the API field name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdError {
    AccountId,
    FundCode,
    PartnerId,
    RequestId,
}

impl IdError {
    pub fn field(self) -> &'static str {
        match self {
            IdError::AccountId => "account_id",
            IdError::FundCode => "fund_code",
            IdError::PartnerId => "partner_id",
            IdError::RequestId => "request_id",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            IdError::AccountId => "account_id is the 12-digit fund account number",
            IdError::FundCode => "fund code is 6 digits or capital letters",
            IdError::PartnerId => "partner_id must be 1 to 32 characters of [A-Za-z0-9_-]",
            IdError::RequestId => "request_id must be 1 to 64 characters of [A-Za-z0-9-_.:]",
        }
    }
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for IdError {}

fn account_ok(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn fund_ok(s: &str) -> bool {
    s.len() == 6
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

fn partner_ok(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

fn request_ok(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $valid:ident, $err:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<$name, IdError> {
                if $valid(s) {
                    Ok($name(s.to_string()))
                } else {
                    Err($err)
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<$name, IdError> {
                $name::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<$name, IdError> {
                if $valid(&s) {
                    Ok($name(s))
                } else {
                    Err($err)
                }
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<$name, IdError> {
                $name::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $name::try_from(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A fund account number: 12 digits.
    AccountId,
    account_ok,
    IdError::AccountId
);

id_type!(
    /// A fund code: 6 digits or capital letters.
    FundCode,
    fund_ok,
    IdError::FundCode
);

id_type!(
    /// A partner (payment platform) code.
    PartnerId,
    partner_ok,
    IdError::PartnerId
);

id_type!(
    /// A partner's idempotency key for one write.
    RequestId,
    request_ok,
    IdError::RequestId
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_and_invalid_ids() {
        assert_eq!(
            AccountId::parse("800000000001").unwrap().as_str(),
            "800000000001"
        );
        for bad in [
            "",
            "80000000001",
            "8000000000011",
            "80000000000a",
            " 80000000001",
        ] {
            assert_eq!(AccountId::parse(bad), Err(IdError::AccountId), "{bad:?}");
        }
        assert!(FundCode::parse("000001").is_ok());
        assert!(FundCode::parse("MMF01A").is_ok());
        for bad in ["00001", "0000001", "mmf001", "00000-"] {
            assert_eq!(FundCode::parse(bad), Err(IdError::FundCode), "{bad:?}");
        }
        assert!(PartnerId::parse("ant_fin-01").is_ok());
        assert!(PartnerId::parse(&"p".repeat(32)).is_ok());
        for bad in ["", "p.1", "p 1", &"p".repeat(33)] {
            assert_eq!(PartnerId::parse(bad), Err(IdError::PartnerId), "{bad:?}");
        }
        assert!(RequestId::parse("req-1_a.b:c").is_ok());
        assert!(RequestId::parse(&"r".repeat(64)).is_ok());
        for bad in ["", "r/1", "r 1", "日", &"r".repeat(65)] {
            assert_eq!(RequestId::parse(bad), Err(IdError::RequestId), "{bad:?}");
        }
        assert_eq!(IdError::FundCode.field(), "fund_code");
    }

    #[test]
    fn serde_validates() {
        let a: AccountId = serde_json::from_str("\"800000000001\"").unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"800000000001\"");
        assert!(serde_json::from_str::<AccountId>("\"8\"").is_err());
        assert!(serde_json::from_str::<FundCode>("\"abcdef\"").is_err());
    }

    proptest! {
        #[test]
        fn request_ids_accept_exactly_their_alphabet(s in "[A-Za-z0-9._:/ -]{0,70}") {
            let ok = RequestId::parse(&s).is_ok();
            let expected = (1..=64).contains(&s.len()) && !s.contains(['/', ' ']);
            prop_assert_eq!(ok, expected);
        }

        #[test]
        fn ids_order_as_their_bytes(a in "[0-9]{12}", b in "[0-9]{12}") {
            let (x, y) = (AccountId::parse(&a).unwrap(), AccountId::parse(&b).unwrap());
            prop_assert_eq!(x.cmp(&y), a.as_bytes().cmp(b.as_bytes()));
        }
    }
}
