//! The database file itself (§9 "Files", §11 "Health"): made private to
//! the user tokenward runs as, identified before anything in it changes,
//! and watched while the server runs.
//!
//! The file holds the session signing key, so whoever can read it can sign
//! in as anyone. And `--db` may point at anything: a file that is not
//! tokenward's is refused without a byte of it changing.

use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// `PRAGMA application_id` of every tokenward database: "twrd" in ASCII.
/// `file(1)` and other tools read it from the header at offset 68.
pub const APPLICATION_ID: i32 = 0x7477_7264;

/// Tables every tokenward schema has had since the first migration: with a
/// `user_version`, they identify a database made before the mark existed.
const OUR_TABLES: [&str; 4] = ["meta", "settings", "accounts", "tokens"];

/// The first 16 bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Where to turn when a file is refused.
const USE_ANOTHER: &str = "give --db (TOKENWARD_DB) a new file or a tokenward database";

/// Why a file was not opened: one sentence naming it and what to do. A
/// cause is part of the text, not a chained `source`, so that the command
/// line (which prints the chain) shows it once.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot create the folder {path}: {error}")]
    Folder { path: String, error: std::io::Error },
    #[error("cannot create the database {path}: {error}")]
    Create { path: String, error: std::io::Error },
    #[error("cannot read the database {path}: {error}")]
    Unreadable { path: String, error: std::io::Error },
    #[error(
        "the database {path} cannot be read by this user: make it readable and writable by \
         the user tokenward runs as"
    )]
    NoAccess { path: String },
    #[error(
        "the database {path} is read-only for this user: make it writable by the user \
         tokenward runs as"
    )]
    ReadOnly { path: String },
    #[error(
        "the folder of the database {path} is read-only for this user, and SQLite needs to \
         create files beside the database: make the folder writable by the user tokenward runs as"
    )]
    FolderReadOnly { path: String },
    #[error(
        "the database {path} is readable by other users and could not be made private \
         ({error}): run tokenward as the file's owner, or chmod 600 it"
    )]
    NotPrivate { path: String, error: std::io::Error },
    #[error("{path} is not a SQLite database and was left untouched: {USE_ANOTHER}")]
    NotSqlite { path: String },
    #[error(
        "{path} is not a tokenward database but another application's SQLite file \
         ({evidence}), and was left untouched: {USE_ANOTHER}"
    )]
    Foreign { path: String, evidence: String },
    #[error("cannot read the database {path}: {error}")]
    Inspect {
        path: String,
        error: rusqlite::Error,
    },
}

/// What the file at the database path turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Empty, or a SQLite file with no schema: a new database, to be marked.
    New,
    /// Marked as tokenward's, at this schema version.
    Ours { user_version: i64 },
    /// tokenward's from before databases were marked: to be marked.
    Unmarked,
}

/// Creates the folder (`0700`) and the file (`0600`) if they do not exist.
/// SQLite gives `-wal` and `-shm` the mode of the database file, so they
/// are private from their first byte too.
pub fn create(path: &Path) -> Result<(), FileError> {
    let folder = folder(path);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&folder)
        .map_err(|error| FileError::Folder {
            path: folder.display().to_string(),
            error,
        })?;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(FileError::Create {
            path: path.display().to_string(),
            error,
        }),
    }
}

/// Refuses a database this process could read but not write: SQLite would
/// open it read-only without a word, and every write would fail.
pub fn check_writable(path: &Path) -> Result<(), FileError> {
    let shown = path.display().to_string();
    if !allowed(path, libc::R_OK) {
        return Err(FileError::NoAccess { path: shown });
    }
    if !writable(path) {
        return Err(FileError::ReadOnly { path: shown });
    }
    if !writable(&folder(path)) {
        return Err(FileError::FolderReadOnly { path: shown });
    }
    Ok(())
}

/// Tells what the file is without changing it: the header is checked
/// first, then a read-only connection reads the mark and the schema.
pub fn identify(path: &Path) -> Result<Found, FileError> {
    let shown = || path.display().to_string();
    let unreadable = |error| FileError::Unreadable {
        path: shown(),
        error,
    };
    let mut header = Vec::with_capacity(SQLITE_MAGIC.len());
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(SQLITE_MAGIC.len() as u64)
                .read_to_end(&mut header)
        })
        .map_err(unreadable)?;
    if header.is_empty() {
        return Ok(Found::New);
    }
    if header != SQLITE_MAGIC {
        return Err(FileError::NotSqlite { path: shown() });
    }

    // A read-only connection to a WAL file makes `-wal` and `-shm` beside
    // it; if the file is refused, those it made are removed again.
    let made: Vec<PathBuf> = [sidecar(path, "-wal"), sidecar(path, "-shm")]
        .into_iter()
        .filter(|file| !file.exists())
        .collect();
    let read = read_mark(path).map_err(|error| FileError::Inspect {
        path: shown(),
        error,
    });
    let verdict = read.and_then(|(application_id, user_version, tables)| {
        judge(application_id, user_version, &tables).map_err(|evidence| FileError::Foreign {
            path: shown(),
            evidence,
        })
    });
    if verdict.is_err() {
        for file in made {
            let _ = std::fs::remove_file(file);
        }
    }
    verdict
}

/// The mark, the schema version and the names in the schema, read on a
/// read-only connection closed before returning.
fn read_mark(path: &Path) -> rusqlite::Result<(i32, i64, Vec<String>)> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // Another tokenward may be migrating it right now.
    conn.busy_timeout(Duration::from_secs(5))?;
    let application_id = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
    let user_version = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let names = conn
        .prepare("SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok((application_id, user_version, names))
}

/// The decision behind `identify`, on what it read: the found kind, or
/// why the file is another application's.
fn judge(application_id: i32, user_version: i64, tables: &[String]) -> Result<Found, String> {
    if application_id == APPLICATION_ID {
        return Ok(Found::Ours { user_version });
    }
    if application_id != 0 {
        return Err(format!("application_id {:#010x}", application_id as u32));
    }
    if tables.is_empty() && user_version == 0 {
        return Ok(Found::New);
    }
    let ours = OUR_TABLES
        .iter()
        .all(|table| tables.iter().any(|t| t == table));
    if ours && user_version >= 1 {
        return Ok(Found::Unmarked);
    }
    let mut shown: Vec<&str> = tables.iter().map(String::as_str).take(3).collect();
    if tables.len() > shown.len() {
        shown.push("…");
    }
    Err(if tables.is_empty() {
        format!("no tables, user_version {user_version}")
    } else {
        format!("tables: {}", shown.join(", "))
    })
}

/// Makes the database and its `-wal` and `-shm` `0600` if others may read
/// or write them, with a warning naming each file changed.
pub fn make_private(path: &Path) -> Result<(), FileError> {
    for file in [
        path.to_owned(),
        sidecar(path, "-wal"),
        sidecar(path, "-shm"),
    ] {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            continue;
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(
            |error| FileError::NotPrivate {
                path: file.display().to_string(),
                error,
            },
        )?;
        tracing::warn!(
            "the database file {} was readable by other users (mode {mode:04o}); \
             made it 0600, as it holds the session signing key",
            file.display()
        );
    }
    Ok(())
}

/// The file the server opened, to tell later whether it is still there.
#[derive(Debug, Clone)]
pub struct Opened {
    path: PathBuf,
    device: u64,
    inode: u64,
}

impl Opened {
    /// Records the file now at `path`: call it once SQLite has it open.
    pub fn record(path: &Path) -> std::io::Result<Opened> {
        let meta = std::fs::metadata(path)?;
        Ok(Opened {
            path: path.to_owned(),
            device: meta.dev(),
            inode: meta.ino(),
        })
    }

    /// Why the file can no longer be used as opened, if it cannot: a few
    /// system calls, no write. The reason names no path: it is shown
    /// without a login.
    pub fn problem(&self) -> Option<&'static str> {
        match std::fs::metadata(&self.path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Some("the database file was deleted since start-up")
            }
            Err(_) => Some("the database file cannot be read"),
            Ok(meta) if (meta.dev(), meta.ino()) != (self.device, self.inode) => {
                Some("the database file was replaced since start-up")
            }
            Ok(_) if !writable(&self.path) => Some("the database file is read-only"),
            Ok(_) if !writable(&folder(&self.path)) => Some("the database folder is read-only"),
            Ok(_) => None,
        }
    }
}

/// The folder holding `path` (`.` for a bare file name).
fn folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether this process may write `path`, by its effective user and
/// groups, and the file system is not mounted read-only.
fn writable(path: &Path) -> bool {
    allowed(path, libc::W_OK)
}

/// `access(2)` by the effective user and groups: `how` is `R_OK`, `W_OK`…
fn allowed(path: &Path, how: libc::c_int) -> bool {
    let Ok(name) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `name` is a valid NUL-terminated string that outlives the
    // call; faccessat only reads it.
    unsafe { libc::faccessat(libc::AT_FDCWD, name.as_ptr(), how, libc::AT_EACCESS) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_mark_is_twrd_in_ascii() {
        assert_eq!(APPLICATION_ID.to_be_bytes(), *b"twrd");
    }

    #[test]
    fn marked_files_are_ours_whatever_their_schema() {
        assert_eq!(
            judge(APPLICATION_ID, 7, &[]),
            Ok(Found::Ours { user_version: 7 })
        );
    }

    #[test]
    fn a_file_with_no_schema_is_new() {
        assert_eq!(judge(0, 0, &[]), Ok(Found::New));
    }

    #[test]
    fn an_unmarked_tokenward_schema_is_ours_from_before_the_mark() {
        let tables = names(&["meta", "settings", "accounts", "sessions", "tokens"]);
        assert_eq!(judge(0, 2, &tables), Ok(Found::Unmarked));
    }

    #[test]
    fn anything_else_is_another_applications() {
        let notes = names(&["notes"]);
        assert_eq!(judge(0, 3, &notes), Err("tables: notes".into()));
        assert_eq!(judge(0, 0, &notes), Err("tables: notes".into()));
        assert!(judge(0, 5, &[]).is_err());
        assert!(
            judge(0x0f12_3456, 1, &[])
                .unwrap_err()
                .contains("0x0f123456")
        );
        // Our tables without a schema version were not made by migrations.
        let ours = names(&["meta", "settings", "accounts", "tokens"]);
        assert!(judge(0, 0, &ours).is_err());
        // A few of our names are not enough.
        assert!(judge(0, 1, &names(&["meta", "settings"])).is_err());
    }
}
