//! When and from where each token was last used, kept in memory and written
//! in batches: verifying a token never writes to the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::core::ids::Id;
use crate::core::keyhash::RandomKeys;
use crate::core::model::{Token, TokenGrant};
use crate::core::time::Timestamp;
use crate::store::{Store, StoreError, TokenUse};

/// When and from where a token was last used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LastUse<'a> {
    pub at: Option<Timestamp>,
    pub ip: Option<UsedFrom<'a>>,
}

/// The address of the last use: as this log holds it, or as the token's
/// row held it when it was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsedFrom<'a> {
    Pending(IpAddr),
    Stored(&'a str),
}

impl serde::Serialize for UsedFrom<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // Formatted straight into the output, without a String.
            UsedFrom::Pending(ip) => ip.serialize(serializer),
            UsedFrom::Stored(text) => serializer.serialize_str(text),
        }
    }
}

/// Uses stored per write transaction. SQLite has one writer at a time, so
/// a create or revoke that arrives during a flush waits for the batch in
/// hand, a few milliseconds, not for every pending use (one transaction of
/// 110 000 held the lock for 2.4 s).
const FLUSH_BATCH: usize = 250;
/// The shortest pause between two batches; a pause is at least twice as
/// long as the batch before it took, so the flush holds the write lock a
/// third of the time at most. A writer that finds the lock taken sleeps in
/// SQLite's busy handler (1, 2, 5, 10, 15, 20, 25… ms) and tries again;
/// there is no queue, so a flush that took the lock back at once would
/// starve it.
const FLUSH_PAUSE: Duration = Duration::from_millis(15);

/// The most stored uses the log remembers; past it, it forgets them all
/// and has the verify cache emptied instead (see [`UsageLog::stored`]).
const REMEMBERED: usize = 100_000;

/// A use: when, and from where.
type Use = (Timestamp, Option<IpAddr>);

/// The latest use of each token.
type Pending = HashMap<Id<Token>, Use, RandomKeys>;

#[derive(Default)]
pub struct UsageLog {
    /// Uses since the last flush.
    pending: Mutex<Pending>,
    /// Uses a flush has stored. A cached grant holds its token's last use
    /// as the row had it when read, so answers take the later of the two.
    /// Emptying the verify cache after every flush instead had every token
    /// in use read again from the database at once, once a minute: with a
    /// thousand integrations, a thousand reads queued behind the flush's
    /// own writes. Bounded by [`REMEMBERED`].
    stored: Mutex<Pending>,
}

impl UsageLog {
    // Never held across an `.await`; see the grant cache for the same choice.
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_stored(&self) -> MutexGuard<'_, Pending> {
        self.stored
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a use of a verified token, unless one in the same second
    /// was recorded already (uses are kept to the second).
    pub fn record_use(&self, grant: &TokenGrant, at: Timestamp, ip: Option<IpAddr>) {
        if grant.first_use_in(at) {
            self.record(grant.token.id, at, ip);
        }
    }

    pub fn record(&self, token: Id<Token>, at: Timestamp, ip: Option<IpAddr>) {
        keep_latest(&mut self.lock(), token, (at, ip));
    }

    /// The latest use of `token`: the later of what this log holds and
    /// what the token's row held when it was read.
    pub fn latest<'a>(&self, token: &'a Token) -> LastUse<'a> {
        let pending = self.lock().get(&token.id).copied();
        let stored = self.lock_stored().get(&token.id).copied();
        let held = match (pending, stored) {
            (Some(pending), Some(stored)) => Some(if pending.0 >= stored.0 {
                pending
            } else {
                stored
            }),
            (pending, stored) => pending.or(stored),
        };
        match held {
            Some((at, ip)) if token.last_used_at.is_none_or(|stored| stored <= at) => LastUse {
                at: Some(at),
                ip: ip.map(UsedFrom::Pending),
            },
            _ => LastUse {
                at: token.last_used_at,
                ip: token.last_used_ip.as_deref().map(UsedFrom::Stored),
            },
        }
    }

    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Writes every pending use, `FLUSH_BATCH` per transaction. If a batch
    /// fails, it and the uses not yet stored go back into the log for the
    /// next attempt; the batches before it stay stored. When the log would
    /// remember more than [`REMEMBERED`] stored uses, it calls `forget_reads`
    /// (which empties the verify cache, so every grant is read again with
    /// its row's last use) and forgets them.
    pub async fn flush(
        &self,
        store: &dyn Store,
        forget_reads: impl Fn(),
    ) -> Result<usize, StoreError> {
        self.flush_with(|uses| store.record_token_uses(uses), forget_reads)
            .await
    }

    /// `flush`, with the call that stores one batch passed in, so that
    /// tests can make any batch fail.
    async fn flush_with<F, Fut>(
        &self,
        mut store_batch: F,
        forget_reads: impl Fn(),
    ) -> Result<usize, StoreError>
    where
        F: FnMut(Vec<TokenUse>) -> Fut,
        Fut: Future<Output = Result<(), StoreError>>,
    {
        let drained: Vec<(Id<Token>, Use)> = self.lock().drain().collect();
        let uses: Vec<TokenUse> = drained
            .iter()
            .map(|&(token_id, (at, ip))| TokenUse {
                token_id,
                at,
                ip: ip.map(|ip| ip.to_string()),
            })
            .collect();
        let mut held = drained.into_iter();
        let mut rest = uses.into_iter();
        let mut stored = 0;
        loop {
            let batch: Vec<TokenUse> = rest.by_ref().take(FLUSH_BATCH).collect();
            if batch.is_empty() {
                return Ok(stored);
            }
            let count = batch.len();
            let began = Instant::now();
            if let Err(err) = store_batch(batch.clone()).await {
                for usage in batch.into_iter().chain(rest) {
                    let ip = usage.ip.and_then(|ip| ip.parse().ok());
                    self.record(usage.token_id, usage.at, ip);
                }
                return Err(err);
            }
            stored += count;
            self.remember(held.by_ref().take(count), &forget_reads);
            if !rest.as_slice().is_empty() {
                tokio::time::sleep((began.elapsed() * 2).max(FLUSH_PAUSE)).await;
            }
        }
    }

    /// Keeps uses just stored, or forgets every one kept when there would
    /// be too many (after `forget_reads`, so no answer misses them).
    fn remember(&self, uses: impl Iterator<Item = (Id<Token>, Use)>, forget_reads: impl Fn()) {
        let mut stored = self.lock_stored();
        for (token, usage) in uses {
            if stored.len() >= REMEMBERED && !stored.contains_key(&token) {
                forget_reads();
                stored.clear();
            }
            keep_latest(&mut stored, token, usage);
        }
    }
}

/// Keeps `usage` for `token` unless a later one is kept already.
fn keep_latest(uses: &mut Pending, token: Id<Token>, usage: Use) {
    let entry = uses.entry(token).or_insert(usage);
    if usage.0 >= entry.0 {
        *entry = usage;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// A log holding one use each of `count` tokens.
    fn log_of(count: i64) -> UsageLog {
        let log = UsageLog::default();
        for at in 0..count {
            log.record(Id::new(), Timestamp(at), Some(IpAddr::from([10, 0, 0, 1])));
        }
        log
    }

    #[tokio::test]
    async fn a_flush_stores_bounded_batches() {
        let log = log_of(1200);
        let mut sizes = Vec::new();
        let stored = log
            .flush_with(
                |uses| {
                    sizes.push(uses.len());
                    std::future::ready(Ok(()))
                },
                || {},
            )
            .await
            .unwrap();
        assert_eq!(stored, 1200);
        assert_eq!(sizes.iter().sum::<usize>(), 1200);
        assert!(sizes.iter().all(|&size| size <= FLUSH_BATCH), "{sizes:?}");
        assert_eq!(log.pending(), 0);
    }

    #[tokio::test]
    async fn a_failed_batch_puts_back_only_the_uses_not_stored() {
        let log = log_of(1200);
        let mut stored = HashSet::new();
        let mut calls = 0;
        let result = log
            .flush_with(
                |uses| {
                    calls += 1;
                    let outcome = if calls == 2 {
                        Err(StoreError::Unavailable("database is locked".into()))
                    } else {
                        stored.extend(uses.iter().map(|u| u.token_id));
                        Ok(())
                    };
                    std::future::ready(outcome)
                },
                || {},
            )
            .await;
        assert!(result.is_err());
        assert_eq!(stored.len(), FLUSH_BATCH);
        assert_eq!(log.pending() + stored.len(), 1200);
        let pending = log.lock();
        assert!(pending.keys().all(|id| !stored.contains(id)));
        // What goes back is the use as it was: time and address.
        assert!(pending.values().all(|(_, ip)| ip.is_some()));
    }

    /// A token as read before any use was stored.
    fn never_used() -> Token {
        Token {
            id: Id::new(),
            number: 1,
            name: "t".into(),
            hint: "tw_…abcd".into(),
            scopes: Vec::new(),
            workspace_id: Id::new(),
            created_by: crate::core::model::AccountRef {
                id: Id::new(),
                email: "a@example.com".into(),
            },
            created_at: Timestamp(0),
            expires_at: None,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            replaced_by: None,
        }
    }

    #[tokio::test]
    async fn a_token_read_before_a_flush_still_shows_the_use_it_stored() {
        let log = UsageLog::default();
        let token = never_used();
        let ip = IpAddr::from([10, 0, 0, 7]);
        log.record(token.id, Timestamp(100), Some(ip));
        let forgot = std::cell::Cell::new(0);
        log.flush_with(
            |_| std::future::ready(Ok(())),
            || forgot.set(forgot.get() + 1),
        )
        .await
        .unwrap();
        assert_eq!(log.pending(), 0);
        assert_eq!(
            forgot.get(),
            0,
            "a flush alone must not empty the verify cache"
        );
        let latest = log.latest(&token);
        assert_eq!(latest.at, Some(Timestamp(100)));
        assert_eq!(latest.ip, Some(UsedFrom::Pending(ip)));
        // A later use not yet stored wins over the stored one.
        log.record(token.id, Timestamp(101), None);
        assert_eq!(log.latest(&token).at, Some(Timestamp(101)));
        // And a row read later than both wins over them.
        let mut reread = token.clone();
        reread.last_used_at = Some(Timestamp(102));
        reread.last_used_ip = Some("10.0.0.9".into());
        assert_eq!(log.latest(&reread).ip, Some(UsedFrom::Stored("10.0.0.9")));
    }

    #[test]
    fn past_its_bound_the_log_has_the_cache_emptied_and_forgets() {
        let log = UsageLog::default();
        let forgot = std::cell::Cell::new(0);
        let forget = || forgot.set(forgot.get() + 1);
        let uses = |count: usize| (0..count).map(|_| (Id::new(), (Timestamp(1), None)));
        log.remember(uses(REMEMBERED), forget);
        assert_eq!(forgot.get(), 0);
        assert_eq!(log.lock_stored().len(), REMEMBERED);
        log.remember(uses(1), forget);
        assert_eq!(forgot.get(), 1);
        assert_eq!(log.lock_stored().len(), 1);
    }
}
