//! Where password attempts are counted for the lockouts (§9 "Decided inside
//! the write", §12): in memory when one node serves, in the database when
//! several share it, so that attempts spread over nodes count together.
//!
//! An attempt counts as a failure from the moment it starts: the decision
//! to let it run and its count are made at once (under one lock, or in one
//! transaction), so no number of concurrent attempts gets more than the
//! limit checked. A success takes its own count back.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::Result;
use crate::core::ratelimit::SlidingWindow;

/// What an attempt is counted against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptKey {
    Email(String),
    Ip(IpAddr),
}

impl AttemptKey {
    /// The key as stored in the database.
    pub fn as_text(&self) -> String {
        match self {
            AttemptKey::Email(email) => format!("email:{email}"),
            AttemptKey::Ip(ip) => format!("ip:{ip}"),
        }
    }
}

/// An attempt under way, to take back if it succeeds.
#[derive(Debug)]
pub struct AttemptTicket {
    keys: Vec<AttemptKey>,
    at: Instant,
    /// The rows that count it, when counted in the database.
    rows: Vec<i64>,
}

impl AttemptTicket {
    pub fn rows(&self) -> &[i64] {
        &self.rows
    }
}

#[async_trait]
pub trait PasswordAttempts: Send + Sync + 'static {
    /// Starts an attempt on `keys`, counted as a failure from now on; or,
    /// while any of them is locked out, how long to wait.
    async fn begin(&self, keys: Vec<AttemptKey>) -> Result<Result<AttemptTicket, Duration>>;
    /// Takes back the count of an attempt that succeeded.
    async fn succeeded(&self, ticket: AttemptTicket);
    /// Forgets failures that have left the window.
    fn prune(&self, _now: Instant) {}
}

/// One node's counters, in memory.
pub struct MemoryAttempts {
    by_email: Mutex<SlidingWindow<String>>,
    by_ip: Mutex<SlidingWindow<IpAddr>>,
}

impl MemoryAttempts {
    pub fn new(limit: usize, window: Duration) -> Self {
        MemoryAttempts {
            by_email: Mutex::new(SlidingWindow::new(limit, window)),
            by_ip: Mutex::new(SlidingWindow::new(limit, window)),
        }
    }
}

/// Counters in memory; never held across an `.await`, and still
/// consistent if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl PasswordAttempts for MemoryAttempts {
    async fn begin(&self, keys: Vec<AttemptKey>) -> Result<Result<AttemptTicket, Duration>> {
        let at = Instant::now();
        // Both locks, always in this order, for the decision and the count.
        let mut by_email = lock(&self.by_email);
        let mut by_ip = lock(&self.by_ip);
        let wait = keys
            .iter()
            .filter_map(|key| match key {
                AttemptKey::Email(email) => by_email.retry_after(email, at),
                AttemptKey::Ip(ip) => by_ip.retry_after(ip, at),
            })
            .max();
        if let Some(wait) = wait {
            return Ok(Err(wait));
        }
        for key in &keys {
            match key {
                AttemptKey::Email(email) => by_email.record_failure(email.clone(), at),
                AttemptKey::Ip(ip) => by_ip.record_failure(*ip, at),
            }
        }
        Ok(Ok(AttemptTicket {
            keys,
            at,
            rows: Vec::new(),
        }))
    }

    async fn succeeded(&self, ticket: AttemptTicket) {
        let mut by_email = lock(&self.by_email);
        let mut by_ip = lock(&self.by_ip);
        for key in &ticket.keys {
            match key {
                AttemptKey::Email(email) => by_email.withdraw(email, ticket.at),
                AttemptKey::Ip(ip) => by_ip.withdraw(ip, ticket.at),
            }
        }
    }

    fn prune(&self, now: Instant) {
        lock(&self.by_email).prune(now);
        lock(&self.by_ip).prune(now);
    }
}

/// A ticket for attempts counted in the database rows `rows`.
pub fn counted_in(keys: Vec<AttemptKey>, rows: Vec<i64>) -> AttemptTicket {
    AttemptTicket {
        keys,
        at: Instant::now(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_limit_is_counted_at_the_start_and_a_success_takes_its_count_back() {
        let attempts = MemoryAttempts::new(2, Duration::from_secs(60));
        let keys = || vec![AttemptKey::Email("a@example.com".into())];
        let first = attempts.begin(keys()).await.unwrap().unwrap();
        let _second = attempts.begin(keys()).await.unwrap().unwrap();
        assert!(attempts.begin(keys()).await.unwrap().is_err());
        attempts.succeeded(first).await;
        assert!(attempts.begin(keys()).await.unwrap().is_ok());
    }
}
