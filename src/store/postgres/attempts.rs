//! Password attempts counted in the database, for lockouts that hold
//! across nodes. Each decision takes a transaction-scoped advisory lock per
//! key, so concurrent attempts on one key, on any node, are decided one
//! after the other; attempts on other keys do not wait.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use postgres::GenericClient;

use super::PostgresStore;
use crate::store::attempts::{AttemptKey, AttemptTicket, PasswordAttempts, counted_in};
use crate::store::{Result, StoreError};

/// The database's clock, in milliseconds.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// Attempts older than this are deleted by the sweeper: longer than any
/// lockout window.
pub(super) const KEPT_MS: i64 = 24 * 60 * 60 * 1000;

/// The lockout's counters for nodes sharing one PostgreSQL database.
pub struct SharedAttempts {
    store: Arc<PostgresStore>,
    limit: i64,
    window_ms: i64,
}

impl SharedAttempts {
    /// After `limit` failures within `window` on a key, attempts on it are
    /// refused until the oldest of them leaves the window (0: no limit).
    pub fn new(store: Arc<PostgresStore>, limit: usize, window: Duration) -> Self {
        SharedAttempts {
            store,
            limit: i64::try_from(limit).unwrap_or(i64::MAX),
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
        }
    }
}

fn begin(
    tx: &mut impl GenericClient,
    keys: &[String],
    limit: i64,
    window_ms: i64,
) -> Result<std::result::Result<Vec<i64>, Duration>> {
    let mut sorted: Vec<&String> = keys.iter().collect();
    // Always in one order, so that two attempts never wait on each other.
    sorted.sort();
    sorted.dedup();
    for key in &sorted {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[key],
        )?;
    }
    let now: i64 = tx.query_one(&format!("SELECT {NOW_MS}"), &[])?.try_get(0)?;
    let mut wait_ms: Option<i64> = None;
    for key in &sorted {
        // The `limit`-th latest failure within the window, if there are
        // that many: the lockout lasts until it leaves the window.
        let oldest = tx.query_opt(
            "SELECT at_ms FROM attempts WHERE key = $1 AND at_ms > $2
             ORDER BY at_ms DESC OFFSET $3 LIMIT 1",
            &[key, &now.saturating_sub(window_ms), &(limit - 1)],
        )?;
        if let Some(row) = oldest {
            let at: i64 = row.try_get(0)?;
            let left = at.saturating_add(window_ms).saturating_sub(now).max(0);
            wait_ms = Some(wait_ms.map_or(left, |w| w.max(left)));
        }
    }
    if let Some(wait) = wait_ms {
        return Ok(Err(Duration::from_millis(u64::try_from(wait).unwrap_or(0))));
    }
    let mut rows = Vec::with_capacity(sorted.len());
    for key in &sorted {
        let id: i64 = tx
            .query_one(
                "INSERT INTO attempts (key, at_ms) VALUES ($1, $2) RETURNING id",
                &[key, &now],
            )?
            .try_get(0)?;
        rows.push(id);
    }
    Ok(Ok(rows))
}

#[async_trait]
impl PasswordAttempts for SharedAttempts {
    async fn begin(
        &self,
        keys: Vec<AttemptKey>,
    ) -> Result<std::result::Result<AttemptTicket, Duration>> {
        if self.limit == 0 {
            return Ok(Ok(counted_in(keys, Vec::new())));
        }
        let texts: Vec<String> = keys.iter().map(AttemptKey::as_text).collect();
        let (limit, window_ms) = (self.limit, self.window_ms);
        let pool = self.store.pool()?;
        let decided = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(super::unavailable)?;
            let mut tx = conn.transaction()?;
            let decided = begin(&mut tx, &texts, limit, window_ms)?;
            tx.commit()?;
            Ok::<_, StoreError>(decided)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("database task failed: {e}")))??;
        Ok(decided.map(|rows| counted_in(keys, rows)))
    }

    async fn succeeded(&self, ticket: AttemptTicket) {
        if ticket.rows().is_empty() {
            return;
        }
        let rows = ticket.rows().to_vec();
        let Ok(pool) = self.store.pool() else { return };
        let withdrawn = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(super::unavailable)?;
            conn.execute("DELETE FROM attempts WHERE id = ANY($1)", &[&rows])?;
            Ok::<_, StoreError>(())
        })
        .await;
        // The count stays: the lockout errs on the side of refusing.
        if let Ok(Err(err)) = withdrawn {
            tracing::warn!(%err, "could not take back a successful password attempt");
        }
    }
}

/// Deletes attempts older than [`KEPT_MS`].
pub(super) fn purge(tx: &mut impl GenericClient) -> Result<u64> {
    Ok(tx.execute(
        &format!("DELETE FROM attempts WHERE at_ms < {NOW_MS} - $1"),
        &[&KEPT_MS],
    )?)
}
