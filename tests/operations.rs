//! Operations (§11): account administration by the instance admin and from
//! the command line, Prometheus metrics on their own listener, online
//! backup and check, and JSON log lines.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
fn tokenward(args: &[&str], db: impl AsRef<std::ffi::OsStr>, stdin: &str) -> Output {
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
    let db = server.db_arg().to_owned();

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
    let db = server.db_arg().to_owned();

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

// ---------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------

/// A plain `GET` to `addr`: status, content type and body.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

/// The metrics listener's address, as the server logs it.
fn metrics_addr(server: &Server) -> SocketAddr {
    let mut found = None;
    eventually(Duration::from_secs(10), || {
        found = server.log().lines().find_map(|line| {
            let (_, rest) = line.split_once("metrics on http://")?;
            rest.split('/').next()?.trim().parse().ok()
        });
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no metrics address in the log:\n{}", server.log()))
}

/// One sample: its name, labels and value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: bool,
    samples: Vec<Sample>,
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").expect("label=\"value\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next().expect("closing quote");
            match c {
                '\\' => match chars.next().expect("escape").1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                other => value.push(other),
            }
        };
        assert!(
            labels.insert(name.to_owned(), value).is_none(),
            "duplicate label {name}"
        );
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    labels
}

/// Parses the text exposition format 0.0.4 strictly enough to catch what a
/// scraper would reject: every sample belongs to a family announced with
/// `# HELP` and `# TYPE` before it, names and values are well formed.
fn parse_exposition(text: &str) -> HashMap<String, Family> {
    let mut families: HashMap<String, Family> = HashMap::new();
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    let valid_name = |name: &str| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let keyword = parts.next().unwrap();
            let name = parts
                .next()
                .unwrap_or_else(|| panic!("bad comment {line:?}"));
            let tail = parts.next().unwrap_or("");
            assert!(valid_name(name), "bad metric name in {line:?}");
            let family = families.entry(name.to_owned()).or_default();
            match keyword {
                "HELP" => {
                    assert!(!family.help, "two HELP lines for {name}");
                    assert!(!tail.is_empty(), "empty HELP for {name}");
                    family.help = true;
                }
                "TYPE" => {
                    assert!(family.kind.is_empty(), "two TYPE lines for {name}");
                    assert!(family.samples.is_empty(), "TYPE after samples for {name}");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&tail),
                        "bad type in {line:?}"
                    );
                    family.kind = tail.to_owned();
                }
                _ => {}
            }
            continue;
        }
        assert!(!line.starts_with('#'), "a comment needs a space: {line:?}");
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            number => number
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (
                name,
                parse_labels(rest.strip_suffix('}').expect("labels end with }")),
            ),
            None => (series, BTreeMap::new()),
        };
        assert!(valid_name(name), "bad sample name in {line:?}");
        let family_name = [
            name,
            name.trim_end_matches("_bucket"),
            name.trim_end_matches("_sum"),
            name.trim_end_matches("_count"),
        ]
        .into_iter()
        .find(|candidate| {
            families
                .get(*candidate)
                .is_some_and(|f| *candidate == name || f.kind == "histogram")
        })
        .unwrap_or_else(|| panic!("sample {name} has no TYPE before it"))
        .to_owned();
        let family = families.get_mut(&family_name).unwrap();
        assert!(family.help, "{family_name} has no HELP");
        if family.kind == "counter" {
            assert!(
                name.ends_with("_total"),
                "counter {name} does not end in _total"
            );
            assert!(value >= 0.0, "{line}");
        }
        family.samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    for (name, family) in &families {
        assert!(
            family.help && !family.kind.is_empty(),
            "{name} lacks HELP or TYPE"
        );
        if family.kind == "histogram" {
            check_histogram(name, family);
        }
    }
    families
}

type LabelSet = Vec<(String, String)>;

/// Buckets per series: `le` ascending, counts cumulative, the last `+Inf`
/// and equal to `_count`; `_sum` present.
fn check_histogram(name: &str, family: &Family) {
    // Per series (its labels but `le`): the buckets as (bound, count).
    let mut series: BTreeMap<LabelSet, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts = BTreeMap::new();
    let mut sums = BTreeMap::new();
    for sample in &family.samples {
        let mut key: LabelSet = sample
            .labels
            .iter()
            .filter(|(k, _)| *k != "le")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        key.sort();
        if sample.name.ends_with("_bucket") {
            let le = &sample.labels["le"];
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            series.entry(key).or_default().push((bound, sample.value));
        } else if sample.name.ends_with("_count") {
            counts.insert(key, sample.value);
        } else if sample.name.ends_with("_sum") {
            sums.insert(key, sample.value);
        } else {
            panic!("{} is not a histogram sample of {name}", sample.name);
        }
    }
    assert!(!series.is_empty(), "{name} has no buckets");
    for (key, buckets) in &series {
        for pair in buckets.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{name} {key:?}: le not ascending");
            assert!(
                pair[0].1 <= pair[1].1,
                "{name} {key:?}: buckets not cumulative"
            );
        }
        let last = buckets.last().unwrap();
        assert_eq!(last.0, f64::INFINITY, "{name} {key:?}: no +Inf bucket");
        assert_eq!(
            Some(&last.1),
            counts.get(key),
            "{name} {key:?}: +Inf != _count"
        );
        assert!(sums.contains_key(key), "{name} {key:?}: no _sum");
    }
}

fn scrape(addr: SocketAddr) -> HashMap<String, Family> {
    let (status, content_type, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"),
        "{content_type}"
    );
    parse_exposition(&body)
}

/// The value of `name` with exactly these labels (0 when absent).
fn value(
    families: &HashMap<String, Family>,
    family: &str,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    families
        .get(family)
        .unwrap_or_else(|| panic!("no family {family}"))
        .samples
        .iter()
        .find(|s| s.name == name && s.labels == wanted)
        .map_or(0.0, |s| s.value)
}

#[test]
fn metrics_parse_and_move_when_tokens_are_verified() {
    if common::skip_on_postgres("metrics_parse_and_move_when_tokens_are_verified") {
        return;
    }
    let server = Server::start_with(&["--sweep-interval", "1", "--metrics-addr", "127.0.0.1:0"]);
    let metrics = metrics_addr(&server);
    assert_ne!(metrics, server.addr);
    let admin = admin_with_open_signup(&server);
    let token = plain_token(&server, &admin.session);
    let secret = token["token"].as_str().unwrap();
    let revoked = plain_token(&server, &admin.session);
    server
        .delete(&format!(
            "/api/v1/tokens/{}",
            revoked["id"].as_str().unwrap()
        ))
        .bearer(&admin.session)
        .send();
    sign_in(&server, "admin@example.com", "not the password").error(401, "invalid_credentials");

    let before = scrape(metrics);
    let verifications = |f: &HashMap<String, Family>, code: &str| {
        value(
            f,
            "tokenward_verifications_total",
            "tokenward_verifications_total",
            &[("code", code)],
        )
    };
    let verify_route = [("route", "/api/v1/tokens/verify"), ("method", "POST")];
    let latency_count = |f: &HashMap<String, Family>| {
        value(
            f,
            "tokenward_http_request_duration_seconds",
            "tokenward_http_request_duration_seconds_count",
            &verify_route,
        )
    };
    for _ in 0..5 {
        assert_eq!(verify(&server, secret, None)["code"], "VALID");
    }
    for _ in 0..2 {
        verify_in(&server, &admin.workspace, "tw_not_a_token", None);
    }
    assert_eq!(
        verify(&server, revoked["token"].as_str().unwrap(), None)["code"],
        "REVOKED"
    );
    let after = scrape(metrics);
    assert_eq!(
        verifications(&after, "VALID") - verifications(&before, "VALID"),
        5.0
    );
    assert_eq!(
        verifications(&after, "MALFORMED") - verifications(&before, "MALFORMED"),
        2.0
    );
    assert_eq!(
        verifications(&after, "REVOKED") - verifications(&before, "REVOKED"),
        1.0
    );
    assert_eq!(latency_count(&after) - latency_count(&before), 8.0);

    // Routes are templates, never ids.
    let token_route = [("route", "/api/v1/tokens/{id}"), ("method", "DELETE")];
    assert_eq!(
        value(
            &after,
            "tokenward_http_request_duration_seconds",
            "tokenward_http_request_duration_seconds_count",
            &token_route
        ),
        1.0
    );
    for family in after.values() {
        for sample in &family.samples {
            for label in sample.labels.values() {
                assert!(
                    !label.contains(revoked["id"].as_str().unwrap()) && !label.contains(&admin.id),
                    "an id in a label: {sample:?}"
                );
            }
        }
    }
    assert_eq!(
        value(
            &after,
            "tokenward_tokens",
            "tokenward_tokens",
            &[("state", "active")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "tokenward_tokens",
            "tokenward_tokens",
            &[("state", "revoked")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "tokenward_sign_in_failures_total",
            "tokenward_sign_in_failures_total",
            &[]
        ),
        1.0
    );
    for family in [
        "tokenward_sign_in_lockouts_total",
        "tokenward_sweeper_runs_total",
        "tokenward_sweeper_purged_tokens_total",
        "tokenward_sweeper_purged_sessions_total",
        "tokenward_last_used_pending",
        "tokenward_http_requests_total",
    ] {
        assert!(after.contains_key(family), "no {family}");
    }
    let size = value(
        &after,
        "tokenward_database_size_bytes",
        "tokenward_database_size_bytes",
        &[],
    );
    let on_disk = std::fs::metadata(server.db_path()).unwrap().len() as f64;
    assert!(size >= on_disk && size > 0.0, "{size} < {on_disk}");
    // The sweeper runs every second and the scrape says so.
    assert!(eventually(Duration::from_secs(10), || {
        value(
            &scrape(metrics),
            "tokenward_sweeper_runs_total",
            "tokenward_sweeper_runs_total",
            &[],
        ) >= 2.0
    }));

    // Metrics only on their own port; nothing else there.
    let main = server.get("/metrics").send();
    main.error(404, "not_found");
    assert_eq!(http_get(metrics, "/").0, 404);
    assert_eq!(http_get(metrics, "/api/v1/accounts").0, 404);
}

#[test]
fn a_metrics_address_in_use_is_reported_plainly() {
    let busy = Server::start();
    let dir = TempDir::new();
    let output = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--metrics-addr"])
        .arg(busy.addr.to_string())
        .arg("--db")
        .arg(dir.path().join("tw.db"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = stderr(&output);
    assert!(stderr.contains("for metrics"), "{stderr}");
    assert!(stderr.contains("TOKENWARD_METRICS_ADDR"), "{stderr}");
}

#[test]
fn metrics_are_off_unless_asked_for() {
    let server = Server::start();
    admin_with_open_signup(&server);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!server.log().contains("metrics on"), "{}", server.log());
    server.get("/metrics").send().error(404, "not_found");
}

// ---------------------------------------------------------------------
// Backup and check
// ---------------------------------------------------------------------

#[test]
fn a_backup_under_write_load_holds_every_acknowledged_token() {
    if common::skip_on_postgres("a_backup_under_write_load_holds_every_acknowledged_token") {
        return;
    }
    let mut server = Server::start();
    let admin = admin_with_open_signup(&server);
    let out_dir = TempDir::new();
    let out = out_dir.path().join("backup.db");
    // (secret, when its creation was acknowledged)
    let created: Mutex<Vec<(String, Instant)>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let mut began = None;
    let mut backup = None;
    std::thread::scope(|scope| {
        for writer in 0..3 {
            let (server, admin, created, stop) = (&server, &admin, &created, &stop);
            scope.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let token = create_token(
                        server,
                        &admin.session,
                        json!({"name": format!("writer {writer} token {n}"), "scopes": ["tokens"]}),
                    );
                    let secret = token["token"].as_str().unwrap().to_owned();
                    created.lock().unwrap().push((secret, Instant::now()));
                }
            });
        }
        // Let the writers get going, then back up while they write.
        assert!(eventually(Duration::from_secs(20), || created
            .lock()
            .unwrap()
            .len()
            >= 30));
        began = Some(Instant::now());
        backup = Some(
            Command::new(BIN)
                .args(["backup", "--db"])
                .arg(server.db_path())
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap(),
        );
        // Keep writing a little after the backup, then stop.
        let after = created.lock().unwrap().len();
        eventually(Duration::from_secs(10), || {
            created.lock().unwrap().len() >= after + 10
        });
        stop.store(true, Ordering::Relaxed);
    });
    let backup = backup.unwrap();
    let began = began.unwrap();
    assert!(backup.status.success(), "{}", stderr(&backup));
    let report = stdout(&backup);
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(
        report.contains(&size.to_string()),
        "the size is printed: {report}"
    );
    assert!(report.contains("ok"), "{report}");

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the backup is private");

    let check = Command::new(BIN)
        .args(["check", "--db"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(
        stdout(&check).contains("schema version"),
        "{}",
        stdout(&check)
    );
    assert!(
        stdout(&check).lines().any(|l| l.trim() == "ok"),
        "{}",
        stdout(&check)
    );

    // A server on the copy verifies every token acknowledged before the
    // backup began.
    let created = created.into_inner().unwrap();
    let before: Vec<&String> = created
        .iter()
        .filter(|(_, at)| *at < began)
        .map(|(secret, _)| secret)
        .collect();
    assert!(before.len() >= 30);
    assert!(
        created.len() > before.len(),
        "writes went on during the backup"
    );
    server.kill_hard();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", server.db_path().display()));
    }
    std::fs::copy(&out, server.db_path()).unwrap();
    server.restart();
    for secret in before {
        let answer = verify_in(&server, &admin.workspace, secret, None);
        assert_eq!(answer["code"], "VALID", "{answer}");
    }
}

#[test]
fn backup_refuses_to_overwrite_and_check_reports_damage() {
    if common::skip_on_postgres("backup_refuses_to_overwrite_and_check_reports_damage") {
        return;
    }
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    plain_token(&server, &admin.session);
    let dir = TempDir::new();
    let out = dir.path().join("existing.db");
    std::fs::write(&out, b"keep me").unwrap();
    let refused = Command::new(BIN)
        .args(["backup", "--db"])
        .arg(server.db_path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("already exists"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");

    // A database that is not there is not created by either command.
    let absent = dir.path().join("absent.db");
    for args in [
        vec!["check", "--db", absent.to_str().unwrap()],
        vec![
            "backup",
            "--db",
            absent.to_str().unwrap(),
            "--out",
            dir.path().join("b.db").to_str().unwrap(),
        ],
    ] {
        let output = Command::new(BIN).args(&args).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr(&output).contains("does not exist"),
            "{}",
            stderr(&output)
        );
        assert!(!absent.exists());
    }

    // A good copy, then damage in the middle of it.
    let copy = dir.path().join("copy.db");
    let made = Command::new(BIN)
        .args(["backup", "--db"])
        .arg(server.db_path())
        .arg("--out")
        .arg(&copy)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let mut bytes = std::fs::read(&copy).unwrap();
    let page = 4096;
    assert!(bytes.len() >= 4 * page, "{}", bytes.len());
    for byte in &mut bytes[2 * page + 100..3 * page] {
        *byte = 0x5a;
    }
    let damaged = dir.path().join("damaged.db");
    std::fs::write(&damaged, &bytes).unwrap();
    let check = Command::new(BIN)
        .args(["check", "--db"])
        .arg(&damaged)
        .output()
        .unwrap();
    assert!(!check.status.success(), "{}", stdout(&check));
    assert!(
        !stdout(&check).lines().any(|l| l.trim() == "ok"),
        "{}",
        stdout(&check)
    );
}

// ---------------------------------------------------------------------
// JSON logs
// ---------------------------------------------------------------------

#[test]
fn json_log_lines_are_objects_with_the_fields_of_text_lines() {
    let server = Server::start_with(&["--sweep-interval", "1", "--log-format", "json"]);
    let admin = admin_with_open_signup(&server);
    let token = plain_token(&server, &admin.session);
    let secret = token["token"].as_str().unwrap();
    verify(&server, secret, None);
    server
        .get("/api/v1/tokens?secret=shh")
        .bearer(secret)
        .send()
        .data(200);
    server.get("/odd%20path").send();
    // Lines are written by a background thread: wait for the last one.
    assert!(eventually(Duration::from_secs(10), || {
        server.log().contains(r#""path":"/odd%20path""#)
    }));
    let log = server.log();
    let mut requests = 0;
    let mut events = 0;
    for line in log.lines() {
        let object: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        let object = object
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {line}"));
        let ts = object["ts"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 24, "{line}");
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
                .contains(&object["level"].as_str().unwrap())
        );
        assert!(
            object["target"].as_str().unwrap().starts_with("tokenward"),
            "{line}"
        );
        assert!(object["message"].is_string(), "{line}");
        if object["target"] == "tokenward::http" {
            requests += 1;
            assert!(object["method"].is_string(), "{line}");
            assert!(object["path"].is_string(), "{line}");
            assert!(object["status"].is_u64(), "{line}");
            assert!(object["latency_us"].is_u64(), "{line}");
        } else {
            events += 1;
        }
    }
    assert!(requests >= 5 && events >= 1, "{log}");
    assert!(log.contains(r#""path":"/api/v1/tokens""#), "{log}");
    for secret_text in [secret, admin.session.as_str(), PASSWORD, "shh", "Bearer"] {
        assert!(!log.contains(secret_text), "{secret_text} leaked:\n{log}");
    }
}
