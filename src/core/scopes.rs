//! The scope grammar of §3 and the "holds" relation.
//!
//! A scope is `<resource>` (full access) or `<resource>:read`. Resources are
//! catalog names, `domain:<host name>`, and the built-ins `tokens`,
//! `domains`, `verify` (a service's verifier token), `routes` (the
//! forward-auth rules) and `audit`. A full grant satisfies `:read`, and
//! holding `domains` (the right to manage every domain) holds each
//! `domain:<name>` at the same level.

use std::fmt;
use std::str::FromStr;

use super::validate::{is_catalog_name, is_domain_name};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Tokens,
    Domains,
    Verify,
    Routes,
    Audit,
    Domain(String),
    Catalog(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    Read,
    Full,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    pub resource: Resource,
    pub access: Access,
}

/// The text is not a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAScope(pub String);

impl Scope {
    pub fn full(resource: Resource) -> Scope {
        Scope {
            resource,
            access: Access::Full,
        }
    }

    pub fn read(resource: Resource) -> Scope {
        Scope {
            resource,
            access: Access::Read,
        }
    }

    /// Whether holding `self` satisfies a need for `needed`.
    pub fn satisfies(&self, needed: &Scope) -> bool {
        let covers = self.resource == needed.resource
            || (self.resource == Resource::Domains
                && matches!(needed.resource, Resource::Domain(_)));
        covers && self.access >= needed.access
    }

    /// The domain this scope names, if any.
    pub fn domain(&self) -> Option<&str> {
        match &self.resource {
            Resource::Domain(name) => Some(name),
            _ => None,
        }
    }
}

impl FromStr for Scope {
    type Err = NotAScope;

    fn from_str(text: &str) -> Result<Scope, NotAScope> {
        let (base, access) = match text.strip_suffix(":read") {
            Some(base) => (base, Access::Read),
            None => (text, Access::Full),
        };
        let resource = match base {
            "tokens" => Resource::Tokens,
            "domains" => Resource::Domains,
            "verify" => Resource::Verify,
            "routes" => Resource::Routes,
            "audit" => Resource::Audit,
            _ => match base.strip_prefix("domain:") {
                Some(name) if is_domain_name(name) => Resource::Domain(name.to_owned()),
                Some(_) => return Err(NotAScope(text.to_owned())),
                None if is_catalog_name(base) => Resource::Catalog(base.to_owned()),
                None => return Err(NotAScope(text.to_owned())),
            },
        };
        Ok(Scope { resource, access })
    }
}

impl Scope {
    /// The scope's text in three pieces, for writers that append strings
    /// without the formatting machinery: `domain:` `example.com` `:read`.
    pub fn parts(&self) -> [&str; 3] {
        let (resource, name) = match &self.resource {
            Resource::Tokens => ("tokens", ""),
            Resource::Domains => ("domains", ""),
            Resource::Verify => ("verify", ""),
            Resource::Routes => ("routes", ""),
            Resource::Audit => ("audit", ""),
            Resource::Domain(name) => ("domain:", name.as_str()),
            Resource::Catalog(name) => (name.as_str(), ""),
        };
        let access = match self.access {
            Access::Read => ":read",
            Access::Full => "",
        };
        [resource, name, access]
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.parts()
            .into_iter()
            .try_for_each(|part| f.write_str(part))
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The common spellings are whole strings already; the rest go
        // through `Display` (scopes are in every verification's answer).
        match (&self.resource, self.access) {
            (Resource::Tokens, Access::Full) => serializer.serialize_str("tokens"),
            (Resource::Tokens, Access::Read) => serializer.serialize_str("tokens:read"),
            (Resource::Domains, Access::Full) => serializer.serialize_str("domains"),
            (Resource::Domains, Access::Read) => serializer.serialize_str("domains:read"),
            (Resource::Verify, Access::Full) => serializer.serialize_str("verify"),
            (Resource::Verify, Access::Read) => serializer.serialize_str("verify:read"),
            (Resource::Catalog(name), Access::Full) => serializer.serialize_str(name),
            _ => serializer.collect_str(self),
        }
    }
}

/// In the API document: a string of the grammar above, either a built-in
/// (listed, so that generated requests and clients know them) or any
/// string of the pattern. The pattern admits every scope and a little more
/// (a catalog may not hold every name it admits); the server has the last
/// word.
impl utoipa::PartialSchema for Scope {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
        let built_ins = [
            Resource::Tokens,
            Resource::Domains,
            Resource::Verify,
            Resource::Routes,
            Resource::Audit,
        ]
        .into_iter()
        .flat_map(|resource| [Scope::full(resource.clone()), Scope::read(resource)])
        .map(|scope| scope.to_string());
        AnyOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(built_ins)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(SCOPE_PATTERN)),
            )
            .description(Some(
                "`<resource>` (full access) or `<resource>:read`. Resources: the built-ins \
                 `tokens`, `domains`, `verify`, `routes`, `audit`; `domain:<domain name>`; \
                 a name from the workspace's scope catalog.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Scope {}

/// Every scope matches; see [`Scope`]'s schema.
pub const SCOPE_PATTERN: &str = "^[a-z][a-z0-9-]*(:[a-z0-9.-]+)?(:read)?$";

/// Whether any of `held` satisfies `needed`.
pub fn holds(held: &[Scope], needed: &Scope) -> bool {
    held.iter().any(|scope| scope.satisfies(needed))
}

/// One scope per resource at the highest access given, sorted by name, so
/// that equal sets have one spelling.
pub fn normalize(scopes: impl IntoIterator<Item = Scope>) -> Vec<Scope> {
    let mut scopes: Vec<Scope> = scopes.into_iter().collect();
    scopes.sort_by(|a, b| a.resource.cmp(&b.resource).then(b.access.cmp(&a.access)));
    scopes.dedup_by(|later, kept| later.resource == kept.resource);
    scopes.sort_by_key(|s| s.to_string());
    scopes
}

/// What a member may do: workspace admins hold every scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grants {
    All,
    Only(Vec<Scope>),
}

impl Grants {
    pub fn holds(&self, needed: &Scope) -> bool {
        match self {
            Grants::All => true,
            Grants::Only(held) => holds(held, needed),
        }
    }

    /// The part of `scopes` these grants cover: a full scope the grants only
    /// cover for reading is narrowed to `:read`; anything else uncovered is
    /// dropped. This is how a token is never more than its owner is now.
    pub fn narrow(&self, scopes: &[Scope]) -> Vec<Scope> {
        scopes
            .iter()
            .filter_map(|scope| {
                if self.holds(scope) {
                    Some(scope.clone())
                } else {
                    let read = Scope::read(scope.resource.clone());
                    self.holds(&read).then_some(read)
                }
            })
            .collect()
    }
}

/// Space-separated canonical form, as stored.
pub fn encode(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads the stored form; anything unparsable is skipped rather than
/// trusted.
pub fn decode(text: &str) -> Vec<Scope> {
    text.split_ascii_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Scope {
        text.parse().unwrap()
    }

    #[test]
    fn serialises_as_it_displays() {
        for text in [
            "tokens",
            "tokens:read",
            "domains",
            "domains:read",
            "verify",
            "verify:read",
            "routes:read",
            "audit",
            "contacts",
            "knowledge-base:read",
            "domain:example.com",
            "domain:example.com:read",
        ] {
            let scope = s(text);
            assert_eq!(serde_json::to_value(&scope).unwrap(), text);
            assert_eq!(scope.to_string(), text);
        }
    }

    fn list(texts: &[&str]) -> Vec<Scope> {
        texts.iter().map(|t| s(t)).collect()
    }

    #[test]
    fn the_grammar_round_trips() {
        let cases = [
            "contacts",
            "contacts:read",
            "knowledge-base",
            "tokens",
            "tokens:read",
            "domains",
            "domains:read",
            "domain:example.com",
            "domain:example.com:read",
            "domain:read.example",
        ];
        for case in cases {
            assert_eq!(s(case).to_string(), case);
        }
        assert_eq!(s("domain:example.com:read").domain(), Some("example.com"));
        assert_eq!(s("tokens").resource, Resource::Tokens);
        assert_eq!(s("verify:read").resource, Resource::Verify);
        assert_eq!(s("routes").resource, Resource::Routes);
        assert_eq!(s("audit:read").resource, Resource::Audit);
    }

    #[test]
    fn malformed_scopes_are_rejected() {
        let bad = [
            "",
            ":read",
            "Contacts",
            "contacts:write",
            "contacts:read:read",
            "domain:",
            "domain:example",
            "domain:Example.com",
            "domain:example.com:full",
            "a b",
            "x_y",
            "contacts:",
        ];
        for case in bad {
            assert!(case.parse::<Scope>().is_err(), "{case:?} parsed");
        }
    }

    #[test]
    fn random_strings_never_panic() {
        let pieces = [
            "domain", ":", "read", "tokens", "a", "-", ".", "é", "com", "x", "", "9",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let text: String = (0..(state % 9))
                .map(|i| pieces[((state >> (i * 4)) % pieces.len() as u64) as usize])
                .collect();
            if let Ok(scope) = text.parse::<Scope>() {
                assert_eq!(scope.to_string(), text);
            }
        }
    }

    #[test]
    fn full_satisfies_read_but_not_the_reverse() {
        assert!(s("contacts").satisfies(&s("contacts:read")));
        assert!(s("contacts").satisfies(&s("contacts")));
        assert!(!s("contacts:read").satisfies(&s("contacts")));
        assert!(!s("contacts").satisfies(&s("campaigns:read")));
        assert!(!s("tokens").satisfies(&s("domains:read")));
    }

    #[test]
    fn domains_covers_every_domain_at_its_level() {
        assert!(s("domains").satisfies(&s("domain:example.com")));
        assert!(s("domains:read").satisfies(&s("domain:example.com:read")));
        assert!(!s("domains:read").satisfies(&s("domain:example.com")));
        assert!(!s("domain:example.com").satisfies(&s("domains:read")));
        assert!(!s("domain:example.com").satisfies(&s("domain:example.org:read")));
    }

    #[test]
    fn normalize_keeps_the_strongest_and_sorts() {
        let got = normalize(list(&[
            "contacts:read",
            "ai",
            "contacts",
            "ai",
            "tokens:read",
        ]));
        assert_eq!(encode(&got), "ai contacts tokens:read");
    }

    #[test]
    fn grants_narrow_token_scopes() {
        let owner = Grants::Only(list(&["contacts:read", "campaigns", "domains"]));
        let token = list(&["contacts", "campaigns:read", "ai", "domain:example.com"]);
        assert_eq!(
            encode(&owner.narrow(&token)),
            "contacts:read campaigns:read domain:example.com"
        );
        assert_eq!(Grants::All.narrow(&token), token);
        assert!(Grants::Only(vec![]).narrow(&token).is_empty());
    }

    #[test]
    fn stored_form_round_trips_and_skips_garbage() {
        let scopes = list(&["contacts", "domain:example.com:read"]);
        assert_eq!(decode(&encode(&scopes)), scopes);
        assert_eq!(
            decode("contacts Bad! tokens"),
            list(&["contacts", "tokens"])
        );
        assert!(decode("").is_empty());
    }
}
