//! When and from where each token was last used, kept in memory and written
//! in batches: verifying a token never writes to the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

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

    /// Writes every pending use in one transaction. On failure the uses go
    /// back into the log for the next attempt.
    pub async fn flush(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let batch: Vec<TokenUse> = self
            .lock()
            .drain()
            .map(|(token_id, (at, ip))| TokenUse {
                token_id,
                at,
                ip: ip.map(|ip| ip.to_string()),
            })
            .collect();
        if batch.is_empty() {
            return Ok(0);
        }
        let count = batch.len();
        match store.record_token_uses(batch.clone()).await {
            Ok(()) => Ok(count),
            Err(err) => {
                for usage in batch {
                    let ip = usage.ip.and_then(|ip| ip.parse().ok());
                    self.record(usage.token_id, usage.at, ip);
                }
                Err(err)
            }
        }
    }
}
