//! Several nodes on one PostgreSQL database (§12): what one node writes,
//! every node answers within a second, and rules decided inside a write
//! hold across nodes. Needs `TOKENWARD_TEST_POSTGRES`; without it these
//! tests say so and pass. `.ci/run` runs the README's `cargo test` first
//! (SQLite, where they skip), then starts a PostgreSQL cluster, failing if
//! it cannot, and runs every suite again on it, these tests included.

mod common;

use std::io::Write as _;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::*;

/// What every node's next verify must see within (§12).
const WITHIN: Duration = Duration::from_secs(1);

/// `true` (after saying why) when there is no PostgreSQL to run on.
fn skip_without_postgres(test: &str) -> bool {
    if on_postgres() {
        return false;
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: several-nodes test not run: {POSTGRES_VAR} is not set"
    );
    true
}

/// Three nodes on one fresh database.
fn three_nodes() -> (Server, Server, Server) {
    let a = Server::start();
    let b = a.another_node(&["--sweep-interval", "1"]);
    let c = a.another_node(&["--sweep-interval", "1"]);
    (a, b, c)
}

fn code(server: &Server, token: &str, scopes: Option<Value>) -> String {
    verify(server, token, scopes)["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn secret(token: &Value) -> String {
    token["token"].as_str().unwrap().to_owned()
}

/// Verifies on every node in `nodes` until each answers `expected`; fails
/// when one still answers otherwise [`WITHIN`] after `since`.
fn every_node_answers(
    nodes: &[&Server],
    token: &str,
    scopes: Option<Value>,
    expected: &str,
    since: Instant,
) {
    for (index, node) in nodes.iter().enumerate() {
        loop {
            let answer = code(node, token, scopes.clone());
            if answer == expected {
                break;
            }
            assert!(
                since.elapsed() < WITHIN,
                "node {index} still answers {answer}, not {expected}, {:?} after the write",
                since.elapsed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Warms every node's verify cache with a `VALID` answer.
fn valid_everywhere(nodes: &[&Server], token: &str, scopes: Option<Value>) {
    for node in nodes {
        assert_eq!(code(node, token, scopes.clone()), "VALID");
        assert_eq!(code(node, token, scopes.clone()), "VALID");
    }
}

#[test]
fn revoke_reset_removal_and_downgrade_on_one_node_reach_the_others_within_a_second() {
    if skip_without_postgres(
        "revoke_reset_removal_and_downgrade_on_one_node_reach_the_others_within_a_second",
    ) {
        return;
    }
    let (a, b, c) = three_nodes();
    let others = [&b, &c];
    let admin = admin_with_open_signup(&a);
    let ws = admin.workspace.clone();
    add_catalog_scope(&a, &admin, &ws, "billing");

    // Revocation.
    let revoked = plain_token(&a, &admin.session);
    valid_everywhere(&others, &secret(&revoked), None);
    a.delete(&format!(
        "/api/v1/tokens/{}",
        revoked["id"].as_str().unwrap()
    ))
    .bearer(&admin.session)
    .send();
    every_node_answers(&others, &secret(&revoked), None, "REVOKED", Instant::now());

    // Reset without grace: the old token ends at once.
    let reset = plain_token(&a, &admin.session);
    valid_everywhere(&others, &secret(&reset), None);
    let new = a
        .post(&format!(
            "/api/v1/tokens/{}/reset",
            reset["id"].as_str().unwrap()
        ))
        .bearer(&admin.session)
        .json(json!({"grace_seconds": 0}))
        .send()
        .data(201);
    let at = Instant::now();
    every_node_answers(&others, &secret(&reset), None, "EXPIRED", at);
    every_node_answers(&others, &secret(&new), None, "VALID", at);

    // Scope downgrade.
    let downgraded = create_token(
        &a,
        &admin.session,
        json!({"name": "d", "scopes": ["billing", "tokens"]}),
    );
    let billing = Some(json!(["billing"]));
    valid_everywhere(&others, &secret(&downgraded), billing.clone());
    a.patch(&format!(
        "/api/v1/tokens/{}",
        downgraded["id"].as_str().unwrap()
    ))
    .bearer(&admin.session)
    .json(json!({"scopes": ["tokens"]}))
    .send()
    .data(200);
    every_node_answers(
        &others,
        &secret(&downgraded),
        billing,
        "INSUFFICIENT_SCOPE",
        Instant::now(),
    );

    // Member removal: the member's token in the workspace stops working.
    let bob = sign_up(&a, "bob@example.com");
    a.post(&format!("/api/v1/workspaces/{ws}/members"))
        .bearer(&admin.session)
        .json(json!({"email": "bob@example.com", "role": "member", "scopes": ["tokens"]}))
        .send()
        .data(201);
    let bobs = a
        .post("/api/v1/tokens")
        .bearer(&bob.session)
        .workspace(&ws)
        .json(json!({"name": "b", "scopes": ["tokens"]}))
        .send()
        .data(201);
    valid_everywhere(&others, &secret(&bobs), None);
    a.delete(&format!("/api/v1/workspaces/{ws}/members/{}", bob.id))
        .bearer(&admin.session)
        .send();
    let at = Instant::now();
    for node in others {
        loop {
            let answer = code(node, &secret(&bobs), None);
            if answer != "VALID" {
                break;
            }
            assert!(
                at.elapsed() < WITHIN,
                "a removed member's token still verifies {:?} later",
                at.elapsed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn concurrent_first_sign_ups_across_nodes_make_exactly_one_account() {
    if skip_without_postgres("concurrent_first_sign_ups_across_nodes_make_exactly_one_account") {
        return;
    }
    let (a, b, c) = three_nodes();
    let nodes = [&a, &b, &c];
    const SIGN_UPS: usize = 9;
    let barrier = Barrier::new(SIGN_UPS);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..SIGN_UPS)
            .map(|i| {
                let (node, barrier) = (nodes[i % nodes.len()], &barrier);
                scope.spawn(move || {
                    let request = node.post("/api/v1/accounts").json(
                        json!({"email": format!("first{i}@example.com"), "password": PASSWORD}),
                    );
                    barrier.wait();
                    request.send().status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 201 || s == 403),
        "{statuses:?}"
    );
}

#[test]
fn the_last_domain_token_survives_revokes_on_two_nodes_at_once() {
    if skip_without_postgres("the_last_domain_token_survives_revokes_on_two_nodes_at_once") {
        return;
    }
    let (a, b, _c) = three_nodes();
    let admin = sign_up(&a, "admin@example.com");
    let domain = a
        .post("/api/v1/domains")
        .bearer(&admin.session)
        .json(json!({"name": "example.com"}))
        .send()
        .data(201);
    let first = domain["token"]["id"]
        .as_str()
        .or(domain["token_id"].as_str())
        .map(str::to_owned);
    let second = create_token(
        &a,
        &admin.session,
        json!({"name": "second", "scopes": ["domain:example.com"]}),
    );
    let Some(first) = first else {
        panic!("no token id in the domain answer: {domain}");
    };
    let second = second["id"].as_str().unwrap().to_owned();
    let barrier = Barrier::new(2);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = [(&a, &first), (&b, &second)]
            .into_iter()
            .map(|(node, id)| {
                let (barrier, admin) = (&barrier, &admin);
                scope.spawn(move || {
                    let request = node
                        .delete(&format!("/api/v1/tokens/{id}"))
                        .bearer(&admin.session);
                    barrier.wait();
                    request.send().status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refused = statuses.iter().filter(|&&s| s == 409).count();
    assert_eq!(
        refused, 1,
        "one revoke keeps the domain's last token: {statuses:?}"
    );
}

#[test]
fn a_node_that_loses_its_listener_recovers_without_a_stale_valid() {
    if skip_without_postgres("a_node_that_loses_its_listener_recovers_without_a_stale_valid") {
        return;
    }
    let (a, b, _c) = three_nodes();
    let admin = sign_up(&a, "admin@example.com");
    let token = plain_token(&a, &admin.session);
    valid_everywhere(&[&b], &secret(&token), None);
    // Cut every node's listening connection.
    let cut = a.pg.as_ref().unwrap().with_client(|client| {
        client
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'tokenward listener'",
                &[],
            )
            .unwrap()
    });
    assert!(!cut.is_empty(), "no listening connection found");
    a.delete(&format!("/api/v1/tokens/{}", token["id"].as_str().unwrap()))
        .bearer(&admin.session)
        .send();
    every_node_answers(&[&b], &secret(&token), None, "REVOKED", Instant::now());
    assert!(
        eventually(Duration::from_secs(10), || b
            .log()
            .contains("listening for other nodes' writes again")),
        "{}",
        b.log()
    );
}

#[test]
fn wrong_passwords_spread_over_three_nodes_get_ten_checks() {
    if skip_without_postgres("wrong_passwords_spread_over_three_nodes_get_ten_checks") {
        return;
    }
    let (a, b, c) = three_nodes();
    let nodes = [&a, &b, &c];
    sign_up(&a, "admin@example.com");
    const ATTEMPTS: usize = 30;
    let barrier = Barrier::new(ATTEMPTS);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..ATTEMPTS)
            .map(|i| {
                let (node, barrier) = (nodes[i % nodes.len()], &barrier);
                scope.spawn(move || {
                    let request = node
                        .post("/api/v1/sessions")
                        .json(json!({"email": "admin@example.com", "password": "wrong password!"}));
                    barrier.wait();
                    request.send().status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((checked, limited), (10, 20), "{statuses:?}");
    // Locked on every node, the right password included.
    for node in nodes {
        sign_in(node, "admin@example.com", PASSWORD).error(429, "rate_limited");
    }
}

#[test]
fn wrong_current_passwords_spread_over_three_nodes_get_ten_checks() {
    if skip_without_postgres("wrong_current_passwords_spread_over_three_nodes_get_ten_checks") {
        return;
    }
    let (a, b, c) = three_nodes();
    let nodes = [&a, &b, &c];
    let admin = sign_up(&a, "admin@example.com");
    const ATTEMPTS: usize = 30;
    let barrier = Barrier::new(ATTEMPTS);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..ATTEMPTS)
            .map(|i| {
                let (node, barrier, admin) = (nodes[i % nodes.len()], &barrier, &admin);
                scope.spawn(move || {
                    let request = node.patch("/api/v1/me").bearer(&admin.session).json(
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
    assert_eq!((checked, limited), (10, 20), "{statuses:?}");
}

/// Runs the binary with `args`; its exit success and standard error.
fn run(args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(BIN)
        .args(args)
        .env("TOKENWARD_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_unreachable_postgres_is_one_sentence_at_start_without_the_password() {
    // Nothing listens on port 1: no PostgreSQL needed.
    let url = "postgres://tokenward:hunter2@127.0.0.1:1/tokenward";
    let (ok, stderr) = run(&["serve", "--addr", "127.0.0.1:0", "--db", url]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot reach PostgreSQL at 127.0.0.1:1/tokenward"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let (ok, stderr) = run(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--db",
        "postgres://a@b:c/d",
    ]);
    assert!(!ok);
    assert!(stderr.contains("not a valid PostgreSQL URL"), "{stderr}");
}

#[test]
fn backup_and_check_point_to_postgres_own_tools() {
    let url = "postgres://tokenward@127.0.0.1:1/tokenward";
    let (ok, stderr) = run(&["backup", "--db", url, "--out", "/nonexistent/x.db"]);
    assert!(!ok);
    assert!(stderr.contains("pg_dump"), "{stderr}");
    let (ok, stderr) = run(&["check", "--db", url]);
    assert!(!ok);
    assert!(stderr.contains("PostgreSQL"), "{stderr}");
}

#[test]
fn a_rules_write_on_one_node_reaches_the_others_forward_auth_within_a_second() {
    if skip_without_postgres(
        "a_rules_write_on_one_node_reaches_the_others_forward_auth_within_a_second",
    ) {
        return;
    }
    let (a, b, c) = three_nodes();
    let admin = sign_up(&a, "admin@example.com");
    let ws = admin.workspace.clone();
    let put = |document: Value| {
        a.put("/api/v1/routes")
            .bearer(&admin.session)
            .workspace(&ws)
            .json(document)
            .send()
            .data(200);
    };
    let status = |node: &Server| {
        node.get(&format!("/api/v1/authz/{ws}/auth-request"))
            .header("X-Original-Method", "GET")
            .header("X-Original-URI", "/public/page")
            .send()
            .status
    };
    put(
        json!({"rules": [{"id": "public", "methods": ["GET"], "path": "/public/**", "public": true}]}),
    );
    // Each node compiles and keeps the public rule.
    for node in [&b, &c] {
        assert_eq!(status(node), 200);
        assert_eq!(status(node), 200);
    }
    put(json!({"rules": [{"id": "closed", "methods": ["*"], "path": "/public/**", "deny": true}]}));
    let at = Instant::now();
    for node in [&b, &c] {
        while status(node) == 200 {
            assert!(
                at.elapsed() < WITHIN,
                "a node still follows the old rules {:?} after the write",
                at.elapsed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn migrate_to_postgres_keeps_tokens_sessions_ids_and_numbers() {
    if skip_without_postgres("migrate_to_postgres_keeps_tokens_sessions_ids_and_numbers") {
        return;
    }
    let mut old = Server::start_sqlite(&["--sweep-interval", "60"]);
    let admin = admin_with_open_signup(&old);
    let bob = sign_up(&old, "bob@example.com");
    let kept = plain_token(&old, &admin.session);
    let revoked = plain_token(&old, &admin.session);
    old.delete(&format!(
        "/api/v1/tokens/{}",
        revoked["id"].as_str().unwrap()
    ))
    .bearer(&admin.session)
    .send();
    let domain = old
        .post("/api/v1/domains")
        .bearer(&admin.session)
        .json(json!({"name": "example.com"}))
        .send()
        .data(201);
    let highest = domain["token"]["number"].as_i64().unwrap();
    old.terminate();

    let pg = std::sync::Arc::new(PgDatabase::create(&postgres_url().unwrap()));
    let output = std::process::Command::new(BIN)
        .args(["migrate-to-postgres", "--to", &pg.url, "--from"])
        .arg(old.db_path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("tokens: 3 rows"), "{stdout}");

    let new = Server::start_postgres(std::sync::Arc::clone(&pg), &[]);
    assert_eq!(code(&new, &secret(&kept), None), "VALID");
    assert_eq!(code(&new, &secret(&revoked), None), "REVOKED");
    // Sessions signed before the move still work; so do passwords.
    new.get("/api/v1/me").bearer(&bob.session).send().data(200);
    sign_in(&new, "admin@example.com", PASSWORD).data(201);
    let token = new
        .get(&format!("/api/v1/tokens/{}", kept["id"].as_str().unwrap()))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(token["number"], kept["number"]);
    // Numbers go on after the highest.
    let next = plain_token(&new, &admin.session);
    assert_eq!(next["number"].as_i64().unwrap(), highest + 1);

    // Into a database that is in use: refused, nothing changed.
    let again = std::process::Command::new(BIN)
        .args(["migrate-to-postgres", "--to", &pg.url, "--from"])
        .arg(old.db_path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("empty one"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn a_revoke_whose_client_went_away_still_reaches_every_node() {
    if skip_without_postgres("a_revoke_whose_client_went_away_still_reaches_every_node") {
        return;
    }
    let (a, b, _c) = three_nodes();
    let admin = sign_up(&a, "admin@example.com");
    let token = plain_token(&a, &admin.session);
    let id = token["id"].as_str().unwrap().to_owned();
    valid_everywhere(&[&a, &b], &secret(&token), None);

    // Reads go on; the revoke's UPDATE waits for this lock.
    let mut lock = postgres::Client::connect(&a.pg.as_ref().unwrap().url, postgres::NoTls).unwrap();
    lock.batch_execute("BEGIN; LOCK TABLE tokens IN SHARE ROW EXCLUSIVE MODE")
        .unwrap();
    let mut client = std::net::TcpStream::connect(a.addr).unwrap();
    write!(
        client,
        "DELETE /api/v1/tokens/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
        admin.session
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(client);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(code(&a, &secret(&token), None), "VALID");
    lock.batch_execute("ROLLBACK").unwrap();
    every_node_answers(&[&a, &b], &secret(&token), None, "REVOKED", Instant::now());
}

/// A PostgreSQL cluster of this test's own, in a temporary folder on a
/// loopback port, run by the unprivileged `postgres` user (initdb refuses
/// root); stopped and removed when dropped.
struct PrivateCluster {
    bin: std::path::PathBuf,
    dir: TempDir,
    port: u16,
}

impl PrivateCluster {
    /// `Err(why)` when this machine cannot run one.
    fn start() -> Result<PrivateCluster, String> {
        let initdb = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .map(|dir| dir.join("initdb"))
            .chain(
                std::fs::read_dir("/usr/lib/postgresql")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|version| version.path().join("bin").join("initdb")),
            )
            .find(|path| path.is_file())
            .ok_or("initdb not found")?;
        let bin = std::fs::canonicalize(&initdb)
            .map_err(|e| e.to_string())?
            .parent()
            .ok_or("initdb has no folder")?
            .to_owned();
        let dir = TempDir::new();
        let chown = std::process::Command::new("chown")
            .arg("postgres")
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if !chown.success() {
            return Err(
                "cannot hand a folder to the postgres user (needs root and that user)".into(),
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let cluster = PrivateCluster { bin, dir, port };
        let data = cluster.dir.path().join("data");
        cluster.run(&[
            "initdb",
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "tokenward",
            "--no-sync",
        ])?;
        cluster.pg_ctl(&["start"])?;
        Ok(cluster)
    }

    fn url(&self) -> String {
        format!("postgres://tokenward@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, args: &[&str]) -> Result<(), String> {
        let output = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(args[0]))
            .args(&args[1..])
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed: {}",
                args[0],
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    fn pg_ctl(&self, action: &[&str]) -> Result<(), String> {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let mut args = vec![
            "pg_ctl",
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-o",
            &options,
        ];
        args.extend_from_slice(action);
        self.run(&args)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
    }
}

#[test]
fn restarting_postgres_under_load_never_serves_a_stale_valid() {
    if skip_without_postgres("restarting_postgres_under_load_never_serves_a_stale_valid") {
        return;
    }
    let cluster = match PrivateCluster::start() {
        Ok(cluster) => cluster,
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("restarting_postgres_under_load_never_serves_a_stale_valid: {why}");
            }
            eprintln!("SKIPPED restarting_postgres_under_load_never_serves_a_stale_valid: {why}");
            return;
        }
    };
    let pg = std::sync::Arc::new(PgDatabase::create(&cluster.url()));
    let a = Server::start_postgres(std::sync::Arc::clone(&pg), &[]);
    let b = a.another_node(&[]);
    let admin = sign_up(&a, "admin@example.com");
    let token = plain_token(&a, &admin.session);
    let id = token["id"].as_str().unwrap().to_owned();
    let workspace = admin.workspace.clone();
    valid_everywhere(&[&b], &secret(&token), None);

    // The answer of node B, or `None` while it cannot reach the database.
    let answer = |node: &Server| {
        let response = node
            .post("/api/v1/tokens/verify")
            .json(json!({"token": secret(&token), "workspace_id": workspace}))
            .send();
        (response.status == 200).then(|| {
            response.json()["data"]["code"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let revoked_at: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    let stale = std::thread::scope(|scope| {
        // Verifications on node B all along: every VALID is checked against
        // when the revoke was acknowledged.
        let load = scope.spawn(|| {
            let mut stale = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let valid = answer(&b).is_some_and(|code| code == "VALID");
                if valid
                    && let Some(at) = *revoked_at.lock().unwrap()
                    && at.elapsed() > WITHIN
                {
                    stale.push(at.elapsed());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            stale
        });
        cluster.pg_ctl(&["-m", "fast", "restart"]).unwrap();
        // The revoke is retried while node A's pooled connections find out
        // that the database went away.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = a
                .delete(&format!("/api/v1/tokens/{id}"))
                .bearer(&admin.session)
                .send()
                .status;
            if status == 200 || status == 204 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the revoke kept failing: {status}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        *revoked_at.lock().unwrap() = Some(Instant::now());
        assert!(
            eventually(Duration::from_secs(20), || answer(&b)
                .is_some_and(|code| code == "REVOKED")),
            "node B never answered REVOKED; log:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, std::sync::atomic::Ordering::Release);
        load.join().unwrap()
    });
    assert!(
        stale.is_empty(),
        "node B answered VALID {stale:?} after the revoke"
    );
    // Node B did see the database go away, and came back.
    let log = b.log();
    assert!(log.contains("lost the connection that listens"), "{log}");
    drop((a, b));
    drop(pg);
}

#[test]
fn health_says_the_database_is_unreachable_without_naming_it() {
    if skip_without_postgres("health_says_the_database_is_unreachable_without_naming_it") {
        return;
    }
    let a = Server::start();
    assert_eq!(a.get("/healthz").send().status, 200);
    let pg = a.pg.as_ref().unwrap();
    pg.drop_now();
    let mut last = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            let response = a.get("/healthz").send();
            last = response.text();
            response.status == 503
        }),
        "{last}"
    );
    assert!(last.contains("cannot reach the database"), "{last}");
    assert!(!last.contains(pg.name()), "{last}");
    assert!(!last.contains("tokenward@"), "{last}");
}
