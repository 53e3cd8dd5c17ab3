//! Accounts and sessions (§4 "Accounts and sessions"): sign-up, sign-in,
//! sign-out, and the signed-in account itself.

use std::net::IpAddr;

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, header};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::{self, SESSION_COOKIE};
use super::body::{self, Fields};
use super::openapi::{
    BodyErrors, Conflict, CredentialErrors, RateLimited, ServerErrors, WrongPassword,
};
use super::reply::Data;
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
use crate::store::attempts::{AttemptKey, AttemptTicket};
use crate::store::{NewAccount, SignUpRules};

pub const SESSION_SECONDS: i64 = 7 * 86_400;

/// This file's operations in the API document.
#[derive(OpenApi)]
#[openapi(paths(sign_up, sign_in, sign_out, me, change_password))]
pub(super) struct Doc;

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
///
/// Open to anyone while `allow_signup` is on, else to the instance admin.
/// Every account gets a personal workspace; the first account ever is the
/// instance admin and, when the server listens beyond loopback, needs the
/// one-time `setup_code` from the server's log.
#[utoipa::path(
    post,
    path = "/api/v1/accounts",
    operation_id = "sign_up",
    tag = "accounts",
    summary = "Sign up",
    security((), ("bearer" = []), ("cookie" = [])),
    request_body = SignUpBody,
    responses(
        (status = 201, description = "The account, signed in.", body = Data<SignedIn>),
        BodyErrors, CredentialErrors, Conflict, ServerErrors,
    )
)]
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
///
/// With `"cookie": true` the session goes into an HttpOnly cookie and
/// `token` is `null`. An unknown email and a wrong password answer alike;
/// 10 failures for an account or an address within 15 minutes lock it out.
#[utoipa::path(
    post,
    path = "/api/v1/sessions",
    operation_id = "sign_in",
    tag = "accounts",
    summary = "Sign in",
    request_body = SignInBody,
    responses(
        (status = 201, description = "Signed in.", body = Data<SignedIn>,
            headers(("Set-Cookie" = String,
                description = "The session cookie, when `cookie` was true."))),
        BodyErrors, WrongPassword, RateLimited, ServerErrors,
    )
)]
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
#[utoipa::path(
    delete,
    path = "/api/v1/sessions/current",
    operation_id = "sign_out",
    tag = "accounts",
    summary = "Sign out: end the calling session",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "The session is ended."),
        CredentialErrors, ServerErrors,
    )
)]
fn sign_out(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("sessions" / "current")
        .and(warp::delete())
        .and(auth::session(state.clone()))
        .and(with(state))
        .and_then(handle_sign_out)
}

/// GET /api/v1/me
#[utoipa::path(
    get,
    path = "/api/v1/me",
    operation_id = "get_me",
    tag = "accounts",
    summary = "The signed-in account and its workspaces",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The account with each workspace and its role there.",
            body = Data<Me>),
        CredentialErrors, ServerErrors,
    )
)]
fn me(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("me")
        .and(warp::get())
        .and(auth::session(state.clone()))
        .and(with(state))
        .and_then(handle_me)
}

/// PATCH /api/v1/me
///
/// Every other session of the account is ended.
#[utoipa::path(
    patch,
    path = "/api/v1/me",
    operation_id = "change_password",
    tag = "accounts",
    summary = "Change the password",
    security(("bearer" = []), ("cookie" = [])),
    request_body = ChangePasswordBody,
    responses(
        (status = 200, description = "Changed.", body = Data<PasswordChanged>),
        BodyErrors, CredentialErrors, RateLimited, ServerErrors,
    )
)]
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

// Read by `handle_sign_up`; tests/openapi.rs checks the two agree.
/// The body of `POST /accounts`.
#[derive(ToSchema)]
#[schema(examples(json!({"email": "ada@example.com", "password": "correct horse battery staple"})))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SignUpBody {
    /// An address whose domain has at least two labels; lower-cased. (The
    /// pattern admits all the server takes and a little more: it refuses
    /// control and invisible characters too.)
    #[schema(pattern = r"^\s*[^@\s]+@[^@\s.]+(\.[^@\s.]+)+\s*$")]
    email: String,
    /// 10 to 1024 characters.
    #[schema(min_length = 10, max_length = 1024)]
    password: String,
    /// Only for the first account, when the server asks for it.
    setup_code: Option<String>,
}

// Read by `handle_sign_in`; tests/openapi.rs checks the two agree.
/// The body of `POST /sessions`.
#[derive(ToSchema)]
#[schema(examples(json!({"email": "ada@example.com", "password": "correct horse battery staple"})))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SignInBody {
    email: String,
    password: String,
    /// Put the session in a cookie instead of the answer (the web UI).
    cookie: Option<bool>,
}

// Read by `handle_change_password`; tests/openapi.rs checks the two agree.
/// The body of `PATCH /me`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ChangePasswordBody {
    current_password: String,
    /// 10 to 1024 characters.
    #[schema(min_length = 10, max_length = 1024)]
    new_password: String,
}

/// The answer of `PATCH /me`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct PasswordChanged {
    account: Account,
}

/// A new session.
#[derive(Serialize, ToSchema)]
struct SignedIn<'a> {
    account: &'a Account,
    /// The session token (a JWT, valid 7 days); `null` when the session
    /// went into a cookie instead.
    #[schema(required = true)]
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
/// decision to let it run and its count are made at once, on every node
/// (§9 "Decided inside the write", §12; see [`crate::store::attempts`]). A
/// success takes its own count back; earlier failures stay until they leave
/// the window.
struct Attempt(AttemptTicket);

impl Attempt {
    /// Starts an attempt, or refuses with `429` while the email or the
    /// address is locked out.
    async fn begin(state: &AppState, email: &str, ip: Option<IpAddr>) -> Result<Attempt, ApiError> {
        let mut keys = vec![AttemptKey::Email(email.to_owned())];
        keys.extend(ip.map(AttemptKey::Ip));
        match state.attempts.begin(keys).await? {
            Ok(ticket) => Ok(Attempt(ticket)),
            Err(wait) => Err(ApiError::RateLimited {
                retry_after: retry_after_seconds(wait),
            }),
        }
    }

    async fn succeeded(self, state: &AppState) {
        state.attempts.succeeded(self.0).await;
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
    let attempt = Attempt::begin(&state, &email, ip)
        .await
        .inspect_err(|_| state.metrics.sign_in_locked_out())?;

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
    attempt.succeeded(&state).await;

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
#[derive(Serialize, ToSchema)]
pub struct WorkspaceView {
    #[serde(flatten)]
    pub workspace: Workspace,
    pub role: Role,
}

#[derive(Serialize, ToSchema)]
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
    let attempt = Attempt::begin(&state, &email, None).await?;
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
    attempt.succeeded(&state).await;
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
