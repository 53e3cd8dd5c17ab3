//! Filters that turn a request's credential into a caller value, so that a
//! handler's signature shows who may call it. They run after the path and
//! method filters, so an unknown route is a 404, never a 401.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use warp::http::Method;
use warp::{Filter, Rejection};

use super::query::{Query, query};
use crate::auth::caller::{Caller, Credential, SessionCaller};
use crate::auth::jwt::{JwtError, looks_like_jwt};
use crate::auth::presented_token::{Inspection, inspect};
use crate::core::ids::Id;
use crate::core::model::{TokenGrant, Workspace};
use crate::core::scopes::{self, Resource, Scope};
use crate::core::time::Timestamp;
use crate::core::token_format::is_visible_ascii;
use crate::error::ApiError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "tokenward_session";
/// Cookie-authenticated writes must carry `X-Requested-With: tokenward`: a
/// cross-site form cannot set it (§2.3).
pub const CSRF_HEADER: &str = "x-requested-with";
pub const CSRF_VALUE: &str = "tokenward";

/// The client's address: the TCP peer, or with `--trust-proxy` the last
/// `X-Forwarded-For` entry (the one the proxy itself added).
pub fn client_ip(
    state: AppState,
) -> impl Filter<Extract = (Option<IpAddr>,), Error = Infallible> + Clone {
    crate::serve::peer_addr()
        .and(
            warp::header::optional::<String>("x-forwarded-for")
                .or(warp::any().map(|| None))
                .unify(),
        )
        .map(move |peer: Option<SocketAddr>, forwarded: Option<String>| {
            client_ip_of(&state, peer, forwarded.as_deref())
        })
}

/// The client's address: the last hop of `X-Forwarded-For` behind a
/// trusted proxy, else the TCP peer.
pub fn client_ip_of(
    state: &AppState,
    peer: Option<SocketAddr>,
    forwarded: Option<&str>,
) -> Option<IpAddr> {
    let from_proxy = forwarded.filter(|_| state.trust_proxy).and_then(|list| {
        list.rsplit(',')
            .next()
            .and_then(|ip| ip.trim().parse().ok())
    });
    from_proxy.or(peer.map(|addr| addr.ip()))
}

/// What a request brought to prove who it is.
struct Presented {
    authorization: Option<String>,
    cookie: Option<String>,
    csrf_header: bool,
    method: Method,
    query: Query,
    workspace_header: Option<String>,
    ip: Option<IpAddr>,
}

fn presented(state: AppState) -> impl Filter<Extract = (Presented,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and(warp::cookie::optional::<String>(SESSION_COOKIE))
        .and(warp::header::optional::<String>(CSRF_HEADER))
        .and(warp::header::optional::<String>("x-workspace"))
        .and(warp::method())
        .and(query())
        .and(client_ip(state))
        .map(
            |authorization, cookie, csrf: Option<String>, workspace_header, method, query, ip| {
                Presented {
                    authorization,
                    cookie,
                    csrf_header: csrf.as_deref() == Some(CSRF_VALUE),
                    method,
                    query,
                    workspace_header,
                    ip,
                }
            },
        )
}

enum Resolved {
    Session(SessionCaller),
    /// A valid API token.
    Token(Arc<TokenGrant>),
}

fn invalid(message: &str) -> ApiError {
    ApiError::InvalidToken {
        message: message.to_owned(),
        presented: true,
    }
}

const NO_CREDENTIAL: &str =
    "this needs a credential: sign in, or send an API token as Authorization: Bearer <token>";

/// The bearer credential, or `None` when no Authorization header was sent.
fn bearer(authorization: Option<&str>) -> Result<Option<&str>, ApiError> {
    let Some(value) = authorization else {
        return Ok(None);
    };
    // The usual shape, read without the general trimming and splitting;
    // it reads exactly as below.
    if let Some(credential) = value.strip_prefix("Bearer ")
        && !credential.is_empty()
        && is_visible_ascii(credential.as_bytes())
    {
        return Ok(Some(credential));
    }
    let (scheme, credential) = value.trim().split_once(' ').unwrap_or((value, ""));
    let credential = credential.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || credential.is_empty() {
        return Err(invalid("the Authorization header must be: Bearer <token>"));
    }
    Ok(Some(credential))
}

async fn session_from_jwt(
    state: &AppState,
    jwt: &str,
    via_cookie: bool,
    ip: Option<IpAddr>,
) -> Result<SessionCaller, ApiError> {
    let now = Timestamp::now();
    let claims = state
        .session_key
        .verify(jwt, now.0)
        .map_err(|err| match err {
            JwtError::Expired => invalid("the session has expired; sign in again"),
            JwtError::Malformed | JwtError::BadSignature => {
                invalid("the session token is not valid")
            }
        })?;
    let ended = || invalid("the session has ended; sign in again");
    let session_id = claims.jti.parse().map_err(|_| ended())?;
    let (session, account) = state
        .store
        .live_session(session_id, now)
        .await?
        .ok_or_else(ended)?;
    if account.id.to_string() != claims.sub || account.disabled {
        return Err(ended());
    }
    Ok(SessionCaller {
        account,
        session_id: session.id,
        via_cookie,
        ip,
    })
}

async fn token_caller(
    state: &AppState,
    secret: &str,
    ip: Option<IpAddr>,
    now: Timestamp,
) -> Result<Resolved, ApiError> {
    let Inspection { verdict, grant } =
        inspect(state.store.as_ref(), secret, None, &[], now).await?;
    match (verdict.refusal(), grant) {
        (None, Some(grant)) => {
            state.usage.record_use(&grant, now, ip);
            Ok(Resolved::Token(grant))
        }
        (refusal, _) => Err(invalid(refusal.unwrap_or("the API token is not known"))),
    }
}

async fn resolve(state: &AppState, presented: &Presented) -> Result<Option<Resolved>, ApiError> {
    if let Some(credential) = bearer(presented.authorization.as_deref())? {
        return if looks_like_jwt(credential) {
            Ok(Some(Resolved::Session(
                session_from_jwt(state, credential, false, presented.ip).await?,
            )))
        } else {
            Ok(Some(
                token_caller(state, credential, presented.ip, Timestamp::now()).await?,
            ))
        };
    }
    let Some(cookie) = presented.cookie.as_deref() else {
        return Ok(None);
    };
    let session = session_from_jwt(state, cookie, true, presented.ip).await?;
    csrf_check(presented)?;
    Ok(Some(Resolved::Session(session)))
}

/// A cookie-signed request that changes something must carry
/// `X-Requested-With: tokenward`, which a cross-site form cannot set.
fn csrf_check(presented: &Presented) -> Result<(), ApiError> {
    let writes = !matches!(
        presented.method,
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if writes && !presented.csrf_header {
        return Err(ApiError::Forbidden(
            "a cookie-signed request that changes something must carry the header X-Requested-With: tokenward".into(),
        ));
    }
    Ok(())
}

/// The workspace a verifier token pins for `POST /tokens/verify` (§4): an
/// API token whose effective scopes hold `verify:read`. Its use is recorded
/// like any other.
pub async fn verifier_workspace(
    state: &AppState,
    authorization: &str,
    ip: Option<IpAddr>,
    now: Timestamp,
) -> Result<Id<Workspace>, ApiError> {
    let Some(credential) = bearer(Some(authorization))? else {
        return Err(invalid("the Authorization header must be: Bearer <token>"));
    };
    if looks_like_jwt(credential) {
        return Err(ApiError::Forbidden(
            "verification takes a verifier token (an API token with the verify scope) or a workspace_id, not a session".into(),
        ));
    }
    match token_caller(state, credential, ip, now).await? {
        Resolved::Token(grant) => {
            let needed = Scope::read(Resource::Verify);
            if !scopes::holds(grant.effective_scopes(), &needed) {
                return Err(ApiError::InsufficientScope {
                    needed: needed.to_string(),
                });
            }
            Ok(grant.token.workspace_id)
        }
        Resolved::Session(_) => Err(invalid("the API token is not known")),
    }
}

fn session_only() -> ApiError {
    ApiError::Forbidden("this endpoint needs a signed-in session; API tokens cannot use it".into())
}

/// A signed-in session; API tokens are refused.
pub fn session(
    state: AppState,
) -> impl Filter<Extract = (SessionCaller,), Error = Rejection> + Clone {
    presented(state.clone()).and_then(move |presented: Presented| {
        let state = state.clone();
        async move {
            match resolve(&state, &presented).await {
                Ok(Some(Resolved::Session(session))) => Ok(session),
                Ok(Some(Resolved::Token(_))) => Err(warp::reject::custom(session_only())),
                Ok(None) => Err(warp::reject::custom(ApiError::InvalidToken {
                    message: NO_CREDENTIAL.into(),
                    presented: false,
                })),
                Err(err) => Err(warp::reject::custom(err)),
            }
        }
    })
}

/// A session if one was presented (sign-up is open to anyone, or to an
/// instance admin). A stale cookie counts as none.
pub fn optional_session(
    state: AppState,
) -> impl Filter<Extract = (Option<SessionCaller>,), Error = Rejection> + Clone {
    presented(state.clone()).and_then(move |mut presented: Presented| {
        let state = state.clone();
        async move {
            if presented.authorization.is_none() {
                let cookie = presented.cookie.take();
                let Some(cookie) = cookie else {
                    return Ok(None);
                };
                let Ok(session) = session_from_jwt(&state, &cookie, true, presented.ip).await
                else {
                    return Ok(None);
                };
                // A live cookie acts for its account, so the CSRF rule
                // holds here too (§9 "CSRF"): sign-up by an admin included.
                return match csrf_check(&presented) {
                    Ok(()) => Ok(Some(session)),
                    Err(err) => Err(warp::reject::custom(err)),
                };
            }
            match resolve(&state, &presented).await {
                Ok(Some(Resolved::Session(session))) => Ok(Some(session)),
                Ok(Some(Resolved::Token(_))) => Err(warp::reject::custom(session_only())),
                Ok(None) => Ok(None),
                Err(err) => Err(warp::reject::custom(err)),
            }
        }
    })
}

/// `X-Workspace` and `?workspace=` in the API document, as [`caller`]
/// reads them.
pub struct ActingWorkspace;

impl utoipa::IntoParams for ActingWorkspace {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        let parameter = |name: &str, place: ParameterIn, description: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(place)
                .description(Some(description))
                .schema(Some(super::openapi::uuid_schema()))
                .build()
        };
        vec![
            parameter(
                "X-Workspace",
                ParameterIn::Header,
                "The workspace a session acts in (default: its first). Ignored for an API \
                 token, which acts in its own.",
            ),
            parameter(
                "workspace",
                ParameterIn::Query,
                "The same as `X-Workspace`, where a header cannot be set.",
            ),
        ]
    }
}

/// A caller acting in one workspace: an API token in its own, a session in
/// the one `X-Workspace` (or `?workspace=`) names, else its first.
pub fn caller(state: AppState) -> impl Filter<Extract = (Caller,), Error = Rejection> + Clone {
    presented(state.clone()).and_then(move |presented: Presented| {
        let state = state.clone();
        async move {
            workspace_caller(&state, presented)
                .await
                .map_err(warp::reject::custom)
        }
    })
}

async fn workspace_caller(state: &AppState, presented: Presented) -> Result<Caller, ApiError> {
    match resolve(state, &presented).await? {
        None => Err(ApiError::InvalidToken {
            message: NO_CREDENTIAL.into(),
            presented: false,
        }),
        Some(Resolved::Token(grant)) => {
            let membership = grant
                .owner_membership
                .clone()
                .ok_or_else(|| invalid("the API token's owner can no longer use it"))?;
            Ok(Caller {
                account: grant.token.created_by.clone(),
                workspace_id: grant.token.workspace_id,
                membership,
                credential: Credential::Token(grant),
                ip: presented.ip,
            })
        }
        Some(Resolved::Session(session)) => {
            let named = presented
                .workspace_header
                .as_deref()
                .or(presented.query.get("workspace"));
            let workspace_id = match named {
                Some(text) => text
                    .trim()
                    .parse::<Id<_>>()
                    .map_err(|_| ApiError::NotFound)?,
                None => state
                    .store
                    .workspaces_of(session.account.id)
                    .await?
                    .first()
                    .map(|(workspace, _)| workspace.id)
                    .ok_or(ApiError::NotFound)?,
            };
            let membership = state
                .store
                .membership(workspace_id, session.account.id)
                .await?
                .ok_or(ApiError::NotFound)?;
            Ok(Caller {
                account: session.account.reference(),
                workspace_id,
                membership,
                credential: Credential::Session(session.session_id),
                ip: presented.ip,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn a_bearer_credential_is_read_in_any_shape() {
        for (value, credential) in [
            ("Bearer tw_x", Some("tw_x")),
            ("bearer tw_x", Some("tw_x")),
            ("  Bearer   tw_x  ", Some("tw_x")),
            ("Bearer tw_x ", Some("tw_x")),
            ("Bearer tw\u{a0}", Some("tw")),
            ("Bearer tw x", Some("tw x")),
            ("Bearer ~!{}", Some("~!{}")),
        ] {
            assert_eq!(bearer(Some(value)).ok().flatten(), credential, "{value:?}");
        }
        for value in ["Bearer", "Bearer ", "Bearer\ttw_x", "Basic dXNlcg==", ""] {
            assert!(bearer(Some(value)).is_err(), "{value:?}");
        }
        assert_eq!(bearer(None).ok().flatten(), None);
    }
}
