//! Numbered schema migrations, embedded in the binary and tracked by
//! `PRAGMA user_version`. Each runs in its own transaction; a database
//! written by a newer tokenward is refused rather than guessed at.

use rusqlite::{Connection, TransactionBehavior};

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_builtin_scopes.sql"),
    include_str!("migrations/0003_routes.sql"),
    include_str!("migrations/0004_audit.sql"),
];

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the database has schema version {found}, but this tokenward knows only up to {known}: \
         it was written by a newer tokenward. Run that version, or restore a backup made \
         before the upgrade."
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("migration {number} failed: {source}")]
    Failed {
        number: usize,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the schema up to date; returns how many migrations ran.
pub fn apply(conn: &mut Connection) -> Result<usize, MigrationError> {
    let mut applied = 0;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let number = index + 1;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read inside the write lock, so two processes starting together
        // cannot both run the same migration.
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > latest_version() {
            return Err(MigrationError::NewerSchema {
                found: version,
                known: latest_version(),
            });
        }
        if version >= number as i64 {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|source| MigrationError::Failed { number, source })?;
        tx.pragma_update(None, "user_version", number as i64)?;
        tx.commit()?;
        applied += 1;
    }
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > latest_version() {
        return Err(MigrationError::NewerSchema {
            found: version,
            known: latest_version(),
        });
    }
    Ok(applied)
}
