//! The investor key: every account of one person, at any partner, carries the same key, so
//! AML and concentration reports in ClickHouse aggregate by person; the ID number itself never
//! leaves Postgres. It is a keyed hash (the secret is `MMF_INVESTOR_KEY`), so it cannot be
//! recomputed from a guessed ID number by anyone who reads ClickHouse.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The identity an investor key is made of: the ID type and the ID number (stored trimmed and
/// upper-case), separated by `|`. The stream reads of `accounts` and `orders` select it as
/// `id_type || '|' || id_number`.
pub fn identity(id_type: &str, id_number: &str) -> String {
    format!("{id_type}|{id_number}")
}

/// The first 128 bits of HMAC-SHA256(`secret`, `identity`) (ClickHouse `FixedString(16)`;
/// reports show it as 32 hex digits).
pub fn investor_key(secret: &[u8], identity: &str) -> [u8; 16] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(identity.as_bytes());
    let mut key = [0; 16];
    key.copy_from_slice(&mac.finalize().into_bytes()[..16]);
    key
}

/// [`investor_key`] in hex, as reports show it.
pub fn investor_key_hex(secret: &[u8], identity: &str) -> String {
    hex::encode(investor_key(secret, identity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_person_one_key_and_the_secret_matters() {
        let id = identity("id_card", "11010519491231002X");
        let k = investor_key_hex(b"s1", &id);
        assert_eq!(k.len(), 32);
        assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(k, investor_key_hex(b"s1", &id));
        assert_ne!(k, investor_key_hex(b"s2", &id));
        assert_ne!(
            k,
            investor_key_hex(b"s1", &identity("passport", "11010519491231002X"))
        );
        assert!(!k.contains("1101051949"));
        // All zeros is what the holdings builder reads as "no key yet".
        assert_ne!(investor_key(b"s1", &id), [0; 16]);
    }
}
