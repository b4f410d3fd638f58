//! Resident identity numbers (GB 11643-1999): 18 characters, the last a check digit.

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [u8; 11] = *b"10X98765432";

/// True when `id` is 17 digits followed by the correct check character (`X` in upper case).
pub fn is_valid_resident_id(id: &str) -> bool {
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(c, w)| u32::from(c - b'0') * w)
        .sum();
    let month = (b[10] - b'0') * 10 + (b[11] - b'0');
    let day = (b[12] - b'0') * 10 + (b[13] - b'0');
    (1..=12).contains(&month) && (1..=31).contains(&day) && CHECK[(sum % 11) as usize] == b[17]
}

/// Keeps the first 6 and last 4 characters: `110101********1234`. Only this form leaves Postgres.
pub fn mask(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars[..6]
        .iter()
        .chain(std::iter::repeat_n(&'*', n - 10))
        .chain(&chars[n - 4..])
        .collect()
}

/// Appends the check character to 17 digits; used to make valid numbers for demos and tests.
pub fn with_check_digit(first17: &str) -> String {
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(c, w)| u32::from(c - b'0') * w)
        .sum();
    format!("{first17}{}", CHECK[(sum % 11) as usize] as char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digit() {
        assert!(is_valid_resident_id("11010519491231002X"));
        assert!(is_valid_resident_id("440524188001010014"));
        assert!(!is_valid_resident_id("110105194912310021"));
        assert!(!is_valid_resident_id("11010519491231002x"));
        assert!(!is_valid_resident_id("1101051949123100"));
        assert!(!is_valid_resident_id("11010519491331002X"));
        assert_eq!(with_check_digit("11010519491231002"), "11010519491231002X");
        assert_eq!(mask("11010519491231002X"), "110105********002X");
    }
}
