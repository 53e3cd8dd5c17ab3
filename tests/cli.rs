//! The command line: version, serve's flags and errors, and
//! `admin create-account`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

fn create_account(db: &std::path::Path, email: &str, password: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(["admin", "create-account", "--email", email])
        .env("TOKENWARD_DB", db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn version_is_printed() {
    let output = Command::new(BIN).arg("--version").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("tokenward {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn create_account_reads_the_password_from_stdin() {
    if common::skip_on_postgres("create_account_reads_the_password_from_stdin") {
        return;
    }
    let dir = TempDir::new();
    let db = dir.path().join("nested").join("tw.db");
    let first = create_account(&db, "Root@Example.com", PASSWORD);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("root@example.com"));
    assert!(String::from_utf8_lossy(&first.stdout).contains("instance admin"));

    let again = create_account(&db, "root@example.com", PASSWORD);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let short = create_account(&db, "other@example.com", "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 10"));

    let second = create_account(&db, "second@example.com", PASSWORD);
    assert!(second.status.success());
    assert!(!String::from_utf8_lossy(&second.stdout).contains("instance admin"));

    // The server signs the account in.
    let mut server = Server::start();
    server.kill_hard();
    std::fs::copy(&db, server.db_path()).unwrap();
    let _ = std::fs::remove_file(server.db_path().with_extension("db-wal"));
    let _ = std::fs::remove_file(server.db_path().with_extension("db-shm"));
    server.restart();
    let session = sign_in(&server, "root@example.com", PASSWORD).data(201);
    assert_eq!(session["account"]["instance_admin"], true);
}

#[test]
fn serve_reports_bad_flags_and_busy_ports_plainly() {
    let bad = Command::new(BIN)
        .args(["serve", "--addr", "nowhere"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--addr"));

    let server = Server::start();
    let dir = TempDir::new();
    let busy = Command::new(BIN)
        .args(["serve", "--addr", &server.addr.to_string(), "--db"])
        .arg(dir.path().join("tw.db"))
        .output()
        .unwrap();
    assert!(!busy.status.success());
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(stderr.contains("TOKENWARD_ADDR"), "{stderr}");
}
