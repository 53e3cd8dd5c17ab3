//! The Audit log page end to end: changes made through the API read back
//! as sentences with links, filters kept in the URL, pages, the instance
//! scope for the instance admin, and who sees the page at all. The real
//! server and a headless Chromium driven over WebDriver (chromedriver), as
//! in `tests/ui.rs`; screenshots go to `target/ui-screenshots/`.
//!
//! Without Chromium and chromedriver the browser tests say they were
//! skipped and pass, except under `CI=true`, where a missing browser fails
//! the run.

mod common;

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    PASSWORD, Server, TempDir, Value, add_catalog_scope, admin_with_open_signup, create_token,
    json, sign_in, sign_up,
};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use tokenward::core::audit::ACTIONS;

/// How long any one thing may take to appear in the page.
const WAIT: Duration = Duration::from_secs(20);
const ADMIN_EMAIL: &str = "admin@example.com";
const PAGE: &str = include_str!("../assets/views/audit.js");

/// Every action the server records has a label in the filter and a
/// sentence of its own on the page.
#[test]
fn every_action_has_a_label_and_a_sentence() {
    for action in ACTIONS {
        assert!(
            PAGE.contains(&format!("['{action}', '")),
            "{action} has no label in assets/views/audit.js"
        );
        assert!(
            PAGE.contains(&format!("'{action}': (")),
            "{action} has no sentence in assets/views/audit.js"
        );
    }
}

/// The workspace admin reads the changes made through the API as
/// sentences, follows a token link and a member link, filters by action
/// (kept in the URL across a reload) and by date, pages through, and, as
/// the instance admin, reads sign-ups and failed sign-ins under Instance.
#[test]
fn audit_log_reads_as_sentences_with_links_filters_and_pages() {
    let Some(browser) = browser_or_skip("audit") else {
        return;
    };
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let bob = sign_up(&server, "bob@example.com");
    sign_in(&server, "bob@example.com", "not bob's password at all")
        .error(401, "invalid_credentials");
    sign_in(&server, "nobody@example.com", "not a password at all")
        .error(401, "invalid_credentials");
    add_catalog_scope(&server, &admin, &admin.workspace, "contacts");
    // Twenty older entries, so that the interesting ones fill the first page
    // and the catalog scope lands on the second.
    for n in 1..=20 {
        create_token(
            &server,
            &admin.session,
            json!({"name": format!("Batch job {n}"), "scopes": ["contacts:read"]}),
        );
    }
    let crm = create_token(
        &server,
        &admin.session,
        json!({"name": "CRM Integration", "scopes": ["contacts", "tokens"]}),
    );
    let crm_id = crm["id"].as_str().unwrap().to_owned();
    let crm_hint = crm["token_hint"].as_str().unwrap().to_owned();
    server
        .patch(&format!("/api/v1/tokens/{crm_id}"))
        .bearer(&admin.session)
        .json(json!({"scopes": ["contacts:read", "tokens"]}))
        .send()
        .data(200);
    let child = create_token(
        &server,
        crm["token"].as_str().unwrap(),
        json!({"name": "child", "scopes": ["tokens:read"]}),
    );
    let child_hint = child["token_hint"].as_str().unwrap().to_owned();
    server
        .delete(&format!("/api/v1/tokens/{crm_id}"))
        .bearer(&admin.session)
        .send();
    server
        .post(&format!("/api/v1/workspaces/{}/members", admin.workspace))
        .bearer(&admin.session)
        .json(json!({"email": bob.email, "role": "member", "scopes": ["contacts:read"]}))
        .send()
        .data(201);
    let total = server
        .get("/api/v1/audit?per_page=1")
        .bearer(&admin.session)
        .send()
        .json()["meta"]["total"]
        .clone();
    assert_eq!(total, json!(26), "the workspace's entries");

    run_ui(
        browser,
        "audit",
        Viewport::Desktop,
        server,
        move |ui| async move {
            ui.sign_in(ADMIN_EMAIL).await;
            ui.nav("audit", "Audit log").await;
            ui.text_contains("[data-testid=list-summary]", "1–20 of 26 entries")
                .await;
            let sentences = ui.sentences().await;
            for expected in [
                format!("admin@example.com revoked CRM Integration ({crm_hint}) from 127.0.0.1"),
                format!(
                    "The token CRM Integration (acting for admin@example.com) created child \
                     ({child_hint}) from 127.0.0.1"
                ),
                format!(
                    "admin@example.com changed the scopes of CRM Integration ({crm_hint}) \
                     from contacts tokens to contacts:read tokens, from 127.0.0.1"
                ),
                format!("admin@example.com created CRM Integration ({crm_hint}) from 127.0.0.1"),
                "admin@example.com added bob@example.com as a member with contacts:read \
                 from 127.0.0.1"
                    .to_owned(),
            ] {
                assert!(
                    sentences.contains(&expected),
                    "no sentence {expected:?} in {sentences:#?}"
                );
            }
            assert!(
                sentences[0].starts_with("admin@example.com added bob@example.com"),
                "newest first: {sentences:#?}"
            );
            // Relative times with the exact time on hover; labelled filters;
            // an ordered list.
            let checks = ui
                .js(
                    "const time = document.querySelector('[data-testid=audit-entry] time');
                     const controls = [...document.querySelectorAll(
                         '[data-testid=audit-filters] input, [data-testid=audit-filters] select')];
                     return [
                         !!time && time.title.length > 0 && time.dateTime.endsWith('Z'),
                         controls.length === 5 && controls.every((c) => c.labels.length === 1),
                         document.querySelector('[data-testid=audit-list]').tagName,
                     ];",
                    vec![],
                )
                .await;
            assert_eq!(checks, json!([true, true, "OL"]), "{checks}");
            ui.screenshot("01-workspace").await;

            // A token link leads to the token, even a revoked one.
            ui.click("[data-action='token.revoke'] [data-testid=audit-token-link]")
                .await;
            ui.page("Edit permissions").await;
            assert_eq!(
                ui.path().await,
                format!("/tokens/{crm_id}/permissions"),
                "the revoked token's page"
            );
            ui.text_contains("main", "This token is revoked").await;
            ui.client.back().await.unwrap();
            ui.page("Audit log").await;

            // A member link leads to the member.
            ui.click("[data-action='member.add'] [data-testid=audit-member-link]")
                .await;
            ui.page("Edit member").await;
            assert_eq!(ui.path().await, format!("/members/{}", bob.id));
            ui.client.back().await.unwrap();
            ui.page("Audit log").await;

            // Filter by action: only those, and the URL keeps the filter.
            ui.find("#audit-action")
                .await
                .select_by_value("token.revoke")
                .await
                .unwrap();
            ui.click("[data-testid=audit-apply]").await;
            ui.until_entries("token.revoke", 1).await;
            ui.text_contains("[data-testid=list-summary]", "1 entry")
                .await;
            assert_eq!(ui.query_of("action").await, json!("token.revoke"));
            ui.screenshot("02-filtered").await;
            let filtered = ui.client.current_url().await.unwrap();
            ui.client.goto(filtered.as_str()).await.unwrap();
            ui.page("Audit log").await;
            ui.until_entries("token.revoke", 1).await;
            let kept = ui
                .js(
                    "return document.querySelector('#audit-action').value;",
                    vec![],
                )
                .await;
            assert_eq!(kept, json!("token.revoke"), "the filter outlives a reload");

            // A filter with more than a page: pages keep the filter.
            ui.find("#audit-action")
                .await
                .select_by_value("token.create")
                .await
                .unwrap();
            ui.click("[data-testid=audit-apply]").await;
            ui.text_contains("[data-testid=list-summary]", "1–20 of 22 entries")
                .await;
            ui.until_entries("token.create", 20).await;
            ui.click("[data-testid=page-next]").await;
            ui.text_contains("[data-testid=list-summary]", "21–22 of 22 entries")
                .await;
            ui.until_entries("token.create", 2).await;
            assert_eq!(ui.query_of("page").await, json!("2"));

            // Every entry again, and the oldest on the second page.
            ui.click("[data-testid=audit-clear]").await;
            ui.text_contains("[data-testid=list-summary]", "1–20 of 26 entries")
                .await;
            ui.click("[data-testid=page-next]").await;
            ui.text_contains("[data-testid=list-summary]", "21–26 of 26 entries")
                .await;
            let sentences = ui.sentences().await;
            assert_eq!(sentences.len(), 6, "{sentences:#?}");
            assert_eq!(
                sentences.last().unwrap(),
                "admin@example.com saved the scope contacts (“the contacts API”) from 127.0.0.1"
            );
            ui.click("[data-testid=page-prev]").await;
            ui.text_contains("[data-testid=list-summary]", "1–20 of 26 entries")
                .await;

            // By keyboard: Enter in a field applies the filters, and the
            // focus stays on the form.
            ui.fill("#audit-target", &crm_id).await;
            ui.find("#audit-target")
                .await
                .send_keys(&Key::Enter)
                .await
                .unwrap();
            ui.until(
                "the three entries about CRM Integration",
                "const rows = [...document.querySelectorAll('[data-testid=audit-entry]')];
                 return rows.map((row) => row.dataset.action).join(' ')
                     === 'token.revoke token.update token.create'
                     && document.activeElement.id === 'audit-apply';",
                vec![],
            )
            .await;
            assert_eq!(ui.query_of("target").await, json!(crm_id));
            ui.click("[data-testid=audit-clear]").await;
            ui.text_contains("[data-testid=list-summary]", "1–20 of 26 entries")
                .await;

            // Dates: nothing happened before today.
            ui.js(
                "const day = new Date(Date.now() - 86400000);
                 const pad = (n) => String(n).padStart(2, '0');
                 document.querySelector('#audit-until').value =
                     `${day.getFullYear()}-${pad(day.getMonth() + 1)}-${pad(day.getDate())}`;",
                vec![],
            )
            .await;
            ui.click("[data-testid=audit-apply]").await;
            ui.text_contains(
                "[data-testid=empty-state]",
                "No entries match these filters",
            )
            .await;
            ui.screenshot("03-empty").await;

            // The instance admin reads instance entries.
            ui.click("[data-testid=audit-clear]").await;
            ui.text_contains("[data-testid=list-summary]", "1–20 of 26 entries")
                .await;
            ui.click("[data-testid=audit-scope-instance]").await;
            ui.page("Audit log").await;
            assert_eq!(ui.query_of("scope").await, json!("instance"));
            ui.find("[data-testid=audit-list]").await;
            let sentences = ui.sentences().await;
            for expected in [
                "admin@example.com signed up from 127.0.0.1, the first account and so the \
                 instance admin",
                "bob@example.com signed up from 127.0.0.1",
                "A sign-in to bob@example.com failed from 127.0.0.1",
                "A sign-in to an unknown account failed from 127.0.0.1",
                "admin@example.com changed the instance settings from 127.0.0.1",
                "admin@example.com signed in from 127.0.0.1",
            ] {
                assert!(
                    sentences.iter().any(|s| s == expected),
                    "no sentence {expected:?} in {sentences:#?}"
                );
            }
            ui.screenshot("04-instance").await;
            ui.find("#audit-action")
                .await
                .select_by_value("session.fail")
                .await
                .unwrap();
            ui.click("[data-testid=audit-apply]").await;
            ui.until_entries("session.fail", 2).await;
            assert_eq!(ui.query_of("scope").await, json!("instance"));
        },
    );
}

/// A member without `audit:read` has no Audit log in the navigation and
/// is told why at /audit; a member granted it reads the log; the page fits
/// a phone in dark mode.
#[test]
fn audit_log_for_members_and_at_phone_width() {
    let Some(browser) = browser_or_skip("audit-phone") else {
        return;
    };
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let bob = sign_up(&server, "bob@example.com");
    let carol = sign_up(&server, "carol@example.com");
    add_catalog_scope(&server, &admin, &admin.workspace, "contacts");
    for (member, scopes) in [
        (&bob, json!(["contacts:read"])),
        (&carol, json!(["audit:read"])),
    ] {
        server
            .post(&format!("/api/v1/workspaces/{}/members", admin.workspace))
            .bearer(&admin.session)
            .json(json!({"email": member.email, "role": "member", "scopes": scopes}))
            .send()
            .data(201);
    }
    let crm = create_token(
        &server,
        &admin.session,
        json!({"name": "Zapier connection for the marketing team's weekly campaign reports",
               "scopes": ["contacts", "tokens"]}),
    );
    server
        .post(&format!(
            "/api/v1/tokens/{}/reset",
            crm["id"].as_str().unwrap()
        ))
        .bearer(&admin.session)
        .send()
        .data(201);
    server
        .post("/api/v1/domains")
        .bearer(&admin.session)
        .json(json!({"name": "example.com"}))
        .send()
        .data(201);
    let workspace = admin.workspace.clone();
    run_ui(
        browser,
        "audit-phone",
        Viewport::PhoneDark,
        server,
        move |ui| async move {
            // Bob holds contacts:read only: no Audit log in the admin's
            // workspace, though there is one in his own.
            ui.sign_in(&bob.email).await;
            ui.in_workspace(&bob.workspace).await;
            ui.until_nav_audit(true).await;
            ui.in_workspace(&workspace).await;
            ui.until_nav_audit(false).await;
            ui.goto("/audit").await;
            ui.text_contains(
                "[data-testid=audit-forbidden]",
                "members granted Read on audit",
            )
            .await;
            ui.sign_out().await;

            // Carol holds audit:read: she reads the log.
            ui.sign_in(&carol.email).await;
            ui.in_workspace(&workspace).await;
            ui.until_nav_audit(true).await;
            ui.nav("audit", "Audit log").await;
            ui.find("[data-testid=audit-list]").await;
            assert!(
                ui.sentences()
                    .await
                    .iter()
                    .any(|s| s.starts_with("admin@example.com added the domain example.com")),
            );
            assert_eq!(
                ui.js(
                    "return !!document.querySelector('[data-testid=audit-scope-instance]');",
                    vec![]
                )
                .await,
                json!(false),
                "only the instance admin switches to instance entries"
            );
            ui.sign_out().await;

            ui.sign_in(ADMIN_EMAIL).await;
            ui.nav("audit", "Audit log").await;
            ui.find("[data-testid=audit-list]").await;
            ui.fits_width("audit log").await;
            // On a phone the entries come first; the filters open on request.
            assert_eq!(
                ui.js(
                    "return document.querySelector('[data-testid=audit-filter-box]').open;",
                    vec![]
                )
                .await,
                json!(false),
                "the filters start closed at phone width"
            );
            ui.screenshot("01-phone").await;
            ui.click("[data-testid=audit-filter-box] summary").await;
            for control in [
                "[data-testid=nav-audit]",
                "#audit-action",
                "#audit-until",
                "[data-testid=audit-apply]",
                "[data-testid=audit-scope-instance]",
            ] {
                ui.within_width(control).await;
            }
            ui.screenshot("01-phone-filters").await;
            ui.click("[data-action='token.reset'] summary").await;
            ui.text_contains("[data-action='token.reset'] details", "Replaced by")
                .await;
            ui.fits_width("an entry's details").await;
            ui.screenshot("02-phone-details").await;
            ui.click("[data-testid=audit-scope-instance]").await;
            ui.find("[data-testid=audit-list]").await;
            ui.fits_width("instance entries").await;
            ui.screenshot("03-phone-instance").await;
        },
    );
}

/* ---------- the browser, as in tests/ui.rs ---------- */

fn screenshot_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/ui-screenshots"
    ))
}

/// Chromium and chromedriver, where Debian's packages put them (or on PATH).
struct BrowserPaths {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        let fixed = Path::new("/usr/bin").join(name);
        if fixed.is_file() {
            return Some(fixed);
        }
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// The browser, or `None` after saying plainly why the test is skipped.
/// Under `CI=true` a missing browser is a failure.
fn browser_or_skip(test: &str) -> Option<BrowserPaths> {
    let chromium = find_program(&["chromium", "chromium-browser"]);
    let chromedriver = find_program(&["chromedriver"]);
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Some(BrowserPaths {
            chromium,
            chromedriver,
        }),
        (chromium, chromedriver) => {
            let missing: Vec<&str> = [
                chromium.is_none().then_some("chromium"),
                chromedriver.is_none().then_some("chromedriver"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let why = format!(
                "{} not found (install the Debian packages chromium and chromium-driver)",
                missing.join(" and ")
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: the browser tests need a browser under CI: {why}");
            }
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED {test}: browser test not run: {why}"
            );
            None
        }
    }
}

/// A running chromedriver in its own process group. Dropping it kills the
/// group: chromedriver and every browser process it started, even when a
/// test panics half way.
struct Driver {
    child: Child,
    port: u16,
    profile: TempDir,
    chromium: PathBuf,
}

impl Driver {
    fn start(paths: &BrowserPaths) -> Driver {
        let profile = TempDir::new();
        let port = free_port();
        let log = std::fs::File::create(profile.path().join("chromedriver.log")).unwrap();
        let child = Command::new(&paths.chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            port,
            profile,
            chromium: paths.chromium.clone(),
        };
        let deadline = Instant::now() + WAIT;
        while !driver.ready() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on port {port}; log:\n{}",
                driver.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// `GET /status` says `"ready": true`.
    fn ready(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "GET /status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.contains("\"ready\":true")
    }

    /// A new browser session: desktop 1280×900, or a phone of 390×844.
    async fn session(&self, viewport: Viewport) -> Client {
        let profile = self.profile.path().join(format!("profile-{}", free_port()));
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut options = json!({
            "binary": self.chromium.to_string_lossy(),
        });
        if let Viewport::PhoneDark = viewport {
            args.push("--force-dark-mode".to_owned());
            args.push("--blink-settings=preferredColorScheme=0".to_owned());
            options["mobileEmulation"] = json!({
                "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0, "touch": true},
            });
        }
        options["args"] = json!(args);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "no browser session: {err}; chromedriver log:\n{}",
                    self.log()
                )
            })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[derive(Clone, Copy)]
enum Viewport {
    Desktop,
    /// 390×844, touch, dark colour scheme.
    PhoneDark,
}

/// One test's browser, its server and where its screenshots go.
#[derive(Clone)]
struct Ui {
    client: Client,
    server: Arc<Server>,
    test: &'static str,
}

/// Runs `flow` in a fresh browser against `server`. On failure it saves a
/// screenshot of the page as it was, then fails the test with the panic.
fn run_ui<F, Fut>(
    paths: BrowserPaths,
    test: &'static str,
    viewport: Viewport,
    server: Server,
    flow: F,
) where
    F: FnOnce(Ui) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let driver = Driver::start(&paths);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    runtime.block_on(async {
        let client = driver.session(viewport).await;
        let ui = Ui {
            client: client.clone(),
            server: Arc::new(server),
            test,
        };
        let outcome = tokio::spawn(flow(ui.clone())).await;
        if outcome.is_err() {
            ui.screenshot("failure").await;
        }
        let _ = client.close().await;
        if let Err(err) = outcome {
            if err.is_panic() {
                std::panic::resume_unwind(err.into_panic());
            }
            panic!("{test}: {err}");
        }
    });
    eprintln!("{test}: browser flow took {:?}", started.elapsed());
}

impl Ui {
    async fn goto(&self, path: &str) {
        let url = format!("http://{}{path}", self.server.addr);
        self.client.goto(&url).await.unwrap();
    }

    async fn screenshot(&self, label: &str) {
        let Ok(png) = self.client.screenshot().await else {
            return;
        };
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{}-{label}.png", self.test)), png).unwrap();
    }

    /// Waits until `css` matches an element and returns it.
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("{css} did not appear: {err}"))
    }

    /// Runs `script` (a function body returning a value) with `args`.
    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
    }

    /// Polls `script` (returning a boolean) until it is true.
    async fn until(&self, what: &str, script: &str, args: Vec<Value>) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.js(script, args.clone()).await == Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the element `css` is shown and its text contains `text`.
    async fn text_contains(&self, css: &str, text: &str) {
        self.until(
            &format!("{css} to show {text:?}"),
            "const el = document.querySelector(arguments[0]);
             return !!el && el.offsetParent !== null && el.innerText.includes(arguments[1]);",
            vec![json!(css), json!(text)],
        )
        .await;
    }

    /// Clicks `css` once it is scrolled to the middle of the screen, clear
    /// of the sticky top bar.
    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.js(
            "arguments[0].scrollIntoView({block: 'center'});",
            vec![serde_json::to_value(&element).unwrap()],
        )
        .await;
        element.click().await.unwrap();
    }

    async fn fill(&self, css: &str, value: &str) {
        let input = self.find(css).await;
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    /// The screen whose `<h1>` reads `title`.
    async fn page(&self, title: &str) {
        self.until(
            &format!("the page {title:?}"),
            "const h = document.querySelector('main h1');
             return !!h && h.textContent.trim() === arguments[0]
                 && !document.querySelector('main .loading');",
            vec![json!(title)],
        )
        .await;
    }

    async fn nav(&self, section: &str, title: &str) {
        self.click(&format!("[data-testid=nav-{section}]")).await;
        self.page(title).await;
    }

    async fn sign_in(&self, email: &str) {
        self.goto("/").await;
        self.find("#signin-form").await;
        self.fill("#signin-email", email).await;
        self.fill("#signin-password", PASSWORD).await;
        self.click("#signin-submit").await;
        self.page("API Tokens").await;
    }

    async fn sign_out(&self) {
        self.click("[data-testid=sign-out]").await;
        self.find("#signin-form").await;
    }

    async fn in_workspace(&self, workspace: &str) {
        self.find("[data-testid=workspace-select]")
            .await
            .select_by_value(workspace)
            .await
            .unwrap();
        self.page("API Tokens").await;
    }

    /// Waits until the navigation shows (or hides) the Audit log.
    async fn until_nav_audit(&self, shown: bool) {
        self.until(
            &format!(
                "the Audit log link to be {}",
                if shown { "shown" } else { "hidden" }
            ),
            "const link = document.querySelector('[data-testid=nav-audit]');
             return !!link && (link.offsetParent !== null) === arguments[0];",
            vec![json!(shown)],
        )
        .await;
    }

    /// The location's path.
    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// A query parameter of the location (null when absent).
    async fn query_of(&self, key: &str) -> Value {
        self.js(
            "return new URLSearchParams(location.search).get(arguments[0]);",
            vec![json!(key)],
        )
        .await
    }

    /// The entries' sentences, as a reader sees them, top to bottom.
    async fn sentences(&self) -> Vec<String> {
        let value = self
            .js(
                "return [...document.querySelectorAll('[data-testid=audit-sentence]')]
                     .map((el) => el.innerText.replace(/\\s+/g, ' ').trim());",
                vec![],
            )
            .await;
        serde_json::from_value(value).unwrap()
    }

    /// Waits until the list holds exactly `count` entries, all of `action`.
    async fn until_entries(&self, action: &str, count: usize) {
        self.until(
            &format!("{count} entries of {action}"),
            "const rows = [...document.querySelectorAll('[data-testid=audit-entry]')];
             return !document.querySelector('main .loading') && rows.length === arguments[1]
                 && rows.every((row) => row.dataset.action === arguments[0]);",
            vec![json!(action), json!(count)],
        )
        .await;
    }

    /// Asserts the page does not scroll sideways.
    async fn fits_width(&self, screen: &str) {
        let widths = self
            .js(
                "return [document.documentElement.scrollWidth, document.body.scrollWidth,
                         window.innerWidth];",
                vec![],
            )
            .await;
        let widths: Vec<i64> = widths
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as i64)
            .collect();
        assert!(
            widths[0] <= widths[2] && widths[1] <= widths[2],
            "{screen} overflows horizontally: scroll widths {widths:?} for a viewport of {}",
            widths[2]
        );
    }

    /// Asserts that the element `css` is displayed and inside the viewport's
    /// width.
    async fn within_width(&self, css: &str) {
        let fits = self
            .js(
                "const el = document.querySelector(arguments[0]);
                 if (!el || el.offsetParent === null) return 'missing';
                 const r = el.getBoundingClientRect();
                 return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth + 0.5
                     ? 'ok' : `${r.left}..${r.right} of ${window.innerWidth}`;",
                vec![json!(css)],
            )
            .await;
        assert_eq!(fits, json!("ok"), "{css} is not reachable at this width");
    }
}
