//! Who is calling, and what they may do.

use std::sync::Arc;

use std::net::IpAddr;

use crate::core::acting::ActingOn;
use crate::core::audit::Actor;
use crate::core::expiry::Ceiling;
use crate::core::ids::Id;
use crate::core::model::{
    Account, AccountRef, Membership, Role, Session, Token, TokenGrant, Workspace,
};
use crate::core::scopes::{self, Access, Grants, Resource, Scope};
use crate::error::ApiError;

/// A signed-in account, for endpoints that need a session rather than an
/// API token (account, workspace and settings management).
#[derive(Clone, Debug)]
pub struct SessionCaller {
    pub account: Account,
    pub session_id: Id<Session>,
    pub via_cookie: bool,
    /// The client's address, for the audit log.
    pub ip: Option<IpAddr>,
}

impl SessionCaller {
    pub fn actor(&self) -> Actor {
        Actor::session(Some(self.account.id), self.ip)
    }
}

#[derive(Clone, Debug)]
pub enum Credential {
    Session(Id<Session>),
    /// An API token acting as its owner, narrowed to its effective scopes.
    Token(Arc<TokenGrant>),
}

/// A caller acting in one workspace: a session, or an API token.
#[derive(Clone, Debug)]
pub struct Caller {
    pub account: AccountRef,
    pub workspace_id: Id<Workspace>,
    pub membership: Membership,
    pub credential: Credential,
    /// The client's address, for the audit log.
    pub ip: Option<IpAddr>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.membership.role == Role::Admin
    }

    /// The calling token, if an API token is calling.
    pub fn token(&self) -> Option<&Token> {
        self.grant().map(|grant| &grant.token)
    }

    /// The calling token with its owner, if an API token is calling.
    pub fn grant(&self) -> Option<&TokenGrant> {
        match &self.credential {
            Credential::Token(grant) => Some(grant),
            Credential::Session(_) => None,
        }
    }

    /// Whether the caller holds `needed`: a session through the member's
    /// grants, a token through its effective scopes.
    pub fn holds(&self, needed: &Scope) -> bool {
        match &self.credential {
            Credential::Session(_) => self.membership.grants().holds(needed),
            Credential::Token(grant) => scopes::holds(grant.effective_scopes(), needed),
        }
    }

    pub fn require(&self, needed: Scope) -> Result<(), ApiError> {
        if self.holds(&needed) {
            Ok(())
        } else {
            Err(ApiError::InsufficientScope {
                needed: needed.to_string(),
            })
        }
    }

    /// Token management: a session manages its own tokens with no grant; an
    /// API token needs `tokens` (or `tokens:read` to read).
    pub fn require_token_management(&self, access: Access) -> Result<(), ApiError> {
        match self.credential {
            Credential::Session(_) => Ok(()),
            Credential::Token(_) => self.require(Scope {
                resource: Resource::Tokens,
                access,
            }),
        }
    }

    /// Admins manage every token of the workspace, members their own.
    pub fn may_manage(&self, token: &Token) -> bool {
        self.is_admin() || token.created_by.id == self.account.id
    }

    /// No escalation: every scope handed out must be held by the caller.
    pub fn ensure_can_grant(&self, wanted: &[Scope]) -> Result<(), ApiError> {
        match wanted.iter().find(|scope| !self.holds(scope)) {
            None => Ok(()),
            Some(scope) => Err(ApiError::Forbidden(format!(
                "you cannot hand out {scope}: you do not hold it yourself"
            ))),
        }
    }

    /// Who this is, for the audit log.
    pub fn actor(&self) -> Actor {
        match &self.credential {
            Credential::Session(_) => Actor::session(Some(self.account.id), self.ip),
            Credential::Token(grant) => Actor::token(self.account.id, grant.token.id, self.ip),
        }
    }

    /// What this caller may do to another token, for the store to check
    /// inside the write.
    pub fn acting_on(&self) -> ActingOn {
        match &self.credential {
            Credential::Session(_) => ActingOn {
                holds: self.membership.grants(),
                token_expiry: None,
            },
            Credential::Token(grant) => ActingOn {
                holds: Grants::Only(grant.effective_scopes().to_vec()),
                token_expiry: Some(grant.token.expires_at),
            },
        }
    }

    /// The latest expiry this caller may give a token it creates.
    pub fn ceiling(&self) -> Ceiling {
        match self.token() {
            Some(token) => Ceiling::Creator(token.expires_at),
            None => Ceiling::Unbounded,
        }
    }
}
