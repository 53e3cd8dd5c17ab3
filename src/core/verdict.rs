//! Whether a stored token may act now, and with which scopes.

use super::model::{TokenGrant, TokenState};
use super::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Usable, with the grant's effective scopes (its own ∩ its owner's).
    Valid,
    Expired,
    Revoked,
    /// The owner was removed from the workspace, or disabled.
    Disabled,
}

pub fn judge(grant: &TokenGrant, now: Timestamp) -> Verdict {
    match grant.token.state(now) {
        TokenState::Revoked => Verdict::Revoked,
        TokenState::Expired => Verdict::Expired,
        TokenState::Active if grant.owner_grants().is_some() => Verdict::Valid,
        TokenState::Active => Verdict::Disabled,
    }
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
        TokenGrant::new(
            Token {
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
            disabled,
            membership,
        )
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
        let member_token = grant(Some(101), None, member("contacts:read"), false);
        assert_eq!(judge(&member_token, now), Verdict::Valid);
        assert_eq!(member_token.effective_scopes(), decode("contacts:read"));
        let admin = Some(Membership {
            role: Role::Admin,
            scopes: vec![],
        });
        let admin_token = grant(None, None, admin, false);
        assert_eq!(judge(&admin_token, now), Verdict::Valid);
        assert_eq!(admin_token.effective_scopes(), decode("contacts campaigns"));
    }

    #[test]
    fn an_owner_who_cannot_act_leaves_no_effective_scopes() {
        assert!(grant(None, None, None, false).effective_scopes().is_empty());
        assert!(
            grant(None, None, member("contacts"), true)
                .effective_scopes()
                .is_empty()
        );
    }
}
