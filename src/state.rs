//! What every request handler shares.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use warp::http::HeaderValue;

use crate::auth::jwt::SessionKey;
use crate::auth::password::Passwords;
use crate::core::forward_auth::CompiledRules;
use crate::core::ids::Id;
use crate::core::keyhash::RandomKeys;
use crate::core::model::Workspace;
use crate::core::ratelimit::SlidingWindow;
use crate::logging::RequestLog;
use crate::metrics::Metrics;
use crate::store::attempts::{MemoryAttempts, PasswordAttempts};
use crate::store::cache::GrantCache;
use crate::store::{RulesWatch, Store, StoredRoutes};
use crate::usage::UsageLog;

/// Sign-in failures allowed per account and per address in the window.
pub const LOGIN_FAILURE_LIMIT: usize = 10;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
pub const VERIFY_WINDOW: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: Arc<dyn Store>,
    pub passwords: Passwords,
    pub session_key: SessionKey,
    pub usage: UsageLog,
    /// Password attempts, for the sign-in and current-password lockouts.
    pub attempts: Arc<dyn PasswordAttempts>,
    /// The verify cache in front of `store`, for the metrics.
    pub verify_cache: Option<Arc<GrantCache>>,
    pub verify_failures: VerifyFailures,
    /// Needed by the first sign-up when the server is reachable beyond
    /// loopback; taken once used.
    pub setup_code: Mutex<Option<String>>,
    /// Take the client address from `X-Forwarded-For` (set by a reverse
    /// proxy in front) rather than from the TCP peer.
    pub trust_proxy: bool,
    pub request_log: Option<RequestLog>,
    /// Counters for `--metrics-addr`; counting takes no lock.
    pub metrics: Metrics,
    /// Each workspace's forward-auth rules, compiled.
    pub routes: RouteTable,
}

pub struct Options {
    pub verify_fail_limit: usize,
    pub password_workers: usize,
    pub setup_code: Option<String>,
    pub trust_proxy: bool,
    pub request_log: Option<RequestLog>,
    /// Where password attempts are counted; `None`: in memory.
    pub attempts: Option<Arc<dyn PasswordAttempts>>,
    /// The verify cache in front of the store, for the metrics.
    pub verify_cache: Option<Arc<GrantCache>>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, session_key: SessionKey, options: Options) -> Self {
        AppState(Arc::new(Shared {
            store,
            passwords: Passwords::new(options.password_workers),
            session_key,
            usage: UsageLog::default(),
            verify_cache: options.verify_cache,
            attempts: options.attempts.unwrap_or_else(|| {
                Arc::new(MemoryAttempts::new(LOGIN_FAILURE_LIMIT, LOGIN_WINDOW))
            }),
            verify_failures: VerifyFailures::new(options.verify_fail_limit),
            setup_code: Mutex::new(options.setup_code),
            trust_proxy: options.trust_proxy,
            request_log: options.request_log,
            metrics: Metrics::default(),
            routes: RouteTable::default(),
        }))
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Failed verifications per client address. Every verification asks
/// whether its address is locked out; the lock is taken only while some
/// address has failed recently, so the usual answer touches no memory that
/// another core writes.
pub struct VerifyFailures {
    window: Mutex<SlidingWindow<IpAddr>>,
    any: AtomicBool,
}

impl VerifyFailures {
    fn new(limit: usize) -> Self {
        VerifyFailures {
            window: Mutex::new(SlidingWindow::new(limit, VERIFY_WINDOW)),
            any: AtomicBool::new(false),
        }
    }

    /// How long `ip` must wait now; the clock is read only once some
    /// address has failed.
    pub fn retry_after(&self, ip: &IpAddr) -> Option<Duration> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.window).retry_after(ip, Instant::now())
    }

    pub fn record_failure(&self, ip: IpAddr, now: Instant) {
        let mut window = lock(&self.window);
        window.record_failure(ip, now);
        self.any.store(window.tracked_keys() > 0, Ordering::Release);
    }

    /// Forgets addresses whose failures have all left the window.
    pub fn prune(&self, now: Instant) {
        let mut window = lock(&self.window);
        window.prune(now);
        self.any.store(window.tracked_keys() > 0, Ordering::Release);
    }
}

/// Locks a `std` mutex that guards plain in-memory counters: never held
/// across an `.await`, and still consistent if a holder panicked.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A workspace's forward-auth rules ready to answer with: compiled, with
/// each rule's `X-Tokenward-Rule` value made once rather than per answer.
#[derive(Clone)]
pub struct LiveRules {
    pub version: i64,
    pub rules: CompiledRules,
    /// Indexed like the document's rules.
    pub rule_headers: Vec<HeaderValue>,
}

impl LiveRules {
    pub fn new(stored: StoredRoutes) -> Self {
        let rule_headers = stored
            .document
            .rules
            .iter()
            .map(|rule| {
                // Ids are letters, digits, `-`, `_` and `.`: always a valid value.
                HeaderValue::from_str(&rule.id).unwrap_or_else(|_| HeaderValue::from_static(""))
            })
            .collect();
        LiveRules {
            version: stored.version,
            rules: CompiledRules::new(stored.document),
            rule_headers,
        }
    }
}

/// The rules of every workspace that forward-auth has asked about or that
/// stored rules since start. Read on every forward-auth request, written
/// on a rules write or a first read: a read-write lock around a map of
/// `Arc`s, so a write swaps a whole document at once.
///
/// Each thread answers from its own copies, as the verify cache does: a
/// lookup in the shared map takes the lock's count and the rules'
/// reference count, lines that every core answering writes. The copies
/// are tagged with the generation they were made under, which every
/// change moves while it holds the write lock, so a thread drops them at
/// its next lookup after a write and before the write is acknowledged.
pub struct RouteTable {
    /// Tells this table's thread copies from another table's (tests run
    /// several servers in one process).
    id: usize,
    generation: AtomicU64,
    live: RwLock<HashMap<Id<Workspace>, Arc<LiveRules>, RandomKeys>>,
    /// Per workspace, the newest version another node is known to have
    /// written: an older document read from the database (by a read that
    /// raced the write) is answered with but not kept. Locked after `live`.
    floors: Mutex<HashMap<Id<Workspace>, i64, RandomKeys>>,
}

/// Workspaces whose rules a thread keeps copies of; past it, it starts
/// again.
const THREAD_WORKSPACES: usize = 1024;

/// One thread's copies of a table's rules.
#[derive(Default)]
struct ThreadRules {
    table: usize,
    generation: u64,
    live: HashMap<Id<Workspace>, Arc<LiveRules>, RandomKeys>,
}

thread_local! {
    static THREAD_RULES: RefCell<ThreadRules> = RefCell::default();
}

impl Default for RouteTable {
    fn default() -> Self {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
        RouteTable {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            live: RwLock::default(),
            floors: Mutex::default(),
        }
    }
}

impl RouteTable {
    pub fn get(&self, workspace: Id<Workspace>) -> Option<Arc<LiveRules>> {
        let generation = self.generation.load(Ordering::Acquire);
        THREAD_RULES.with_borrow_mut(|mine| {
            if mine.table != self.id || mine.generation != generation {
                mine.live.clear();
                mine.table = self.id;
                mine.generation = generation;
            }
            if let Some(live) = mine.live.get(&workspace) {
                return Some(Arc::clone(live));
            }
            let shared = self
                .live
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .get(&workspace)
                .cloned()?;
            // A write after the load above has moved the generation this
            // copy is tagged with: the next lookup drops it.
            if mine.live.len() >= THREAD_WORKSPACES {
                mine.live.clear();
            }
            let copy = Arc::new(LiveRules::clone(&shared));
            mine.live.insert(workspace, Arc::clone(&copy));
            Some(copy)
        })
    }

    /// Marks every thread's copies stale; called with the write lock held.
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Keeps the newer of the rules held and `rules`, and returns it. Two
    /// writes, or a write and a first read, may finish in either order;
    /// comparing versions means the latest document always stays.
    pub fn offer(&self, workspace: Id<Workspace>, rules: Arc<LiveRules>) -> Arc<LiveRules> {
        let mut live = self
            .live
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let floor = lock(&self.floors).get(&workspace).copied();
        if floor.is_some_and(|floor| rules.version < floor) {
            return match live.get(&workspace) {
                Some(held) if held.version > rules.version => Arc::clone(held),
                _ => rules,
            };
        }
        let held = match live.entry(workspace) {
            Entry::Occupied(held) if held.get().version >= rules.version => held.into_mut(),
            Entry::Occupied(mut held) => {
                held.insert(rules);
                self.changed();
                held.into_mut()
            }
            Entry::Vacant(room) => {
                self.changed();
                room.insert(rules)
            }
        };
        Arc::clone(held)
    }
}

impl RouteTable {
    /// Another node wrote the workspace's rules at `version`.
    pub fn written_elsewhere(&self, workspace: Id<Workspace>, version: i64) {
        let mut live = self
            .live
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut floors = lock(&self.floors);
        let floor = floors.entry(workspace).or_insert(version);
        *floor = (*floor).max(version);
        if live
            .get(&workspace)
            .is_some_and(|held| held.version < version)
        {
            live.remove(&workspace);
            self.changed();
        }
    }

    /// Forgets every workspace's rules; the next request reads them again.
    pub fn forget_all(&self) {
        let mut live = self
            .live
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        live.clear();
        self.changed();
    }
}

impl RulesWatch for AppState {
    fn rules_written(&self, workspace: Id<Workspace>, version: i64) {
        self.routes.written_elsewhere(workspace, version);
    }

    fn forget_all(&self) {
        self.routes.forget_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::forward_auth::RuleDocument;

    fn rules(version: i64, cache_seconds: u32) -> Arc<LiveRules> {
        Arc::new(LiveRules::new(StoredRoutes {
            document: RuleDocument {
                cache_seconds,
                ..RuleDocument::default()
            },
            version,
        }))
    }

    #[test]
    fn the_newest_rules_stay_whatever_order_they_arrive_in() {
        let table = RouteTable::default();
        let workspace = Id::new();
        assert!(table.get(workspace).is_none());
        assert_eq!(table.offer(workspace, rules(2, 2)).version, 2);
        // A first read that started before the write finishes after it.
        assert_eq!(table.offer(workspace, rules(1, 1)).version, 2);
        assert_eq!(table.offer(workspace, rules(3, 3)).version, 3);
        let held = table.get(workspace).unwrap();
        assert_eq!(held.rules.document().cache_seconds, 3);
        assert!(table.get(Id::new()).is_none());
    }

    #[test]
    fn rules_written_elsewhere_replace_what_is_held_and_older_reads_are_not_kept() {
        let table = RouteTable::default();
        let workspace = Id::new();
        table.offer(workspace, rules(1, 1));
        table.written_elsewhere(workspace, 2);
        assert!(table.get(workspace).is_none());
        // A read that started before the write answers once, unkept.
        assert_eq!(table.offer(workspace, rules(1, 1)).version, 1);
        assert!(table.get(workspace).is_none());
        assert_eq!(table.offer(workspace, rules(2, 2)).version, 2);
        assert_eq!(table.get(workspace).unwrap().version, 2);
        table.forget_all();
        assert!(table.get(workspace).is_none());
    }

    #[test]
    fn a_thread_answers_from_its_copy_until_the_rules_change() {
        let table = RouteTable::default();
        let workspace = Id::new();
        table.offer(workspace, rules(1, 1));
        let first = table.get(workspace).unwrap();
        let again = table.get(workspace).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the thread's own copy");
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let theirs = table.get(workspace).unwrap();
                assert!(!Arc::ptr_eq(&first, &theirs), "each thread copies");
                table.offer(workspace, rules(2, 2));
            });
        });
        // Written on another thread: this thread's copy goes at once.
        assert_eq!(table.get(workspace).unwrap().version, 2);
        table.written_elsewhere(workspace, 3);
        assert!(table.get(workspace).is_none());
        table.offer(workspace, rules(3, 3));
        assert_eq!(table.get(workspace).unwrap().version, 3);
        table.forget_all();
        assert!(table.get(workspace).is_none());
        // Another table's copies are its own.
        let other = RouteTable::default();
        other.offer(workspace, rules(7, 7));
        assert_eq!(other.get(workspace).unwrap().version, 7);
        table.offer(workspace, rules(4, 4));
        assert_eq!(table.get(workspace).unwrap().version, 4);
    }
}
