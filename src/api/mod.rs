//! The HTTP transport: warp filters per resource, combined here with one
//! `recover` that turns every rejection into the contract's JSON errors, the
//! security headers, and one log line per request.

mod accounts;
mod admin_accounts;
mod audit;
mod auth;
mod authz;
mod body;
mod domains;
mod hot;
mod openapi;
mod query;
mod reply;
mod routes;
mod settings;
mod token_object;
mod tokens;
mod web;
mod workspaces;

use std::convert::Infallible;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reject::{
    InvalidHeader, InvalidQuery, LengthRequired, MethodNotAllowed, MissingHeader, PayloadTooLarge,
};
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::error::ApiError;
use crate::logging::{REQUEST_TARGET, RequestLog};
use crate::metrics;
use crate::state::AppState;
use crate::store::StoreError;

pub use body::MAX_BODY_BYTES;
pub use hot::HotRoutes;
pub use openapi::build as openapi_document;

/// The request body reader on its own, for the fuzz targets (`fuzz/`) and the
/// replay of their corpora (`tests/fuzz_corpus.rs`). Not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::body::{Fields, from_bytes, just_a_token};
}

/// Hands the shared state to a handler.
fn with(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// Every route of the server.
pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    openapi::prepare();
    let counted = state.clone();
    let v1 = || warp::path("api").and(warp::path("v1"));
    // The usual verify and forward-auth requests never get here: `hot`
    // answers them. Their other shapes (a trailing slash, say) are tried
    // first, as they were before there was a `hot`.
    let verify = v1().and(tokens::verify(state.clone()));
    let forward_auth = v1().and(authz::answers(state.clone()));
    let api = v1().and(
        tokens::routes(state.clone())
            .or(domains::routes(state.clone()))
            .unify()
            .or(accounts::routes(state.clone()))
            .unify()
            .or(workspaces::routes(state.clone()))
            .unify()
            .or(settings::routes(state.clone()))
            .unify()
            .or(audit::routes(state.clone()))
            .unify()
            .or(admin_accounts::routes(state.clone()))
            .unify()
            .or(routes::routes(state.clone()))
            .unify()
            .or(authz::explain(state.clone()).boxed())
            .unify()
            .or(openapi::routes())
            .unify(),
    );
    verify
        .or(forward_auth)
        .unify()
        .or(api)
        .unify()
        .or(no_metrics_here())
        .unify()
        .or(web::routes(state))
        .unify()
        // Last: marks a method the path does not document, for `recover`.
        .or(openapi::method_not_allowed())
        .unify()
        .recover(recover)
        .unify()
        .map(with_security_headers)
        .with(warp::log::custom(move |info| {
            let route = metrics::route_index(info.path());
            record(
                &counted,
                route,
                info.method().as_str(),
                info.path(),
                info.status(),
                info.elapsed(),
                SystemTime::now(),
            );
        }))
        .map(warp::Reply::into_response)
        .boxed()
}

/// The line and the counters each answered request leaves, `elapsed`
/// after it came in and stamped `answered`. Path only: the query string
/// and headers (Authorization, cookies) are never logged.
fn record(
    state: &AppState,
    route: usize,
    method: &str,
    path: &str,
    status: StatusCode,
    elapsed: Duration,
    answered: SystemTime,
) {
    let status = status.as_u16();
    let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    state.metrics.request_on(route, method, status, latency_us);
    match &state.request_log {
        Some(log) if RequestLog::enabled() => {
            log.record(answered, method, path, status, latency_us)
        }
        Some(_) => {}
        None => tracing::info!(
            target: REQUEST_TARGET,
            method,
            path,
            status,
            latency_us,
        ),
    }
}

/// GET /metrics
///
/// Metrics are served only on `--metrics-addr`; here the path is not found,
/// rather than a web UI page, so a scraper pointed at the wrong port says
/// so.
fn no_metrics_here() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("metrics").map(|| reply::error(&ApiError::NotFound))
}

/// The web UI's pages may load their own scripts, styles and images.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// Everything else (JSON answers, scripts, stylesheets, images) is never a
/// page that loads anything.
const RESOURCE_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// The security headers of an answer that is not a page, built once:
/// cloning a map costs less than inserting each header, which hashes its
/// name. Every JSON answer starts from these.
static RESOURCE_HEADERS: LazyLock<HeaderMap> = LazyLock::new(|| {
    // Room for the headers answers add, so that none regrows the index.
    let mut headers = HeaderMap::with_capacity(16);
    insert_security_headers(&mut headers, false);
    headers
});

/// A new map holding the security headers of a JSON answer.
fn resource_headers() -> HeaderMap {
    RESOURCE_HEADERS.clone()
}

/// Added to every response that does not have them yet; static values, so
/// nothing is allocated.
fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if headers.contains_key(header::X_CONTENT_TYPE_OPTIONS) || authz::is_allowed_answer(headers) {
        return response;
    }
    let page = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|media| media.as_bytes().starts_with(b"text/html"));
    insert_security_headers(headers, page);
    response
}

fn insert_security_headers(headers: &mut HeaderMap, page: bool) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if page { PAGE_POLICY } else { RESOURCE_POLICY }),
    );
}

/// Every rejection, ours or warp's, as the JSON error envelope.
async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(err) = rejection.find::<ApiError>() {
        return Ok(reply::error(err));
    }
    if let Some(err) = rejection.find::<StoreError>() {
        return Ok(reply::error(&ApiError::from(err.clone())));
    }
    if let Some(disallowed) = rejection.find::<openapi::Disallowed>() {
        let mut response = reply::error(&ApiError::MethodNotAllowed);
        response
            .headers_mut()
            .insert(header::ALLOW, disallowed.allow.clone());
        return Ok(response);
    }
    let err = if rejection.is_not_found() {
        ApiError::NotFound
    } else if rejection.find::<PayloadTooLarge>().is_some() {
        ApiError::PayloadTooLarge
    } else if let Some(invalid) = rejection.find::<InvalidHeader>() {
        ApiError::BadRequest(format!("the {} header is malformed", invalid.name()))
    } else if let Some(missing) = rejection.find::<MissingHeader>() {
        ApiError::BadRequest(format!("the {} header is missing", missing.name()))
    } else if rejection.find::<InvalidQuery>().is_some() {
        ApiError::BadRequest("the query string is malformed".into())
    } else if rejection.find::<LengthRequired>().is_some() {
        ApiError::BadRequest("send a Content-Length header".into())
    } else if rejection.find::<MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed
    } else {
        ApiError::Internal(format!("unhandled rejection: {rejection:?}"))
    };
    Ok(reply::error(&err))
}
