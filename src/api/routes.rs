//! The forward-auth rules document (§10): `GET /routes` and `PUT /routes`
//! read and replace the caller's workspace's whole document, with `ETag` /
//! `If-Match` so that two editors cannot overwrite each other unseen.

use serde_json::{Map, Value};
use utoipa::{OpenApi, ToSchema};
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, header};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::ActingWorkspace;
use super::authz::live_rules;
use super::body::{self, Fields};
use super::openapi::{BodyErrors, CredentialErrors, NotFound, PreconditionFailed, ServerErrors};
use super::reply::Data;
use super::{auth, reply, with};
use crate::auth::caller::Caller;
use crate::core::forward_auth::RuleDocument;
use crate::core::scopes::{Resource, Scope};
use crate::core::time::Timestamp;
use crate::error::ApiError;
use crate::state::{AppState, LiveRules};
use crate::store::{IfMatch, StoreError};

/// The top-level fields of a document.
const FIELDS: [&str; 4] = ["default", "cors_preflight", "cache_seconds", "rules"];

/// This file's operations in the API document.
#[derive(OpenApi)]
#[openapi(paths(get, put))]
pub(super) struct Doc;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    get(state.clone()).or(put(state)).unify().boxed()
}

/// GET /api/v1/routes
#[utoipa::path(
    get,
    path = "/api/v1/routes",
    operation_id = "get_routes",
    tag = "forward-auth",
    summary = "The workspace's forward-auth rules (needs `routes:read`)",
    security(("bearer" = []), ("cookie" = [])),
    params(ActingWorkspace),
    responses(
        (status = 200, description = "The whole document.", body = Data<RulesDocument>,
            headers(("ETag" = String, description = "Its version, for `If-Match`."))),
        CredentialErrors, NotFound, ServerErrors,
    )
)]
fn get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("routes")
        .and(warp::get())
        .and(auth::caller(state.clone()))
        .and(with(state))
        .and_then(handle_get)
}

/// PUT /api/v1/routes
///
/// Replaces the whole document at once. Patterns are `/`-separated
/// literal segments, `*` (one segment) and a final `**` (any number); the
/// most specific rule wins, never the list's order.
#[utoipa::path(
    put,
    path = "/api/v1/routes",
    operation_id = "put_routes",
    tag = "forward-auth",
    summary = "Replace the workspace's forward-auth rules (needs `routes`)",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ActingWorkspace,
        ("If-Match" = Option<String>, Header,
            description = "The `ETag` read: the write fails with `412` if another came first."),
    ),
    request_body = RulesDocument,
    responses(
        (status = 200, description = "The document as stored.", body = Data<RulesDocument>,
            headers(("ETag" = String, description = "Its new version."))),
        BodyErrors, CredentialErrors, NotFound, PreconditionFailed, ServerErrors,
    )
)]
fn put(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("routes")
        .and(warp::put())
        .and(auth::caller(state.clone()))
        .and(warp::header::optional::<String>("if-match"))
        .and(body::json())
        .and(with(state))
        .and_then(handle_put)
}

// Read by `RuleDocument::from_json` through `handle_put`, written by
// `RuleDocument::to_json`; tests/openapi.rs checks the request side agrees.
/// A workspace's forward-auth rules. In answers every field is present.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "default": "deny",
    "rules": [
        {"id": "contacts-read", "host": "api.example.com", "methods": ["GET"],
         "path": "/contacts/**", "scopes": ["contacts:read"]},
        {"id": "health", "methods": ["GET"], "path": "/healthz", "public": true}
    ]
})))]
#[allow(dead_code)]
struct RulesDocument {
    /// What a request no rule matches gets: `deny` (the default) or
    /// `authenticated` (any valid token of the workspace).
    #[schema(nullable = false)]
    default: Option<RulesDefault>,
    /// Let a true CORS preflight through anonymously (default `true`).
    #[schema(nullable = false)]
    cors_preflight: Option<bool>,
    /// How long a proxy may keep an allowed answer (default 0).
    #[schema(nullable = false, minimum = 0, maximum = 86_400)]
    cache_seconds: Option<i64>,
    /// At most 1000 rules; an empty list allows nothing.
    #[schema(max_items = 1000)]
    rules: Vec<RuleDoc>,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum RulesDefault {
    Deny,
    Authenticated,
}

/// One rule: exactly one of `scopes`, `public: true`, `deny: true`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RuleDoc {
    /// Unique in the document: letters, digits, `.`, `-`, `_`.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    id: String,
    /// Only requests for this host; rules with a host win over those
    /// without.
    host: Option<String>,
    /// Upper-case methods, or `["*"]` (the default); `GET` covers `HEAD`.
    #[schema(nullable = false, min_items = 1)]
    methods: Option<Vec<String>>,
    /// The pattern, e.g. `/contacts/**`.
    path: String,
    /// Scopes the token must hold, all of them.
    #[schema(nullable = false)]
    scopes: Option<Vec<Scope>>,
    /// `true`: no token needed.
    #[schema(nullable = false)]
    public: Option<bool>,
    /// `true`: always refused.
    #[schema(nullable = false)]
    deny: Option<bool>,
}

async fn handle_get(caller: Caller, state: AppState) -> Result<Response, Rejection> {
    caller.require(Scope::read(Resource::Routes))?;
    let live = live_rules(&state, caller.workspace_id).await?;
    Ok(document_reply(&live))
}

async fn handle_put(
    caller: Caller,
    if_match: Option<String>,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    caller.require(Scope::full(Resource::Routes))?;
    let mut given = Map::new();
    for key in FIELDS {
        if let Some(value) = fields.value(key) {
            given.insert(key.to_owned(), value);
        }
    }
    let parsed = RuleDocument::from_json(&Value::Object(given));
    if let Err(problems) = &parsed {
        for (key, problem) in problems {
            fields.problem(key, problem.clone());
        }
    }
    fields.finish()?;
    let document = parsed.map_err(ApiError::validation)?;
    let expected = if_match.as_deref().map(parse_if_match);

    // The write and the swap of the rules in memory run as one task of
    // their own: if the client goes away, the request's future is dropped,
    // but a committed document still reaches the very next request.
    let workspace = caller.workspace_id;
    let actor = caller.actor();
    let task_state = state.clone();
    let live = tokio::spawn(async move {
        let stored = task_state
            .store
            .put_routes(workspace, document, expected, Timestamp::now(), actor)
            .await?;
        let live = std::sync::Arc::new(LiveRules::new(stored));
        Ok::<_, StoreError>(task_state.routes.offer(workspace, live))
    })
    .await
    .map_err(|err| ApiError::internal("storing the rules", err))??;
    Ok(document_reply(&live))
}

/// `If-Match: *` or a list of entity tags; weak or foreign ones never match.
fn parse_if_match(text: &str) -> IfMatch {
    if text.trim() == "*" {
        return IfMatch::Any;
    }
    IfMatch::Versions(
        text.split(',')
            .filter_map(|tag| {
                tag.trim()
                    .strip_prefix('"')?
                    .strip_suffix('"')?
                    .parse()
                    .ok()
            })
            .collect(),
    )
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn document_reply(live: &LiveRules) -> Response {
    let mut response = reply::ok(&live.rules.document().to_json());
    response
        .headers_mut()
        .insert(header::ETAG, etag(live.version));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_takes_strong_tags_only() {
        assert_eq!(parse_if_match(" * "), IfMatch::Any);
        assert_eq!(parse_if_match("\"3\""), IfMatch::Versions(vec![3]));
        assert_eq!(
            parse_if_match("\"1\", \"2\""),
            IfMatch::Versions(vec![1, 2])
        );
        assert_eq!(parse_if_match("W/\"3\""), IfMatch::Versions(vec![]));
        assert_eq!(parse_if_match("3"), IfMatch::Versions(vec![]));
        assert!(!parse_if_match("W/\"3\"").allows(3));
    }
}
