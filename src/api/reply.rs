//! The response envelope of §1, and the error responses.

use serde::Serialize;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::error::ApiError;
use crate::store::Paging;

impl warp::reject::Reject for ApiError {}
// So that handlers can use `?` on store calls; `recover` maps it.
impl warp::reject::Reject for crate::store::StoreError {}

#[derive(Serialize)]
struct Success<'a, T: Serialize> {
    success: bool,
    data: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<ListMeta>,
}

#[derive(Serialize, Clone, Copy)]
pub struct ListMeta {
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
}

#[derive(Serialize)]
struct Failure<'a> {
    success: bool,
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a crate::error::Details>,
}

pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Token secrets appear in some bodies: no cache may keep any of them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn envelope<T: Serialize>(status: StatusCode, data: &T, meta: Option<ListMeta>) -> Response {
    // Sized for a token object, so the common answer is written without
    // growing the buffer.
    let mut body = Vec::with_capacity(1024);
    let written = serde_json::to_writer(
        &mut body,
        &Success {
            success: true,
            data,
            meta,
        },
    );
    match written {
        Ok(()) => json_response(status, body),
        Err(err) => error(&ApiError::internal("serialising a response", err)),
    }
}

/// `200 {"success": true, "data": …}`.
pub fn ok<T: Serialize>(data: &T) -> Response {
    envelope(StatusCode::OK, data, None)
}

/// `200 {"success": true, "data": …}` where `write` appends the JSON of
/// `data` itself: for the hot answers, rendered partly from cached JSON.
pub fn ok_written(write: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>) -> Response {
    let mut body = Vec::with_capacity(1024);
    body.extend_from_slice(br#"{"success":true,"data":"#);
    match write(&mut body) {
        Ok(()) => {
            body.push(b'}');
            json_response(StatusCode::OK, body)
        }
        Err(err) => error(&ApiError::internal("serialising a response", err)),
    }
}

/// `201 {"success": true, "data": …}`.
pub fn created<T: Serialize>(data: &T) -> Response {
    envelope(StatusCode::CREATED, data, None)
}

/// `200` with `meta` for one page of a list.
pub fn page<T: Serialize>(items: &[T], paging: Paging, total: u64) -> Response {
    let meta = ListMeta {
        page: paging.page,
        per_page: paging.per_page,
        total,
    };
    envelope(StatusCode::OK, &items, Some(meta))
}

/// One page of a list already held in memory.
pub fn page_of<T: Serialize>(items: &[T], paging: Paging) -> Response {
    let start = usize::try_from(paging.offset())
        .unwrap_or(usize::MAX)
        .min(items.len());
    let end = start
        .saturating_add(paging.per_page as usize)
        .min(items.len());
    page(&items[start..end], paging, items.len() as u64)
}

pub fn no_content() -> Response {
    let mut response = Response::new(Vec::new().into());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The error envelope, with the challenge headers of §1.
pub fn error(err: &ApiError) -> Response {
    match err {
        ApiError::Internal(detail) => tracing::error!(%detail, "request failed"),
        ApiError::Unavailable(detail) => tracing::warn!(%detail, "database unavailable"),
        _ => {}
    }
    let body = Failure {
        success: false,
        error: err.code(),
        message: err.message(),
        details: err.details(),
    };
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, serde_json::to_vec(&body).unwrap_or_default());
    let headers = response.headers_mut();
    let challenge = match err {
        ApiError::InvalidToken {
            presented: true, ..
        } => Some(r#"Bearer realm="tokenward", error="invalid_token""#.to_owned()),
        // Every 401 has a challenge, a wrong password included (§9).
        ApiError::InvalidToken {
            presented: false, ..
        }
        | ApiError::InvalidCredentials => Some(r#"Bearer realm="tokenward""#.to_owned()),
        ApiError::InsufficientScope { needed } => Some(format!(
            r#"Bearer realm="tokenward", error="insufficient_scope", scope="{needed}""#
        )),
        _ => None,
    };
    if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
    match err {
        ApiError::RateLimited { retry_after } => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        ApiError::Unavailable(_) => {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::error::UNAVAILABLE_RETRY_AFTER),
            );
        }
        _ => {}
    }
    response
}
