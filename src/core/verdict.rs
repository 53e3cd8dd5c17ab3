//! Whether a stored token may act now, and with which scopes.

use super::model::{TokenGrant, TokenState};
use super::scopes::Scope;
use super::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Usable, with these effective scopes (its own ∩ its owner's now).
    Valid(Vec<Scope>),
    Expired,
    Revoked,
    /// The owner was removed from the workspace, or disabled.
    Disabled,
}

pub fn judge(grant: &TokenGrant, now: Timestamp) -> Verdict {
    match grant.token.state(now) {
        TokenState::Revoked => Verdict::Revoked,
        TokenState::Expired => Verdict::Expired,
        TokenState::Active => match grant.owner_grants() {
            Some(grants) => Verdict::Valid(grants.narrow(&grant.token.scopes)),
            None => Verdict::Disabled,
        },
    }
}

/// The token's scopes as its owner's grants allow them now; empty when the
/// owner can no longer act.
pub fn effective_scopes(grant: &TokenGrant) -> Vec<Scope> {
    grant
        .owner_grants()
        .map(|grants| grants.narrow(&grant.token.scopes))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::Id;
    use crate::core::model::{AccountRef, Membership, Role, Token};
    use crate::core::scopes::decode;

    fn grant(
        expires_at: Option<i64>,
        revoked_at: Option<i64>,
        membership: Option<Membership>,
        disabled: bool,
    ) -> TokenGrant {
        TokenGrant {
            token: Token {
                id: Id::new(),
                number: 1,
                name: "t".into(),
                hint: "tw_…abcd".into(),
                scopes: decode("contacts campaigns"),
                workspace_id: Id::new(),
                created_by: AccountRef {
                    id: Id::new(),
                    email: "a@example.com".into(),
                },
                created_at: Timestamp(0),
                expires_at: expires_at.map(Timestamp),
                last_used_at: None,
                last_used_ip: None,
                revoked_at: revoked_at.map(Timestamp),
                replaced_by: None,
            },
            owner_disabled: disabled,
            owner_membership: membership,
        }
    }

    fn member(scopes: &str) -> Option<Membership> {
        Some(Membership {
            role: Role::Member,
            scopes: decode(scopes),
        })
    }

    #[test]
    fn each_state_gets_its_verdict() {
        let now = Timestamp(100);
        assert_eq!(
            judge(&grant(Some(100), None, member("contacts"), false), now),
            Verdict::Expired
        );
        assert_eq!(
            judge(&grant(Some(50), Some(60), member("contacts"), false), now),
            Verdict::Revoked
        );
        assert_eq!(
            judge(&grant(None, None, None, false), now),
            Verdict::Disabled
        );
        assert_eq!(
            judge(&grant(None, None, member("contacts"), true), now),
            Verdict::Disabled
        );
        assert_eq!(
            judge(&grant(Some(101), None, member("contacts:read"), false), now),
            Verdict::Valid(decode("contacts:read"))
        );
        let admin = Some(Membership {
            role: Role::Admin,
            scopes: vec![],
        });
        assert_eq!(
            judge(&grant(None, None, admin, false), now),
            Verdict::Valid(decode("contacts campaigns"))
        );
    }
}
