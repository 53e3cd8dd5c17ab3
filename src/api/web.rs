//! Outside `/api/v1` (§7): the embedded web UI and `/healthz`.

use std::collections::HashMap;
use std::sync::LazyLock;

use include_dir::{Dir, include_dir};
use serde_json::json;
use sha2::{Digest, Sha256};
use warp::filters::BoxedFilter;
use warp::filters::path::FullPath;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{reply, with};
use crate::state::AppState;
use crate::store::StoreError;

static ASSETS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/assets");

/// Strong validators for every embedded file, computed once.
static ETAGS: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    let mut etags = HashMap::new();
    let mut stack = vec![&ASSETS];
    while let Some(dir) = stack.pop() {
        stack.extend(dir.dirs());
        for file in dir.files() {
            let digest = Sha256::digest(file.contents());
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            etags.insert(
                file.path().to_string_lossy().into_owned(),
                format!("\"{hex}\""),
            );
        }
    }
    etags
});

/// This file's operations in the API document (the web UI is not in it).
#[derive(utoipa::OpenApi)]
#[openapi(paths(health))]
pub(super) struct Doc;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    health(state).or(ui()).unify().boxed()
}

/// GET /healthz
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "health",
    tag = "operations",
    summary = "Whether the server can use its database",
    responses(
        (status = 200, description = "Healthy: `{\"status\": \"ok\"}`.", body = Health),
        (status = 503, description = "Unhealthy, with the reason.", body = Health),
    )
)]
fn health(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("healthz")
        .and(warp::get())
        .and(with(state))
        .then(|state: AppState| async move {
            let (status, body) = match state.store.health().await {
                Ok(()) => (StatusCode::OK, json!({"status": "ok"})),
                Err(err) => {
                    tracing::warn!(%err, "health check failed");
                    let reason = match &err {
                        StoreError::Unavailable(reason) => reason.as_str(),
                        _ => "the database does not answer",
                    };
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        json!({"status": "unavailable", "reason": reason}),
                    )
                }
            };
            reply::json_response(status, body.to_string().into_bytes())
        })
}

/// GET / and /assets/*; any other path outside `/api` is a UI route and
/// gets `index.html`. The path is checked before the method, so an unknown
/// `/api` route stays a JSON 404 whatever its method.
fn ui() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path::full()
        .and_then(|path: FullPath| async move {
            let path = path.as_str();
            if path == "/api" || path.starts_with("/api/") {
                Err(warp::reject::not_found())
            } else {
                Ok(path.to_owned())
            }
        })
        .and(warp::get())
        .and(warp::header::optional::<String>("if-none-match"))
        .and_then(|path: String, if_none_match: Option<String>| async move {
            let file = path.strip_prefix("/assets/").unwrap_or("index.html");
            serve(file, if_none_match.as_deref()).ok_or_else(warp::reject::not_found)
        })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn serve(path: &str, if_none_match: Option<&str>) -> Option<Response> {
    let file = ASSETS.get_file(path)?;
    let etag = ETAGS.get(path).cloned().unwrap_or_default();
    let fresh = if_none_match.is_some_and(|given| given.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        let mut response = Response::new(Vec::new().into());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        Response::new(file.contents().to_vec().into())
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    // No build step means no fingerprinted names: revalidate every time, and
    // let the ETag make that a 304.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    Some(response)
}

/// The answer of `GET /healthz`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct Health {
    status: HealthStatus,
    /// Why it is unavailable.
    #[schema(nullable = false)]
    reason: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum HealthStatus {
    Ok,
    Unavailable,
}
