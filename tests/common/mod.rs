//! Shared by the black-box tests: start the real `tokenward` binary on an
//! ephemeral loopback port with a fresh database in a temporary folder, and
//! talk HTTP/1.1 to it over a plain socket.
//!
//! With `TOKENWARD_TEST_POSTGRES` set to a PostgreSQL URL (a database the
//! user may `CREATE DATABASE` from), every server gets a fresh PostgreSQL
//! database of its own instead, so the same suites run against PostgreSQL;
//! tests of the SQLite file itself skip themselves there.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_tokenward");
const START_TIMEOUT: Duration = Duration::from_secs(30);
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A folder removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "tokenward-test-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The variable naming the PostgreSQL server to run the suites on.
pub const POSTGRES_VAR: &str = "TOKENWARD_TEST_POSTGRES";

/// The PostgreSQL URL the suites run on, if they run on PostgreSQL.
pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_VAR)
        .ok()
        .filter(|url| !url.is_empty())
}

pub fn on_postgres() -> bool {
    postgres_url().is_some()
}

/// For a test of the SQLite file itself (its permissions, its header,
/// backups, WAL recovery, locking it): says why and returns `true` on
/// PostgreSQL, where the test has nothing to test.
pub fn skip_on_postgres(test: &str) -> bool {
    if on_postgres() {
        eprintln!("{test}: skipped: it tests the SQLite file, and {POSTGRES_VAR} is set");
        return true;
    }
    false
}

/// A fresh PostgreSQL database, dropped (with whatever is still
/// connected) when the last server on it is dropped.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create(admin_url: &str) -> PgDatabase {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "tokenward_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        off_runtime(|| {
            let mut admin = postgres::Client::connect(admin_url, postgres::NoTls)
                .unwrap_or_else(|err| panic!("cannot connect to {POSTGRES_VAR}: {err}"));
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap();
        });
        PgDatabase {
            admin_url: admin_url.to_owned(),
            url: with_database(admin_url, &name),
            name,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database now, from under whatever is connected to it.
    pub fn drop_now(&self) {
        off_runtime(|| {
            let mut admin = postgres::Client::connect(&self.admin_url, postgres::NoTls).unwrap();
            admin
                .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
                .unwrap();
        });
    }

    /// Runs `f` with a connection to the database, on a thread of its
    /// own: the sync client may not run (or be dropped) inside the async
    /// runtime of a browser test.
    pub fn with_client<T: Send>(&self, f: impl FnOnce(&mut postgres::Client) -> T + Send) -> T {
        off_runtime(|| f(&mut postgres::Client::connect(&self.url, postgres::NoTls).unwrap()))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        off_runtime(|| {
            if let Ok(mut admin) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
                let _ = admin.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ));
            }
        });
    }
}

/// Runs `f` on a plain thread and waits for it.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(out) => out,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let authority = url.find("://").map_or(0, |at| at + 3);
    let (base, query) = match url.find('?') {
        Some(at) => (&url[..at], &url[at..]),
        None => (url, ""),
    };
    let base = match base[authority..].find('/') {
        Some(at) => &base[..authority + at],
        None => base,
    };
    format!("{base}/{name}{query}")
}

/// A running server. Dropping it kills the process.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub dir: TempDir,
    args: Vec<String>,
    /// Seconds the server's clock runs ahead (`--clock-offset`).
    clock_offset: i64,
    /// What `--db` says: the SQLite file, or the PostgreSQL URL.
    db: String,
    /// The PostgreSQL database, shared by every node started on it.
    pub pg: Option<std::sync::Arc<PgDatabase>>,
}

impl Server {
    /// A server on 127.0.0.1:0 with a fresh database, sweeping every second.
    pub fn start() -> Server {
        Server::start_with(&["--sweep-interval", "1"])
    }

    pub fn start_with(args: &[&str]) -> Server {
        Server::start_on("127.0.0.1:0", args)
    }

    /// Starts on `addr` (for instance 0.0.0.0:0) instead of loopback.
    pub fn start_on(addr: &str, args: &[&str]) -> Server {
        let dir = TempDir::new();
        let pg = postgres_url().map(|url| std::sync::Arc::new(PgDatabase::create(&url)));
        let db = match &pg {
            Some(pg) => pg.url.clone(),
            None => sqlite_path(dir.path()).display().to_string(),
        };
        Server::launch(dir, db, pg, addr, args)
    }

    /// A server on a SQLite file whatever the environment says.
    pub fn start_sqlite(args: &[&str]) -> Server {
        let dir = TempDir::new();
        let db = sqlite_path(dir.path()).display().to_string();
        Server::launch(dir, db, None, "127.0.0.1:0", args)
    }

    /// A server on the PostgreSQL database `pg`.
    pub fn start_postgres(pg: std::sync::Arc<PgDatabase>, args: &[&str]) -> Server {
        let db = pg.url.clone();
        Server::launch(TempDir::new(), db, Some(pg), "127.0.0.1:0", args)
    }

    /// Another node on this server's PostgreSQL database (PostgreSQL only).
    pub fn another_node(&self, args: &[&str]) -> Server {
        let pg = self.pg.clone().expect("several nodes need PostgreSQL");
        Server::launch(
            TempDir::new(),
            self.db.clone(),
            Some(pg),
            "127.0.0.1:0",
            args,
        )
    }

    fn launch(
        dir: TempDir,
        db: String,
        pg: Option<std::sync::Arc<PgDatabase>>,
        addr: &str,
        args: &[&str],
    ) -> Server {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (child, addr) = spawn(dir.path(), &db, &args, addr);
        Server {
            child: Some(child),
            addr,
            dir,
            args,
            clock_offset: 0,
            db,
            pg,
        }
    }

    /// What the server's `--db` says, for the command line next to it.
    pub fn db_arg(&self) -> &str {
        &self.db
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The SQLite file (SQLite only: a test that needs it skips itself on
    /// PostgreSQL).
    pub fn db_path(&self) -> PathBuf {
        assert!(self.pg.is_none(), "db_path on PostgreSQL");
        assert!(!self.db.starts_with("postgres"), "db_path on PostgreSQL");
        sqlite_path(self.dir.path())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `kill -9`: no shutdown code runs.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then waits for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server is running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same database with other flags.
    pub fn restart_with(&mut self, args: &[&str]) {
        self.args = args.iter().map(|s| s.to_string()).collect();
        self.restart();
    }

    /// Starts the server again on the same database (on a new port).
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.kill_hard();
        }
        let mut args = self.args.clone();
        if self.clock_offset != 0 {
            args.extend(["--clock-offset".to_owned(), self.clock_offset.to_string()]);
        }
        let (child, addr) = spawn(self.dir.path(), &self.db, &args, "127.0.0.1:0");
        self.child = Some(child);
        self.addr = addr;
    }

    /// Lets `seconds` pass for the server without waiting: stops it cleanly
    /// (pending last uses are stored) and starts it again on the same
    /// database with its clock that much further ahead. In-memory state
    /// (caches, lockouts) starts afresh, as after any restart.
    pub fn advance_clock(&mut self, seconds: i64) {
        self.clock_offset += seconds;
        if self.child.is_some() {
            self.terminate();
        }
        self.restart();
    }

    pub fn request(&self, method: &str, path: &str) -> Request {
        Request {
            addr: self.addr,
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(&self, path: &str) -> Request {
        self.request("GET", path)
    }

    pub fn post(&self, path: &str) -> Request {
        self.request("POST", path)
    }

    pub fn patch(&self, path: &str) -> Request {
        self.request("PATCH", path)
    }

    pub fn put(&self, path: &str) -> Request {
        self.request("PUT", path)
    }

    pub fn delete(&self, path: &str) -> Request {
        self.request("DELETE", path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn sqlite_path(dir: &Path) -> PathBuf {
    dir.join("data").join("tokenward.db")
}

fn spawn(dir: &Path, db: &str, args: &[String], addr: &str) -> (Child, SocketAddr) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(["--addr", addr])
        .args(["--db", db])
        .args(args)
        .env("TOKENWARD_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("the tokenward binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        // Keep draining so the server never blocks on a full pipe.
        for _ in lines {}
    });
    let line = match rx.recv_timeout(START_TIMEOUT) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            panic!("server did not print its address; log:\n{log}");
        }
    };
    let url = line
        .rsplit("http://")
        .next()
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let mut addr: SocketAddr = url
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("bad address in {line:?}"));
    if addr.ip().is_unspecified() {
        addr.set_ip([127, 0, 0, 1].into());
    }
    (child, addr)
}

pub struct Request {
    addr: SocketAddr,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn bearer(self, credential: &str) -> Request {
        self.header("Authorization", &format!("Bearer {credential}"))
    }

    /// Acts in `workspace` (a session's `X-Workspace`).
    pub fn workspace(self, workspace: &str) -> Request {
        self.header("X-Workspace", workspace)
    }

    pub fn json(self, value: Value) -> Request {
        self.raw_body("application/json", value.to_string().into_bytes())
    }

    pub fn raw_body(mut self, content_type: &str, body: Vec<u8>) -> Request {
        self.headers
            .push(("Content-Type".into(), content_type.into()));
        self.body = body;
        self
    }

    pub fn send(self) -> Response {
        let mut stream = TcpStream::connect(self.addr).expect("connect to the server");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.method,
            self.path,
            self.addr,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        // The server may answer (413) and close before reading everything.
        let _ = stream.write_all(&bytes);
        let mut raw = Vec::new();
        if let Err(err) = stream.read_to_end(&mut raw) {
            assert!(
                !raw.is_empty(),
                "{} {}: no response ({err})",
                self.method,
                self.path
            );
        }
        Response::parse(&raw)
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> Response {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        if chunked {
            body = dechunk(&body);
        }
        Response {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// `data` of a success envelope, after checking the status.
    pub fn data(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        let json = self.json();
        assert_eq!(json["success"], true, "{json}");
        json["data"].clone()
    }

    /// Checks the error envelope: status and `error` code; returns the JSON.
    pub fn error(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        let json = self.json();
        assert_eq!(json["success"], false, "{json}");
        assert_eq!(json["error"], code, "{json}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{json}"
        );
        json
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&body[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = end + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

/// A signed-up account with its session.
#[derive(Clone, Debug)]
pub struct Account {
    pub email: String,
    pub id: String,
    pub session: String,
    /// The personal workspace made at sign-up.
    pub workspace: String,
}

pub fn sign_up(server: &Server, email: &str) -> Account {
    let data = server
        .post("/api/v1/accounts")
        .json(json!({"email": email, "password": PASSWORD}))
        .send()
        .data(201);
    let session = data["token"].as_str().unwrap().to_owned();
    let me = server.get("/api/v1/me").bearer(&session).send().data(200);
    Account {
        email: email.to_owned(),
        id: data["account"]["id"].as_str().unwrap().to_owned(),
        session,
        workspace: me["workspaces"][0]["id"].as_str().unwrap().to_owned(),
    }
}

/// The first account (instance admin), then open sign-up so that tests can
/// make more accounts.
pub fn admin_with_open_signup(server: &Server) -> Account {
    let admin = sign_up(server, "admin@example.com");
    server
        .patch("/api/v1/settings")
        .bearer(&admin.session)
        .json(json!({"allow_signup": true}))
        .send()
        .data(200);
    admin
}

pub fn sign_in(server: &Server, email: &str, password: &str) -> Response {
    server
        .post("/api/v1/sessions")
        .json(json!({"email": email, "password": password}))
        .send()
}

/// Creates a token with a session or a token credential; returns the body.
pub fn create_token(server: &Server, credential: &str, body: Value) -> Value {
    server
        .post("/api/v1/tokens")
        .bearer(credential)
        .json(body)
        .send()
        .data(201)
}

/// A token named `t` holding the `tokens` scope: the plain token most tests
/// need.
pub fn plain_token(server: &Server, credential: &str) -> Value {
    create_token(
        server,
        credential,
        json!({"name": "t", "scopes": ["tokens"]}),
    )
}

/// Headers an answer carries whichever way its request was routed: the
/// tests that send one request both ways (`src/api/hot.rs`) compare them.
pub const ANSWER_HEADERS: [&str; 7] = [
    "www-authenticate",
    "cache-control",
    "content-type",
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
];

/// A workspace id that no workspace has.
pub const NOBODY_S_WORKSPACE: &str = "00000000-0000-4000-8000-000000000000";

/// The workspace `token` belongs to, read from the server's database file
/// (as the service that verifies it would know it), if it is a token there.
pub fn workspace_of(server: &Server, token: &str) -> Option<String> {
    use sha2::Digest;
    if let Some(pg) = &server.pg {
        let hash = sha2::Sha256::digest(token.as_bytes());
        return pg.with_client(|client| {
            client
                .query_opt(
                    "SELECT workspace_id FROM tokens WHERE secret_hash = $1",
                    &[&hash.as_slice()],
                )
                .ok()
                .flatten()
                .map(|row| row.get(0))
        });
    }
    let db = rusqlite::Connection::open(server.db_path()).ok()?;
    db.busy_timeout(Duration::from_secs(5)).ok()?;
    let hash = sha2::Sha256::digest(token.as_bytes());
    db.query_row(
        "SELECT workspace_id FROM tokens WHERE secret_hash = ?1",
        [hash.as_slice()],
        |row| row.get(0),
    )
    .ok()
}

fn verify_body(token: &str, scopes: Option<Value>) -> Value {
    let mut body = json!({"token": token});
    if let Some(scopes) = scopes {
        body["scopes"] = scopes;
    }
    body
}

/// Verifies `token` anonymously in its own workspace, as a service of that
/// workspace would (or in nobody's, when it is not a token there).
pub fn verify(server: &Server, token: &str, scopes: Option<Value>) -> Value {
    let workspace = workspace_of(server, token).unwrap_or_else(|| NOBODY_S_WORKSPACE.to_owned());
    verify_in(server, &workspace, token, scopes)
}

/// Verifies `token` anonymously, pinning `workspace` with `workspace_id`.
pub fn verify_in(server: &Server, workspace: &str, token: &str, scopes: Option<Value>) -> Value {
    let mut body = verify_body(token, scopes);
    body["workspace_id"] = json!(workspace);
    server
        .post("/api/v1/tokens/verify")
        .json(body)
        .send()
        .data(200)
}

/// Verifies `token` as a service holding the verifier token `verifier`.
pub fn verify_with(
    server: &Server,
    verifier: &str,
    token: &str,
    scopes: Option<Value>,
) -> Response {
    server
        .post("/api/v1/tokens/verify")
        .bearer(verifier)
        .json(verify_body(token, scopes))
        .send()
}

/// Adds a scope to a workspace's catalog.
pub fn add_catalog_scope(server: &Server, admin: &Account, workspace: &str, name: &str) {
    server
        .put(&format!("/api/v1/workspaces/{workspace}/scopes/{name}"))
        .bearer(&admin.session)
        .json(json!({"description": format!("the {name} API")}))
        .send()
        .data(200);
}

/// Polls `check` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
