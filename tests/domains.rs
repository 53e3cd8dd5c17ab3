//! Domains: each created with its own token, domain scopes everywhere, and
//! the last-token rule.

mod common;

use common::*;

fn add_domain(server: &Server, credential: &str, name: &str) -> Value {
    server
        .post("/api/v1/domains")
        .bearer(credential)
        .json(json!({"name": name}))
        .send()
        .data(201)
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_domain_is_born_with_its_token() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    // Numbers are instance-wide: take a few first.
    for i in 0..3 {
        create_token(
            &server,
            &admin.session,
            json!({"name": format!("t{i}"), "scopes": ["tokens"]}),
        );
    }
    let created = add_domain(&server, &admin.session, "Example.COM");
    let domain = &created["domain"];
    assert_eq!(domain["name"], "example.com");
    assert!(domain["id"].is_string() && domain["created_at"].is_string());
    let token = &created["token"];
    assert_eq!(token["number"], 4);
    assert_eq!(token["name"], "example.com token 4");
    assert_eq!(token["scopes"], json!(["domain:example.com"]));
    let secret = token["token"].as_str().unwrap();
    assert!(secret.starts_with("tw_"));
    // Without the no-expiry switch it lives as long as allowed.
    let days = |v: &Value| v.as_str().unwrap()[..10].to_owned();
    assert_ne!(days(&token["expires_at"]), days(&token["created_at"]));

    let verdict = verify(&server, secret, Some(json!(["domain:example.com"])));
    assert_eq!(verdict["code"], "VALID");
    assert_eq!(
        verify(&server, secret, Some(json!(["domain:example.com:read"])))["code"],
        "VALID"
    );
    assert_eq!(
        verify(&server, secret, Some(json!(["domain:example.org"])))["code"],
        "INSUFFICIENT_SCOPE"
    );

    let listed = server
        .get("/api/v1/domains")
        .bearer(&admin.session)
        .send()
        .json();
    assert_eq!(listed["meta"]["total"], 1);
    assert_eq!(
        listed["data"][0],
        json!({"id": domain["id"], "name": "example.com", "created_at": domain["created_at"], "active_tokens": 1})
    );
    let one = server
        .get(&format!("/api/v1/domains/{}", id(domain)))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(one["active_tokens"], 1);

    // The secret is not shown again.
    let read = server
        .get(&format!("/api/v1/tokens/{}", id(token)))
        .bearer(&admin.session)
        .send();
    assert!(!read.text().contains(secret));
}

#[test]
fn domain_tokens_never_expire_when_that_is_allowed() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    server
        .patch("/api/v1/settings")
        .bearer(&admin.session)
        .json(json!({"allow_no_expiry": true}))
        .send()
        .data(200);
    let created = add_domain(&server, &admin.session, "mail.example.co.uk");
    assert!(created["token"]["expires_at"].is_null());
}

#[test]
fn names_are_host_names_and_unique_per_workspace() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    for bad in [
        "example",
        "-example.com",
        "exa mple.com",
        "example..com",
        "",
        "a_b.com",
    ] {
        server
            .post("/api/v1/domains")
            .bearer(&admin.session)
            .json(json!({"name": bad}))
            .send()
            .error(422, "validation_failed");
    }
    let long = format!("{}.com", "a".repeat(64));
    server
        .post("/api/v1/domains")
        .bearer(&admin.session)
        .json(json!({"name": long}))
        .send()
        .error(422, "validation_failed");
    server
        .post("/api/v1/domains")
        .bearer(&admin.session)
        .json(json!({}))
        .send()
        .error(422, "validation_failed");

    add_domain(&server, &admin.session, "example.com");
    server
        .post("/api/v1/domains")
        .bearer(&admin.session)
        .json(json!({"name": "EXAMPLE.com"}))
        .send()
        .error(409, "domain_exists");

    // Another workspace may have the same name, and cannot see this one.
    let eve = sign_up(&server, "eve@example.com");
    let theirs = add_domain(&server, &eve.session, "example.com");
    let mine = server
        .get("/api/v1/domains")
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_ne!(mine[0]["id"], theirs["domain"]["id"]);
    let path = format!("/api/v1/domains/{}", mine[0]["id"].as_str().unwrap());
    server
        .get(&path)
        .bearer(&eve.session)
        .send()
        .error(404, "not_found");
    server
        .delete(&path)
        .bearer(&eve.session)
        .send()
        .error(404, "not_found");
    server.get(&path).bearer(&admin.session).send().data(200);
}

#[test]
fn the_last_active_domain_token_cannot_be_deleted_or_narrowed() {
    let mut server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let created = add_domain(&server, &admin.session, "example.com");
    let first = id(&created["token"]);

    let delete = server
        .delete(&format!("/api/v1/tokens/{first}"))
        .bearer(&admin.session)
        .send();
    let err = delete.error(409, "last_domain_token");
    assert!(
        err["message"].as_str().unwrap().contains("example.com"),
        "{err}"
    );
    server
        .patch(&format!("/api/v1/tokens/{first}"))
        .bearer(&admin.session)
        .json(json!({"scopes": ["domain:example.com:read"]}))
        .send()
        .error(409, "last_domain_token");
    // Renaming is fine.
    server
        .patch(&format!("/api/v1/tokens/{first}"))
        .bearer(&admin.session)
        .json(json!({"name": "sending"}))
        .send()
        .data(200);

    // A token that expires does not keep the domain alive.
    let short = create_token(
        &server,
        &admin.session,
        json!({"name": "s", "scopes": ["domain:example.com"], "expires_in": 1}),
    );
    server.advance_clock(2);
    server
        .delete(&format!("/api/v1/tokens/{first}"))
        .bearer(&admin.session)
        .send()
        .error(409, "last_domain_token");
    // Nor does a read-only one, nor a revoked one.
    create_token(
        &server,
        &admin.session,
        json!({"name": "r", "scopes": ["domain:example.com:read"]}),
    );
    let revoked = create_token(
        &server,
        &admin.session,
        json!({"name": "x", "scopes": ["domain:example.com"]}),
    );
    assert_eq!(
        server
            .delete(&format!("/api/v1/tokens/{}", id(&revoked)))
            .bearer(&admin.session)
            .send()
            .status,
        204
    );
    server
        .delete(&format!("/api/v1/tokens/{first}"))
        .bearer(&admin.session)
        .send()
        .error(409, "last_domain_token");
    // An expired token may still be deleted itself.
    assert_eq!(
        server
            .delete(&format!("/api/v1/tokens/{}", id(&short)))
            .bearer(&admin.session)
            .send()
            .status,
        204
    );

    // With a second active full token, the first may go.
    let second = create_token(
        &server,
        &admin.session,
        json!({"name": "second", "scopes": ["domain:example.com", "tokens"]}),
    );
    assert_eq!(
        server
            .delete(&format!("/api/v1/tokens/{first}"))
            .bearer(&admin.session)
            .send()
            .status,
        204
    );
    server
        .patch(&format!("/api/v1/tokens/{}", id(&second)))
        .bearer(&admin.session)
        .json(json!({"scopes": ["tokens"]}))
        .send()
        .error(409, "last_domain_token");
    let domain = server
        .get("/api/v1/domains")
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(
        domain[0]["active_tokens"], 2,
        "second, and the read-only one"
    );
}

#[test]
fn resetting_the_last_domain_token_is_allowed_and_renumbers_it() {
    let mut server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let created = add_domain(&server, &admin.session, "example.com");
    let old = &created["token"];
    let new = server
        .post(&format!("/api/v1/tokens/{}/reset", id(old)))
        .bearer(&admin.session)
        .json(json!({"grace_seconds": 1}))
        .send()
        .data(201);
    let number = new["number"].as_i64().unwrap();
    assert!(number > old["number"].as_i64().unwrap());
    assert_eq!(new["name"], format!("example.com token {number}"));
    assert_eq!(new["scopes"], json!(["domain:example.com"]));
    assert_eq!(
        verify(
            &server,
            new["token"].as_str().unwrap(),
            Some(json!(["domain:example.com"]))
        )["code"],
        "VALID"
    );

    server.advance_clock(2);
    assert_eq!(
        verify(&server, old["token"].as_str().unwrap(), None)["code"],
        "EXPIRED"
    );
    // The new token is now the last one.
    server
        .delete(&format!("/api/v1/tokens/{}", id(&new)))
        .bearer(&admin.session)
        .send()
        .error(409, "last_domain_token");
}

#[test]
fn domain_scopes_work_in_grants_tokens_and_verify() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    add_domain(&server, &admin.session, "example.com");
    add_domain(&server, &admin.session, "example.org");
    let bob = sign_up(&server, "bob@example.com");
    server
        .post(&format!("/api/v1/workspaces/{}/members", admin.workspace))
        .bearer(&admin.session)
        .json(json!({"email": bob.email, "role": "member", "scopes": ["domain:example.com:read"]}))
        .send()
        .data(201);
    let as_bob = |body: Value| {
        server
            .post("/api/v1/tokens")
            .bearer(&bob.session)
            .workspace(&admin.workspace)
            .json(body)
            .send()
    };
    as_bob(json!({"name": "x", "scopes": ["domain:example.com"]})).error(403, "forbidden");
    as_bob(json!({"name": "x", "scopes": ["domain:example.org:read"]})).error(403, "forbidden");
    let reader = as_bob(json!({"name": "reader", "scopes": ["domain:example.com:read"]})).data(201);
    assert_eq!(
        verify(
            &server,
            reader["token"].as_str().unwrap(),
            Some(json!(["domain:example.com:read"]))
        )["code"],
        "VALID"
    );
    as_bob(json!({"name": "x", "scopes": ["domain:nowhere.example"]})).error(403, "forbidden");
    let admin_unknown = server
        .post("/api/v1/tokens")
        .bearer(&admin.session)
        .json(json!({"name": "x", "scopes": ["domain:nowhere.example"]}))
        .send();
    admin_unknown.error(422, "unknown_scope");
}

#[test]
fn deleting_a_domain_removes_its_scopes_and_revokes_emptied_tokens() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    add_catalog_scope(&server, &admin, &admin.workspace, "contacts");
    let created = add_domain(&server, &admin.session, "example.com");
    let bob = sign_up(&server, "bob@example.com");
    server
        .post(&format!("/api/v1/workspaces/{}/members", admin.workspace))
        .bearer(&admin.session)
        .json(json!({"email": bob.email, "role": "member", "scopes": ["domain:example.com", "contacts"]}))
        .send()
        .data(201);
    let mixed = create_token(
        &server,
        &admin.session,
        json!({"name": "m", "scopes": ["domain:example.com:read", "contacts"]}),
    );
    let auto_secret = created["token"]["token"].as_str().unwrap();

    let res = server
        .delete(&format!("/api/v1/domains/{}", id(&created["domain"])))
        .bearer(&admin.session)
        .send();
    assert_eq!(res.status, 204);
    server
        .delete(&format!("/api/v1/domains/{}", id(&created["domain"])))
        .bearer(&admin.session)
        .send()
        .error(404, "not_found");

    let auto = verify(&server, auto_secret, None);
    assert_eq!(auto["code"], "REVOKED");
    assert_eq!(auto["token"]["scopes"], json!([]));
    let kept = verify(&server, mixed["token"].as_str().unwrap(), None);
    assert_eq!(kept["code"], "VALID");
    assert_eq!(kept["token"]["scopes"], json!(["contacts"]));
    let members = server
        .get(&format!("/api/v1/workspaces/{}/members", admin.workspace))
        .bearer(&admin.session)
        .send()
        .data(200);
    let grants = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["account"]["email"] == "bob@example.com")
        .unwrap();
    assert_eq!(grants["scopes"], json!(["contacts"]));
    assert_eq!(
        server
            .get("/api/v1/domains")
            .bearer(&admin.session)
            .send()
            .json()["meta"]["total"],
        0
    );

    // The name is free again, with a fresh token.
    let again = add_domain(&server, &admin.session, "example.com");
    assert_ne!(again["token"]["id"], created["token"]["id"]);
}

#[test]
fn domains_need_the_domains_scope_from_members_and_tokens() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let created = add_domain(&server, &admin.session, "example.com");
    let bob = sign_up(&server, "bob@example.com");
    server
        .post(&format!("/api/v1/workspaces/{}/members", admin.workspace))
        .bearer(&admin.session)
        .json(json!({"email": bob.email, "role": "member", "scopes": ["domains:read"]}))
        .send()
        .data(201);
    let list = server
        .get("/api/v1/domains")
        .bearer(&bob.session)
        .workspace(&admin.workspace)
        .send()
        .data(200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let denied = server
        .post("/api/v1/domains")
        .bearer(&bob.session)
        .workspace(&admin.workspace)
        .json(json!({"name": "bob.example"}))
        .send();
    denied.error(403, "insufficient_scope");
    assert!(
        denied
            .header("www-authenticate")
            .unwrap()
            .contains(r#"scope="domains""#)
    );
    server
        .delete(&format!("/api/v1/domains/{}", id(&created["domain"])))
        .bearer(&bob.session)
        .workspace(&admin.workspace)
        .send()
        .error(403, "insufficient_scope");

    // A token with `domains` manages domains, and holds each domain's scope.
    let manager = create_token(
        &server,
        &admin.session,
        json!({"name": "dns bot", "scopes": ["domains"], "expires_in": 600}),
    );
    let manager_secret = manager["token"].as_str().unwrap();
    let made = add_domain(&server, manager_secret, "bot.example");
    assert_eq!(
        made["token"]["expires_at"], manager["expires_at"],
        "not outliving its creator"
    );
    assert_eq!(
        verify(&server, manager_secret, Some(json!(["domain:bot.example"])))["code"],
        "VALID"
    );
    let reader = create_token(
        &server,
        &admin.session,
        json!({"name": "r", "scopes": ["domains:read"]}),
    );
    let reader_secret = reader["token"].as_str().unwrap();
    server
        .get("/api/v1/domains")
        .bearer(reader_secret)
        .send()
        .data(200);
    let read = server
        .get("/api/v1/domains")
        .bearer(manager_secret)
        .send()
        .data(200);
    assert_eq!(read.as_array().unwrap().len(), 2);
    let tokens_only = plain_token(&server, &admin.session);
    let res = server
        .get("/api/v1/domains")
        .bearer(tokens_only["token"].as_str().unwrap())
        .send();
    res.error(403, "insufficient_scope");
    assert!(
        res.header("www-authenticate")
            .unwrap()
            .contains(r#"scope="domains:read""#)
    );
}
