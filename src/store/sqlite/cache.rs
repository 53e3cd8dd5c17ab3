//! Recently verified tokens, so that the verify path is a hash and a map
//! lookup. Every write that could change a cached answer (revocation, reset,
//! permission edits, member changes, purges) empties the cache before it is
//! acknowledged, so the very next request reads the database again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::core::keyhash::RandomKeys;
use crate::core::model::TokenGrant;
use crate::core::token_format::TokenHash;

pub struct GrantCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Bumped on every invalidation; a read that started under an older
    /// generation may have seen data that is already stale, so it is not
    /// cached.
    generation: u64,
    entries: HashMap<TokenHash, Arc<TokenGrant>, RandomKeys>,
}

impl GrantCache {
    pub fn new(capacity: usize) -> Self {
        GrantCache {
            capacity,
            inner: Mutex::new(Inner {
                generation: 0,
                entries: HashMap::default(),
            }),
        }
    }

    // A `std` mutex, not an async one: it is never held across an `.await`,
    // and each critical section is a map operation. A poisoned lock only
    // means another thread panicked mid-insert; the map is still usable.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, hash: &TokenHash) -> Option<Arc<TokenGrant>> {
        self.lock().entries.get(hash).cloned()
    }

    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Caches `grant` unless the cache was invalidated since `generation`.
    pub fn insert(&self, generation: u64, hash: TokenHash, grant: Arc<TokenGrant>) {
        let mut inner = self.lock();
        if inner.generation != generation || self.capacity == 0 {
            return;
        }
        if inner.entries.len() >= self.capacity {
            // Cheaper than tracking recency, and refilled by the next reads.
            inner.entries.clear();
        }
        inner.entries.insert(hash, grant);
    }

    pub fn invalidate(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }
}
