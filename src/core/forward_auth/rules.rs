//! The rules document of §10: its grammar, its validation at write time,
//! and the matcher that finds the one rule that decides a request.
//!
//! **Most specific wins, never list order**: a rule naming the request's
//! host comes before host-less ones; then the patterns are compared segment
//! by segment, literal before `*` before `**`, the first difference deciding;
//! then a rule naming the method comes before a `*` one. Validation refuses
//! two rules that could tie (same host, same pattern, a method in common), so
//! sorting the rules once by that order and taking the first that matches is
//! the whole matcher.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::canonical::segments;
use crate::core::scopes::Scope;

/// Field name → problem, for a `422 validation_failed`.
pub type Problems = BTreeMap<String, String>;

/// At most this many rules in one document.
pub const MAX_RULES: usize = 1000;
/// `cache_seconds` is at most a day.
pub const MAX_CACHE_SECONDS: u32 = 86_400;
const ID_MAX: usize = 64;
const HOST_MAX: usize = 253;
const METHOD_MAX: usize = 32;

/// What happens to a request no rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// `403 no_matching_rule`.
    Deny,
    /// Any valid token of the workspace, whatever its scopes.
    Authenticated,
}

impl Fallback {
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::Deny => "deny",
            Fallback::Authenticated => "authenticated",
        }
    }
}

/// What a matching rule asks of the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// A valid token holding every one of these.
    Scopes(Vec<Scope>),
    /// Anyone; the token is not looked at.
    Public,
    /// No one.
    Deny,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`: exactly one segment.
    One,
    /// `**`: zero or more segments, last position only.
    Rest,
}

/// A path pattern: `/`-separated literal segments, `*` and a final `**`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    segments: Vec<Segment>,
}

/// How specific a pattern position is; lower is more specific. `End` (the
/// path must end here) is more specific than `**` (it may go on), and
/// literals and `*` never match where `End` does, so one order serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Literal,
    One,
    End,
    Rest,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err("must start with /".into());
        };
        if rest.is_empty() {
            return Ok(Pattern {
                text: "/".into(),
                segments: Vec::new(),
            });
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            let last = index + 1 == parts.len();
            let segment = match *part {
                "" if last => {
                    return Err("must not end with / (write /contacts, not /contacts/)".into());
                }
                "" => return Err("must not have an empty segment (//)".into()),
                "**" if last => Segment::Rest,
                "**" => return Err("may have ** only as its last segment".into()),
                "*" => Segment::One,
                "." | ".." => return Err("must not have a . or .. segment".into()),
                literal => {
                    check_literal(literal)?;
                    Segment::Literal(literal.to_owned())
                }
            };
            segments.push(segment);
        }
        Ok(Pattern {
            text: text.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the canonical `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        let mut given = segments(path);
        for segment in &self.segments {
            match segment {
                Segment::Rest => return true,
                Segment::One => {
                    if given.next().is_none() {
                        return false;
                    }
                }
                Segment::Literal(literal) => {
                    if given.next() != Some(literal.as_str()) {
                        return false;
                    }
                }
            }
        }
        given.next().is_none()
    }

    fn ranks(&self) -> impl Iterator<Item = Rank> + '_ {
        let ends = !matches!(self.segments.last(), Some(Segment::Rest));
        self.segments
            .iter()
            .map(|segment| match segment {
                Segment::Literal(_) => Rank::Literal,
                Segment::One => Rank::One,
                Segment::Rest => Rank::Rest,
            })
            .chain(ends.then_some(Rank::End))
    }
}

/// A literal segment is matched against decoded path segments, so it is
/// written decoded, and must be something a canonical path can contain.
fn check_literal(literal: &str) -> Result<(), String> {
    if literal.contains('*') {
        return Err(format!(
            "segment {literal:?}: * and ** stand alone as whole segments (no regex or globs inside a segment)"
        ));
    }
    if literal.contains('%') {
        return Err(format!(
            "segment {literal:?}: write segments decoded (a path never matches a %)"
        ));
    }
    if literal.contains(['\\', '#', '?']) || literal.chars().any(char::is_control) {
        return Err(format!(
            "segment {literal:?}: \\, #, ? and control characters cannot appear in a path"
        ));
    }
    if literal.starts_with(".;") || literal.starts_with("..;") {
        return Err(format!(
            "segment {literal:?}: a path segment starting with .; or ..; is always refused"
        ));
    }
    Ok(())
}

/// The methods a rule covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Methods {
    Any,
    /// Upper-case, sorted, without duplicates; never `HEAD` (judged as
    /// `GET`).
    Only(Vec<String>),
}

impl Methods {
    /// `method` as the request sent it, `HEAD` already judged as `GET`.
    /// Compared without regard to case: a service that reads `delete` as
    /// `DELETE` must not find it outside a `DELETE` rule.
    pub fn covers(&self, method: &str) -> bool {
        match self {
            Methods::Any => true,
            Methods::Only(list) => list.iter().any(|m| m.eq_ignore_ascii_case(method)),
        }
    }

    /// Whether two rules with these methods could tie: an explicit method
    /// comes before `*`, so only two `*` or two lists sharing a method do.
    fn ties_with(&self, other: &Methods) -> bool {
        match (self, other) {
            (Methods::Only(a), Methods::Only(b)) => a.iter().any(|m| b.contains(m)),
            (Methods::Any, Methods::Any) => true,
            _ => false,
        }
    }
}

/// Whether `text` is an HTTP method token (RFC 9110 `token`).
pub fn is_method(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= METHOD_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    /// Lower-case host name, matched without the request's port.
    pub host: Option<String>,
    pub methods: Methods,
    pub path: Pattern,
    pub access: Access,
}

impl Rule {
    pub fn matches(&self, host: Option<&str>, method: &str, path: &str) -> bool {
        if let Some(own) = &self.host
            && !host.is_some_and(|given| host_is(given, own))
        {
            return false;
        }
        self.methods.covers(method) && self.path.matches(path)
    }

    /// The order of §10: `Less` when `self` is the more specific.
    fn precedence(&self, other: &Rule) -> Ordering {
        self.host
            .is_none()
            .cmp(&other.host.is_none())
            .then_with(|| self.path.ranks().cmp(other.path.ranks()))
            .then_with(|| {
                matches!(self.methods, Methods::Any).cmp(&matches!(other.methods, Methods::Any))
            })
    }

    fn to_json(&self) -> Value {
        let mut rule = Map::new();
        rule.insert("id".into(), json!(self.id));
        if let Some(host) = &self.host {
            rule.insert("host".into(), json!(host));
        }
        rule.insert(
            "methods".into(),
            match &self.methods {
                Methods::Any => json!(["*"]),
                Methods::Only(list) => json!(list),
            },
        );
        rule.insert("path".into(), json!(self.path.as_str()));
        match &self.access {
            Access::Scopes(scopes) => {
                let names: Vec<String> = scopes.iter().map(Scope::to_string).collect();
                rule.insert("scopes".into(), json!(names));
            }
            Access::Public => {
                rule.insert("public".into(), json!(true));
            }
            Access::Deny => {
                rule.insert("deny".into(), json!(true));
            }
        }
        Value::Object(rule)
    }
}

/// Whether the request's host (`Host` syntax: a name or address, maybe a
/// port) is `rule_host`, ignoring case and port.
fn host_is(given: &str, rule_host: &str) -> bool {
    let given = given.trim();
    let name = if let Some(bracketed) = given.strip_prefix('[') {
        // `[v6]` or `[v6]:port`: compare with the brackets the rule keeps.
        match bracketed.find(']') {
            Some(end) => &given[..end + 2],
            None => given,
        }
    } else {
        match given.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => given,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case(rule_host)
}

/// A workspace's whole rules document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleDocument {
    pub default: Fallback,
    pub cors_preflight: bool,
    pub cache_seconds: u32,
    pub rules: Vec<Rule>,
}

impl Default for RuleDocument {
    /// What a workspace that never stored rules has: nothing is allowed.
    fn default() -> Self {
        RuleDocument {
            default: Fallback::Deny,
            cors_preflight: true,
            cache_seconds: 0,
            rules: Vec::new(),
        }
    }
}

impl RuleDocument {
    /// Reads and validates a document; every problem is reported, keyed by
    /// its place (`rules[2].path`). Absent top-level settings take the
    /// defaults; `rules` is required. Scopes are checked for their grammar
    /// here and for their existence in the workspace by the store.
    pub fn from_json(value: &Value) -> Result<RuleDocument, Problems> {
        let mut problems = Problems::new();
        let Value::Object(map) = value else {
            problems.insert("body".into(), "must be a JSON object".into());
            return Err(problems);
        };
        let mut document = RuleDocument::default();
        for (key, value) in map {
            match key.as_str() {
                "default" => match value.as_str() {
                    Some("deny") => document.default = Fallback::Deny,
                    Some("authenticated") => document.default = Fallback::Authenticated,
                    _ => {
                        problems
                            .insert(key.clone(), "must be \"deny\" or \"authenticated\"".into());
                    }
                },
                "cors_preflight" => match value.as_bool() {
                    Some(on) => document.cors_preflight = on,
                    None => {
                        problems.insert(key.clone(), "must be true or false".into());
                    }
                },
                "cache_seconds" => match value.as_u64() {
                    Some(n) if n <= u64::from(MAX_CACHE_SECONDS) => {
                        document.cache_seconds = n as u32;
                    }
                    _ => {
                        problems.insert(
                            key.clone(),
                            format!("must be a whole number from 0 to {MAX_CACHE_SECONDS}"),
                        );
                    }
                },
                "rules" => match value.as_array() {
                    Some(list) if list.len() > MAX_RULES => {
                        problems
                            .insert(key.clone(), format!("must have at most {MAX_RULES} rules"));
                    }
                    Some(list) => {
                        for (index, item) in list.iter().enumerate() {
                            if let Some(rule) = parse_rule(item, index, &mut problems) {
                                document.rules.push(rule);
                            }
                        }
                    }
                    None => {
                        problems.insert(key.clone(), "must be a list of rules".into());
                    }
                },
                _ => {
                    problems.insert(key.clone(), "is not a known field".into());
                }
            }
        }
        if !map.contains_key("rules") {
            problems.insert(
                "rules".into(),
                "is required (an empty list is allowed)".into(),
            );
        }
        if problems.is_empty() {
            find_clashes(&document.rules, &mut problems);
        }
        if problems.is_empty() {
            Ok(document)
        } else {
            Err(problems)
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "default": self.default.as_str(),
            "cors_preflight": self.cors_preflight,
            "cache_seconds": self.cache_seconds,
            "rules": self.rules.iter().map(Rule::to_json).collect::<Vec<_>>(),
        })
    }
}

fn parse_rule(value: &Value, index: usize, problems: &mut Problems) -> Option<Rule> {
    let at = |field: &str| format!("rules[{index}].{field}");
    let Value::Object(map) = value else {
        problems.insert(format!("rules[{index}]"), "must be an object".into());
        return None;
    };
    let before = problems.len();
    let mut id = None;
    let mut host = None;
    let mut methods = Methods::Any;
    let mut path = None;
    let mut accesses = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            "id" => match value.as_str().map(check_id) {
                Some(Ok(text)) => id = Some(text.to_owned()),
                Some(Err(problem)) => {
                    problems.insert(at(key), problem.into());
                }
                None => {
                    problems.insert(at(key), "must be a string".into());
                }
            },
            "host" if value.is_null() => {}
            "host" => match value.as_str().map(parse_host) {
                Some(Ok(name)) => host = Some(name),
                Some(Err(problem)) => {
                    problems.insert(at(key), problem.into());
                }
                None => {
                    problems.insert(at(key), "must be a string".into());
                }
            },
            "methods" => match parse_methods(value) {
                Ok(parsed) => methods = parsed,
                Err(problem) => {
                    problems.insert(at(key), problem);
                }
            },
            "path" => match value.as_str().map(Pattern::parse) {
                Some(Ok(pattern)) => path = Some(pattern),
                Some(Err(problem)) => {
                    problems.insert(at(key), problem);
                }
                None => {
                    problems.insert(at(key), "must be a string".into());
                }
            },
            "scopes" => match parse_scopes(value) {
                Ok(scopes) => accesses.push(Access::Scopes(scopes)),
                Err(problem) => {
                    problems.insert(at(key), problem);
                }
            },
            "public" | "deny" => match value {
                Value::Bool(true) if key == "public" => accesses.push(Access::Public),
                Value::Bool(true) => accesses.push(Access::Deny),
                _ => {
                    problems.insert(at(key), "must be true when present".into());
                }
            },
            _ => {
                problems.insert(at(key), "is not a known field".into());
            }
        }
    }
    if id.is_none() && !map.contains_key("id") {
        problems.insert(at("id"), "is required".into());
    }
    if path.is_none() && !map.contains_key("path") {
        problems.insert(at("path"), "is required".into());
    }
    let has_access =
        map.contains_key("scopes") || map.contains_key("public") || map.contains_key("deny");
    if !has_access {
        problems.insert(
            format!("rules[{index}]"),
            "needs one of scopes, public: true or deny: true".into(),
        );
    } else if accesses.len() > 1 {
        problems.insert(
            format!("rules[{index}]"),
            "must have only one of scopes, public: true or deny: true".into(),
        );
    }
    if problems.len() > before {
        return None;
    }
    Some(Rule {
        id: id?,
        host,
        methods,
        path: path?,
        access: accesses.pop()?,
    })
}

fn check_id(text: &str) -> Result<&str, &'static str> {
    let valid = !text.is_empty()
        && text.len() <= ID_MAX
        && text.as_bytes()[0].is_ascii_alphanumeric()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(text)
    } else {
        Err("must be 1 to 64 letters, digits, -, _ or ., starting with a letter or digit")
    }
}

/// A host name or IP address, as a rule names it: lower-cased, no port.
fn parse_host(text: &str) -> Result<String, &'static str> {
    let host = text.trim().to_ascii_lowercase();
    let bracketed_v6 = host.starts_with('[')
        && host.ends_with(']')
        && host[1..host.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .is_ok();
    let name = !host.is_empty()
        && host.len() <= HOST_MAX
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if bracketed_v6 || name {
        Ok(host)
    } else {
        Err("must be a host name such as api.example.com, without scheme, port or path")
    }
}

fn parse_methods(value: &Value) -> Result<Methods, String> {
    let Some(items) = value.as_array() else {
        return Err("must be a list of methods such as [\"GET\"], or [\"*\"]".into());
    };
    if items.is_empty() {
        return Err("must name at least one method, or \"*\" for any".into());
    }
    let mut methods = Vec::with_capacity(items.len());
    for item in items {
        let Some(method) = item.as_str() else {
            return Err("must be a list of strings".into());
        };
        match method {
            "*" if items.len() == 1 => return Ok(Methods::Any),
            "*" => return Err("\"*\" stands alone: it already covers every method".into()),
            "HEAD" => {
                return Err("HEAD is judged as GET: list GET, which covers HEAD".into());
            }
            m if is_method(m) && !m.bytes().any(|b| b.is_ascii_lowercase()) => {
                methods.push(m.to_owned());
            }
            m => {
                return Err(format!(
                    "{m:?} is not an upper-case HTTP method such as GET"
                ));
            }
        }
    }
    methods.sort();
    methods.dedup();
    Ok(Methods::Only(methods))
}

fn parse_scopes(value: &Value) -> Result<Vec<Scope>, String> {
    let Some(items) = value.as_array() else {
        return Err("must be a list of scopes".into());
    };
    if items.is_empty() {
        return Err("must name at least one scope (use public: true for no token at all)".into());
    }
    let mut scopes = Vec::with_capacity(items.len());
    for item in items {
        let Some(text) = item.as_str() else {
            return Err("must be a list of strings".into());
        };
        match text.parse::<Scope>() {
            Ok(scope) => scopes.push(scope),
            Err(_) => {
                return Err(format!(
                    "{text:?} is not a scope: use <resource> or <resource>:read"
                ));
            }
        }
    }
    Ok(crate::core::scopes::normalize(scopes))
}

/// Ids must be unique, and no two rules may match the same request with
/// the same precedence: the same host, the same pattern and a method named
/// by both (or `*` in both) would leave the choice to list order.
fn find_clashes(rules: &[Rule], problems: &mut Problems) {
    for (index, rule) in rules.iter().enumerate() {
        for (earlier_index, earlier) in rules[..index].iter().enumerate() {
            if earlier.id == rule.id {
                problems.insert(
                    format!("rules[{index}].id"),
                    format!("is already the id of rules[{earlier_index}]"),
                );
                break;
            }
            if earlier.host == rule.host
                && earlier.path.segments == rule.path.segments
                && earlier.methods.ties_with(&rule.methods)
            {
                problems.insert(
                    format!("rules[{index}]"),
                    format!(
                        "duplicates rules[{earlier_index}] ({}): same host, same path and a method in common; merge them",
                        earlier.id
                    ),
                );
                break;
            }
        }
    }
}

/// A document ready to answer: its rules in precedence order.
#[derive(Clone, Debug)]
pub struct CompiledRules {
    document: RuleDocument,
    /// Indexes into `document.rules`, most specific first.
    order: Vec<usize>,
}

impl CompiledRules {
    pub fn new(document: RuleDocument) -> Self {
        let mut order: Vec<usize> = (0..document.rules.len()).collect();
        order.sort_by(|&a, &b| document.rules[a].precedence(&document.rules[b]));
        CompiledRules { document, order }
    }

    pub fn document(&self) -> &RuleDocument {
        &self.document
    }

    /// The rule that decides `method` on the canonical `path` at `host`,
    /// with its index in the document. `method` is upper-case with `HEAD`
    /// already judged as `GET`.
    pub fn winner(&self, host: Option<&str>, method: &str, path: &str) -> Option<(usize, &Rule)> {
        self.order
            .iter()
            .map(|&index| (index, &self.document.rules[index]))
            .find(|(_, rule)| rule.matches(host, method, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(value: Value) -> RuleDocument {
        RuleDocument::from_json(&value).unwrap_or_else(|p| panic!("{value} refused: {p:?}"))
    }

    fn problems(value: Value) -> Problems {
        RuleDocument::from_json(&value).expect_err("accepted")
    }

    fn rules(list: Value) -> CompiledRules {
        CompiledRules::new(document(json!({"rules": list})))
    }

    fn winner<'a>(
        rules: &'a CompiledRules,
        host: Option<&str>,
        method: &str,
        path: &str,
    ) -> Option<&'a str> {
        rules
            .winner(host, method, path)
            .map(|(_, rule)| rule.id.as_str())
    }

    #[test]
    fn patterns_match_segments() {
        let cases = [
            ("/", "/", true),
            ("/", "/a", false),
            ("/**", "/", true),
            ("/**", "/a/b/c", true),
            ("/contacts", "/contacts", true),
            ("/contacts", "/contacts/1", false),
            ("/contacts/*", "/contacts", false),
            ("/contacts/*", "/contacts/1", true),
            ("/contacts/*", "/contacts/1/notes", false),
            ("/contacts/**", "/contacts", true),
            ("/contacts/**", "/contacts/1/notes", true),
            ("/contacts/**", "/contactsx", false),
            ("/*/notes", "/1/notes", true),
            ("/*/notes", "/notes", false),
            ("/Contacts", "/contacts", false),
            ("/caf\u{e9}", "/caf\u{e9}", true),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(
                Pattern::parse(pattern).unwrap().matches(path),
                want,
                "{pattern} on {path}"
            );
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "",
            "contacts",
            "/contacts/",
            "/a//b",
            "/**/a",
            "/a/**/b",
            "/a*",
            "/*a",
            "/a/***",
            "/%2e",
            "/a/../b",
            "/.",
            "/a#b",
            "/a?b",
            "/a\\b",
            "/..;x",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn most_specific_wins_never_list_order() {
        let list = json!([
            {"id": "everything", "methods": ["*"], "path": "/**", "scopes": ["a"]},
            {"id": "contacts-any", "methods": ["*"], "path": "/contacts/**", "scopes": ["a"]},
            {"id": "contacts-one", "methods": ["*"], "path": "/contacts/*", "scopes": ["a"]},
            {"id": "contacts-get", "methods": ["GET"], "path": "/contacts/*", "scopes": ["a"]},
            {"id": "contacts-exact", "methods": ["*"], "path": "/contacts", "scopes": ["a"]},
            {"id": "notes", "methods": ["*"], "path": "/*/notes", "scopes": ["a"]},
            {"id": "me", "methods": ["*"], "path": "/contacts/me", "public": true},
            {"id": "host-all", "host": "admin.example.com", "methods": ["*"], "path": "/**", "deny": true},
        ]);
        let forward = rules(list.clone());
        let mut reversed_list = list.as_array().unwrap().clone();
        reversed_list.reverse();
        let reversed = rules(Value::Array(reversed_list));
        let cases = [
            (None, "GET", "/contacts/42", Some("contacts-get")),
            (None, "POST", "/contacts/42", Some("contacts-one")),
            (None, "GET", "/contacts/me", Some("me")),
            (None, "GET", "/contacts", Some("contacts-exact")),
            (None, "GET", "/contacts/42/notes", Some("contacts-any")),
            (None, "GET", "/x/notes", Some("notes")),
            (None, "GET", "/x/y", Some("everything")),
            (None, "GET", "/", Some("everything")),
            (
                Some("admin.example.com"),
                "GET",
                "/contacts/me",
                Some("host-all"),
            ),
            (
                Some("ADMIN.example.com:8443"),
                "GET",
                "/x",
                Some("host-all"),
            ),
            (Some("api.example.com"), "GET", "/contacts/me", Some("me")),
        ];
        for (host, method, path, want) in cases {
            assert_eq!(
                winner(&forward, host, method, path),
                want,
                "{method} {path} at {host:?}"
            );
            assert_eq!(
                winner(&reversed, host, method, path),
                want,
                "reversed: {method} {path}"
            );
        }
    }

    #[test]
    fn the_first_difference_decides() {
        // `/a/*/c` is more specific than `/*/b/c` at the first segment, even
        // though the second has more literals.
        let r = rules(json!([
            {"id": "later-literals", "path": "/*/b/c", "scopes": ["x"]},
            {"id": "first-literal", "path": "/a/*/c", "scopes": ["x"]},
        ]));
        assert_eq!(winner(&r, None, "GET", "/a/b/c"), Some("first-literal"));
        let r = rules(json!([
            {"id": "rest", "path": "/a/**", "scopes": ["x"]},
            {"id": "one", "path": "/a/*/**", "scopes": ["x"]},
        ]));
        assert_eq!(winner(&r, None, "GET", "/a/b"), Some("one"));
        assert_eq!(winner(&r, None, "GET", "/a"), Some("rest"));
    }

    #[test]
    fn no_rule_matches_outside_the_patterns() {
        let r = rules(
            json!([{"id": "c", "methods": ["GET"], "path": "/contacts/**", "scopes": ["x"]}]),
        );
        assert_eq!(winner(&r, None, "DELETE", "/contacts/1"), None);
        assert_eq!(winner(&r, None, "GET", "/admin"), None);
        let r =
            rules(json!([{"id": "h", "host": "api.example.com", "path": "/**", "public": true}]));
        assert_eq!(winner(&r, None, "GET", "/"), None);
        assert_eq!(winner(&r, Some("other.example.com"), "GET", "/"), None);
        assert_eq!(winner(&r, Some("api.example.com."), "GET", "/"), Some("h"));
    }

    #[test]
    fn documents_round_trip_and_default() {
        let full = json!({
            "default": "authenticated", "cors_preflight": false, "cache_seconds": 30,
            "rules": [
                {"id": "read", "host": "api.example.com", "methods": ["GET"], "path": "/contacts/**", "scopes": ["contacts:read"]},
                {"id": "health", "methods": ["*"], "path": "/healthz", "public": true},
                {"id": "admin", "methods": ["DELETE", "POST"], "path": "/admin/**", "deny": true},
            ]
        });
        assert_eq!(document(full.clone()).to_json(), full);
        let minimal = document(json!({"rules": []}));
        assert_eq!(minimal, RuleDocument::default());
        assert_eq!(
            minimal.to_json(),
            json!({"default": "deny", "cors_preflight": true, "cache_seconds": 0, "rules": []})
        );
        // Methods default to any, are sorted and de-duplicated.
        let d = document(json!({"rules": [
            {"id": "a", "path": "/a", "public": true},
            {"id": "b", "methods": ["POST", "GET", "POST"], "path": "/b", "public": true},
        ]}));
        assert_eq!(d.rules[0].methods, Methods::Any);
        assert_eq!(
            d.rules[1].methods,
            Methods::Only(vec!["GET".into(), "POST".into()])
        );
        assert_eq!(d.rules[1].host, None);
    }

    #[test]
    fn every_problem_is_named_by_its_place() {
        let got = problems(json!({
            "default": "allow",
            "cors_preflight": "yes",
            "cache_seconds": 86_401,
            "extra": 1,
            "rules": [
                {"id": "", "path": "contacts", "scopes": []},
                {"id": "ok", "methods": ["get"], "path": "/a", "public": false},
                {"id": "ok2", "methods": ["HEAD"], "path": "/b", "deny": true, "public": true},
                {"id": "ok3", "host": "https://x", "path": "/c", "scopes": ["Bad"], "weight": 3},
                {"path": "/d"},
                "not an object",
            ]
        }));
        let keys: Vec<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "cache_seconds",
                "cors_preflight",
                "default",
                "extra",
                "rules[0].id",
                "rules[0].path",
                "rules[0].scopes",
                "rules[1].methods",
                "rules[1].public",
                "rules[2]",
                "rules[2].methods",
                "rules[3].host",
                "rules[3].scopes",
                "rules[3].weight",
                "rules[4]",
                "rules[4].id",
                "rules[5]",
            ]
        );
        assert!(problems(json!({})).contains_key("rules"));
        assert!(problems(json!([])).contains_key("body"));
    }

    #[test]
    fn duplicates_are_refused() {
        let got = problems(json!({"rules": [
            {"id": "a", "methods": ["GET"], "path": "/x/*", "public": true},
            {"id": "a", "methods": ["GET"], "path": "/y", "public": true},
            {"id": "c", "methods": ["GET", "POST"], "path": "/x/*", "deny": true},
            {"id": "d", "methods": ["*"], "path": "/z", "deny": true},
            {"id": "e", "path": "/z", "deny": true},
        ]}));
        assert!(got["rules[1].id"].contains("rules[0]"), "{got:?}");
        assert!(got["rules[2]"].contains("rules[0]"), "{got:?}");
        assert!(got["rules[4]"].contains("rules[3]"), "{got:?}");
        // Same pattern, other methods or another host: no clash.
        document(json!({"rules": [
            {"id": "a", "methods": ["GET"], "path": "/x/*", "public": true},
            {"id": "b", "methods": ["POST"], "path": "/x/*", "deny": true},
            {"id": "c", "host": "h.example.com", "methods": ["GET"], "path": "/x/*", "deny": true},
            {"id": "d", "methods": ["*"], "path": "/x/**", "deny": true},
            {"id": "e", "methods": ["*"], "path": "/x/*", "deny": true},
        ]}));
    }

    #[test]
    fn hosts_are_names_without_port() {
        for good in [
            "api.example.com",
            "API.Example.com",
            "localhost",
            "127.0.0.1",
            "[::1]",
        ] {
            assert!(parse_host(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "api.example.com:8080",
            "https://api.example.com",
            "a..b",
            "-a.com",
            "a/b",
            "[nope]",
        ] {
            assert!(parse_host(bad).is_err(), "{bad}");
        }
        assert!(host_is("[::1]:8080", "[::1]"));
        assert!(host_is("LOCALHOST:80", "localhost"));
        assert!(!host_is("localhost.evil.com", "localhost"));
    }
}
