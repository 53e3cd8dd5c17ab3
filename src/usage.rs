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

/// The address of the last use: in memory still, or as stored.
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

/// The latest use of each token since the last flush.
type Pending = HashMap<Id<Token>, (Timestamp, Option<IpAddr>), RandomKeys>;

#[derive(Default)]
pub struct UsageLog {
    pending: Mutex<Pending>,
}

impl UsageLog {
    // Never held across an `.await`; see the grant cache for the same choice.
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending
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
        let mut pending = self.lock();
        let entry = pending.entry(token).or_insert((at, ip));
        if at >= entry.0 {
            *entry = (at, ip);
        }
    }

    /// The latest use of `token`: one not yet flushed, else the stored one.
    pub fn latest<'a>(&self, token: &'a Token) -> LastUse<'a> {
        let pending = self.lock().get(&token.id).copied();
        match pending {
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
    /// next attempt; the batches before it stay stored.
    pub async fn flush(&self, store: &dyn Store) -> Result<usize, StoreError> {
        self.flush_with(|uses| store.record_token_uses(uses)).await
    }

    /// `flush`, with the call that stores one batch passed in, so that
    /// tests can make any batch fail.
    async fn flush_with<F, Fut>(&self, mut store_batch: F) -> Result<usize, StoreError>
    where
        F: FnMut(Vec<TokenUse>) -> Fut,
        Fut: Future<Output = Result<(), StoreError>>,
    {
        let uses: Vec<TokenUse> = self
            .lock()
            .drain()
            .map(|(token_id, (at, ip))| TokenUse {
                token_id,
                at,
                ip: ip.map(|ip| ip.to_string()),
            })
            .collect();
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
            if !rest.as_slice().is_empty() {
                tokio::time::sleep((began.elapsed() * 2).max(FLUSH_PAUSE)).await;
            }
        }
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
            .flush_with(|uses| {
                sizes.push(uses.len());
                std::future::ready(Ok(()))
            })
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
            .flush_with(|uses| {
                calls += 1;
                let outcome = if calls == 2 {
                    Err(StoreError::Unavailable("database is locked".into()))
                } else {
                    stored.extend(uses.iter().map(|u| u.token_id));
                    Ok(())
                };
                std::future::ready(outcome)
            })
            .await;
        assert!(result.is_err());
        assert_eq!(stored.len(), FLUSH_BATCH);
        assert_eq!(log.pending() + stored.len(), 1200);
        let pending = log.lock();
        assert!(pending.keys().all(|id| !stored.contains(id)));
        // What goes back is the use as it was: time and address.
        assert!(pending.values().all(|(_, ip)| ip.is_some()));
    }
}
