//! A caller acting on another token (§3 "No escalation", §9 "Token acting
//! on a token"): it may hand out only scopes it holds, and a calling token
//! may change the scopes of, or reset, only a token that expires no later
//! than itself, so nothing a token does outlives it. The store checks these
//! against the token as it is inside the write, not as it was read before.

use super::model::Token;
use super::scopes::{Grants, Scope};
use super::time::Timestamp;

#[derive(Clone, Debug)]
pub struct ActingOn {
    /// What the caller holds: a session its member's grants, a token its
    /// effective scopes.
    pub holds: Grants,
    /// A calling token's expiry (`Some(None)`: it never expires); `None`
    /// for a session, which no expiry bounds.
    pub token_expiry: Option<Option<Timestamp>>,
}

/// Why the caller may not do it, as a sentence for a `403`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal(pub String);

impl ActingOn {
    /// A caller bound by nothing: the command line, or a test.
    pub fn unbounded() -> Self {
        ActingOn {
            holds: Grants::All,
            token_expiry: None,
        }
    }

    /// Every scope handed out must be held by the caller.
    pub fn may_hand_out(&self, scopes: &[Scope]) -> Result<(), Refusal> {
        match scopes.iter().find(|scope| !self.holds.holds(scope)) {
            None => Ok(()),
            Some(scope) => Err(Refusal(format!(
                "you cannot hand out {scope}: you do not hold it yourself"
            ))),
        }
    }

    /// A calling token may change only a token that expires no later than
    /// itself.
    pub fn may_change(&self, target: &Token) -> Result<(), Refusal> {
        let Some(own) = self.token_expiry else {
            return Ok(());
        };
        let within = match (own, target.expires_at) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(own), Some(theirs)) => theirs <= own,
        };
        if within {
            Ok(())
        } else {
            Err(Refusal(
                "a token cannot change the permissions of, or reset, a token that outlives it"
                    .into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::Id;
    use crate::core::model::AccountRef;
    use crate::core::scopes::decode;

    fn token(expires_at: Option<i64>) -> Token {
        Token {
            id: Id::new(),
            number: 1,
            name: "t".into(),
            hint: "tw_…abcd".into(),
            scopes: decode("contacts"),
            workspace_id: Id::new(),
            created_by: AccountRef {
                id: Id::new(),
                email: "a@example.com".into(),
            },
            created_at: Timestamp(0),
            expires_at: expires_at.map(Timestamp),
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            replaced_by: None,
        }
    }

    fn by_token(expires_at: Option<i64>) -> ActingOn {
        ActingOn {
            holds: Grants::Only(decode("contacts tokens")),
            token_expiry: Some(expires_at.map(Timestamp)),
        }
    }

    #[test]
    fn a_token_changes_only_tokens_that_do_not_outlive_it() {
        let hour = by_token(Some(3_600));
        assert!(hour.may_change(&token(Some(3_600))).is_ok());
        assert!(hour.may_change(&token(Some(60))).is_ok());
        assert!(hour.may_change(&token(Some(30 * 86_400))).is_err());
        assert!(hour.may_change(&token(None)).is_err());
        let forever = by_token(None);
        assert!(forever.may_change(&token(None)).is_ok());
        assert!(forever.may_change(&token(Some(1))).is_ok());
    }

    #[test]
    fn a_session_is_bounded_by_its_grants_only() {
        let session = ActingOn {
            holds: Grants::Only(decode("contacts")),
            token_expiry: None,
        };
        assert!(session.may_change(&token(None)).is_ok());
        assert!(session.may_hand_out(&decode("contacts:read")).is_ok());
        let refused = session
            .may_hand_out(&decode("contacts billing"))
            .unwrap_err();
        assert!(refused.0.contains("billing"), "{refused:?}");
        assert!(
            ActingOn::unbounded()
                .may_hand_out(&decode("billing"))
                .is_ok()
        );
    }
}
