//! The database file (§9 "Files", §11 "Health"): who may read it, which
//! files tokenward agrees to open, and whether `/healthz` tells the truth
//! about it.
//!
//! Tests run as root in CI, and root ignores permission bits: a read-only
//! file is made by running the server as `nobody` on files owned by root.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use rusqlite::Connection;

/// `PRAGMA application_id` of a tokenward database: "twrd" in ASCII.
const APPLICATION_ID: i32 = 0x7477_7264;
/// The unprivileged user and group the server runs as when tests are root.
const NOBODY: u32 = 65534;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn application_id(db: &Path) -> i32 {
    Connection::open(db)
        .unwrap()
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .unwrap()
}

/// Every file in `dir` with its bytes, to show that nothing changed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, u32)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap(), mode(&path))
        })
        .collect();
    files.sort();
    files
}

/// Another program's SQLite database, in the default rollback journal mode
/// unless `wal`.
fn foreign_database(path: &Path, user_version: i64, wal: bool) {
    let db = Connection::open(path).unwrap();
    if wal {
        db.pragma_update(None, "journal_mode", "WAL").unwrap();
    }
    db.execute_batch(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         INSERT INTO notes (body) VALUES ('buy milk'), ('call home');",
    )
    .unwrap();
    db.pragma_update(None, "user_version", user_version)
        .unwrap();
    let journal: String = db
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal, if wal { "wal" } else { "delete" });
    drop(db);
    // Closing the last connection folds a WAL back in and removes it.
    assert!(!sidecar(path, "-wal").exists());
}

/// A `tokenward serve` on `db`, started by this file rather than by
/// `common::Server`, so that it may run as another user or fail to start.
struct Spawned {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a start ended: serving, or refused with its standard error.
enum Started {
    Serving(Spawned),
    Refused { status: ExitStatus, stderr: String },
}

impl Started {
    fn serving(self) -> Spawned {
        match self {
            Started::Serving(spawned) => spawned,
            Started::Refused { status, stderr } => {
                panic!("server refused to start ({status}): {stderr}")
            }
        }
    }

    /// The one line the server printed when it refused to start.
    fn refusal(self) -> String {
        match self {
            Started::Serving(spawned) => panic!("server started on {}", spawned.addr),
            Started::Refused { status, stderr } => {
                assert!(!status.success(), "exit status {status}");
                let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
                assert_eq!(lines.len(), 1, "not one line: {stderr}");
                lines[0].to_owned()
            }
        }
    }
}

/// Starts the server on `db`, as `uid` if given; its standard error goes to
/// `log`.
fn start(db: &Path, log: &Path, uid: Option<u32>) -> Started {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(db)
        .env("TOKENWARD_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file);
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let mut child = command.spawn().expect("the tokenward binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next().and_then(Result::ok));
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server neither started nor exited within 30 s");
    match line {
        Some(line) => {
            let addr = line
                .rsplit("http://")
                .next()
                .and_then(|a| a.trim().parse().ok())
                .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
            Started::Serving(Spawned { child, addr })
        }
        None => {
            let status = child.wait().unwrap();
            let stderr = std::fs::read_to_string(log).unwrap_or_default();
            Started::Refused { status, stderr }
        }
    }
}

/// One HTTP/1.1 request on its own connection: status and body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn healthz(addr: SocketAddr) -> (u16, Value) {
    http(addr, "GET", "/healthz", None)
}

fn sign_up_at(addr: SocketAddr) {
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1/accounts",
        Some(json!({"email": "admin@example.com", "password": PASSWORD})),
    );
    assert_eq!(status, 201, "{body}");
}

fn assert_unavailable((status, body): (u16, Value)) {
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable", "{body}");
    assert!(
        body["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
}

/// Folds the WAL back into the database file and removes `-wal` and `-shm`.
fn checkpoint(db: &Path) {
    Connection::open(db)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    assert!(!sidecar(db, "-wal").exists() && !sidecar(db, "-shm").exists());
}

#[test]
fn a_fresh_database_and_its_folder_are_private() {
    if common::skip_on_postgres("a_fresh_database_and_its_folder_are_private") {
        return;
    }
    let server = Server::start();
    // A write, so that the WAL and its index exist.
    sign_up(&server, "admin@example.com");
    let db = server.db_path();
    assert_eq!(
        mode(db.parent().unwrap()),
        0o700,
        "the folder tokenward made"
    );
    for file in [db.clone(), sidecar(&db, "-wal"), sidecar(&db, "-shm")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[test]
fn a_database_readable_by_others_is_made_private_with_a_warning() {
    if common::skip_on_postgres("a_database_readable_by_others_is_made_private_with_a_warning") {
        return;
    }
    let mut server = Server::start();
    sign_up(&server, "admin@example.com");
    server.terminate();
    let db = server.db_path();
    for file in [db.clone(), sidecar(&db, "-wal"), sidecar(&db, "-shm")] {
        if file.exists() {
            chmod(&file, 0o644);
        }
    }

    server.restart();
    assert_eq!(mode(&db), 0o600);
    for file in [sidecar(&db, "-wal"), sidecar(&db, "-shm")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    let shown = db.display().to_string();
    let warned = eventually(Duration::from_secs(5), || {
        server
            .log()
            .lines()
            .any(|l| l.contains(&shown) && l.contains("readable by other users"))
    });
    assert!(warned, "no warning naming {shown}:\n{}", server.log());
}

#[test]
fn a_read_only_database_is_refused_at_start() {
    if common::skip_on_postgres("a_read_only_database_is_refused_at_start") {
        return;
    }
    let dir = TempDir::new();
    let folder = dir.path().join("data");
    let db = folder.join("tokenward.db");
    {
        let server = start(&db, &dir.path().join("first.log"), None).serving();
        sign_up_at(server.addr);
    }
    checkpoint(&db);
    // The folder stays writable, so SQLite could make its `-wal` and `-shm`
    // beside a file it may only read: the case that used to start.
    chmod(&folder, 0o777);
    let uid = if is_root() {
        chmod(&db, 0o644);
        Some(NOBODY)
    } else {
        chmod(&db, 0o444);
        None
    };

    let line = start(&db, &dir.path().join("refused.log"), uid).refusal();
    assert!(line.contains("read-only"), "{line}");
    assert!(line.contains(&db.display().to_string()), "{line}");
}

#[test]
fn a_database_made_read_only_while_running_is_unhealthy() {
    let dir = TempDir::new();
    let db = dir.path().join("data").join("tokenward.db");
    let log = dir.path().join("server.log");
    let uid = is_root().then(|| {
        std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();
        NOBODY
    });
    let server = start(&db, &log, uid).serving();
    sign_up_at(server.addr);
    assert_eq!(healthz(server.addr).0, 200);

    chmod(&db, 0o444);
    assert_unavailable(healthz(server.addr));
}

#[test]
fn a_database_deleted_or_replaced_while_running_is_unhealthy() {
    if common::skip_on_postgres("a_database_deleted_or_replaced_while_running_is_unhealthy") {
        return;
    }
    let server = Server::start();
    sign_up(&server, "admin@example.com");
    let (status, body) = healthz(server.addr);
    assert_eq!((status, body), (200, json!({"status": "ok"})));

    let db = server.db_path();
    let kept = server.dir.path().join("kept.db");
    std::fs::copy(&db, &kept).unwrap();
    std::fs::remove_file(&db).unwrap();
    assert_unavailable(healthz(server.addr));

    // A file at the same path is still not the one tokenward opened.
    std::fs::copy(&kept, &db).unwrap();
    assert_unavailable(healthz(server.addr));
}

#[test]
fn another_applications_database_is_refused_and_left_as_it_was() {
    for (user_version, wal) in [(3, false), (0, false), (0, true)] {
        let dir = TempDir::new();
        let db = dir.path().join("notes.db");
        foreign_database(&db, user_version, wal);
        let before = snapshot(dir.path());

        let line = start(&db, &dir.path().join("server.log"), None).refusal();
        assert!(line.contains(&db.display().to_string()), "{line}");
        assert!(line.contains("not a tokenward database"), "{line}");
        assert!(!line.contains("newer tokenward"), "{line}");

        let mut after = snapshot(dir.path());
        after.retain(|(name, ..)| name != "server.log");
        assert_eq!(before, after, "user_version {user_version}, WAL {wal}");
    }
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_as_it_was() {
    let dir = TempDir::new();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "These are my notes.\nNothing to see here.\n").unwrap();
    chmod(&path, 0o644);
    let before = snapshot(dir.path());

    let line = start(&path, &dir.path().join("server.log"), None).refusal();
    assert!(line.contains(&path.display().to_string()), "{line}");
    assert!(line.contains("not a SQLite database"), "{line}");

    let mut after = snapshot(dir.path());
    after.retain(|(name, ..)| name != "server.log");
    assert_eq!(before, after);
}

#[test]
fn an_empty_file_becomes_a_tokenward_database() {
    if common::skip_on_postgres("an_empty_file_becomes_a_tokenward_database") {
        return;
    }
    let dir = TempDir::new();
    let db = dir.path().join("tokenward.db");
    std::fs::write(&db, b"").unwrap();

    let server = start(&db, &dir.path().join("server.log"), None).serving();
    sign_up_at(server.addr);
    assert_eq!(application_id(&db), APPLICATION_ID);
}

#[test]
fn a_tokenward_database_from_before_the_mark_is_accepted_and_marked() {
    if common::skip_on_postgres("a_tokenward_database_from_before_the_mark_is_accepted_and_marked")
    {
        return;
    }
    let mut server = Server::start();
    sign_up(&server, "admin@example.com");
    server.terminate();
    let db = Connection::open(server.db_path()).unwrap();
    db.pragma_update(None, "application_id", 0).unwrap();
    drop(db);
    assert_eq!(application_id(&server.db_path()), 0);

    server.restart();
    assert_eq!(
        sign_in(&server, "admin@example.com", PASSWORD).status,
        201,
        "the accounts are still there"
    );
    assert_eq!(application_id(&server.db_path()), APPLICATION_ID);
}
