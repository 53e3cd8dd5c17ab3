//! Instance administration: the account list, disabling, deleting and the
//! command line's password reset; and the token counts the metrics show.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, named_params, params};

use super::accounts::{ACCOUNT_COLUMNS, account_from_row};
use super::{SqliteStore, audit};
use crate::core::audit::{Actor, Change, Target};
use crate::core::ids::Id;
use crate::core::model::{Account, Workspace};
use crate::core::time::Timestamp;
use crate::store::cache::GrantCache;
use crate::store::{AccountQuery, AccountSummary, Page, Result, StoreError, TokenCounts};

/// The `meta` key changed by every write to an account's state, so that a
/// running server sees writes made by another process (the command line)
/// and empties its verify cache.
const ACCOUNTS_MARK: &str = "accounts_changed";

/// An account with what the admin list shows beside it; `:now` decides
/// which tokens are active.
fn summary_select() -> String {
    format!(
        "SELECT {ACCOUNT_COLUMNS}, a.disabled_at,
             (SELECT COUNT(*) FROM members m WHERE m.account_id = a.id),
             (SELECT COUNT(*) FROM tokens t
              WHERE t.owner_id = a.id AND t.revoked_at IS NULL
                AND (t.expires_at IS NULL OR t.expires_at > :now))
         FROM accounts a"
    )
}

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<AccountSummary> {
    Ok(AccountSummary {
        account: account_from_row(row, 0)?,
        disabled_at: row.get(5)?,
        workspaces: row.get::<_, i64>(6)?.try_into().unwrap_or(0),
        active_tokens: row.get::<_, i64>(7)?.try_into().unwrap_or(0),
    })
}

/// Accounts whose email contains the query, by email.
pub fn list(conn: &Connection, query: &AccountQuery) -> Result<Page<AccountSummary>> {
    let total: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM accounts WHERE instr(email, ?1) > 0")?
        .query_row([&query.email_contains], |row| row.get(0))?;
    let offset = i64::try_from(query.page.offset()).unwrap_or(i64::MAX);
    let sql = format!(
        "{} WHERE instr(a.email, :q) > 0 ORDER BY a.email LIMIT :limit OFFSET :offset",
        summary_select()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        named_params! {
            ":q": query.email_contains,
            ":now": query.now,
            ":limit": query.page.per_page,
            ":offset": offset,
        },
        summary_from_row,
    )?;
    Ok(Page {
        items: rows.collect::<rusqlite::Result<_>>()?,
        total: u64::try_from(total).unwrap_or(0),
    })
}

fn summary(conn: &Connection, id: Id<Account>, now: Timestamp) -> Result<AccountSummary> {
    let sql = format!("{} WHERE a.id = :id", summary_select());
    conn.prepare_cached(&sql)?
        .query_row(named_params! {":id": id, ":now": now}, summary_from_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// Refuses a write that would leave no enabled instance admin: `account`
/// is one, and no other enabled one exists.
fn ensure_another_admin(conn: &Connection, account: &Account) -> Result<()> {
    if !account.instance_admin || account.disabled {
        return Ok(());
    }
    let others: i64 = conn.query_row(
        "SELECT COUNT(*) FROM accounts
         WHERE instance_admin AND disabled_at IS NULL AND id <> ?1",
        [account.id],
        |row| row.get(0),
    )?;
    if others == 0 {
        return Err(StoreError::LastInstanceAdmin);
    }
    Ok(())
}

/// Records that an account changed, for servers watching the file.
fn mark_change(tx: &Transaction) -> Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, randomblob(8))
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [ACCOUNTS_MARK],
    )?;
    Ok(())
}

/// The mark [`mark_change`] leaves; `None` before the first change.
fn change_mark(conn: &Connection) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([ACCOUNTS_MARK], |row| row.get(0))
        .optional()?)
}

pub fn set_disabled(
    tx: &Transaction,
    id: Id<Account>,
    disabled: bool,
    now: Timestamp,
    by: &Actor,
) -> Result<AccountSummary> {
    let current = summary(tx, id, now)?;
    match (disabled, current.account.disabled) {
        // Already so: the first time it was disabled stays.
        (true, true) | (false, false) => return Ok(current),
        (true, false) => {
            ensure_another_admin(tx, &current.account)?;
            tx.execute(
                "UPDATE accounts SET disabled_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            // For good: enabling the account again does not bring back a
            // session that someone else may hold.
            tx.execute(
                "UPDATE sessions SET revoked_at = ?2 WHERE account_id = ?1 AND revoked_at IS NULL",
                params![id, now],
            )?;
        }
        (false, true) => {
            tx.execute("UPDATE accounts SET disabled_at = NULL WHERE id = ?1", [id])?;
        }
    }
    mark_change(tx)?;
    let action = if disabled {
        "account.disable"
    } else {
        "account.enable"
    };
    let target = Target::new("account", id, current.account.email.clone());
    audit::record(tx, by, &Change::new(action, None, target))?;
    summary(tx, id, now)
}

pub fn delete(tx: &Transaction, id: Id<Account>, by: &Actor) -> Result<()> {
    let account = super::accounts::by_id(tx, id)?.ok_or(StoreError::NotFound)?;
    ensure_another_admin(tx, &account)?;
    let stranded: Option<String> = tx
        .query_row(
            "SELECT w.name FROM workspaces w
             JOIN members mine ON mine.workspace_id = w.id
                               AND mine.account_id = ?1 AND mine.role = 'admin'
             WHERE NOT EXISTS (SELECT 1 FROM members m
                               WHERE m.workspace_id = w.id AND m.account_id <> ?1
                                 AND m.role = 'admin')
               AND EXISTS (SELECT 1 FROM members m
                           WHERE m.workspace_id = w.id AND m.account_id <> ?1)
             ORDER BY w.name LIMIT 1",
            [id],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(name) = stranded {
        return Err(StoreError::OnlyWorkspaceAdmin(name));
    }
    let workspaces: Vec<Id<Workspace>> = tx
        .prepare("SELECT workspace_id FROM members WHERE account_id = ?1")?
        .query_map([id], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    // Sessions, memberships and tokens go with it (ON DELETE CASCADE).
    tx.execute("DELETE FROM accounts WHERE id = ?1", [id])?;
    // A workspace no one is left in could never be reached again.
    let mut empty = tx.prepare(
        "DELETE FROM workspaces
         WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM members WHERE workspace_id = ?1)",
    )?;
    let mut removed = 0;
    for workspace in workspaces {
        removed += empty.execute([workspace])?;
    }
    mark_change(tx)?;
    let change = Change::new(
        "account.delete",
        None,
        Target::new("account", id, account.email.clone()),
    )
    .with("workspaces_removed", removed);
    audit::record(tx, by, &change)
}

pub fn reset_password(
    tx: &Transaction,
    email: &str,
    hash: &str,
    now: Timestamp,
    by: &Actor,
) -> Result<Account> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.email = ?1");
    let account = tx
        .query_row(&sql, [email], |row| account_from_row(row, 0))
        .optional()?
        .ok_or(StoreError::NoSuchAccount)?;
    tx.execute(
        "UPDATE accounts SET password_hash = ?2 WHERE id = ?1",
        params![account.id, hash],
    )?;
    let ended = tx.execute(
        "UPDATE sessions SET revoked_at = ?2 WHERE account_id = ?1 AND revoked_at IS NULL",
        params![account.id, now],
    )?;
    let change = Change::new(
        "account.password",
        None,
        Target::new("account", account.id, account.email.clone()),
    )
    .with("sessions_ended", ended);
    audit::record(tx, by, &change)?;
    Ok(account)
}

pub fn token_counts(conn: &Connection, now: Timestamp) -> Result<TokenCounts> {
    let (active, expired, revoked): (i64, i64, i64) = conn
        .prepare_cached(
            "SELECT
                 COALESCE(SUM(revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)), 0),
                 COALESCE(SUM(revoked_at IS NULL AND expires_at <= ?1), 0),
                 COALESCE(SUM(revoked_at IS NOT NULL), 0)
             FROM tokens",
        )?
        .query_row([now], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(TokenCounts {
        active: count(active),
        expired: count(expired),
        revoked: count(revoked),
    })
}

impl SqliteStore {
    /// Empties the verify cache when another process changes an account
    /// (`tokenward admin disable` next to a running server), looking
    /// `every` so often. The server's own writes empty it themselves, at
    /// once; this bounds how long the command line's take. Runs until
    /// dropped.
    pub fn follow_account_changes(
        &self,
        every: Duration,
        grants: Arc<GrantCache>,
    ) -> impl Future<Output = ()> + Send + use<> {
        let pool = self.pool.clone();
        async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seen = None;
            loop {
                ticker.tick().await;
                let pool = pool.clone();
                let read = tokio::task::spawn_blocking(move || {
                    let conn = pool
                        .get()
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    change_mark(&conn)
                })
                .await;
                match read {
                    Ok(Ok(mark)) => {
                        if seen.as_ref().is_some_and(|before| *before != mark) {
                            grants.invalidate();
                        }
                        seen = Some(mark);
                    }
                    // The next look tries again; a busy database is no news.
                    Ok(Err(err)) => tracing::debug!(%err, "could not look for account changes"),
                    Err(err) => tracing::debug!(%err, "could not look for account changes"),
                }
            }
        }
    }
}
