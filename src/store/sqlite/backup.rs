//! Online backup and the integrity check (§11), for the command line. They
//! work on the file beside a running server, on connections of their own,
//! and never create a database that is not there or migrate one that is.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{BUSY_TIMEOUT_MS, SqliteStore, migrations};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the database {0} does not exist (set --db or TOKENWARD_DB)")]
    NoDatabase(String),
    #[error("{0} already exists: a backup never overwrites a file; choose another --out")]
    OutExists(String),
    #[error("the backup path {0} is not valid UTF-8; choose another --out")]
    OutName(String),
    // `cause`, not `source`: the message already says it, and anyhow's
    // chain would say it again.
    #[error("cannot create {path}: {cause}")]
    Create { path: String, cause: std::io::Error },
    #[error("cannot open the database {path}: {cause}")]
    Open {
        path: String,
        cause: rusqlite::Error,
    },
    #[error("the copy failed: {0}")]
    Copy(rusqlite::Error),
}

/// A backup that was written.
#[derive(Debug)]
pub struct Backup {
    pub bytes: u64,
    /// What the integrity check of the copy found; empty when it is sound.
    pub problems: Vec<String>,
}

/// What the integrity check found.
#[derive(Debug)]
pub struct Check {
    /// `PRAGMA user_version`, when it could be read.
    pub schema_version: Option<i64>,
    /// The newest schema this tokenward knows.
    pub known_version: i64,
    /// Empty when the database is sound.
    pub problems: Vec<String>,
}

/// An existing database, on a connection of its own.
fn open_existing(path: &Path) -> Result<Connection, BackupError> {
    let shown = path.display().to_string();
    if !path.exists() {
        return Err(BackupError::NoDatabase(shown));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|cause| BackupError::Open {
        path: shown.clone(),
        cause,
    })?;
    conn.busy_timeout(Duration::from_millis(u64::from(BUSY_TIMEOUT_MS)))
        .map_err(|cause| BackupError::Open { path: shown, cause })?;
    Ok(conn)
}

/// `integrity_check` and `foreign_key_check`; what keeps them from
/// running (a file that is not a database, a damaged header) is a problem
/// too.
fn problems(conn: &Connection) -> Vec<String> {
    let mut problems = Vec::new();
    let integrity = conn.prepare("PRAGMA integrity_check").and_then(|mut stmt| {
        stmt.query_map([], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<String>>>()
    });
    match integrity {
        Ok(rows) => problems.extend(rows.into_iter().filter(|row| row != "ok")),
        Err(err) => problems.push(err.to_string()),
    }
    let foreign_keys = conn
        .prepare("PRAGMA foreign_key_check")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| {
                Ok(format!(
                    "row {} of {} refers to a missing row of {}",
                    row.get::<_, Option<i64>>(1)?.unwrap_or_default(),
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(2)?
                ))
            })?
            .collect::<rusqlite::Result<Vec<String>>>()
        });
    match foreign_keys {
        Ok(rows) => problems.extend(rows),
        // Already reported by the integrity check.
        Err(_) if !problems.is_empty() => {}
        Err(err) => problems.push(err.to_string()),
    }
    problems
}

/// Flushes a file, and its folder so that its name survives a crash too.
fn sync(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

impl SqliteStore {
    /// Copies the database at `db` to a new file `out` with `VACUUM INTO`:
    /// one read transaction, so the copy is a consistent snapshot holding
    /// every write committed before it began, while the server goes on
    /// writing. `out` is created private (0600) before anything is written
    /// to it, and never overwritten. The copy is then checked.
    pub fn backup(db: &Path, out: &Path) -> Result<Backup, BackupError> {
        let source = open_existing(db)?;
        let shown = out.display().to_string();
        let target = out
            .to_str()
            .ok_or_else(|| BackupError::OutName(shown.clone()))?;
        // `create_new` refuses an existing file atomically; SQLite then
        // writes into the empty file, which keeps its mode.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .map_err(|cause| match cause.kind() {
                ErrorKind::AlreadyExists => BackupError::OutExists(shown.clone()),
                _ => BackupError::Create {
                    path: shown.clone(),
                    cause,
                },
            })?;
        if let Err(err) = source.execute("VACUUM INTO ?1", [target]) {
            // The empty or half-written file is ours: nothing else uses it.
            let _ = std::fs::remove_file(out);
            return Err(BackupError::Copy(err));
        }
        drop(source);
        sync(out).map_err(|cause| BackupError::Create { path: shown, cause })?;
        let problems = problems(&open_existing(out)?);
        let bytes = std::fs::metadata(out).map_or(0, |m| m.len());
        Ok(Backup { bytes, problems })
    }

    /// Runs the integrity and foreign-key checks on the database at `db`
    /// and reads its schema version, changing nothing.
    pub fn check(db: &Path) -> Result<Check, BackupError> {
        let conn = open_existing(db)?;
        let schema_version = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .ok();
        Ok(Check {
            schema_version,
            known_version: migrations::latest_version(),
            problems: problems(&conn),
        })
    }
}
