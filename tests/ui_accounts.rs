//! The Accounts page end to end: the real server, headless Chromium driven
//! over WebDriver, and the API checked beside it. The browser plumbing is
//! a copy of the few helpers of `tests/ui.rs` this test needs.
//!
//! Without Chromium and chromedriver the test says it was skipped and
//! passes, except under `CI=true`, where a missing browser fails the run.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::{Duration, Instant};

use browser::*;

use common::{
    PASSWORD, Server, Value, admin_with_open_signup, json, plain_token, sign_up, verify, verify_in,
};
use fantoccini::Locator;
use fantoccini::elements::Element;
use fantoccini::key::Key;

const ADMIN_EMAIL: &str = "admin@example.com";

impl Ui {
    async fn goto(&self, path: &str) {
        let url = format!("http://{}{path}", self.server.addr);
        self.client.goto(&url).await.unwrap();
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

    async fn count(&self, css: &str, n: usize) {
        self.until(
            &format!("{n} of {css}"),
            "return document.querySelectorAll(arguments[0]).length === arguments[1]
                 && !document.querySelector('main .loading');",
            vec![json!(css), json!(n)],
        )
        .await;
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
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

    async fn row_action(&self, row: &str, action: &str) {
        self.click(&format!("{row} [data-testid=row-menu]")).await;
        self.click(&format!("{row} [data-action={action}]")).await;
    }

    async fn fits_width(&self, screen: &str) {
        let widths = self
            .js(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
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
            widths[0] <= widths[1],
            "{screen} overflows horizontally: {widths:?}"
        );
    }
}

fn row(email: &str) -> String {
    format!("[data-testid=account-row][data-email=\"{email}\"]")
}

/// The instance admin finds people, pages through them, disables and
/// enables one (their token answers DISABLED, then VALID), is told why a
/// deletion is refused, and deletes an account.
#[test]
fn the_instance_admin_manages_accounts() {
    let Some(browser) = browser_or_skip("accounts") else {
        return;
    };
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let bob = sign_up(&server, "bob@example.com");
    let carol = sign_up(&server, "carol@example.com");
    let bob_token = plain_token(&server, &bob.session)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(verify(&server, &bob_token, None)["code"], "VALID");
    // Carol is the only admin of a workspace Bob is in.
    let shared = server
        .post("/api/v1/workspaces")
        .bearer(&carol.session)
        .json(json!({"name": "Shared"}))
        .send()
        .data(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .post(&format!("/api/v1/workspaces/{shared}/members"))
        .bearer(&carol.session)
        .json(json!({"email": "bob@example.com", "role": "member", "scopes": []}))
        .send()
        .data(201);
    // Enough accounts for a second page (20 a page).
    for n in 1..=20 {
        server
            .post("/api/v1/accounts")
            .bearer(&admin.session)
            .json(json!({"email": format!("user{n:02}@load.example.com"), "password": PASSWORD}))
            .send()
            .data(201);
    }
    let bob_workspace = bob.workspace.clone();

    run_ui(
        browser,
        "accounts",
        Viewport::Desktop,
        server,
        move |ui| async move {
            let server = ui.server.clone();
            ui.goto("/").await;
            ui.fill("#signin-email", ADMIN_EMAIL).await;
            ui.fill("#signin-password", PASSWORD).await;
            ui.find("#signin-password")
                .await
                .send_keys(&Key::Enter)
                .await
                .unwrap();
            ui.page("API Tokens").await;

            ui.click("[data-testid=nav-accounts]").await;
            ui.page("Accounts").await;
            ui.count("[data-testid=account-row]", 20).await;
            ui.text_contains("[data-testid=list-summary]", "1–20 of 23 accounts")
                .await;
            let you = ui.text_contains(&row(ADMIN_EMAIL), "Instance admin").await;
            assert!(you.contains("You") && you.contains("Active"), "{you}");
            // One's own account offers neither disabling nor deleting.
            ui.click(&format!("{} [data-testid=row-menu]", row(ADMIN_EMAIL)))
                .await;
            let offered = ui
                .js(
                    "return [...document.querySelectorAll(arguments[0] + ' [role=menuitem]')]
                     .map((b) => b.disabled);",
                    vec![json!(row(ADMIN_EMAIL))],
                )
                .await;
            assert_eq!(offered, json!([true, true]));
            ui.click(&format!("{} [data-testid=row-menu]", row(ADMIN_EMAIL)))
                .await;
            ui.screenshot("01-list").await;

            // Paging.
            ui.click("[data-testid=page-next]").await;
            ui.count("[data-testid=account-row]", 3).await;
            ui.text_contains("[data-testid=list-summary]", "21–23 of 23 accounts")
                .await;
            ui.find(&row("user20@load.example.com")).await;
            ui.click("[data-testid=page-prev]").await;
            ui.count("[data-testid=account-row]", 20).await;

            // Search, labelled and cleared.
            let label = ui
                .js(
                    "return document.querySelector('label[for=account-search]').textContent;",
                    vec![],
                )
                .await;
            assert_eq!(label, json!("Search by email"));
            ui.fill("#account-search", "CAR").await;
            ui.find("#account-search")
                .await
                .send_keys(&Key::Enter)
                .await
                .unwrap();
            ui.count("[data-testid=account-row]", 1).await;
            ui.find(&row("carol@example.com")).await;
            ui.text_contains("[data-testid=list-summary]", "1 account matching")
                .await;
            ui.fill("#account-search", "nobody-here").await;
            ui.click("[data-testid=account-search-submit]").await;
            ui.text_contains("[data-testid=empty-state]", "No matching accounts")
                .await;
            ui.click("[data-testid=account-search-clear]").await;
            ui.count("[data-testid=account-row]", 20).await;

            // Disable Bob: his token stops at once.
            ui.row_action(&row("bob@example.com"), "disable").await;
            let body = ui
                .text_contains("[data-testid=confirm-body]", "sessions end at once")
                .await;
            assert!(body.contains("1 active token"), "{body}");
            ui.screenshot("02-disable-confirm").await;
            ui.click("[data-testid=confirm-ok]").await;
            ui.gone("[data-testid=confirm-dialog]").await;
            ui.text_contains(
                &format!("{} [data-testid=account-state]", row("bob@example.com")),
                "Disabled",
            )
            .await;
            ui.text_contains("[data-testid=toast]", "bob@example.com was disabled.")
                .await;
            ui.find(&format!(
                "{} [data-testid=account-disabled-at]",
                row("bob@example.com")
            ))
            .await;
            assert_eq!(verify(&server, &bob_token, None)["code"], "DISABLED");
            ui.screenshot("03-disabled").await;

            // And enable him again.
            ui.row_action(&row("bob@example.com"), "enable").await;
            ui.click("[data-testid=confirm-ok]").await;
            ui.text_contains(
                &format!("{} [data-testid=account-state]", row("bob@example.com")),
                "Active",
            )
            .await;
            assert_eq!(verify(&server, &bob_token, None)["code"], "VALID");

            // Carol cannot go while she is the only admin of Shared: the
            // dialog says why, and nothing changes.
            ui.row_action(&row("carol@example.com"), "delete").await;
            ui.text_contains("[data-testid=confirm-body]", "cannot be undone")
                .await;
            ui.click("[data-testid=confirm-ok]").await;
            let refused = ui
                .text_contains("[data-testid=confirm-error]", "Shared")
                .await;
            assert!(refused.contains("only admin"), "{refused}");
            ui.screenshot("04-delete-refused").await;
            ui.click("[data-testid=confirm-cancel]").await;
            ui.gone("[data-testid=confirm-dialog]").await;
            ui.find(&row("carol@example.com")).await;

            // Bob can: his row goes, and so does his token.
            ui.row_action(&row("bob@example.com"), "delete").await;
            ui.click("[data-testid=confirm-ok]").await;
            ui.gone(&row("bob@example.com")).await;
            ui.text_contains("[data-testid=toast]", "bob@example.com was deleted.")
                .await;
            ui.text_contains("[data-testid=list-summary]", "of 22 accounts")
                .await;
            let answer = verify_in(&server, &bob_workspace, &bob_token, None);
            assert_eq!(answer["code"], "NOT_FOUND", "{answer}");

            // At phone width the page still fits.
            ui.client.set_window_size(390, 844).await.unwrap();
            ui.page("Accounts").await;
            ui.fits_width("accounts at phone width").await;
            ui.screenshot("05-phone").await;
        },
    );
}

/// A member who is not the instance admin sees no Accounts entry, and the
/// page itself says it is not theirs.
#[test]
fn accounts_are_the_instance_admin_s_alone() {
    let Some(browser) = browser_or_skip("accounts-member") else {
        return;
    };
    let server = Server::start();
    admin_with_open_signup(&server);
    sign_up(&server, "bob@example.com");
    run_ui(
        browser,
        "accounts-member",
        Viewport::Desktop,
        server,
        |ui| async move {
            ui.goto("/").await;
            ui.fill("#signin-email", "bob@example.com").await;
            ui.fill("#signin-password", PASSWORD).await;
            ui.find("#signin-password")
                .await
                .send_keys(&Key::Enter)
                .await
                .unwrap();
            ui.page("API Tokens").await;
            let hidden = ui
            .js(
                "return document.querySelector('[data-testid=nav-accounts]').offsetParent === null;",
                vec![],
            )
            .await;
            assert_eq!(hidden, json!(true));
            ui.goto("/accounts").await;
            ui.page("Accounts").await;
            ui.text_contains("main", "Only the instance admin can manage accounts.")
                .await;
        },
    );
}
