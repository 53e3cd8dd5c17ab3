//! Instance settings (§4 "Instance settings"): any session reads them, the
//! instance admin changes them. Plus the public facts a sign-in page needs.

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth;
use super::body::{self, Fields};
use super::openapi::{BodyErrors, CredentialErrors, ServerErrors};
use super::reply::Data;
use super::{reply, with};
use crate::auth::caller::SessionCaller;
use crate::core::settings::{Settings, SettingsPatch};
use crate::error::ApiError;
use crate::state::{AppState, lock};

/// This file's operations in the API document.
#[derive(OpenApi)]
#[openapi(paths(instance, get, update))]
pub(super) struct Doc;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    get(state.clone())
        .or(update(state.clone()))
        .unify()
        .or(instance(state))
        .unify()
        .boxed()
}

/// What anyone may know before signing in: whether the instance still needs
/// its first account (and the setup code for it), and whether sign-up is
/// open.
#[derive(Serialize, ToSchema)]
struct Instance {
    version: &'static str,
    needs_first_account: bool,
    setup_code_required: bool,
    allow_signup: bool,
}

/// GET /api/v1/instance
#[utoipa::path(
    get,
    path = "/api/v1/instance",
    operation_id = "get_instance",
    tag = "settings",
    summary = "What a sign-in page needs to know",
    responses(
        (status = 200, description = "The public facts.", body = Data<Instance>),
        ServerErrors,
    )
)]
fn instance(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("instance")
        .and(warp::get())
        .and(with(state))
        .and_then(|state: AppState| async move {
            let needs_first_account = !state.store.has_accounts().await?;
            let allow_signup = state.store.settings().await?.allow_signup;
            Ok::<_, Rejection>(reply::ok(&Instance {
                version: env!("CARGO_PKG_VERSION"),
                needs_first_account,
                setup_code_required: needs_first_account && lock(&state.setup_code).is_some(),
                allow_signup,
            }))
        })
}

/// GET /api/v1/settings
#[utoipa::path(
    get,
    path = "/api/v1/settings",
    operation_id = "get_settings",
    tag = "settings",
    summary = "The instance settings",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The settings.", body = Data<Settings>),
        CredentialErrors, ServerErrors,
    )
)]
fn get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("settings")
        .and(warp::get())
        .and(auth::session(state.clone()))
        .and(with(state))
        .and_then(|_session: SessionCaller, state: AppState| async move {
            let settings = state.store.settings().await?;
            Ok::<_, Rejection>(reply::ok(&settings))
        })
}

/// PATCH /api/v1/settings
///
/// A change that fails validation changes nothing; one that would leave
/// `default_ttl_seconds` above `max_ttl_seconds` fails (send both to lower
/// both).
#[utoipa::path(
    patch,
    path = "/api/v1/settings",
    operation_id = "update_settings",
    tag = "settings",
    summary = "Change the instance settings (the instance admin)",
    security(("bearer" = []), ("cookie" = [])),
    request_body = SettingsBody,
    responses(
        (status = 200, description = "The settings after the change.", body = Data<Settings>),
        BodyErrors, CredentialErrors, ServerErrors,
    )
)]
fn update(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("settings")
        .and(warp::patch())
        .and(auth::session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_update)
}

// Read by `handle_update`; tests/openapi.rs checks the two agree, and a
// unit test that the ranges are those of `core::settings`.
/// The body of `PATCH /settings`: every field optional.
#[derive(ToSchema)]
#[schema(examples(json!({"allow_signup": true, "default_ttl_seconds": 3600})))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SettingsBody {
    /// Expiry when a create names none.
    #[schema(minimum = 60, maximum = 31_536_000)]
    default_ttl_seconds: Option<i64>,
    /// The longest a token may live.
    #[schema(minimum = 60, maximum = 31_536_000)]
    max_ttl_seconds: Option<i64>,
    /// Whether `never_expires: true` is allowed.
    allow_no_expiry: Option<bool>,
    /// How long the old token lives after a reset.
    #[schema(minimum = 0, maximum = 604_800)]
    reset_grace_seconds: Option<i64>,
    /// Expired or revoked tokens are deleted this long after (0: at the
    /// next sweep).
    #[schema(minimum = 0, maximum = 31_536_000)]
    purge_after_seconds: Option<i64>,
    /// Open sign-up.
    allow_signup: Option<bool>,
    /// The instance's token prefix.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,14}_$")]
    token_prefix: Option<String>,
    /// Days audit entries are kept before the sweeper purges them.
    #[schema(minimum = 1, maximum = 3650)]
    audit_retention_days: Option<i64>,
}

async fn handle_update(
    session: SessionCaller,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    if !session.account.instance_admin {
        return Err(
            ApiError::Forbidden("only the instance admin can change the settings".into()).into(),
        );
    }
    let patch = SettingsPatch {
        default_ttl_seconds: fields.integer("default_ttl_seconds"),
        max_ttl_seconds: fields.integer("max_ttl_seconds"),
        allow_no_expiry: fields.boolean("allow_no_expiry"),
        reset_grace_seconds: fields.integer("reset_grace_seconds"),
        purge_after_seconds: fields.integer("purge_after_seconds"),
        allow_signup: fields.boolean("allow_signup"),
        token_prefix: fields.string("token_prefix"),
        audit_retention_days: fields.integer("audit_retention_days"),
    };
    fields.finish()?;
    let settings = state.store.update_settings(patch, session.actor()).await?;
    Ok(reply::ok(&settings))
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    use super::*;
    use crate::core::settings::{AUDIT_RETENTION_RANGE, GRACE_RANGE, PURGE_RANGE, TTL_RANGE};

    #[test]
    fn the_documented_ranges_are_the_enforced_ones() {
        let schema = serde_json::to_value(SettingsBody::schema()).unwrap();
        for (field, (lo, hi)) in [
            ("default_ttl_seconds", TTL_RANGE),
            ("max_ttl_seconds", TTL_RANGE),
            ("reset_grace_seconds", GRACE_RANGE),
            ("purge_after_seconds", PURGE_RANGE),
            ("audit_retention_days", AUDIT_RETENTION_RANGE),
        ] {
            let property = &schema["properties"][field];
            assert_eq!(property["minimum"], lo, "{field}");
            assert_eq!(property["maximum"], hi, "{field}");
        }
    }
}
