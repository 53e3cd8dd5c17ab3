//! Domains (§4 "Domains"): each is created with its own token, named
//! `"<domain> token <number>"` and holding `domain:<name>`.

use serde::Serialize;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth;
use super::body::{self, Fields};
use super::query::{Query, query};
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
fn create(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("domains")
        .and(warp::post())
        .and(auth::caller(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_create)
}

/// GET /api/v1/domains
fn list(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("domains")
        .and(warp::get())
        .and(auth::caller(state.clone()))
        .and(query())
        .and(with(state))
        .and_then(handle_list)
}

/// GET /api/v1/domains/{id}
fn get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("domains" / DomainId)
        .and(warp::get())
        .and(auth::caller(state.clone()))
        .and(with(state))
        .and_then(handle_get)
}

/// DELETE /api/v1/domains/{id}
fn delete(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("domains" / DomainId)
        .and(warp::delete())
        .and(auth::caller(state.clone()))
        .and(with(state))
        .and_then(handle_delete)
}

#[derive(Serialize)]
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

#[derive(Serialize)]
struct Created<'a> {
    domain: Domain,
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
