//! The audit log (§11): one entry per change, in the change's own
//! transaction, with its actor and target; none for a failed write; never
//! another workspace's; never a secret.

mod common;

use common::*;

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

fn secret(token: &Value) -> String {
    token["token"].as_str().unwrap().to_owned()
}

/// The entries `credential` may read, newest first, with a query string.
fn entries(server: &Server, credential: &str, query: &str) -> Vec<Value> {
    server
        .get(&format!("/api/v1/audit{query}"))
        .bearer(credential)
        .send()
        .data(200)
        .as_array()
        .unwrap()
        .clone()
}

/// The entries of `action` among `all`.
fn of(all: &[Value], action: &str) -> Vec<Value> {
    all.iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

#[test]
fn each_change_is_one_entry_with_its_actor_and_target() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    add_catalog_scope(&server, &admin, &admin.workspace, "contacts");
    let token = create_token(
        &server,
        &admin.session,
        json!({"name": "CRM Integration", "scopes": ["contacts", "tokens"]}),
    );
    server
        .patch(&format!("/api/v1/tokens/{}", id(&token)))
        .bearer(&admin.session)
        .json(json!({"scopes": ["contacts:read", "tokens"]}))
        .send()
        .data(200);
    // A token acting: the entry names the token and its owner.
    let child = create_token(
        &server,
        &secret(&token),
        json!({"name": "child", "scopes": ["tokens:read"]}),
    );
    server
        .delete(&format!("/api/v1/tokens/{}", id(&child)))
        .bearer(&secret(&token))
        .send();
    let reset = server
        .post(&format!("/api/v1/tokens/{}/reset", id(&token)))
        .bearer(&admin.session)
        .send()
        .data(201);
    let bob = sign_up(&server, "bob@example.com");
    server
        .post(&format!("/api/v1/workspaces/{}/members", admin.workspace))
        .bearer(&admin.session)
        .json(json!({"email": bob.email, "role": "member", "scopes": ["contacts:read"]}))
        .send()
        .data(201);
    server
        .post("/api/v1/domains")
        .bearer(&admin.session)
        .json(json!({"name": "example.com"}))
        .send()
        .data(201);

    let all = entries(&server, &admin.session, "?per_page=100");
    let created = of(&all, "token.create");
    // CRM Integration and child: a reset and a domain's token are parts of
    // their own changes.
    assert_eq!(created.len(), 2, "{all:#?}");
    let crm = created
        .iter()
        .find(|e| e["target"]["id"] == token["id"])
        .unwrap();
    assert_eq!(crm["actor"]["kind"], "session");
    assert_eq!(crm["actor"]["account_id"], json!(admin.id));
    assert_eq!(crm["actor"]["email"], "admin@example.com");
    assert_eq!(crm["target"]["kind"], "token");
    assert_eq!(crm["target"]["name"], "CRM Integration");
    assert_eq!(crm["workspace_id"], json!(admin.workspace));
    assert_eq!(crm["ip"], "127.0.0.1");
    assert_eq!(crm["details"]["hint"], token["token_hint"]);
    let by_token = created
        .iter()
        .find(|e| e["target"]["id"] == child["id"])
        .unwrap();
    assert_eq!(by_token["actor"]["kind"], "token");
    assert_eq!(by_token["actor"]["token_id"], token["id"]);
    assert_eq!(by_token["actor"]["account_id"], json!(admin.id));

    let updated = of(&all, "token.update");
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0]["details"]["scopes"], "contacts:read tokens");
    assert_eq!(updated[0]["details"]["old_scopes"], "contacts tokens");
    let revoked = of(&all, "token.revoke");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["target"]["id"], child["id"]);
    assert_eq!(revoked[0]["actor"]["kind"], "token");
    let resets = of(&all, "token.reset");
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0]["details"]["replaced_by"], reset["id"]);
    assert_eq!(of(&all, "member.add").len(), 1);
    assert_eq!(
        of(&all, "member.add")[0]["target"]["name"],
        "bob@example.com"
    );
    assert_eq!(of(&all, "scope.put").len(), 1);
    let domain = of(&all, "domain.create");
    assert_eq!(domain.len(), 1);
    assert_eq!(domain[0]["target"]["name"], "example.com");
    assert!(domain[0]["details"]["token_id"].is_string());
    // Bob's sign-up and sessions are instance entries, not this workspace's.
    assert!(of(&all, "account.create").is_empty());

    let instance = entries(&server, &admin.session, "?scope=instance&per_page=100");
    let sign_ups = of(&instance, "account.create");
    assert_eq!(sign_ups.len(), 2, "{instance:#?}");
    assert!(
        sign_ups
            .iter()
            .any(|e| e["target"]["name"] == "bob@example.com")
    );
    assert_eq!(of(&instance, "settings.update").len(), 1);
    assert!(of(&instance, "session.create").len() >= 2);
}

#[test]
fn a_failed_write_leaves_no_entry() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let created = server
        .post("/api/v1/domains")
        .bearer(&admin.session)
        .json(json!({"name": "example.com"}))
        .send()
        .data(201);
    let before = entries(&server, &admin.session, "?per_page=100").len();
    // Refused inside the write: the last domain token, an unknown scope.
    server
        .delete(&format!("/api/v1/tokens/{}", id(&created["token"])))
        .bearer(&admin.session)
        .send()
        .error(409, "last_domain_token");
    server
        .post("/api/v1/tokens")
        .bearer(&admin.session)
        .json(json!({"name": "t", "scopes": ["billing"]}))
        .send()
        .error(422, "unknown_scope");
    let after = entries(&server, &admin.session, "?per_page=100");
    assert_eq!(after.len(), before, "{after:#?}");
}

#[test]
fn another_workspace_s_entries_are_never_visible() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let token = plain_token(&server, &admin.session);
    let bob = sign_up(&server, "bob@example.com");
    plain_token(&server, &bob.session);
    let bobs = entries(&server, &bob.session, "?per_page=100");
    assert!(!bobs.is_empty());
    assert!(
        bobs.iter()
            .all(|e| e["workspace_id"] == json!(bob.workspace))
    );
    let probing = entries(&server, &bob.session, &format!("?target={}", id(&token)));
    assert!(probing.is_empty());
    // A session naming a workspace it is not in: not there.
    server
        .get("/api/v1/audit")
        .bearer(&bob.session)
        .workspace(&admin.workspace)
        .send()
        .error(404, "not_found");
    // Instance entries are the instance admin's alone.
    server
        .get("/api/v1/audit?scope=instance")
        .bearer(&bob.session)
        .send()
        .error(403, "forbidden");
}

#[test]
fn audit_read_tokens_and_admins_read_members_do_not() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let reader = create_token(
        &server,
        &admin.session,
        json!({"name": "siem export", "scopes": ["audit:read"]}),
    );
    let other = plain_token(&server, &admin.session);
    let seen = entries(&server, &secret(&reader), "?action=token.create");
    assert_eq!(seen.len(), 2);
    let challenged = server.get("/api/v1/audit").bearer(&secret(&other)).send();
    challenged.error(403, "insufficient_scope");
    assert!(
        challenged
            .header("www-authenticate")
            .unwrap()
            .contains(r#"scope="audit:read""#)
    );
    let bob = sign_up(&server, "bob@example.com");
    server
        .post(&format!("/api/v1/workspaces/{}/members", admin.workspace))
        .bearer(&admin.session)
        .json(json!({"email": bob.email, "role": "member", "scopes": []}))
        .send()
        .data(201);
    server
        .get("/api/v1/audit")
        .bearer(&bob.session)
        .workspace(&admin.workspace)
        .send()
        .error(403, "insufficient_scope");
    server
        .get("/api/v1/audit?action=token.explode")
        .bearer(&admin.session)
        .send()
        .error(422, "validation_failed");
    server
        .get("/api/v1/audit?since=yesterday")
        .bearer(&admin.session)
        .send()
        .error(422, "validation_failed");
}

#[test]
fn sign_ins_and_password_changes_are_recorded_without_secrets() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    sign_in(&server, "admin@example.com", "a wrong password").error(401, "invalid_credentials");
    // A password typed into the email field is not recorded.
    sign_in(&server, "my secret passphrase", PASSWORD).error(401, "invalid_credentials");
    let token = plain_token(&server, &admin.session);
    server
        .patch("/api/v1/me")
        .bearer(&admin.session)
        .json(json!({"current_password": PASSWORD, "new_password": "another good password"}))
        .send()
        .data(200);
    server
        .delete("/api/v1/sessions/current")
        .bearer(&admin.session)
        .send();
    let session = sign_in(&server, "admin@example.com", "another good password").data(201)["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let instance = entries(&server, &session, "?scope=instance&per_page=100");
    let failures = of(&instance, "session.fail");
    assert_eq!(failures.len(), 2, "{instance:#?}");
    assert!(
        failures
            .iter()
            .any(|e| e["target"]["name"] == "admin@example.com")
    );
    assert!(
        failures
            .iter()
            .any(|e| e["target"]["name"].is_null() && e["details"]["known_account"] == false)
    );
    assert_eq!(of(&instance, "account.password").len(), 1);
    assert_eq!(of(&instance, "session.revoke").len(), 1);

    let everything = format!(
        "{}{}",
        Value::Array(instance),
        Value::Array(entries(&server, &session, "?per_page=100"))
    );
    for secret in [
        PASSWORD,
        "another good password",
        "a wrong password",
        "my secret passphrase",
        token["token"].as_str().unwrap(),
        &admin.session,
    ] {
        assert!(!everything.contains(secret), "{secret} is in the audit log");
    }
    assert!(!everything.contains("$argon2"));
}

#[test]
fn filters_page_and_retention() {
    let mut server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let first = plain_token(&server, &admin.session);
    for _ in 0..4 {
        plain_token(&server, &admin.session);
    }
    server
        .delete(&format!("/api/v1/tokens/{}", id(&first)))
        .bearer(&admin.session)
        .send();
    let page = server
        .get("/api/v1/audit?action=token.create&per_page=2&page=2")
        .bearer(&admin.session)
        .send();
    assert_eq!(page.json()["meta"]["total"], 5);
    assert_eq!(page.data(200).as_array().unwrap().len(), 2);
    let about_first = entries(&server, &admin.session, &format!("?target={}", id(&first)));
    let actions: Vec<&str> = about_first
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["token.revoke", "token.create"]);
    let by_admin = entries(&server, &admin.session, &format!("?actor={}", admin.id));
    assert_eq!(by_admin.len(), 6);
    assert!(entries(&server, &admin.session, "?since=2999-01-01T00:00:00Z").is_empty());

    server
        .patch("/api/v1/settings")
        .bearer(&admin.session)
        .json(json!({"audit_retention_days": 1}))
        .send()
        .data(200);
    // Two days on, the sweep at start-up removes them.
    server.advance_clock(2 * 86_400 + 60);
    let purged = eventually(std::time::Duration::from_secs(10), || {
        entries(&server, &admin.session, "?per_page=100").is_empty()
    });
    assert!(purged);
}

#[test]
fn account_administration_is_recorded_by_who_did_it() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let bob = sign_up(&server, "bob@example.com");
    for disabled in [true, false] {
        server
            .patch(&format!("/api/v1/accounts/{}", bob.id))
            .bearer(&admin.session)
            .json(json!({"disabled": disabled}))
            .send()
            .data(200);
    }
    // From the command line, beside the running server.
    let reset = std::process::Command::new(BIN)
        .args([
            "admin",
            "reset-password",
            "--email",
            "bob@example.com",
            "--db",
        ])
        .arg(server.db_arg())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"a brand new password\n")?;
            child.wait()
        })
        .unwrap();
    assert!(reset.success());
    server
        .delete(&format!("/api/v1/accounts/{}", bob.id))
        .bearer(&admin.session)
        .send();

    let instance = entries(&server, &admin.session, "?scope=instance&per_page=100");
    for action in ["account.disable", "account.enable", "account.delete"] {
        let found = of(&instance, action);
        assert_eq!(found.len(), 1, "{action}: {instance:#?}");
        assert_eq!(found[0]["actor"]["account_id"], json!(admin.id));
        assert_eq!(found[0]["target"]["id"], json!(bob.id));
    }
    let by_cli = of(&instance, "account.password");
    assert_eq!(by_cli.len(), 1);
    assert_eq!(by_cli[0]["actor"]["kind"], "cli");
    assert_eq!(by_cli[0]["ip"], Value::Null);
    assert_eq!(by_cli[0]["target"]["name"], "bob@example.com");
}

#[test]
fn a_rules_document_write_is_one_entry() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    server
        .put("/api/v1/routes")
        .bearer(&admin.session)
        .json(json!({"default": "deny", "rules": [
            {"id": "health", "methods": ["GET"], "path": "/healthz", "public": true}
        ]}))
        .send()
        .data(200);
    let written = entries(&server, &admin.session, "?action=routes.update");
    assert_eq!(written.len(), 1, "{written:#?}");
    assert_eq!(written[0]["details"]["rules"], 1);
    assert_eq!(written[0]["details"]["version"], 1);
    assert_eq!(written[0]["workspace_id"], json!(admin.workspace));
}
