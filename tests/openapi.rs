//! The OpenAPI document: the golden copy in `docs/openapi.json`, and the
//! real server held to it — it serves the document, routes every documented
//! operation, answers every other method on a documented path with `405`
//! and `Allow`, and reads exactly the request fields the document names.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::*;

const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
];

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json")
}

/// The document as the code makes it, in the golden copy's layout.
fn rendered() -> String {
    let document = tokenward::api::openapi_document();
    let mut text = serde_json::to_string_pretty(&document).unwrap();
    text.push('\n');
    text
}

/// `TOKENWARD_UPDATE_OPENAPI=1 cargo test --test openapi` rewrites the copy.
#[test]
fn the_golden_copy_is_the_document_the_code_makes() {
    let made = rendered();
    if std::env::var_os("TOKENWARD_UPDATE_OPENAPI").is_some_and(|v| v != "0") {
        std::fs::write(golden_path(), &made).unwrap();
        return;
    }
    let golden = std::fs::read_to_string(golden_path()).unwrap_or_default();
    if let Some((line, (copy, code))) = golden
        .lines()
        .chain(std::iter::repeat("<end of file>"))
        .zip(made.lines())
        .enumerate()
        .find(|(_, (copy, code))| copy != code)
    {
        panic!(
            "docs/openapi.json differs from the document the code makes, first at line {}:\n\
             copy: {copy}\ncode: {code}\n\
             If the change is intended, rewrite the copy with:\n\
             TOKENWARD_UPDATE_OPENAPI=1 cargo test --test openapi",
            line + 1
        );
    }
    assert_eq!(
        golden.lines().count(),
        made.lines().count(),
        "docs/openapi.json is longer"
    );
}

/// One documented operation.
struct Operation {
    method: String,
    /// The path template, e.g. `/api/v1/tokens/{id}`.
    path: String,
    spec: Value,
}

fn operations(document: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, spec) in item.as_object().unwrap() {
            found.push(Operation {
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                spec: spec.clone(),
            });
        }
    }
    found
}

/// Whether the operation needs a credential (no empty alternative).
fn needs_credential(spec: &Value) -> bool {
    spec["security"]
        .as_array()
        .is_some_and(|alternatives| alternatives.iter().all(|a| a != &json!({})))
}

/// The path with each parameter filled by `value(parameter)`.
fn fill(template: &str, value: impl Fn(&str) -> String) -> String {
    template
        .split('/')
        .map(|segment| match segment.strip_prefix('{') {
            Some(name) => value(name.trim_end_matches('}')),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

const NIL: &str = "00000000-0000-0000-0000-000000000000";

fn nil_ids(name: &str) -> String {
    match name {
        "name" => "contacts".to_owned(),
        _ => NIL.to_owned(),
    }
}

/// Every filter's `/// METHOD /path` line (the project's convention, one
/// per endpoint) names a documented operation, so a new endpoint cannot
/// be left out of the document.
#[test]
fn every_endpoint_of_the_source_is_documented() {
    let document = tokenward::api::openapi_document();
    let api = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut seen = 0;
    for entry in std::fs::read_dir(&api).unwrap() {
        let file = entry.unwrap().path();
        let source = std::fs::read_to_string(&file).unwrap();
        for line in source.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let [slashes, method, path] = words[..] else {
                continue;
            };
            let any = method == "ANY";
            if slashes != "///" || !(any || METHODS.contains(&method)) || !path.starts_with('/') {
                continue;
            }
            // Served on the metrics listener; on this one a plain 404.
            if path == "/metrics" {
                continue;
            }
            // A tail of any number of segments, one parameter in OpenAPI.
            let path = path.replace("...}", "}");
            let methods: Vec<&str> = if any { METHODS.to_vec() } else { vec![method] };
            for method in methods {
                seen += 1;
                assert!(
                    document["paths"][&path][method.to_ascii_lowercase()].is_object(),
                    "{}: `{method} {path}` is not in the OpenAPI document: declare it with \
                     #[utoipa::path] beside its filter and list it in the file's Doc",
                    file.display()
                );
            }
        }
    }
    assert!(seen >= 30, "only {seen} endpoint lines found");
}

#[test]
fn the_server_serves_the_document_the_code_makes() {
    let server = Server::start();
    let response = server.get("/api/v1/openapi.json").send();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.json(), tokenward::api::openapi_document());
}

/// Every documented (method, path) reaches its filter. Credentials are
/// checked after the path and method match, so an operation that needs one
/// answers `401` with its challenge to a request without, where an
/// unrouted request would be `404` or `405`; the others answer anything but
/// those.
#[test]
fn every_documented_operation_is_routed() {
    let server = Server::start();
    let document = tokenward::api::openapi_document();
    let operations = operations(&document);
    assert!(
        operations.len() >= 30,
        "only {} operations",
        operations.len()
    );
    for op in &operations {
        let path = fill(&op.path, nil_ids);
        let mut request = server.request(&op.method, &path);
        if op.spec.get("requestBody").is_some() {
            request = request.json(json!({}));
        }
        let response = request.send();
        let what = format!("{} {path}: {}", op.method, response.text());
        if needs_credential(&op.spec) {
            assert_eq!(response.status, 401, "{what}");
            assert_eq!(
                response.header("www-authenticate"),
                Some(r#"Bearer realm="tokenward""#),
                "{what}"
            );
        } else {
            assert!(![404, 405].contains(&response.status), "{what}");
        }
    }
}

/// The same with real ids and an admin's session: every operation is
/// routed to a handler that answers for the object named.
#[test]
fn every_documented_operation_answers_for_real_objects() {
    let server = Server::start();
    let admin = admin_with_open_signup(&server);
    let other = sign_up(&server, "other@example.com");
    add_catalog_scope(&server, &admin, &admin.workspace, "contacts");
    let token = plain_token(&server, &admin.session);
    let domain = server
        .post("/api/v1/domains")
        .bearer(&admin.session)
        .json(json!({"name": "example.com"}))
        .send()
        .data(201);
    let ids = |path: &str, name: &str| -> String {
        match (name, path) {
            ("name", _) => "contacts".to_owned(),
            ("account_id", _) => admin.id.clone(),
            (_, p) if p.starts_with("/api/v1/accounts") => other.id.clone(),
            (_, p) if p.starts_with("/api/v1/tokens") => token["id"].as_str().unwrap().into(),
            (_, p) if p.starts_with("/api/v1/domains") => {
                domain["domain"]["id"].as_str().unwrap().into()
            }
            _ => admin.workspace.clone(),
        }
    };
    let mut operations = operations(&tokenward::api::openapi_document());
    // Deletes after the reads and writes of what they delete; signing out,
    // which ends the session the others use, last of all.
    operations.sort_by_key(|op| (op.path == "/api/v1/sessions/current", op.method == "DELETE"));
    for op in &operations {
        let path = fill(&op.path, |name| ids(&op.path, name));
        let mut request = server.request(&op.method, &path);
        if needs_credential(&op.spec) {
            request = request.bearer(&admin.session);
        }
        if op.spec.get("requestBody").is_some() {
            request = request.json(json!({}));
        }
        let response = request.send();
        assert!(
            ![404, 405].contains(&response.status),
            "{} {path}: {} {}",
            op.method,
            response.status,
            response.text()
        );
    }
}

/// Every method a documented path does not document is a `405` whose
/// `Allow` names exactly the documented ones; unknown paths stay `404`.
#[test]
fn undocumented_methods_are_405_with_allow() {
    let server = Server::start();
    let document = tokenward::api::openapi_document();
    for (template, item) in document["paths"].as_object().unwrap() {
        let documented: BTreeSet<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_ascii_uppercase())
            .collect();
        let path = fill(template, nil_ids);
        for method in METHODS.iter().filter(|m| !documented.contains(**m)) {
            let response = server.request(method, &path).send();
            let what = format!("{method} {path}: {}", response.text());
            assert_eq!(response.status, 405, "{what}");
            let allow: BTreeSet<String> = response
                .header("allow")
                .unwrap_or_else(|| panic!("no Allow header: {what}"))
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            assert_eq!(allow, documented, "{what}");
            if *method != "HEAD" {
                response.error(405, "method_not_allowed");
            }
        }
    }
    for (method, path) in [
        ("GET", "/api/v1/nothing"),
        ("POST", "/api/v1/nothing"),
        ("DELETE", "/api/v1/tokens/not-an-id"),
        ("GET", "/api/v1/tokens/not-an-id"),
        ("PUT", "/api/v2/tokens"),
        ("GET", "/api/v1/tokens//"),
    ] {
        server.request(method, path).send().error(404, "not_found");
    }
    // Outside /api every path is the web UI's, which answers GET alone.
    let response = server.post("/some/page").send();
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET"));
}

/// A value of `schema`'s type that the server reads as that type.
fn sample(document: &Value, schema: &Value) -> Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return match name {
            "Timestamp" => json!("2099-01-01T00:00:00Z"),
            "Scope" => json!("tokens"),
            _ => sample(document, &document["components"]["schemas"][name]),
        };
    }
    if let Some(first) = schema["oneOf"].as_array().and_then(|a| a.first()) {
        return sample(document, first);
    }
    if let Some(first) = schema["enum"].as_array().and_then(|a| a.first()) {
        return first.clone();
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds[0].as_str().unwrap().to_owned(),
        kind => kind.as_str().unwrap_or("string").to_owned(),
    };
    match kind.as_str() {
        "boolean" => json!(false),
        "integer" => schema["minimum"]
            .as_i64()
            .map_or(json!(1), |n| json!(n.max(1))),
        "array" => json!([sample(document, &schema["items"])]),
        _ if schema["format"] == "uuid" => json!(NIL),
        _ => json!("x"),
    }
}

/// Each documented request body is what its handler reads: a body with
/// every documented field has no field the handler calls unknown, and one
/// more field is refused by name.
#[test]
fn request_schemas_name_exactly_the_fields_the_handlers_read() {
    let server = Server::start();
    let admin = sign_up(&server, "admin@example.com");
    let token = plain_token(&server, &admin.session);
    let document = tokenward::api::openapi_document();
    let mut checked = 0;
    for op in operations(&document) {
        let Some(reference) =
            op.spec["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
        else {
            continue;
        };
        let name = reference.rsplit('/').next().unwrap();
        let schema = &document["components"]["schemas"][name];
        assert_eq!(
            schema["additionalProperties"], false,
            "{name} must refuse unknown fields"
        );
        let mut body = serde_json::Map::new();
        for (field, property) in schema["properties"].as_object().unwrap() {
            body.insert(field.clone(), sample(&document, property));
        }
        let path = fill(&op.path, |param| match param {
            "name" => "contacts".to_owned(),
            "account_id" => admin.id.clone(),
            _ if op.path.starts_with("/api/v1/tokens") => token["id"].as_str().unwrap().into(),
            _ => admin.workspace.clone(),
        });
        // Verification with a session is refused before the body is read.
        let send = |body: &serde_json::Map<String, Value>| {
            let mut request = server.request(&op.method, &path);
            if needs_credential(&op.spec) {
                request = request.bearer(&admin.session);
            }
            request.json(Value::Object(body.clone())).send()
        };

        let response = send(&body);
        let what = format!("{} {path} with {body:?}", op.method);
        if response.status == 422 {
            let details = response.json()["details"].clone();
            for (field, problem) in details.as_object().unwrap() {
                assert_ne!(
                    problem, "is not a known field",
                    "{what}: the handler does not read the documented field {field}"
                );
            }
        }

        body.insert("unexpected_field".into(), json!(1));
        let refused = send(&body).error(422, "validation_failed");
        assert_eq!(
            refused["details"]["unexpected_field"], "is not a known field",
            "{what}: {refused}"
        );
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} request bodies checked");
}
