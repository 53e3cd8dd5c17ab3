//! Numbered schema migrations for PostgreSQL, embedded in the binary and
//! tracked in `schema_migrations`. Nodes that start together take turns
//! through a session advisory lock; each migration runs in its own
//! transaction, and a database written by a newer tokenward is refused.

use postgres::Client;

use super::OpenError;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_attempts.sql"),
];

/// The advisory lock key migrations run under ("twmigrat" in ASCII).
const MIGRATION_LOCK: i64 = 0x7477_6d69_6772_6174;

pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the schema up to date; returns how many migrations ran.
pub fn apply(client: &mut Client) -> Result<usize, OpenError> {
    let failed = |step: &'static str| {
        move |source: postgres::Error| OpenError::Query {
            step,
            reason: super::reason(&source),
        }
    };
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .map_err(failed("waiting for the migration lock"))?;
    let applied = apply_locked(client);
    // The lock also goes with the connection; unlocking is for tidiness.
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    applied
}

fn apply_locked(client: &mut Client) -> Result<usize, OpenError> {
    let failed = |step: &'static str| {
        move |source: postgres::Error| OpenError::Query {
            step,
            reason: super::reason(&source),
        }
    };
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .map_err(failed("creating schema_migrations"))?;
    let found: i64 = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .and_then(|row| row.try_get(0))
        .map_err(failed("reading the schema version"))?;
    if found > latest_version() {
        return Err(OpenError::NewerSchema {
            found,
            known: latest_version(),
        });
    }
    let mut applied = 0;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let number = index as i64 + 1;
        if number <= found {
            continue;
        }
        let mut tx = client
            .transaction()
            .map_err(failed("starting a migration"))?;
        tx.batch_execute(sql)
            .map_err(|source| OpenError::Migration {
                number,
                reason: super::reason(&source),
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&number],
        )
        .map_err(failed("recording a migration"))?;
        tx.commit().map_err(failed("committing a migration"))?;
        applied += 1;
    }
    Ok(applied)
}
