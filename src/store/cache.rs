//! Recently verified tokens, so that the verify path is a hash and a map
//! lookup. Every write that could change a cached answer (revocation, reset,
//! permission edits, member changes, purges) empties the cache before it is
//! acknowledged, so the very next request reads the database again. Shared
//! by every store through [`super::cached::CachedStore`]; on PostgreSQL the
//! writes of other nodes empty it too, and while this node cannot hear
//! about them it is bypassed.
//!
//! Two levels. The shared map is the cache proper. In front of it each
//! thread keeps a small map of the grants it found there: a hit in it
//! touches no memory another core writes, where a hit in the shared map
//! takes its lock and the grant's reference count, two cache lines that
//! every core answering a verification bounces between them; so a thread
//! keeps its own copy of each grant, with its own count. A thread's
//! map is tagged with the generation it was filled under and is emptied at
//! its next lookup once the generation has moved on, so an invalidation
//! reaches every thread before the write that made it is acknowledged.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::core::keyhash::RandomKeys;
use crate::core::model::TokenGrant;
use crate::core::token_format::TokenHash;

/// Grants a thread keeps in front of the shared map: the tokens in use at
/// any moment, not the whole cache, so the copies stay small however large
/// the cache is.
const THREAD_CAPACITY: usize = 4096;

pub struct GrantCache {
    /// Tells this cache's thread maps from another cache's (tests run
    /// several servers' stores in one process).
    id: usize,
    capacity: usize,
    /// Set while writes elsewhere may go unheard (a lost notification
    /// connection): nothing is answered from, or added to, the cache.
    bypassed: AtomicBool,
    /// Bumped on every invalidation, under the lock and before it is
    /// released; a read that started under an older generation may have
    /// seen data that is already stale, so it is not cached. Readable
    /// without the lock, so that thread maps can check it.
    generation: AtomicU64,
    entries: Mutex<HashMap<TokenHash, Arc<TokenGrant>, RandomKeys>>,
}

/// One thread's copies of shared entries.
#[derive(Default)]
struct ThreadGrants {
    cache: usize,
    generation: u64,
    entries: HashMap<TokenHash, Arc<TokenGrant>, RandomKeys>,
}

thread_local! {
    static THREAD_GRANTS: RefCell<ThreadGrants> = RefCell::default();
}

impl GrantCache {
    pub fn new(capacity: usize) -> Self {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
        GrantCache {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            capacity,
            bypassed: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::default()),
        }
    }

    // A `std` mutex, not an async one: it is never held across an `.await`,
    // and each critical section is a map operation. A poisoned lock only
    // means another thread panicked mid-insert; the map is still usable.
    fn lock(&self) -> MutexGuard<'_, HashMap<TokenHash, Arc<TokenGrant>, RandomKeys>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, hash: &TokenHash) -> Option<Arc<TokenGrant>> {
        if self.bypassed.load(Ordering::Acquire) || self.capacity == 0 {
            return None;
        }
        let generation = self.generation.load(Ordering::Acquire);
        THREAD_GRANTS.with_borrow_mut(|mine| {
            if mine.cache != self.id || mine.generation != generation {
                mine.entries.clear();
                mine.cache = self.id;
                mine.generation = generation;
            }
            if let Some(grant) = mine.entries.get(hash) {
                return Some(Arc::clone(grant));
            }
            let grant = self.lock().get(hash).cloned()?;
            // An invalidation after the load above has emptied the shared
            // map, and has moved the generation this copy is tagged with:
            // the next lookup on this thread drops it.
            if mine.entries.len() >= THREAD_CAPACITY.min(self.capacity) {
                mine.entries.clear();
            }
            // A copy of its own, so that this thread's hits count references
            // on a line no other core writes.
            let copy = Arc::new(TokenGrant::clone(&grant));
            mine.entries.insert(*hash, Arc::clone(&copy));
            Some(copy)
        })
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps `grant`, read under `generation`, unless an invalidation has
    /// happened since.
    pub fn insert(&self, generation: u64, hash: TokenHash, grant: Arc<TokenGrant>) {
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) != generation
            || self.capacity == 0
            || self.bypassed.load(Ordering::Acquire)
        {
            return;
        }
        if entries.len() >= self.capacity {
            // Cheaper than tracking recency, and refilled by the next reads.
            entries.clear();
        }
        entries.insert(hash, grant);
    }

    /// Empties the cache: every thread's copies are dropped at its next
    /// lookup.
    pub fn invalidate(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
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
    fn an_invalidation_reaches_the_copies_every_thread_holds() {
        let cache = GrantCache::new(10);
        let hash = TokenHash([3; 32]);
        cache.insert(cache.generation(), hash, grant());
        std::thread::scope(|scope| {
            let (ready, filled) = std::sync::mpsc::channel();
            let (invalidated, go) = std::sync::mpsc::channel::<()>();
            let cache = &cache;
            let other = scope.spawn(move || {
                assert!(cache.get(&hash).is_some());
                ready.send(()).unwrap();
                go.recv().unwrap();
                cache.get(&hash).is_none()
            });
            assert!(cache.get(&hash).is_some());
            filled.recv().unwrap();
            cache.invalidate();
            invalidated.send(()).unwrap();
            assert!(cache.get(&hash).is_none());
            assert!(other.join().unwrap(), "the other thread kept its copy");
        });
    }

    #[test]
    fn caches_sharing_a_thread_keep_apart() {
        let (one, two) = (GrantCache::new(10), GrantCache::new(10));
        let hash = TokenHash([4; 32]);
        one.insert(one.generation(), hash, grant());
        assert!(one.get(&hash).is_some());
        assert!(two.get(&hash).is_none());
        assert!(one.get(&hash).is_some());
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
