//! A sliding-window failure counter per key (an email, an IP): after `limit`
//! failures within `window`, further attempts are refused until the oldest
//! failure leaves the window.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Keys tracked at most; beyond this the oldest-looking keys are dropped so
/// that a flood of distinct addresses cannot exhaust memory.
const MAX_KEYS: usize = 100_000;

#[derive(Debug)]
pub struct SlidingWindow<K> {
    limit: usize,
    window: Duration,
    failures: HashMap<K, VecDeque<Instant>>,
}

impl<K: Hash + Eq + Clone> SlidingWindow<K> {
    /// A `limit` of 0 turns the counter off.
    pub fn new(limit: usize, window: Duration) -> Self {
        SlidingWindow {
            limit,
            window,
            failures: HashMap::new(),
        }
    }

    /// How long `key` must wait, if it has used up its failures.
    pub fn retry_after(&mut self, key: &K, now: Instant) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let times = self.failures.get_mut(key)?;
        expire(times, now, self.window);
        if times.len() < self.limit {
            return None;
        }
        let oldest = *times.front()?;
        Some((oldest + self.window).saturating_duration_since(now))
    }

    pub fn record_failure(&mut self, key: K, now: Instant) {
        if self.limit == 0 {
            return;
        }
        if self.failures.len() >= MAX_KEYS && !self.failures.contains_key(&key) {
            self.prune(now);
            if self.failures.len() >= MAX_KEYS {
                let excess: Vec<K> = self.failures.keys().take(MAX_KEYS / 10).cloned().collect();
                for k in excess {
                    self.failures.remove(&k);
                }
            }
        }
        let times = self.failures.entry(key).or_default();
        times.push_back(now);
        while times.len() > self.limit {
            times.pop_front();
        }
    }

    /// Takes back one failure recorded at `at`: an attempt counted while in
    /// flight that turned out to succeed.
    pub fn withdraw(&mut self, key: &K, at: Instant) {
        if let Some(times) = self.failures.get_mut(key) {
            if let Some(index) = times.iter().rposition(|&t| t == at) {
                times.remove(index);
            }
            if times.is_empty() {
                self.failures.remove(key);
            }
        }
    }

    pub fn forget(&mut self, key: &K) {
        self.failures.remove(key);
    }

    /// Drops keys whose failures have all left the window.
    pub fn prune(&mut self, now: Instant) {
        let window = self.window;
        self.failures.retain(|_, times| {
            expire(times, now, window);
            !times.is_empty()
        });
    }

    pub fn tracked_keys(&self) -> usize {
        self.failures.len()
    }
}

fn expire(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|&t| now.saturating_duration_since(t) >= window)
    {
        times.pop_front();
    }
}

/// Whole seconds for a `Retry-After` header, never 0.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_th_failure_locks_until_the_oldest_leaves() {
        let start = Instant::now();
        let window = Duration::from_secs(900);
        let mut limiter = SlidingWindow::new(10, window);
        for i in 0..9 {
            limiter.record_failure("ada", start + Duration::from_secs(i));
            assert_eq!(
                limiter.retry_after(&"ada", start + Duration::from_secs(i)),
                None
            );
        }
        limiter.record_failure("ada", start + Duration::from_secs(9));
        let wait = limiter
            .retry_after(&"ada", start + Duration::from_secs(10))
            .unwrap();
        assert_eq!(wait, Duration::from_secs(890));
        assert_eq!(limiter.retry_after(&"bob", start), None);
        // Once the first failure is older than the window, one attempt is free.
        assert_eq!(limiter.retry_after(&"ada", start + window), None);
    }

    #[test]
    fn forgetting_and_pruning_clear_keys() {
        let start = Instant::now();
        let mut limiter = SlidingWindow::new(2, Duration::from_secs(60));
        limiter.record_failure(1, start);
        limiter.record_failure(2, start);
        limiter.forget(&1);
        assert_eq!(limiter.tracked_keys(), 1);
        limiter.prune(start + Duration::from_secs(61));
        assert_eq!(limiter.tracked_keys(), 0);
    }

    #[test]
    fn a_withdrawn_attempt_no_longer_counts() {
        let start = Instant::now();
        let mut limiter = SlidingWindow::new(2, Duration::from_secs(60));
        limiter.record_failure("ada", start);
        let second = start + Duration::from_secs(1);
        limiter.record_failure("ada", second);
        assert!(limiter.retry_after(&"ada", second).is_some());
        limiter.withdraw(&"ada", second);
        assert_eq!(limiter.retry_after(&"ada", second), None);
        limiter.withdraw(&"ada", start);
        assert_eq!(limiter.tracked_keys(), 0);
        // Withdrawing what was never recorded changes nothing.
        limiter.withdraw(&"bob", start);
        assert_eq!(limiter.tracked_keys(), 0);
    }

    #[test]
    fn zero_disables() {
        let start = Instant::now();
        let mut limiter = SlidingWindow::new(0, Duration::from_secs(60));
        for _ in 0..100 {
            limiter.record_failure("x", start);
        }
        assert_eq!(limiter.retry_after(&"x", start), None);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }
}
