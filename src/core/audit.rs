//! The audit log (§11): who changed what, from where. Entries are plain
//! data here; the store writes each one in the same transaction as the
//! change it records, so a rolled-back change leaves no entry and an entry
//! never exists without its change. Never a secret, a hash or a password.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::ids::Id;
use super::model::{Account, Token, Workspace};
use super::time::Timestamp;

/// Who made a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    Session,
    Token,
    Cli,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Session => "session",
            ActorKind::Token => "token",
            ActorKind::Cli => "cli",
            ActorKind::System => "system",
        }
    }

    pub fn parse(text: &str) -> Option<ActorKind> {
        match text {
            "session" => Some(ActorKind::Session),
            "token" => Some(ActorKind::Token),
            "cli" => Some(ActorKind::Cli),
            "system" => Some(ActorKind::System),
            _ => None,
        }
    }
}

/// The actor of a change, and the address it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub account_id: Option<Id<Account>>,
    pub token_id: Option<Id<Token>>,
    pub ip: Option<IpAddr>,
}

impl Actor {
    /// A signed-in account (or someone not signed in yet, for sign-up and
    /// sign-in, with `account` `None`).
    pub fn session(account: Option<Id<Account>>, ip: Option<IpAddr>) -> Self {
        Actor {
            kind: ActorKind::Session,
            account_id: account,
            token_id: None,
            ip,
        }
    }

    /// An API token acting as its owner.
    pub fn token(owner: Id<Account>, token: Id<Token>, ip: Option<IpAddr>) -> Self {
        Actor {
            kind: ActorKind::Token,
            account_id: Some(owner),
            token_id: Some(token),
            ip,
        }
    }

    /// The command line, working on the database file.
    pub fn cli() -> Self {
        Actor {
            kind: ActorKind::Cli,
            account_id: None,
            token_id: None,
            ip: None,
        }
    }

    /// The server itself (the sweeper).
    pub fn system() -> Self {
        Actor {
            kind: ActorKind::System,
            account_id: None,
            token_id: None,
            ip: None,
        }
    }
}

/// What a change was done to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Target {
    pub kind: &'static str,
    pub id: Option<String>,
    pub name: Option<String>,
}

impl Target {
    pub fn new(kind: &'static str, id: impl ToString, name: impl Into<String>) -> Self {
        Target {
            kind,
            id: Some(id.to_string()),
            name: Some(name.into()),
        }
    }

    /// Something with no id of its own (the instance settings).
    pub fn named(kind: &'static str, name: impl Into<String>) -> Self {
        Target {
            kind,
            id: None,
            name: Some(name.into()),
        }
    }
}

/// One change, as the store records it.
#[derive(Clone, Debug)]
pub struct Change {
    pub action: &'static str,
    /// `None` for instance-wide changes (sign-in, settings, accounts).
    pub workspace_id: Option<Id<Workspace>>,
    pub target: Target,
    /// A small object: names of fields changed, scopes, counts. Never a
    /// secret, a hash or a password.
    pub details: Map<String, Value>,
}

impl Change {
    pub fn new(action: &'static str, workspace_id: Option<Id<Workspace>>, target: Target) -> Self {
        Change {
            action,
            workspace_id,
            target,
            details: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// Every action the log knows, for filters and the UI.
pub const ACTIONS: &[&str] = &[
    "account.create",
    "account.password",
    "account.disable",
    "account.enable",
    "account.delete",
    "session.create",
    "session.fail",
    "session.revoke",
    "workspace.create",
    "workspace.update",
    "member.add",
    "member.update",
    "member.remove",
    "scope.put",
    "scope.delete",
    "settings.update",
    "token.create",
    "token.update",
    "token.reset",
    "token.revoke",
    "domain.create",
    "domain.delete",
    "routes.update",
    "sweeper.purge",
];

/// An entry as `GET /audit` answers it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = AuditEntry)]
pub struct Entry {
    #[schema(value_type = String, format = "uuid")]
    pub id: Id<Entry>,
    pub at: Timestamp,
    /// One of the actions the `action` filter lists.
    pub action: String,
    pub actor: ActorView,
    /// The address the change came from.
    #[schema(required = true)]
    pub ip: Option<String>,
    /// `null` for instance-wide changes (sign-in, settings, accounts).
    #[schema(value_type = Option<String>, format = "uuid", required = true)]
    pub workspace_id: Option<Id<Workspace>>,
    pub target: TargetView,
    /// A small object: names of fields changed, scopes, counts. Never a
    /// secret, a hash or a password.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// Who made a change.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = AuditActor)]
pub struct ActorView {
    pub kind: ActorKind,
    #[schema(value_type = Option<String>, format = "uuid", required = true)]
    pub account_id: Option<Id<Account>>,
    /// The actor's email, when the account still exists: for sentences.
    #[schema(required = true)]
    pub email: Option<String>,
    #[schema(value_type = Option<String>, format = "uuid", required = true)]
    pub token_id: Option<Id<Token>>,
}

/// What a change was done to.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = AuditTarget)]
pub struct TargetView {
    pub kind: String,
    #[schema(required = true)]
    pub id: Option<String>,
    #[schema(required = true)]
    pub name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_unique_and_dotted() {
        let mut seen = std::collections::HashSet::new();
        for action in ACTIONS {
            assert!(seen.insert(action), "{action} twice");
            assert_eq!(action.split('.').count(), 2, "{action}");
        }
    }

    #[test]
    fn actor_kinds_round_trip() {
        for kind in [
            ActorKind::Session,
            ActorKind::Token,
            ActorKind::Cli,
            ActorKind::System,
        ] {
            assert_eq!(ActorKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ActorKind::parse("robot"), None);
    }

    #[test]
    fn details_hold_what_they_are_given() {
        let change = Change::new("token.revoke", None, Target::named("settings", "instance"))
            .with("scopes", "contacts")
            .with("count", 3);
        assert_eq!(change.details["scopes"], "contacts");
        assert_eq!(change.details["count"], 3);
    }
}
