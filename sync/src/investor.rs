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

/// 32 hex characters: the first 128 bits of HMAC-SHA256(`secret`, `identity`).
pub fn investor_key(secret: &[u8], identity: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(identity.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_person_one_key_and_the_secret_matters() {
        let id = identity("id_card", "11010519491231002X");
        let k = investor_key(b"s1", &id);
        assert_eq!(k.len(), 32);
        assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(k, investor_key(b"s1", &id));
        assert_ne!(k, investor_key(b"s2", &id));
        assert_ne!(
            k,
            investor_key(b"s1", &identity("passport", "11010519491231002X"))
        );
        assert!(!k.contains("1101051949"));
    }
}
