//! End-to-end forward-auth through real proxies: Debian's nginx and Caddy,
//! configured with the recipes exactly as docs/forward-auth.md prints them,
//! in front of a small upstream that records what reaches it. Each proxy
//! and the upstream run on ephemeral loopback ports from a temporary folder.
//!
//! Without nginx or Caddy installed these tests print a note and pass,
//! unless `CI` is set: CI installs both (.ci/run), so there a missing proxy
//! is a failure.

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use proxy::*;

const HOST: &str = "api.example.com";

/// The program, or `None` after a note when it may be skipped.
fn require(program: &str) -> Option<PathBuf> {
    match find(program) {
        Some(path) => Some(path),
        None if std::env::var_os("CI").is_some() => {
            panic!("{program} is not installed: .ci/run installs it with apt-get")
        }
        None => {
            eprintln!(
                "note: {program} is not installed; skipping its end-to-end test (apt-get install {program})"
            );
            None
        }
    }
}

/// A request as the upstream received it.
#[derive(Clone, Debug)]
struct Seen {
    line: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// The API behind the proxy: answers every request `200 upstream` and
/// records its request line and headers. Keeps connections open, as the
/// recipes' keepalive expects.
struct Upstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                std::thread::spawn(move || serve(stream, &log));
            }
        });
        Upstream { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        log.lock().unwrap().push(Seen {
            line: line.trim_end().to_owned(),
            headers,
        });
        let answer =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nupstream";
        if writer.write_all(answer).is_err() {
            return;
        }
    }
}

/// A running proxy process, stopped when dropped.
fn start_caddy(program: &Path, dir: &Path, site: &str) -> Proxy {
    let port = free_port();
    let opening = format!("{HOST} {{");
    assert!(site.starts_with(&opening));
    let site = site.replacen(
        &opening,
        &format!("http://{HOST}:{port} {{\n\tbind 127.0.0.1"),
        1,
    );
    let config = format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}");
    std::fs::write(dir.join("Caddyfile"), config).unwrap();
    let log = dir.join("caddy.log");
    let child = Command::new(program)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.join("Caddyfile"))
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("caddy starts");
    Proxy {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        log,
    }
    .wait_until_listening("caddy")
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn error_code(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|json| json["error"].as_str().map(str::to_owned))
    }
}

/// One HTTP/1.0 request with the target sent exactly as given.
fn send(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!("{method} {target} HTTP/1.0\r\nHost: {HOST}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer to {method} {target}: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// tokenward with a workspace, its rules and two tokens.
struct Setup {
    server: Server,
    admin: Account,
    reader: Value,
    writer: Value,
}

fn setup() -> Setup {
    let server = Server::start_with(&["--trust-proxy"]);
    let admin = admin_with_open_signup(&server);
    add_catalog_scope(&server, &admin, &admin.workspace, "contacts");
    server
        .put("/api/v1/routes")
        .bearer(&admin.session)
        .json(json!({"rules": [
            {"id": "contacts-read", "methods": ["GET"], "path": "/contacts/**", "scopes": ["contacts:read"]},
            {"id": "contacts-write", "methods": ["*"], "path": "/contacts/**", "scopes": ["contacts"]},
            {"id": "public", "methods": ["GET"], "path": "/public/**", "public": true},
            {"id": "admin", "methods": ["*"], "path": "/admin/**", "deny": true},
        ]}))
        .send()
        .data(200);
    let reader = create_token(
        &server,
        &admin.session,
        json!({"name": "reader", "scopes": ["contacts:read"]}),
    );
    let writer = create_token(
        &server,
        &admin.session,
        json!({"name": "writer", "scopes": ["contacts"]}),
    );
    Setup {
        server,
        admin,
        reader,
        writer,
    }
}

fn bearer(token: &Value) -> String {
    format!("Bearer {}", token["token"].as_str().unwrap())
}

/// Every case of the issue, through `proxy`.
fn prove(name: &str, proxy: &Proxy, upstream: &Upstream, setup: &Setup) {
    let addr = proxy.addr;
    let reader = bearer(&setup.reader);
    let writer = bearer(&setup.writer);
    let reached = |target: &str| {
        upstream
            .seen()
            .into_iter()
            .filter(|seen| seen.line.split(' ').nth(1) == Some(target))
            .collect::<Vec<_>>()
    };
    let context = |what: &str, answer: &Answer| {
        format!(
            "{name}: {what}: {} {:?} {}\n{}",
            answer.status,
            answer.headers,
            answer.body,
            std::fs::read_to_string(&proxy.log).unwrap_or_default()
        )
    };

    // Allowed: the identity reaches the upstream, a client's forged copies
    // of the headers do not.
    let forged = [
        ("Authorization", reader.as_str()),
        ("X-Tokenward-Auth", "forged"),
        ("X-Tokenward-Token-Id", "forged"),
        ("X-Tokenward-User-Id", "forged"),
        ("X-Tokenward-Workspace-Id", "forged"),
        ("X-Tokenward-Scopes", "contacts admin"),
        ("X-Tokenward-Rule", "forged"),
    ];
    let answer = send(addr, "GET", "/contacts/42", &forged);
    assert_eq!(answer.status, 200, "{}", context("allow", &answer));
    assert_eq!(answer.body, "upstream");
    let seen = reached("/contacts/42");
    assert_eq!(seen.len(), 1, "{name}: {seen:?}");
    let seen = &seen[0];
    assert_eq!(
        seen.header("X-Tokenward-Auth"),
        ["token"],
        "{name}: {seen:?}"
    );
    assert_eq!(
        seen.header("X-Tokenward-Token-Id"),
        [setup.reader["id"].as_str().unwrap()]
    );
    assert_eq!(
        seen.header("X-Tokenward-User-Id"),
        [setup.admin.id.as_str()]
    );
    assert_eq!(
        seen.header("X-Tokenward-Workspace-Id"),
        [setup.admin.workspace.as_str()]
    );
    assert_eq!(seen.header("X-Tokenward-Scopes"), ["contacts:read"]);
    assert_eq!(seen.header("X-Tokenward-Rule"), ["contacts-read"]);
    for (header, _) in &forged[1..] {
        assert!(
            !seen.header(header).contains(&"forged"),
            "{name}: a forged {header} reached the upstream: {seen:?}"
        );
    }

    // Anonymous on a public route: the forged identity is dropped too.
    let answer = send(addr, "GET", "/public/logo.png", &forged[1..]);
    assert_eq!(answer.status, 200, "{}", context("public", &answer));
    let seen = reached("/public/logo.png");
    assert_eq!(seen[0].header("X-Tokenward-Auth"), ["anonymous"], "{name}");
    assert_eq!(seen[0].header("X-Tokenward-Rule"), ["public"], "{name}");
    for (header, _) in &forged[2..6] {
        assert!(
            seen[0].header(header).iter().all(|v| v.is_empty()),
            "{name}: a forged {header} reached the upstream: {:?}",
            seen[0]
        );
    }

    // No token: 401 with the plain challenge and tokenward's JSON.
    let answer = send(addr, "GET", "/contacts/7", &[]);
    assert_eq!(answer.status, 401, "{}", context("no token", &answer));
    assert_eq!(
        answer.header("WWW-Authenticate"),
        Some(r#"Bearer realm="tokenward""#),
        "{}",
        context("no token", &answer)
    );
    assert_eq!(
        answer.error_code().as_deref(),
        Some("invalid_token"),
        "{}",
        context("no token", &answer)
    );
    assert_eq!(answer.header("X-Tokenward-Error"), Some("invalid_token"));
    let answer = send(
        addr,
        "GET",
        "/contacts/7",
        &[("Authorization", "Bearer tw_nonsense")],
    );
    assert_eq!(answer.status, 401, "{}", context("bad token", &answer));
    assert_eq!(
        answer.header("WWW-Authenticate"),
        Some(r#"Bearer realm="tokenward", error="invalid_token""#)
    );

    // A missing scope: 403 with the insufficient_scope challenge.
    let answer = send(addr, "DELETE", "/contacts/7", &[("Authorization", &reader)]);
    assert_eq!(answer.status, 403, "{}", context("scope", &answer));
    assert_eq!(
        answer.header("WWW-Authenticate"),
        Some(r#"Bearer realm="tokenward", error="insufficient_scope", scope="contacts""#),
        "{}",
        context("scope", &answer)
    );
    assert_eq!(answer.error_code().as_deref(), Some("insufficient_scope"));
    assert!(
        reached("/contacts/7").is_empty(),
        "{name}: a refused request reached the upstream"
    );

    // The path tricks: each is refused by tokenward, none reaches the
    // upstream. `//admin` is `/admin`, which a deny rule covers.
    let before = upstream.seen().len();
    for (trick, code) in [
        ("/public/../admin/users", "invalid_path"),
        ("/public/%2e%2e/admin/users", "invalid_path"),
        ("/public/%2E%2E/admin/users", "invalid_path"),
        ("/public/..;/admin/users", "invalid_path"),
        ("/public/%2Fadmin/users", "invalid_path"),
        ("/public%2F..%2Fadmin/users", "invalid_path"),
        ("//admin/users", "forbidden"),
        ("/public/%252e%252e/admin/users", "invalid_path"),
        ("/public/%252e%252e%252fadmin/users", "invalid_path"),
    ] {
        let answer = send(addr, "GET", trick, &[("Authorization", &writer)]);
        assert_eq!(answer.status, 403, "{}", context(trick, &answer));
        assert_eq!(
            answer.error_code().as_deref(),
            Some(code),
            "{}",
            context(trick, &answer)
        );
        assert_eq!(answer.header("X-Tokenward-Error"), Some(code));
    }
    assert_eq!(
        upstream.seen().len(),
        before,
        "{name}: a path trick reached the upstream: {:?}",
        &upstream.seen()[before..]
    );

    // Revoked: refused on the very next request.
    let answer = send(addr, "PUT", "/contacts/9", &[("Authorization", &writer)]);
    assert_eq!(answer.status, 200, "{}", context("writer", &answer));
    setup
        .server
        .delete(&format!(
            "/api/v1/tokens/{}",
            setup.writer["id"].as_str().unwrap()
        ))
        .bearer(&setup.admin.session)
        .send();
    let answer = send(addr, "PUT", "/contacts/10", &[("Authorization", &writer)]);
    assert_eq!(answer.status, 401, "{}", context("revoked", &answer));
    assert_eq!(answer.error_code().as_deref(), Some("invalid_token"));
    assert!(reached("/contacts/10").is_empty());
}

#[test]
fn nginx_with_the_documented_recipe() {
    let Some(nginx) = require("nginx") else {
        return;
    };
    let setup = setup();
    let upstream = Upstream::start();
    let dir = TempDir::new();
    let site = fill(
        &recipe("nginx"),
        setup.server.addr,
        upstream.addr,
        &setup.admin.workspace,
    );
    let proxy = start_nginx(&nginx, dir.path(), &site);
    prove("nginx", &proxy, &upstream, &setup);
}

#[test]
fn caddy_with_the_documented_recipe() {
    let Some(caddy) = require("caddy") else {
        return;
    };
    let setup = setup();
    let upstream = Upstream::start();
    let dir = TempDir::new();
    let site = fill(
        &recipe("caddy"),
        setup.server.addr,
        upstream.addr,
        &setup.admin.workspace,
    );
    let proxy = start_caddy(&caddy, dir.path(), &site);
    prove("caddy", &proxy, &upstream, &setup);
}
