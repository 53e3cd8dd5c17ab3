//! The response envelope of §1, and the error responses.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::LazyLock;

use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Ref, Schema, Type};
use utoipa::{PartialSchema, ToSchema};
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
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

/// Where a page of a list stands (§1).
#[derive(Serialize, Clone, Copy, ToSchema)]
pub struct ListMeta {
    /// The page shown, from 1 (`?page=`).
    pub page: u32,
    /// Items per page, 1..100 (`?per_page=`, default 20).
    pub per_page: u32,
    /// Items in the whole list.
    pub total: u64,
}

/// The error envelope: a client can always branch on `error` alone.
#[derive(Serialize, ToSchema)]
pub(super) struct Failure<'a> {
    /// Always `false`.
    success: bool,
    /// A stable snake_case code.
    error: &'a str,
    /// A sentence for people; never internal details.
    message: String,
    /// For `422`: each refused field with its problem, all at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    details: Option<&'a crate::error::Details>,
}

/// In the API document, the envelope of one `T`: what [`ok`] and
/// [`created`] write. Its `data` refers to `T`'s schema by name rather
/// than copying it, so each schema is written once.
pub struct Data<T>(PhantomData<T>);

/// In the API document, the envelope of one page of a list of `T`: what
/// [`page`] writes.
pub struct Page<T>(PhantomData<T>);

fn envelope_schema(data: RefOr<Schema>, meta: bool) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new()
        .property(
            "success",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some("Always `true`.")),
        )
        .required("success")
        .property("data", data)
        .required("data");
    if meta {
        object = object
            .property("meta", Ref::from_schema_name(ListMeta::name()))
            .required("meta");
    }
    object.into()
}

// utoipa's path macro composes a generic body type (`Data<Me>`) through
// `ComposeSchema`; utoipa implements `PartialSchema` from it.
impl<T: ToSchema> utoipa::__dev::ComposeSchema for Data<T> {
    fn compose(_: Vec<RefOr<Schema>>) -> RefOr<Schema> {
        envelope_schema(Ref::from_schema_name(T::name()).into(), false)
    }
}

impl<T: ToSchema> ToSchema for Data<T> {
    fn name() -> Cow<'static, str> {
        "Data".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into(), T::schema()));
        T::schemas(schemas);
    }
}

impl<T: ToSchema> utoipa::__dev::ComposeSchema for Page<T> {
    fn compose(_: Vec<RefOr<Schema>>) -> RefOr<Schema> {
        let items = ArrayBuilder::new().items(Ref::from_schema_name(T::name()));
        envelope_schema(items.into(), true)
    }
}

impl<T: ToSchema> ToSchema for Page<T> {
    fn name() -> Cow<'static, str> {
        "Page".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into(), T::schema()));
        T::schemas(schemas);
        schemas.push((ListMeta::name().into(), ListMeta::schema()));
    }
}

pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    *response.headers_mut() = JSON_HEADERS.clone();
    response
}

/// The headers of every JSON answer; see [`super::resource_headers`].
static JSON_HEADERS: LazyLock<HeaderMap> = LazyLock::new(|| {
    let mut headers = super::resource_headers();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Token secrets appear in some bodies: no cache may keep any of them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers
});

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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn sorted_keys(object: &Value) -> Vec<String> {
        let mut keys: Vec<String> = object.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    fn documented(schema: RefOr<Schema>) -> Vec<String> {
        sorted_keys(&serde_json::to_value(schema).unwrap()["properties"])
    }

    fn written(value: impl Serialize) -> Vec<String> {
        sorted_keys(&serde_json::to_value(value).unwrap())
    }

    #[test]
    fn the_documented_envelopes_are_the_written_ones() {
        let meta = ListMeta {
            page: 1,
            per_page: 20,
            total: 2,
        };
        let one = Success {
            success: true,
            data: &"x",
            meta: None,
        };
        assert_eq!(documented(Data::<ListMeta>::schema()), written(one));
        let list = Success {
            success: true,
            data: &[1, 2],
            meta: Some(meta),
        };
        assert_eq!(documented(Page::<ListMeta>::schema()), written(list));
        let details = crate::error::Details::from([("name".to_owned(), "x".to_owned())]);
        let failure = Failure {
            success: false,
            error: "validation_failed",
            message: "x".into(),
            details: Some(&details),
        };
        assert_eq!(documented(Failure::schema()), written(failure));
    }
}
