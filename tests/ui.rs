//! The web UI end to end: the real server, a real headless Chromium driven
//! over WebDriver (chromedriver), and the API checked over plain HTTP
//! beside it. Each test starts its own server (fresh database), its own
//! chromedriver and its own browser, and saves screenshots under
//! `target/ui-screenshots/`.
//!
//! Without Chromium and chromedriver these tests say they were skipped and
//! pass, except under `CI=true`, where a missing browser fails the run.

mod common;

use std::time::{Duration, Instant};

use common::{
    PASSWORD, Server, Value, add_catalog_scope, admin_with_open_signup, create_token, json,
    sign_up, verify, verify_with,
};
use fantoccini::Locator;
use fantoccini::elements::Element;
use fantoccini::key::Key;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const ADMIN_EMAIL: &str = "admin@example.com";

#[path = "common/browser.rs"]
mod browser;

use browser::*;

impl Ui {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }

    async fn goto(&self, path: &str) {
        self.client.goto(&self.url(path)).await.unwrap();
    }

    /// Waits until `css` matches an element and returns it.
    async fn find(&self, css: &str) -> Element {
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

    /// Waits until the element `css` is shown and its text contains `text`;
    /// returns the whole text.
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

    fn token_row(name: &str) -> String {
        format!("[data-testid=token-row][data-token-name=\"{name}\"]")
    }

    /// Opens a list row's three-dot menu and picks `action`.
    async fn row_action(&self, row: &str, action: &str) {
        self.click(&format!("{row} [data-testid=row-menu]")).await;
        self.click(&format!("{row} [data-action={action}]")).await;
    }

    /// Reads the secret from the reveal panel, closes the panel, and checks
    /// that the secret was forgotten: not in the page, not in storage, not
    /// in the URL.
    async fn take_secret(&self, screenshot: &str) -> String {
        let secret = self.find("[data-testid=reveal-secret]").await;
        let secret = secret.text().await.unwrap();
        assert!(secret.len() > 20, "revealed secret looks wrong: {secret:?}");
        let warning = self.find("[data-testid=reveal-warning]").await;
        assert!(
            warning
                .text()
                .await
                .unwrap()
                .contains("will not be shown again"),
            "the reveal panel warns that the secret is shown once"
        );
        self.screenshot(screenshot).await;
        self.click("[data-testid=reveal-close]").await;
        self.gone("[data-testid=reveal-panel]").await;
        let leaked = self
            .js(
                "const s = arguments[0];
                 const stores = [localStorage, sessionStorage]
                     .map((st) => Object.keys(st).map((k) => k + '=' + st.getItem(k)).join(';'))
                     .join(';');
                 return document.documentElement.outerHTML.includes(s)
                     || document.body.innerText.includes(s)
                     || stores.includes(s)
                     || location.href.includes(s)
                     || document.cookie.includes(s);",
                vec![json!(secret)],
            )
            .await;
        assert_eq!(
            leaked,
            Value::Bool(false),
            "the secret outlived its reveal panel"
        );
        secret
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

fn seconds_between(from: &Value, to: &Value) -> i64 {
    let parse = |v: &Value| {
        OffsetDateTime::parse(
            v.as_str().unwrap_or_else(|| panic!("no time in {v}")),
            &Rfc3339,
        )
        .unwrap()
    };
    (parse(to) - parse(from)).whole_seconds()
}

fn sorted_scopes(token: &Value) -> Vec<String> {
    let mut scopes: Vec<String> = token["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    scopes.sort();
    scopes
}

/// First run on a fresh server: create the admin account, add a catalog
/// scope, then a token's whole life — create and reveal, verify, edit its
/// permissions, reset with grace, delete — and sign out.
#[test]
fn first_run_setup_then_a_tokens_whole_life() {
    let Some(browser) = browser_or_skip("lifecycle") else {
        return;
    };
    let server = Server::start();
    run_ui(
        browser,
        "lifecycle",
        Viewport::Desktop,
        server,
        |ui| async move {
            let server = ui.server.clone();
            ui.goto("/").await;
            ui.find("#setup-form").await;
            let code_fields = ui
                .client
                .find_all(Locator::Css("#setup-code"))
                .await
                .unwrap();
            assert!(
                code_fields.is_empty(),
                "a loopback server needs no setup code"
            );
            ui.fill("#setup-email", ADMIN_EMAIL).await;
            ui.fill("#setup-password", PASSWORD).await;
            ui.fill("#setup-password-confirm", "not the same password")
                .await;
            ui.click("#setup-submit").await;
            ui.text_contains(
                "[data-error-for=password_confirm]",
                "Does not match the password.",
            )
            .await;
            ui.fill("#setup-password-confirm", PASSWORD).await;
            ui.screenshot("01-setup").await;
            ui.click("#setup-submit").await;

            ui.page("API Tokens").await;
            ui.text_contains("[data-testid=empty-state]", "No tokens yet")
                .await;
            ui.text_contains("[data-testid=account-email]", ADMIN_EMAIL)
                .await;
            let instance = server.get("/api/v1/instance").send().data(200);
            assert_eq!(instance["needs_first_account"], false);
            ui.screenshot("02-empty-tokens").await;

            // The scope catalog, through its screen.
            ui.nav("scopes", "Scopes").await;
            ui.fill("#scope-name", "contacts").await;
            ui.fill("#scope-description", "Read and write contacts")
                .await;
            ui.click("[data-testid=scope-submit]").await;
            ui.text_contains(
                "[data-testid=scope-row][data-scope=contacts]",
                "Read and write contacts",
            )
            .await;

            // Create: name, a permission per access level, an expiry preset.
            ui.nav("tokens", "API Tokens").await;
            ui.click("[data-testid=create-token]").await;
            ui.page("Create token").await;
            ui.click("[data-testid=token-submit]").await;
            ui.text_contains("[data-error-for=name]", "Is required.")
                .await;
            ui.fill("#token-name", "CRM Integration").await;
            ui.click("[data-testid='perm-full-contacts']").await;
            ui.click("[data-testid='perm-read-tokens']").await;
            ui.click("#expiry-1d").await;
            ui.text_contains("[data-testid=expiry-summary]", "The token will expire on")
                .await;
            ui.screenshot("03-create-form").await;
            ui.click("[data-testid=token-submit]").await;
            let secret = ui.take_secret("04-reveal").await;
            assert!(secret.starts_with("tw_"), "{secret}");

            let verdict = verify(&server, &secret, None);
            assert_eq!(verdict["code"], "VALID", "{verdict}");
            let token = &verdict["token"];
            assert_eq!(token["name"], "CRM Integration");
            assert_eq!(sorted_scopes(token), ["contacts", "tokens:read"]);
            let lifetime = seconds_between(&token["created_at"], &token["expires_at"]);
            assert_eq!(lifetime, 86_400, "the 1 day preset");

            let row = Ui::token_row("CRM Integration");
            let hint = ui
                .find(&format!("{row} [data-testid=token-hint]"))
                .await
                .text()
                .await
                .unwrap();
            assert_eq!(hint, format!("tw_…{}", &secret[secret.len() - 4..]));
            let row_text = ui.text_contains(&row, "tokens:read").await;
            assert!(row_text.contains(ADMIN_EMAIL), "creator shown: {row_text}");
            assert!(row_text.contains("Active"), "{row_text}");
            assert!(row_text.contains("Expires tomorrow"), "{row_text}");
            assert!(row_text.contains("Never used") || row_text.contains("Last used"));
            ui.screenshot("05-token-list").await;

            // Edit permissions: contacts goes from Full to Read.
            ui.row_action(&row, "edit").await;
            ui.page("Edit permissions").await;
            let full = ui.find("[data-testid='perm-full-contacts']").await;
            assert!(full.is_selected().await.unwrap());
            full.click().await.unwrap();
            let read = ui.find("[data-testid='perm-read-contacts']").await;
            assert!(read.is_selected().await.unwrap() && read.is_enabled().await.unwrap());
            ui.screenshot("06-edit-permissions").await;
            ui.click("[data-testid=token-save]").await;
            ui.page("API Tokens").await;
            ui.text_contains(
                &format!("{row} [data-testid=token-scopes]"),
                "contacts:read",
            )
            .await;
            let narrowed = verify(&server, &secret, Some(json!(["contacts"])));
            assert_eq!(narrowed["code"], "INSUFFICIENT_SCOPE", "{narrowed}");
            let read_only = verify(&server, &secret, Some(json!(["contacts:read"])));
            assert_eq!(read_only["code"], "VALID", "{read_only}");

            // Reset: the grace window is spelled out, the new secret shown once.
            ui.row_action(&row, "reset").await;
            let body = ui
                .text_contains("[data-testid=confirm-body]", "keeps working for 12 hours")
                .await;
            assert!(body.contains("same permissions"), "{body}");
            ui.screenshot("07-reset-confirm").await;
            ui.click("[data-testid=confirm-ok]").await;
            let new_secret = ui.take_secret("08-reset-reveal").await;
            assert_ne!(new_secret, secret);
            let fresh = verify(&server, &new_secret, None);
            assert_eq!(fresh["code"], "VALID", "{fresh}");
            let new_name = fresh["token"]["name"].as_str().unwrap().to_owned();
            assert!(new_name.starts_with("CRM Integration token "), "{new_name}");
            assert_eq!(
                sorted_scopes(&fresh["token"]),
                ["contacts:read", "tokens:read"]
            );
            let old = verify(&server, &secret, None);
            assert_eq!(
                old["code"], "VALID",
                "the old token works in its grace window"
            );
            let now = json!(OffsetDateTime::now_utc().format(&Rfc3339).unwrap());
            let grace_left = seconds_between(&now, &old["token"]["expires_at"]);
            assert!(
                (43_000..=43_200).contains(&grace_left),
                "old token expires in {grace_left} s"
            );
            ui.text_contains(&row, "Replaced").await;

            // Delete the new token: revoked at once.
            let new_row = Ui::token_row(&new_name);
            ui.row_action(&new_row, "delete").await;
            ui.text_contains("[data-testid=confirm-body]", "revoked at once")
                .await;
            ui.click("[data-testid=confirm-ok]").await;
            ui.gone(&new_row).await;
            let revoked = verify(&server, &new_secret, None);
            assert_eq!(revoked["code"], "REVOKED", "{revoked}");
            ui.click("[data-testid=filter-revoked]").await;
            ui.text_contains(&format!("{new_row} [data-testid=token-state]"), "Revoked")
                .await;
            ui.screenshot("09-revoked-filter").await;

            // Sign out: the cookie is dead and the sign-in form is back.
            let cookie = ui
                .client
                .get_named_cookie("tokenward_session")
                .await
                .expect("the session cookie is set")
                .value()
                .to_owned();
            let me = |cookie: &str| {
                server
                    .get("/api/v1/me")
                    .header("Cookie", &format!("tokenward_session={cookie}"))
                    .send()
            };
            assert_eq!(me(&cookie).status, 200);
            ui.click("[data-testid=sign-out]").await;
            ui.find("#signin-form").await;
            ui.screenshot("10-signed-out").await;
            assert_eq!(me(&cookie).status, 401, "the old cookie is dead");
            ui.goto("/tokens").await;
            ui.find("#signin-form").await;
        },
    );
}

/// An existing admin signs in (after a wrong password), changes settings
/// (and sees a validation error next to its field), adds a domain, meets the
/// last-domain-token rule, resets the domain token with the new grace, makes
/// a never-expiring token once that is allowed, and grants a member a scope.
/// The row menu is driven with the keyboard.
#[test]
fn sign_in_settings_domains_and_members() {
    let Some(browser) = browser_or_skip("admin") else {
        return;
    };
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let bob = sign_up(&server, "bob@example.com");
    let staging = server
        .post("/api/v1/workspaces")
        .bearer(&admin.session)
        .json(json!({"name": "Staging"}))
        .send()
        .data(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    run_ui(
        browser,
        "admin",
        Viewport::Desktop,
        server,
        move |ui| async move {
            let server = ui.server.clone();
            ui.goto("/").await;
            ui.find("#signin-form").await;
            ui.find("[data-testid=signup-link]").await;
            // Keyboard: the email field has focus; Tab twice reaches the button,
            // which shows a visible focus ring.
            ui.until(
                "the email field to have focus",
                "return document.activeElement.id === 'signin-email';",
                vec![],
            )
            .await;
            let email = ui.client.active_element().await.unwrap();
            email.send_keys(&Key::Tab).await.unwrap();
            let password = ui.client.active_element().await.unwrap();
            password.send_keys(&Key::Tab).await.unwrap();
            let focus = ui
                .js(
                    "const el = document.activeElement;
                 const style = getComputedStyle(el);
                 return [el.id, style.outlineStyle, style.outlineWidth];",
                    vec![],
                )
                .await;
            assert_eq!(focus, json!(["signin-submit", "solid", "2px"]), "{focus}");
            ui.fill("#signin-email", ADMIN_EMAIL).await;
            ui.fill("#signin-password", "not the password at all").await;
            ui.find("#signin-password")
                .await
                .send_keys(&Key::Enter)
                .await
                .unwrap();
            let error = ui
                .text_contains(
                    "[data-testid=form-error]",
                    "The email or password is wrong.",
                )
                .await;
            assert!(!error.contains('{'), "errors are sentences: {error}");
            ui.screenshot("01-sign-in-error").await;
            ui.fill("#signin-password", PASSWORD).await;
            ui.find("#signin-password")
                .await
                .send_keys(&Key::Enter)
                .await
                .unwrap();
            ui.page("API Tokens").await;
            // Two workspaces joined in the same second have no fixed order:
            // pick the personal one.
            ui.find("[data-testid=workspace-select]")
                .await
                .select_by_value(&admin.workspace)
                .await
                .unwrap();
            ui.page("API Tokens").await;

            // Settings: a bad value is refused next to its field, and nothing changes.
            ui.nav("settings", "Settings").await;
            ui.fill("#setting-default_ttl_seconds", "400").await;
            ui.find("#setting-default_ttl_seconds-unit")
                .await
                .select_by_value("days")
                .await
                .unwrap();
            ui.click("[data-testid=settings-submit]").await;
            ui.text_contains(
                "[data-error-for=default_ttl_seconds]",
                "Must be between 1 minute and 365 days.",
            )
            .await;
            ui.screenshot("02-settings-error").await;
            let settings = server
                .get("/api/v1/settings")
                .bearer(&admin.session)
                .send()
                .data(200);
            assert_eq!(settings["default_ttl_seconds"], 14_400);

            ui.fill("#setting-default_ttl_seconds", "4").await;
            ui.find("#setting-default_ttl_seconds-unit")
                .await
                .select_by_value("hours")
                .await
                .unwrap();
            ui.fill("#setting-reset_grace_seconds", "2").await;
            ui.find("#setting-reset_grace_seconds-unit")
                .await
                .select_by_value("hours")
                .await
                .unwrap();
            ui.click("#setting-allow_no_expiry").await;
            ui.click("[data-testid=settings-submit]").await;
            ui.text_contains("[data-testid=toast]", "Settings saved.")
                .await;
            let settings = server
                .get("/api/v1/settings")
                .bearer(&admin.session)
                .send()
                .data(200);
            assert_eq!(settings["reset_grace_seconds"], 7_200);
            assert_eq!(settings["allow_no_expiry"], true);
            assert_eq!(settings["default_ttl_seconds"], 14_400);
            ui.screenshot("03-settings-saved").await;

            // A domain and its token, shown once.
            ui.nav("domains", "Domains").await;
            ui.fill("#domain-name", "Example.com").await;
            ui.click("[data-testid=domain-submit]").await;
            let domain_secret = ui.take_secret("04-domain-reveal").await;
            let verdict = verify(&server, &domain_secret, Some(json!(["domain:example.com"])));
            assert_eq!(verdict["code"], "VALID", "{verdict}");
            assert!(
                verdict["token"]["expires_at"].is_null(),
                "with no-expiry allowed, a domain token never expires"
            );
            let domain_token = verdict["token"]["name"].as_str().unwrap().to_owned();
            ui.text_contains(
                "[data-testid=domain-row][data-domain='example.com']",
                "1 active token",
            )
            .await;
            ui.screenshot("05-domains").await;

            // The last domain token cannot be deleted; the reason is plain. The
            // menu is worked from the keyboard.
            ui.nav("tokens", "API Tokens").await;
            let row = Ui::token_row(&domain_token);
            let menu_button = ui.find(&format!("{row} [data-testid=row-menu]")).await;
            menu_button.send_keys(&Key::Down).await.unwrap();
            ui.until(
                "the menu to take focus",
                "return document.activeElement.dataset.action === 'copy-id';",
                vec![],
            )
            .await;
            let focused = ui.client.active_element().await.unwrap();
            focused.send_keys(&Key::Up).await.unwrap();
            ui.client
                .active_element()
                .await
                .unwrap()
                .send_keys(&Key::Enter)
                .await
                .unwrap();
            ui.click("[data-testid=confirm-ok]").await;
            let refusal = ui
                .text_contains("[data-testid=confirm-error]", "last active token")
                .await;
            assert!(refusal.contains("example.com"), "{refusal}");
            assert!(!refusal.contains("last_domain_token"), "{refusal}");
            ui.screenshot("06-last-domain-token").await;
            ui.click("[data-testid=confirm-cancel]").await;
            ui.gone("[data-testid=confirm-dialog]").await;
            assert_eq!(
                verify(&server, &domain_secret, None)["code"],
                "VALID",
                "refused delete left the token alone"
            );

            // Reset it instead: the confirmation names the new grace window.
            ui.row_action(&row, "reset").await;
            ui.text_contains("[data-testid=confirm-body]", "keeps working for 2 hours")
                .await;
            ui.click("[data-testid=confirm-ok]").await;
            let rotated = ui.take_secret("07-domain-reset-reveal").await;
            let verdict = verify(&server, &rotated, Some(json!(["domain:example.com"])));
            assert_eq!(verdict["code"], "VALID", "{verdict}");

            // A token that never expires, now that the settings allow it.
            ui.click("[data-testid=create-token]").await;
            ui.page("Create token").await;
            ui.fill("#token-name", "Nightly sync").await;
            ui.click("[data-testid='perm-read-domain:example.com']")
                .await;
            ui.click("#expiry-never").await;
            ui.text_contains("[data-testid=no-expiry-warning]", "never expires")
                .await;
            ui.screenshot("08-no-expiry").await;
            ui.click("[data-testid=token-submit]").await;
            let forever = ui.take_secret("09-no-expiry-reveal").await;
            let verdict = verify(&server, &forever, None);
            assert_eq!(verdict["code"], "VALID", "{verdict}");
            assert!(verdict["token"]["expires_at"].is_null(), "{verdict}");
            assert_eq!(
                sorted_scopes(&verdict["token"]),
                ["domain:example.com:read"]
            );
            ui.text_contains(&Ui::token_row("Nightly sync"), "Never expires")
                .await;

            // Members: add Bob with one grant.
            ui.nav("members", "Members").await;
            ui.click("[data-testid=add-member]").await;
            ui.page("Add member").await;
            ui.fill("#member-email", &bob.email).await;
            ui.click("[data-testid='perm-full-domain:example.com']")
                .await;
            ui.click("[data-testid=member-submit]").await;
            ui.page("Members").await;
            ui.text_contains(
                "[data-testid=member-row][data-email='bob@example.com']",
                "domain:example.com",
            )
            .await;
            ui.screenshot("10-members").await;
            let members = server
                .get(&format!("/api/v1/workspaces/{}/members", admin.workspace))
                .bearer(&admin.session)
                .send()
                .data(200);
            let bob_member = members
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["account"]["id"] == bob.id.as_str())
                .expect("bob is a member");
            assert_eq!(bob_member["role"], "member");
            assert_eq!(bob_member["scopes"], json!(["domain:example.com"]));

            // Another workspace: its own (empty) domains, and tokens made there.
            ui.find("[data-testid=workspace-select]")
                .await
                .select_by_value(&staging)
                .await
                .unwrap();
            ui.page("Members").await;
            ui.nav("domains", "Domains").await;
            ui.text_contains("[data-testid=empty-state]", "No domains yet")
                .await;
            ui.nav("tokens", "API Tokens").await;
            ui.text_contains("[data-testid=empty-state]", "No tokens yet")
                .await;
            ui.click("[data-testid=create-token]").await;
            ui.page("Create token").await;
            ui.fill("#token-name", "Staging deploys").await;
            ui.click("[data-testid='perm-full-tokens']").await;
            ui.click("[data-testid=token-submit]").await;
            let staged = ui.take_secret("11-other-workspace-reveal").await;
            let verdict = verify(&server, &staged, None);
            assert_eq!(verdict["code"], "VALID", "{verdict}");
            assert_eq!(verdict["token"]["workspace_id"], staging.as_str());
            assert_eq!(
                seconds_between(
                    &verdict["token"]["created_at"],
                    &verdict["token"]["expires_at"]
                ),
                14_400,
                "the 4 hour default"
            );
        },
    );
}

/// A verifier token for a service, made from the create page: the kind is
/// chosen first (from the keyboard), the permission grid gives way to an
/// explanation, the secret is revealed once with a ready-to-copy verify
/// command, and the token holds exactly `verify:read` and is marked
/// "Verifier" in the list and on its permissions page.
#[test]
fn verifier_token_from_the_create_page() {
    let Some(browser) = browser_or_skip("verifier") else {
        return;
    };
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    add_catalog_scope(&server, &admin, &admin.workspace, "contacts");
    let bob = sign_up(&server, "bob@example.com");
    server
        .post(&format!("/api/v1/workspaces/{}/members", admin.workspace))
        .bearer(&admin.session)
        .json(json!({"email": bob.email, "role": "member", "scopes": ["contacts:read"]}))
        .send()
        .data(201);
    run_ui(
        browser,
        "verifier",
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
            ui.click("[data-testid=create-token]").await;
            ui.page("Create token").await;

            // The kind comes first; an integration token is the default and
            // shows the grid. The arrow key moves to "Verifier token".
            let integration = ui.find("#token-kind-integration").await;
            assert!(integration.is_selected().await.unwrap());
            ui.find("[data-testid=permission-grid]").await;
            integration.send_keys(&Key::Down).await.unwrap();
            ui.until(
                "the arrow key to choose the verifier kind",
                "return document.getElementById('token-kind-verifier').checked;",
                vec![],
            )
            .await;
            let explainer = ui
                .text_contains(
                    "[data-testid=verifier-explainer]",
                    "POST /api/v1/tokens/verify",
                )
                .await;
            assert!(
                explainer.contains("never rate-limited"),
                "the explanation says a verifier is never limited: {explainer}"
            );
            let grid_shown = ui
                .js(
                    "const g = document.querySelector('[data-testid=permission-grid]');
                     return !!g && g.offsetParent !== null;",
                    vec![],
                )
                .await;
            assert_eq!(
                grid_shown,
                json!(false),
                "the grid gives way to the explanation"
            );
            ui.find("#expiry-7d").await.click().await.unwrap();
            ui.fill("#token-name", "Billing service verifier").await;
            ui.screenshot("01-verifier-form").await;
            ui.click("[data-testid=token-submit]").await;

            // The reveal: the secret once, and the verify command with it.
            let secret = ui
                .find("[data-testid=reveal-secret]")
                .await
                .text()
                .await
                .unwrap();
            let example = ui
                .text_contains("[data-testid=reveal-example]", "/api/v1/tokens/verify")
                .await;
            let origin = format!("http://{}", server.addr);
            for part in [
                format!("curl -s {origin}/api/v1/tokens/verify"),
                format!("-H \"Authorization: Bearer {secret}\""),
                "-H 'Content-Type: application/json'".to_owned(),
                "\"scopes\": [\"contacts:read\"]".to_owned(),
            ] {
                assert!(example.contains(&part), "{part:?} missing from:\n{example}");
            }
            ui.find("[data-testid=reveal-example-copy]").await;
            let taken = ui.take_secret("02-verifier-reveal").await;
            assert_eq!(taken, secret);

            // The list marks it; the API says it holds exactly verify:read.
            let row = Ui::token_row("Billing service verifier");
            ui.text_contains(&format!("{row} [data-testid=verifier-badge]"), "Verifier")
                .await;
            let id = ui
                .find(&row)
                .await
                .attr("data-token-id")
                .await
                .unwrap()
                .expect("the row names its token");
            let token = server
                .get(&format!("/api/v1/tokens/{id}"))
                .bearer(&admin.session)
                .send()
                .data(200);
            assert_eq!(token["scopes"], json!(["verify:read"]), "{token}");
            assert_eq!(
                seconds_between(&token["created_at"], &token["expires_at"]),
                7 * 86_400,
                "the expiry choice still applies"
            );
            ui.screenshot("03-verifier-in-list").await;

            // And it works as the service would use it: its own workspace's
            // tokens verify, others' are not there.
            let member_token = create_token(
                &server,
                &admin.session,
                json!({"name": "to check", "scopes": ["tokens:read"]}),
            );
            let checked = verify_with(
                &server,
                &secret,
                member_token["token"].as_str().unwrap(),
                None,
            )
            .data(200);
            assert_eq!(checked["code"], "VALID", "{checked}");
            let stranger = sign_up(&server, "stranger@example.com");
            let theirs = create_token(
                &server,
                &stranger.session,
                json!({"name": "theirs", "scopes": ["tokens"]}),
            );
            let foreign =
                verify_with(&server, &secret, theirs["token"].as_str().unwrap(), None).data(200);
            assert_eq!(foreign["code"], "NOT_FOUND", "{foreign}");

            // Its permissions page: marked too, the grid knows `verify`.
            ui.row_action(&row, "edit").await;
            ui.page("Edit permissions").await;
            ui.text_contains("[data-testid=verifier-badge]", "Verifier")
                .await;
            let read = ui.find("[data-testid='perm-read-verify']").await;
            assert!(read.is_selected().await.unwrap());
            let full = ui.find("[data-testid='perm-full-verify']").await;
            assert!(!full.is_selected().await.unwrap());
            ui.text_contains(
                "[data-resource=verify]",
                "Check tokens of this workspace with POST /tokens/verify",
            )
            .await;
            ui.screenshot("04-verifier-permissions").await;

            // An integration token made beside it is not marked.
            create_token(
                &server,
                &admin.session,
                json!({"name": "CRM Integration", "scopes": ["contacts:read"]}),
            );
            ui.nav("tokens", "API Tokens").await;
            ui.find(&Ui::token_row("CRM Integration")).await;
            let marked = ui
                .js(
                    "return !!document.querySelector(arguments[0]);",
                    vec![json!(format!(
                        "{} [data-testid=verifier-badge]",
                        Ui::token_row("CRM Integration")
                    ))],
                )
                .await;
            assert_eq!(
                marked,
                json!(false),
                "an integration token is not a verifier"
            );

            // A member without a `verify` grant cannot pick the verifier kind,
            // and is told why.
            ui.click("[data-testid=sign-out]").await;
            ui.find("#signin-form").await;
            ui.fill("#signin-email", &bob.email).await;
            ui.fill("#signin-password", PASSWORD).await;
            ui.click("#signin-submit").await;
            ui.page("API Tokens").await;
            ui.find("[data-testid=workspace-select]")
                .await
                .select_by_value(&admin.workspace)
                .await
                .unwrap();
            ui.page("API Tokens").await;
            ui.click("[data-testid=create-token]").await;
            ui.page("Create token").await;
            let verifier = ui.find("#token-kind-verifier").await;
            assert!(!verifier.is_enabled().await.unwrap());
            ui.text_contains("[data-testid=kind-verifier]", "ask a workspace admin")
                .await;
            ui.screenshot("05-member-without-verify").await;
        },
    );
}

/// At 390×844 in dark mode: nothing scrolls sideways, the navigation, the
/// main buttons and the row menu stay on screen, and the dark palette is in
/// use.
#[test]
fn phone_width_dark_layout() {
    let Some(browser) = browser_or_skip("phone") else {
        return;
    };
    let server = Server::start();
    let admin = sign_up(&server, ADMIN_EMAIL);
    for scope in ["contacts", "knowledge-base", "canned-responses"] {
        add_catalog_scope(&server, &admin, &admin.workspace, scope);
    }
    for n in 1..=20 {
        create_token(
            &server,
            &admin.session,
            json!({"name": format!("Batch job {n}"), "scopes": ["contacts:read"]}),
        );
    }
    for name in [
        "Zapier connection for the marketing team's weekly campaign reports",
        "CRM Integration",
    ] {
        create_token(
            &server,
            &admin.session,
            json!({"name": name, "scopes": ["contacts", "knowledge-base:read", "tokens:read"]}),
        );
    }
    run_ui(
        browser,
        "phone",
        Viewport::PhoneDark,
        server,
        |ui| async move {
            ui.goto("/").await;
            ui.find("#signin-form").await;
            ui.fits_width("sign-in").await;
            ui.screenshot("01-sign-in").await;
            ui.fill("#signin-email", ADMIN_EMAIL).await;
            ui.fill("#signin-password", PASSWORD).await;
            ui.click("#signin-submit").await;
            ui.page("API Tokens").await;

            let width = ui.js("return window.innerWidth;", vec![]).await;
            assert_eq!(width, json!(390), "phone viewport");
            let background = ui
                .js(
                    "return getComputedStyle(document.body).backgroundColor;",
                    vec![],
                )
                .await;
            assert_eq!(background, json!("rgb(13, 17, 23)"), "dark palette");

            ui.fits_width("token list").await;
            for control in [
                "[data-testid=create-token]",
                "[data-testid=sign-out]",
                "[data-testid=workspace-select]",
                "[data-testid=filter-all]",
                "[data-testid=nav-tokens]",
                "[data-testid=nav-domains]",
                "[data-testid=nav-members]",
                "[data-testid=nav-scopes]",
                "[data-testid=nav-settings]",
            ] {
                ui.within_width(control).await;
            }
            ui.screenshot("02-tokens").await;

            // 22 tokens: two pages of 20.
            ui.text_contains("[data-testid=list-summary]", "1–20 of 22 tokens")
                .await;
            ui.within_width("[data-testid=page-next]").await;
            ui.click("[data-testid=page-next]").await;
            ui.text_contains("[data-testid=list-summary]", "21–22 of 22 tokens")
                .await;
            let rows = ui
                .client
                .find_all(Locator::Css("[data-testid=token-row]"))
                .await
                .unwrap();
            assert_eq!(rows.len(), 2, "the second page");
            ui.text_contains("[data-testid=token-list]", "Batch job 1")
                .await;
            ui.fits_width("second page").await;
            ui.click("[data-testid=page-prev]").await;
            ui.text_contains("[data-testid=list-summary]", "1–20 of 22 tokens")
                .await;
            let row = Ui::token_row("CRM Integration");
            ui.click(&format!("{row} [data-testid=row-menu]")).await;
            ui.within_width(&format!("{row} [role=menu]")).await;
            ui.within_width(&format!("{row} [data-action=delete]"))
                .await;
            ui.screenshot("03-row-menu").await;
            ui.click(&format!("{row} [data-action=reset]")).await;
            ui.within_width("[data-testid=confirm-ok]").await;
            ui.click("[data-testid=confirm-cancel]").await;
            ui.gone("[data-testid=confirm-dialog]").await;

            ui.click("[data-testid=create-token]").await;
            ui.page("Create token").await;
            ui.fits_width("create token").await;
            ui.within_width("[data-testid='perm-read-knowledge-base']")
                .await;
            ui.within_width("[data-testid=token-submit]").await;
            ui.screenshot("04-create").await;

            // The verifier kind: the explanation, the reveal and its command
            // all fit the width.
            // A tap anywhere on the card picks it, not only on its label.
            ui.click("#token-kind-verifier-desc").await;
            ui.text_contains("[data-testid=verifier-explainer]", "never rate-limited")
                .await;
            ui.fits_width("create verifier").await;
            ui.within_width("[data-testid=kind-integration]").await;
            ui.within_width("[data-testid=verifier-explainer]").await;
            ui.screenshot("04-create-verifier").await;
            ui.fill("#token-name", "Billing service verifier").await;
            ui.click("[data-testid=token-submit]").await;
            ui.text_contains("[data-testid=reveal-example]", "Authorization: Bearer")
                .await;
            ui.fits_width("verifier reveal").await;
            ui.within_width("[data-testid=reveal-example]").await;
            ui.within_width("[data-testid=reveal-example-copy]").await;
            ui.take_secret("04-verifier-reveal").await;
            ui.within_width(&format!(
                "{} [data-testid=verifier-badge]",
                Ui::token_row("Billing service verifier")
            ))
            .await;
            ui.fits_width("token list with a verifier").await;
            ui.screenshot("04-verifier-in-list").await;

            for (section, title) in [
                ("domains", "Domains"),
                ("members", "Members"),
                ("scopes", "Scopes"),
                ("settings", "Settings"),
            ] {
                ui.nav(section, title).await;
                ui.fits_width(title).await;
                ui.screenshot(&format!("05-{section}")).await;
            }
            ui.within_width("[data-testid=settings-submit]").await;
        },
    );
}
