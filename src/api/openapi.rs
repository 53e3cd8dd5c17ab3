//! The OpenAPI 3.1 document of the API, made from the code and built once.
//!
//! Each `src/api/<resource>.rs` declares its operations beside their filters
//! with `#[utoipa::path(...)]` (warp has no utoipa integration, so nothing
//! is inferred from the filters themselves) and lists them in its own
//! `Doc`. Request bodies are read field by field, not deserialised, so each
//! handler has a small doc-only type for its body beside it; responses are
//! the serde types themselves. This module merges the `Doc`s, adds what
//! they share (security schemes, the error responses of §1), and serves the
//! result at `GET /api/v1/openapi.json`.
//!
//! The document is also the route table: a request for a documented path
//! with a method the path does not document gets `405` with an `Allow`
//! header listing the documented methods ([`method_not_allowed`]).
//!
//! To add an operation: put `#[utoipa::path(...)]` on its filter and name
//! the filter in its file's `Doc`. A new file's `Doc` goes in [`parts`].

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::Value;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::response::{Response as ResponseDoc, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, ContentBuilder, Ref, RefOr};
use utoipa::{IntoResponses, OpenApi, PartialSchema};
use warp::filters::BoxedFilter;
use warp::filters::path::FullPath;
use warp::http::{HeaderValue, Method, header};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::SESSION_COOKIE;
use super::reply::Failure;
use super::routes as forward_auth_rules;
use super::{accounts, admin_accounts, audit, authz, domains, settings, tokens, web, workspaces};

/// Every part of the API, one `Doc` per file, besides this file's own.
fn parts() -> Vec<utoipa::openapi::OpenApi> {
    vec![
        accounts::Doc::openapi(),
        workspaces::Doc::openapi(),
        tokens::Doc::openapi(),
        domains::Doc::openapi(),
        settings::Doc::openapi(),
        audit::Doc::openapi(),
        admin_accounts::Doc::openapi(),
        forward_auth_rules::Doc::openapi(),
        authz::Doc::openapi(),
        web::Doc::openapi(),
    ]
}

/// The document's head, and this file's own operation.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokenward",
        description = "A self-hosted API token server: scoped, expiring, revocable tokens.\n\n\
            Every answer under `/api/v1` is JSON: `{\"success\": true, \"data\": …}` (lists add \
            `meta`), or the error envelope `{\"success\": false, \"error\": \"<code>\", \
            \"message\": \"…\"}` whose `error` is a stable code a client can branch on. \
            Request bodies are JSON objects of at most 64 KiB; unknown fields are refused \
            with `422`. Times are RFC 3339 in UTC with second precision.",
    ),
    paths(document),
    tags(
        (name = "accounts", description = "Sign-up, sign-in, the signed-in account, and \
            account administration for the instance admin."),
        (name = "workspaces", description = "Workspaces, their members and scope catalogs."),
        (name = "tokens", description = "API tokens, and verifying them for other services."),
        (name = "domains", description = "Domains, each created with its own token."),
        (name = "settings", description = "Instance settings and public facts."),
        (name = "audit", description = "The audit log: who changed what, from where."),
        (name = "forward-auth", description = "Protect any HTTP API behind nginx, Caddy, \
            Traefik or Envoy: the proxy asks, for each request, whether its token may."),
        (name = "operations", description = "Health and this document."),
    )
)]
struct Doc;

/// The document as served and the route table taken from it.
struct Built {
    json: Box<[u8]>,
    routes: Vec<Route>,
}

static BUILT: LazyLock<Built> = LazyLock::new(|| {
    let document = build();
    let routes = route_table(&document);
    let json = serde_json::to_vec(&document)
        .expect("the OpenAPI document serialises")
        .into_boxed_slice();
    Built { json, routes }
});

/// Builds the document now rather than on the first request that needs
/// it, so that a mistake in it shows at start-up.
pub fn prepare() {
    LazyLock::force(&BUILT);
}

/// The whole document, as `GET /api/v1/openapi.json` serves it.
pub fn build() -> Value {
    let mut doc = Doc::openapi();
    for part in parts() {
        doc.merge(part);
    }
    let components = doc.components.take().unwrap_or_default();
    let mut components = ComponentsBuilder::from(components)
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("session JWT or API token")
                    .description(Some(
                        "`Authorization: Bearer <credential>`: a session token from sign-up or \
                         sign-in, or an API token. A session acts in the workspace named by \
                         `X-Workspace` (or `?workspace=`), else in its first; an API token \
                         acts in its own.",
                    ))
                    .build(),
            ),
        )
        .security_scheme(
            "verifier",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("API token holding verify or verify:read")
                    .description(Some(
                        "A service's verifier token: an API token with the built-in scope \
                         `verify` (or `verify:read`). It pins the workspace whose tokens \
                         `POST /tokens/verify` answers about, and is never rate limited.",
                    ))
                    .build(),
            ),
        )
        .security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The web UI's session, set by `POST /sessions` with `\"cookie\": true` \
                 (HttpOnly, SameSite=Strict). A cookie-signed POST, PATCH, PUT or DELETE must \
                 carry `X-Requested-With: tokenward`, else `403 forbidden`.",
            ))),
        );
    for error in ERRORS {
        components = components.response(error.name, error.response());
    }
    doc.components = Some(components.build());
    doc.openapi = utoipa::openapi::OpenApiVersion::Version31;
    serde_json::to_value(&doc).expect("the OpenAPI document serialises")
}

/// GET /api/v1/openapi.json
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi_document",
    tag = "operations",
    summary = "This document",
    description = "The OpenAPI 3.1 document of this server's API, generated from its code.",
    responses(
        (status = 200, description = "The document.", content_type = "application/json",
            body = Object),
    )
)]
fn document() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("openapi.json").and(warp::get()).map(|| {
        let json: &'static [u8] = &BUILT.json;
        let mut response = Response::new(json.into());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    })
}

/// An id: a UUID string. (Ids are `Id<T>` in the code; their schema does
/// not depend on what they name.)
pub fn uuid_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("uuid".into())))
}

/// The routes under `/api/v1` this file serves.
pub fn routes() -> BoxedFilter<(Response,)> {
    document().boxed()
}

// --- Error responses ---------------------------------------------------------

/// One error status of §1, as a reusable response of the document.
struct ErrorStatus {
    status: u16,
    name: &'static str,
    description: &'static str,
    /// The `error` codes this status carries.
    codes: &'static [&'static str],
    header: Option<ErrorHeader>,
}

struct ErrorHeader {
    name: &'static str,
    required: bool,
    description: &'static str,
    integer: bool,
}

const WWW_AUTHENTICATE: &str = "WWW-Authenticate";
const RETRY_AFTER: &str = "Retry-After";

/// The error statuses an operation can answer, with their codes (§1). A
/// test below checks every error the code can make is listed here.
const ERRORS: &[ErrorStatus] = &[
    ErrorStatus {
        status: 400,
        name: "BadRequest",
        description: "`bad_request`: the body is not JSON or not sent as \
            `application/json`, or a header is malformed.",
        codes: &["bad_request"],
        header: None,
    },
    ErrorStatus {
        status: 401,
        name: "Unauthorized",
        description: "`invalid_token`: the credential is missing, malformed, unknown, expired \
            or revoked (`message` says which); `invalid_credentials`: wrong email or password.",
        codes: &["invalid_token", "invalid_credentials"],
        header: Some(ErrorHeader {
            name: WWW_AUTHENTICATE,
            required: true,
            description: "`Bearer realm=\"tokenward\", error=\"invalid_token\"` when a \
                credential was presented, plain `Bearer realm=\"tokenward\"` when none was.",
            integer: false,
        }),
    },
    ErrorStatus {
        status: 403,
        name: "Forbidden",
        description: "`insufficient_scope`: the credential lacks the scope named in \
            `WWW-Authenticate`; `forbidden`: refused for the reason `message` gives (not an \
            admin, more than the caller holds, a session where a token is needed or the \
            reverse, a cookie-signed write without `X-Requested-With: tokenward`); \
            forward-auth also `no_matching_rule` and `invalid_path`.",
        codes: &[
            "insufficient_scope",
            "forbidden",
            "no_matching_rule",
            "invalid_path",
        ],
        header: Some(ErrorHeader {
            name: WWW_AUTHENTICATE,
            required: false,
            description: "With `insufficient_scope` only: `Bearer realm=\"tokenward\", \
                error=\"insufficient_scope\", scope=\"<needed>\"`.",
            integer: false,
        }),
    },
    ErrorStatus {
        status: 404,
        name: "NotFound",
        description: "`not_found`: no such object here. Another workspace's object, another \
            member's token, or an `X-Workspace` the caller is not a member of all answer \
            exactly like one that does not exist.",
        codes: &["not_found"],
        header: None,
    },
    ErrorStatus {
        status: 409,
        name: "Conflict",
        description: "The change would break a rule of the current state: `email_taken`, \
            `last_domain_token`, `last_admin`, `token_inactive`, `domain_exists`.",
        codes: &[
            "email_taken",
            "last_domain_token",
            "last_admin",
            "token_inactive",
            "domain_exists",
        ],
        header: None,
    },
    ErrorStatus {
        status: 412,
        name: "PreconditionFailed",
        description: "`precondition_failed`: `If-Match` names a version that is no longer \
            current; read again, reapply the change, send the new `ETag`.",
        codes: &["precondition_failed"],
        header: None,
    },
    ErrorStatus {
        status: 413,
        name: "PayloadTooLarge",
        description: "`payload_too_large`: the body is over 64 KiB.",
        codes: &["payload_too_large"],
        header: None,
    },
    ErrorStatus {
        status: 422,
        name: "Unprocessable",
        description: "A field is missing, unknown, of the wrong type or refused; `details` \
            names each with its problem, all at once. `validation_failed`, `expiry_too_long`, \
            `no_expiry_not_allowed`, `unknown_scope`.",
        codes: &[
            "validation_failed",
            "expiry_too_long",
            "no_expiry_not_allowed",
            "unknown_scope",
        ],
        header: None,
    },
    ErrorStatus {
        status: 429,
        name: "RateLimited",
        description: "`rate_limited`: too many failures from this address or for this \
            account; wait `Retry-After` seconds.",
        codes: &["rate_limited"],
        header: Some(ErrorHeader {
            name: RETRY_AFTER,
            required: true,
            description: "Whole seconds to wait.",
            integer: true,
        }),
    },
    ErrorStatus {
        status: 500,
        name: "Internal",
        description: "`internal`: a fault on the server, logged there; nothing of it is \
            in the answer. Forward-auth also `proxy_misconfigured`: the proxy left out the \
            original method or URI (it fails closed).",
        codes: &["internal", "proxy_misconfigured"],
        header: None,
    },
    ErrorStatus {
        status: 503,
        name: "Unavailable",
        description: "`unavailable`: the database is busy or unreachable; retry after \
            `Retry-After` seconds.",
        codes: &["unavailable"],
        header: Some(ErrorHeader {
            name: RETRY_AFTER,
            required: true,
            description: "Whole seconds to wait.",
            integer: true,
        }),
    },
];

impl ErrorStatus {
    /// The error envelope with `error` narrowed to this status's codes.
    fn response(&self) -> ResponseDoc {
        self.response_with(self.codes)
    }

    /// The same with `error` one of `codes`.
    fn response_with(&self, codes: &[&str]) -> ResponseDoc {
        let mut schema = match Failure::schema() {
            RefOr::T(Schema::Object(object)) => object,
            _ => unreachable!("the error envelope is an object schema"),
        };
        schema.properties.insert(
            "error".into(),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(codes.iter().copied()))
                .into(),
        );
        let mut response = ResponseBuilder::new()
            .description(self.description)
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(schema)).build(),
            );
        if let Some(header) = &self.header {
            response = response.header(header.name, header.doc());
        }
        response.build()
    }
}

impl ErrorHeader {
    fn doc(&self) -> Header {
        let schema = if self.integer {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
        } else {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^Bearer realm=\"tokenward\""))
        };
        let mut header = HeaderBuilder::new()
            .schema(Some(schema))
            .description(Some(self.description))
            .build();
        // utoipa's `Header` has no `required` field; the Header Object of
        // OpenAPI does, and checkers read it.
        if self.required {
            header.extensions = Some(Extensions::from_iter([("required", true)]));
        }
        header
    }
}

/// References to the error responses of `statuses`.
fn errors(statuses: &[u16]) -> BTreeMap<String, RefOr<ResponseDoc>> {
    statuses
        .iter()
        .map(|status| {
            let error = ERRORS
                .iter()
                .find(|e| e.status == *status)
                .expect("every status used is in ERRORS");
            (
                status.to_string(),
                RefOr::Ref(Ref::from_response_name(error.name)),
            )
        })
        .collect()
}

/// `500` and `503`: any operation that reaches the database.
pub struct ServerErrors;

impl IntoResponses for ServerErrors {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        errors(&[500, 503])
    }
}

/// `400`, `401`, `403`: any operation that reads a credential (a header
/// that is not text is a `400`).
pub struct CredentialErrors;

impl IntoResponses for CredentialErrors {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        errors(&[400, 401, 403])
    }
}

/// `400`, `413`, `422`: any operation that reads a JSON body.
pub struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        errors(&[400, 413, 422])
    }
}

pub struct NotFound;

impl IntoResponses for NotFound {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        errors(&[404])
    }
}

pub struct Conflict;

impl IntoResponses for Conflict {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        errors(&[409])
    }
}

/// `422` without a body: a bad `?page=`, `?per_page=` or filter.
pub struct Unprocessable;

impl IntoResponses for Unprocessable {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        errors(&[422])
    }
}

/// `401` where no credential is read: a wrong email or password.
pub struct WrongPassword;

impl IntoResponses for WrongPassword {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        errors(&[401])
    }
}

/// `412` on a write with a stale `If-Match`.
pub struct PreconditionFailed;

impl IntoResponses for PreconditionFailed {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        errors(&[412])
    }
}

/// What a forward-auth endpoint answers a proxy: `200` with no body and
/// the identity headers, or a denial with `X-Tokenward-Error` (§10).
pub struct ProxyAnswers;

impl IntoResponses for ProxyAnswers {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        let text = || ObjectBuilder::new().schema_type(Type::String);
        let identity = |description: &str| {
            let mut header = HeaderBuilder::new()
                .schema(Some(text()))
                .description(Some(description))
                .build();
            header.extensions = Some(Extensions::from_iter([("required", true)]));
            header
        };
        let mut allowed = ResponseBuilder::new()
            .description(
                "Allowed: no body. The identity headers are always there (empty when \
                 anonymous), so the proxy overwrites any copy the client sent. \
                 `Cache-Control` is `no-store`, or `max-age` when the rules allow caching.",
            )
            .header("X-Tokenward-Auth", identity("`token` or `anonymous`."));
        for (name, description) in [
            ("X-Tokenward-Token-Id", "The token's id."),
            ("X-Tokenward-Workspace-Id", "The token's workspace."),
            ("X-Tokenward-User-Id", "The token's owner."),
            (
                "X-Tokenward-Scopes",
                "Its effective scopes, sorted, space-separated.",
            ),
            ("X-Tokenward-Rule", "The id of the rule that decided."),
        ] {
            allowed = allowed.header(name, identity(description));
        }
        let mut answers = BTreeMap::from([("200".to_owned(), RefOr::T(allowed.build()))]);
        for status in [401, 403, 429, 500, 503] {
            let error = ERRORS
                .iter()
                .find(|e| e.status == status)
                .expect("every status used is in ERRORS");
            let mut response = if status == 403 {
                // nginx turns any other status into a 500, so its rate
                // limit answers 403.
                error.response_with(&[error.codes, &["rate_limited"]].concat())
            } else {
                error.response()
            };
            response.headers.insert(
                "X-Tokenward-Error".into(),
                RefOr::T(identity("The `error` code, for the proxy's logs.")),
            );
            answers.insert(status.to_string(), RefOr::T(response));
        }
        answers
    }
}

pub struct RateLimited;

impl IntoResponses for RateLimited {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        errors(&[429])
    }
}

// --- The route table -----------------------------------------------------

/// Methods in the order `Allow` lists them.
const METHODS: [&str; 8] = [
    "get", "head", "post", "put", "patch", "delete", "options", "trace",
];

/// A documented path and its methods.
struct Route {
    segments: Vec<Segment>,
    methods: Vec<Method>,
    /// `Allow`'s value: the methods, upper case, comma-separated.
    allow: HeaderValue,
}

enum Segment {
    Literal(String),
    /// A parameter whose schema is a UUID: only a hyphenated UUID routes.
    Uuid,
    /// Any other parameter: any non-empty segment.
    Any,
}

impl Segment {
    fn matches(&self, text: &str) -> bool {
        match self {
            Segment::Literal(literal) => literal == text,
            Segment::Uuid => text.len() == 36 && uuid::Uuid::try_parse(text).is_ok(),
            Segment::Any => !text.is_empty(),
        }
    }
}

fn route_table(document: &Value) -> Vec<Route> {
    let empty = serde_json::Map::new();
    let paths = document["paths"].as_object().unwrap_or(&empty);
    paths
        .iter()
        .map(|(template, item)| {
            let present: Vec<&str> = METHODS
                .into_iter()
                .filter(|method| item.get(*method).is_some())
                .collect();
            let uuid_parameters: Vec<&str> = present
                .iter()
                .filter_map(|method| item[*method]["parameters"].as_array())
                .flatten()
                .filter(|p| p["in"] == "path" && p["schema"]["format"] == "uuid")
                .filter_map(|p| p["name"].as_str())
                .collect();
            let segments = template
                .trim_start_matches('/')
                .split('/')
                .map(|segment| match segment.strip_prefix('{') {
                    Some(name) if uuid_parameters.contains(&name.trim_end_matches('}')) => {
                        Segment::Uuid
                    }
                    Some(_) => Segment::Any,
                    None => Segment::Literal(segment.to_owned()),
                })
                .collect();
            let upper: Vec<String> = present.iter().map(|m| m.to_ascii_uppercase()).collect();
            Route {
                segments,
                methods: upper
                    .iter()
                    .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
                    .collect(),
                allow: HeaderValue::from_str(&upper.join(", "))
                    .expect("method names are header text"),
            }
        })
        .collect()
}

/// Matches a request path as warp does: segments between `/`, a single
/// trailing `/` ignored.
fn find<'r>(routes: &'r [Route], path: &str) -> Option<&'r Route> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    routes.iter().find(|route| {
        route.segments.len() == segments.len()
            && route
                .segments
                .iter()
                .zip(&segments)
                .all(|(pattern, text)| pattern.matches(text))
    })
}

/// Outside `/api` every path is the web UI's, served to GET only.
static UI_ALLOW: HeaderValue = HeaderValue::from_static("GET");

/// A request for a documented path (or the web UI's) with a method it
/// does not document: `recover` answers `405 method_not_allowed` with this
/// `Allow`, unless a route refused the request for a reason of its own.
#[derive(Debug)]
pub struct Disallowed {
    pub allow: HeaderValue,
}

impl warp::reject::Reject for Disallowed {}

/// Rejects with [`Disallowed`] a request whose path is documented but
/// whose method is not; every other request passes with a plain `404`.
/// Tried after every route; being a rejection, it never hides a route's
/// own answer, nor its own error.
pub fn method_not_allowed() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path::full()
        .and(warp::method())
        .and_then(|path: FullPath, method: Method| async move {
            let path = path.as_str();
            let allow = match find(&BUILT.routes, path) {
                Some(route) if route.methods.contains(&method) => None,
                Some(route) => Some(route.allow.clone()),
                None if path == "/api" || path.starts_with("/api/") => None,
                None if method == Method::GET => None,
                None => Some(UI_ALLOW.clone()),
            };
            Err::<Response, _>(match allow {
                Some(allow) => warp::reject::custom(Disallowed { allow }),
                None => warp::reject::not_found(),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::expiry::ExpiryError;
    use crate::core::model::TokenState;
    use crate::error::ApiError;
    use crate::store::StoreError;

    /// Every error the code can make, by status and code.
    fn every_error() -> Vec<ApiError> {
        let mut errors = vec![
            ApiError::BadRequest("x".into()),
            ApiError::InvalidToken {
                message: "x".into(),
                presented: true,
            },
            ApiError::InvalidCredentials,
            ApiError::InsufficientScope {
                needed: "tokens".into(),
            },
            ApiError::Forbidden("x".into()),
            ApiError::NotFound,
            ApiError::PayloadTooLarge,
            ApiError::validation(Default::default()),
            ApiError::unknown_scope("x", "scopes"),
            ApiError::RateLimited { retry_after: 1 },
            ApiError::Unavailable("x".into()),
            ApiError::Internal("x".into()),
            ApiError::NoMatchingRule,
            ApiError::InvalidPath("x"),
            ApiError::PreconditionFailed,
            ApiError::ProxyMisconfigured("x".into()),
        ];
        for store in [
            StoreError::NotFound,
            StoreError::EmailTaken,
            StoreError::SignUpClosed,
            StoreError::SetupCodeNeeded,
            StoreError::Refused("x".into()),
            StoreError::NoSuchAccount,
            StoreError::AlreadyMember,
            StoreError::LastAdmin,
            StoreError::LastInstanceAdmin,
            StoreError::OnlyWorkspaceAdmin("x".into()),
            StoreError::TokenInactive(TokenState::Revoked),
            StoreError::TokenReplaced,
            StoreError::LastDomainToken("example.com".into()),
            StoreError::DomainExists,
            StoreError::UnknownScope("x".into()),
            StoreError::InvalidSettings(Default::default()),
            StoreError::InvalidRoutes(Default::default()),
            StoreError::PreconditionFailed,
            StoreError::Unavailable("x".into()),
            StoreError::Internal("x".into()),
        ] {
            errors.push(store.into());
        }
        for expiry in [
            ExpiryError::Conflict("expires_at", "x"),
            ExpiryError::Invalid("expires_in", "x"),
            ExpiryError::TooLong {
                field: "expires_in",
                max_ttl_seconds: 60,
            },
            ExpiryError::NoExpiryNotAllowed,
            ExpiryError::BeyondCreator,
        ] {
            errors.push(expiry.into());
        }
        errors
    }

    #[test]
    fn every_error_the_code_makes_is_documented_with_its_status() {
        for err in every_error() {
            let documented = ERRORS
                .iter()
                .find(|e| e.status == err.status())
                .unwrap_or_else(|| panic!("status {} is not documented", err.status()));
            assert!(
                documented.codes.contains(&err.code()),
                "{} {} is not documented",
                err.status(),
                err.code()
            );
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_with_both_credentials() {
        let doc = build();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["cookie"]["in"], "cookie");
        assert_eq!(schemes["cookie"]["name"], SESSION_COOKIE);
        let unauthorized = &doc["components"]["responses"]["Unauthorized"];
        assert_eq!(unauthorized["headers"][WWW_AUTHENTICATE]["required"], true);
        assert_eq!(
            doc["components"]["responses"]["Unavailable"]["headers"][RETRY_AFTER]["required"],
            true
        );
    }

    #[test]
    fn paths_match_as_warp_routes_them() {
        prepare();
        let nil = "00000000-0000-0000-0000-000000000000";
        let allow = |path: &str| find(&BUILT.routes, path).map(|r| r.allow.to_str().unwrap());
        assert_eq!(allow("/api/v1/tokens"), Some("GET, POST"));
        assert_eq!(allow("/api/v1/tokens/"), Some("GET, POST"));
        assert_eq!(allow("/api/v1/tokens/self"), Some("GET"));
        assert_eq!(
            allow(&format!("/api/v1/tokens/{nil}")),
            Some("GET, PATCH, DELETE")
        );
        assert_eq!(allow("/api/v1/tokens/not-an-id"), None);
        assert_eq!(allow("/api/v1/tokens//"), None);
        assert_eq!(
            allow(&format!("/api/v1/workspaces/{nil}/scopes/contacts")),
            Some("PUT, DELETE")
        );
        assert_eq!(allow("/api/v1/nothing"), None);
    }
}
