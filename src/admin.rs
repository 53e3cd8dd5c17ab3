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
use crate::store::{NewAccount, SignUpRules, SqliteStore, Store, StoreError};

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
    let path = db.to_owned();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
        .await
        .context("while opening the database")??;
    let store: Arc<dyn Store> = Arc::new(store);
    let hash = Passwords::new(1)
        .hash(Password::new(password))
        .await
        .context("while hashing the password")?;
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
