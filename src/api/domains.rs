//! Domains (§4 "Domains"): each is created with its own token, named
//! `"<domain> token <number>"` and holding `domain:<name>`.

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth;
use super::auth::ActingWorkspace;
use super::body::{self, Fields};
use super::openapi::{
    BodyErrors, Conflict, CredentialErrors, NotFound, ServerErrors, Unprocessable,
};
use super::query::{PageParams, Query, query};
use super::reply::{Data, Page};
use super::token_object::TokenWithSecret;
use super::tokens::{TokenView, new_secret, prefix_for};
use super::{reply, with};
use crate::auth::caller::Caller;
use crate::core::expiry;
use crate::core::ids::Id;
use crate::core::model::Domain;
use crate::core::scopes::{Resource, Scope};
use crate::core::time::Timestamp;
use crate::core::validate;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{DomainUsage, NewToken, TokenName};

type DomainId = Id<Domain>;

/// This file's operations in the API document.
#[derive(OpenApi)]
#[openapi(paths(create, list, get, delete))]
pub(super) struct Doc;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    create(state.clone())
        .or(list(state.clone()))
        .unify()
        .or(get(state.clone()))
        .unify()
        .or(delete(state))
        .unify()
        .boxed()
}

/// POST /api/v1/domains
#[utoipa::path(
    post,
    path = "/api/v1/domains",
    operation_id = "create_domain",
    tag = "domains",
    summary = "Add a domain, with its first token (needs `domains`)",
    security(("bearer" = []), ("cookie" = [])),
    params(ActingWorkspace),
    request_body = CreateDomainBody,
    responses(
        (status = 201, description = "The domain and its token, secret included.",
            body = Data<Created>,
            links(
                ("GetDomain" = (operation_id = "get_domain",
                    parameters(("id" = "$response.body#/data/domain/id")))),
                ("DeleteDomain" = (operation_id = "delete_domain",
                    parameters(("id" = "$response.body#/data/domain/id")))),
            )),
        BodyErrors, CredentialErrors, NotFound, Conflict, ServerErrors,
    )
)]
fn create(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("domains")
        .and(warp::post())
        .and(auth::caller(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_create)
}

/// GET /api/v1/domains
#[utoipa::path(
    get,
    path = "/api/v1/domains",
    operation_id = "list_domains",
    tag = "domains",
    summary = "The workspace's domains (needs `domains:read`)",
    security(("bearer" = []), ("cookie" = [])),
    params(ActingWorkspace, PageParams),
    responses(
        (status = 200, description = "One page of the list.", body = Page<DomainView>),
        CredentialErrors, NotFound, Unprocessable, ServerErrors,
    )
)]
fn list(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("domains")
        .and(warp::get())
        .and(auth::caller(state.clone()))
        .and(query())
        .and(with(state))
        .and_then(handle_list)
}

/// GET /api/v1/domains/{id}
#[utoipa::path(
    get,
    path = "/api/v1/domains/{id}",
    operation_id = "get_domain",
    tag = "domains",
    summary = "A domain with its count of active tokens (needs `domains:read`)",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = "uuid", description = "The domain."), ActingWorkspace),
    responses(
        (status = 200, description = "The domain.", body = Data<DomainView>),
        CredentialErrors, NotFound, ServerErrors,
    )
)]
fn get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("domains" / DomainId)
        .and(warp::get())
        .and(auth::caller(state.clone()))
        .and(with(state))
        .and_then(handle_get)
}

/// DELETE /api/v1/domains/{id}
#[utoipa::path(
    delete,
    path = "/api/v1/domains/{id}",
    operation_id = "delete_domain",
    tag = "domains",
    summary = "Remove a domain and its grants (needs `domains`)",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = "uuid", description = "The domain."), ActingWorkspace),
    responses(
        (status = 204, description = "Removed; tokens left with no scope are revoked."),
        CredentialErrors, NotFound, ServerErrors,
    )
)]
fn delete(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("domains" / DomainId)
        .and(warp::delete())
        .and(auth::caller(state.clone()))
        .and(with(state))
        .and_then(handle_delete)
}

/// A domain with its count of active tokens holding `domain:<name>` or
/// `domain:<name>:read`.
#[derive(Serialize, ToSchema)]
struct DomainView {
    #[serde(flatten)]
    domain: Domain,
    active_tokens: u64,
}

impl From<DomainUsage> for DomainView {
    fn from(usage: DomainUsage) -> Self {
        DomainView {
            domain: usage.domain,
            active_tokens: usage.active_tokens,
        }
    }
}

// Read by `handle_create`; tests/openapi.rs checks the two agree.
/// The body of `POST /domains`.
#[derive(ToSchema)]
#[schema(examples(json!({"name": "example.com"})))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CreateDomainBody {
    /// A DNS host name of at least two labels; lower-cased. (The pattern
    /// admits all the server takes and a little more: labels are also 1–63
    /// characters without a leading or trailing hyphen.)
    #[schema(pattern = r"^\s*[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\s*$")]
    name: String,
}

/// A new domain and its token.
#[derive(Serialize, ToSchema)]
struct Created<'a> {
    domain: Domain,
    /// Named `"<domain> token <number>"`, holding `domain:<name>`.
    #[schema(value_type = TokenWithSecret)]
    token: TokenView<'a>,
}

async fn handle_create(
    caller: Caller,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    caller.require(Scope::full(Resource::Domains))?;
    let name = fields
        .required_string("name")
        .and_then(|n| fields.check("name", validate::domain_name(&n)));
    fields.finish()?;
    let Some(name) = name else {
        return Err(ApiError::internal("domain create", "field passed without value").into());
    };
    let now = Timestamp::now();
    let settings = state.store.settings().await?;
    let secret = new_secret(&prefix_for(&state, caller.workspace_id, &settings).await?)?;
    let domain = Domain {
        id: Id::new(),
        name: name.clone(),
        created_at: now,
    };
    let token = NewToken {
        id: Id::new(),
        workspace_id: caller.workspace_id,
        owner: caller.account.clone(),
        name: TokenName::Numbered(name.clone()),
        hash: secret.hash(),
        hint: secret.hint(),
        scopes: vec![Scope::full(Resource::Domain(name))],
        created_at: now,
        expires_at: expiry::for_domain_token(&settings, now, caller.ceiling()),
    };
    let token = state
        .store
        .create_domain(caller.workspace_id, domain.clone(), token, caller.actor())
        .await?;
    Ok(reply::created(&Created {
        domain,
        token: TokenView::new(&token, &state.usage, now).with_secret(&secret),
    }))
}

async fn handle_list(caller: Caller, query: Query, state: AppState) -> Result<Response, Rejection> {
    caller.require(Scope::read(Resource::Domains))?;
    let paging = query.paging()?;
    let views: Vec<DomainView> = state
        .store
        .domains(caller.workspace_id, Timestamp::now())
        .await?
        .into_iter()
        .map(DomainView::from)
        .collect();
    Ok(reply::page_of(&views, paging))
}

async fn handle_get(id: DomainId, caller: Caller, state: AppState) -> Result<Response, Rejection> {
    caller.require(Scope::read(Resource::Domains))?;
    let usage = state
        .store
        .domain(caller.workspace_id, id, Timestamp::now())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(reply::ok(&DomainView::from(usage)))
}

async fn handle_delete(
    id: DomainId,
    caller: Caller,
    state: AppState,
) -> Result<Response, Rejection> {
    caller.require(Scope::full(Resource::Domains))?;
    state
        .store
        .delete_domain(caller.workspace_id, id, Timestamp::now(), caller.actor())
        .await?;
    Ok(reply::no_content())
}
