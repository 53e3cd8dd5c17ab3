//! Workspaces, members with grants, the scope catalog, and the wall between
//! workspaces.

mod common;

use common::*;

#[test]
fn workspaces_are_created_listed_and_renamed_by_admins() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let made = server
        .post("/api/v1/workspaces")
        .bearer(&admin.session)
        .json(json!({"name": "  Sales  ", "token_prefix": "mb_"}))
        .send()
        .data(201);
    assert_eq!(made["name"], "Sales");
    assert_eq!(made["token_prefix"], "mb_");
    assert_eq!(made["role"], "admin");
    let id = made["id"].as_str().unwrap();

    let res = server
        .get("/api/v1/workspaces?per_page=1")
        .bearer(&admin.session)
        .send();
    let json = res.json();
    assert_eq!(json["meta"], json!({"page": 1, "per_page": 1, "total": 2}));
    assert_eq!(json["data"].as_array().unwrap().len(), 1);

    let renamed = server
        .patch(&format!("/api/v1/workspaces/{id}"))
        .bearer(&admin.session)
        .json(json!({"name": "Sales EU", "token_prefix": null}))
        .send()
        .data(200);
    assert_eq!(renamed["name"], "Sales EU");
    assert!(renamed["token_prefix"].is_null());

    for bad in [
        json!({"name": ""}),
        json!({"token_prefix": "Sales"}),
        json!({"owner": "x"}),
    ] {
        server
            .patch(&format!("/api/v1/workspaces/{id}"))
            .bearer(&admin.session)
            .json(bad)
            .send()
            .error(422, "validation_failed");
    }
    server
        .post("/api/v1/workspaces")
        .bearer(&admin.session)
        .json(json!({}))
        .send()
        .error(422, "validation_failed");
}

#[test]
fn another_workspace_is_not_there() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let eve = sign_up(&server, "eve@example.com");
    let theirs = &admin.workspace;
    for path in [
        format!("/api/v1/workspaces/{theirs}"),
        format!("/api/v1/workspaces/{theirs}/members"),
        format!("/api/v1/workspaces/{theirs}/scopes"),
    ] {
        server
            .get(&path)
            .bearer(&eve.session)
            .send()
            .error(404, "not_found");
    }
    server
        .patch(&format!("/api/v1/workspaces/{theirs}"))
        .bearer(&eve.session)
        .json(json!({"name": "mine now"}))
        .send()
        .error(404, "not_found");
    // X-Workspace naming a workspace the caller is not in, or no workspace.
    server
        .get("/api/v1/tokens")
        .bearer(&eve.session)
        .workspace(theirs)
        .send()
        .error(404, "not_found");
    server
        .get("/api/v1/tokens")
        .bearer(&eve.session)
        .workspace("not-a-uuid")
        .send()
        .error(404, "not_found");
    server
        .get(&format!("/api/v1/tokens?workspace={theirs}"))
        .bearer(&eve.session)
        .send()
        .error(404, "not_found");
}

#[test]
fn admins_manage_members_and_their_grants() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let bob = sign_up(&server, "bob@example.com");
    let ws = &admin.workspace;
    add_catalog_scope(&server, &admin, ws, "contacts");

    let added = server
        .post(&format!("/api/v1/workspaces/{ws}/members"))
        .bearer(&admin.session)
        .json(json!({"email": "BOB@example.com", "role": "member", "scopes": ["contacts:read"]}))
        .send()
        .data(201);
    assert_eq!(
        added,
        json!({"account": {"id": bob.id, "email": "bob@example.com"}, "role": "member", "scopes": ["contacts:read"]})
    );

    let members = server
        .get(&format!("/api/v1/workspaces/{ws}/members"))
        .bearer(&bob.session)
        .send()
        .data(200);
    assert_eq!(members.as_array().unwrap().len(), 2);

    // Members read, only admins change.
    server
        .post(&format!("/api/v1/workspaces/{ws}/members"))
        .bearer(&bob.session)
        .json(json!({"email": "admin@example.com", "role": "member", "scopes": []}))
        .send()
        .error(403, "forbidden");
    server
        .put(&format!("/api/v1/workspaces/{ws}/scopes/ai"))
        .bearer(&bob.session)
        .json(json!({"description": "x"}))
        .send()
        .error(403, "forbidden");

    let errors = [
        (
            json!({"email": "nobody@example.com", "role": "member", "scopes": []}),
            "validation_failed",
        ),
        (
            json!({"email": "bob@example.com", "role": "member", "scopes": []}),
            "validation_failed",
        ),
        (
            json!({"email": "bob@example.com", "role": "owner", "scopes": []}),
            "validation_failed",
        ),
        (
            json!({"email": "bob@example.com", "role": "member", "scopes": ["nope"]}),
            "validation_failed",
        ),
    ];
    for (body, code) in errors {
        server
            .post(&format!("/api/v1/workspaces/{ws}/members"))
            .bearer(&admin.session)
            .json(body)
            .send()
            .error(422, code);
    }
    let carol = sign_up(&server, "carol@example.com");
    server
        .post(&format!("/api/v1/workspaces/{ws}/members"))
        .bearer(&admin.session)
        .json(json!({"email": carol.email, "role": "member", "scopes": ["campaigns"]}))
        .send()
        .error(422, "unknown_scope");

    let promoted = server
        .patch(&format!("/api/v1/workspaces/{ws}/members/{}", bob.id))
        .bearer(&admin.session)
        .json(json!({"role": "admin", "scopes": ["contacts"]}))
        .send()
        .data(200);
    assert_eq!(promoted["role"], "admin");
    assert_eq!(promoted["scopes"], json!(["contacts"]));

    let removed = server
        .delete(&format!("/api/v1/workspaces/{ws}/members/{}", bob.id))
        .bearer(&admin.session)
        .send();
    assert_eq!(removed.status, 204);
    server
        .get(&format!("/api/v1/workspaces/{ws}"))
        .bearer(&bob.session)
        .send()
        .error(404, "not_found");
    server
        .delete(&format!("/api/v1/workspaces/{ws}/members/{}", bob.id))
        .bearer(&admin.session)
        .send()
        .error(404, "not_found");
}

#[test]
fn the_last_admin_stays() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let bob = sign_up(&server, "bob@example.com");
    let ws = &admin.workspace;
    server
        .patch(&format!("/api/v1/workspaces/{ws}/members/{}", admin.id))
        .bearer(&admin.session)
        .json(json!({"role": "member"}))
        .send()
        .error(409, "last_admin");
    server
        .delete(&format!("/api/v1/workspaces/{ws}/members/{}", admin.id))
        .bearer(&admin.session)
        .send()
        .error(409, "last_admin");

    server
        .post(&format!("/api/v1/workspaces/{ws}/members"))
        .bearer(&admin.session)
        .json(json!({"email": bob.email, "role": "admin", "scopes": []}))
        .send()
        .data(201);
    // With a second admin, the first may step down.
    server
        .patch(&format!("/api/v1/workspaces/{ws}/members/{}", admin.id))
        .bearer(&admin.session)
        .json(json!({"role": "member"}))
        .send()
        .data(200);
    server
        .delete(&format!("/api/v1/workspaces/{ws}/members/{}", bob.id))
        .bearer(&bob.session)
        .send()
        .error(409, "last_admin");
}

#[test]
fn the_catalog_is_upserted_listed_and_deleted_everywhere() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let bob = sign_up(&server, "bob@example.com");
    let ws = &admin.workspace;
    add_catalog_scope(&server, &admin, ws, "contacts");
    add_catalog_scope(&server, &admin, ws, "knowledge-base");
    let updated = server
        .put(&format!("/api/v1/workspaces/{ws}/scopes/contacts"))
        .bearer(&admin.session)
        .json(json!({"description": "People and companies"}))
        .send()
        .data(200);
    assert_eq!(
        updated,
        json!({"name": "contacts", "description": "People and companies"})
    );
    let list = server
        .get(&format!("/api/v1/workspaces/{ws}/scopes"))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(list.as_array().unwrap().len(), 2);

    for bad in ["Contacts", "tokens", "domains", "a_b"] {
        server
            .put(&format!("/api/v1/workspaces/{ws}/scopes/{bad}"))
            .bearer(&admin.session)
            .json(json!({"description": "x"}))
            .send()
            .error(422, "validation_failed");
    }

    server
        .post(&format!("/api/v1/workspaces/{ws}/members"))
        .bearer(&admin.session)
        .json(json!({"email": bob.email, "role": "member", "scopes": ["contacts", "knowledge-base:read"]}))
        .send()
        .data(201);
    let only_contacts = create_token(
        &server,
        &admin.session,
        json!({"name": "a", "scopes": ["contacts:read"]}),
    );
    let both = create_token(
        &server,
        &admin.session,
        json!({"name": "b", "scopes": ["contacts", "knowledge-base"]}),
    );

    let deleted = server
        .delete(&format!("/api/v1/workspaces/{ws}/scopes/contacts"))
        .bearer(&admin.session)
        .send();
    assert_eq!(deleted.status, 204);
    server
        .delete(&format!("/api/v1/workspaces/{ws}/scopes/contacts"))
        .bearer(&admin.session)
        .send()
        .error(404, "not_found");

    let members = server
        .get(&format!("/api/v1/workspaces/{ws}/members"))
        .bearer(&admin.session)
        .send()
        .data(200);
    let bob_grants = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["account"]["email"] == "bob@example.com")
        .unwrap();
    assert_eq!(bob_grants["scopes"], json!(["knowledge-base:read"]));

    let a = server
        .get(&format!(
            "/api/v1/tokens/{}",
            only_contacts["id"].as_str().unwrap()
        ))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(a["scopes"], json!([]));
    assert_eq!(
        a["state"], "revoked",
        "a token left with no scope is revoked"
    );
    let b = server
        .get(&format!("/api/v1/tokens/{}", both["id"].as_str().unwrap()))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(b["scopes"], json!(["knowledge-base"]));
    assert_eq!(b["state"], "active");
    let verdict = verify(&server, only_contacts["token"].as_str().unwrap(), None);
    assert_eq!(verdict["code"], "REVOKED");
}

#[test]
fn a_session_acts_in_the_workspace_it_names() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let second = server
        .post("/api/v1/workspaces")
        .bearer(&admin.session)
        .json(json!({"name": "Second", "token_prefix": "tm_pro_"}))
        .send()
        .data(201);
    let second_id = second["id"].as_str().unwrap();
    let in_second = server
        .post("/api/v1/tokens")
        .bearer(&admin.session)
        .workspace(second_id)
        .json(json!({"name": "pro", "scopes": ["tokens"]}))
        .send()
        .data(201);
    assert_eq!(in_second["workspace_id"], second_id);
    assert!(in_second["token"].as_str().unwrap().starts_with("tm_pro_"));

    let by_query = server
        .get(&format!("/api/v1/tokens?workspace={second_id}"))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(by_query.as_array().unwrap().len(), 1);
    // The first workspace is the default and does not see it.
    let default = server
        .get("/api/v1/tokens")
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(default.as_array().unwrap().len(), 0);

    // An API token acts in its own workspace; X-Workspace is ignored.
    let secret = in_second["token"].as_str().unwrap();
    let own = server
        .get("/api/v1/tokens")
        .bearer(secret)
        .workspace(&admin.workspace)
        .send()
        .data(200);
    assert_eq!(own.as_array().unwrap().len(), 1);
}
