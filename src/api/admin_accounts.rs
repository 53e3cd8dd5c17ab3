//! Account administration (§11 "Accounts"): the instance admin lists and
//! searches accounts, disables and enables them, and deletes them. Sessions
//! only; an API token gets `403` (no scope covers the instance).

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

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
use crate::core::model::Account;
use crate::core::time::Timestamp;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{AccountQuery, AccountSummary};

type AccountId = Id<Account>;

/// This file's operations in the API document.
#[derive(OpenApi)]
#[openapi(paths(list, update, delete))]
pub(super) struct Doc;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    list(state.clone())
        .or(update(state.clone()))
        .unify()
        .or(delete(state))
        .unify()
        .boxed()
}

/// GET /api/v1/accounts
#[utoipa::path(
    get,
    path = "/api/v1/accounts",
    operation_id = "list_accounts",
    tag = "accounts",
    summary = "Every account, or those whose email contains `q` (the instance admin)",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("q" = Option<String>, Query, description = "Part of an email, any case."),
        PageParams,
    ),
    responses(
        (status = 200, description = "One page of accounts.", body = Page<AccountView>),
        CredentialErrors, Unprocessable, ServerErrors,
    )
)]
fn list(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("accounts")
        .and(warp::get())
        .and(auth::session(state.clone()))
        .and(query())
        .and(with(state))
        .and_then(handle_list)
}

/// PATCH /api/v1/accounts/{id}
///
/// A disabled account's sessions end and its tokens answer `DISABLED` at
/// once. The last enabled instance admin stays enabled.
#[utoipa::path(
    patch,
    path = "/api/v1/accounts/{id}",
    operation_id = "update_account",
    tag = "accounts",
    summary = "Disable or enable an account (the instance admin)",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = "uuid", description = "The account.")),
    request_body = UpdateAccountBody,
    responses(
        (status = 200, description = "The account after the change.", body = Data<AccountView>),
        BodyErrors, CredentialErrors, NotFound, Conflict, ServerErrors,
    )
)]
fn update(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("accounts" / AccountId)
        .and(warp::patch())
        .and(auth::session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_update)
}

/// DELETE /api/v1/accounts/{id}
///
/// Its tokens are revoked and its memberships removed; never the last
/// instance admin, nor the only admin of a workspace with other members.
#[utoipa::path(
    delete,
    path = "/api/v1/accounts/{id}",
    operation_id = "delete_account",
    tag = "accounts",
    summary = "Delete an account (the instance admin)",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, format = "uuid", description = "The account.")),
    responses(
        (status = 204, description = "Deleted."),
        CredentialErrors, NotFound, Conflict, ServerErrors,
    )
)]
fn delete(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("accounts" / AccountId)
        .and(warp::delete())
        .and(auth::session(state.clone()))
        .and(with(state))
        .and_then(handle_delete)
}

// Read by `handle_update`; tests/openapi.rs checks the two agree.
/// The body of `PATCH /accounts/{id}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"disabled": true})))]
#[allow(dead_code)]
struct UpdateAccountBody {
    disabled: bool,
}

/// An account as the admin list shows it: unlike everywhere else, with
/// whether it is disabled.
#[derive(Serialize, ToSchema)]
struct AccountView<'a> {
    #[serde(flatten)]
    account: &'a Account,
    disabled: bool,
    /// `null` while enabled.
    #[schema(required = true)]
    disabled_at: Option<Timestamp>,
    /// Workspaces it is a member of.
    workspaces: u64,
    /// Its active tokens (they verify only while it is enabled).
    active_tokens: u64,
}

impl<'a> From<&'a AccountSummary> for AccountView<'a> {
    fn from(summary: &'a AccountSummary) -> Self {
        AccountView {
            account: &summary.account,
            disabled: summary.account.disabled,
            disabled_at: summary.disabled_at,
            workspaces: summary.workspaces,
            active_tokens: summary.active_tokens,
        }
    }
}

fn require_instance_admin(session: &SessionCaller) -> Result<(), ApiError> {
    if session.account.instance_admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the instance admin can manage accounts".into(),
        ))
    }
}

async fn handle_list(
    session: SessionCaller,
    query: Query,
    state: AppState,
) -> Result<Response, Rejection> {
    require_instance_admin(&session)?;
    let paging = query.paging()?;
    let email_contains = query.get("q").unwrap_or("").trim().to_lowercase();
    let page = state
        .store
        .list_accounts(AccountQuery {
            email_contains,
            now: Timestamp::now(),
            page: paging,
        })
        .await?;
    let items: Vec<AccountView<'_>> = page.items.iter().map(AccountView::from).collect();
    Ok(reply::page(&items, paging, page.total))
}

async fn handle_update(
    id: AccountId,
    session: SessionCaller,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    require_instance_admin(&session)?;
    let disabled = fields.boolean("disabled");
    if disabled.is_none() {
        fields.problem("disabled", "is required");
    }
    fields.finish()?;
    let Some(disabled) = disabled else {
        return Err(ApiError::internal("account update", "fields passed without values").into());
    };
    let summary = state
        .store
        .set_account_disabled(id, disabled, Timestamp::now(), session.actor())
        .await?;
    Ok(reply::ok(&AccountView::from(&summary)))
}

async fn handle_delete(
    id: AccountId,
    session: SessionCaller,
    state: AppState,
) -> Result<Response, Rejection> {
    require_instance_admin(&session)?;
    state.store.delete_account(id, session.actor()).await?;
    Ok(reply::no_content())
}
