//! Forward-auth (§10) against the real binary: the rules document with its
//! ETag and validation, each proxy endpoint, each kind of rule, and every
//! answer of the table: status, challenge, identity and cache headers.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::*;

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

fn secret(token: &Value) -> String {
    token["token"].as_str().unwrap().to_owned()
}

const IDENTITY: [&str; 6] = [
    "x-tokenward-auth",
    "x-tokenward-token-id",
    "x-tokenward-workspace-id",
    "x-tokenward-user-id",
    "x-tokenward-scopes",
    "x-tokenward-rule",
];

/// The rules most tests use.
fn sample_rules() -> Value {
    json!({
        "rules": [
            {"id": "contacts-read", "methods": ["GET"], "path": "/contacts/**", "scopes": ["contacts:read"]},
            {"id": "contacts-write", "methods": ["*"], "path": "/contacts/**", "scopes": ["contacts"]},
            {"id": "me", "methods": ["GET"], "path": "/contacts/me", "scopes": ["campaigns:read"]},
            {"id": "public", "methods": ["GET"], "path": "/public/**", "public": true},
            {"id": "admin", "methods": ["*"], "path": "/admin/**", "deny": true},
        ]
    })
}

/// An admin whose workspace has the catalog scopes `contacts` and
/// `campaigns` and the sample rules.
fn workspace(server: &Server) -> Account {
    let admin = admin_with_open_signup(server);
    add_catalog_scope(server, &admin, &admin.workspace, "contacts");
    add_catalog_scope(server, &admin, &admin.workspace, "campaigns");
    put_rules(server, &admin, sample_rules()).data(200);
    admin
}

fn put_rules(server: &Server, admin: &Account, document: Value) -> Response {
    server
        .put("/api/v1/routes")
        .bearer(&admin.session)
        .workspace(&admin.workspace)
        .json(document)
        .send()
}

fn token_with(server: &Server, admin: &Account, scopes: Value) -> Value {
    create_token(
        server,
        &admin.session,
        json!({"name": "service", "scopes": scopes}),
    )
}

/// nginx's `auth_request` subrequest for `method uri`.
fn auth_request(server: &Server, workspace: &str, method: &str, uri: &str) -> Request {
    server
        .get(&format!("/api/v1/authz/{workspace}/auth-request"))
        .header("X-Original-Method", method)
        .header("X-Original-URI", uri)
}

fn assert_no_identity(response: &Response) {
    for name in IDENTITY {
        assert_eq!(response.header(name), None, "{name} on a denial");
    }
}

/// A denial: status, `X-Tokenward-Error`, the error envelope, no identity.
fn denied(response: &Response, status: u16, code: &str) -> Value {
    let json = response.error(status, code);
    assert_eq!(response.header("x-tokenward-error"), Some(code));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_no_identity(response);
    // Proxies pass a denial on to the client: it is guarded as any answer.
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert!(response.header("content-security-policy").is_some());
    json
}

fn allowed(response: &Response) {
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.body.is_empty(), "{}", response.text());
    for name in IDENTITY {
        assert!(response.header(name).is_some(), "{name} missing");
    }
    assert_eq!(response.header("x-tokenward-error"), None);
    // It goes to the proxy alone: what §10 lists, no security headers.
    for name in [
        "x-content-type-options",
        "content-security-policy",
        "x-frame-options",
        "referrer-policy",
    ] {
        assert_eq!(response.header(name), None, "{name} on an allowed answer");
    }
}

#[test]
fn the_rules_document_defaults_then_changes_with_if_match() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    add_catalog_scope(&server, &admin, &admin.workspace, "contacts");
    let first = server.get("/api/v1/routes").bearer(&admin.session).send();
    assert_eq!(
        first.data(200),
        json!({"default": "deny", "cors_preflight": true, "cache_seconds": 0, "rules": []})
    );
    assert_eq!(first.header("etag"), Some("\"0\""));

    let document = json!({
        "default": "authenticated", "cors_preflight": false, "cache_seconds": 30,
        "rules": [{"id": "read", "host": "api.example.com", "methods": ["GET"], "path": "/contacts/**", "scopes": ["contacts:read"]}]
    });
    let put = server
        .put("/api/v1/routes")
        .bearer(&admin.session)
        .header("If-Match", "\"0\"")
        .json(document.clone())
        .send();
    assert_eq!(put.data(200), document);
    assert_eq!(put.header("etag"), Some("\"1\""));

    // A write based on what was read before that one is stale.
    let stale = server
        .put("/api/v1/routes")
        .bearer(&admin.session)
        .header("If-Match", "\"0\"")
        .json(json!({"rules": []}))
        .send();
    stale.error(412, "precondition_failed");
    let weak = server
        .put("/api/v1/routes")
        .bearer(&admin.session)
        .header("If-Match", "W/\"1\"")
        .json(json!({"rules": []}))
        .send();
    weak.error(412, "precondition_failed");
    let now = server.get("/api/v1/routes").bearer(&admin.session).send();
    assert_eq!(now.data(200), document);
    assert_eq!(now.header("etag"), Some("\"1\""));

    // `*` and no If-Match at all are unconditional.
    let any = server
        .put("/api/v1/routes")
        .bearer(&admin.session)
        .header("If-Match", "*")
        .json(json!({"rules": []}))
        .send();
    assert_eq!(any.header("etag"), Some("\"2\""));
    let blind = put_rules(&server, &admin, json!({"rules": [], "cache_seconds": 5}));
    assert_eq!(blind.data(200)["cache_seconds"], 5);
    assert_eq!(blind.header("etag"), Some("\"3\""));

    // The document survives a restart.
    let mut server = server;
    server.restart();
    let again = server.get("/api/v1/routes").bearer(&admin.session).send();
    assert_eq!(again.data(200)["cache_seconds"], 5);
    assert_eq!(again.header("etag"), Some("\"3\""));
}

#[test]
fn rules_are_validated_when_written() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    add_catalog_scope(&server, &admin, &admin.workspace, "contacts");
    let cases = [
        (
            json!({"rules": [{"id": "a", "path": "/a/**/b", "public": true}]}),
            "rules[0].path",
        ),
        (
            json!({"rules": [{"id": "a", "path": "/a*", "public": true}]}),
            "rules[0].path",
        ),
        (
            json!({"rules": [{"id": "a", "methods": ["get"], "path": "/a", "public": true}]}),
            "rules[0].methods",
        ),
        (
            json!({"rules": [{"id": "no spaces", "path": "/a", "public": true}]}),
            "rules[0].id",
        ),
        (
            json!({"rules": [
            {"id": "a", "methods": ["GET"], "path": "/a/*", "public": true},
            {"id": "b", "methods": ["GET", "POST"], "path": "/a/*", "deny": true}]}),
            "rules[1]",
        ),
        (
            json!({"rules": [
            {"id": "a", "path": "/a", "public": true},
            {"id": "a", "path": "/b", "public": true}]}),
            "rules[1].id",
        ),
        (
            json!({"rules": [{"id": "a", "path": "/a", "scopes": ["campaigns"]}]}),
            "rules[0].scopes",
        ),
        (
            json!({"rules": [{"id": "a", "path": "/a", "scopes": ["domain:example.com"]}]}),
            "rules[0].scopes",
        ),
        (json!({"rules": [{"id": "a", "path": "/a"}]}), "rules[0]"),
        (json!({"rules": [], "default": "allow"}), "default"),
        (json!({"rules": [], "cache_seconds": -1}), "cache_seconds"),
        (json!({"rules": [], "extra": true}), "extra"),
        (json!({}), "rules"),
    ];
    for (document, field) in cases {
        let got = put_rules(&server, &admin, document.clone()).error(422, "validation_failed");
        assert!(
            got["details"][field].is_string(),
            "{document} → {got} (wanted details.{field})"
        );
    }
    // Nothing was stored by any of them.
    let now = server.get("/api/v1/routes").bearer(&admin.session).send();
    assert_eq!(now.header("etag"), Some("\"0\""));
}

#[test]
fn reading_needs_routes_read_and_writing_routes() {
    let server = Server::start();
    let admin = workspace(&server);
    let reader = token_with(&server, &admin, json!(["routes:read"]));
    let other = token_with(&server, &admin, json!(["contacts"]));

    let got = server.get("/api/v1/routes").bearer(&secret(&reader)).send();
    assert_eq!(got.data(200)["rules"].as_array().unwrap().len(), 5);
    let refused = server
        .put("/api/v1/routes")
        .bearer(&secret(&reader))
        .json(json!({"rules": []}))
        .send();
    refused.error(403, "insufficient_scope");
    assert_eq!(
        refused.header("www-authenticate"),
        Some(r#"Bearer realm="tokenward", error="insufficient_scope", scope="routes""#)
    );
    let refused = server.get("/api/v1/routes").bearer(&secret(&other)).send();
    refused.error(403, "insufficient_scope");
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .contains("scope=\"routes:read\"")
    );

    let writer = token_with(&server, &admin, json!(["routes"]));
    let written = server
        .put("/api/v1/routes")
        .bearer(&secret(&writer))
        .json(json!({"rules": []}))
        .send();
    assert_eq!(written.data(200)["rules"], json!([]));

    // A member without the grant is refused too; a session's workspace is
    // its X-Workspace.
    let bob = sign_up(&server, "bob@example.com");
    server
        .post(&format!("/api/v1/workspaces/{}/members", admin.workspace))
        .bearer(&admin.session)
        .json(json!({"email": bob.email, "role": "member", "scopes": []}))
        .send()
        .data(201);
    server
        .get("/api/v1/routes")
        .bearer(&bob.session)
        .workspace(&admin.workspace)
        .send()
        .error(403, "insufficient_scope");
    // In his own workspace he is admin, and its rules are its own.
    let own = server.get("/api/v1/routes").bearer(&bob.session).send();
    assert_eq!(own.header("etag"), Some("\"0\""));
}

#[test]
fn an_allowed_request_carries_the_token_s_identity() {
    let server = Server::start_with(&["--sweep-interval", "3600"]);
    let admin = workspace(&server);
    let token = token_with(&server, &admin, json!(["contacts:read", "campaigns:read"]));
    let answer = auth_request(&server, &admin.workspace, "GET", "/contacts/42?full=1")
        .bearer(&secret(&token))
        .send();
    allowed(&answer);
    assert_eq!(answer.header("x-tokenward-auth"), Some("token"));
    assert_eq!(
        answer.header("x-tokenward-token-id"),
        Some(id(&token).as_str())
    );
    assert_eq!(
        answer.header("x-tokenward-workspace-id"),
        Some(admin.workspace.as_str())
    );
    assert_eq!(
        answer.header("x-tokenward-user-id"),
        Some(admin.id.as_str())
    );
    assert_eq!(
        answer.header("x-tokenward-scopes"),
        Some("campaigns:read contacts:read")
    );
    assert_eq!(answer.header("x-tokenward-rule"), Some("contacts-read"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));

    // The use counts as a use of the token, like a verification.
    let shown = server
        .get(&format!("/api/v1/tokens/{}", id(&token)))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert!(shown["last_used_at"].is_string(), "{shown}");

    // The most specific rule decides, whatever the list order.
    let me = auth_request(&server, &admin.workspace, "GET", "/contacts/me")
        .bearer(&secret(&token))
        .send();
    allowed(&me);
    assert_eq!(me.header("x-tokenward-rule"), Some("me"));

    // The scheme is matched in any case.
    let lower = auth_request(&server, &admin.workspace, "GET", "/contacts")
        .header("Authorization", &format!("bearer {}", secret(&token)))
        .send();
    allowed(&lower);
}

#[test]
fn a_missing_or_bad_token_is_challenged() {
    let server = Server::start();
    let admin = workspace(&server);
    let none = auth_request(&server, &admin.workspace, "GET", "/contacts/1").send();
    denied(&none, 401, "invalid_token");
    assert_eq!(
        none.header("www-authenticate"),
        Some(r#"Bearer realm="tokenward""#)
    );

    let garbage = auth_request(&server, &admin.workspace, "GET", "/contacts/1")
        .bearer("tw_nonsense")
        .send();
    denied(&garbage, 401, "invalid_token");
    assert_eq!(
        garbage.header("www-authenticate"),
        Some(r#"Bearer realm="tokenward", error="invalid_token""#)
    );
    let basic = auth_request(&server, &admin.workspace, "GET", "/contacts/1")
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .send();
    denied(&basic, 401, "invalid_token");

    // A session is not an API token.
    let session = auth_request(&server, &admin.workspace, "GET", "/contacts/1")
        .bearer(&admin.session)
        .send();
    denied(&session, 401, "invalid_token");

    // Never from a cookie or the query.
    let token = token_with(&server, &admin, json!(["contacts"]));
    let in_query = auth_request(
        &server,
        &admin.workspace,
        "GET",
        &format!("/contacts/1?access_token={}", secret(&token)),
    )
    .send();
    denied(&in_query, 401, "invalid_token");
    let in_cookie = auth_request(&server, &admin.workspace, "GET", "/contacts/1")
        .header("Cookie", &format!("tokenward_session={}", admin.session))
        .send();
    denied(&in_cookie, 401, "invalid_token");
}

#[test]
fn a_token_of_another_workspace_is_an_unknown_one() {
    let server = Server::start();
    let admin = workspace(&server);
    let bob = sign_up(&server, "bob@example.com");
    add_catalog_scope(&server, &bob, &bob.workspace, "contacts");
    let bobs = create_token(
        &server,
        &bob.session,
        json!({"name": "crm", "scopes": ["contacts"]}),
    );
    let answer = auth_request(&server, &admin.workspace, "GET", "/contacts/1")
        .bearer(&secret(&bobs))
        .send();
    denied(&answer, 401, "invalid_token");
    assert_eq!(answer.json()["message"], "the API token is not known");
}

#[test]
fn a_missing_scope_is_named_in_the_challenge() {
    let server = Server::start();
    let admin = workspace(&server);
    let reader = token_with(&server, &admin, json!(["contacts:read"]));
    let answer = auth_request(&server, &admin.workspace, "DELETE", "/contacts/1")
        .bearer(&secret(&reader))
        .send();
    denied(&answer, 403, "insufficient_scope");
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Bearer realm="tokenward", error="insufficient_scope", scope="contacts""#)
    );
}

#[test]
fn deny_rules_the_default_and_invalid_paths_refuse() {
    let server = Server::start();
    let admin = workspace(&server);
    let token = token_with(&server, &admin, json!(["contacts", "campaigns"]));
    let ws = admin.workspace.as_str();

    let deny = auth_request(&server, ws, "GET", "/admin/users")
        .bearer(&secret(&token))
        .send();
    denied(&deny, 403, "forbidden");
    let nothing = auth_request(&server, ws, "GET", "/elsewhere")
        .bearer(&secret(&token))
        .send();
    denied(&nothing, 403, "no_matching_rule");

    for trick in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/..;/admin",
        "/public%2Fadmin",
        "/public/%252e%252e/admin",
        "/public/a\\b",
        "/public/%zz",
    ] {
        let answer = auth_request(&server, ws, "GET", trick)
            .bearer(&secret(&token))
            .send();
        denied(&answer, 403, "invalid_path");
    }
    // `//admin` is `/admin`: the deny rule still holds.
    let doubled = auth_request(&server, ws, "GET", "//admin/users").send();
    denied(&doubled, 403, "forbidden");
    // An absolute-form target is judged by its path.
    let absolute = auth_request(&server, ws, "GET", "http://api.example.com/public/x").send();
    allowed(&absolute);
    // nginx may send X-Original-URL instead.
    let url = server
        .get(&format!("/api/v1/authz/{ws}/auth-request"))
        .header("X-Original-Method", "GET")
        .header("X-Original-URL", "https://api.example.com/admin/x")
        .send();
    denied(&url, 403, "forbidden");

    // A workspace that does not exist denies everything.
    let nowhere = auth_request(&server, NOBODY_S_WORKSPACE, "GET", "/public/x").send();
    denied(&nowhere, 403, "no_matching_rule");
}

#[test]
fn public_rules_pass_anonymously_and_ignore_the_token() {
    let server = Server::start();
    let admin = workspace(&server);
    for credential in [None, Some("tw_garbage")] {
        let mut request = auth_request(&server, &admin.workspace, "GET", "/public/logo.png");
        if let Some(credential) = credential {
            request = request.bearer(credential);
        }
        let answer = request.send();
        allowed(&answer);
        assert_eq!(answer.header("x-tokenward-auth"), Some("anonymous"));
        for name in [
            "x-tokenward-token-id",
            "x-tokenward-workspace-id",
            "x-tokenward-user-id",
            "x-tokenward-scopes",
        ] {
            assert_eq!(answer.header(name), Some(""), "{name}");
        }
        assert_eq!(answer.header("x-tokenward-rule"), Some("public"));
    }
}

#[test]
fn head_is_get_and_method_overrides_must_pass_too() {
    let server = Server::start();
    let admin = workspace(&server);
    let reader = token_with(&server, &admin, json!(["contacts:read"]));
    let ws = admin.workspace.as_str();
    allowed(
        &auth_request(&server, ws, "HEAD", "/contacts/1")
            .bearer(&secret(&reader))
            .send(),
    );
    allowed(&auth_request(&server, ws, "HEAD", "/public/x").send());
    for (name, value) in [
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-HTTP-Method", "PUT"),
        ("X-Method-Override", "patch"),
    ] {
        let answer = auth_request(&server, ws, "GET", "/contacts/1")
            .bearer(&secret(&reader))
            .header(name, value)
            .send();
        denied(&answer, 403, "insufficient_scope");
    }
    let query = auth_request(&server, ws, "GET", "/contacts/1?_method=DELETE")
        .bearer(&secret(&reader))
        .send();
    denied(&query, 403, "insufficient_scope");
    // The override of a public GET is judged on its own.
    let public_post = auth_request(&server, ws, "GET", "/public/x")
        .header("X-HTTP-Method-Override", "POST")
        .send();
    denied(&public_post, 403, "no_matching_rule");
    // The same method again changes nothing.
    let same = auth_request(&server, ws, "GET", "/contacts/1")
        .bearer(&secret(&reader))
        .header("X-HTTP-Method-Override", "GET")
        .send();
    allowed(&same);
}

#[test]
fn cors_preflights_pass_anonymously_unless_turned_off() {
    let server = Server::start();
    let admin = workspace(&server);
    let ws = admin.workspace.as_str();
    let preflight = || {
        auth_request(&server, ws, "OPTIONS", "/contacts/1")
            .header("Origin", "https://app.example.com")
            .header("Access-Control-Request-Method", "DELETE")
    };
    let answer = preflight().send();
    allowed(&answer);
    assert_eq!(answer.header("x-tokenward-auth"), Some("anonymous"));
    // Not a true preflight: with Authorization, or without Origin.
    denied(&preflight().bearer("tw_x").send(), 401, "invalid_token");
    denied(
        &auth_request(&server, ws, "OPTIONS", "/contacts/1")
            .header("Access-Control-Request-Method", "DELETE")
            .send(),
        401,
        "invalid_token",
    );
    let mut rules = sample_rules();
    rules["cors_preflight"] = json!(false);
    put_rules(&server, &admin, rules).data(200);
    denied(&preflight().send(), 401, "invalid_token");
}

#[test]
fn default_authenticated_lets_any_valid_token_through() {
    let server = Server::start();
    let admin = workspace(&server);
    let mut rules = sample_rules();
    rules["default"] = json!("authenticated");
    put_rules(&server, &admin, rules).data(200);
    let token = token_with(&server, &admin, json!(["campaigns:read"]));
    let answer = auth_request(&server, &admin.workspace, "POST", "/anything/else")
        .bearer(&secret(&token))
        .send();
    allowed(&answer);
    assert_eq!(answer.header("x-tokenward-rule"), Some(""));
    denied(
        &auth_request(&server, &admin.workspace, "POST", "/anything").send(),
        401,
        "invalid_token",
    );
}

#[test]
fn host_rules_come_before_host_less_ones() {
    let server = Server::start();
    let admin = workspace(&server);
    let mut rules = sample_rules();
    rules["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "internal", "host": "internal.example.com", "methods": ["*"], "path": "/**", "deny": true}));
    put_rules(&server, &admin, rules).data(200);
    let token = token_with(&server, &admin, json!(["contacts"]));
    let at = |host: &str| {
        auth_request(&server, &admin.workspace, "GET", "/contacts/1")
            .bearer(&secret(&token))
            .header("X-Forwarded-Host", host)
            .send()
    };
    allowed(&at("api.example.com"));
    denied(&at("Internal.Example.com:8443"), 403, "forbidden");
}

#[test]
fn a_rules_write_is_seen_by_the_next_request() {
    let server = Server::start();
    let admin = workspace(&server);
    let token = token_with(&server, &admin, json!(["contacts"]));
    let ask = || {
        auth_request(&server, &admin.workspace, "GET", "/contacts/1")
            .bearer(&secret(&token))
            .send()
    };
    allowed(&ask());
    put_rules(
        &server,
        &admin,
        json!({"rules": [{"id": "closed", "path": "/contacts/**", "deny": true}]}),
    )
    .data(200);
    denied(&ask(), 403, "forbidden");
}

/// Each worker thread answers from its own copy of the rules: after a
/// write is acknowledged, no thread may answer from the old one.
#[test]
fn a_rules_write_reaches_every_worker_before_it_is_acknowledged() {
    let server = Server::start();
    let admin = workspace(&server);
    let token = token_with(&server, &admin, json!(["contacts"]));
    let open = json!({"rules": [{"id": "open", "path": "/contacts/**", "scopes": ["contacts"]}]});
    let closed = json!({"rules": [{"id": "closed", "path": "/contacts/**", "deny": true}]});
    // From several clients at once, so that every worker answers some.
    let ask_everywhere = |expect_allowed: bool| {
        std::thread::scope(|scope| {
            for client in 0..8 {
                let (server, admin, token) = (&server, &admin, &token);
                scope.spawn(move || {
                    for n in 0..10 {
                        let response = auth_request(
                            server,
                            &admin.workspace,
                            "GET",
                            &format!("/contacts/{n}"),
                        )
                        .bearer(&secret(token))
                        .send();
                        if expect_allowed {
                            allowed(&response);
                        } else {
                            let body = denied(&response, 403, "forbidden");
                            assert!(
                                body["message"].as_str().unwrap().contains("closed"),
                                "client {client}: {body}"
                            );
                        }
                    }
                });
            }
        });
    };
    put_rules(&server, &admin, open.clone()).data(200);
    ask_everywhere(true);
    for round in 0..4 {
        let deny = round % 2 == 0;
        put_rules(
            &server,
            &admin,
            if deny { closed.clone() } else { open.clone() },
        )
        .data(200);
        ask_everywhere(!deny);
    }
}

#[test]
fn a_revoked_token_is_refused_on_the_very_next_request() {
    let server = Server::start();
    let admin = workspace(&server);
    let token = token_with(&server, &admin, json!(["contacts"]));
    let ask = || {
        auth_request(&server, &admin.workspace, "GET", "/contacts/1")
            .bearer(&secret(&token))
            .send()
    };
    allowed(&ask());
    allowed(&ask());
    server
        .delete(&format!("/api/v1/tokens/{}", id(&token)))
        .bearer(&admin.session)
        .send();
    let answer = ask();
    denied(&answer, 401, "invalid_token");
    assert_eq!(answer.json()["message"], "the API token has been revoked");
}

#[test]
fn effective_scopes_follow_the_owner_s_grants_now() {
    let server = Server::start();
    let admin = workspace(&server);
    let bob = sign_up(&server, "bob@example.com");
    server
        .post(&format!("/api/v1/workspaces/{}/members", admin.workspace))
        .bearer(&admin.session)
        .json(json!({"email": bob.email, "role": "member", "scopes": ["contacts"]}))
        .send()
        .data(201);
    let token = server
        .post("/api/v1/tokens")
        .bearer(&bob.session)
        .workspace(&admin.workspace)
        .json(json!({"name": "bob's", "scopes": ["contacts"]}))
        .send()
        .data(201);
    let ask = || {
        auth_request(&server, &admin.workspace, "DELETE", "/contacts/1")
            .bearer(&secret(&token))
            .send()
    };
    allowed(&ask());
    server
        .patch(&format!(
            "/api/v1/workspaces/{}/members/{}",
            admin.workspace, bob.id
        ))
        .bearer(&admin.session)
        .json(json!({"scopes": ["contacts:read"]}))
        .send()
        .data(200);
    let answer = ask();
    denied(&answer, 403, "insufficient_scope");
    let read = auth_request(&server, &admin.workspace, "GET", "/contacts/1")
        .bearer(&secret(&token))
        .send();
    allowed(&read);
    assert_eq!(read.header("x-tokenward-scopes"), Some("contacts:read"));
}

#[test]
fn allowed_answers_may_be_cached_but_never_past_the_token() {
    let server = Server::start();
    let admin = workspace(&server);
    let mut rules = sample_rules();
    rules["cache_seconds"] = json!(600);
    put_rules(&server, &admin, rules).data(200);
    let long = token_with(&server, &admin, json!(["contacts"]));
    let short = create_token(
        &server,
        &admin.session,
        json!({"name": "short", "scopes": ["contacts"], "expires_in": 60}),
    );
    let ask = |token: &Value| {
        auth_request(&server, &admin.workspace, "GET", "/contacts/1")
            .bearer(&secret(token))
            .send()
    };
    assert_eq!(ask(&long).header("cache-control"), Some("max-age=600"));
    let age: u64 = ask(&short)
        .header("cache-control")
        .and_then(|v| v.strip_prefix("max-age="))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((55..=60).contains(&age), "max-age={age}");
    let public = auth_request(&server, &admin.workspace, "GET", "/public/x").send();
    assert_eq!(public.header("cache-control"), Some("max-age=600"));
    // Denials are never cached.
    let denial = auth_request(&server, &admin.workspace, "GET", "/admin").send();
    assert_eq!(denial.header("cache-control"), Some("no-store"));
}

#[test]
fn a_proxy_that_leaves_out_the_original_request_fails_closed() {
    let server = Server::start();
    let admin = workspace(&server);
    let ws = admin.workspace.as_str();
    let no_method = server
        .get(&format!("/api/v1/authz/{ws}/auth-request"))
        .header("X-Original-URI", "/public/x")
        .send();
    let body = denied(&no_method, 500, "proxy_misconfigured");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("X-Original-Method"),
        "{body}"
    );
    let no_uri = server
        .get(&format!("/api/v1/authz/{ws}/auth-request"))
        .header("X-Original-Method", "GET")
        .send();
    denied(&no_uri, 500, "proxy_misconfigured");
    let no_forwarded = server
        .get(&format!("/api/v1/authz/{ws}/forward-auth"))
        .header("X-Forwarded-Method", "GET")
        .send();
    denied(&no_forwarded, 500, "proxy_misconfigured");
    let logged = eventually(std::time::Duration::from_secs(5), || {
        server.log().contains("X-Forwarded-Uri")
    });
    assert!(logged, "the refusal is logged:\n{}", server.log());
}

#[test]
fn forward_auth_and_ext_authz_read_the_request_their_way() {
    let server = Server::start();
    let admin = workspace(&server);
    let token = token_with(&server, &admin, json!(["contacts:read"]));
    let ws = admin.workspace.as_str();
    // Caddy and Traefik: X-Forwarded-*; any method of their own.
    for own in ["GET", "POST", "HEAD"] {
        let answer = server
            .request(own, &format!("/api/v1/authz/{ws}/forward-auth"))
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Uri", "/contacts/1")
            .header("X-Forwarded-Host", "api.example.com")
            .bearer(&secret(&token))
            .send();
        assert_eq!(answer.status, 200, "{own}");
        assert_eq!(answer.header("x-tokenward-rule"), Some("contacts-read"));
    }
    let write = server
        .post(&format!("/api/v1/authz/{ws}/forward-auth"))
        .header("X-Forwarded-Method", "PUT")
        .header("X-Forwarded-Uri", "/contacts/1")
        .bearer(&secret(&token))
        .send();
    denied(&write, 403, "insufficient_scope");

    // Envoy: the request's own method, path and query after the prefix.
    let ext = |method: &str, suffix: &str| {
        server
            .request(method, &format!("/api/v1/authz/{ws}/ext-authz{suffix}"))
            .bearer(&secret(&token))
            .send()
    };
    allowed(&ext("GET", "/contacts/1?x=1"));
    denied(
        &ext("GET", "/contacts/1?_method=DELETE"),
        403,
        "insufficient_scope",
    );
    denied(&ext("DELETE", "/contacts/1"), 403, "insufficient_scope");
    denied(&ext("GET", "/public/%2e%2e/admin"), 403, "invalid_path");
    denied(&ext("GET", "//admin/x"), 403, "forbidden");
    denied(&ext("GET", ""), 403, "no_matching_rule");
}

#[test]
fn failures_are_limited_per_address() {
    let server = Server::start_with(&["--verify-fail-limit", "3"]);
    let admin = workspace(&server);
    let ws = admin.workspace.as_str();
    for _ in 0..3 {
        denied(
            &auth_request(&server, ws, "GET", "/contacts/1")
                .bearer("tw_bad")
                .send(),
            401,
            "invalid_token",
        );
    }
    // nginx turns anything but 401 and 403 into a 500: the limit is a 403.
    let limited = auth_request(&server, ws, "GET", "/contacts/1")
        .bearer("tw_bad")
        .send();
    denied(&limited, 403, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    let elsewhere = server
        .get(&format!("/api/v1/authz/{ws}/forward-auth"))
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Uri", "/contacts/1")
        .bearer("tw_bad")
        .send();
    denied(&elsewhere, 429, "rate_limited");
    // Public routes do not look at tokens, so they still pass.
    allowed(
        &auth_request(&server, ws, "GET", "/public/x")
            .bearer("tw_bad")
            .send(),
    );
}

#[test]
fn explain_shows_the_winning_rule_and_the_answer() {
    let server = Server::start();
    let admin = workspace(&server);
    let token = token_with(&server, &admin, json!(["contacts:read"]));
    let explain = |body: Value| {
        server
            .post(&format!("/api/v1/authz/{}/explain", admin.workspace))
            .bearer(&admin.session)
            .workspace(&admin.workspace)
            .json(body)
            .send()
    };
    let got =
        explain(json!({"method": "GET", "uri": "/contacts/%34%32?x=1", "token": secret(&token)}))
            .data(200);
    assert_eq!(got["canonical_path"], "/contacts/42");
    assert_eq!(got["rule"], "contacts-read");
    assert_eq!(got["required_scopes"], json!(["contacts:read"]));
    assert_eq!(got["decision"], "allow");
    assert_eq!(got["code"], "token");
    assert_eq!(got["status"], 200);
    assert_eq!(got["headers"]["x-tokenward-token-id"], id(&token));

    let got = explain(json!({"method": "DELETE", "uri": "/contacts/42", "token": secret(&token)}))
        .data(200);
    assert_eq!(got["rule"], "contacts-write");
    assert_eq!(got["decision"], "deny");
    assert_eq!(got["code"], "insufficient_scope");
    assert_eq!(got["status"], 403);
    assert!(
        got["headers"]["www-authenticate"]
            .as_str()
            .unwrap()
            .contains("scope=\"contacts\"")
    );

    let got = explain(json!({"method": "GET", "uri": "/public/../admin"})).data(200);
    assert_eq!(got["canonical_path"], Value::Null);
    assert_eq!(got["code"], "invalid_path");
    let got = explain(json!({"method": "GET", "uri": "/admin/x"})).data(200);
    assert_eq!(
        (got["rule"].as_str(), got["code"].as_str()),
        (Some("admin"), Some("forbidden"))
    );
    let got = explain(json!({"method": "GET", "uri": "/contacts/1"})).data(200);
    assert_eq!(got["code"], "invalid_token");
    assert_eq!(got["status"], 401);

    // A dry run: it is not a use of the token.
    let shown = server
        .get(&format!("/api/v1/tokens/{}", id(&token)))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert!(shown["last_used_at"].is_null(), "{shown}");

    explain(json!({"method": "GE T", "uri": "/"})).error(422, "validation_failed");
    explain(json!({"uri": "/"})).error(422, "validation_failed");
    // It needs routes:read, in the workspace of the URL.
    let plain = token_with(&server, &admin, json!(["contacts"]));
    server
        .post(&format!("/api/v1/authz/{}/explain", admin.workspace))
        .bearer(&secret(&plain))
        .json(json!({"method": "GET", "uri": "/"}))
        .send()
        .error(403, "insufficient_scope");
    let reader = token_with(&server, &admin, json!(["routes:read"]));
    server
        .post(&format!("/api/v1/authz/{NOBODY_S_WORKSPACE}/explain"))
        .bearer(&secret(&reader))
        .json(json!({"method": "GET", "uri": "/"}))
        .send()
        .error(404, "not_found");
}

/// Holds SQLite's write lock from outside the server until dropped.
struct WriteLock(rusqlite::Connection);

impl WriteLock {
    fn take(server: &Server) -> WriteLock {
        let db = rusqlite::Connection::open(server.db_path()).unwrap();
        db.execute_batch("BEGIN IMMEDIATE").unwrap();
        WriteLock(db)
    }

    fn release(self) {
        self.0.execute_batch("ROLLBACK").unwrap();
    }
}

#[test]
fn a_rules_write_whose_client_went_away_still_reaches_the_next_request() {
    if common::skip_on_postgres(
        "a_rules_write_whose_client_went_away_still_reaches_the_next_request",
    ) {
        return;
    }
    let server = Server::start();
    let admin = workspace(&server);
    let token = token_with(&server, &admin, json!(["contacts"]));
    let ask = || {
        auth_request(&server, &admin.workspace, "GET", "/contacts/1")
            .bearer(&secret(&token))
            .send()
    };
    // The rules are in memory now.
    allowed(&ask());

    let lock = WriteLock::take(&server);
    let body =
        json!({"rules": [{"id": "closed", "path": "/contacts/**", "deny": true}]}).to_string();
    let mut client = TcpStream::connect(server.addr).unwrap();
    write!(
        client,
        "PUT /api/v1/routes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        admin.session,
        body.len()
    )
    .unwrap();
    // The write now waits for the lock; its client goes away.
    std::thread::sleep(Duration::from_millis(300));
    drop(client);
    std::thread::sleep(Duration::from_millis(300));
    lock.release();

    let db = rusqlite::Connection::open(server.db_path()).unwrap();
    let stored = eventually(Duration::from_secs(10), || {
        db.query_row(
            "SELECT COUNT(*) FROM route_documents WHERE version = 2",
            [],
            |row| row.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    });
    assert!(stored, "the write never committed");
    denied(&ask(), 403, "forbidden");
}

/// The usual request is answered without warp's routing (`src/api/hot.rs`);
/// a rarer shape of the same request, with a trailing slash, goes through
/// warp's. Both must answer alike.
#[test]
fn the_direct_and_the_routed_answer_agree() {
    let server = Server::start();
    let admin = workspace(&server);
    let reader = secret(&token_with(&server, &admin, json!(["contacts:read"])));
    let cases: [(&str, &str, Option<&str>); 6] = [
        ("GET", "/contacts/1", Some(&reader)),
        ("DELETE", "/contacts/1", Some(&reader)),
        ("GET", "/admin/users", Some(&reader)),
        ("GET", "/contacts/1", None),
        ("GET", "/contacts/1", Some("tw_not_a_token")),
        ("GET", "/public/a", None),
    ];
    let direct_path = format!("/api/v1/authz/{}/auth-request", admin.workspace);
    let routed_path = format!("{direct_path}/");
    for (method, uri, token) in cases {
        let ask = |path: &str| {
            let request = server
                .get(path)
                .header("X-Original-Method", method)
                .header("X-Original-URI", uri);
            match token {
                Some(token) => request.bearer(token),
                None => request,
            }
            .send()
        };
        let (direct, routed) = (ask(&direct_path), ask(&routed_path));
        assert_eq!(direct.status, routed.status, "{method} {uri}");
        for name in IDENTITY
            .iter()
            .chain(&ANSWER_HEADERS)
            .chain(&["x-tokenward-error"])
        {
            assert_eq!(
                direct.header(name),
                routed.header(name),
                "{name}: {method} {uri}"
            );
        }
        assert_eq!(direct.text(), routed.text(), "{method} {uri}");
    }
    // Both ways leave a log line (written out every 50 ms).
    let (direct_line, routed_line) = (
        format!("path={direct_path} "),
        format!("path={routed_path} "),
    );
    assert!(eventually(Duration::from_secs(5), || {
        let log = server.log();
        log.contains(&direct_line) && log.contains(&routed_line)
    }));
}
