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
    if common::skip_on_postgres("verifying_never_writes_and_last_used_is_flushed_in_batches") {
        return;
    }
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
    if common::skip_on_postgres("the_database_is_in_wal_mode_in_a_folder_made_for_it") {
        return;
    }
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
    if common::skip_on_postgres("a_database_from_a_newer_version_is_refused") {
        return;
    }
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

/// One write a writer thread sent, as far as it knows.
enum Write {
    /// `201` with the token in the body.
    Created { id: String, secret: String },
    /// `204` to `DELETE /tokens/{id}`.
    Revoked { id: String },
    /// A `DELETE` without an answer: the token may be either.
    MaybeRevoked { id: String },
    /// A `POST` without an answer: a token may or may not have been made.
    MaybeCreated,
}

/// Sends one request on its own connection; `None` when no whole answer
/// came back (the server was killed before or while answering), which is
/// not an acknowledgement.
fn try_send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    session: &str,
    body: Option<&Value>,
) -> Option<(u16, Value)> {
    use std::io::{Read, Write};
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Authorization: Bearer {session}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    if body.len() != length {
        return None;
    }
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).ok()?
    };
    Some((status, json))
}

/// Creates tokens, and revokes every third one it made, until a request
/// goes unanswered (the server is gone); returns what it sent. Anything but
/// the expected answer, or `503` while the database is busy, fails the test.
fn write_until_killed(
    addr: std::net::SocketAddr,
    session: &str,
    writer: usize,
    acknowledged: &std::sync::atomic::AtomicUsize,
) -> Vec<Write> {
    use std::sync::atomic::Ordering;
    let mut writes = Vec::new();
    let mut revocable = Vec::new();
    let mut n = 0;
    loop {
        n += 1;
        if n % 3 == 0
            && let Some(id) = revocable.pop()
        {
            let path = format!("/api/v1/tokens/{id}");
            match try_send(addr, "DELETE", &path, session, None) {
                Some((204, _)) => {
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                    writes.push(Write::Revoked { id });
                }
                Some((503, _)) => revocable.push(id),
                Some((status, body)) => panic!("DELETE {path}: {status} {body}"),
                None => {
                    writes.push(Write::MaybeRevoked { id });
                    return writes;
                }
            }
            continue;
        }
        let body = json!({"name": format!("w{writer}-{n}"), "scopes": ["tokens"]});
        match try_send(addr, "POST", "/api/v1/tokens", session, Some(&body)) {
            Some((201, body)) => {
                acknowledged.fetch_add(1, Ordering::SeqCst);
                let id = body["data"]["id"].as_str().unwrap().to_owned();
                let secret = body["data"]["token"].as_str().unwrap().to_owned();
                revocable.push(id.clone());
                writes.push(Write::Created { id, secret });
            }
            Some((503, _)) => {}
            Some((status, body)) => panic!("POST /api/v1/tokens: {status} {body}"),
            None => {
                writes.push(Write::MaybeCreated);
                return writes;
            }
        }
    }
}

/// What `verify` must answer for each token made: `VALID`, `REVOKED`, or
/// either when its revocation went unanswered.
fn expected_codes(writes: &[Write]) -> Vec<(String, &'static [&'static str])> {
    let revocation = |made: &str| {
        writes.iter().find_map(|write| match write {
            Write::Revoked { id } if id == made => Some(&["REVOKED"][..]),
            Write::MaybeRevoked { id } if id == made => Some(&["VALID", "REVOKED"][..]),
            _ => None,
        })
    };
    writes
        .iter()
        .filter_map(|write| match write {
            Write::Created { id, secret } => {
                Some((secret.clone(), revocation(id).unwrap_or(&["VALID"])))
            }
            _ => None,
        })
        .collect()
}

/// `kill -9` at a random moment while six writers create and revoke tokens,
/// cycle after cycle on the same database: after each kill the SQLite file
/// passes `PRAGMA integrity_check`, and after each restart every
/// acknowledged write is there. On PostgreSQL (`TOKENWARD_TEST_POSTGRES`)
/// the killed process is a node, and the same holds. 10 cycles (about 5 s) in `cargo test`;
/// `TOKENWARD_KILL_CYCLES=50 cargo test --test durability kill_9_under`
/// runs a longer loop.
#[test]
fn kill_9_under_concurrent_writers_loses_no_acknowledged_write() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const WRITERS: usize = 6;
    let cycles: usize = std::env::var("TOKENWARD_KILL_CYCLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);

    let mut server = Server::start_with(&["--sweep-interval", "3600", "--verify-fail-limit", "0"]);
    let admin = sign_up(&server, "admin@example.com");
    server
        .patch("/api/v1/settings")
        .bearer(&admin.session)
        .json(json!({"allow_no_expiry": true}))
        .send()
        .data(200);
    let mut random = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut every_token = Vec::new();
    let (mut acknowledged_writes, mut unanswered) = (0, 0);

    for cycle in 0..cycles {
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (addr, session) = (server.addr, admin.session.clone());
                let acknowledged = acknowledged.clone();
                std::thread::spawn(move || {
                    write_until_killed(addr, &session, writer, &acknowledged)
                })
            })
            .collect();
        // Once writes are landing, a random moment within the next 150 ms.
        let landing = eventually(Duration::from_secs(10), || {
            acknowledged.load(Ordering::SeqCst) > 0
        });
        assert!(landing, "cycle {cycle}: no write acknowledged");
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        std::thread::sleep(Duration::from_millis(random % 150));
        server.kill_hard();
        let writes: Vec<Write> = writers
            .into_iter()
            .flat_map(|writer| writer.join().unwrap())
            .collect();
        acknowledged_writes += acknowledged.load(Ordering::SeqCst);
        unanswered += writes
            .iter()
            .filter(|w| matches!(w, Write::MaybeRevoked { .. } | Write::MaybeCreated))
            .count();

        if !common::on_postgres() {
            let db = Connection::open_with_flags(
                server.db_path(),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .unwrap();
            let integrity: String = db
                .query_row("PRAGMA integrity_check", [], |row| row.get(0))
                .unwrap();
            assert_eq!(integrity, "ok", "cycle {cycle}");
        }

        server.restart();
        let expected = expected_codes(&writes);
        for (secret, codes) in &expected {
            let code = verify(&server, secret, None)["code"].clone();
            assert!(
                codes.iter().any(|c| code == *c),
                "cycle {cycle}: {code}, not {codes:?}"
            );
        }
        every_token.extend(expected);
    }

    // Later kills took nothing from earlier cycles either.
    for (secret, codes) in &every_token {
        let code = verify(&server, secret, None)["code"].clone();
        assert!(codes.iter().any(|c| code == *c), "{code}, not {codes:?}");
    }
    eprintln!(
        "{cycles} kills; {acknowledged_writes} acknowledged writes ({} tokens), \
         {unanswered} writes unanswered; none lost",
        every_token.len()
    );
}
