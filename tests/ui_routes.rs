//! The Routes page end to end: the real server, headless Chromium over
//! WebDriver, and the API checked over plain HTTP beside it. Edit the
//! forward-auth rules, see a validation error by its field, lose a race to
//! another editor and get their version back, and try requests through
//! `explain`. Screenshots go to `target/ui-screenshots/`.
//!
//! Without Chromium and chromedriver the test says it was skipped and
//! passes, except under `CI=true`, where a missing browser fails the run.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::{Duration, Instant};

use browser::*;

use common::{
    PASSWORD, Server, Value, add_catalog_scope, admin_with_open_signup, create_token, json,
};
use fantoccini::Locator;
use fantoccini::elements::Element;

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
    run_ui(
        browser,
        "routes",
        Viewport::Desktop,
        server,
        move |ui| async move {
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
        },
    );
}
