//! Workspaces, their members with grants, and their scope catalogs
//! (§4 "Workspaces, members, scope catalog"). These endpoints need a
//! session: reading needs membership, changing needs the admin role.

use utoipa::{OpenApi, ToSchema};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::accounts::WorkspaceView;
use super::auth;
use super::body::{self, Fields};
use super::openapi::{
    BodyErrors, Conflict, CredentialErrors, NotFound, ServerErrors, Unprocessable,
};
use super::query::{PageParams, Query, query};
use super::reply::{Data, Page};
use super::{reply, with};
use crate::auth::caller::SessionCaller;
use crate::core::ids::Id;
use crate::core::model::{Account, CatalogEntry, Member, Membership, Role, Workspace};
use crate::core::scopes::Scope;
use crate::core::settings::PREFIX_RULE;
use crate::core::time::Timestamp;
use crate::core::token_format::Prefix;
use crate::core::validate;
use crate::error::ApiError;
use crate::state::AppState;

type WorkspaceId = Id<Workspace>;
type AccountId = Id<Account>;

/// This file's operations in the API document.
#[derive(OpenApi)]
#[openapi(paths(
    list,
    create,
    get,
    update,
    list_members,
    add_member,
    update_member,
    remove_member,
    list_scopes,
    put_scope,
    delete_scope
))]
pub(super) struct Doc;

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
#[utoipa::path(
    get,
    path = "/api/v1/workspaces",
    operation_id = "list_workspaces",
    tag = "workspaces",
    summary = "The caller's workspaces, with its role in each",
    security(("bearer" = []), ("cookie" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "One page of the list.", body = Page<WorkspaceView>),
        CredentialErrors, Unprocessable, ServerErrors,
    )
)]
fn list(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces")
        .and(warp::get())
        .and(auth::session(state.clone()))
        .and(query())
        .and(with(state))
        .and_then(handle_list)
}

/// POST /api/v1/workspaces
#[utoipa::path(
    post,
    path = "/api/v1/workspaces",
    operation_id = "create_workspace",
    tag = "workspaces",
    summary = "Create a workspace; its creator is its admin",
    security(("bearer" = []), ("cookie" = [])),
    request_body = CreateWorkspaceBody,
    responses(
        (status = 201, description = "Created.", body = Data<WorkspaceView>),
        BodyErrors, CredentialErrors, ServerErrors,
    )
)]
fn create(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces")
        .and(warp::post())
        .and(auth::session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_create)
}

/// GET /api/v1/workspaces/{id}
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{id}",
    operation_id = "get_workspace",
    tag = "workspaces",
    summary = "A workspace the caller is a member of",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = "uuid", description = "The workspace.")),
    responses(
        (status = 200, description = "The workspace with the caller's role.", body = Data<WorkspaceView>),
        CredentialErrors, NotFound, ServerErrors,
    )
)]
fn get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId)
        .and(warp::get())
        .and(auth::session(state.clone()))
        .and(with(state))
        .and_then(handle_get)
}

/// PATCH /api/v1/workspaces/{id}
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{id}",
    operation_id = "update_workspace",
    tag = "workspaces",
    summary = "Rename a workspace or change its token prefix (admins)",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = "uuid", description = "The workspace.")),
    request_body = UpdateWorkspaceBody,
    responses(
        (status = 200, description = "The changed workspace.", body = Data<WorkspaceView>),
        BodyErrors, CredentialErrors, NotFound, ServerErrors,
    )
)]
fn update(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId)
        .and(warp::patch())
        .and(auth::session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_update)
}

/// GET /api/v1/workspaces/{id}/members
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{id}/members",
    operation_id = "list_members",
    tag = "workspaces",
    summary = "The members of a workspace",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = "uuid", description = "The workspace."), PageParams),
    responses(
        (status = 200, description = "One page of the list.", body = Page<Member>),
        CredentialErrors, NotFound, Unprocessable, ServerErrors,
    )
)]
fn list_members(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId / "members")
        .and(warp::get())
        .and(auth::session(state.clone()))
        .and(query())
        .and(with(state))
        .and_then(handle_list_members)
}

/// POST /api/v1/workspaces/{id}/members
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{id}/members",
    operation_id = "add_member",
    tag = "workspaces",
    summary = "Add an existing account to a workspace (admins)",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = "uuid", description = "The workspace.")),
    request_body = AddMemberBody,
    responses(
        (status = 201, description = "The new member.", body = Data<Member>),
        BodyErrors, CredentialErrors, NotFound, ServerErrors,
    )
)]
fn add_member(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId / "members")
        .and(warp::post())
        .and(auth::session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_add_member)
}

/// PATCH /api/v1/workspaces/{id}/members/{account_id}
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{id}/members/{account_id}",
    operation_id = "update_member",
    tag = "workspaces",
    summary = "Change a member's role or grants (admins)",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("id" = String, Path, format = "uuid", description = "The workspace."),
        ("account_id" = String, Path, format = "uuid", description = "The member's account."),
    ),
    request_body = UpdateMemberBody,
    responses(
        (status = 200, description = "The changed member.", body = Data<Member>),
        BodyErrors, CredentialErrors, NotFound, Conflict, ServerErrors,
    )
)]
fn update_member(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId / "members" / AccountId)
        .and(warp::patch())
        .and(auth::session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_update_member)
}

/// DELETE /api/v1/workspaces/{id}/members/{account_id}
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{id}/members/{account_id}",
    operation_id = "remove_member",
    tag = "workspaces",
    summary = "Remove a member (admins)",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("id" = String, Path, format = "uuid", description = "The workspace."),
        ("account_id" = String, Path, format = "uuid", description = "The member's account."),
    ),
    responses(
        (status = 204, description = "Removed."),
        CredentialErrors, NotFound, Conflict, ServerErrors,
    )
)]
fn remove_member(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId / "members" / AccountId)
        .and(warp::delete())
        .and(auth::session(state.clone()))
        .and(with(state))
        .and_then(handle_remove_member)
}

/// GET /api/v1/workspaces/{id}/scopes
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{id}/scopes",
    operation_id = "list_scopes",
    tag = "workspaces",
    summary = "A workspace's scope catalog",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = "uuid", description = "The workspace."), PageParams),
    responses(
        (status = 200, description = "One page of the catalog.", body = Page<CatalogEntry>),
        CredentialErrors, NotFound, Unprocessable, ServerErrors,
    )
)]
fn list_scopes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId / "scopes")
        .and(warp::get())
        .and(auth::session(state.clone()))
        .and(query())
        .and(with(state))
        .and_then(handle_list_scopes)
}

/// PUT /api/v1/workspaces/{id}/scopes/{name}
#[utoipa::path(
    put,
    path = "/api/v1/workspaces/{id}/scopes/{name}",
    operation_id = "put_scope",
    tag = "workspaces",
    summary = "Add a scope to the catalog, or change its description (admins)",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("id" = String, Path, format = "uuid", description = "The workspace."),
        ("name" = String, Path, description = "The scope's name.", pattern = "^[a-z][a-z0-9-]{0,63}$"),
    ),
    request_body = PutScopeBody,
    responses(
        (status = 200, description = "The scope as stored.", body = Data<CatalogEntry>),
        BodyErrors, CredentialErrors, NotFound, ServerErrors,
    )
)]
fn put_scope(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId / "scopes" / String)
        .and(warp::put())
        .and(auth::session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_put_scope)
}

/// DELETE /api/v1/workspaces/{id}/scopes/{name}
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{id}/scopes/{name}",
    operation_id = "delete_scope",
    tag = "workspaces",
    summary = "Remove a scope from the catalog, and from every token and grant (admins)",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("id" = String, Path, format = "uuid", description = "The workspace."),
        ("name" = String, Path, description = "The scope's name.", pattern = "^[a-z][a-z0-9-]{0,63}$"),
    ),
    responses(
        (status = 204, description = "Removed."),
        CredentialErrors, NotFound, ServerErrors,
    )
)]
fn delete_scope(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("workspaces" / WorkspaceId / "scopes" / String)
        .and(warp::delete())
        .and(auth::session(state.clone()))
        .and(with(state))
        .and_then(handle_delete_scope)
}

// Read by `handle_create`; tests/openapi.rs checks the two agree.
/// The body of `POST /workspaces`.
#[derive(ToSchema)]
#[schema(examples(json!({"name": "Acme", "token_prefix": "acme_"})))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CreateWorkspaceBody {
    /// 1–100 characters after trimming; no control, bidirectional or
    /// zero-width characters.
    #[schema(min_length = 1)]
    name: String,
    /// The prefix of the workspace's new tokens, e.g. `mb_`; `null` or
    /// absent: the instance's.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,14}_$")]
    token_prefix: Option<String>,
}

// Read by `handle_update`; tests/openapi.rs checks the two agree.
/// The body of `PATCH /workspaces/{id}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct UpdateWorkspaceBody {
    /// 1–100 characters after trimming.
    #[schema(min_length = 1)]
    name: Option<String>,
    /// `null` goes back to the instance's prefix.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,14}_$")]
    token_prefix: Option<String>,
}

// Read by `handle_add_member`; tests/openapi.rs checks the two agree.
/// The body of `POST /workspaces/{id}/members`.
#[derive(ToSchema)]
#[schema(examples(json!({"email": "bob@example.com", "role": "member", "scopes": ["contacts:read"]})))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct AddMemberBody {
    /// The email of an account that exists already.
    #[schema(pattern = r"^\s*[^@\s]+@[^@\s.]+(\.[^@\s.]+)+\s*$")]
    email: String,
    /// `member` unless given.
    role: Option<Role>,
    /// The member's grants; admins hold every scope.
    scopes: Option<Vec<Scope>>,
}

// Read by `handle_update_member`; tests/openapi.rs checks the two agree.
/// The body of `PATCH /workspaces/{id}/members/{account_id}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct UpdateMemberBody {
    role: Option<Role>,
    scopes: Option<Vec<Scope>>,
}

// Read by `handle_put_scope`; tests/openapi.rs checks the two agree.
/// The body of `PUT /workspaces/{id}/scopes/{name}`.
#[derive(ToSchema)]
#[schema(examples(json!({"description": "The contacts API"})))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PutScopeBody {
    /// At most 500 characters after trimming; empty unless given.
    description: Option<String>,
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
