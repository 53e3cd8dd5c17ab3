//! The operating system's CSPRNG, the only source of secrets here.

use rand::TryRng;
use rand::rngs::SysRng;

/// The operating system's random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator is unavailable")]
pub struct RandomUnavailable;

pub fn fill(out: &mut [u8]) -> Result<(), RandomUnavailable> {
    SysRng.try_fill_bytes(out).map_err(|_| RandomUnavailable)
}

pub fn bytes<const N: usize>() -> Result<[u8; N], RandomUnavailable> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}

/// Uniform characters from `alphabet` (at most 256 long), by rejection
/// sampling so that no character is favoured.
pub fn string_from(alphabet: &[u8], len: usize) -> Result<String, RandomUnavailable> {
    let n = alphabet.len();
    debug_assert!((1..=256).contains(&n));
    let unbiased_below = 256 - 256 % n;
    let mut out = String::with_capacity(len);
    let mut pool = [0u8; 64];
    while out.len() < len {
        fill(&mut pool)?;
        for &byte in pool.iter().filter(|&&b| usize::from(b) < unbiased_below) {
            if out.len() == len {
                break;
            }
            out.push(char::from(alphabet[usize::from(byte) % n]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_use_only_the_alphabet() {
        let s = string_from(b"abc", 500).unwrap();
        assert_eq!(s.len(), 500);
        assert!(s.bytes().all(|b| b"abc".contains(&b)));
        for c in ["a", "b", "c"] {
            assert!(s.contains(c));
        }
    }
}
