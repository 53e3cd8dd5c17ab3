//! Operations (§11): account administration by the instance admin and from
//! the command line.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;

const NEW_PASSWORD: &str = "a brand new long password";

fn set_disabled(server: &Server, admin: &Account, id: &str, disabled: bool) -> Response {
    server
        .patch(&format!("/api/v1/accounts/{id}"))
        .bearer(&admin.session)
        .json(json!({"disabled": disabled}))
        .send()
}

fn delete_account(server: &Server, admin: &Account, id: &str) -> Response {
    server
        .delete(&format!("/api/v1/accounts/{id}"))
        .bearer(&admin.session)
        .send()
}

fn emails(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs `tokenward <args>` with `stdin` as its standard input.
fn tokenward(args: &[&str], db: &Path, stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("TOKENWARD_DB", db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// ---------------------------------------------------------------------
// Account administration
// ---------------------------------------------------------------------

#[test]
fn disabling_an_account_stops_its_tokens_and_sessions_at_once() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let bob = sign_up(&server, "bob@example.com");
    let token = plain_token(&server, &bob.session);
    let secret = token["token"].as_str().unwrap();
    // Verified once, so the answer sits in the verify cache.
    assert_eq!(verify(&server, secret, None)["code"], "VALID");

    let disabled = set_disabled(&server, &admin, &bob.id, true).data(200);
    assert_eq!(disabled["id"], bob.id.as_str());
    assert_eq!(disabled["email"], "bob@example.com");
    assert_eq!(disabled["disabled"], true);
    assert!(disabled["disabled_at"].as_str().unwrap().ends_with('Z'));

    // The very next verification, session call and token call are refused.
    assert_eq!(verify(&server, secret, None)["code"], "DISABLED");
    server
        .get("/api/v1/me")
        .bearer(&bob.session)
        .send()
        .error(401, "invalid_token");
    server
        .get("/api/v1/tokens/self")
        .bearer(secret)
        .send()
        .error(401, "invalid_token");
    sign_in(&server, "bob@example.com", PASSWORD).error(401, "invalid_credentials");

    // Disabling twice changes nothing, and keeps the first time.
    let again = set_disabled(&server, &admin, &bob.id, true).data(200);
    assert_eq!(again["disabled_at"], disabled["disabled_at"]);

    let enabled = set_disabled(&server, &admin, &bob.id, false).data(200);
    assert_eq!(enabled["disabled"], false);
    assert_eq!(enabled["disabled_at"], Value::Null);
    assert_eq!(verify(&server, secret, None)["code"], "VALID");
    // Sessions ended for good: enabling does not bring a stolen one back.
    server
        .get("/api/v1/me")
        .bearer(&bob.session)
        .send()
        .error(401, "invalid_token");
    sign_in(&server, "bob@example.com", PASSWORD).data(201);

    // The list shows the state too.
    let list = server
        .get("/api/v1/accounts?q=bob")
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(list[0]["disabled"], false);
    assert_eq!(list[0]["active_tokens"], 1);
}

#[test]
fn deleting_an_account_removes_its_tokens_and_memberships() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let bob = sign_up(&server, "bob@example.com");
    let carol = sign_up(&server, "carol@example.com");
    let team = server
        .post("/api/v1/workspaces")
        .bearer(&admin.session)
        .json(json!({"name": "Team"}))
        .send()
        .data(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .post(&format!("/api/v1/workspaces/{team}/members"))
        .bearer(&admin.session)
        .json(json!({"email": "bob@example.com", "role": "member", "scopes": ["tokens"]}))
        .send()
        .data(201);
    let in_team = server
        .post("/api/v1/tokens")
        .bearer(&bob.session)
        .workspace(&team)
        .json(json!({"name": "team token", "scopes": ["tokens"]}))
        .send()
        .data(201);
    let personal = plain_token(&server, &bob.session);
    for token in [&in_team, &personal] {
        assert_eq!(
            verify(&server, token["token"].as_str().unwrap(), None)["code"],
            "VALID"
        );
    }

    // Carol is the only admin of a workspace Bob is a member of: deleting
    // her would leave it without one.
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
    let refused = delete_account(&server, &admin, &carol.id).error(409, "last_admin");
    assert!(
        refused["message"].as_str().unwrap().contains("Shared"),
        "{refused}"
    );
    server
        .get("/api/v1/me")
        .bearer(&carol.session)
        .send()
        .data(200);

    let deleted = delete_account(&server, &admin, &bob.id);
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert!(deleted.body.is_empty());

    for (token, workspace) in [(&in_team, &team), (&personal, &bob.workspace)] {
        let answer = verify_in(&server, workspace, token["token"].as_str().unwrap(), None);
        assert_eq!(answer["valid"], false, "{answer}");
        assert_eq!(answer["code"], "NOT_FOUND", "{answer}");
    }
    let members = server
        .get(&format!("/api/v1/workspaces/{team}/members"))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(
        members
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["account"]["email"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["admin@example.com"]
    );
    server
        .get("/api/v1/me")
        .bearer(&bob.session)
        .send()
        .error(401, "invalid_token");
    sign_in(&server, "bob@example.com", PASSWORD).error(401, "invalid_credentials");
    let list = server
        .get("/api/v1/accounts")
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(emails(&list), ["admin@example.com", "carol@example.com"]);
    delete_account(&server, &admin, &bob.id).error(404, "not_found");

    // Now Carol can go: her workspaces had no one else left.
    assert_eq!(delete_account(&server, &admin, &carol.id).status, 204);
    // The email is free again.
    sign_up(&server, "bob@example.com");
}

#[test]
fn the_last_instance_admin_can_be_neither_disabled_nor_deleted() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    set_disabled(&server, &admin, &admin.id, true).error(409, "last_admin");
    delete_account(&server, &admin, &admin.id).error(409, "last_admin");
    // Enabling an enabled account is fine.
    let me = set_disabled(&server, &admin, &admin.id, false).data(200);
    assert_eq!(me["instance_admin"], true);
    server
        .get("/api/v1/me")
        .bearer(&admin.session)
        .send()
        .data(200);
}

#[test]
fn only_the_instance_admin_manages_accounts() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let bob = sign_up(&server, "bob@example.com");
    let admin_token = plain_token(&server, &admin.session)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for credential in [bob.session.as_str(), admin_token.as_str()] {
        server
            .get("/api/v1/accounts")
            .bearer(credential)
            .send()
            .error(403, "forbidden");
        server
            .patch(&format!("/api/v1/accounts/{}", admin.id))
            .bearer(credential)
            .json(json!({"disabled": true}))
            .send()
            .error(403, "forbidden");
        server
            .delete(&format!("/api/v1/accounts/{}", admin.id))
            .bearer(credential)
            .send()
            .error(403, "forbidden");
    }
    server
        .get("/api/v1/accounts")
        .send()
        .error(401, "invalid_token");

    // The body is checked like every other.
    for body in [
        json!({}),
        json!({"disabled": "yes"}),
        json!({"disabled": true, "email": "x"}),
    ] {
        server
            .patch(&format!("/api/v1/accounts/{}", bob.id))
            .bearer(&admin.session)
            .json(body)
            .send()
            .error(422, "validation_failed");
    }
    set_disabled(&server, &admin, NOBODY_S_WORKSPACE, true).error(404, "not_found");
    server
        .get("/api/v1/me")
        .bearer(&bob.session)
        .send()
        .data(200);
}

#[test]
fn accounts_are_searched_and_paged() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    for name in ["ann", "ben", "cat", "dan", "eve", "fay", "gus"] {
        sign_up(&server, &format!("{name}@team.example.com"));
    }
    sign_up(&server, "outsider@example.org");

    let first = server
        .get("/api/v1/accounts?per_page=3")
        .bearer(&admin.session)
        .send();
    let json = first.json();
    assert_eq!(json["meta"], json!({"page": 1, "per_page": 3, "total": 9}));
    assert_eq!(
        emails(&json["data"]),
        [
            "admin@example.com",
            "ann@team.example.com",
            "ben@team.example.com"
        ]
    );
    let item = &json["data"][0];
    for key in [
        "id",
        "email",
        "instance_admin",
        "disabled",
        "disabled_at",
        "created_at",
        "workspaces",
        "active_tokens",
    ] {
        assert!(item.get(key).is_some(), "{key} missing from {item}");
    }
    assert!(item.get("password_hash").is_none());
    assert_eq!(item["workspaces"], 1);

    let searched = server
        .get("/api/v1/accounts?q=%20TEAM.example&page=3&per_page=3")
        .bearer(&admin.session)
        .send();
    let json = searched.json();
    assert_eq!(json["meta"], json!({"page": 3, "per_page": 3, "total": 7}));
    assert_eq!(emails(&json["data"]), ["gus@team.example.com"]);
    let none = server
        .get("/api/v1/accounts?q=nobody%25")
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(none, json!([]));
    server
        .get("/api/v1/accounts?per_page=101")
        .bearer(&admin.session)
        .send()
        .error(422, "validation_failed");
}

// ---------------------------------------------------------------------
// The command line on accounts
// ---------------------------------------------------------------------

#[test]
fn reset_password_from_the_command_line_ends_every_session() {
    let server = Server::start();
    let _admin = admin_with_open_signup(&server);
    let bob = sign_up(&server, "bob@example.com");
    let db = server.db_path();

    let missing = tokenward(
        &["admin", "reset-password", "--email", "nobody@example.com"],
        &db,
        &format!("{NEW_PASSWORD}\n"),
    );
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("no account"),
        "{}",
        stderr(&missing)
    );
    let short = tokenward(
        &["admin", "reset-password", "--email", "bob@example.com"],
        &db,
        "short\n",
    );
    assert!(!short.status.success());
    assert!(stderr(&short).contains("at least 10"), "{}", stderr(&short));
    server
        .get("/api/v1/me")
        .bearer(&bob.session)
        .send()
        .data(200);

    let reset = tokenward(
        &["admin", "reset-password", "--email", "Bob@Example.com"],
        &db,
        &format!("{NEW_PASSWORD}\n"),
    );
    assert!(reset.status.success(), "{}", stderr(&reset));
    assert!(
        stdout(&reset).contains("bob@example.com"),
        "{}",
        stdout(&reset)
    );

    server
        .get("/api/v1/me")
        .bearer(&bob.session)
        .send()
        .error(401, "invalid_token");
    sign_in(&server, "bob@example.com", PASSWORD).error(401, "invalid_credentials");
    let fresh = sign_in(&server, "bob@example.com", NEW_PASSWORD).data(201);
    server
        .get("/api/v1/me")
        .bearer(fresh["token"].as_str().unwrap())
        .send()
        .data(200);
}

#[test]
fn disable_from_the_command_line_refuses_sign_in_and_tokens() {
    let server = Server::start();
    let _admin = admin_with_open_signup(&server);
    let bob = sign_up(&server, "bob@example.com");
    let secret = plain_token(&server, &bob.session)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(verify(&server, &secret, None)["code"], "VALID");
    let db = server.db_path();

    let disable = tokenward(&["admin", "disable", "--email", "bob@example.com"], &db, "");
    assert!(disable.status.success(), "{}", stderr(&disable));
    assert!(
        stdout(&disable).contains("disabled"),
        "{}",
        stdout(&disable)
    );
    sign_in(&server, "bob@example.com", PASSWORD).error(401, "invalid_credentials");
    server
        .get("/api/v1/me")
        .bearer(&bob.session)
        .send()
        .error(401, "invalid_token");
    // The running server's verify cache learns of the change within a second.
    assert!(
        eventually(Duration::from_secs(3), || {
            verify(&server, &secret, None)["code"] == "DISABLED"
        }),
        "a token of an account disabled from the command line kept verifying"
    );

    let last = tokenward(
        &["admin", "disable", "--email", "admin@example.com"],
        &db,
        "",
    );
    assert!(!last.status.success());
    assert!(stderr(&last).contains("last"), "{}", stderr(&last));
    sign_in(&server, "admin@example.com", PASSWORD).data(201);

    let enable = tokenward(&["admin", "enable", "--email", "bob@example.com"], &db, "");
    assert!(enable.status.success(), "{}", stderr(&enable));
    sign_in(&server, "bob@example.com", PASSWORD).data(201);
    assert!(eventually(Duration::from_secs(3), || {
        verify(&server, &secret, None)["code"] == "VALID"
    }));
}
