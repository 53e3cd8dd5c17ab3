//! The background sweeper (§6): flushes last-used data, deletes tokens
//! expired or revoked more than `purge_after_seconds` ago and dead
//! sessions, and logs what it removed. It runs on its own task, and every
//! database call goes to the blocking pool, so requests never wait on it.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::core::time::Timestamp;
use crate::state::AppState;

/// `last_used` reaches the database at least this often.
pub const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(60);

/// Runs until `stop` changes, then flushes one last time.
pub async fn run(state: AppState, interval: Duration, mut stop: watch::Receiver<bool>) {
    let tick = interval.min(MAX_FLUSH_INTERVAL);
    // The first tick is at once: what became due while the server was
    // stopped is purged at start-up, not an interval later.
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_purge: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        flush(&state).await;
        if last_purge.is_none_or(|at| at.elapsed() + Duration::from_millis(50) >= interval) {
            last_purge = Some(Instant::now());
            sweep(&state).await;
        }
    }
    flush(&state).await;
}

/// Writes pending last-used data; on failure it stays queued.
pub async fn flush(state: &AppState) {
    let forget_reads = || {
        if let Some(cache) = &state.verify_cache {
            cache.invalidate();
        }
    };
    match state.usage.flush(state.store.as_ref(), forget_reads).await {
        Ok(0) => {}
        Ok(count) => tracing::debug!(tokens = count, "flushed last-used times"),
        Err(err) => {
            tracing::warn!(%err, pending = state.usage.pending(), "could not flush last-used times; will retry")
        }
    }
}

async fn sweep(state: &AppState) {
    let purged = state.store.purge(Timestamp::now()).await;
    state
        .metrics
        .swept(purged.as_ref().ok().map(|r| (r.tokens, r.sessions)));
    match purged {
        Ok(report) if report.tokens + report.sessions + report.audit_entries > 0 => {
            tracing::info!(
                tokens = report.tokens,
                sessions = report.sessions,
                audit_entries = report.audit_entries,
                "sweeper removed expired and revoked tokens, dead sessions and old audit entries"
            )
        }
        Ok(_) => tracing::debug!("sweeper found nothing to remove"),
        Err(err) => tracing::warn!(%err, "sweeper could not purge"),
    }
    let now = Instant::now();
    state.attempts.prune(now);
    state.verify_failures.prune(now);
}
