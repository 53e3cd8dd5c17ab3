//! The Audit log page end to end: changes made through the API read back
//! as sentences with links, filters kept in the URL, pages, the instance
//! scope for the instance admin, and who sees the page at all. The real
//! server and a headless Chromium driven over WebDriver (chromedriver), as
//! in `tests/ui.rs`; screenshots go to `target/ui-screenshots/`.
//!
//! Without Chromium and chromedriver the browser tests say they were
//! skipped and pass, except under `CI=true`, where a missing browser fails
//! the run.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::{Duration, Instant};

use browser::*;

use common::{
    PASSWORD, Server, Value, add_catalog_scope, admin_with_open_signup, create_token, json,
    sign_in, sign_up,
};
use fantoccini::Locator;
use fantoccini::key::Key;
use tokenward::core::audit::ACTIONS;

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

impl Ui {
    async fn goto(&self, path: &str) {
        let url = format!("http://{}{path}", self.server.addr);
        self.client.goto(&url).await.unwrap();
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
}
