//! Accounts and sessions (§4 "Accounts and sessions"): sign-up, sign-in,
//! sign-out, and the signed-in account itself.

use std::net::IpAddr;
use std::time::Instant;

use serde::Serialize;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, header};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::{self, SESSION_COOKIE};
use super::body::{self, Fields};
use super::{reply, with};
use crate::auth::caller::SessionCaller;
use crate::auth::jwt::Claims;
use crate::auth::password::Password;
use crate::core::audit::Actor;
use crate::core::ids::Id;
use crate::core::model::{Account, Role, Session, Workspace};
use crate::core::ratelimit::retry_after_seconds;
use crate::core::time::Timestamp;
use crate::core::validate;
use crate::error::ApiError;
use crate::state::{AppState, lock};
use crate::store::{NewAccount, SignUpRules};

pub const SESSION_SECONDS: i64 = 7 * 86_400;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    sign_up(state.clone())
        .or(sign_in(state.clone()))
        .unify()
        .or(sign_out(state.clone()))
        .unify()
        .or(me(state.clone()))
        .unify()
        .or(change_password(state))
        .unify()
        .boxed()
}

/// POST /api/v1/accounts
fn sign_up(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("accounts")
        .and(warp::post())
        .and(auth::client_ip(state.clone()))
        .and(auth::optional_session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_sign_up)
}

/// POST /api/v1/sessions
fn sign_in(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("sessions")
        .and(warp::post())
        .and(auth::client_ip(state.clone()))
        .and(warp::header::optional::<String>("x-forwarded-proto"))
        .and(body::json())
        .and(with(state))
        .and_then(handle_sign_in)
}

/// DELETE /api/v1/sessions/current
fn sign_out(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("sessions" / "current")
        .and(warp::delete())
        .and(auth::session(state.clone()))
        .and(with(state))
        .and_then(handle_sign_out)
}

/// GET /api/v1/me
fn me(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("me")
        .and(warp::get())
        .and(auth::session(state.clone()))
        .and(with(state))
        .and_then(handle_me)
}

/// PATCH /api/v1/me
fn change_password(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("me")
        .and(warp::patch())
        .and(auth::session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_change_password)
}

#[derive(Serialize)]
struct SignedIn<'a> {
    account: &'a Account,
    /// `null` when the session went into a cookie instead.
    token: Option<String>,
    expires_at: Timestamp,
}

/// Compares in time independent of where the strings differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn handle_sign_up(
    ip: Option<IpAddr>,
    session: Option<SessionCaller>,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    let email = fields
        .required_string("email")
        .and_then(|e| fields.check("email", validate::email(&e)));
    let password = fields.required_string("password");
    if let Some(p) = &password {
        fields.check("password", validate::password(p));
    }
    let setup_code = fields.string("setup_code");
    fields.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::internal("sign-up", "fields passed without values").into());
    };

    // Only compared here; whether it is needed is decided inside the write.
    let setup_code_matched = lock(&state.setup_code).as_deref().map(|expected| {
        let given = setup_code.unwrap_or_default();
        same_secret(given.trim(), expected)
    });
    let hash = state
        .passwords
        .hash(Password::new(password))
        .await
        .map_err(|e| ApiError::internal("hashing a password", e))?;
    let now = Timestamp::now();
    let (account, _workspace) = state
        .store
        .create_account(
            NewAccount {
                id: Id::new(),
                workspace_name: personal_workspace_name(&email),
                email,
                password_hash: hash,
                now,
                allowed: SignUpRules {
                    by: session.as_ref().map(|s| s.account.id),
                    setup_code_matched,
                    from_cli: false,
                },
            },
            Actor::session(session.as_ref().map(|s| s.account.id), ip),
        )
        .await?;
    if account.instance_admin {
        lock(&state.setup_code).take();
    }
    let (token, expires_at) = start_session(&state, account.id, ip).await?;
    Ok(reply::created(&SignedIn {
        account: &account,
        token: Some(token),
        expires_at,
    }))
}

fn personal_workspace_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    let name: String = local.chars().take(80).collect();
    format!("{name}'s workspace")
}

async fn start_session(
    state: &AppState,
    account_id: Id<Account>,
    ip: Option<IpAddr>,
) -> Result<(String, Timestamp), ApiError> {
    let now = Timestamp::now();
    let session = Session {
        id: Id::new(),
        account_id,
        created_at: now,
        expires_at: now.plus(SESSION_SECONDS),
    };
    state
        .store
        .create_session(session.clone(), Actor::session(Some(account_id), ip))
        .await?;
    let jwt = state.session_key.sign(&Claims {
        sub: account_id.to_string(),
        jti: session.id.to_string(),
        iat: now.0,
        exp: session.expires_at.0,
    });
    Ok((jwt, session.expires_at))
}

/// A password attempt, counted as a failure from the moment it starts: the
/// decision to let it run and its count are made under one lock, so no
/// number of concurrent attempts gets more than the limit checked (§9
/// "Decided inside the write"). A success takes its own count back; earlier
/// failures stay until they leave the window.
struct Attempt {
    email: String,
    ip: Option<IpAddr>,
    at: Instant,
}

impl Attempt {
    /// Starts an attempt, or refuses with `429` while the email or the
    /// address is locked out.
    fn begin(state: &AppState, email: &str, ip: Option<IpAddr>) -> Result<Attempt, ApiError> {
        let at = Instant::now();
        let mut failures = lock(&state.login_failures);
        let by_email = failures.by_email.retry_after(&email.to_owned(), at);
        let by_ip = ip.and_then(|ip| failures.by_ip.retry_after(&ip, at));
        if let Some(wait) = by_email.max(by_ip) {
            return Err(ApiError::RateLimited {
                retry_after: retry_after_seconds(wait),
            });
        }
        failures.by_email.record_failure(email.to_owned(), at);
        if let Some(ip) = ip {
            failures.by_ip.record_failure(ip, at);
        }
        Ok(Attempt {
            email: email.to_owned(),
            ip,
            at,
        })
    }

    fn succeeded(self, state: &AppState) {
        let mut failures = lock(&state.login_failures);
        failures.by_email.withdraw(&self.email, self.at);
        if let Some(ip) = self.ip {
            failures.by_ip.withdraw(&ip, self.at);
        }
    }
}

async fn handle_sign_in(
    ip: Option<IpAddr>,
    forwarded_proto: Option<String>,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    let email = fields.required_string("email");
    let password = fields.required_string("password");
    let cookie = fields.boolean("cookie").unwrap_or(false);
    fields.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::internal("sign-in", "fields passed without values").into());
    };
    let email = email.trim().to_lowercase();
    let attempt =
        Attempt::begin(&state, &email, ip).inspect_err(|_| state.metrics.sign_in_locked_out())?;

    let found = state.store.credentials(email.clone()).await?;
    let (account, hash) = match found {
        Some((account, hash)) => (Some(account), Some(hash)),
        None => (None, None),
    };
    // An over-long password cannot be right; it is still hashed against the
    // decoy so the answer takes the usual time.
    let candidate = if validate::password(&password).is_ok() {
        password
    } else {
        String::new()
    };
    let stored = if candidate.is_empty() { None } else { hash };
    let matches = state
        .passwords
        .verify(Password::new(candidate), stored)
        .await
        .map_err(|e| ApiError::internal("checking a password", e))?;
    let account = match account {
        Some(account) if matches && !account.disabled => account,
        _ => {
            state
                .store
                .record_sign_in_failure(email, Actor::session(None, ip))
                .await?;
            state.metrics.sign_in_failed();
            return Err(ApiError::InvalidCredentials.into());
        }
    };
    attempt.succeeded(&state);

    let (token, expires_at) = start_session(&state, account.id, ip).await?;
    if !cookie {
        return Ok(reply::created(&SignedIn {
            account: &account,
            token: Some(token),
            expires_at,
        }));
    }
    let secure = forwarded_proto.is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let mut response = reply::created(&SignedIn {
        account: &account,
        token: None,
        expires_at,
    });
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

async fn handle_sign_out(session: SessionCaller, state: AppState) -> Result<Response, Rejection> {
    state
        .store
        .revoke_session(session.session_id, Timestamp::now(), session.actor())
        .await?;
    let mut response = reply::no_content();
    if session.via_cookie {
        let expired = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
        if let Ok(value) = HeaderValue::from_str(&expired) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// A workspace as its member sees it.
#[derive(Serialize)]
pub struct WorkspaceView {
    #[serde(flatten)]
    pub workspace: Workspace,
    pub role: Role,
}

#[derive(Serialize)]
struct Me {
    account: Account,
    workspaces: Vec<WorkspaceView>,
}

async fn handle_me(session: SessionCaller, state: AppState) -> Result<Response, Rejection> {
    let workspaces = state
        .store
        .workspaces_of(session.account.id)
        .await?
        .into_iter()
        .map(|(workspace, role)| WorkspaceView { workspace, role })
        .collect();
    Ok(reply::ok(&Me {
        account: session.account,
        workspaces,
    }))
}

async fn handle_change_password(
    session: SessionCaller,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    let current = fields.required_string("current_password");
    let new = fields.required_string("new_password");
    if let Some(new) = &new {
        fields.check("new_password", validate::password(new));
    }
    fields.finish()?;
    let (Some(current), Some(new)) = (current, new) else {
        return Err(ApiError::internal("password change", "fields passed without values").into());
    };
    let email = session.account.email.clone();
    let attempt = Attempt::begin(&state, &email, None)?;
    let stored = state
        .store
        .credentials(email.clone())
        .await?
        .map(|(_, hash)| hash);
    let matches = state
        .passwords
        .verify(Password::new(current), stored)
        .await
        .map_err(|e| ApiError::internal("checking a password", e))?;
    if !matches {
        return Err(ApiError::Forbidden("the current password is wrong".into()).into());
    }
    attempt.succeeded(&state);
    let hash = state
        .passwords
        .hash(Password::new(new))
        .await
        .map_err(|e| ApiError::internal("hashing a password", e))?;
    state
        .store
        .change_password(
            session.account.id,
            hash,
            session.session_id,
            Timestamp::now(),
            session.actor(),
        )
        .await?;
    Ok(reply::ok(
        &serde_json::json!({ "account": session.account }),
    ))
}
