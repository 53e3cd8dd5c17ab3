//! API tokens (§4 "API tokens", §5): create, list, read, edit, revoke,
//! reset with grace, the calling token itself, and verify for other
//! services.

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::Instant;

use serde_json::{Map, Value};
use utoipa::{IntoParams, OpenApi, ToSchema};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::{self, ActingWorkspace};
use super::body::{self, Fields};
use super::openapi::{
    BodyErrors, Conflict, CredentialErrors, NotFound, RateLimited, ServerErrors, Unprocessable,
};
use super::query::{PageParams, Query, query};
use super::reply::{Data, Page};
pub use super::token_object::TokenView;
use super::token_object::TokenWithSecret;
use super::{reply, with};
use crate::auth::caller::Caller;
use crate::auth::presented_token::{Inspection, inspect};
use crate::core::expiry::{self, ExpiryRequest};
use crate::core::ids::Id;
use crate::core::model::{Token, TokenState, Workspace, name_base};
use crate::core::ratelimit::retry_after_seconds;
use crate::core::scopes::{Access, Scope};
use crate::core::settings::Settings;
use crate::core::time::Timestamp;
use crate::core::token_format::{self, Prefix, Secret};
use crate::core::validate;
use crate::core::verdict::Verdict;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{NewToken, TokenEdit, TokenName, TokenQuery};

type TokenId = Id<Token>;

/// This file's operations in the API document.
#[derive(OpenApi)]
#[openapi(
    paths(verify, token_self, create, list, get, update, revoke, reset),
    modifiers(&ResetBodyMayBeLeftOut)
)]
pub(super) struct Doc;

/// A reset's body may be left out (`body::optional_json`); utoipa marks a
/// body optional only by making its schema nullable, and `null` is not a
/// body the server takes.
struct ResetBodyMayBeLeftOut;

impl utoipa::Modify for ResetBodyMayBeLeftOut {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let reset = openapi
            .paths
            .paths
            .get_mut("/api/v1/tokens/{id}/reset")
            .and_then(|item| item.post.as_mut())
            .and_then(|operation| operation.request_body.as_mut());
        if let Some(utoipa::openapi::RefOr::T(body)) = reset {
            body.required = Some(utoipa::openapi::Required::False);
        }
    }
}

/// Every token route but [`verify`], which `api::routes` tries first.
pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    token_self(state.clone())
        .or(create(state.clone()))
        .unify()
        .or(list(state.clone()))
        .unify()
        .or(get(state.clone()))
        .unify()
        .or(update(state.clone()))
        .unify()
        .or(revoke(state.clone()))
        .unify()
        .or(reset(state))
        .unify()
        .boxed()
}

/// POST /api/v1/tokens/verify
///
/// Every answer is about one workspace, pinned either by the caller's own
/// verifier token (an API token holding `verify` or `verify:read`; never
/// rate limited) or, anonymously, by `workspace_id` (failed verifications
/// are limited per client address). A token of any other workspace answers
/// like an unknown one. A successful verification counts as a use of the
/// token.
#[utoipa::path(
    post,
    path = "/api/v1/tokens/verify",
    operation_id = "verify_token",
    tag = "tokens",
    summary = "Check a token, for another service",
    security((), ("verifier" = [])),
    request_body = VerifyBody,
    responses(
        (status = 200, description = "The verdict: always `200` for a well-formed request.",
            body = Data<Verification>),
        BodyErrors, CredentialErrors, RateLimited, ServerErrors,
    )
)]
pub fn verify(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("tokens" / "verify")
        .and(warp::post())
        .and(auth::client_ip(state.clone()))
        .and(warp::header::optional::<String>("authorization"))
        .and(body::json())
        .and(with(state))
        .and_then(handle_verify_fields)
}

/// GET /api/v1/tokens/self
#[utoipa::path(
    get,
    path = "/api/v1/tokens/self",
    operation_id = "get_token_self",
    tag = "tokens",
    summary = "The calling API token itself",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The calling token.", body = Data<TokenView>),
        CredentialErrors, ServerErrors,
    )
)]
fn token_self(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("tokens" / "self")
        .and(warp::get())
        .and(auth::caller(state.clone()))
        .and(with(state))
        .and_then(handle_self)
}

/// POST /api/v1/tokens
///
/// Only scopes the caller holds, and, for a token creating a token, an
/// expiry no later than its own. The secret is in this answer only.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    operation_id = "create_token",
    tag = "tokens",
    summary = "Create a token (needs `tokens`)",
    security(("bearer" = []), ("cookie" = [])),
    params(ActingWorkspace),
    request_body = CreateTokenBody,
    responses(
        (status = 201, description = "The token with its secret, shown this once.",
            body = Data<TokenWithSecret>,
            links(
                ("GetToken" = (operation_id = "get_token",
                    parameters(("id" = "$response.body#/data/id")))),
                ("UpdateToken" = (operation_id = "update_token",
                    parameters(("id" = "$response.body#/data/id")))),
                ("RevokeToken" = (operation_id = "revoke_token",
                    parameters(("id" = "$response.body#/data/id")))),
                ("ResetToken" = (operation_id = "reset_token",
                    parameters(("id" = "$response.body#/data/id")))),
            )),
        BodyErrors, CredentialErrors, NotFound, ServerErrors,
    )
)]
fn create(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("tokens")
        .and(warp::post())
        .and(auth::caller(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_create)
}

/// GET /api/v1/tokens
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    operation_id = "list_tokens",
    tag = "tokens",
    summary = "The workspace's tokens (needs `tokens:read`)",
    security(("bearer" = []), ("cookie" = [])),
    params(ActingWorkspace, TokenListParams, PageParams),
    responses(
        (status = 200, description = "One page of the list: admins see every token of the workspace, members their own.", body = Page<TokenView>),
        CredentialErrors, NotFound, Unprocessable, ServerErrors,
    )
)]
fn list(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("tokens")
        .and(warp::get())
        .and(auth::caller(state.clone()))
        .and(query())
        .and(with(state))
        .and_then(handle_list)
}

/// GET /api/v1/tokens/{id}
#[utoipa::path(
    get,
    path = "/api/v1/tokens/{id}",
    operation_id = "get_token",
    tag = "tokens",
    summary = "A token (needs `tokens:read`)",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = "uuid", description = "The token."), ActingWorkspace),
    responses(
        (status = 200, description = "The token.", body = Data<TokenView>),
        CredentialErrors, NotFound, ServerErrors,
    )
)]
fn get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("tokens" / TokenId)
        .and(warp::get())
        .and(auth::caller(state.clone()))
        .and(with(state))
        .and_then(handle_get)
}

/// PATCH /api/v1/tokens/{id}
#[utoipa::path(
    patch,
    path = "/api/v1/tokens/{id}",
    operation_id = "update_token",
    tag = "tokens",
    summary = "Rename a token or change its scopes (needs `tokens`)",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = "uuid", description = "The token."), ActingWorkspace),
    request_body = UpdateTokenBody,
    responses(
        (status = 200, description = "The changed token.", body = Data<TokenView>),
        BodyErrors, CredentialErrors, NotFound, Conflict, ServerErrors,
    )
)]
fn update(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("tokens" / TokenId)
        .and(warp::patch())
        .and(auth::caller(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_update)
}

/// DELETE /api/v1/tokens/{id}
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    operation_id = "revoke_token",
    tag = "tokens",
    summary = "Revoke a token now (needs `tokens`)",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = "uuid", description = "The token."), ActingWorkspace),
    responses(
        (status = 204, description = "Revoked: its very next use fails. Revoking a revoked token is a `204` too."),
        CredentialErrors, NotFound, Conflict, ServerErrors,
    )
)]
fn revoke(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("tokens" / TokenId)
        .and(warp::delete())
        .and(auth::caller(state.clone()))
        .and(with(state))
        .and_then(handle_revoke)
}

/// POST /api/v1/tokens/{id}/reset
///
/// The new token has the old one's scopes, owner and lifetime length, and
/// is named with its own number; the old token expires at the end of the
/// grace period (`grace_seconds`, else `reset_grace_seconds`) unless it
/// expires sooner, and names the new one in `replaced_by`.
#[utoipa::path(
    post,
    path = "/api/v1/tokens/{id}/reset",
    operation_id = "reset_token",
    tag = "tokens",
    summary = "Replace a token by a new one, the old one living on for a grace period (needs `tokens`)",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = "uuid", description = "The token."), ActingWorkspace),
    request_body(content = ResetTokenBody, description = "May be left out."),
    responses(
        (status = 201, description = "The new token with its secret, shown this once.",
            body = Data<TokenWithSecret>,
            links(
                ("GetToken" = (operation_id = "get_token",
                    parameters(("id" = "$response.body#/data/id")))),
                ("UpdateToken" = (operation_id = "update_token",
                    parameters(("id" = "$response.body#/data/id")))),
                ("RevokeToken" = (operation_id = "revoke_token",
                    parameters(("id" = "$response.body#/data/id")))),
                ("ResetToken" = (operation_id = "reset_token",
                    parameters(("id" = "$response.body#/data/id")))),
            )),
        BodyErrors, CredentialErrors, NotFound, Conflict, ServerErrors,
    )
)]
fn reset(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("tokens" / TokenId / "reset")
        .and(warp::post())
        .and(auth::caller(state.clone()))
        .and(body::optional_json())
        .and(with(state))
        .and_then(handle_reset)
}

// Read by `handle_verify`; tests/openapi.rs checks the two agree.
/// The body of `POST /tokens/verify`.
#[derive(ToSchema)]
#[schema(examples(json!({"token": "tw_4fPqd0aXc2bRt9LmN3vY7kQ1sE8hJ6uW5pZo0Ab1C2", "scopes": ["contacts:read"]})))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct VerifyBody {
    /// The token to check.
    token: String,
    /// Scopes the token must hold, all of them.
    scopes: Option<Vec<Scope>>,
    /// The workspace whose tokens are verified; required without a
    /// verifier token, and equal to its workspace with one.
    #[schema(value_type = Option<String>, format = "uuid")]
    workspace_id: Option<Id<Workspace>>,
}

/// A verdict of `POST /tokens/verify`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Verification {
    /// `true` exactly when `code` is `VALID`.
    valid: bool,
    code: VerifyCode,
    /// The token with its effective scopes; `null` for `MALFORMED` and
    /// `NOT_FOUND`.
    #[schema(required = true)]
    token: Option<TokenView<'static>>,
}

/// Why a token is or is not valid.
#[derive(ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(dead_code)]
enum VerifyCode {
    Valid,
    Malformed,
    NotFound,
    Expired,
    Revoked,
    /// Its owner was removed from the workspace or disabled.
    Disabled,
    /// Valid, but without every scope asked for.
    InsufficientScope,
}

// Read by `handle_create`; tests/openapi.rs checks the two agree.
/// The body of `POST /tokens`. With no expiry given, the token lives
/// `default_ttl_seconds`.
#[derive(ToSchema)]
#[schema(examples(json!({"name": "CRM Integration", "scopes": ["tokens:read"], "expires_in": 86400})))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CreateTokenBody {
    /// 1–100 characters after trimming; no control, bidirectional or
    /// zero-width characters.
    #[schema(min_length = 1)]
    name: String,
    /// At least one; only scopes the caller holds.
    #[schema(min_items = 1)]
    scopes: Vec<Scope>,
    /// Seconds from now; not with `expires_at`.
    #[schema(minimum = 1)]
    expires_in: Option<i64>,
    /// An instant in the future; not with `expires_in`.
    expires_at: Option<Timestamp>,
    /// A token that never expires, where the settings allow it.
    never_expires: Option<bool>,
}

/// `?state=` of `GET /tokens`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct TokenListParams {
    /// Which tokens: `active`, `expired`, `revoked` or `all` (the default;
    /// tokens not yet purged).
    #[param(inline)]
    state: Option<StateFilter>,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum StateFilter {
    Active,
    Expired,
    Revoked,
    All,
}

// Read by `handle_update`; tests/openapi.rs checks the two agree.
/// The body of `PATCH /tokens/{id}`.
#[derive(ToSchema)]
#[schema(examples(json!({"name": "CRM Integration (read only)", "scopes": ["tokens:read"]})))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct UpdateTokenBody {
    /// 1–100 characters after trimming.
    #[schema(min_length = 1)]
    name: Option<String>,
    /// At least one; only scopes the caller holds.
    #[schema(min_items = 1)]
    scopes: Option<Vec<Scope>>,
}

// Read by `handle_reset`; tests/openapi.rs checks the two agree.
/// The body of `POST /tokens/{id}/reset` (which may be left out).
#[derive(ToSchema)]
#[schema(examples(json!({"grace_seconds": 3600})))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ResetTokenBody {
    /// How long the old token lives on; default `reset_grace_seconds`.
    #[schema(minimum = 0, maximum = 604_800)]
    grace_seconds: Option<i64>,
}

/// The prefix new tokens of the workspace get: its own, else the instance's.
pub async fn prefix_for(
    state: &AppState,
    workspace: Id<Workspace>,
    settings: &Settings,
) -> Result<Prefix, ApiError> {
    let own = state
        .store
        .workspace(workspace)
        .await?
        .and_then(|w| w.token_prefix);
    let text = own.unwrap_or_else(|| settings.token_prefix.clone());
    Prefix::parse(&text).ok_or_else(|| {
        ApiError::internal("token prefix", format!("stored prefix {text:?} is invalid"))
    })
}

pub fn new_secret(prefix: &Prefix) -> Result<Secret, ApiError> {
    token_format::generate(prefix).map_err(|e| ApiError::internal("generating a token", e))
}

/// A token the caller may manage, or `404` (another member's token is not
/// there for a member, §9).
async fn manageable(state: &AppState, caller: &Caller, id: TokenId) -> Result<Token, ApiError> {
    state
        .store
        .token(caller.workspace_id, id)
        .await?
        .filter(|token| caller.may_manage(token))
        .ok_or(ApiError::NotFound)
}

/// A verification's body: the common `{"token": "…"}`, read without a
/// tree (`body::just_a_token`), or any other, field by field.
pub(super) enum Asked<'a> {
    JustAToken(&'a str),
    Fields(Fields),
}

async fn handle_verify_fields(
    ip: Option<IpAddr>,
    authorization: Option<String>,
    fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    let now = Timestamp::now();
    handle_verify(
        ip,
        authorization.as_deref(),
        Asked::Fields(fields),
        &state,
        now,
    )
    .await
}

/// Borrows the state and the header: cloning the shared state per request
/// counted a reference on a line every core answering writes.
pub(super) async fn handle_verify(
    ip: Option<IpAddr>,
    authorization: Option<&str>,
    body: Asked<'_>,
    state: &AppState,
    now: Timestamp,
) -> Result<Response, Rejection> {
    // A verifier token pins the workspace and is never limited by the
    // failures it forwards (§4); anyone else is limited per address.
    let pinned = match authorization {
        Some(value) => Some(auth::verifier_workspace(state, value, ip, now).await?),
        None => {
            refuse_while_limited(state, ip)?;
            None
        }
    };
    let limited = pinned.is_none();
    let Question {
        presented,
        wanted,
        workspace,
    } = match (body, pinned) {
        (Asked::JustAToken(token), Some(pinned)) => Question {
            presented: Cow::Borrowed(token),
            wanted: Vec::new(),
            workspace: pinned,
        },
        (Asked::JustAToken(token), None) => {
            let token = Map::from_iter([("token".to_owned(), Value::String(token.to_owned()))]);
            verify_question(Fields::new(token), None)?
        }
        (Asked::Fields(fields), pinned) => verify_question(fields, pinned)?,
    };

    let Inspection { verdict, grant } = inspect(
        state.store.as_ref(),
        &presented,
        Some(workspace),
        &wanted,
        now,
    )
    .await?;
    let valid = verdict == Verdict::Valid;
    if let (true, Some(grant)) = (valid, &grant) {
        state.usage.record_use(grant, now, ip);
    }
    let code = verdict.code();
    state.metrics.verified(code);
    if !valid && limited {
        note_failure(state, ip);
    }
    // `{"valid": …, "code": …, "token": {…} | null}`, the token object with
    // its effective scopes (§9).
    Ok(reply::ok_written(|out| {
        out.extend_from_slice(if valid {
            br#"{"valid":true,"code":"#
        } else {
            br#"{"valid":false,"code":"#
        });
        serde_json::to_writer(&mut *out, code)?;
        out.extend_from_slice(br#","token":"#);
        match &grant {
            Some(grant) => {
                let view = if valid {
                    // This verification is the token's latest use.
                    TokenView::used_now(&grant.token, now, ip)
                } else {
                    TokenView::new(&grant.token, &state.usage, now)
                };
                view.with_scopes(grant.effective_scopes())
                    .write_from(grant, out)?
            }
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
        Ok(())
    }))
}

/// What a verification asks: is `presented` good in `workspace`, with
/// `wanted` on top of what it needs anyway.
struct Question<'a> {
    presented: Cow<'a, str>,
    wanted: Vec<Scope>,
    workspace: Id<Workspace>,
}

/// The question of a verification whose body is read field by field.
fn verify_question(
    mut fields: Fields,
    pinned: Option<Id<Workspace>>,
) -> Result<Question<'static>, ApiError> {
    let presented = fields.required_string("token");
    let wanted = fields.scopes("scopes").unwrap_or_default();
    let named = fields.string("workspace_id").and_then(|text| {
        fields.check(
            "workspace_id",
            text.trim()
                .parse::<Id<Workspace>>()
                .map_err(|_| "must be a workspace id"),
        )
    });
    match (pinned, named) {
        (Some(pinned), Some(named)) if pinned != named => fields.problem(
            "workspace_id",
            "names another workspace than the verifier token's own",
        ),
        (None, None) => fields.problem(
            "workspace_id",
            "is required: name the workspace whose tokens you verify, or call with a verifier token (Authorization: Bearer <a token with the verify scope>)",
        ),
        _ => {}
    }
    let workspace = pinned.or(named);
    fields.finish()?;
    match (presented, workspace) {
        (Some(presented), Some(workspace)) => Ok(Question {
            presented: Cow::Owned(presented),
            wanted,
            workspace,
        }),
        _ => Err(ApiError::internal("verify", "fields passed without values")),
    }
}

/// `429` while the address has used up its failed verifications.
fn refuse_while_limited(state: &AppState, ip: Option<IpAddr>) -> Result<(), ApiError> {
    if let Some(ip) = ip
        && let Some(wait) = state.verify_failures.retry_after(&ip)
    {
        return Err(ApiError::RateLimited {
            retry_after: retry_after_seconds(wait),
        });
    }
    Ok(())
}

fn note_failure(state: &AppState, ip: Option<IpAddr>) {
    if let Some(ip) = ip {
        state.verify_failures.record_failure(ip, Instant::now());
    }
}

async fn handle_self(caller: Caller, state: AppState) -> Result<Response, Rejection> {
    let Some(grant) = caller.grant() else {
        return Err(ApiError::Forbidden(
            "GET /tokens/self describes the calling API token; a session has none".into(),
        )
        .into());
    };
    let view = TokenView::new(&grant.token, &state.usage, Timestamp::now());
    Ok(reply::ok_written(|out| view.write_from(grant, out)))
}

fn name_field(fields: &mut Fields, required: bool) -> Option<String> {
    let name = if required {
        fields.required_string("name")
    } else {
        fields.string("name")
    };
    name.and_then(|n| fields.check("name", validate::display_name(&n)))
}

fn scopes_field(fields: &mut Fields, required: bool) -> Option<Vec<Scope>> {
    let scopes = if required {
        fields.required_scopes("scopes")
    } else {
        fields.scopes("scopes")
    };
    match scopes {
        Some(list) if list.is_empty() => {
            fields.problem("scopes", "must name at least one scope");
            None
        }
        other => other,
    }
}

async fn handle_create(
    caller: Caller,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    caller.require_token_management(Access::Full)?;
    let name = name_field(&mut fields, true);
    let scopes = scopes_field(&mut fields, true);
    let expires_in = fields.integer("expires_in");
    let expires_at = fields.string("expires_at").and_then(|text| {
        fields.check(
            "expires_at",
            Timestamp::parse_rfc3339(&text)
                .ok_or("must be an RFC 3339 date-time such as 2026-03-25T14:00:00Z"),
        )
    });
    let never_expires = fields.boolean("never_expires").unwrap_or(false);
    fields.finish()?;
    let (Some(name), Some(scopes)) = (name, scopes) else {
        return Err(ApiError::internal("token create", "fields passed without values").into());
    };

    caller.ensure_can_grant(&scopes)?;
    let now = Timestamp::now();
    let settings = state.store.settings().await?;
    let request = ExpiryRequest {
        expires_in,
        expires_at,
        never_expires,
    };
    let expires_at =
        expiry::resolve(request, &settings, now, caller.ceiling()).map_err(ApiError::from)?;
    let secret = new_secret(&prefix_for(&state, caller.workspace_id, &settings).await?)?;
    let token = state
        .store
        .create_token(
            NewToken {
                id: Id::new(),
                workspace_id: caller.workspace_id,
                owner: caller.account.clone(),
                name: TokenName::Given(name),
                hash: secret.hash(),
                hint: secret.hint(),
                scopes,
                created_at: now,
                expires_at,
            },
            caller.actor(),
        )
        .await?;
    Ok(reply::created(
        &TokenView::new(&token, &state.usage, now).with_secret(&secret),
    ))
}

async fn handle_list(caller: Caller, query: Query, state: AppState) -> Result<Response, Rejection> {
    caller.require_token_management(Access::Read)?;
    let paging = query.paging()?;
    let filter = match query.get("state").unwrap_or("all") {
        "all" => None,
        other => match TokenState::parse(other) {
            Some(state) => Some(state),
            None => {
                return Err(ApiError::invalid_field(
                    "state",
                    "must be active, expired, revoked or all",
                )
                .into());
            }
        },
    };
    let now = Timestamp::now();
    let page = state
        .store
        .list_tokens(TokenQuery {
            workspace_id: caller.workspace_id,
            owner: (!caller.is_admin()).then_some(caller.account.id),
            state: filter,
            now,
            page: paging,
        })
        .await?;
    let views: Vec<TokenView> = page
        .items
        .iter()
        .map(|token| TokenView::new(token, &state.usage, now))
        .collect();
    Ok(reply::page(&views, paging, page.total))
}

async fn handle_get(id: TokenId, caller: Caller, state: AppState) -> Result<Response, Rejection> {
    caller.require_token_management(Access::Read)?;
    let token = manageable(&state, &caller, id).await?;
    Ok(reply::ok(&TokenView::new(
        &token,
        &state.usage,
        Timestamp::now(),
    )))
}

async fn handle_update(
    id: TokenId,
    caller: Caller,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    caller.require_token_management(Access::Full)?;
    let name = name_field(&mut fields, false);
    let scopes = scopes_field(&mut fields, false);
    fields.finish()?;
    manageable(&state, &caller, id).await?;
    if let Some(scopes) = &scopes {
        caller.ensure_can_grant(scopes)?;
    }
    let now = Timestamp::now();
    let token = state
        .store
        .update_token(
            caller.workspace_id,
            id,
            TokenEdit { name, scopes },
            now,
            caller.acting_on(),
            caller.actor(),
        )
        .await?;
    Ok(reply::ok(&TokenView::new(&token, &state.usage, now)))
}

async fn handle_revoke(
    id: TokenId,
    caller: Caller,
    state: AppState,
) -> Result<Response, Rejection> {
    caller.require_token_management(Access::Full)?;
    manageable(&state, &caller, id).await?;
    state
        .store
        .revoke_token(caller.workspace_id, id, Timestamp::now(), caller.actor())
        .await?;
    Ok(reply::no_content())
}

async fn handle_reset(
    id: TokenId,
    caller: Caller,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    caller.require_token_management(Access::Full)?;
    let grace = fields.integer("grace_seconds");
    if let Some(grace) = grace {
        let (lo, hi) = crate::core::settings::GRACE_RANGE;
        if !(lo..=hi).contains(&grace) {
            fields.problem("grace_seconds", format!("must be between {lo} and {hi}"));
        }
    }
    fields.finish()?;
    let old = manageable(&state, &caller, id).await?;
    let now = Timestamp::now();
    let settings = state.store.settings().await?;
    let grace = grace.unwrap_or(settings.reset_grace_seconds);
    let expires_at = expiry::for_reset(
        old.created_at,
        old.expires_at,
        &settings,
        now,
        caller.ceiling(),
    );
    let secret = new_secret(&prefix_for(&state, old.workspace_id, &settings).await?)?;
    let new = NewToken {
        id: Id::new(),
        workspace_id: old.workspace_id,
        owner: old.created_by.clone(),
        name: TokenName::Numbered(name_base(&old.name).to_owned()),
        hash: secret.hash(),
        hint: secret.hint(),
        // The store copies the scopes the old token has inside the write.
        scopes: Vec::new(),
        created_at: now,
        expires_at,
    };
    let old_expires_at = expiry::grace_end(old.expires_at, now, grace);
    let token = state
        .store
        .rotate_token(
            old.id,
            new,
            old_expires_at,
            caller.acting_on(),
            caller.actor(),
        )
        .await?;
    Ok(reply::created(
        &TokenView::new(&token, &state.usage, now).with_secret(&secret),
    ))
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    use super::*;

    #[test]
    fn the_documented_grace_is_the_enforced_one() {
        let schema = serde_json::to_value(ResetTokenBody::schema()).unwrap();
        let grace = &schema["properties"]["grace_seconds"];
        let (lo, hi) = crate::core::settings::GRACE_RANGE;
        assert_eq!(
            (&grace["minimum"], &grace["maximum"]),
            (&lo.into(), &hi.into())
        );
    }
}
