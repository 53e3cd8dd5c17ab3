//! Accounts and their sessions.

use postgres::GenericClient;
use postgres::Row;

use super::{audit, settings, workspaces};
use crate::core::audit::{Actor, Change, Target};
use crate::core::ids::Id;
use crate::core::model::{Account, Session, Workspace};
use crate::core::time::Timestamp;
use crate::store::{NewAccount, Result, StoreError};

/// The columns `account_from_row` reads, from a table aliased `a`.
pub(super) const ACCOUNT_COLUMNS: &str =
    "a.id, a.email, a.instance_admin, a.disabled_at IS NOT NULL, a.created_at";

pub(super) fn account_from_row(row: &Row, at: usize) -> Result<Account> {
    Ok(Account {
        id: row.try_get(at)?,
        email: row.try_get(at + 1)?,
        instance_admin: row.try_get(at + 2)?,
        disabled: row.try_get(at + 3)?,
        created_at: row.try_get(at + 4)?,
    })
}

pub fn has_accounts(db: &mut impl GenericClient) -> Result<bool> {
    Ok(db
        .query_one("SELECT EXISTS (SELECT 1 FROM accounts)", &[])?
        .try_get(0)?)
}

/// Runs in a serializable transaction: two first sign-ups on two nodes
/// cannot both see an empty instance (one is retried and sees the other).
pub fn create(
    tx: &mut impl GenericClient,
    new: &NewAccount,
    by: &Actor,
) -> Result<(Account, Workspace)> {
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
    let taken: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE email = $1)",
            &[&new.email],
        )?
        .try_get(0)?;
    if taken {
        return Err(StoreError::EmailTaken);
    }
    tx.execute(
        "INSERT INTO accounts (id, email, password_hash, instance_admin, created_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[&new.id, &new.email, &new.password_hash, &first, &new.now],
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

fn is_enabled_admin(db: &mut impl GenericClient, id: Option<Id<Account>>) -> Result<bool> {
    let Some(id) = id else { return Ok(false) };
    match db.query_opt(
        "SELECT instance_admin AND disabled_at IS NULL FROM accounts WHERE id = $1",
        &[&id],
    )? {
        Some(row) => Ok(row.try_get(0)?),
        None => Ok(false),
    }
}

pub fn by_id(db: &mut impl GenericClient, id: Id<Account>) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = $1");
    db.query_opt(&sql, &[&id])?
        .map(|row| account_from_row(&row, 0))
        .transpose()
}

pub fn by_email(db: &mut impl GenericClient, email: &str) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.email = $1");
    db.query_opt(&sql, &[&email])?
        .map(|row| account_from_row(&row, 0))
        .transpose()
}

pub fn credentials(db: &mut impl GenericClient, email: &str) -> Result<Option<(Account, String)>> {
    let sql =
        format!("SELECT {ACCOUNT_COLUMNS}, a.password_hash FROM accounts a WHERE a.email = $1");
    match db.query_opt(&sql, &[&email])? {
        Some(row) => Ok(Some((account_from_row(&row, 0)?, row.try_get(5)?))),
        None => Ok(None),
    }
}

fn account_target(account: &Account) -> Target {
    Target::new("account", account.id, account.email.clone())
}

fn existing(db: &mut impl GenericClient, id: Id<Account>) -> Result<Account> {
    by_id(db, id)?.ok_or(StoreError::NotFound)
}

pub fn change_password(
    tx: &mut impl GenericClient,
    id: Id<Account>,
    hash: &str,
    keep: Id<Session>,
    now: Timestamp,
    by: &Actor,
) -> Result<()> {
    let changed = tx.execute(
        "UPDATE accounts SET password_hash = $2 WHERE id = $1",
        &[&id, &hash],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    let ended = tx.execute(
        "UPDATE sessions SET revoked_at = $3
         WHERE account_id = $1 AND id <> $2 AND revoked_at IS NULL",
        &[&id, &keep, &now],
    )?;
    let change = Change::new("account.password", None, account_target(&existing(tx, id)?))
        .with("sessions_ended", ended);
    audit::record(tx, by, &change)
}

pub fn create_session(tx: &mut impl GenericClient, session: &Session, by: &Actor) -> Result<()> {
    tx.execute(
        "INSERT INTO sessions (id, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        &[
            &session.id,
            &session.account_id,
            &session.created_at,
            &session.expires_at,
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
pub fn record_sign_in_failure(tx: &mut impl GenericClient, email: &str, by: &Actor) -> Result<()> {
    let account = by_email(tx, email)?;
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
    db: &mut impl GenericClient,
    id: Id<Session>,
    now: Timestamp,
) -> Result<Option<(Session, Account)>> {
    let sql = format!(
        "SELECT s.id, s.account_id, s.created_at, s.expires_at, {ACCOUNT_COLUMNS}
         FROM sessions s JOIN accounts a ON a.id = s.account_id
         WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2"
    );
    match db.query_opt(&sql, &[&id, &now])? {
        Some(row) => {
            let session = Session {
                id: row.try_get(0)?,
                account_id: row.try_get(1)?,
                created_at: row.try_get(2)?,
                expires_at: row.try_get(3)?,
            };
            Ok(Some((session, account_from_row(&row, 4)?)))
        }
        None => Ok(None),
    }
}

pub fn revoke_session(
    tx: &mut impl GenericClient,
    id: Id<Session>,
    now: Timestamp,
    by: &Actor,
) -> Result<()> {
    let ended = tx.execute(
        "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        &[&id, &now],
    )?;
    if ended == 0 {
        return Ok(());
    }
    let account: Id<Account> = tx
        .query_one("SELECT account_id FROM sessions WHERE id = $1", &[&id])?
        .try_get(0)?;
    let target = account_target(&existing(tx, account)?);
    audit::record(tx, by, &Change::new("session.revoke", None, target))
}
