//! Hashing for in-memory maps whose keys are already uniformly random:
//! SHA-256 digests and v4 UUIDs that the server made. Folding their bytes
//! is as good a hash as any for them, at a fraction of SipHash's cost, and
//! the verify path hashes two such keys per request.
//!
//! Only for keys a client cannot choose: SipHash's seed is what protects a
//! map against keys crafted to collide. The verify cache holds digests of
//! tokens that exist, and the usage log ids of tokens that were used, so a
//! client can look keys up but never insert one of its choosing.

use std::hash::{BuildHasherDefault, Hasher};

/// The hasher of [`RandomKeys`].
#[derive(Default)]
pub struct FoldingHasher(u64);

impl Hasher for FoldingHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
        }
    }
}

/// `HashMap<K, V, RandomKeys>` for keys that are random already.
pub type RandomKeys = BuildHasherDefault<FoldingHasher>;

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn every_byte_counts() {
        let hash = |bytes: [u8; 32]| RandomKeys::default().hash_one(bytes);
        let base = hash([7; 32]);
        for at in 0..32 {
            let mut changed = [7; 32];
            changed[at] ^= 1;
            assert_ne!(hash(changed), base, "byte {at}");
        }
    }

    #[test]
    fn random_keys_spread_over_the_buckets() {
        // 10 000 random ids into 1 024 buckets: none should be near empty
        // or hold more than a few times its share.
        let mut buckets = [0u32; 1024];
        for _ in 0..10_000 {
            let id = uuid::Uuid::new_v4();
            buckets[(RandomKeys::default().hash_one(id) % 1024) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n < 40), "{buckets:?}");
        let distinct: HashSet<u32> = buckets.iter().copied().collect();
        assert!(distinct.len() > 5);
    }
}
