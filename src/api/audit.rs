//! The audit log (§11): `GET /audit`, a workspace's entries for its admins
//! and `audit:read` tokens, and instance-wide entries for the instance
//! admin.

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth;
use super::query::{Query, query};
use super::{reply, with};
use crate::auth::caller::{Caller, Credential};
use crate::core::audit::ACTIONS;
use crate::core::scopes::{Resource, Scope};
use crate::core::time::Timestamp;
use crate::error::{ApiError, Details};
use crate::state::AppState;
use crate::store::{AuditQuery, AuditScope};

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    list(state).boxed()
}

/// GET /api/v1/audit
fn list(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("audit")
        .and(warp::get())
        .and(auth::caller(state.clone()))
        .and(query())
        .and(with(state))
        .and_then(handle_list)
}

async fn handle_list(caller: Caller, query: Query, state: AppState) -> Result<Response, Rejection> {
    let paging = query.paging()?;
    let mut problems = Details::new();
    let scope = match query.get("scope").unwrap_or("workspace") {
        "workspace" => AuditScope::Workspace(caller.workspace_id),
        "instance" => AuditScope::Instance,
        _ => {
            problems.insert("scope".into(), "must be workspace or instance".into());
            AuditScope::Workspace(caller.workspace_id)
        }
    };
    let action = query.get("action").map(str::to_owned);
    if let Some(action) = &action
        && !ACTIONS.contains(&action.as_str())
    {
        problems.insert(
            "action".into(),
            format!("must be one of {}", ACTIONS.join(", ")),
        );
    }
    let mut time = |field: &str| {
        query.get(field).and_then(|text| {
            let parsed = Timestamp::parse_rfc3339(text);
            if parsed.is_none() {
                problems.insert(
                    field.to_owned(),
                    "must be an RFC 3339 date-time such as 2026-03-25T14:00:00Z".into(),
                );
            }
            parsed
        })
    };
    let (since, until) = (time("since"), time("until"));
    if !problems.is_empty() {
        return Err(ApiError::validation(problems).into());
    }

    match scope {
        AuditScope::Workspace(_) => caller.require(Scope::read(Resource::Audit))?,
        AuditScope::Instance => {
            let is_instance_admin = match caller.credential {
                Credential::Session(_) => state
                    .store
                    .account(caller.account.id)
                    .await?
                    .is_some_and(|account| account.instance_admin),
                Credential::Token(_) => false,
            };
            if !is_instance_admin {
                return Err(ApiError::Forbidden(
                    "only the instance admin, signed in, reads instance-wide entries".into(),
                )
                .into());
            }
        }
    }
    let page = state
        .store
        .audit_entries(AuditQuery {
            scope,
            action,
            actor: query.get("actor").map(str::to_owned),
            target: query.get("target").map(str::to_owned),
            since,
            until,
            page: paging,
        })
        .await?;
    Ok(reply::page(&page.items, paging, page.total))
}
