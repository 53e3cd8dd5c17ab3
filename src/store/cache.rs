//! Recently verified tokens, so that the verify path is a hash and a map
//! lookup. Every write that could change a cached answer (revocation, reset,
//! permission edits, member changes, purges) empties the cache before it is
//! acknowledged, so the very next request reads the database again. Shared
//! by every store through [`super::cached::CachedStore`]; on PostgreSQL the
//! writes of other nodes empty it too, and while this node cannot hear
//! about them it is bypassed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::core::keyhash::RandomKeys;
use crate::core::model::TokenGrant;
use crate::core::token_format::TokenHash;

pub struct GrantCache {
    capacity: usize,
    /// Set while writes elsewhere may go unheard (a lost notification
    /// connection): nothing is answered from, or added to, the cache.
    bypassed: AtomicBool,
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
            bypassed: AtomicBool::new(false),
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
        if self.bypassed.load(Ordering::Acquire) {
            return None;
        }
        self.lock().entries.get(hash).cloned()
    }

    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Caches `grant` unless the cache was invalidated since `generation`.
    pub fn insert(&self, generation: u64, hash: TokenHash, grant: Arc<TokenGrant>) {
        let mut inner = self.lock();
        if inner.generation != generation
            || self.capacity == 0
            || self.bypassed.load(Ordering::Acquire)
        {
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

    /// Stops answering from the cache until [`GrantCache::resume`].
    pub fn bypass(&self) {
        self.bypassed.store(true, Ordering::Release);
        self.invalidate();
    }

    /// Empties the cache and answers from it again: called once writes
    /// elsewhere are heard again, so nothing from before is kept.
    pub fn resume(&self) {
        self.invalidate();
        self.bypassed.store(false, Ordering::Release);
    }

    pub fn is_bypassed(&self) -> bool {
        self.bypassed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{Token, TokenGrant};

    fn grant() -> Arc<TokenGrant> {
        let token = Token {
            id: crate::core::ids::Id::new(),
            number: 1,
            name: "t".into(),
            hint: "h".into(),
            scopes: Vec::new(),
            workspace_id: crate::core::ids::Id::new(),
            created_by: crate::core::model::AccountRef {
                id: crate::core::ids::Id::new(),
                email: "a@example.com".into(),
            },
            created_at: crate::core::time::Timestamp(0),
            expires_at: None,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            replaced_by: None,
        };
        Arc::new(TokenGrant::new(token, false, None))
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_kept() {
        let cache = GrantCache::new(10);
        let hash = TokenHash([1; 32]);
        let before = cache.generation();
        cache.invalidate();
        cache.insert(before, hash, grant());
        assert!(cache.get(&hash).is_none());
        cache.insert(cache.generation(), hash, grant());
        assert!(cache.get(&hash).is_some());
    }

    #[test]
    fn a_bypassed_cache_answers_nothing_until_resumed_empty() {
        let cache = GrantCache::new(10);
        let hash = TokenHash([2; 32]);
        cache.insert(cache.generation(), hash, grant());
        cache.bypass();
        assert!(cache.get(&hash).is_none());
        let during = cache.generation();
        cache.insert(during, hash, grant());
        assert!(cache.get(&hash).is_none());
        cache.resume();
        assert!(cache.get(&hash).is_none());
        // A read that started while bypassed is not kept either.
        cache.insert(during, hash, grant());
        assert!(cache.get(&hash).is_none());
    }
}
