//! What each fuzz target checks on one input. The targets in
//! `fuzz_targets/` and the corpus replay in `tests/fuzz_corpus.rs` include
//! this file with `#[path]`, so there is one copy of every check.
//!
//! Every check takes arbitrary bytes, must never panic on its own account,
//! and panics with a message naming the broken property otherwise.
#![allow(dead_code)]

use std::collections::BTreeSet;

use serde_json::Value;
use tokenward::api::fuzzing::{Fields, from_bytes, just_a_token};
use tokenward::core::scopes::{self, Scope};
use tokenward::core::token_format::{self, BODY_LEN, Malformed, Prefix, RANDOM_LEN};

/// The token parser: `check` never panics; what it accepts has the shape of
/// §2.2; a token built from any valid prefix and any random part passes, and
/// fails as soon as one character of its body changes; a generated token
/// passes and its hint is its prefix and its last four characters.
pub fn token_format(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(prefix) = token_format::check(&text) {
        assert_eq!(prefix.len(), text.len() - BODY_LEN, "{text:?}");
        assert!(text.starts_with(prefix), "{text:?}");
        assert!(
            Prefix::parse(prefix).is_some(),
            "{text:?}: prefix {prefix:?}"
        );
        let (random, sum) = text.as_bytes()[prefix.len()..].split_at(RANDOM_LEN);
        assert!(random.iter().all(u8::is_ascii_alphanumeric), "{text:?}");
        assert_eq!(token_format::checksum(random), sum, "{text:?}");
    }

    // The input read as `<prefix>_<anything>`: the prefix as it is, the rest
    // as the random part (its letters and digits, padded with `0`).
    let (prefix, rest) = match text.find('_') {
        Some(end) => text.split_at(end + 1),
        None => (&*text, ""),
    };
    let random: Vec<u8> = rest
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .chain(std::iter::repeat(b'0'))
        .take(RANDOM_LEN)
        .collect();
    let mut built = prefix.as_bytes().to_vec();
    built.extend_from_slice(&random);
    built.extend_from_slice(&token_format::checksum(&random));
    let built = String::from_utf8(built).expect("a str and ASCII are UTF-8");
    let valid_prefix = Prefix::parse(prefix);
    match (&valid_prefix, token_format::check(&built)) {
        (Some(p), Ok(checked)) => assert_eq!(checked, p.as_str(), "{built:?}"),
        (Some(_), Err(err)) => panic!("{built:?} has a valid prefix and checksum: {err:?}"),
        (None, Ok(_)) => panic!("{built:?} passed with the invalid prefix {prefix:?}"),
        (None, Err(Malformed::Length | Malformed::Prefix)) => {}
        (None, Err(err)) => panic!("{built:?}: the prefix is wrong, not the body: {err:?}"),
    }

    let Some(prefix) = valid_prefix else { return };
    // One character of the body replaced by another letter or digit.
    let position = prefix.as_str().len() + data.len() % BODY_LEN;
    let mut changed = built.clone().into_bytes();
    changed[position] = if changed[position] == b'z' {
        b'0'
    } else if changed[position] == b'9' {
        b'A'
    } else if changed[position] == b'Z' {
        b'a'
    } else {
        changed[position] + 1
    };
    let changed = String::from_utf8(changed).expect("ASCII");
    assert_eq!(
        token_format::check(&changed),
        Err(Malformed::Checksum),
        "{changed:?}, one character away from {built:?}"
    );

    let secret = token_format::generate(&prefix).expect("the system's random source works");
    let token = secret.expose();
    assert_eq!(token_format::check(token), Ok(prefix.as_str()));
    assert_eq!(
        secret.hint(),
        format!("{}…{}", prefix.as_str(), &token[token.len() - 4..])
    );
}

/// The JSON body reader, as the server runs it on a request body: it accepts
/// exactly blank bodies and JSON objects, and its accessors (string, scopes,
/// integer, boolean) take each field as documented, never panicking;
/// `finish` fails exactly when some field was wrong or left untaken.
pub fn body(data: &[u8]) {
    let blank = data.iter().all(u8::is_ascii_whitespace);
    let object = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };

    let wrong_type = from_bytes(Some("text/plain"), data, false);
    assert_eq!(wrong_type.is_ok(), blank, "text/plain body {data:?}");
    for required in [true, false] {
        match from_bytes(Some("application/json; charset=utf-8"), data, required) {
            Ok(fields) => {
                assert!(object.is_some() || (blank && !required), "{data:?}");
                take_every_field(fields, object.clone().unwrap_or_default());
            }
            Err(err) => {
                assert!(object.is_none(), "an object was refused: {err}");
                assert!(matches!(err.status(), 400 | 422), "{err:?}");
                assert!(!err.message().is_empty());
            }
        }
    }

    // The verify route's shortcut takes only what the reader takes as
    // that one token and nothing else.
    if let Some(token) = just_a_token(Some("application/json"), data) {
        let read = from_bytes(Some("application/json"), data, true);
        let Ok(mut fields) = read else {
            panic!("the shortcut took a body the reader refuses: {data:?}");
        };
        assert_eq!(fields.required_string("token").as_deref(), Some(token));
        assert!(
            fields.finish().is_ok(),
            "the shortcut took more than a token: {data:?}"
        );
    }
}

/// Which accessor a key gets: chosen from the key, so the fuzzer reaches
/// each one with any value.
#[derive(Clone, Copy, Debug)]
enum Accessor {
    String,
    RequiredString,
    NullableString,
    Boolean,
    Integer,
    Scopes,
    RequiredScopes,
    /// Left untaken: an unknown field.
    None,
}

const ACCESSORS: [Accessor; 8] = [
    Accessor::String,
    Accessor::RequiredString,
    Accessor::NullableString,
    Accessor::Boolean,
    Accessor::Integer,
    Accessor::Scopes,
    Accessor::RequiredScopes,
    Accessor::None,
];

fn accessor_for(key: &str) -> Accessor {
    let sum = key
        .bytes()
        .fold(0usize, |sum, b| sum.wrapping_add(usize::from(b)));
    ACCESSORS[sum % ACCESSORS.len()]
}

/// Takes every field of `object` (and some absent ones) through `fields`,
/// predicting from the value alone what each accessor returns and whether it
/// records a problem.
fn take_every_field(mut fields: Fields, object: serde_json::Map<String, Value>) {
    let mut problems = BTreeSet::new();
    let absent: Vec<(String, Option<Value>)> = ["absent", "absent-required", "absent-scopes"]
        .into_iter()
        .filter(|key| !object.contains_key(*key))
        .map(|key| (key.to_owned(), None))
        .collect();
    let present = object.into_iter().map(|(key, value)| (key, Some(value)));
    for (key, value) in present.chain(absent) {
        let accessor = match key.as_str() {
            "absent" => Accessor::String,
            "absent-required" => Accessor::RequiredString,
            "absent-scopes" => Accessor::RequiredScopes,
            _ => accessor_for(&key),
        };
        if !take_one(&mut fields, &key, value.as_ref(), accessor) {
            problems.insert(key);
        }
    }
    match fields.finish() {
        Ok(()) => assert!(problems.is_empty(), "no problem reported for {problems:?}"),
        Err(err) => {
            let reported: BTreeSet<String> = err
                .details()
                .expect("a validation error names its fields")
                .keys()
                .cloned()
                .collect();
            assert_eq!(reported, problems, "{err}");
            assert_eq!(err.status(), 422);
        }
    }
}

/// Takes `key` with `accessor`, checks the result against `value`, and says
/// whether the field was acceptable.
fn take_one(fields: &mut Fields, key: &str, value: Option<&Value>, accessor: Accessor) -> bool {
    let present = value.filter(|v| !v.is_null());
    let text = present.and_then(Value::as_str);
    match accessor {
        Accessor::String => {
            assert_eq!(fields.string(key).as_deref(), text, "{key}: {value:?}");
            present.is_none() || text.is_some()
        }
        Accessor::RequiredString => {
            assert_eq!(fields.required_string(key).as_deref(), text, "{key}");
            text.is_some()
        }
        Accessor::NullableString => {
            let expected = match value {
                None => None,
                Some(Value::Null) => Some(None),
                Some(Value::String(s)) => Some(Some(s.as_str())),
                Some(_) => None,
            };
            let got = fields.nullable_string(key);
            assert_eq!(got.as_ref().map(Option::as_deref), expected, "{key}");
            value.is_none_or(|v| v.is_null() || v.is_string())
        }
        Accessor::Boolean => {
            let expected = present.and_then(Value::as_bool);
            assert_eq!(fields.boolean(key), expected, "{key}: {value:?}");
            present.is_none() || expected.is_some()
        }
        Accessor::Integer => {
            let expected = present.and_then(Value::as_i64);
            assert_eq!(fields.integer(key), expected, "{key}: {value:?}");
            present.is_none() || expected.is_some()
        }
        Accessor::Scopes | Accessor::RequiredScopes => {
            let expected = present.map(expected_scopes);
            let got = if matches!(accessor, Accessor::Scopes) {
                fields.scopes(key)
            } else {
                fields.required_scopes(key)
            };
            assert_eq!(got, expected.clone().flatten(), "{key}: {value:?}");
            match expected {
                None => matches!(accessor, Accessor::Scopes),
                Some(parsed) => parsed.is_some(),
            }
        }
        Accessor::None => false,
    }
}

/// What `Fields::scopes` must make of a present value: a list of strings
/// that all parse, normalised; `None` for anything else.
fn expected_scopes(value: &Value) -> Option<Vec<Scope>> {
    let parsed: Option<Vec<Scope>> = value
        .as_array()?
        .iter()
        .map(|item| item.as_str()?.parse().ok())
        .collect();
    parsed.map(scopes::normalize)
}

/// The scope grammar: whatever parses prints back as the same text (and
/// serialises to it); the stored form round-trips; `decode` keeps exactly
/// the words that parse; `normalize` is idempotent, keeps one scope per
/// resource at the highest access, and loses no right.
pub fn scopes(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(scope) = text.parse::<Scope>() {
        assert_eq!(scope.to_string(), text);
        assert_eq!(serde_json::to_value(&scope).unwrap(), Value::from(&*text));
    }

    let words: Vec<Scope> = text
        .split_ascii_whitespace()
        .filter_map(|word| {
            let scope = word.parse::<Scope>().ok()?;
            assert_eq!(scope.to_string(), word);
            Some(scope)
        })
        .collect();
    assert_eq!(scopes::decode(&text), words);
    assert_eq!(scopes::decode(&scopes::encode(&words)), words);

    let normal = scopes::normalize(words.clone());
    assert_eq!(scopes::normalize(normal.clone()), normal, "{text:?}");
    assert_eq!(scopes::decode(&scopes::encode(&normal)), normal);
    let spelled: Vec<String> = normal.iter().map(Scope::to_string).collect();
    assert!(spelled.is_sorted(), "{spelled:?}");
    let resources: BTreeSet<_> = normal.iter().map(|s| &s.resource).collect();
    assert_eq!(resources.len(), normal.len(), "{spelled:?}");
    for scope in &words {
        assert!(
            scopes::holds(&normal, scope),
            "{scope} lost from {spelled:?}"
        );
    }
    for scope in &normal {
        assert!(words.contains(scope), "{scope} was not given: {text:?}");
    }
}

/// The forward-auth canonical path (§10): `canonicalize` never panics; what
/// it accepts starts with `/`, has no empty, `.` or `..` segment and none
/// starting `.;` or `..;`, is its own canonical form, and decides as its
/// percent-encoded twin does.
pub fn canonical_path(data: &[u8]) {
    use tokenward::core::forward_auth::canonical::canonicalize;
    let Ok(target) = canonicalize(data) else {
        return;
    };
    let path = target.path.as_ref();
    assert!(path.starts_with('/'), "{path:?} does not start with /");
    if path != "/" {
        for segment in path[1..].split('/') {
            assert!(
                !segment.is_empty() && segment != "." && segment != "..",
                "{path:?} keeps segment {segment:?}"
            );
            assert!(
                !segment.starts_with(".;") && !segment.starts_with("..;"),
                "{path:?} keeps segment {segment:?}"
            );
        }
    }
    // A canonical path is a fixed point, unless it holds what must stay
    // encoded to be read again (`%`, `?`, `#`, or non-ASCII raw bytes).
    if !path
        .bytes()
        .any(|b| matches!(b, b'%' | b'?' | b'#') || !b.is_ascii())
    {
        let again = canonicalize(path.as_bytes()).expect("a canonical path is canonical");
        assert_eq!(again.path.as_ref(), path, "canonicalising twice changed it");
        // Its percent-encoded twin (every unreserved letter escaped) decides
        // alike.
        let twin: String = path
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    format!("%{:02X}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect();
        let decided = canonicalize(twin.as_bytes()).expect("the twin is canonical too");
        assert_eq!(decided.path.as_ref(), path, "the encoded twin differs");
    }
}
