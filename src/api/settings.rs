//! Instance settings (§4 "Instance settings"): any session reads them, the
//! instance admin changes them. Plus the public facts a sign-in page needs.

use serde::Serialize;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth;
use super::body::{self, Fields};
use super::{reply, with};
use crate::auth::caller::SessionCaller;
use crate::core::settings::SettingsPatch;
use crate::error::ApiError;
use crate::state::{AppState, lock};

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
#[derive(Serialize)]
struct Instance {
    version: &'static str,
    needs_first_account: bool,
    setup_code_required: bool,
    allow_signup: bool,
}

/// GET /api/v1/instance
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
fn update(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("settings")
        .and(warp::patch())
        .and(auth::session(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_update)
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
