//! Regression tests for the holes an attack on the server found: verify
//! bound to one workspace, rules decided inside their write under real
//! concurrency, writes whose in-memory consequences survive a client that
//! goes away, tokens acting on tokens, the last domain token, CSRF, and the
//! small ones (challenges, busy database, name hygiene).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Barrier;
use std::time::Duration;

use common::*;

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

fn secret(token: &Value) -> String {
    token["token"].as_str().unwrap().to_owned()
}

/// Lets this process (and the servers it starts) hold many sockets.
fn raise_open_file_limit() {
    // SAFETY: plain system calls on a local struct.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// An admin with a `contacts` catalog scope and a second account, Bob, in a
/// workspace of his own with the same scope name.
fn two_workspaces(server: &Server) -> (Account, Account) {
    let admin = admin_with_open_signup(server);
    add_catalog_scope(server, &admin, &admin.workspace, "contacts");
    let bob = sign_up(server, "bob@example.com");
    add_catalog_scope(server, &bob, &bob.workspace, "contacts");
    (admin, bob)
}

#[test]
fn verify_answers_about_one_workspace_only() {
    let server = Server::start_with(&["--verify-fail-limit", "3"]);
    let (admin, bob) = two_workspaces(&server);
    let ours = create_token(
        &server,
        &admin.session,
        json!({"name": "crm", "scopes": ["contacts"]}),
    );
    // Bob copies the prefix and the scope name into his own workspace.
    let copied = create_token(
        &server,
        &bob.session,
        json!({"name": "crm", "scopes": ["contacts"]}),
    );
    let verifier = create_token(
        &server,
        &admin.session,
        json!({"name": "billing service", "scopes": ["verify:read"]}),
    );

    // Anonymously, the workspace is named in the body.
    let good = verify_in(&server, &admin.workspace, &secret(&ours), None);
    assert_eq!(good["code"], "VALID");
    let foreign = verify_in(
        &server,
        &admin.workspace,
        &secret(&copied),
        Some(json!(["contacts"])),
    );
    assert_eq!(foreign["code"], "NOT_FOUND");
    assert_eq!(foreign["valid"], false);
    assert_eq!(foreign["token"], Value::Null);

    // With a verifier token, the workspace is the verifier's.
    let answer = verify_with(&server, &secret(&verifier), &secret(&ours), None).data(200);
    assert_eq!(answer["code"], "VALID");
    assert_eq!(answer["token"]["id"], ours["id"]);
    let answer = verify_with(&server, &secret(&verifier), &secret(&copied), None).data(200);
    assert_eq!(answer["code"], "NOT_FOUND");
    assert_eq!(answer["token"], Value::Null);

    // Neither, or both naming different workspaces: 422 on workspace_id.
    let neither = server
        .post("/api/v1/tokens/verify")
        .json(json!({"token": secret(&ours)}))
        .send()
        .error(422, "validation_failed");
    assert!(neither["details"]["workspace_id"].is_string(), "{neither}");
    let both = server
        .post("/api/v1/tokens/verify")
        .bearer(&secret(&verifier))
        .json(json!({"token": secret(&ours), "workspace_id": bob.workspace}))
        .send()
        .error(422, "validation_failed");
    assert!(both["details"]["workspace_id"].is_string(), "{both}");
    server
        .post("/api/v1/tokens/verify")
        .bearer(&secret(&verifier))
        .json(json!({"token": secret(&ours), "workspace_id": admin.workspace}))
        .send()
        .data(200);

    // A token without `verify` is no verifier; a bad one is no credential.
    let challenged = verify_with(&server, &secret(&ours), &secret(&ours), None);
    challenged.error(403, "insufficient_scope");
    assert!(
        challenged
            .header("www-authenticate")
            .unwrap()
            .contains(r#"scope="verify:read""#)
    );
    verify_with(&server, "tw_nope", &secret(&ours), None).error(401, "invalid_token");
    verify_with(&server, &admin.session, &secret(&ours), None).error(403, "forbidden");

    // The verifier is never failure-limited; anonymous callers are.
    for _ in 0..10 {
        let garbage = verify_with(&server, &secret(&verifier), "tw_nope", None).data(200);
        assert_eq!(garbage["code"], "MALFORMED");
    }
    // The anonymous NOT_FOUND above was the first of three failures.
    for _ in 0..2 {
        verify_in(&server, &admin.workspace, "tw_nope", None);
    }
    server
        .post("/api/v1/tokens/verify")
        .json(json!({"token": secret(&ours), "workspace_id": admin.workspace}))
        .send()
        .error(429, "rate_limited");
    let still = verify_with(&server, &secret(&verifier), &secret(&ours), None).data(200);
    assert_eq!(still["code"], "VALID");
}

#[test]
fn concurrent_sign_ups_on_a_closed_instance_make_one_account() {
    let server = Server::start();
    let barrier = Barrier::new(20);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let (server, barrier) = (&server, &barrier);
                scope.spawn(move || {
                    let request = server.post("/api/v1/accounts").json(
                        json!({"email": format!("user{i}@example.com"), "password": PASSWORD}),
                    );
                    barrier.wait();
                    request.send().status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created = statuses.iter().filter(|&&s| s == 201).count();
    let refused = statuses.iter().filter(|&&s| s == 403).count();
    assert_eq!((created, refused), (1, 19), "{statuses:?}");
}

#[test]
fn a_thousand_concurrent_wrong_passwords_get_ten_checks() {
    raise_open_file_limit();
    let server = Server::start();
    sign_up(&server, "admin@example.com");
    const ATTEMPTS: usize = 1000;
    let barrier = Barrier::new(ATTEMPTS);
    let statuses: Vec<(bool, u16)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..ATTEMPTS)
            .map(|i| {
                let (server, barrier) = (&server, &barrier);
                // The right password is among them.
                let right = i == ATTEMPTS / 2;
                let password = if right { PASSWORD } else { "wrong password!" };
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn_scoped(scope, move || {
                        let request = server
                            .post("/api/v1/sessions")
                            .json(json!({"email": "admin@example.com", "password": password}));
                        barrier.wait();
                        (right, request.send().status)
                    })
                    .unwrap()
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = statuses.iter().filter(|(_, s)| *s != 429).count();
    assert!(checked <= 10, "{checked} attempts were checked");
    assert!(
        statuses.iter().all(|(_, s)| [201, 401, 429].contains(s)),
        "{statuses:?}"
    );
    let right = statuses.iter().find(|(right, _)| *right).unwrap().1;
    if right == 429 {
        // Locked: the right password is refused too.
        sign_in(&server, "admin@example.com", PASSWORD).error(429, "rate_limited");
    }
}

#[test]
fn concurrent_wrong_current_passwords_get_ten_checks() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let barrier = Barrier::new(40);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..40)
            .map(|_| {
                let (server, barrier, admin) = (&server, &barrier, &admin);
                scope.spawn(move || {
                    let request = server.patch("/api/v1/me").bearer(&admin.session).json(
                        json!({"current_password": "wrong password!", "new_password": "another password"}),
                    );
                    barrier.wait();
                    request.send().status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = statuses.iter().filter(|&&s| s == 403).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((checked, limited), (10, 30), "{statuses:?}");
}

/// Holds SQLite's write lock from outside the server until dropped.
struct WriteLock(rusqlite::Connection);

impl WriteLock {
    fn take(server: &Server) -> WriteLock {
        let db = rusqlite::Connection::open(server.db_path()).unwrap();
        db.execute_batch("BEGIN IMMEDIATE").unwrap();
        WriteLock(db)
    }

    fn release(self) {
        self.0.execute_batch("ROLLBACK").unwrap();
    }
}

#[test]
fn a_revoke_whose_client_went_away_still_empties_the_verify_cache() {
    if common::skip_on_postgres("a_revoke_whose_client_went_away_still_empties_the_verify_cache") {
        return;
    }
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let token = plain_token(&server, &admin.session);
    // The answer is cached now.
    assert_eq!(verify(&server, &secret(&token), None)["code"], "VALID");

    let lock = WriteLock::take(&server);
    let mut client = TcpStream::connect(server.addr).unwrap();
    write!(
        client,
        "DELETE /api/v1/tokens/{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
        id(&token),
        admin.session
    )
    .unwrap();
    // The revoke now waits for the lock; its client goes away.
    std::thread::sleep(Duration::from_millis(300));
    drop(client);
    std::thread::sleep(Duration::from_millis(300));
    lock.release();

    let db = rusqlite::Connection::open(server.db_path()).unwrap();
    let revoked = eventually(Duration::from_secs(10), || {
        db.query_row(
            "SELECT revoked_at IS NOT NULL FROM tokens WHERE id = ?1",
            [id(&token)],
            |row| row.get::<_, bool>(0),
        )
        .unwrap()
    });
    assert!(revoked, "the revoke never committed");
    assert_eq!(verify(&server, &secret(&token), None)["code"], "REVOKED");
}

#[test]
fn a_token_cannot_change_a_token_that_outlives_it() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    add_catalog_scope(&server, &admin, &admin.workspace, "contacts");
    let long = create_token(
        &server,
        &admin.session,
        json!({"name": "crm", "scopes": ["contacts:read"], "expires_in": 30 * 86_400}),
    );
    let hour = create_token(
        &server,
        &admin.session,
        json!({"name": "script", "scopes": ["tokens", "contacts"], "expires_in": 3_600}),
    );
    let patched = server
        .patch(&format!("/api/v1/tokens/{}", id(&long)))
        .bearer(&secret(&hour))
        .json(json!({"scopes": ["contacts"]}))
        .send();
    patched.error(403, "forbidden");
    server
        .post(&format!("/api/v1/tokens/{}/reset", id(&long)))
        .bearer(&secret(&hour))
        .send()
        .error(403, "forbidden");
    // Nothing changed; a rename is no new power, and a shorter token is fair game.
    let unchanged = server
        .get(&format!("/api/v1/tokens/{}", id(&long)))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(unchanged["scopes"], json!(["contacts:read"]));
    assert_eq!(unchanged["replaced_by"], Value::Null);
    server
        .patch(&format!("/api/v1/tokens/{}", id(&long)))
        .bearer(&secret(&hour))
        .json(json!({"name": "crm (old)"}))
        .send()
        .data(200);
    let short = create_token(
        &server,
        &admin.session,
        json!({"name": "short", "scopes": ["contacts:read"], "expires_in": 600}),
    );
    server
        .patch(&format!("/api/v1/tokens/{}", id(&short)))
        .bearer(&secret(&hour))
        .json(json!({"scopes": ["contacts"]}))
        .send()
        .data(200);
    let reset = server
        .post(&format!("/api/v1/tokens/{}/reset", id(&short)))
        .bearer(&secret(&hour))
        .send()
        .data(201);
    assert_eq!(reset["scopes"], json!(["contacts"]));
}

#[test]
fn a_removed_member_s_token_does_not_keep_the_last_domain_token_deletable() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let created = server
        .post("/api/v1/domains")
        .bearer(&admin.session)
        .json(json!({"name": "example.com"}))
        .send()
        .data(201);
    let auto = &created["token"];
    let bob = sign_up(&server, "bob@example.com");
    server
        .post(&format!("/api/v1/workspaces/{}/members", admin.workspace))
        .bearer(&admin.session)
        .json(json!({"email": bob.email, "role": "member", "scopes": ["domain:example.com"]}))
        .send()
        .data(201);
    let bobs = server
        .post("/api/v1/tokens")
        .bearer(&bob.session)
        .workspace(&admin.workspace)
        .json(json!({"name": "bob's", "scopes": ["domain:example.com"]}))
        .send()
        .data(201);
    server
        .delete(&format!(
            "/api/v1/workspaces/{}/members/{}",
            admin.workspace, bob.id
        ))
        .bearer(&admin.session)
        .send();
    assert_eq!(verify(&server, &secret(&bobs), None)["code"], "DISABLED");
    server
        .delete(&format!("/api/v1/tokens/{}", id(auto)))
        .bearer(&admin.session)
        .send()
        .error(409, "last_domain_token");
    // A token that no longer verifies keeps nothing alive: it may go.
    server
        .delete(&format!("/api/v1/tokens/{}", id(&bobs)))
        .bearer(&admin.session)
        .send();
    assert_eq!(verify(&server, &secret(&bobs), None)["code"], "REVOKED");
}

#[test]
fn a_cookie_signed_sign_up_needs_the_csrf_header() {
    let server = Server::start();
    sign_up(&server, "admin@example.com");
    let signed_in = server
        .post("/api/v1/sessions")
        .json(json!({"email": "admin@example.com", "password": PASSWORD, "cookie": true}))
        .send();
    let cookie = signed_in
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    server
        .post("/api/v1/accounts")
        .header("Cookie", &cookie)
        .json(json!({"email": "eve@example.com", "password": PASSWORD}))
        .send()
        .error(403, "forbidden");
    server
        .post("/api/v1/accounts")
        .header("Cookie", &cookie)
        .header("X-Requested-With", "tokenward")
        .json(json!({"email": "eve@example.com", "password": PASSWORD}))
        .send()
        .data(201);
}

#[test]
fn a_wrong_password_carries_a_challenge() {
    let server = Server::start();
    sign_up(&server, "admin@example.com");
    let wrong = sign_in(&server, "admin@example.com", "wrong password!");
    wrong.error(401, "invalid_credentials");
    assert_eq!(
        wrong.header("www-authenticate"),
        Some(r#"Bearer realm="tokenward""#)
    );
}

#[test]
fn a_busy_database_answers_503_with_retry_after() {
    if common::skip_on_postgres("a_busy_database_answers_503_with_retry_after") {
        return;
    }
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let lock = WriteLock::take(&server);
    // Longer than the busy timeout (5 s).
    let busy = server
        .post("/api/v1/tokens")
        .bearer(&admin.session)
        .json(json!({"name": "t", "scopes": ["tokens"]}))
        .send();
    lock.release();
    let body = busy.error(503, "unavailable");
    assert!(busy.header("retry-after").is_some());
    assert!(
        !body["message"].as_str().unwrap().contains("lock"),
        "{body}"
    );
    plain_token(&server, &admin.session);
}

#[test]
fn names_refuse_invisible_tricks_and_emails_need_a_real_domain() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    for name in [
        "CRM\u{202E}nimda",
        "a\u{2066}b",
        "zero\u{200B}width",
        "bell\u{7}",
    ] {
        let refused = server
            .post("/api/v1/tokens")
            .bearer(&admin.session)
            .json(json!({"name": name, "scopes": ["tokens"]}))
            .send()
            .error(422, "validation_failed");
        assert!(refused["details"]["name"].is_string(), "{name:?}");
        server
            .post("/api/v1/workspaces")
            .bearer(&admin.session)
            .json(json!({"name": name}))
            .send()
            .error(422, "validation_failed");
    }
    for email in ["ada@example..com", "ada@localhost", "ada@.com", "ada@com."] {
        let refused = server
            .post("/api/v1/accounts")
            .bearer(&admin.session)
            .json(json!({"email": email, "password": PASSWORD}))
            .send()
            .error(422, "validation_failed");
        assert!(refused["details"]["email"].is_string(), "{email}");
    }
}

/// Sends every request at once (after a barrier); returns their statuses.
fn all_at_once(requests: Vec<Request>) -> Vec<u16> {
    let barrier = Barrier::new(requests.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = requests
            .into_iter()
            .map(|request| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    request.send().status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|&&s| s == status).count()
}

#[test]
fn concurrent_resets_of_one_token_make_one_replacement() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let token = plain_token(&server, &admin.session);
    let resets = (0..20)
        .map(|_| {
            server
                .post(&format!("/api/v1/tokens/{}/reset", id(&token)))
                .bearer(&admin.session)
        })
        .collect();
    let statuses = all_at_once(resets);
    assert_eq!(
        (count(&statuses, 201), count(&statuses, 409)),
        (1, 19),
        "{statuses:?}"
    );
}

#[test]
fn concurrent_demotions_keep_one_admin() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let mut admins = vec![admin.clone()];
    for i in 0..9 {
        let other = sign_up(&server, &format!("admin{i}@example.com"));
        server
            .post(&format!("/api/v1/workspaces/{}/members", admin.workspace))
            .bearer(&admin.session)
            .json(json!({"email": other.email, "role": "admin", "scopes": []}))
            .send()
            .data(201);
        admins.push(other);
    }
    // Every admin steps down at once; one of them must stay.
    let demotions = admins
        .iter()
        .map(|each| {
            server
                .patch(&format!(
                    "/api/v1/workspaces/{}/members/{}",
                    admin.workspace, each.id
                ))
                .bearer(&each.session)
                .json(json!({"role": "member"}))
        })
        .collect();
    let statuses = all_at_once(demotions);
    assert_eq!(
        (count(&statuses, 200), count(&statuses, 409)),
        (9, 1),
        "{statuses:?}"
    );
    let members = server
        .get(&format!("/api/v1/workspaces/{}/members", admin.workspace))
        .bearer(&admin.session)
        .send();
    // Whoever stayed admin can still read the members; one admin is left.
    let listed = if members.status == 200 {
        members.data(200)
    } else {
        let stayed = admins
            .iter()
            .zip(&statuses)
            .find(|(_, s)| **s == 409)
            .unwrap()
            .0;
        server
            .get(&format!("/api/v1/workspaces/{}/members", admin.workspace))
            .bearer(&stayed.session)
            .send()
            .data(200)
    };
    let left = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "admin")
        .count();
    assert_eq!(left, 1);
}

#[test]
fn concurrent_deletes_of_a_domain_s_tokens_keep_one() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let created = server
        .post("/api/v1/domains")
        .bearer(&admin.session)
        .json(json!({"name": "example.com"}))
        .send()
        .data(201);
    let mut ids = vec![id(&created["token"])];
    for i in 0..5 {
        let token = create_token(
            &server,
            &admin.session,
            json!({"name": format!("d{i}"), "scopes": ["domain:example.com"]}),
        );
        ids.push(id(&token));
    }
    let deletes = ids
        .iter()
        .map(|token| {
            server
                .delete(&format!("/api/v1/tokens/{token}"))
                .bearer(&admin.session)
        })
        .collect();
    let statuses = all_at_once(deletes);
    assert_eq!(
        (count(&statuses, 204), count(&statuses, 409)),
        (5, 1),
        "{statuses:?}"
    );
}
