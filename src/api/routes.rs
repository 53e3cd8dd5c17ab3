//! The forward-auth rules document (§10): `GET /routes` and `PUT /routes`
//! read and replace the caller's workspace's whole document, with `ETag` /
//! `If-Match` so that two editors cannot overwrite each other unseen.

use serde_json::{Map, Value};
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, header};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::authz::live_rules;
use super::body::{self, Fields};
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

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    get(state.clone()).or(put(state)).unify().boxed()
}

/// GET /api/v1/routes
fn get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("routes")
        .and(warp::get())
        .and(auth::caller(state.clone()))
        .and(with(state))
        .and_then(handle_get)
}

/// PUT /api/v1/routes
fn put(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("routes")
        .and(warp::put())
        .and(auth::caller(state.clone()))
        .and(warp::header::optional::<String>("if-match"))
        .and(body::json())
        .and(with(state))
        .and_then(handle_put)
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
