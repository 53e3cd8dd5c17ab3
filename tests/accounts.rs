//! Accounts, sessions, cookies, rate limiting, instance settings, and the
//! error handling every endpoint shares.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn first_account_is_instance_admin_with_a_personal_workspace() {
    let server = Server::start();
    let res = server
        .post("/api/v1/accounts")
        .json(json!({"email": "  Ada@Example.COM ", "password": PASSWORD}))
        .send();
    let data = res.data(201);
    assert_eq!(data["account"]["email"], "ada@example.com");
    assert_eq!(data["account"]["instance_admin"], true);
    let token = data["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    // Sessions last seven days.
    let created = data["account"]["created_at"].as_str().unwrap();
    let expires = data["expires_at"].as_str().unwrap();
    assert!(expires.ends_with('Z') && created.ends_with('Z'));
    assert_ne!(created[..10], expires[..10]);

    let me = server.get("/api/v1/me").bearer(token).send().data(200);
    assert_eq!(me["account"]["id"], data["account"]["id"]);
    let workspaces = me["workspaces"].as_array().unwrap();
    assert_eq!(workspaces.len(), 1);
    assert_eq!(workspaces[0]["role"], "admin");
}

#[test]
fn the_instance_tells_a_sign_in_page_what_it_needs() {
    let server = Server::start();
    let fresh = server.get("/api/v1/instance").send().data(200);
    assert_eq!(fresh["needs_first_account"], true);
    assert_eq!(
        fresh["setup_code_required"], false,
        "loopback needs no code"
    );
    assert_eq!(fresh["allow_signup"], false);
    admin_with_open_signup(&server);
    let later = server.get("/api/v1/instance").send().data(200);
    assert_eq!(later["needs_first_account"], false);
    assert_eq!(later["allow_signup"], true);

    let exposed = Server::start_on("0.0.0.0:0", &[]);
    let info = exposed.get("/api/v1/instance").send().data(200);
    assert_eq!(info["setup_code_required"], true);
}

#[test]
fn sign_up_is_closed_until_the_admin_opens_it() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let closed = server
        .post("/api/v1/accounts")
        .json(json!({"email": "bob@example.com", "password": PASSWORD}))
        .send();
    closed.error(403, "forbidden");

    // The instance admin can still create accounts.
    let made = server
        .post("/api/v1/accounts")
        .bearer(&admin.session)
        .json(json!({"email": "carol@example.com", "password": PASSWORD}))
        .send()
        .data(201);
    assert_eq!(made["account"]["instance_admin"], false);

    // A non-admin session cannot.
    let carol = made["token"].as_str().unwrap().to_owned();
    server
        .post("/api/v1/accounts")
        .bearer(&carol)
        .json(json!({"email": "dave@example.com", "password": PASSWORD}))
        .send()
        .error(403, "forbidden");

    server
        .patch("/api/v1/settings")
        .bearer(&admin.session)
        .json(json!({"allow_signup": true}))
        .send()
        .data(200);
    let bob = sign_up(&server, "bob@example.com");
    let me = server
        .get("/api/v1/me")
        .bearer(&bob.session)
        .send()
        .data(200);
    assert_eq!(me["account"]["instance_admin"], false);
}

#[test]
fn sign_up_validates_every_field_and_rejects_duplicates() {
    let server = Server::start();
    let res = server
        .post("/api/v1/accounts")
        .json(json!({"email": "not-an-email", "password": "short", "nickname": "x"}))
        .send();
    let err = res.error(422, "validation_failed");
    let details = err["details"].as_object().unwrap();
    assert!(details.contains_key("email"), "{err}");
    assert!(details.contains_key("password"), "{err}");
    assert_eq!(details["nickname"], "is not a known field");

    let missing = server.post("/api/v1/accounts").json(json!({})).send();
    let err = missing.error(422, "validation_failed");
    assert_eq!(err["details"]["email"], "is required");
    assert_eq!(err["details"]["password"], "is required");

    let wrong_type = server
        .post("/api/v1/accounts")
        .json(json!({"email": 42, "password": ["x"]}))
        .send();
    let err = wrong_type.error(422, "validation_failed");
    assert_eq!(err["details"]["email"], "must be a string");

    let admin = admin_with_open_signup(&server);
    let dup = server
        .post("/api/v1/accounts")
        .json(json!({"email": admin.email.to_uppercase(), "password": PASSWORD}))
        .send();
    dup.error(409, "email_taken");
}

#[test]
fn sign_in_gives_the_same_answer_for_unknown_email_and_wrong_password() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let session = sign_in(&server, "ADMIN@example.com", PASSWORD).data(201);
    assert!(session["token"].as_str().is_some());
    assert_eq!(session["account"]["id"], admin.id.as_str());

    let wrong = sign_in(&server, "admin@example.com", "wrong password!");
    let unknown = sign_in(&server, "nobody@example.com", PASSWORD);
    let a = wrong.error(401, "invalid_credentials");
    let b = unknown.error(401, "invalid_credentials");
    assert_eq!(a, b, "the two failures must be indistinguishable");
}

#[test]
fn ten_failures_lock_the_account_even_for_the_right_password() {
    let server = Server::start();
    sign_up(&server, "admin@example.com");
    for _ in 0..10 {
        sign_in(&server, "admin@example.com", "wrong password!").error(401, "invalid_credentials");
    }
    let locked = sign_in(&server, "admin@example.com", PASSWORD);
    locked.error(429, "rate_limited");
    let retry: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "Retry-After {retry}");
}

#[test]
fn failures_are_also_counted_per_address() {
    let server = Server::start();
    sign_up(&server, "admin@example.com");
    for i in 0..10 {
        sign_in(&server, &format!("guess{i}@example.com"), "wrong password!")
            .error(401, "invalid_credentials");
    }
    // Same address, an account that has not failed yet: still locked.
    sign_in(&server, "admin@example.com", PASSWORD).error(429, "rate_limited");
}

#[test]
fn signing_out_kills_that_session_only() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let other = sign_in(&server, "admin@example.com", PASSWORD).data(201)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = server
        .delete("/api/v1/sessions/current")
        .bearer(&admin.session)
        .send();
    assert_eq!(res.status, 204);
    assert!(res.body.is_empty());
    let after = server.get("/api/v1/me").bearer(&admin.session).send();
    after.error(401, "invalid_token");
    assert_eq!(
        after.header("www-authenticate"),
        Some(r#"Bearer realm="tokenward", error="invalid_token""#)
    );
    server.get("/api/v1/me").bearer(&other).send().data(200);
}

#[test]
fn changing_the_password_revokes_other_sessions() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let other = sign_in(&server, "admin@example.com", PASSWORD).data(201)["token"]
        .as_str()
        .unwrap()
        .to_owned();

    server
        .patch("/api/v1/me")
        .bearer(&admin.session)
        .json(
            json!({"current_password": "not the password", "new_password": "a new long password"}),
        )
        .send()
        .error(403, "forbidden");
    server
        .patch("/api/v1/me")
        .bearer(&admin.session)
        .json(json!({"current_password": PASSWORD, "new_password": "short"}))
        .send()
        .error(422, "validation_failed");

    server
        .patch("/api/v1/me")
        .bearer(&admin.session)
        .json(json!({"current_password": PASSWORD, "new_password": "a new long password"}))
        .send()
        .data(200);
    server
        .get("/api/v1/me")
        .bearer(&admin.session)
        .send()
        .data(200);
    server
        .get("/api/v1/me")
        .bearer(&other)
        .send()
        .error(401, "invalid_token");
    sign_in(&server, "admin@example.com", PASSWORD).error(401, "invalid_credentials");
    sign_in(&server, "admin@example.com", "a new long password").data(201);
}

#[test]
fn cookie_sessions_need_the_csrf_header_to_change_things() {
    let server = Server::start();
    sign_up(&server, "admin@example.com");
    let res = server
        .post("/api/v1/sessions")
        .json(json!({"email": "admin@example.com", "password": PASSWORD, "cookie": true}))
        .send();
    let data = res.data(201);
    assert!(
        data["token"].is_null(),
        "the session went into the cookie: {data}"
    );
    let cookie = res.header("set-cookie").unwrap().to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP here: {cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();

    server
        .get("/api/v1/me")
        .header("Cookie", &pair)
        .send()
        .data(200);
    let forged = server
        .post("/api/v1/tokens")
        .header("Cookie", &pair)
        .json(json!({"name": "x", "scopes": ["tokens"]}))
        .send();
    forged.error(403, "forbidden");
    server
        .post("/api/v1/tokens")
        .header("Cookie", &pair)
        .header("X-Requested-With", "tokenward")
        .json(json!({"name": "x", "scopes": ["tokens"]}))
        .send()
        .data(201);

    // Behind HTTPS the cookie is Secure.
    let https = server
        .post("/api/v1/sessions")
        .header("X-Forwarded-Proto", "https")
        .json(json!({"email": "admin@example.com", "password": PASSWORD, "cookie": true}))
        .send();
    assert!(https.header("set-cookie").unwrap().contains("Secure"));

    let out = server
        .delete("/api/v1/sessions/current")
        .header("Cookie", &pair)
        .header("X-Requested-With", "tokenward")
        .send();
    assert_eq!(out.status, 204);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    server
        .get("/api/v1/me")
        .header("Cookie", &pair)
        .send()
        .error(401, "invalid_token");
}

#[test]
fn a_server_reachable_from_outside_needs_the_setup_code_for_its_first_account() {
    let server = Server::start_on("0.0.0.0:0", &[]);
    // Log lines are written by a background thread: wait for this one.
    eventually(Duration::from_secs(10), || {
        server.log().contains("setup code ")
    });
    let log = server.log();
    let code = log
        .split("setup code ")
        .nth(1)
        .map(|rest| rest.chars().take(19).collect::<String>())
        .unwrap_or_else(|| panic!("no setup code in the log:\n{log}"));
    let without = server
        .post("/api/v1/accounts")
        .json(json!({"email": "admin@example.com", "password": PASSWORD}))
        .send();
    without.error(403, "forbidden");
    let wrong = server
        .post("/api/v1/accounts")
        .json(json!({"email": "admin@example.com", "password": PASSWORD, "setup_code": "AAAA-BBBB-CCCC-DDDD"}))
        .send();
    wrong.error(403, "forbidden");
    let ok = server
        .post("/api/v1/accounts")
        .json(json!({"email": "admin@example.com", "password": PASSWORD, "setup_code": code}))
        .send()
        .data(201);
    assert_eq!(ok["account"]["instance_admin"], true);
}

#[test]
fn api_tokens_cannot_manage_accounts_or_settings() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let token = plain_token(&server, &admin.session);
    let secret = token["token"].as_str().unwrap();
    server
        .get("/api/v1/me")
        .bearer(secret)
        .send()
        .error(403, "forbidden");
    server
        .get("/api/v1/settings")
        .bearer(secret)
        .send()
        .error(403, "forbidden");
    server
        .get("/api/v1/workspaces")
        .bearer(secret)
        .send()
        .error(403, "forbidden");
}

#[test]
fn missing_and_bad_credentials_get_bearer_challenges() {
    let server = Server::start();
    let none = server.get("/api/v1/me").send();
    none.error(401, "invalid_token");
    assert_eq!(
        none.header("www-authenticate"),
        Some(r#"Bearer realm="tokenward""#)
    );

    for credential in [
        "Basic abc",
        "Bearer",
        "Bearer nonsense.jwt.value",
        "Bearer tw_short",
    ] {
        let res = server
            .get("/api/v1/me")
            .header("Authorization", credential)
            .send();
        res.error(401, "invalid_token");
        assert_eq!(
            res.header("www-authenticate"),
            Some(r#"Bearer realm="tokenward", error="invalid_token""#),
            "{credential}"
        );
    }
}

#[test]
fn settings_are_read_by_sessions_and_changed_by_the_instance_admin() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let bob = sign_up(&server, "bob@example.com");
    let settings = server
        .get("/api/v1/settings")
        .bearer(&bob.session)
        .send()
        .data(200);
    assert_eq!(
        settings,
        json!({
            "default_ttl_seconds": 14400, "max_ttl_seconds": 2592000, "allow_no_expiry": false,
            "reset_grace_seconds": 43200, "purge_after_seconds": 86400, "allow_signup": true,
            "token_prefix": "tw_", "audit_retention_days": 365
        })
    );
    server
        .patch("/api/v1/settings")
        .bearer(&bob.session)
        .json(json!({"allow_no_expiry": true}))
        .send()
        .error(403, "forbidden");

    let changed = server
        .patch("/api/v1/settings")
        .bearer(&admin.session)
        .json(json!({"allow_no_expiry": true, "token_prefix": "tm_pro_"}))
        .send()
        .data(200);
    assert_eq!(changed["allow_no_expiry"], true);
    assert_eq!(changed["token_prefix"], "tm_pro_");
}

#[test]
fn a_settings_patch_that_fails_changes_nothing() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let lower_max = server
        .patch("/api/v1/settings")
        .bearer(&admin.session)
        .json(json!({"max_ttl_seconds": 3600, "allow_signup": true}))
        .send();
    let err = lower_max.error(422, "validation_failed");
    assert!(err["details"]["max_ttl_seconds"].is_string(), "{err}");

    for bad in [
        json!({"default_ttl_seconds": 59}),
        json!({"reset_grace_seconds": 604801}),
        json!({"purge_after_seconds": -1}),
        json!({"token_prefix": "TW"}),
        json!({"allow_signup": "yes"}),
        json!({"colour": "blue"}),
    ] {
        server
            .patch("/api/v1/settings")
            .bearer(&admin.session)
            .json(bad.clone())
            .send()
            .error(422, "validation_failed");
    }
    let settings = server
        .get("/api/v1/settings")
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(settings["allow_signup"], false);
    assert_eq!(settings["max_ttl_seconds"], 2592000);

    let both = server
        .patch("/api/v1/settings")
        .bearer(&admin.session)
        .json(json!({"max_ttl_seconds": 3600, "default_ttl_seconds": 600}))
        .send()
        .data(200);
    assert_eq!(both["max_ttl_seconds"], 3600);
}

#[test]
fn unknown_routes_wrong_methods_and_bad_bodies_get_json_errors() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");

    server
        .get("/api/v1/nothing-here")
        .send()
        .error(404, "not_found");
    server
        .delete("/api/v1/nothing/here")
        .send()
        .error(404, "not_found");
    server.post("/api/v2/tokens").send().error(404, "not_found");
    server
        .request("PUT", "/api/v1/me")
        .send()
        .error(405, "method_not_allowed");
    server
        .delete("/api/v1/settings")
        .send()
        .error(405, "method_not_allowed");

    let malformed = server
        .post("/api/v1/workspaces")
        .bearer(&admin.session)
        .raw_body("application/json", b"{\"name\": ".to_vec())
        .send();
    malformed.error(400, "bad_request");
    let not_json = server
        .post("/api/v1/workspaces")
        .bearer(&admin.session)
        .raw_body("text/plain", b"{\"name\": \"x\"}".to_vec())
        .send();
    not_json.error(400, "bad_request");
    let empty = server
        .post("/api/v1/workspaces")
        .bearer(&admin.session)
        .send();
    empty.error(400, "bad_request");
    let array = server
        .post("/api/v1/workspaces")
        .bearer(&admin.session)
        .json(json!(["x"]))
        .send();
    array.error(422, "validation_failed");

    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024));
    let too_large = server
        .post("/api/v1/workspaces")
        .bearer(&admin.session)
        .raw_body("application/json", big.into_bytes())
        .send();
    too_large.error(413, "payload_too_large");

    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    server
        .post("/api/v1/tokens/verify")
        .raw_body("application/json", deep.into_bytes())
        .send()
        .error(400, "bad_request");

    // The server is still healthy after all of that.
    let health = server.get("/healthz").send();
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"status": "ok"}));
}

#[test]
fn every_response_carries_the_security_headers() {
    let server = Server::start();
    // The UI's page may load its own assets; nothing else may load anything.
    for (path, policy) in [
        ("/", "default-src 'self'"),
        ("/healthz", "default-src 'none'"),
        ("/api/v1/me", "default-src 'none'"),
        ("/api/v1/missing", "default-src 'none'"),
        ("/assets/app.js", "default-src 'none'"),
    ] {
        let res = server.get(path).send();
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(res.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(res.header("x-frame-options"), Some("DENY"), "{path}");
        let csp = res.header("content-security-policy").unwrap_or_default();
        assert!(csp.starts_with(policy), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
    let api = server.get("/api/v1/me").send();
    assert_eq!(api.header("cache-control"), Some("no-store"));
    assert_eq!(api.header("content-type"), Some("application/json"));
}

#[test]
fn the_log_has_one_line_per_request_and_no_secrets() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let token = plain_token(&server, &admin.session);
    let secret = token["token"].as_str().unwrap();
    verify(&server, secret, None);
    server
        .get("/api/v1/tokens?secret=shh")
        .bearer(secret)
        .send()
        .data(200);
    // Log lines are written by a background thread: wait for the last one.
    eventually(Duration::from_secs(10), || {
        server.log().contains("method=GET path=/api/v1/tokens ")
    });
    let log = server.log();
    assert!(
        log.contains("method=POST path=/api/v1/tokens/verify status=200 latency_us="),
        "{log}"
    );
    assert_eq!(
        log.matches("path=/api/v1/tokens/verify ").count(),
        1,
        "{log}"
    );
    for secret_text in [secret, admin.session.as_str(), PASSWORD, "shh", "Bearer"] {
        assert!(
            !log.contains(secret_text),
            "{secret_text} leaked into the log:\n{log}"
        );
    }
}
