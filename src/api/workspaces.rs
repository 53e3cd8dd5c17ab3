//! Workspaces, their members with grants, and their scope catalogs
//! (§4 "Workspaces, members, scope catalog"). These endpoints need a
//! session: reading needs membership, changing needs the admin role.

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::accounts::WorkspaceView;
use super::auth;
use super::body::{self, Fields};
use super::query::{Query, query};
use super::{reply, with};
use crate::auth::caller::SessionCaller;
use crate::core::ids::Id;
use crate::core::model::{Account, CatalogEntry, Membership, Role, Workspace};
use crate::core::settings::PREFIX_RULE;
use crate::core::time::Timestamp;
use crate::core::token_format::Prefix;
use crate::core::validate;
use crate::error::ApiError;
use crate::state::AppState;

type WorkspaceId = Id<Workspace>;
type AccountId = Id<Account>;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    list(state.clone())
        .or(create(state.clone()))
        .unify()
        .or(get(state.clone()))
        .unify()
        .or(update(state.clone()))
        .unify()
        .or(list_members(state.clone()))
        .unify()
        .or(add_member(state.clone()))
        .unify()
        .or(update_member(state.clone()))
        .unify()
        .or(remove_member(state.clone()))
        .unify()
        .or(list_scopes(state.clone()))
        .unify()
        .or(put_scope(state.clone()))
        .unify()
        .or(delete_scope(state))
        .unify()
        .boxed()
}

/// GET /api/v1/workspaces
fn list(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces")
        .and(warp::get())
        .and(auth::session(state.clone()))
        .and(query())
        .and(with(state))
        .and_then(handle_list)
}

/// POST /api/v1/workspaces
fn create(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces")
        .and(warp::post())
        .and(auth::session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_create)
}

/// GET /api/v1/workspaces/{id}
fn get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId)
        .and(warp::get())
        .and(auth::session(state.clone()))
        .and(with(state))
        .and_then(handle_get)
}

/// PATCH /api/v1/workspaces/{id}
fn update(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId)
        .and(warp::patch())
        .and(auth::session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_update)
}

/// GET /api/v1/workspaces/{id}/members
fn list_members(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId / "members")
        .and(warp::get())
        .and(auth::session(state.clone()))
        .and(query())
        .and(with(state))
        .and_then(handle_list_members)
}

/// POST /api/v1/workspaces/{id}/members
fn add_member(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId / "members")
        .and(warp::post())
        .and(auth::session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_add_member)
}

/// PATCH /api/v1/workspaces/{id}/members/{account_id}
fn update_member(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId / "members" / AccountId)
        .and(warp::patch())
        .and(auth::session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_update_member)
}

/// DELETE /api/v1/workspaces/{id}/members/{account_id}
fn remove_member(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId / "members" / AccountId)
        .and(warp::delete())
        .and(auth::session(state.clone()))
        .and(with(state))
        .and_then(handle_remove_member)
}

/// GET /api/v1/workspaces/{id}/scopes
fn list_scopes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId / "scopes")
        .and(warp::get())
        .and(auth::session(state.clone()))
        .and(query())
        .and(with(state))
        .and_then(handle_list_scopes)
}

/// PUT /api/v1/workspaces/{id}/scopes/{name}
fn put_scope(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId / "scopes" / String)
        .and(warp::put())
        .and(auth::session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_put_scope)
}

/// DELETE /api/v1/workspaces/{id}/scopes/{name}
fn delete_scope(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId / "scopes" / String)
        .and(warp::delete())
        .and(auth::session(state.clone()))
        .and(with(state))
        .and_then(handle_delete_scope)
}

/// The caller's membership of `workspace`; not a member reads as "no such
/// workspace".
async fn membership(
    state: &AppState,
    workspace: WorkspaceId,
    session: &SessionCaller,
) -> Result<Membership, ApiError> {
    state
        .store
        .membership(workspace, session.account.id)
        .await?
        .ok_or(ApiError::NotFound)
}

async fn require_admin(
    state: &AppState,
    workspace: WorkspaceId,
    session: &SessionCaller,
) -> Result<Membership, ApiError> {
    let membership = membership(state, workspace, session).await?;
    if membership.role == Role::Admin {
        Ok(membership)
    } else {
        Err(ApiError::Forbidden(
            "only an admin of this workspace can do this".into(),
        ))
    }
}

fn prefix_field(fields: &mut Fields) -> Option<Option<String>> {
    let value = fields.nullable_string("token_prefix")?;
    match value {
        None => Some(None),
        Some(text) => match Prefix::parse(&text) {
            Some(prefix) => Some(Some(prefix.as_str().to_owned())),
            None => {
                fields.problem("token_prefix", PREFIX_RULE);
                None
            }
        },
    }
}

async fn handle_list(
    session: SessionCaller,
    query: Query,
    state: AppState,
) -> Result<Response, Rejection> {
    let paging = query.paging()?;
    let views: Vec<WorkspaceView> = state
        .store
        .workspaces_of(session.account.id)
        .await?
        .into_iter()
        .map(|(workspace, role)| WorkspaceView { workspace, role })
        .collect();
    Ok(reply::page_of(&views, paging))
}

async fn handle_create(
    session: SessionCaller,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    let name = fields
        .required_string("name")
        .and_then(|n| fields.check("name", validate::display_name(&n)));
    let prefix = prefix_field(&mut fields).flatten();
    fields.finish()?;
    let Some(name) = name else {
        return Err(ApiError::internal("workspace create", "field passed without value").into());
    };
    let workspace = state
        .store
        .create_workspace(
            session.account.id,
            name,
            prefix,
            Timestamp::now(),
            session.actor(),
        )
        .await?;
    Ok(reply::created(&WorkspaceView {
        workspace,
        role: Role::Admin,
    }))
}

async fn handle_get(
    id: WorkspaceId,
    session: SessionCaller,
    state: AppState,
) -> Result<Response, Rejection> {
    let membership = membership(&state, id, &session).await?;
    let workspace = state.store.workspace(id).await?.ok_or(ApiError::NotFound)?;
    Ok(reply::ok(&WorkspaceView {
        workspace,
        role: membership.role,
    }))
}

async fn handle_update(
    id: WorkspaceId,
    session: SessionCaller,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    let membership = require_admin(&state, id, &session).await?;
    let name = fields
        .string("name")
        .and_then(|n| fields.check("name", validate::display_name(&n)));
    let prefix = prefix_field(&mut fields);
    fields.finish()?;
    let workspace = state
        .store
        .update_workspace(id, name, prefix, session.actor())
        .await?;
    Ok(reply::ok(&WorkspaceView {
        workspace,
        role: membership.role,
    }))
}

async fn handle_list_members(
    id: WorkspaceId,
    session: SessionCaller,
    query: Query,
    state: AppState,
) -> Result<Response, Rejection> {
    membership(&state, id, &session).await?;
    let paging = query.paging()?;
    let members = state.store.members(id).await?;
    Ok(reply::page_of(&members, paging))
}

fn role_field(fields: &mut Fields) -> Option<Role> {
    let text = fields.string("role")?;
    let role = Role::parse(&text);
    if role.is_none() {
        fields.problem("role", "must be admin or member");
    }
    role
}

async fn handle_add_member(
    id: WorkspaceId,
    session: SessionCaller,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    require_admin(&state, id, &session).await?;
    let email = fields
        .required_string("email")
        .and_then(|e| fields.check("email", validate::email(&e)));
    let role = role_field(&mut fields);
    let scopes = fields.scopes("scopes").unwrap_or_default();
    fields.finish()?;
    let Some(email) = email else {
        return Err(ApiError::internal("member add", "field passed without value").into());
    };
    let membership = Membership {
        role: role.unwrap_or(Role::Member),
        scopes,
    };
    let member = state
        .store
        .add_member(id, email, membership, Timestamp::now(), session.actor())
        .await?;
    Ok(reply::created(&member))
}

async fn handle_update_member(
    id: WorkspaceId,
    account: AccountId,
    session: SessionCaller,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    require_admin(&state, id, &session).await?;
    let role = role_field(&mut fields);
    let scopes = fields.scopes("scopes");
    fields.finish()?;
    let member = state
        .store
        .update_member(id, account, role, scopes, session.actor())
        .await?;
    Ok(reply::ok(&member))
}

async fn handle_remove_member(
    id: WorkspaceId,
    account: AccountId,
    session: SessionCaller,
    state: AppState,
) -> Result<Response, Rejection> {
    require_admin(&state, id, &session).await?;
    state
        .store
        .remove_member(id, account, session.actor())
        .await?;
    Ok(reply::no_content())
}

async fn handle_list_scopes(
    id: WorkspaceId,
    session: SessionCaller,
    query: Query,
    state: AppState,
) -> Result<Response, Rejection> {
    membership(&state, id, &session).await?;
    let paging = query.paging()?;
    let entries = state.store.catalog(id).await?;
    Ok(reply::page_of(&entries, paging))
}

async fn handle_put_scope(
    id: WorkspaceId,
    name: String,
    session: SessionCaller,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    require_admin(&state, id, &session).await?;
    fields.check("name", validate::catalog_name(&name));
    let description = fields
        .string("description")
        .and_then(|d| fields.check("description", validate::description(&d)))
        .unwrap_or_default();
    fields.finish()?;
    let entry = state
        .store
        .put_catalog_entry(id, CatalogEntry { name, description }, session.actor())
        .await?;
    Ok(reply::ok(&entry))
}

async fn handle_delete_scope(
    id: WorkspaceId,
    name: String,
    session: SessionCaller,
    state: AppState,
) -> Result<Response, Rejection> {
    require_admin(&state, id, &session).await?;
    state
        .store
        .delete_catalog_entry(id, name, Timestamp::now(), session.actor())
        .await?;
    Ok(reply::no_content())
}
