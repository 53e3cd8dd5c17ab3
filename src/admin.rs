//! Command-line administration, working on the database directly.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::auth::password::{Password, Passwords};
use crate::core::audit::Actor;
use crate::core::ids::Id;
use crate::core::model::Account;
use crate::core::time::Timestamp;
use crate::core::validate;
use crate::store::{Backend, NewAccount, SignUpRules, Store, StoreError};

/// Creates an account as sign-up would, without the sign-up policy: whoever
/// can write the database file is trusted.
pub async fn create_account(db: &Path, email: &str, password: String) -> anyhow::Result<Account> {
    let email = match validate::email(email) {
        Ok(email) => email,
        Err(problem) => bail!("--email {problem}"),
    };
    if let Err(problem) = validate::password(&password) {
        bail!("the password {problem}");
    }
    let store = open(db).await?;
    let hash = hash(password).await?;
    let local = email
        .split('@')
        .next()
        .unwrap_or(&email)
        .chars()
        .take(80)
        .collect::<String>();
    let created = store
        .create_account(
            NewAccount {
                id: Id::new(),
                workspace_name: format!("{local}'s workspace"),
                email,
                password_hash: hash,
                now: Timestamp::now(),
                allowed: SignUpRules {
                    by: None,
                    setup_code_matched: None,
                    from_cli: true,
                },
            },
            Actor::cli(),
        )
        .await;
    match created {
        Ok((account, _)) => Ok(account),
        Err(StoreError::EmailTaken) => bail!("an account with this email already exists"),
        Err(err) => Err(err).context("while creating the account"),
    }
}

/// Sets a new password and ends every session of the account.
pub async fn reset_password(db: &Path, email: &str, password: String) -> anyhow::Result<Account> {
    let email = email.trim().to_lowercase();
    if let Err(problem) = validate::password(&password) {
        bail!("the password {problem}");
    }
    let store = open_existing(db).await?;
    let hash = hash(password).await?;
    match store
        .reset_password(email, hash, Timestamp::now(), Actor::cli())
        .await
    {
        Ok(account) => Ok(account),
        Err(StoreError::NoSuchAccount) => bail!("no account has this email"),
        Err(err) => Err(err).context("while setting the password"),
    }
}

/// Disables (ending its sessions) or enables the account with this email.
pub async fn set_disabled(db: &Path, email: &str, disabled: bool) -> anyhow::Result<Account> {
    let email = email.trim().to_lowercase();
    let store = open_existing(db).await?;
    let Some((account, _)) = store.credentials(email).await? else {
        bail!("no account has this email");
    };
    match store
        .set_account_disabled(account.id, disabled, Timestamp::now(), Actor::cli())
        .await
    {
        Ok(summary) => Ok(summary.account),
        Err(StoreError::LastInstanceAdmin) => bail!(
            "this is the last enabled instance admin, so it stays enabled: \
             an instance needs one to manage accounts and settings"
        ),
        Err(err) => Err(err).context("while changing the account"),
    }
}

async fn open(db: &Path) -> anyhow::Result<Arc<dyn Store>> {
    let path = db.to_owned();
    let backend = tokio::task::spawn_blocking(move || Backend::open(&path))
        .await
        .context("while opening the database")??;
    Ok(backend.store())
}

/// Opens a database that must already exist: changing an account in a new,
/// empty one would only create a file by mistake.
async fn open_existing(db: &Path) -> anyhow::Result<Arc<dyn Store>> {
    let url = db.to_str().is_some_and(crate::store::postgres::is_url);
    if !url && !db.exists() {
        bail!(
            "the database {} does not exist (set --db or TOKENWARD_DB)",
            db.display()
        );
    }
    open(db).await
}

async fn hash(password: String) -> anyhow::Result<String> {
    Passwords::new(1)
        .hash(Password::new(password))
        .await
        .context("while hashing the password")
}
