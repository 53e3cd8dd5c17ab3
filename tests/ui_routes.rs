//! The Routes page end to end: the real server, headless Chromium over
//! WebDriver, and the API checked over plain HTTP beside it. Edit the
//! forward-auth rules, see a validation error by its field, lose a race to
//! another editor and get their version back, and try requests through
//! `explain`. Screenshots go to `target/ui-screenshots/`.
//!
//! Without Chromium and chromedriver the test says it was skipped and
//! passes, except under `CI=true`, where a missing browser fails the run.
//! (The helpers are a few of tests/ui.rs's, kept apart so that the two
//! files can change independently.)

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
    PASSWORD, Server, TempDir, Value, add_catalog_scope, admin_with_open_signup, create_token, json,
};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

const WAIT: Duration = Duration::from_secs(20);
const ADMIN_EMAIL: &str = "admin@example.com";

struct BrowserPaths {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        std::iter::once(Path::new("/usr/bin").to_path_buf())
            .chain(std::env::split_paths(&path))
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

fn browser_or_skip(test: &str) -> Option<BrowserPaths> {
    let chromium = find_program(&["chromium", "chromium-browser"]);
    let chromedriver = find_program(&["chromedriver"]);
    if let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) {
        return Some(BrowserPaths {
            chromium,
            chromedriver,
        });
    }
    let why = "chromium or chromedriver not found (install the Debian packages chromium and chromium-driver)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: the browser tests need a browser under CI: {why}");
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: browser test not run: {why}"
    );
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver in its own process group, killed with every browser it
/// started when dropped.
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
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

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

    async fn session(&self) -> Client {
        let profile = self.profile.path().join(format!("profile-{}", free_port()));
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-extensions".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": self.chromium.to_string_lossy(), "args": args}),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session")
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

#[derive(Clone)]
struct Ui {
    client: Client,
    server: Arc<Server>,
    test: &'static str,
}

fn run_ui<F, Fut>(paths: BrowserPaths, test: &'static str, server: Server, flow: F)
where
    F: FnOnce(Ui) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let driver = Driver::start(&paths);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = driver.session().await;
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
        let dir = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/ui-screenshots"
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{}-{label}.png", self.test)), png).unwrap();
    }

    async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("{css} did not appear: {err}"))
    }

    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
    }

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

    async fn text_contains(&self, css: &str, text: &str) -> String {
        self.until(
            &format!("{css} to show {text:?}"),
            "const el = document.querySelector(arguments[0]);
             return !!el && el.offsetParent !== null && el.innerText.includes(arguments[1]);",
            vec![json!(css), json!(text)],
        )
        .await;
        self.find(css).await.text().await.unwrap()
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    async fn fill(&self, css: &str, value: &str) {
        let input = self.find(css).await;
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

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

    /// The `n`-th rule row's (1-based) control `field`.
    fn rule(n: usize, field: &str) -> String {
        format!("[data-testid=routes-row]:nth-of-type({n}) [data-rule-field={field}]")
    }
}

fn rules_etag(server: &Server, session: &str) -> (Value, String) {
    let response = server.get("/api/v1/routes").bearer(session).send();
    let etag = response.header("etag").unwrap().to_owned();
    (response.data(200), etag)
}

#[test]
fn routes_page_edits_rules_and_tries_requests() {
    let Some(browser) = browser_or_skip("routes") else {
        return;
    };
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    add_catalog_scope(&server, &admin, &admin.workspace, "contacts");
    let reader = create_token(
        &server,
        &admin.session,
        json!({"name": "reader", "scopes": ["contacts:read"]}),
    );
    let reader = reader["token"].as_str().unwrap().to_owned();
    let session = admin.session.clone();
    run_ui(browser, "routes", server, move |ui| async move {
        let server = ui.server.clone();
        ui.goto("/").await;
        ui.find("#signin-form").await;
        ui.fill("#signin-email", ADMIN_EMAIL).await;
        ui.fill("#signin-password", PASSWORD).await;
        ui.click("#signin-submit").await;
        ui.page("API Tokens").await;
        ui.click("[data-testid=nav-routes]").await;
        ui.page("Routes").await;
        ui.find("[data-testid=routes-empty]").await;

        // Add a rule: methods are upper-cased, scopes space-separated.
        ui.click("[data-testid=routes-add]").await;
        ui.fill(&Ui::rule(2, "id"), "contacts-read").await;
        ui.fill(&Ui::rule(2, "methods"), "get").await;
        ui.fill(&Ui::rule(2, "path"), "/contacts/**").await;
        ui.fill(&Ui::rule(2, "scopes"), "contacts:read").await;
        ui.click("[data-testid=routes-save]").await;
        ui.text_contains("[data-testid=toast]", "Rules saved.")
            .await;
        let (stored, etag) = rules_etag(&server, &session);
        assert_eq!(etag, "\"1\"");
        assert_eq!(
            stored["rules"],
            json!([{"id": "contacts-read", "methods": ["GET"], "path": "/contacts/**", "scopes": ["contacts:read"]}])
        );

        // A bad pattern is shown beside its field, and nothing is stored.
        ui.click("[data-testid=routes-add]").await;
        ui.fill(&Ui::rule(3, "id"), "broken").await;
        ui.fill(&Ui::rule(3, "path"), "/a/**/b").await;
        ui.js(
            "const s = document.querySelector(arguments[0]); s.value = 'deny';
             s.dispatchEvent(new Event('change'));",
            vec![json!(Ui::rule(3, "access"))],
        )
        .await;
        ui.click("[data-testid=routes-save]").await;
        let problem = ui
            .text_contains("[data-error-for=\"rules[1].path\"]", "last segment")
            .await;
        assert!(problem.contains("**"), "{problem}");
        let invalid = ui
            .js(
                "return document.querySelector(arguments[0]).getAttribute('aria-invalid');",
                vec![json!(Ui::rule(3, "path"))],
            )
            .await;
        assert_eq!(invalid, json!("true"));
        ui.screenshot("01-validation").await;
        assert_eq!(rules_etag(&server, &session).1, "\"1\"");
        // (Clicked by script: the toast may still cover the button.)
        ui.js(
            "document.querySelector(arguments[0]).click();",
            vec![json!(
                "[data-testid=routes-row]:nth-of-type(3) [data-testid=routes-remove]"
            )],
        )
        .await;

        // Someone else saves first: the stale save is refused, their
        // version is shown, with a message.
        server
            .put("/api/v1/routes")
            .bearer(&session)
            .json(json!({"rules": [
                {"id": "contacts-read", "methods": ["GET"], "path": "/contacts/**", "scopes": ["contacts:read"]},
                {"id": "health", "path": "/healthz", "public": true},
            ]}))
            .send()
            .data(200);
        ui.fill(&Ui::rule(2, "path"), "/people/**").await;
        ui.click("[data-testid=routes-save]").await;
        ui.text_contains("[data-testid=routes-stale]", "Someone changed the rules")
            .await;
        ui.find("[data-testid=routes-row][data-rule-id=health]")
            .await;
        assert_eq!(rules_etag(&server, &session).1, "\"2\"");
        ui.screenshot("02-stale").await;

        // Try a request: the winning rule, the decision and the headers.
        ui.fill("#try-uri", "/contacts/42").await;
        ui.fill("#try-token", &reader).await;
        ui.click("[data-testid=try-submit]").await;
        ui.text_contains("[data-testid=try-decision]", "Allowed")
            .await;
        ui.text_contains("[data-testid=try-rule]", "contacts-read")
            .await;
        ui.text_contains("[data-testid=try-headers]", "x-tokenward-token-id")
            .await;
        ui.text_contains(
            "[data-testid=try-headers]",
            "x-tokenward-scopes: contacts:read",
        )
        .await;
        ui.screenshot("03-try-allowed").await;
        ui.js(
            "document.querySelector('#try-method').value = 'DELETE';",
            vec![],
        )
        .await;
        ui.click("[data-testid=try-submit]").await;
        ui.text_contains("[data-testid=try-decision]", "Refused")
            .await;
        ui.text_contains("[data-testid=try-code]", "no_matching_rule")
            .await;
        ui.js(
            "document.querySelector('#try-method').value = 'GET';",
            vec![],
        )
        .await;
        ui.fill("#try-uri", "/contacts/../admin").await;
        ui.click("[data-testid=try-submit]").await;
        ui.text_contains("[data-testid=try-code]", "invalid_path")
            .await;
        ui.text_contains("[data-testid=try-result]", "the path is refused")
            .await;
        // The token typed in is not kept anywhere but its field.
        let kept = ui
            .js(
                "const s = arguments[0];
                 return [localStorage, sessionStorage].some((st) =>
                     Object.keys(st).some((k) => (st.getItem(k) || '').includes(s)))
                   || location.href.includes(s);",
                vec![json!(reader)],
            )
            .await;
        assert_eq!(kept, json!(false));
        ui.screenshot("04-try-refused").await;
    });
}
