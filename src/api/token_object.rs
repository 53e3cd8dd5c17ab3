//! The token object of §4, as every answer shows it.
//!
//! Its fields fall in two groups. The *fixed* ones (identity, name, hint,
//! owner, lifetime, revocation) change only through a write, and a write
//! makes the next verification read a new grant. The *live* ones (scopes as
//! they apply, state, last use, the secret right after creation) can differ
//! from one answer to the next. A grant keeps its fixed fields rendered
//! ([`TokenGrant::rendered`]), so verifying a cached token copies them and
//! serialises only the live ones: rendering the whole object was a fifth of
//! the instructions of a verification.
//!
//! Both paths render the fixed fields from one list ([`fixed_fields`]).
//! The live ones are listed once for the serializer ([`live_fields`]) and
//! written directly for a spliced answer ([`TokenView::write_from`]); the
//! tests hold the two to the same bytes in every state.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, Object, ObjectBuilder, OneOfBuilder, Ref, Schema, SchemaFormat, Type,
};
use utoipa::{PartialSchema, ToSchema};

use super::openapi::uuid_schema;
use crate::core::model::{AccountRef, Token, TokenGrant, TokenState};
use crate::core::scopes::Scope;
use crate::core::time::Timestamp;
use crate::core::token_format::Secret;
use crate::usage::{LastUse, UsageLog, UsedFrom};

/// A token object borrowed from the stored token; `token` (the secret) only
/// right after create or reset.
pub struct TokenView<'a> {
    token: &'a Token,
    scopes: &'a [Scope],
    state: TokenState,
    last_used: LastUse<'a>,
    secret: Option<&'a str>,
}

impl<'a> TokenView<'a> {
    /// The token as stored, with any use not yet flushed.
    pub fn new(token: &'a Token, usage: &UsageLog, now: Timestamp) -> TokenView<'a> {
        TokenView {
            token,
            scopes: &token.scopes,
            state: token.state(now),
            last_used: usage.latest(token),
            secret: None,
        }
    }

    /// The token being used now, from `ip`: a use just recorded, so its
    /// latest (and no need to look it up).
    pub fn used_now(token: &'a Token, now: Timestamp, ip: Option<IpAddr>) -> TokenView<'a> {
        TokenView {
            token,
            scopes: &token.scopes,
            state: token.state(now),
            last_used: LastUse {
                at: Some(now),
                ip: ip.map(UsedFrom::Pending),
            },
            secret: None,
        }
    }

    pub fn with_secret(mut self, secret: &'a Secret) -> TokenView<'a> {
        self.secret = Some(secret.expose());
        self
    }

    /// Shows `scopes` (the effective ones, for verification) instead of the
    /// token's own.
    pub fn with_scopes(mut self, scopes: &'a [Scope]) -> TokenView<'a> {
        self.scopes = scopes;
        self
    }

    /// Appends the object as JSON, copying the fixed fields from `grant`'s
    /// rendering (made now if this is its first answer). The view must be
    /// of `grant.token`.
    pub fn write_from(&self, grant: &TokenGrant, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let fixed = match grant.rendered.get() {
            Some(fixed) => fixed,
            None => {
                let fixed = render_fixed(&grant.token)?;
                grant.rendered.get_or_init(|| fixed)
            }
        };
        out.push(b'{');
        out.extend_from_slice(fixed);
        self.write_live(out)
    }

    /// `live_fields` as `serde_json` writes them after the fixed fields,
    /// and the closing `}`: written directly, as the serializer's work per
    /// field cost more than the fields. The tests hold the two to the same
    /// bytes.
    fn write_live(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(br#","scopes":["#);
        for (index, scope) in self.scopes.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, scope)?;
        }
        out.extend_from_slice(br#"],"state":""#);
        out.extend_from_slice(self.state.as_str().as_bytes());
        out.extend_from_slice(br#"","last_used_at":"#);
        match self.last_used.at {
            Some(at) => {
                out.push(b'"');
                out.extend_from_slice(&at.rfc3339_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(br#","last_used_ip":"#);
        match &self.last_used.ip {
            Some(UsedFrom::Pending(IpAddr::V4(ip))) => {
                // Digits by hand: `Display` took more than the rest of the
                // live fields together.
                out.push(b'"');
                for (index, octet) in ip.octets().into_iter().enumerate() {
                    if index > 0 {
                        out.push(b'.');
                    }
                    push_decimal(out, octet);
                }
                out.push(b'"');
            }
            Some(UsedFrom::Pending(ip)) => {
                use std::io::Write as _;
                // An address's text needs no escaping.
                write!(out, "\"{ip}\"").map_err(serde_json::Error::io)?;
            }
            Some(UsedFrom::Stored(text)) => serde_json::to_writer(&mut *out, text)?,
            None => out.extend_from_slice(b"null"),
        }
        if let Some(secret) = self.secret {
            out.extend_from_slice(br#","token":"#);
            serde_json::to_writer(&mut *out, secret)?;
        }
        out.push(b'}');
        Ok(())
    }
}

fn push_decimal(out: &mut Vec<u8>, value: u8) {
    if value >= 100 {
        out.push(b'0' + value / 100);
    }
    if value >= 10 {
        out.push(b'0' + value / 10 % 10);
    }
    out.push(b'0' + value % 10);
}

fn fixed_fields<S: SerializeStruct>(out: &mut S, t: &Token) -> Result<(), S::Error> {
    out.serialize_field("id", &t.id)?;
    out.serialize_field("number", &t.number)?;
    out.serialize_field("name", &t.name)?;
    out.serialize_field("token_hint", &t.hint)?;
    out.serialize_field("workspace_id", &t.workspace_id)?;
    out.serialize_field("created_by", &t.created_by)?;
    out.serialize_field("created_at", &t.created_at)?;
    out.serialize_field("expires_at", &t.expires_at)?;
    out.serialize_field("revoked_at", &t.revoked_at)?;
    out.serialize_field("replaced_by", &t.replaced_by)
}

/// Never empty: [`TokenView::write_from`] relies on that.
fn live_fields<S: SerializeStruct>(out: &mut S, view: &TokenView<'_>) -> Result<(), S::Error> {
    out.serialize_field("scopes", view.scopes)?;
    out.serialize_field("state", &view.state)?;
    out.serialize_field("last_used_at", &view.last_used.at)?;
    out.serialize_field("last_used_ip", &view.last_used.ip)?;
    if let Some(secret) = view.secret {
        out.serialize_field("token", secret)?;
    }
    Ok(())
}

const FIXED: usize = 10;
const LIVE: usize = 5;

impl Serialize for TokenView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Token", FIXED + LIVE)?;
        fixed_fields(&mut out, self.token)?;
        live_fields(&mut out, self)?;
        out.end()
    }
}

struct Fixed<'a>(&'a Token);

impl Serialize for Fixed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Token", FIXED)?;
        fixed_fields(&mut out, self.0)?;
        out.end()
    }
}

fn token_schema(with_secret: bool) -> Object {
    let uuid = uuid_schema;
    let nullable = |schema: RefOr<Schema>, description: &str| {
        OneOfBuilder::new()
            .item(schema)
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(description))
    };
    let timestamp = || RefOr::Ref(Ref::from_schema_name(Timestamp::name()));
    let mut object = ObjectBuilder::new()
        .property("id", uuid())
        .property(
            "number",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .description(Some(
                    "An instance-wide sequence number, used in generated names.",
                )),
        )
        .property("name", ObjectBuilder::new().schema_type(Type::String))
        .property(
            "token_hint",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("The prefix, `…`, and the secret's last 4 characters.")),
        )
        .property("workspace_id", uuid())
        .property("created_by", Ref::from_schema_name(AccountRef::name()))
        .property("created_at", Ref::from_schema_name(Timestamp::name()))
        .property(
            "expires_at",
            nullable(timestamp(), "`null` when the token never expires."),
        )
        .property("revoked_at", nullable(timestamp(), "`null` unless revoked."))
        .property(
            "replaced_by",
            nullable(uuid().into(), "The token that a reset made in its place."),
        )
        .property(
            "scopes",
            ArrayBuilder::new()
                .items(Ref::from_schema_name(Scope::name()))
                .description(Some(
                    "Its scopes; in a verification, the effective ones (its own as its owner's grants allow now).",
                )),
        )
        .property("state", Ref::from_schema_name(TokenState::name()))
        .property("last_used_at", nullable(timestamp(), "`null` until first used."))
        .property(
            "last_used_ip",
            nullable(
                ObjectBuilder::new().schema_type(Type::String).into(),
                "The address of the latest use.",
            ),
        );
    for field in [
        "id",
        "number",
        "name",
        "token_hint",
        "workspace_id",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "replaced_by",
        "scopes",
        "state",
        "last_used_at",
        "last_used_ip",
    ] {
        object = object.required(field);
    }
    if with_secret {
        object = object
            .property(
                "token",
                ObjectBuilder::new().schema_type(Type::String).description(Some(
                    "The secret: shown this once, right after create or reset, and never again.",
                )),
            )
            .required("token")
            .description(Some("A token object with its secret, right after create or reset."));
    } else {
        object = object.description(Some("A token object; never its secret."));
    }
    object.build()
}

/// Schemas the token object refers to.
fn token_references(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((AccountRef::name().into(), AccountRef::schema()));
    schemas.push((Timestamp::name().into(), Timestamp::schema()));
    schemas.push((Scope::name().into(), Scope::schema()));
    schemas.push((TokenState::name().into(), TokenState::schema()));
}

impl PartialSchema for TokenView<'_> {
    fn schema() -> RefOr<Schema> {
        token_schema(false).into()
    }
}

impl ToSchema for TokenView<'_> {
    fn name() -> Cow<'static, str> {
        "Token".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        token_references(schemas);
    }
}

/// In the API document, a token object right after create or reset: with
/// `token`, the secret ([`TokenView::with_secret`]).
pub struct TokenWithSecret;

impl PartialSchema for TokenWithSecret {
    fn schema() -> RefOr<Schema> {
        token_schema(true).into()
    }
}

impl ToSchema for TokenWithSecret {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        token_references(schemas);
    }
}

/// The fixed fields as JSON object members, without the braces:
/// `"id":"…",…,"replaced_by":null`.
fn render_fixed(token: &Token) -> serde_json::Result<Box<[u8]>> {
    let object = serde_json::to_vec(&Fixed(token))?;
    let members = object
        .strip_prefix(b"{")
        .and_then(|rest| rest.strip_suffix(b"}"))
        .unwrap_or_default();
    Ok(members.into())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::core::ids::Id;
    use crate::core::model::{AccountRef, Membership, Role};
    use crate::core::scopes::decode;
    use crate::core::token_format::{self, Prefix};

    fn token(name: &str, revoked: bool, used: bool) -> Token {
        Token {
            id: Id::new(),
            number: 42,
            name: name.into(),
            hint: "tw_…abcd".into(),
            scopes: decode("contacts campaigns:read"),
            workspace_id: Id::new(),
            created_by: AccountRef {
                id: Id::new(),
                email: "o\"wner@example.com".into(),
            },
            created_at: Timestamp(1_700_000_000),
            expires_at: Some(Timestamp(1_800_000_000)),
            last_used_at: used.then_some(Timestamp(1_750_000_000)),
            last_used_ip: used.then(|| "2001:db8::1".into()),
            revoked_at: revoked.then_some(Timestamp(1_760_000_000)),
            replaced_by: revoked.then(Id::new),
        }
    }

    fn grant(token: Token) -> TokenGrant {
        let member = Membership {
            role: Role::Member,
            scopes: decode("contacts:read"),
        };
        TokenGrant::new(token, false, Some(member))
    }

    fn spliced(grant: &TokenGrant, view: &TokenView<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        view.write_from(grant, &mut out).unwrap();
        out
    }

    #[test]
    fn the_spliced_object_is_the_serialised_one_byte_for_byte() {
        let usage = UsageLog::default();
        let secret = token_format::generate(&Prefix::parse("tw_").unwrap()).unwrap();
        for (name, revoked, used) in [
            ("CRM", false, false),
            ("quotes \" and \\ and\nnewlines", true, true),
            ("ünïcødé ✓", false, true),
        ] {
            let grant = grant(token(name, revoked, used));
            let now = Timestamp(1_765_000_000);
            usage.record(grant.token.id, now, Some(IpAddr::from([10, 0, 0, 1])));
            let views = [
                TokenView::new(&grant.token, &usage, now),
                TokenView::used_now(&grant.token, now, Some(IpAddr::from([10, 0, 0, 2]))),
                TokenView::new(&grant.token, &usage, now).with_scopes(grant.effective_scopes()),
                TokenView::new(&grant.token, &usage, now).with_secret(&secret),
                TokenView::used_now(&grant.token, now, Some("2001:db8::7".parse().unwrap())),
                TokenView::used_now(&grant.token, now, Some(IpAddr::from([255, 100, 9, 0]))),
                TokenView::used_now(&grant.token, now, Some(IpAddr::from([0, 10, 199, 1]))),
                TokenView::used_now(&grant.token, now, None),
                TokenView::new(&grant.token, &usage, Timestamp(1_900_000_000)).with_scopes(&[]),
            ];
            for view in &views {
                let whole = serde_json::to_vec(view).unwrap();
                // Twice: the first renders the fixed fields, the second reuses them.
                assert_eq!(spliced(&grant, view), whole);
                assert_eq!(spliced(&grant, view), whole);
            }
        }
    }

    #[test]
    fn the_schemas_name_exactly_the_fields_written() {
        let usage = UsageLog::default();
        let grant = grant(token("CRM", true, true));
        let secret = token_format::generate(&Prefix::parse("tw_").unwrap()).unwrap();
        let now = Timestamp(0);
        for (view, schema) in [
            (
                TokenView::new(&grant.token, &usage, now),
                TokenView::schema(),
            ),
            (
                TokenView::new(&grant.token, &usage, now).with_secret(&secret),
                TokenWithSecret::schema(),
            ),
        ] {
            let object: Value = serde_json::to_value(&view).unwrap();
            let written: Vec<&String> = object.as_object().unwrap().keys().collect();
            let schema = serde_json::to_value(schema).unwrap();
            let mut properties: Vec<&String> =
                schema["properties"].as_object().unwrap().keys().collect();
            let mut required: Vec<&str> = schema["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let mut written_sorted = written.clone();
            written_sorted.sort();
            properties.sort();
            required.sort_unstable();
            assert_eq!(properties, written_sorted);
            let written: Vec<&str> = written_sorted.iter().map(|s| s.as_str()).collect();
            assert_eq!(required, written);
        }
    }

    #[test]
    fn the_object_has_every_field_of_the_contract() {
        let usage = UsageLog::default();
        let grant = grant(token("CRM", false, false));
        let view = TokenView::new(&grant.token, &usage, Timestamp(0))
            .with_scopes(grant.effective_scopes());
        let object: Value = serde_json::from_slice(&spliced(&grant, &view)).unwrap();
        let mut keys: Vec<&str> = object
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "created_at",
                "created_by",
                "expires_at",
                "id",
                "last_used_at",
                "last_used_ip",
                "name",
                "number",
                "replaced_by",
                "revoked_at",
                "scopes",
                "state",
                "token_hint",
                "workspace_id"
            ]
        );
        assert_eq!(object["scopes"], serde_json::json!(["contacts:read"]));
        assert_eq!(object["state"], "active");
        assert_eq!(object["created_by"]["email"], "o\"wner@example.com");
        assert_eq!(object["last_used_at"], Value::Null);
    }
}
