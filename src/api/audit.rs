//! The audit log (§11): `GET /audit`, a workspace's entries for its admins
//! and `audit:read` tokens, and instance-wide entries for the instance
//! admin.

use utoipa::OpenApi;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::{self, ActingWorkspace};
use super::openapi::{CredentialErrors, NotFound, ServerErrors, Unprocessable};
use super::query::{PageParams, Query, query};
use super::reply::Page;
use super::{reply, with};
use crate::auth::caller::{Caller, Credential};
use crate::core::audit::{ACTIONS, Entry};
use crate::core::scopes::{Resource, Scope};
use crate::core::time::Timestamp;
use crate::error::{ApiError, Details};
use crate::state::AppState;
use crate::store::{AuditQuery, AuditScope};

/// This file's operations in the API document.
#[derive(OpenApi)]
#[openapi(paths(list))]
pub(super) struct Doc;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    list(state).boxed()
}

/// GET /api/v1/audit
///
/// Workspace admins and `audit:read` tokens read their workspace's
/// entries; the instance admin, signed in, also the instance-wide ones
/// (`?scope=instance`). Newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "list_audit",
    tag = "audit",
    summary = "The audit log (needs `audit:read`)",
    security(("bearer" = []), ("cookie" = [])),
    params(ActingWorkspace, AuditParams, PageParams),
    responses(
        (status = 200, description = "One page of entries.", body = Page<Entry>),
        CredentialErrors, NotFound, Unprocessable, ServerErrors,
    )
)]
fn list(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("audit")
        .and(warp::get())
        .and(auth::caller(state.clone()))
        .and(query())
        .and(with(state))
        .and_then(handle_list)
}

/// The filters of `GET /audit`, as [`handle_list`] reads them.
struct AuditParams;

impl utoipa::IntoParams for AuditParams {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        let query = |name: &str, description: &str, schema: ObjectBuilder| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .description(Some(description))
                .schema(Some(schema))
                .build()
        };
        let text = || ObjectBuilder::new().schema_type(Type::String);
        let time = || text().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)));
        vec![
            query(
                "scope",
                "`workspace` (the default) or `instance` (the instance admin only).",
                text().enum_values(Some(["workspace", "instance"])),
            ),
            query(
                "action",
                "Only entries of this action.",
                text().enum_values(Some(ACTIONS.iter().copied())),
            ),
            query("actor", "Only changes by this account or token id.", text()),
            query("target", "Only changes to the object with this id.", text()),
            query("since", "Only entries at or after this instant.", time()),
            query("until", "Only entries at or before this instant.", time()),
        ]
    }
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
