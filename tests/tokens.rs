//! API tokens: create, list, read, edit, revoke, reset with grace, verify,
//! last use, and the no-escalation rules.

mod common;

use common::*;

fn id(token: &Value) -> String {
    token["id"].as_str().unwrap().to_owned()
}

fn secret(token: &Value) -> String {
    token["token"].as_str().unwrap().to_owned()
}

fn seconds(rfc3339: &Value) -> i64 {
    // Parses "YYYY-MM-DDTHH:MM:SSZ" into Unix seconds, for differences.
    let s = rfc3339.as_str().unwrap();
    assert!(s.ends_with('Z') && s.len() == 20, "{s}");
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)
}

/// An admin, a member with `grants` in the admin's workspace, and the
/// catalog scopes `contacts` and `campaigns`.
fn team(server: &Server, grants: Value) -> (Account, Account) {
    let admin = admin_with_open_signup(server);
    add_catalog_scope(server, &admin, &admin.workspace, "contacts");
    add_catalog_scope(server, &admin, &admin.workspace, "campaigns");
    let member = sign_up(server, "bob@example.com");
    server
        .post(&format!("/api/v1/workspaces/{}/members", admin.workspace))
        .bearer(&admin.session)
        .json(json!({"email": member.email, "role": "member", "scopes": grants}))
        .send()
        .data(201);
    let member = Account {
        workspace: admin.workspace.clone(),
        ..member
    };
    (admin, member)
}

fn in_workspace(server: &Server, account: &Account, body: Value) -> Response {
    server
        .post("/api/v1/tokens")
        .bearer(&account.session)
        .workspace(&account.workspace)
        .json(body)
        .send()
}

#[test]
fn a_new_token_is_shown_once_and_expires_after_four_hours() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let token = create_token(
        &server,
        &admin.session,
        json!({"name": "CRM Integration", "scopes": ["tokens"]}),
    );
    let secret = secret(&token);
    assert!(secret.starts_with("tw_") && secret.len() == 43, "{secret}");
    assert_eq!(
        token["token_hint"],
        format!("tw_…{}", &secret[secret.len() - 4..])
    );
    assert_eq!(token["name"], "CRM Integration");
    assert_eq!(token["scopes"], json!(["tokens"]));
    assert_eq!(token["state"], "active");
    assert_eq!(token["workspace_id"], admin.workspace.as_str());
    assert_eq!(
        token["created_by"],
        json!({"id": admin.id, "email": admin.email})
    );
    assert!(token["number"].as_i64().unwrap() >= 1);
    for absent in ["last_used_at", "last_used_ip", "revoked_at", "replaced_by"] {
        assert!(token[absent].is_null(), "{absent}: {token}");
    }
    assert_eq!(
        seconds(&token["expires_at"]) - seconds(&token["created_at"]),
        4 * 3600
    );

    // Never again: not in a read, not in a list, not as a hash.
    let read = server
        .get(&format!("/api/v1/tokens/{}", id(&token)))
        .bearer(&admin.session)
        .send();
    let listed = server.get("/api/v1/tokens").bearer(&admin.session).send();
    for res in [&read, &listed] {
        let text = res.text();
        assert!(!text.contains(&secret), "{text}");
        assert!(!text.contains("\"token\":"), "{text}");
        assert!(!text.contains("hash"), "{text}");
    }
}

#[test]
fn expiry_is_capped_at_thirty_days_and_never_needs_the_switch() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let month = create_token(
        &server,
        &admin.session,
        json!({"name": "m", "scopes": ["tokens"], "expires_in": 2_592_000}),
    );
    assert_eq!(
        seconds(&month["expires_at"]) - seconds(&month["created_at"]),
        2_592_000
    );

    let too_long = in_workspace(
        &server,
        &admin,
        json!({"name": "x", "scopes": ["tokens"], "expires_in": 2_592_001}),
    );
    too_long.error(422, "expiry_too_long");
    let far = in_workspace(
        &server,
        &admin,
        json!({"name": "x", "scopes": ["tokens"], "expires_at": "2999-01-01T00:00:00Z"}),
    );
    far.error(422, "expiry_too_long");
    let never = in_workspace(
        &server,
        &admin,
        json!({"name": "x", "scopes": ["tokens"], "never_expires": true}),
    );
    never.error(422, "no_expiry_not_allowed");

    server
        .patch("/api/v1/settings")
        .bearer(&admin.session)
        .json(json!({"allow_no_expiry": true}))
        .send()
        .data(200);
    let forever = create_token(
        &server,
        &admin.session,
        json!({"name": "f", "scopes": ["tokens"], "never_expires": true}),
    );
    assert!(forever["expires_at"].is_null());
    assert_eq!(verify(&server, &secret(&forever), None)["code"], "VALID");

    // An explicit date within the limit is kept to the second, in UTC.
    let tomorrow = seconds(&month["created_at"]) + 86_400;
    let at = create_token(
        &server,
        &admin.session,
        json!({"name": "a", "scopes": ["tokens"], "expires_at": rfc3339_plus_two_hours(tomorrow)}),
    );
    assert_eq!(seconds(&at["expires_at"]), tomorrow);
    let err = far.json();
    assert!(err["details"]["expires_at"].is_string(), "{err}");
}

/// Unix seconds as RFC 3339 in the +02:00 offset.
fn rfc3339_plus_two_hours(unix: i64) -> String {
    let local = unix + 7200;
    let (days, rest) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+02:00",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[test]
fn bad_expiry_requests_name_the_field() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let cases = [
        (
            json!({"expires_in": 60, "expires_at": "2030-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (json!({"expires_in": 0}), "expires_in"),
        (json!({"expires_in": -5}), "expires_in"),
        (json!({"expires_in": 1.5}), "expires_in"),
        (json!({"expires_at": "2001-01-01T00:00:00Z"}), "expires_at"),
        (json!({"expires_at": "tomorrow"}), "expires_at"),
        (
            json!({"never_expires": true, "expires_in": 60}),
            "never_expires",
        ),
        (json!({"never_expires": "yes"}), "never_expires"),
    ];
    for (extra, field) in cases {
        let mut body = json!({"name": "x", "scopes": ["tokens"]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let err = in_workspace(&server, &admin, body.clone()).error(422, "validation_failed");
        assert!(err["details"][field].is_string(), "{body} → {err}");
    }
}

#[test]
fn bad_names_and_scopes_are_rejected_by_field() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let cases = [
        (json!({"scopes": ["tokens"]}), "name"),
        (json!({"name": "  ", "scopes": ["tokens"]}), "name"),
        (
            json!({"name": "x".repeat(101), "scopes": ["tokens"]}),
            "name",
        ),
        (json!({"name": "x"}), "scopes"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x", "scopes": "tokens"}), "scopes"),
        (json!({"name": "x", "scopes": ["Tokens"]}), "scopes"),
        (json!({"name": "x", "scopes": ["tokens:write"]}), "scopes"),
        (
            json!({"name": "x", "scopes": ["tokens"], "owner": "me"}),
            "owner",
        ),
    ];
    for (body, field) in cases {
        let err = in_workspace(&server, &admin, body.clone()).error(422, "validation_failed");
        assert!(err["details"][field].is_string(), "{body} → {err}");
    }
    let unknown = in_workspace(
        &server,
        &admin,
        json!({"name": "x", "scopes": ["contacts"]}),
    );
    unknown.error(422, "unknown_scope");
    let no_domain = in_workspace(
        &server,
        &admin,
        json!({"name": "x", "scopes": ["domain:example.com"]}),
    );
    no_domain.error(422, "unknown_scope");
}

#[test]
fn prefixes_come_from_the_workspace_else_the_instance() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    server
        .patch(&format!("/api/v1/workspaces/{}", admin.workspace))
        .bearer(&admin.session)
        .json(json!({"token_prefix": "mb_"}))
        .send()
        .data(200);
    let mb = create_token(
        &server,
        &admin.session,
        json!({"name": "a", "scopes": ["tokens"]}),
    );
    assert!(secret(&mb).starts_with("mb_"));

    server
        .patch(&format!("/api/v1/workspaces/{}", admin.workspace))
        .bearer(&admin.session)
        .json(json!({"token_prefix": null}))
        .send()
        .data(200);
    server
        .patch("/api/v1/settings")
        .bearer(&admin.session)
        .json(json!({"token_prefix": "tm_pro_"}))
        .send()
        .data(200);
    let pro = create_token(
        &server,
        &admin.session,
        json!({"name": "b", "scopes": ["tokens"]}),
    );
    assert!(secret(&pro).starts_with("tm_pro_") && secret(&pro).len() == 47);
    assert!(pro["token_hint"].as_str().unwrap().starts_with("tm_pro_…"));
    // Existing tokens keep working after a prefix change.
    assert_eq!(verify(&server, &secret(&mb), None)["code"], "VALID");
    assert_eq!(verify(&server, &secret(&pro), None)["code"], "VALID");
    assert!(pro["number"].as_i64() > mb["number"].as_i64());
}

#[test]
fn members_list_their_own_tokens_and_admins_all() {
    let server = Server::start();
    let (admin, bob) = team(&server, json!(["contacts"]));
    let mine = in_workspace(
        &server,
        &admin,
        json!({"name": "admin's", "scopes": ["contacts"]}),
    )
    .data(201);
    let bobs = in_workspace(
        &server,
        &bob,
        json!({"name": "bob's", "scopes": ["contacts:read"]}),
    )
    .data(201);

    let as_admin = server
        .get("/api/v1/tokens")
        .bearer(&admin.session)
        .send()
        .json();
    assert_eq!(as_admin["meta"]["total"], 2);
    let as_bob = server
        .get("/api/v1/tokens")
        .bearer(&bob.session)
        .workspace(&bob.workspace)
        .send()
        .json();
    assert_eq!(as_bob["meta"]["total"], 1);
    assert_eq!(as_bob["data"][0]["id"], bobs["id"]);
    assert_eq!(as_bob["data"][0]["created_by"]["email"], "bob@example.com");

    // Another member's token is not there for Bob, whatever the method.
    let theirs = format!("/api/v1/tokens/{}", id(&mine));
    server
        .get(&theirs)
        .bearer(&bob.session)
        .workspace(&bob.workspace)
        .send()
        .error(404, "not_found");
    server
        .delete(&theirs)
        .bearer(&bob.session)
        .workspace(&bob.workspace)
        .send()
        .error(404, "not_found");
    server
        .post(&format!("{theirs}/reset"))
        .bearer(&bob.session)
        .workspace(&bob.workspace)
        .send()
        .error(404, "not_found");
    // The admin manages Bob's.
    server
        .get(&format!("/api/v1/tokens/{}", id(&bobs)))
        .bearer(&admin.session)
        .send()
        .data(200);
}

#[test]
fn lists_filter_by_state_and_page() {
    let mut server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    for i in 0..5 {
        create_token(
            &server,
            &admin.session,
            json!({"name": format!("t{i}"), "scopes": ["tokens"]}),
        );
    }
    let short = create_token(
        &server,
        &admin.session,
        json!({"name": "short", "scopes": ["tokens"], "expires_in": 1}),
    );
    let gone = create_token(
        &server,
        &admin.session,
        json!({"name": "gone", "scopes": ["tokens"]}),
    );
    server
        .delete(&format!("/api/v1/tokens/{}", id(&gone)))
        .bearer(&admin.session)
        .send();
    server.advance_clock(2);

    let count = |query: &str| {
        server
            .get(&format!("/api/v1/tokens{query}"))
            .bearer(&admin.session)
            .send()
            .json()["meta"]["total"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count(""), 7);
    assert_eq!(count("?state=all"), 7);
    assert_eq!(count("?state=active"), 5);
    assert_eq!(count("?state=expired"), 1);
    assert_eq!(count("?state=revoked"), 1);

    let page = server
        .get("/api/v1/tokens?per_page=2&page=2")
        .bearer(&admin.session)
        .send()
        .json();
    assert_eq!(page["meta"], json!({"page": 2, "per_page": 2, "total": 7}));
    let names: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["t4", "t3"], "newest first");
    let expired = server
        .get("/api/v1/tokens?state=expired")
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(expired[0]["id"], short["id"]);
    assert_eq!(expired[0]["state"], "expired");

    for bad in [
        "?state=dead",
        "?per_page=101",
        "?per_page=0",
        "?page=0",
        "?page=x",
    ] {
        server
            .get(&format!("/api/v1/tokens{bad}"))
            .bearer(&admin.session)
            .send()
            .error(422, "validation_failed");
    }
}

#[test]
fn revoking_takes_effect_on_the_very_next_request() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let token = plain_token(&server, &admin.session);
    let secret = secret(&token);
    // Warm every cache there is.
    for _ in 0..3 {
        assert_eq!(verify(&server, &secret, None)["code"], "VALID");
        server
            .get("/api/v1/tokens/self")
            .bearer(&secret)
            .send()
            .data(200);
    }
    let res = server
        .delete(&format!("/api/v1/tokens/{}", id(&token)))
        .bearer(&admin.session)
        .send();
    assert_eq!(res.status, 204);
    assert!(res.body.is_empty());

    let as_bearer = server.get("/api/v1/tokens/self").bearer(&secret).send();
    let err = as_bearer.error(401, "invalid_token");
    assert!(
        err["message"].as_str().unwrap().contains("revoked"),
        "{err}"
    );
    let verdict = verify(&server, &secret, None);
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["code"], "REVOKED");
    assert_eq!(verdict["token"]["state"], "revoked");
    assert!(verdict["token"]["revoked_at"].is_string());

    let again = server
        .delete(&format!("/api/v1/tokens/{}", id(&token)))
        .bearer(&admin.session)
        .send();
    assert_eq!(again.status, 204);
    server
        .patch(&format!("/api/v1/tokens/{}", id(&token)))
        .bearer(&admin.session)
        .json(json!({"name": "new name"}))
        .send()
        .error(409, "token_inactive");
    server
        .post(&format!("/api/v1/tokens/{}/reset", id(&token)))
        .bearer(&admin.session)
        .send()
        .error(409, "token_inactive");
}

#[test]
fn reset_keeps_the_old_token_for_the_grace_window_and_renames() {
    let mut server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let old = create_token(
        &server,
        &admin.session,
        json!({"name": "CRM", "scopes": ["tokens"], "expires_in": 7200}),
    );
    let res = server
        .post(&format!("/api/v1/tokens/{}/reset", id(&old)))
        .bearer(&admin.session)
        .send();
    let new = res.data(201);
    assert_ne!(secret(&new), secret(&old));
    assert_eq!(new["name"], format!("CRM token {}", new["number"]));
    assert_eq!(new["scopes"], old["scopes"]);
    assert_eq!(
        seconds(&new["expires_at"]) - seconds(&new["created_at"]),
        7200,
        "same lifetime length"
    );

    let old_now = server
        .get(&format!("/api/v1/tokens/{}", id(&old)))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(old_now["replaced_by"], new["id"]);
    // The default grace is 12 hours, but never longer than the token had.
    assert_eq!(old_now["expires_at"], old["expires_at"]);
    assert_eq!(verify(&server, &secret(&old), None)["code"], "VALID");
    assert_eq!(verify(&server, &secret(&new), None)["code"], "VALID");

    // A second reset of the replaced token is refused; its replacement may be reset.
    server
        .post(&format!("/api/v1/tokens/{}/reset", id(&old)))
        .bearer(&admin.session)
        .send()
        .error(409, "token_inactive");
    let newer = server
        .post(&format!("/api/v1/tokens/{}/reset", id(&new)))
        .bearer(&admin.session)
        .json(json!({"grace_seconds": 1}))
        .send()
        .data(201);
    assert_eq!(newer["name"], format!("CRM token {}", newer["number"]));
    server.advance_clock(2);
    assert_eq!(verify(&server, &secret(&new), None)["code"], "EXPIRED");
    assert_eq!(verify(&server, &secret(&newer), None)["code"], "VALID");
}

#[test]
fn reset_grace_defaults_to_twelve_hours() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let old = create_token(
        &server,
        &admin.session,
        json!({"name": "long", "scopes": ["tokens"], "expires_in": 2_592_000}),
    );
    let new = server
        .post(&format!("/api/v1/tokens/{}/reset", id(&old)))
        .bearer(&admin.session)
        .send()
        .data(201);
    let old_now = server
        .get(&format!("/api/v1/tokens/{}", id(&old)))
        .bearer(&admin.session)
        .send()
        .data(200);
    let grace = seconds(&old_now["expires_at"]) - seconds(&new["created_at"]);
    assert!((43_199..=43_201).contains(&grace), "grace {grace}");

    for bad in [
        json!({"grace_seconds": -1}),
        json!({"grace_seconds": 604_801}),
        json!({"grace": 5}),
    ] {
        server
            .post(&format!("/api/v1/tokens/{}/reset", id(&new)))
            .bearer(&admin.session)
            .json(bad)
            .send()
            .error(422, "validation_failed");
    }
}

#[test]
fn every_verify_code() {
    let mut server = Server::start_with(&["--sweep-interval", "1", "--verify-fail-limit", "0"]);
    let (admin, bob) = team(&server, json!(["contacts", "campaigns:read"]));
    let good = in_workspace(
        &server,
        &bob,
        json!({"name": "good", "scopes": ["contacts", "campaigns:read"]}),
    )
    .data(201);
    let good = secret(&good);

    let valid = verify(
        &server,
        &good,
        Some(json!(["contacts:read", "campaigns:read"])),
    );
    assert_eq!(
        (valid["valid"].clone(), valid["code"].clone()),
        (json!(true), json!("VALID"))
    );
    assert_eq!(
        valid["token"]["scopes"],
        json!(["campaigns:read", "contacts"])
    );
    let insufficient = verify(&server, &good, Some(json!(["campaigns"])));
    assert_eq!(insufficient["code"], "INSUFFICIENT_SCOPE");
    assert_eq!(insufficient["valid"], false);
    assert!(insufficient["token"].is_object());

    let mut typo = good.clone().into_bytes();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == b'a' { b'b' } else { b'a' };
    for malformed in [
        String::from_utf8(typo).unwrap(),
        "tw_short".into(),
        "".into(),
        "x".repeat(5000),
    ] {
        let verdict = verify(&server, &malformed, None);
        assert_eq!(verdict["code"], "MALFORMED", "{malformed}");
        assert!(verdict["token"].is_null());
    }
    // A well-formed token (valid checksum) that was never issued.
    let stranger = stranger_token();
    let verdict = verify(&server, &stranger, None);
    assert_eq!(verdict["code"], "NOT_FOUND");
    assert!(verdict["token"].is_null());

    let short = in_workspace(
        &server,
        &bob,
        json!({"name": "short", "scopes": ["contacts"], "expires_in": 1}),
    )
    .data(201);
    server.advance_clock(2);
    let expired = verify(&server, &secret(&short), None);
    assert_eq!(expired["code"], "EXPIRED");
    assert_eq!(expired["token"]["state"], "expired");

    // The owner leaves the workspace: their token is disabled at once.
    server
        .delete(&format!(
            "/api/v1/workspaces/{}/members/{}",
            admin.workspace, bob.id
        ))
        .bearer(&admin.session)
        .send();
    let disabled = verify(&server, &good, None);
    assert_eq!(disabled["code"], "DISABLED");
    assert_eq!(
        disabled["token"]["scopes"],
        json!([]),
        "no effective scopes left"
    );
    server
        .get("/api/v1/tokens/self")
        .bearer(&good)
        .send()
        .error(401, "invalid_token");

    server
        .post("/api/v1/tokens/verify")
        .json(json!({"scopes": ["contacts"]}))
        .send()
        .error(422, "validation_failed");
    server
        .post("/api/v1/tokens/verify")
        .json(json!({"token": good, "scopes": ["not a scope"]}))
        .send()
        .error(422, "validation_failed");
}

/// A token with a correct checksum that the server never issued.
fn stranger_token() -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let random = "A".repeat(34);
    let mut crc = crc32(random.as_bytes());
    let mut sum = [b'0'; 6];
    for digit in sum.iter_mut().rev() {
        *digit = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    format!("tw_{random}{}", String::from_utf8(sum.to_vec()).unwrap())
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn random_input_to_verify_is_answered_never_crashed() {
    let server = Server::start_with(&["--verify-fail-limit", "0"]);
    let mut state = 0x1234_5678_9abc_def0u64;
    let alphabet: Vec<char> = "tw_mb0aZ9é€-.\"\\ \u{1}".chars().collect();
    for _ in 0..150 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 60) as usize;
        let text: String = (0..len)
            .map(|i| alphabet[((state >> (i % 40)) as usize + i) % alphabet.len()])
            .collect();
        let verdict = verify(&server, &text, None);
        assert!(
            ["MALFORMED", "NOT_FOUND"].contains(&verdict["code"].as_str().unwrap()),
            "{text:?}"
        );
    }
    assert_eq!(server.get("/healthz").send().status, 200);
}

#[test]
fn failed_verifications_are_rate_limited_per_address() {
    let server = Server::start_with(&["--verify-fail-limit", "5"]);
    let admin = sign_up(&server, "admin@example.com");
    let token = plain_token(&server, &admin.session);
    for _ in 0..20 {
        // Successes do not count.
        assert_eq!(verify(&server, &secret(&token), None)["code"], "VALID");
    }
    for _ in 0..5 {
        assert_eq!(verify(&server, "tw_nope", None)["code"], "MALFORMED");
    }
    let limited = server
        .post("/api/v1/tokens/verify")
        .json(json!({"token": secret(&token)}))
        .send();
    limited.error(429, "rate_limited");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
}

#[test]
fn last_use_is_recorded_without_waiting_for_the_flush() {
    let server = Server::start_with(&["--sweep-interval", "3600"]);
    let admin = sign_up(&server, "admin@example.com");
    let token = plain_token(&server, &admin.session);
    let before = server
        .get(&format!("/api/v1/tokens/{}", id(&token)))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert!(before["last_used_at"].is_null());

    server
        .get("/api/v1/tokens")
        .bearer(&secret(&token))
        .send()
        .data(200);
    let after = server
        .get(&format!("/api/v1/tokens/{}", id(&token)))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert!(after["last_used_at"].is_string(), "{after}");
    assert_eq!(after["last_used_ip"], "127.0.0.1");
    let listed = server
        .get("/api/v1/tokens")
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(listed[0]["last_used_at"], after["last_used_at"]);
}

#[test]
fn a_valid_verification_answers_with_itself_as_the_latest_use() {
    let mut server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let token = plain_token(&server, &admin.session);
    let answer = verify(&server, &secret(&token), None);
    assert_eq!(answer["code"], "VALID");
    assert!(answer["token"]["last_used_at"].is_string(), "{answer}");
    assert_eq!(answer["token"]["last_used_ip"], "127.0.0.1");
    let stored = server
        .get(&format!("/api/v1/tokens/{}", id(&token)))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(stored["last_used_at"], answer["token"]["last_used_at"]);

    // A failed verification is no use: its answer shows the last real one,
    // also once it has been stored (the restart stores it). The clock moves
    // on, so a use recorded now would show.
    server.advance_clock(5);
    let narrowed = verify(&server, &secret(&token), Some(json!(["domains"])));
    assert_eq!(narrowed["code"], "INSUFFICIENT_SCOPE", "{narrowed}");
    assert_eq!(
        narrowed["token"]["last_used_at"],
        answer["token"]["last_used_at"]
    );
}

#[test]
fn a_session_hands_out_only_what_its_member_holds() {
    let server = Server::start();
    let (admin, bob) = team(&server, json!(["contacts:read"]));
    let refused = in_workspace(&server, &bob, json!({"name": "x", "scopes": ["contacts"]}));
    let err = refused.error(403, "forbidden");
    assert!(
        err["message"].as_str().unwrap().contains("contacts"),
        "{err}"
    );
    in_workspace(&server, &bob, json!({"name": "x", "scopes": ["tokens"]})).error(403, "forbidden");
    let ok = in_workspace(
        &server,
        &bob,
        json!({"name": "reader", "scopes": ["contacts:read"]}),
    )
    .data(201);

    // Editing cannot escalate either.
    server
        .patch(&format!("/api/v1/tokens/{}", id(&ok)))
        .bearer(&bob.session)
        .workspace(&bob.workspace)
        .json(json!({"scopes": ["contacts", "campaigns"]}))
        .send()
        .error(403, "forbidden");
    let renamed = server
        .patch(&format!("/api/v1/tokens/{}", id(&ok)))
        .bearer(&bob.session)
        .workspace(&bob.workspace)
        .json(json!({"name": "contacts reader"}))
        .send()
        .data(200);
    assert_eq!(renamed["name"], "contacts reader");
    assert_eq!(renamed["scopes"], json!(["contacts:read"]));

    // The admin may give Bob's token more, but it is worth no more than Bob.
    let widened = server
        .patch(&format!("/api/v1/tokens/{}", id(&ok)))
        .bearer(&admin.session)
        .json(json!({"scopes": ["contacts", "campaigns"]}))
        .send()
        .data(200);
    assert_eq!(widened["scopes"], json!(["campaigns", "contacts"]));
    let verdict = verify(&server, &secret(&ok), Some(json!(["contacts:read"])));
    assert_eq!(verdict["code"], "VALID");
    assert_eq!(verdict["token"]["scopes"], json!(["contacts:read"]));
    assert_eq!(
        verify(&server, &secret(&ok), Some(json!(["contacts"])))["code"],
        "INSUFFICIENT_SCOPE"
    );
}

#[test]
fn a_token_is_never_more_than_its_owner_now() {
    let server = Server::start();
    let (admin, bob) = team(&server, json!(["contacts"]));
    let token = in_workspace(&server, &bob, json!({"name": "t", "scopes": ["contacts"]})).data(201);
    assert_eq!(
        verify(&server, &secret(&token), Some(json!(["contacts"])))["code"],
        "VALID"
    );
    server
        .patch(&format!(
            "/api/v1/workspaces/{}/members/{}",
            admin.workspace, bob.id
        ))
        .bearer(&admin.session)
        .json(json!({"scopes": ["contacts:read"]}))
        .send()
        .data(200);
    let narrowed = verify(&server, &secret(&token), Some(json!(["contacts"])));
    assert_eq!(narrowed["code"], "INSUFFICIENT_SCOPE", "{narrowed}");
    assert_eq!(narrowed["token"]["scopes"], json!(["contacts:read"]));
    // Promotion to admin lifts the narrowing at once.
    server
        .patch(&format!(
            "/api/v1/workspaces/{}/members/{}",
            admin.workspace, bob.id
        ))
        .bearer(&admin.session)
        .json(json!({"role": "admin"}))
        .send()
        .data(200);
    assert_eq!(
        verify(&server, &secret(&token), Some(json!(["contacts"])))["code"],
        "VALID"
    );
}

#[test]
fn tokens_manage_tokens_without_escalating() {
    let server = Server::start();
    let (admin, _bob) = team(&server, json!([]));
    let parent = in_workspace(
        &server,
        &admin,
        json!({"name": "automation", "scopes": ["tokens", "contacts:read"], "expires_in": 3600}),
    )
    .data(201);
    let parent_secret = secret(&parent);

    let child = create_token(
        &server,
        &parent_secret,
        json!({"name": "child", "scopes": ["contacts:read"]}),
    );
    assert_eq!(
        child["created_by"]["email"], "admin@example.com",
        "a token acts as its owner"
    );
    assert_eq!(
        child["expires_at"], parent["expires_at"],
        "min(default 4 h, parent's 1 h)"
    );
    let shorter = create_token(
        &server,
        &parent_secret,
        json!({"name": "c2", "scopes": ["tokens:read"], "expires_in": 60}),
    );
    assert_eq!(
        seconds(&shorter["expires_at"]) - seconds(&shorter["created_at"]),
        60
    );

    let post = |body: Value| {
        server
            .post("/api/v1/tokens")
            .bearer(&parent_secret)
            .json(body)
            .send()
    };
    post(json!({"name": "x", "scopes": ["contacts"]})).error(403, "forbidden");
    post(json!({"name": "x", "scopes": ["campaigns:read"]})).error(403, "forbidden");
    post(json!({"name": "x", "scopes": ["contacts:read"], "expires_in": 7200}))
        .error(403, "forbidden");

    // The token reads, edits and revokes with its `tokens` scope.
    let listed = server
        .get("/api/v1/tokens")
        .bearer(&parent_secret)
        .send()
        .data(200);
    assert_eq!(listed.as_array().unwrap().len(), 3);
    server
        .patch(&format!("/api/v1/tokens/{}", id(&child)))
        .bearer(&parent_secret)
        .json(json!({"scopes": ["contacts"]}))
        .send()
        .error(403, "forbidden");
    let res = server
        .delete(&format!("/api/v1/tokens/{}", id(&child)))
        .bearer(&parent_secret)
        .send();
    assert_eq!(res.status, 204);

    let me = server
        .get("/api/v1/tokens/self")
        .bearer(&parent_secret)
        .send()
        .data(200);
    assert_eq!(me["id"], parent["id"]);
    server
        .get("/api/v1/tokens/self")
        .bearer(&admin.session)
        .send()
        .error(403, "forbidden");
}

#[test]
fn a_token_without_the_tokens_scope_is_challenged() {
    let server = Server::start();
    let (admin, _) = team(&server, json!([]));
    let reader = in_workspace(
        &server,
        &admin,
        json!({"name": "r", "scopes": ["tokens:read"]}),
    )
    .data(201);
    let plain = in_workspace(
        &server,
        &admin,
        json!({"name": "p", "scopes": ["contacts"]}),
    )
    .data(201);

    let list = server.get("/api/v1/tokens").bearer(&secret(&plain)).send();
    list.error(403, "insufficient_scope");
    assert_eq!(
        list.header("www-authenticate"),
        Some(r#"Bearer realm="tokenward", error="insufficient_scope", scope="tokens:read""#)
    );
    server
        .get("/api/v1/tokens")
        .bearer(&secret(&reader))
        .send()
        .data(200);
    let create = server
        .post("/api/v1/tokens")
        .bearer(&secret(&reader))
        .json(json!({"name": "x", "scopes": ["tokens:read"]}))
        .send();
    create.error(403, "insufficient_scope");
    assert_eq!(
        create.header("www-authenticate"),
        Some(r#"Bearer realm="tokenward", error="insufficient_scope", scope="tokens""#)
    );
    // Any valid token may describe itself.
    server
        .get("/api/v1/tokens/self")
        .bearer(&secret(&plain))
        .send()
        .data(200);
}

#[test]
fn another_workspace_s_tokens_are_not_there() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let eve = sign_up(&server, "eve@example.com");
    let token = plain_token(&server, &admin.session);
    let path = format!("/api/v1/tokens/{}", id(&token));
    server
        .get(&path)
        .bearer(&eve.session)
        .send()
        .error(404, "not_found");
    server
        .patch(&path)
        .bearer(&eve.session)
        .json(json!({"name": "mine"}))
        .send()
        .error(404, "not_found");
    server
        .delete(&path)
        .bearer(&eve.session)
        .send()
        .error(404, "not_found");
    server
        .post(&format!("{path}/reset"))
        .bearer(&eve.session)
        .send()
        .error(404, "not_found");
    // Eve's own token cannot reach it either.
    let eves = create_token(
        &server,
        &eve.session,
        json!({"name": "e", "scopes": ["tokens"]}),
    );
    server
        .get(&path)
        .bearer(&secret(&eves))
        .send()
        .error(404, "not_found");
    let eves_list = server
        .get("/api/v1/tokens")
        .bearer(&secret(&eves))
        .send()
        .data(200);
    assert_eq!(eves_list.as_array().unwrap().len(), 1);
    // Ids that do not exist or are not ids.
    server
        .get("/api/v1/tokens/00000000-0000-4000-8000-000000000000")
        .bearer(&admin.session)
        .send()
        .error(404, "not_found");
    server
        .get("/api/v1/tokens/not-an-id")
        .bearer(&admin.session)
        .send()
        .error(404, "not_found");
    assert_eq!(verify(&server, &secret(&token), None)["code"], "VALID");
}

#[test]
fn with_the_verify_cache_off_every_verification_reads_the_database() {
    if common::skip_on_postgres("with_the_verify_cache_off_every_verification_reads_the_database") {
        return;
    }
    let server = Server::start_with(&["--verify-cache", "0"]);
    let admin = sign_up(&server, "admin@example.com");
    let token = plain_token(&server, &admin.session);
    let secret = token["token"].as_str().unwrap();
    assert_eq!(verify(&server, secret, None)["code"], "VALID");

    // A change the server did not make itself, by SQL from outside, is
    // seen by the very next verification: nothing was kept in memory.
    let db = rusqlite::Connection::open(server.db_path()).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let changed = db
        .execute(
            "UPDATE tokens SET revoked_at = 1 WHERE id = ?1",
            [token["id"].as_str().unwrap()],
        )
        .unwrap();
    assert_eq!(changed, 1);
    assert_eq!(verify(&server, secret, None)["code"], "REVOKED");
}

/// The usual verify request is answered without warp's routing
/// (`src/api/hot.rs`); the same request with a trailing slash goes through
/// warp's. Both must answer alike, refusals included.
#[test]
fn verify_answers_alike_whichever_way_it_is_routed() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let token = plain_token(&server, &admin.session);
    let verifier = create_token(
        &server,
        &admin.session,
        json!({"name": "api", "scopes": ["verify:read"]}),
    );
    let cases = [
        // The common body, which the direct route reads without a tree.
        (Some(secret(&verifier)), json!({"token": secret(&token)})),
        (Some(secret(&verifier)), json!({"token": "tw_not_a_token"})),
        (
            Some(secret(&verifier)),
            json!({"token": secret(&token), "scopes": ["domains"]}),
        ),
        (
            None,
            json!({"token": secret(&token), "workspace_id": admin.workspace, "scopes": ["domains"]}),
        ),
        (
            None,
            json!({"token": "tw_not_a_token", "workspace_id": admin.workspace}),
        ),
        (None, json!({"token": secret(&token)})),
        (
            Some("tw_not_a_token".to_owned()),
            json!({"token": secret(&token)}),
        ),
        (None, json!({"token": 7, "surprise": true})),
    ];
    for (bearer, body) in cases {
        let ask = |path: &str| {
            let request = server.post(path).json(body.clone());
            match &bearer {
                Some(bearer) => request.bearer(bearer),
                None => request,
            }
            .send()
        };
        let (direct, routed) = (ask("/api/v1/tokens/verify"), ask("/api/v1/tokens/verify/"));
        assert_eq!(direct.status, routed.status, "{body}");
        for name in ANSWER_HEADERS {
            assert_eq!(direct.header(name), routed.header(name), "{name}: {body}");
        }
        assert_eq!(direct.json(), routed.json(), "{body}");
    }
    // A body that is not JSON, one too large, and near misses of the
    // common body; with and without a verifier token.
    let plain = secret(&token);
    for (content_type, raw) in [
        ("application/json", b"{\"token\":".to_vec()),
        ("text/plain", b"token".to_vec()),
        ("application/json", vec![b' '; 70 * 1024]),
        (
            "text/plain",
            format!(r#"{{"token":"{plain}"}}"#).into_bytes(),
        ),
        ("application/json", format!(r#"["{plain}"]"#).into_bytes()),
        (
            "application/json",
            format!(r#"{{"token":"{plain}","token":"tw_x"}}"#).into_bytes(),
        ),
        (
            "application/json",
            format!(r#"{{"token":"{plain}"}} x"#).into_bytes(),
        ),
    ] {
        for bearer in [None, Some(secret(&verifier))] {
            let ask = |path: &str| {
                let request = server.post(path).raw_body(content_type, raw.clone());
                match &bearer {
                    Some(bearer) => request.bearer(bearer),
                    None => request,
                }
                .send()
            };
            let (direct, routed) = (ask("/api/v1/tokens/verify"), ask("/api/v1/tokens/verify/"));
            let text = String::from_utf8_lossy(&raw[..raw.len().min(80)]).into_owned();
            assert_eq!(direct.status, routed.status, "{text}");
            assert_eq!(direct.json(), routed.json(), "{text}");
        }
    }
}

#[test]
fn a_use_the_sweeper_stored_still_shows_in_answers_from_the_cache() {
    // The sweeper flushes last-used times every second; the verify cache
    // keeps the grant it read before the flush, whose row had no use yet.
    let server = Server::start_with(&["--sweep-interval", "1", "--verify-fail-limit", "0"]);
    let admin = sign_up(&server, "admin@example.com");
    let token = create_token(
        &server,
        &admin.session,
        json!({"name": "crm", "scopes": ["tokens:read"]}),
    );
    let secret = secret(&token);
    let used = verify(&server, &secret, None);
    assert_eq!(used["code"], "VALID");
    let used_at = used["token"]["last_used_at"].clone();
    assert!(used_at.is_string(), "{used}");
    // Long enough for a flush or two to store the use.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // Refused for scope, so not a use: the answer shows the latest one.
    let refused = verify(&server, &secret, Some(json!(["tokens"])));
    assert_eq!(refused["code"], "INSUFFICIENT_SCOPE");
    assert_eq!(refused["token"]["last_used_at"], used_at, "{refused}");
    assert_eq!(refused["token"]["last_used_ip"], "127.0.0.1", "{refused}");
    let listed = server
        .get(&format!("/api/v1/tokens/{}", token["id"].as_str().unwrap()))
        .bearer(&admin.session)
        .send()
        .data(200);
    assert_eq!(listed["last_used_at"], used_at);
}
