//! The things tokenward keeps, as plain data shared by the store and the API.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::Serialize;
use utoipa::ToSchema;

use super::ids::Id;
use super::scopes::{Grants, Scope};
use super::time::Timestamp;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Account {
    #[schema(value_type = String, format = "uuid")]
    pub id: Id<Account>,
    pub email: String,
    pub instance_admin: bool,
    #[serde(skip)]
    pub disabled: bool,
    pub created_at: Timestamp,
}

impl Account {
    pub fn reference(&self) -> AccountRef {
        AccountRef {
            id: self.id,
            email: self.email.clone(),
        }
    }
}

/// An account as other objects point at it: `{id, email}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct AccountRef {
    #[schema(value_type = String, format = "uuid")]
    pub id: Id<Account>,
    pub email: String,
}

/// A signed-in browser or client: the row behind a session JWT.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: Id<Session>,
    pub account_id: Id<Account>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Workspace {
    #[schema(value_type = String, format = "uuid")]
    pub id: Id<Workspace>,
    pub name: String,
    /// The prefix of its new tokens; `null`: the instance's.
    #[schema(required = true)]
    pub token_prefix: Option<String>,
    pub created_at: Timestamp,
}

/// An account's place in a workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub role: Role,
    pub scopes: Vec<Scope>,
}

impl Membership {
    pub fn grants(&self) -> Grants {
        match self.role {
            Role::Admin => Grants::All,
            Role::Member => Grants::Only(self.scopes.clone()),
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Member {
    pub account: AccountRef,
    pub role: Role,
    pub scopes: Vec<Scope>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CatalogEntry {
    pub name: String,
    pub description: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Domain {
    #[schema(value_type = String, format = "uuid")]
    pub id: Id<Domain>,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
}

impl TokenState {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Expired => "expired",
            TokenState::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Option<TokenState> {
        match text {
            "active" => Some(TokenState::Active),
            "expired" => Some(TokenState::Expired),
            "revoked" => Some(TokenState::Revoked),
            _ => None,
        }
    }
}

/// An API token as stored, without its secret.
#[derive(Clone, Debug)]
pub struct Token {
    pub id: Id<Token>,
    pub number: i64,
    pub name: String,
    pub hint: String,
    pub scopes: Vec<Scope>,
    pub workspace_id: Id<Workspace>,
    pub created_by: AccountRef,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<Timestamp>,
    pub replaced_by: Option<Id<Token>>,
}

impl Token {
    /// Revocation wins over expiry: it was a deliberate act.
    pub fn state(&self, now: Timestamp) -> TokenState {
        if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            TokenState::Expired
        } else {
            TokenState::Active
        }
    }
}

/// A token with its owner as they were when it was read: what verification
/// decides on. A grant never changes once read (a write that would change
/// it makes the next verification read a new one), so what follows from it
/// is worked out once: its effective scopes at construction, its rendering
/// for answers on first use.
#[derive(Debug)]
pub struct TokenGrant {
    pub token: Token,
    pub owner_disabled: bool,
    /// `None` when the owner is no longer a member of the token's workspace.
    pub owner_membership: Option<Membership>,
    effective: Vec<Scope>,
    /// The transport's rendering of the token's fixed fields, made the first
    /// time an answer needs it and reused by every later one.
    pub rendered: OnceLock<Box<[u8]>>,
    /// The last second a use of this token was handed to the usage log.
    /// Uses are kept to the second, so later ones in the same second need
    /// not take the log's lock: under load, most verifications skip it.
    last_noted: AtomicI64,
}

/// A copy with its own reference count and use mark, for a thread's own
/// cache ([`crate::store::cache`]).
impl Clone for TokenGrant {
    fn clone(&self) -> Self {
        TokenGrant {
            token: self.token.clone(),
            owner_disabled: self.owner_disabled,
            owner_membership: self.owner_membership.clone(),
            effective: self.effective.clone(),
            rendered: self.rendered.clone(),
            last_noted: AtomicI64::new(self.last_noted.load(Ordering::Relaxed)),
        }
    }
}

impl TokenGrant {
    pub fn new(token: Token, owner_disabled: bool, owner_membership: Option<Membership>) -> Self {
        let mut grant = TokenGrant {
            token,
            owner_disabled,
            owner_membership,
            effective: Vec::new(),
            rendered: OnceLock::new(),
            last_noted: AtomicI64::new(i64::MIN),
        };
        if let Some(grants) = grant.owner_grants() {
            grant.effective = grants.narrow(&grant.token.scopes);
        }
        grant
    }

    /// The owner's current grants, or `None` when the owner cannot act.
    pub fn owner_grants(&self) -> Option<Grants> {
        if self.owner_disabled {
            return None;
        }
        self.owner_membership.as_ref().map(Membership::grants)
    }

    /// Whether a use at `now` is the first of its second for this grant,
    /// and so worth handing to the usage log.
    pub fn first_use_in(&self, now: Timestamp) -> bool {
        // Read before writing: most uses fall in a second already noted,
        // and a read keeps the line shared between the cores that verify.
        self.last_noted.load(Ordering::Relaxed) != now.0
            && self.last_noted.swap(now.0, Ordering::Relaxed) != now.0
    }

    /// The token's scopes as its owner's grants allow them (its own ∩ the
    /// owner's); empty when the owner can no longer act.
    pub fn effective_scopes(&self) -> &[Scope] {
        &self.effective
    }
}

/// The fixed suffix of generated token names: `"example.com token 1234"`.
pub fn numbered_name(base: &str, number: i64) -> String {
    format!("{base} token {number}")
}

/// A name without a trailing `" token <digits>"`, so that a reset token is
/// renamed with its own number (§5).
pub fn name_base(name: &str) -> &str {
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if trimmed.len() < name.len()
        && let Some(base) = trimmed.strip_suffix(" token ")
    {
        return base;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_names_take_the_new_number() {
        assert_eq!(name_base("example.com token 1234"), "example.com");
        assert_eq!(
            numbered_name(name_base("example.com token 1234"), 4231),
            "example.com token 4231"
        );
        assert_eq!(name_base("CRM"), "CRM");
        assert_eq!(name_base("CRM token"), "CRM token");
        assert_eq!(name_base("CRM token x1"), "CRM token x1");
        assert_eq!(name_base("build 42"), "build 42");
        assert_eq!(name_base("token 7"), "token 7");
        assert_eq!(name_base(" token 7"), "");
    }
}
