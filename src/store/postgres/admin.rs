//! Instance administration: the account list, disabling, deleting and the
//! command line's password reset; and the token counts the metrics show.

use postgres::{GenericClient, Row};

use super::accounts::{ACCOUNT_COLUMNS, account_from_row};
use super::audit;
use crate::core::audit::{Actor, Change, Target};
use crate::core::ids::Id;
use crate::core::model::{Account, Workspace};
use crate::core::time::Timestamp;
use crate::store::{AccountQuery, AccountSummary, Page, Result, StoreError, TokenCounts};

/// An account with what the admin list shows beside it; `$1` is now.
fn summary_select() -> String {
    format!(
        "SELECT {ACCOUNT_COLUMNS}, a.disabled_at,
             (SELECT COUNT(*) FROM members m WHERE m.account_id = a.id),
             (SELECT COUNT(*) FROM tokens t
              WHERE t.owner_id = a.id AND t.revoked_at IS NULL
                AND (t.expires_at IS NULL OR t.expires_at > $1))
         FROM accounts a"
    )
}

fn summary_from_row(row: &Row) -> Result<AccountSummary> {
    Ok(AccountSummary {
        account: account_from_row(row, 0)?,
        disabled_at: row.try_get(5)?,
        workspaces: row.try_get::<_, i64>(6)?.try_into().unwrap_or(0),
        active_tokens: row.try_get::<_, i64>(7)?.try_into().unwrap_or(0),
    })
}

/// Accounts whose email contains the query, by email.
pub fn list(db: &mut impl GenericClient, query: &AccountQuery) -> Result<Page<AccountSummary>> {
    let total: i64 = db
        .query_one(
            "SELECT COUNT(*) FROM accounts WHERE strpos(email, $1) > 0",
            &[&query.email_contains],
        )?
        .try_get(0)?;
    let offset = i64::try_from(query.page.offset()).unwrap_or(i64::MAX);
    let limit = i64::from(query.page.per_page);
    let sql = format!(
        "{} WHERE strpos(a.email, $2) > 0 ORDER BY a.email LIMIT $3 OFFSET $4",
        summary_select()
    );
    let rows = db.query(&sql, &[&query.now, &query.email_contains, &limit, &offset])?;
    Ok(Page {
        items: rows.iter().map(summary_from_row).collect::<Result<_>>()?,
        total: u64::try_from(total).unwrap_or(0),
    })
}

fn summary(db: &mut impl GenericClient, id: Id<Account>, now: Timestamp) -> Result<AccountSummary> {
    let sql = format!("{} WHERE a.id = $2", summary_select());
    match db.query_opt(&sql, &[&now, &id])? {
        Some(row) => summary_from_row(&row),
        None => Err(StoreError::NotFound),
    }
}

/// Refuses a write that would leave no enabled instance admin: `account`
/// is one, and no other enabled one exists. The write is serializable, so
/// two nodes disabling the last two admins cannot both pass.
fn ensure_another_admin(db: &mut impl GenericClient, account: &Account) -> Result<()> {
    if !account.instance_admin || account.disabled {
        return Ok(());
    }
    let others: i64 = db
        .query_one(
            "SELECT COUNT(*) FROM accounts
             WHERE instance_admin AND disabled_at IS NULL AND id <> $1",
            &[&account.id],
        )?
        .try_get(0)?;
    if others == 0 {
        return Err(StoreError::LastInstanceAdmin);
    }
    Ok(())
}

pub fn set_disabled(
    tx: &mut impl GenericClient,
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
                "UPDATE accounts SET disabled_at = $2 WHERE id = $1",
                &[&id, &now],
            )?;
            // For good: enabling the account again does not bring back a
            // session that someone else may hold.
            tx.execute(
                "UPDATE sessions SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL",
                &[&id, &now],
            )?;
        }
        (false, true) => {
            tx.execute(
                "UPDATE accounts SET disabled_at = NULL WHERE id = $1",
                &[&id],
            )?;
        }
    }
    let action = if disabled {
        "account.disable"
    } else {
        "account.enable"
    };
    let target = Target::new("account", id, current.account.email.clone());
    audit::record(tx, by, &Change::new(action, None, target))?;
    summary(tx, id, now)
}

pub fn delete(tx: &mut impl GenericClient, id: Id<Account>, by: &Actor) -> Result<()> {
    let account = super::accounts::by_id(tx, id)?.ok_or(StoreError::NotFound)?;
    ensure_another_admin(tx, &account)?;
    let stranded = tx.query_opt(
        "SELECT w.name FROM workspaces w
         JOIN members mine ON mine.workspace_id = w.id
                           AND mine.account_id = $1 AND mine.role = 'admin'
         WHERE NOT EXISTS (SELECT 1 FROM members m
                           WHERE m.workspace_id = w.id AND m.account_id <> $1
                             AND m.role = 'admin')
           AND EXISTS (SELECT 1 FROM members m
                       WHERE m.workspace_id = w.id AND m.account_id <> $1)
         ORDER BY w.name LIMIT 1",
        &[&id],
    )?;
    if let Some(row) = stranded {
        return Err(StoreError::OnlyWorkspaceAdmin(row.try_get(0)?));
    }
    let workspaces: Vec<Id<Workspace>> = tx
        .query(
            "SELECT workspace_id FROM members WHERE account_id = $1",
            &[&id],
        )?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    // Sessions, memberships and tokens go with it (ON DELETE CASCADE).
    tx.execute("DELETE FROM accounts WHERE id = $1", &[&id])?;
    // A workspace no one is left in could never be reached again.
    let mut removed = 0;
    for workspace in workspaces {
        removed += tx.execute(
            "DELETE FROM workspaces
             WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM members WHERE workspace_id = $1)",
            &[&workspace],
        )?;
    }
    let change = Change::new(
        "account.delete",
        None,
        Target::new("account", id, account.email.clone()),
    )
    .with("workspaces_removed", removed);
    audit::record(tx, by, &change)
}

pub fn reset_password(
    tx: &mut impl GenericClient,
    email: &str,
    hash: &str,
    now: Timestamp,
    by: &Actor,
) -> Result<Account> {
    let account = super::accounts::by_email(tx, email)?.ok_or(StoreError::NoSuchAccount)?;
    tx.execute(
        "UPDATE accounts SET password_hash = $2 WHERE id = $1",
        &[&account.id, &hash],
    )?;
    let ended = tx.execute(
        "UPDATE sessions SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL",
        &[&account.id, &now],
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

pub fn token_counts(db: &mut impl GenericClient, now: Timestamp) -> Result<TokenCounts> {
    let row = db.query_one(
        "SELECT
             COUNT(*) FILTER (WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)),
             COUNT(*) FILTER (WHERE revoked_at IS NULL AND expires_at <= $1),
             COUNT(*) FILTER (WHERE revoked_at IS NOT NULL)
         FROM tokens",
        &[&now],
    )?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(TokenCounts {
        active: count(row.try_get(0)?),
        expired: count(row.try_get(1)?),
        revoked: count(row.try_get(2)?),
    })
}
