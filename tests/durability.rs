//! Nothing acknowledged is lost: `kill -9`, graceful shutdown, restarts,
//! migrations, and the batched last-used flush.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use rusqlite::Connection;

#[test]
fn every_acknowledged_write_survives_kill_9() {
    let mut server = Server::start_with(&["--sweep-interval", "3600"]);
    let admin = sign_up(&server, "admin@example.com");
    server
        .patch("/api/v1/settings")
        .bearer(&admin.session)
        .json(json!({"allow_no_expiry": true}))
        .send()
        .data(200);
    let mut secrets = Vec::new();
    for i in 0..40 {
        let token = create_token(
            &server,
            &admin.session,
            json!({"name": format!("t{i}"), "scopes": ["tokens"]}),
        );
        secrets.push(token["token"].as_str().unwrap().to_owned());
    }
    let revoked = create_token(
        &server,
        &admin.session,
        json!({"name": "gone", "scopes": ["tokens"]}),
    );
    let res = server
        .delete(&format!(
            "/api/v1/tokens/{}",
            revoked["id"].as_str().unwrap()
        ))
        .bearer(&admin.session)
        .send();
    assert_eq!(res.status, 204);

    server.kill_hard();
    server.restart();

    for secret in &secrets {
        assert_eq!(verify(&server, secret, None)["code"], "VALID");
    }
    assert_eq!(
        verify(&server, revoked["token"].as_str().unwrap(), None)["code"],
        "REVOKED"
    );
    let settings = server
        .get("/api/v1/settings")
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(settings["allow_no_expiry"], true);
}

#[test]
fn sigterm_stops_cleanly_and_flushes_last_used() {
    let mut server = Server::start_with(&["--sweep-interval", "3600"]);
    let admin = sign_up(&server, "admin@example.com");
    let token = plain_token(&server, &admin.session);
    verify(&server, token["token"].as_str().unwrap(), None);

    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(server.log().contains("stopped"));

    server.restart();
    let stored = server
        .get(&format!("/api/v1/tokens/{}", token["id"].as_str().unwrap()))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert!(stored["last_used_at"].is_string(), "{stored}");
    assert_eq!(stored["last_used_ip"], "127.0.0.1");
}

fn wal_state(server: &Server) -> (u64, SystemTime) {
    let wal = server.db_path().with_extension("db-wal");
    let meta = std::fs::metadata(wal).unwrap();
    (meta.len(), meta.modified().unwrap())
}

#[test]
fn verifying_never_writes_and_last_used_is_flushed_in_batches() {
    // The sweeper's first pass runs at start; the next is a minute away.
    let mut server = Server::start_with(&["--sweep-interval", "3600"]);
    let admin = sign_up(&server, "admin@example.com");
    let token = plain_token(&server, &admin.session);
    let secret = token["token"].as_str().unwrap();
    let id = token["id"].as_str().unwrap().to_owned();

    let before = wal_state(&server);
    for _ in 0..200 {
        assert_eq!(verify(&server, secret, None)["valid"], true);
    }
    let after = wal_state(&server);
    assert_eq!(before, after, "a verify wrote to the database");

    // The API already shows the use; the database gets it with the next
    // flush, here the one at shutdown.
    let shown = server
        .get(&format!("/api/v1/tokens/{id}"))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert!(shown["last_used_at"].is_string());
    let db = Connection::open(server.db_path()).unwrap();
    let stored = |db: &Connection| {
        db.query_row(
            "SELECT last_used_at IS NOT NULL FROM tokens WHERE id = ?1",
            [&id],
            |row| row.get::<_, bool>(0),
        )
        .unwrap()
    };
    assert!(!stored(&db), "a verify stored its use at once");
    assert!(server.terminate().success());
    assert!(stored(&db), "last_used_at never reached the database");
}

#[test]
fn the_database_is_in_wal_mode_in_a_folder_made_for_it() {
    let server = Server::start();
    assert!(server.db_path().parent().unwrap().is_dir());
    let db = Connection::open(server.db_path()).unwrap();
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert!(version >= 1);
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let mut server = Server::start();
    server.kill_hard();
    let db = Connection::open(server.db_path()).unwrap();
    db.pragma_update(None, "user_version", 999).unwrap();
    drop(db);
    let output = std::process::Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(server.db_path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("schema version 999"), "{stderr}");
    assert!(stderr.contains("newer tokenward"), "{stderr}");
}

#[test]
fn the_sweeper_deletes_dead_tokens_after_purge_after_seconds() {
    let mut server = Server::start_with(&["--sweep-interval", "1"]);
    let admin = sign_up(&server, "admin@example.com");
    let keep = create_token(
        &server,
        &admin.session,
        json!({"name": "keep", "scopes": ["tokens"]}),
    );
    let short = create_token(
        &server,
        &admin.session,
        json!({"name": "short", "scopes": ["tokens"], "expires_in": 1}),
    );
    let revoked = create_token(
        &server,
        &admin.session,
        json!({"name": "revoked", "scopes": ["tokens"]}),
    );
    server
        .delete(&format!(
            "/api/v1/tokens/{}",
            revoked["id"].as_str().unwrap()
        ))
        .bearer(&admin.session)
        .send();

    // With the default of 24 hours nothing is purged yet.
    server.advance_clock(2);
    let all = server
        .get("/api/v1/tokens?state=all")
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(all.as_array().unwrap().len(), 3);
    let expired = server
        .get("/api/v1/tokens?state=expired")
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(expired[0]["name"], "short");

    server
        .patch("/api/v1/settings")
        .bearer(&admin.session)
        .json(json!({"purge_after_seconds": 0}))
        .send()
        .data(200);
    // The sweep at start-up purges what is due.
    server.advance_clock(1);
    let purged = eventually(Duration::from_secs(10), || {
        let all = server
            .get("/api/v1/tokens")
            .bearer(&admin.session)
            .send()
            .data(200);
        all.as_array().unwrap().len() == 1
    });
    assert!(purged, "expired and revoked tokens were not purged");
    let left = server
        .get("/api/v1/tokens")
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(left[0]["id"], keep["id"]);
    assert_eq!(
        verify(&server, short["token"].as_str().unwrap(), None)["code"],
        "NOT_FOUND"
    );
    let logged = eventually(Duration::from_secs(10), || {
        server.log().contains("sweeper removed")
    });
    assert!(logged, "{}", server.log());
}
