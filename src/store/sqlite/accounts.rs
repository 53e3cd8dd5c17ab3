//! Accounts and their sessions.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{audit, settings, workspaces};
use crate::core::audit::{Actor, Change, Target};
use crate::core::ids::Id;
use crate::core::model::{Account, Session, Workspace};
use crate::core::time::Timestamp;
use crate::store::{NewAccount, Result, StoreError};

/// The columns `account_from_row` reads, from a table aliased `a`.
pub(super) const ACCOUNT_COLUMNS: &str =
    "a.id, a.email, a.instance_admin, a.disabled_at IS NOT NULL, a.created_at";

pub(super) fn account_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<Account> {
    Ok(Account {
        id: row.get(at)?,
        email: row.get(at + 1)?,
        instance_admin: row.get(at + 2)?,
        disabled: row.get(at + 3)?,
        created_at: row.get(at + 4)?,
    })
}

pub fn has_accounts(conn: &Connection) -> Result<bool> {
    Ok(
        conn.query_row("SELECT EXISTS (SELECT 1 FROM accounts)", [], |row| {
            row.get(0)
        })?,
    )
}

pub fn create(tx: &Transaction, new: &NewAccount, by: &Actor) -> Result<(Account, Workspace)> {
    let first = !has_accounts(tx)?;
    let rules = &new.allowed;
    if !rules.from_cli {
        if first {
            if rules.setup_code_matched == Some(false) {
                return Err(StoreError::SetupCodeNeeded);
            }
        } else if !settings::get(tx)?.allow_signup && !is_enabled_admin(tx, rules.by)? {
            return Err(StoreError::SignUpClosed);
        }
    }
    let taken: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM accounts WHERE email = ?1)",
        [&new.email],
        |row| row.get(0),
    )?;
    if taken {
        return Err(StoreError::EmailTaken);
    }
    tx.execute(
        "INSERT INTO accounts (id, email, password_hash, instance_admin, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![new.id, new.email, new.password_hash, first, new.now],
    )?;
    let workspace = workspaces::create(tx, new.id, &new.workspace_name, None, new.now)?;
    let account = Account {
        id: new.id,
        email: new.email.clone(),
        instance_admin: first,
        disabled: false,
        created_at: new.now,
    };
    let change = Change::new("account.create", None, account_target(&account))
        .with("instance_admin", first)
        .with("workspace_id", workspace.id.to_string());
    audit::record(tx, by, &change)?;
    Ok((account, workspace))
}

fn is_enabled_admin(conn: &Connection, id: Option<Id<Account>>) -> Result<bool> {
    let Some(id) = id else { return Ok(false) };
    Ok(conn
        .query_row(
            "SELECT instance_admin AND disabled_at IS NULL FROM accounts WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(false))
}

pub fn by_id(conn: &Connection, id: Id<Account>) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], |row| account_from_row(row, 0))
        .optional()?)
}

pub fn credentials(conn: &Connection, email: &str) -> Result<Option<(Account, String)>> {
    let sql =
        format!("SELECT {ACCOUNT_COLUMNS}, a.password_hash FROM accounts a WHERE a.email = ?1");
    Ok(conn
        .query_row(&sql, [email], |row| {
            Ok((account_from_row(row, 0)?, row.get(5)?))
        })
        .optional()?)
}

fn account_target(account: &Account) -> Target {
    Target::new("account", account.id, account.email.clone())
}

fn existing(conn: &Connection, id: Id<Account>) -> Result<Account> {
    by_id(conn, id)?.ok_or(StoreError::NotFound)
}

pub fn change_password(
    tx: &Transaction,
    id: Id<Account>,
    hash: &str,
    keep: Id<Session>,
    now: Timestamp,
    by: &Actor,
) -> Result<()> {
    let changed = tx.execute(
        "UPDATE accounts SET password_hash = ?2 WHERE id = ?1",
        params![id, hash],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    let ended = tx.execute(
        "UPDATE sessions SET revoked_at = ?3
         WHERE account_id = ?1 AND id <> ?2 AND revoked_at IS NULL",
        params![id, keep, now],
    )?;
    let change = Change::new("account.password", None, account_target(&existing(tx, id)?))
        .with("sessions_ended", ended);
    audit::record(tx, by, &change)
}

pub fn create_session(tx: &Transaction, session: &Session, by: &Actor) -> Result<()> {
    tx.execute(
        "INSERT INTO sessions (id, account_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            session.id,
            session.account_id,
            session.created_at,
            session.expires_at
        ],
    )?;
    let account = existing(tx, session.account_id)?;
    audit::record(
        tx,
        by,
        &Change::new("session.create", None, account_target(&account)),
    )
}

/// A failed sign-in leaves only its audit entry. An email that names no
/// account is not recorded: people type passwords into email fields.
pub fn record_sign_in_failure(tx: &Transaction, email: &str, by: &Actor) -> Result<()> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.email = ?1");
    let account = tx
        .query_row(&sql, [email], |row| account_from_row(row, 0))
        .optional()?;
    let target = match &account {
        Some(account) => account_target(account),
        None => Target {
            kind: "account",
            id: None,
            name: None,
        },
    };
    let change = Change::new("session.fail", None, target).with("known_account", account.is_some());
    audit::record(tx, by, &change)
}

pub fn live_session(
    conn: &Connection,
    id: Id<Session>,
    now: Timestamp,
) -> Result<Option<(Session, Account)>> {
    let sql = format!(
        "SELECT s.id, s.account_id, s.created_at, s.expires_at, {ACCOUNT_COLUMNS}
         FROM sessions s JOIN accounts a ON a.id = s.account_id
         WHERE s.id = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![id, now], |row| {
            let session = Session {
                id: row.get(0)?,
                account_id: row.get(1)?,
                created_at: row.get(2)?,
                expires_at: row.get(3)?,
            };
            Ok((session, account_from_row(row, 4)?))
        })
        .optional()?)
}

pub fn revoke_session(tx: &Transaction, id: Id<Session>, now: Timestamp, by: &Actor) -> Result<()> {
    let ended = tx.execute(
        "UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )?;
    if ended == 0 {
        return Ok(());
    }
    let account: Id<Account> = tx.query_row(
        "SELECT account_id FROM sessions WHERE id = ?1",
        [id],
        |row| row.get(0),
    )?;
    audit::record(
        tx,
        by,
        &Change::new(
            "session.revoke",
            None,
            account_target(&existing(tx, account)?),
        ),
    )
}
