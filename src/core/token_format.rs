//! The API token format of §2.2: `<prefix><34 random base62><6 base62 CRC32>`.
//!
//! The checksum lets a scanner, or the server, reject a mistyped or invented
//! token without touching the database. Only the SHA-256 of a token is ever
//! stored.

use std::fmt;

use sha2::{Digest, Sha256};

pub use crate::random::RandomUnavailable;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub const RANDOM_LEN: usize = 34;
pub const CHECKSUM_LEN: usize = 6;
pub const BODY_LEN: usize = RANDOM_LEN + CHECKSUM_LEN;
pub const MAX_PREFIX_LEN: usize = 16;
/// The longest well-formed token.
pub const MAX_LEN: usize = MAX_PREFIX_LEN + BODY_LEN;

/// A token prefix such as `tw_`, `mb_` or `tm_pro_`:
/// `[a-z][a-z0-9_]{0,14}_`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    pub fn parse(text: &str) -> Option<Prefix> {
        is_prefix(text).then(|| Prefix(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_prefix(text: &str) -> bool {
    let bytes = text.as_bytes();
    (2..=MAX_PREFIX_LEN).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] == b'_'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// A token secret in full. Its `Debug` form is masked so that it cannot reach
/// a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }

    /// `prefix…last4`, safe to show in lists.
    pub fn hint(&self) -> String {
        let (prefix, body) = self.0.split_at(self.0.len() - BODY_LEN);
        format!("{prefix}…{}", &body[BODY_LEN - 4..])
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// SHA-256 of a whole token, the only form in which tokens are stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// Generates a fresh token with the operating system's CSPRNG.
pub fn generate(prefix: &Prefix) -> Result<Secret, RandomUnavailable> {
    let random = crate::random::string_from(BASE62, RANDOM_LEN)?;
    let sum = checksum(random.as_bytes());
    let mut text = String::with_capacity(prefix.0.len() + BODY_LEN);
    text.push_str(&prefix.0);
    text.push_str(&random);
    text.extend(sum.iter().map(|&b| char::from(b)));
    Ok(Secret(text))
}

/// CRC32 of the random part in base62, most significant digit first,
/// left-padded with `0` (§9). 62^6 exceeds 2^32, so six digits always fit.
pub fn checksum(random: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut value = crc32fast::hash(random);
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits
}

/// Why a string is not a well-formed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Length,
    Prefix,
    Alphabet,
    Checksum,
}

/// Checks the shape and checksum of a presented token without any IO, and
/// returns its prefix.
pub fn check(token: &str) -> Result<&str, Malformed> {
    let len = token.len();
    if !(2 + BODY_LEN..=MAX_LEN).contains(&len) || !token.is_ascii() {
        return Err(Malformed::Length);
    }
    let (prefix, body) = token.split_at(len - BODY_LEN);
    if !is_prefix(prefix) {
        return Err(Malformed::Prefix);
    }
    if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Malformed::Alphabet);
    }
    let (random, sum) = body.as_bytes().split_at(RANDOM_LEN);
    if checksum(random) != sum {
        return Err(Malformed::Checksum);
    }
    Ok(prefix)
}

/// Whether every byte is visible ASCII (`!` to `~`): tested without an
/// early exit, which the compiler turns into vector code, as every
/// presented credential is tested.
pub fn is_visible_ascii(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(true, |visible, &b| visible & b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(p: &str) -> Prefix {
        Prefix::parse(p).unwrap()
    }

    #[test]
    fn visible_ascii_is_found_out_anywhere_in_a_value() {
        assert!(is_visible_ascii(b""));
        for len in 1..80 {
            let visible = vec![b'~'; len];
            assert!(is_visible_ascii(&visible), "{len}");
            for at in 0..len {
                for invisible in [b' ', b'\t', 0x7f, 0x80, 0xff, 0] {
                    let mut value = visible.clone();
                    value[at] = invisible;
                    assert!(!is_visible_ascii(&value), "{value:?}");
                }
            }
        }
    }

    #[test]
    fn prefixes_follow_the_grammar() {
        for good in ["tw_", "mb_", "tm_pro_", "a_", "abcdefghijklmno_"] {
            assert!(Prefix::parse(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "_",
            "tw",
            "Tw_",
            "1w_",
            "tw-",
            "abcdefghijklmnop_",
            "tw _",
            "té_",
        ] {
            assert!(Prefix::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        for p in ["tw_", "mb_", "tm_pro_"] {
            let secret = generate(&prefix(p)).unwrap();
            let text = secret.expose();
            assert_eq!(text.len(), p.len() + 40);
            assert!(text.starts_with(p));
            assert_eq!(check(text), Ok(p));
            assert_eq!(secret.hint(), format!("{p}…{}", &text[text.len() - 4..]));
        }
    }

    #[test]
    fn tokens_are_not_repeated() {
        let a = generate(&prefix("tw_")).unwrap();
        let b = generate(&prefix("tw_")).unwrap();
        assert_ne!(a, b);
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn checksum_is_base62_of_crc32_padded() {
        // CRC32 of the empty input is 0, which pads to six zeros.
        assert_eq!(&checksum(b""), b"000000");
        let crc = crc32fast::hash(b"abc");
        let mut n = 0u64;
        for d in checksum(b"abc") {
            let v = BASE62.iter().position(|&c| c == d).unwrap() as u64;
            n = n * 62 + v;
        }
        assert_eq!(n, u64::from(crc));
    }

    #[test]
    fn every_single_character_change_fails_the_check() {
        let secret = generate(&prefix("tw_")).unwrap();
        let text = secret.expose().as_bytes().to_vec();
        for i in 3..text.len() {
            for &replacement in BASE62.iter().step_by(7) {
                if replacement == text[i] {
                    continue;
                }
                let mut changed = text.clone();
                changed[i] = replacement;
                let changed = String::from_utf8(changed).unwrap();
                assert!(check(&changed).is_err(), "{changed} passed");
            }
        }
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let alphabet: Vec<char> = "tw_mb0aZ9é€\u{0}…-".chars().collect();
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 70) as usize;
            let s: String = (0..len)
                .map(|i| alphabet[((state >> (i % 50)) as usize + i) % alphabet.len()])
                .collect();
            let _ = check(&s);
        }
        assert_eq!(check("tw_"), Err(Malformed::Length));
        assert_eq!(
            check("TW_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa000000"),
            Err(Malformed::Prefix)
        );
        assert_eq!(
            check("tw_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-000000"),
            Err(Malformed::Alphabet)
        );
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let secret = generate(&prefix("tw_")).unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }
}
