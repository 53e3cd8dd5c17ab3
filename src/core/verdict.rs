//! Whether a presented token may act now, and with which scopes: the one
//! decision behind verify's `code`, API-token authentication and
//! forward-auth, each of which only maps the verdict to its own answer.

use super::ids::Id;
use super::model::{TokenGrant, TokenState, Workspace};
use super::scopes::{self, Scope};
use super::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Usable, with the grant's effective scopes (its own ∩ its owner's).
    Valid,
    /// Usable, but without one of the scopes asked for.
    InsufficientScope,
    /// Not a token at all: wrong shape or checksum.
    Malformed,
    /// No such token, or one of a workspace the caller cannot see.
    NotFound,
    Expired,
    Revoked,
    /// The owner was removed from the workspace, or disabled.
    Disabled,
}

impl Verdict {
    /// The `code` of `POST /tokens/verify` (§4).
    pub fn code(self) -> &'static str {
        match self {
            Verdict::Valid => "VALID",
            Verdict::InsufficientScope => "INSUFFICIENT_SCOPE",
            Verdict::Malformed => "MALFORMED",
            Verdict::NotFound => "NOT_FOUND",
            Verdict::Expired => "EXPIRED",
            Verdict::Revoked => "REVOKED",
            Verdict::Disabled => "DISABLED",
        }
    }

    /// Why a token that cannot act is refused, as a `401 invalid_token`
    /// says it; `None` for a token that can act.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Verdict::Valid | Verdict::InsufficientScope => None,
            Verdict::Malformed => Some("the API token is malformed"),
            Verdict::NotFound => Some("the API token is not known"),
            Verdict::Expired => Some("the API token has expired"),
            Verdict::Revoked => Some("the API token has been revoked"),
            Verdict::Disabled => Some("the API token's owner can no longer use it"),
        }
    }

    /// Whether the token shows itself to the caller: the verify answer
    /// carries its object only then.
    pub fn shows_token(self) -> bool {
        !matches!(self, Verdict::Malformed | Verdict::NotFound)
    }
}

/// The verdict on a well-formed token looked up by its hash. `found` is
/// what the lookup returned; `workspace`, when given, is the only
/// workspace whose tokens the caller may see (another's is not found: a
/// copied prefix, scope or domain name proves nothing); `wanted` are scopes
/// the token must hold on top.
pub fn judge(
    found: Option<&TokenGrant>,
    workspace: Option<Id<Workspace>>,
    wanted: &[Scope],
    now: Timestamp,
) -> Verdict {
    let Some(grant) = found else {
        return Verdict::NotFound;
    };
    if workspace.is_some_and(|workspace| grant.token.workspace_id != workspace) {
        return Verdict::NotFound;
    }
    match grant.token.state(now) {
        TokenState::Revoked => Verdict::Revoked,
        TokenState::Expired => Verdict::Expired,
        TokenState::Active => match grant.owner_grants() {
            None => Verdict::Disabled,
            Some(_)
                if wanted
                    .iter()
                    .all(|w| scopes::holds(grant.effective_scopes(), w)) =>
            {
                Verdict::Valid
            }
            Some(_) => Verdict::InsufficientScope,
        },
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
            judge(
                Some(&grant(Some(100), None, member("contacts"), false)),
                None,
                &[],
                now
            ),
            Verdict::Expired
        );
        assert_eq!(
            judge(
                Some(&grant(Some(50), Some(60), member("contacts"), false)),
                None,
                &[],
                now
            ),
            Verdict::Revoked
        );
        assert_eq!(
            judge(Some(&grant(None, None, None, false)), None, &[], now),
            Verdict::Disabled
        );
        assert_eq!(
            judge(
                Some(&grant(None, None, member("contacts"), true)),
                None,
                &[],
                now
            ),
            Verdict::Disabled
        );
        let member_token = grant(Some(101), None, member("contacts:read"), false);
        assert_eq!(judge(Some(&member_token), None, &[], now), Verdict::Valid);
        assert_eq!(member_token.effective_scopes(), decode("contacts:read"));
        let admin = Some(Membership {
            role: Role::Admin,
            scopes: vec![],
        });
        let admin_token = grant(None, None, admin, false);
        assert_eq!(judge(Some(&admin_token), None, &[], now), Verdict::Valid);
        assert_eq!(admin_token.effective_scopes(), decode("contacts campaigns"));
    }

    #[test]
    fn another_workspace_s_token_and_missing_scopes() {
        let now = Timestamp(100);
        let token = grant(None, None, member("contacts:read"), false);
        let own = token.token.workspace_id;
        assert_eq!(judge(None, Some(own), &[], now), Verdict::NotFound);
        assert_eq!(judge(Some(&token), Some(own), &[], now), Verdict::Valid);
        assert_eq!(
            judge(Some(&token), Some(Id::new()), &[], now),
            Verdict::NotFound
        );
        assert_eq!(
            judge(Some(&token), None, &decode("contacts:read"), now),
            Verdict::Valid
        );
        assert_eq!(
            judge(Some(&token), None, &decode("contacts"), now),
            Verdict::InsufficientScope
        );
        // A token that cannot act is refused for that, whatever it lacks.
        let revoked = grant(None, Some(50), member("contacts:read"), false);
        assert_eq!(
            judge(Some(&revoked), None, &decode("contacts"), now),
            Verdict::Revoked
        );
        assert_eq!(Verdict::InsufficientScope.code(), "INSUFFICIENT_SCOPE");
        assert!(Verdict::InsufficientScope.refusal().is_none());
        assert!(!Verdict::NotFound.shows_token());
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
