//! The browser harness the web UI tests share: find Chromium and
//! chromedriver (or skip, except under `CI=true`), start a driver with a
//! fresh profile, and run one test's flow in a browser against its own
//! server, saving a screenshot when it fails. Each UI test file includes it
//! with `#[path = "common/browser.rs"] mod browser;` and adds the page
//! helpers it needs in its own `impl Ui`.
#![allow(dead_code)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

use super::common::{Server, TempDir, json};

/// How long any one thing may take to appear in the page.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

pub(crate) fn screenshot_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/ui-screenshots"
    ))
}

/// Chromium and chromedriver, where Debian's packages put them (or on PATH).
pub(crate) struct BrowserPaths {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

pub(crate) fn find_program(names: &[&str]) -> Option<PathBuf> {
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
pub(crate) fn browser_or_skip(test: &str) -> Option<BrowserPaths> {
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
            // Straight to stderr, past the test harness's capture, so that
            // a skip is seen in every run.
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
pub(crate) struct Driver {
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

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[derive(Clone, Copy)]
pub(crate) enum Viewport {
    Desktop,
    /// 390×844, touch, dark colour scheme.
    PhoneDark,
}

/// One test's browser, its server and where its screenshots go.
#[derive(Clone)]
pub(crate) struct Ui {
    pub(crate) client: Client,
    pub(crate) server: Arc<Server>,
    pub(crate) test: &'static str,
}

/// Runs `flow` in a fresh browser against `server`. On failure it saves a
/// screenshot of the page as it was, then fails the test with the panic.
pub(crate) fn run_ui<F, Fut>(
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

/// Page helpers every UI test file uses.
impl Ui {
    pub(crate) async fn screenshot(&self, label: &str) {
        let Ok(png) = self.client.screenshot().await else {
            return;
        };
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{}-{label}.png", self.test)), png).unwrap();
    }

    pub(crate) async fn gone(&self, css: &str) {
        self.until(
            &format!("{css} to go away"),
            "return document.querySelector(arguments[0]) === null;",
            vec![json!(css)],
        )
        .await;
    }

    pub(crate) async fn fill(&self, css: &str, value: &str) {
        let input = self.find(css).await;
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    pub(crate) async fn nav(&self, section: &str, title: &str) {
        self.click(&format!("[data-testid=nav-{section}]")).await;
        self.page(title).await;
    }

    /// Asserts that the element `css` is displayed and inside the viewport's
    /// width.
    pub(crate) async fn within_width(&self, css: &str) {
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
