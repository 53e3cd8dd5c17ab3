//! Forward-auth (§10): may this request, as a reverse proxy describes it,
//! go through? Pure: the canonical path, the rules and their matcher, and
//! the plan of what a request needs (nothing, a token, scopes) before the
//! transport looks its token up.

pub mod canonical;
pub mod rules;

use std::borrow::Cow;

use crate::core::scopes::{self, Scope};
use crate::core::time::Timestamp;
use crate::core::token_format::is_visible_ascii;

pub use canonical::{InvalidPath, Target, canonicalize};
pub use rules::{Access, CompiledRules, Fallback, Rule, RuleDocument};

/// The method-override headers a service behind the proxy may honour.
pub const OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];
/// The request's own method, three headers and `?_method=`.
const MAX_METHODS: usize = 5;

/// A request as the proxy described it. `path` is canonical.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Method overrides (headers, then `?_method=`), as sent.
    pub overrides: [Option<&'a str>; 4],
    pub host: Option<&'a str>,
    pub path: &'a str,
}

/// What a request needs to pass, when no rule refuses it outright.
#[derive(Clone, Debug)]
pub struct Plan<'r> {
    /// The rule that decided the request's own method, with its index in
    /// the document; `None` when the default did.
    pub rule: Option<(usize, &'r Rule)>,
    /// Whether a valid token of the workspace is needed.
    pub token: bool,
    needs: [&'r [Scope]; MAX_METHODS],
    count: usize,
}

impl<'r> Plan<'r> {
    /// Every scope the token must hold, for each method judged.
    pub fn scopes(&self) -> impl Iterator<Item = &'r Scope> + '_ {
        self.needs[..self.count].iter().flat_map(|list| list.iter())
    }

    /// The first required scope `held` does not satisfy.
    pub fn first_missing(&self, held: &[Scope]) -> Option<&'r Scope> {
        self.scopes().find(|needed| !scopes::holds(held, needed))
    }

    /// The required scopes, each once, in the order the rules name them.
    pub fn required_scopes(&self) -> Vec<&'r Scope> {
        let mut list: Vec<&Scope> = Vec::new();
        for scope in self.scopes() {
            if !list.contains(&scope) {
                list.push(scope);
            }
        }
        list
    }
}

/// Why a request is refused before any token is looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal<'r> {
    /// A `deny` rule matched (for the method or one of its overrides).
    Denied(usize, &'r Rule),
    /// No rule matched and the default is `deny`.
    NoMatchingRule,
    /// A method override that is not a method.
    BadOverride,
}

/// `HEAD` is judged as `GET`; every method compares upper-case.
fn judged(method: &str) -> &str {
    if method.eq_ignore_ascii_case("HEAD") {
        "GET"
    } else {
        method
    }
}

/// What `request` needs under `rules`: its own method and each override
/// that differs from it must all pass (§10).
pub fn plan<'r>(rules: &'r CompiledRules, request: &Request<'_>) -> Result<Plan<'r>, Refusal<'r>> {
    let mut methods = [""; MAX_METHODS];
    methods[0] = judged(request.method);
    let mut len = 1;
    for value in request.overrides.iter().flatten() {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        if !rules::is_method(value) {
            return Err(Refusal::BadOverride);
        }
        let method = judged(value);
        if !methods[..len]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method))
        {
            methods[len] = method;
            len += 1;
        }
    }
    let mut plan = Plan {
        rule: None,
        token: false,
        needs: [&[]; MAX_METHODS],
        count: 0,
    };
    for (position, method) in methods[..len].iter().enumerate() {
        let winner = rules.winner(request.host, method, request.path);
        if position == 0 {
            plan.rule = winner;
        }
        match winner {
            Some((index, rule)) => match &rule.access {
                Access::Deny => return Err(Refusal::Denied(index, rule)),
                Access::Public => {}
                Access::Scopes(scopes) => {
                    plan.token = true;
                    plan.needs[plan.count] = scopes;
                    plan.count += 1;
                }
            },
            None => match rules.document().default {
                Fallback::Deny => return Err(Refusal::NoMatchingRule),
                Fallback::Authenticated => plan.token = true,
            },
        }
    }
    Ok(plan)
}

/// `?_method=` of a raw query, if any.
pub fn query_method(query: &[u8]) -> Option<Cow<'_, str>> {
    if !query.windows(8).any(|w| w == b"_method=") {
        return None;
    }
    form_urlencoded::parse(query)
        .find(|(key, _)| key == "_method")
        .map(|(_, value)| value)
}

/// A true CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`, and no `Authorization`.
pub fn is_preflight(method: &str, origin: bool, request_method: bool, authorization: bool) -> bool {
    method.eq_ignore_ascii_case("OPTIONS") && origin && request_method && !authorization
}

/// The bearer credential of an `Authorization` value (the scheme in any
/// case), or `None` when it is not `Bearer <credential>`.
pub fn bearer(value: &[u8]) -> Option<&str> {
    // The usual shape, read without the general trimming and splitting;
    // it reads exactly as below.
    if let Some(credential) = value.strip_prefix(b"Bearer ")
        && !credential.is_empty()
        && is_visible_ascii(credential)
    {
        return std::str::from_utf8(credential).ok();
    }
    any_bearer(value)
}

/// [`bearer`] for any shape.
fn any_bearer(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, credential) = value.split_once([' ', '\t'])?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}

/// How long a proxy may keep an allowed answer: `cache_seconds`, never past
/// the token's expiry; `None` for no caching.
pub fn max_age(cache_seconds: u32, expires_at: Option<Timestamp>, now: Timestamp) -> Option<u64> {
    if cache_seconds == 0 {
        return None;
    }
    let left = expires_at.map_or(i64::MAX, |at| at.seconds_since(now));
    let seconds = i64::from(cache_seconds).min(left);
    u64::try_from(seconds).ok().filter(|&s| s > 0)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn compiled(document: Value) -> CompiledRules {
        CompiledRules::new(RuleDocument::from_json(&document).unwrap())
    }

    fn request<'a>(method: &'a str, path: &'a str) -> Request<'a> {
        Request {
            method,
            overrides: [None; 4],
            host: None,
            path,
        }
    }

    fn sample() -> CompiledRules {
        compiled(json!({"rules": [
            {"id": "read", "methods": ["GET"], "path": "/contacts/**", "scopes": ["contacts:read"]},
            {"id": "write", "methods": ["*"], "path": "/contacts/**", "scopes": ["contacts"]},
            {"id": "public", "methods": ["GET"], "path": "/public/**", "public": true},
            {"id": "admin", "path": "/admin/**", "deny": true},
        ]}))
    }

    fn names(plan: &Plan) -> Vec<String> {
        plan.scopes().map(Scope::to_string).collect()
    }

    #[test]
    fn each_rule_kind_plans_its_need() {
        let rules = sample();
        let p = plan(&rules, &request("GET", "/contacts/1")).unwrap();
        assert_eq!(p.rule.unwrap().1.id, "read");
        assert!(p.token);
        assert_eq!(names(&p), ["contacts:read"]);

        let p = plan(&rules, &request("HEAD", "/contacts/1")).unwrap();
        assert_eq!(p.rule.unwrap().1.id, "read", "HEAD is judged as GET");

        let p = plan(&rules, &request("delete", "/contacts/1")).unwrap();
        assert_eq!(p.rule.unwrap().1.id, "write", "methods compare upper-case");

        let p = plan(&rules, &request("GET", "/public/x")).unwrap();
        assert!(!p.token);
        assert_eq!(p.rule.unwrap().1.id, "public");

        assert!(matches!(
            plan(&rules, &request("GET", "/admin/x")),
            Err(Refusal::Denied(3, _))
        ));
        assert_eq!(
            plan(&rules, &request("POST", "/public/x")).unwrap_err(),
            Refusal::NoMatchingRule
        );
        assert_eq!(
            plan(&rules, &request("GET", "/")).unwrap_err(),
            Refusal::NoMatchingRule
        );

        let authenticated = compiled(json!({"default": "authenticated", "rules": []}));
        let p = plan(&authenticated, &request("GET", "/anything")).unwrap();
        assert!(p.token && p.rule.is_none() && names(&p).is_empty());
    }

    #[test]
    fn a_method_override_must_pass_too() {
        let rules = sample();
        let mut r = request("GET", "/contacts/1");
        r.overrides[0] = Some("DELETE");
        let p = plan(&rules, &r).unwrap();
        assert_eq!(p.rule.unwrap().1.id, "read");
        assert_eq!(names(&p), ["contacts:read", "contacts"]);
        assert_eq!(
            p.first_missing(&[s("contacts:read")])
                .map(Scope::to_string)
                .as_deref(),
            Some("contacts")
        );
        assert_eq!(p.first_missing(&[s("contacts")]), None);

        // The public GET does not let a POST through.
        let mut r = request("GET", "/public/x");
        r.overrides[3] = Some("post");
        assert_eq!(plan(&rules, &r).unwrap_err(), Refusal::NoMatchingRule);

        // The same method again, or an empty value, changes nothing.
        let mut r = request("GET", "/public/x");
        r.overrides = [Some("get"), Some(" "), Some("HEAD"), None];
        assert!(!plan(&rules, &r).unwrap().token);

        let mut r = request("GET", "/public/x");
        r.overrides[1] = Some("GET /admin");
        assert_eq!(plan(&rules, &r).unwrap_err(), Refusal::BadOverride);
    }

    fn s(text: &str) -> Scope {
        text.parse().unwrap()
    }

    #[test]
    fn overrides_come_from_the_query_too() {
        assert_eq!(
            query_method(b"a=1&_method=DELETE").as_deref(),
            Some("DELETE")
        );
        assert_eq!(query_method(b"_method=put%20").as_deref(), Some("put "));
        assert_eq!(query_method(b"x_method=1").as_deref(), None);
        assert_eq!(query_method(b"a=1"), None);
    }

    #[test]
    fn preflight_and_bearer() {
        assert!(is_preflight("OPTIONS", true, true, false));
        assert!(!is_preflight("OPTIONS", true, true, true));
        assert!(!is_preflight("OPTIONS", false, true, false));
        assert!(!is_preflight("GET", true, true, false));
        assert_eq!(bearer(b"Bearer tw_x"), Some("tw_x"));
        assert_eq!(bearer(b"bEaReR   tw_x  "), Some("tw_x"));
        assert_eq!(bearer(b"Basic dXNlcg=="), None);
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"\xffBearer x"), None);
        // The usual shape's shortcut reads as the general reading.
        for value in [
            &b"Bearer tw_x"[..],
            b"Bearer tw_x ",
            b"Bearer  tw_x",
            b"Bearer tw x",
            b"Bearer\ttw_x",
            b"Bearer tw_\x7f",
            b"Bearer tw_\xc2\xa0",
            b"Bearer \xc2\xa0tw_x",
            b"Bearer tw_\xff",
            b"Bearer ~!{}",
        ] {
            assert_eq!(bearer(value), any_bearer(value), "{value:?}");
        }
    }

    #[test]
    fn max_age_never_outlives_the_token() {
        let now = Timestamp(1000);
        assert_eq!(max_age(0, None, now), None);
        assert_eq!(max_age(60, None, now), Some(60));
        assert_eq!(max_age(60, Some(Timestamp(1030)), now), Some(30));
        assert_eq!(max_age(60, Some(Timestamp(2000)), now), Some(60));
        assert_eq!(max_age(60, Some(Timestamp(1000)), now), None);
    }

    /// A small xorshift generator: the property tests need no crate.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    /// Pieces of segments: what paths are made of, tricks included.
    const PIECES: &[&str] = &[
        "a", "b", "contacts", "admin", "public", "42", ".", "..", ";", ".;", "%", "%2", "%2e",
        "%2E", "%2f", "%2F", "%25", "%5c", "%00", "%41", "%c3%a9", "\u{e9}", "\\", "#", "?", "*",
        "~", "-", "%ff", "\u{7f}", " ", "x=1",
    ];

    fn random_target(random: &mut Random) -> String {
        let mut target = String::new();
        if random.below(8) == 0 {
            target.push_str("http://h");
        }
        for _ in 0..random.below(6) {
            target.push_str(random.pick(&["/", "/", "/", "//"]));
            for _ in 0..random.below(4) {
                target.push_str(random.pick(PIECES));
            }
        }
        target
    }

    #[test]
    fn random_targets_never_panic_and_canonical_paths_are_fixed_points() {
        let rules = sample();
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        for _ in 0..50_000 {
            let target = random_target(&mut random);
            if let Ok(found) = canonicalize(target.as_bytes()) {
                assert!(found.path.starts_with('/'), "{target:?} → {:?}", found.path);
                let _ = plan(&rules, &request("GET", &found.path));
                // A canonical path that has no escape-looking text is its own
                // canonical form.
                if !found.path.contains(['%', '?', '#']) {
                    let again = canonicalize(found.path.as_bytes()).unwrap();
                    assert_eq!(again.path, found.path, "{target:?}");
                }
            }
        }
    }

    /// `text` with each byte that is not `/` percent-encoded at random.
    fn encode_some(random: &mut Random, text: &str) -> String {
        let mut out = String::new();
        for byte in text.bytes() {
            if byte != b'/' && random.below(2) == 0 {
                out.push_str(&format!("%{byte:02X}"));
            } else {
                out.push(byte as char);
            }
        }
        out
    }

    fn outcome(rules: &CompiledRules, target: &str) -> Result<Option<String>, InvalidPath> {
        let found = canonicalize(target.as_bytes())?;
        Ok(rules
            .winner(None, "GET", &found.path)
            .map(|(_, rule)| rule.id.clone()))
    }

    #[test]
    fn a_path_and_its_percent_encoded_twin_decide_alike() {
        let rules = compiled(json!({"rules": [
            {"id": "read", "methods": ["GET"], "path": "/contacts/*", "scopes": ["contacts:read"]},
            {"id": "admin", "path": "/admin/**", "deny": true},
            {"id": "semi", "path": "/a;b/**", "public": true},
            {"id": "dots", "path": "/.../*", "public": true},
            {"id": "rest", "path": "/**", "public": true},
        ]}));
        // Segment text with nothing that is already an escape.
        let plain = [
            "a", "contacts", "admin", "a;b", "...", ".", "..", ".;x", "42", "x y", "~", "é",
        ];
        let mut random = Random(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let mut path = String::new();
            for _ in 0..random.below(5) {
                path.push('/');
                path.push_str(random.pick(&plain));
            }
            if path.is_empty() {
                path.push('/');
            }
            // Only ASCII bytes are encoded: raw non-ASCII stands for itself.
            let twin: String = if path.is_ascii() {
                encode_some(&mut random, &path)
            } else {
                path.clone()
            };
            assert_eq!(
                outcome(&rules, &path),
                outcome(&rules, &twin),
                "{path:?} vs {twin:?}"
            );
        }
    }

    #[test]
    fn no_path_with_a_dot_segment_is_ever_allowed() {
        let dots = [
            ".",
            "..",
            "%2e",
            "%2E",
            "%2e%2e",
            ".%2E",
            "%2e.",
            "..;",
            ".;",
            "..;x",
            "%2e%2e%3b",
            ".%3B",
        ];
        let mut random = Random(0xdead_beef_cafe_f00d);
        for _ in 0..20_000 {
            let mut target = String::new();
            let segments = 1 + random.below(5);
            let dot_at = random.below(segments);
            for index in 0..segments {
                target.push_str(random.pick(&["/", "//"]));
                if index == dot_at {
                    target.push_str(random.pick(&dots));
                } else {
                    target.push_str(random.pick(&["public", "a", "admin", "%41", "\u{e9}"]));
                }
            }
            if random.below(3) == 0 {
                target.push_str("?q=1");
            }
            assert!(
                canonicalize(target.as_bytes()).is_err(),
                "{target:?} was given a canonical path"
            );
        }
    }
}
