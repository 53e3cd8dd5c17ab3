//! Forward-auth (§10): a reverse proxy asks, for each request, whether its
//! bearer token may do this method on this path, and tokenward answers with
//! a status the proxy acts on and identity headers it passes upstream.
//!
//! The three proxy endpoints answer on the hot path, right after verify:
//! the rules come from memory, the token from the verify cache, and the
//! answer is headers only. `explain` runs the very same decision as a dry
//! run (no last-used time, no failure counted) for people and tests.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use serde_json::{Map, Value, json};
use utoipa::{OpenApi, ToSchema};
use warp::filters::path::FullPath;
use warp::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use warp::http::{Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::{self, ActingWorkspace};
use super::body::{self, Fields};
use super::openapi::{BodyErrors, CredentialErrors, NotFound, ProxyAnswers, ServerErrors};
use super::reply::Data;
use super::{reply, with};
use crate::auth::caller::Caller;
use crate::auth::presented_token::{Inspection, inspect};
use crate::core::forward_auth::{
    self, InvalidPath, OVERRIDE_HEADERS, Plan, Refusal, Request, Target, canonicalize,
};
use crate::core::ids::Id;
use crate::core::model::{TokenGrant, Workspace};
use crate::core::ratelimit::retry_after_seconds;
use crate::core::scopes::{Resource, Scope};
use crate::core::time::Timestamp;
use crate::error::ApiError;
use crate::state::{AppState, LiveRules};
use crate::store::StoredRoutes;

type WorkspaceId = Id<Workspace>;

const AUTH: HeaderName = HeaderName::from_static("x-tokenward-auth");
const TOKEN_ID: HeaderName = HeaderName::from_static("x-tokenward-token-id");
const WORKSPACE_ID: HeaderName = HeaderName::from_static("x-tokenward-workspace-id");
const USER_ID: HeaderName = HeaderName::from_static("x-tokenward-user-id");
const SCOPES: HeaderName = HeaderName::from_static("x-tokenward-scopes");
const RULE: HeaderName = HeaderName::from_static("x-tokenward-rule");
const ERROR: HeaderName = HeaderName::from_static("x-tokenward-error");
const EMPTY: HeaderValue = HeaderValue::from_static("");

/// This file's operations in the API document. The proxy endpoints answer
/// any method; each is declared for GET and copied to the others.
#[derive(OpenApi)]
#[openapi(
    paths(auth_request, forward_auth, ext_authz, explain),
    modifiers(&AnyMethod)
)]
pub(super) struct Doc;

/// Copies the GET operation of each proxy endpoint to every other method,
/// each with an operation id of its own.
struct AnyMethod;

impl utoipa::Modify for AnyMethod {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let Some(get) = item.get.clone() else {
                continue;
            };
            let id = get.operation_id.clone().unwrap_or_default();
            if !id.starts_with("proxy_") {
                continue;
            }
            for (name, slot) in [
                ("head", &mut item.head),
                ("post", &mut item.post),
                ("put", &mut item.put),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
                ("options", &mut item.options),
                ("trace", &mut item.trace),
            ] {
                let mut operation = get.clone();
                operation.operation_id = Some(format!("{id}_{name}"));
                *slot = Some(operation);
            }
        }
    }
}

/// Which proxy is asking: each describes the original request its own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// nginx `auth_request`.
    AuthRequest,
    /// Caddy and Traefik `forward_auth`, HAProxy.
    ForwardAuth,
    /// Envoy `ext_authz` (HTTP service).
    ExtAuthz,
}

/// The three proxy endpoints, tried right after verify.
pub fn answers(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    auth_request(state.clone())
        .or(forward_auth(state.clone()))
        .unify()
        .or(ext_authz(state))
        .unify()
}

/// ANY /api/v1/authz/{workspace_id}/auth-request
///
/// The original request comes from `X-Original-Method` and
/// `X-Original-URI` (or the path of `X-Original-URL`), its host from
/// `X-Forwarded-Host`; without them the answer is `500
/// proxy_misconfigured` (fail closed). The token comes only from
/// `Authorization: Bearer`. The rate limit answers `403` here, as nginx
/// turns any other status into a 500.
#[utoipa::path(
    get,
    path = "/api/v1/authz/{workspace_id}/auth-request",
    operation_id = "proxy_auth_request",
    tag = "forward-auth",
    summary = "Forward-auth for nginx auth_request (any method)",
    security((), ("bearer" = [])),
    params(
        ("workspace_id" = String, Path, format = "uuid", description = "The workspace whose rules apply."),
        ("X-Original-Method" = Option<String>, Header, description = "The original request's method."),
        ("X-Original-URI" = Option<String>, Header, description = "The original request's path and query."),
        ("X-Original-URL" = Option<String>, Header, description = "Instead of X-Original-URI: the original URL."),
        ("X-Forwarded-Host" = Option<String>, Header, description = "The original request's host."),
    ),
    responses(ProxyAnswers)
)]
fn auth_request(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("authz" / WorkspaceId / "auth-request")
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(auth::client_ip(state.clone()))
        .and(with(state))
        .then(move |workspace, method, headers, ip, state| {
            answer_from_headers(Endpoint::AuthRequest, workspace, method, headers, ip, state)
        })
}

/// The warp route's answer for an endpoint whose original request is in
/// the headers alone.
async fn answer_from_headers(
    endpoint: Endpoint,
    workspace: WorkspaceId,
    method: Method,
    headers: HeaderMap,
    ip: Option<IpAddr>,
    state: AppState,
) -> Response {
    let forwarded = Forwarded {
        method: &method,
        headers: &headers,
        suffix: None,
    };
    answer(endpoint, workspace, forwarded, ip, &state, Timestamp::now()).await
}

/// ANY /api/v1/authz/{workspace_id}/forward-auth
///
/// The original request comes from `X-Forwarded-Method`, `X-Forwarded-Uri`
/// and `X-Forwarded-Host`; without the first two the answer is `500
/// proxy_misconfigured` (fail closed).
#[utoipa::path(
    get,
    path = "/api/v1/authz/{workspace_id}/forward-auth",
    operation_id = "proxy_forward_auth",
    tag = "forward-auth",
    summary = "Forward-auth for Caddy, Traefik and HAProxy (any method)",
    security((), ("bearer" = [])),
    params(
        ("workspace_id" = String, Path, format = "uuid", description = "The workspace whose rules apply."),
        ("X-Forwarded-Method" = Option<String>, Header, description = "The original request's method."),
        ("X-Forwarded-Uri" = Option<String>, Header, description = "The original request's path and query."),
        ("X-Forwarded-Host" = Option<String>, Header, description = "The original request's host."),
    ),
    responses(ProxyAnswers)
)]
fn forward_auth(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("authz" / WorkspaceId / "forward-auth")
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(auth::client_ip(state.clone()))
        .and(with(state))
        .then(move |workspace, method, headers, ip, state| {
            answer_from_headers(Endpoint::ForwardAuth, workspace, method, headers, ip, state)
        })
}

/// The original path and query of an `ext-authz` request.
pub(super) struct Suffix {
    /// The whole path of this request.
    pub full: String,
    pub query: String,
}

/// ANY /api/v1/authz/{workspace_id}/ext-authz/{path...}
///
/// The original request is this request itself: its method, and the path
/// and query after `/ext-authz` (any number of segments, or none: `/`).
#[utoipa::path(
    get,
    path = "/api/v1/authz/{workspace_id}/ext-authz/{path}",
    operation_id = "proxy_ext_authz",
    tag = "forward-auth",
    summary = "Forward-auth for Envoy ext_authz (any method)",
    security((), ("bearer" = [])),
    params(
        ("workspace_id" = String, Path, format = "uuid", description = "The workspace whose rules apply."),
        ("path" = String, Path, description = "The original request's path, after `/ext-authz/`; may hold further segments."),
    ),
    responses(ProxyAnswers)
)]
fn ext_authz(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path("authz")
        .and(warp::path::param::<WorkspaceId>())
        .and(warp::path("ext-authz"))
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(auth::client_ip(state.clone()))
        .and(with(state))
        .then(
            |workspace, full, query, method, headers, ip, state: AppState| async move {
                let suffix = Suffix {
                    full: FullPath::as_str(&full).to_owned(),
                    query,
                };
                answer(
                    Endpoint::ExtAuthz,
                    workspace,
                    Forwarded {
                        method: &method,
                        headers: &headers,
                        suffix: Some(suffix),
                    },
                    ip,
                    &state,
                    Timestamp::now(),
                )
                .await
            },
        )
}

/// POST /api/v1/authz/{workspace_id}/explain
///
/// The same decision a proxy would get, as a dry run: no use of the token
/// is recorded and no failure counted.
#[utoipa::path(
    post,
    path = "/api/v1/authz/{workspace_id}/explain",
    operation_id = "explain_forward_auth",
    tag = "forward-auth",
    summary = "Explain a forward-auth decision (needs `routes:read`)",
    security(("bearer" = []), ("cookie" = [])),
    params(
        ("workspace_id" = String, Path, format = "uuid", description = "The caller's workspace."),
        ActingWorkspace,
    ),
    request_body = ExplainBody,
    responses(
        (status = 200, description = "The decision and the answer a proxy would get.",
            body = Data<Explanation>),
        BodyErrors, CredentialErrors, NotFound, ServerErrors,
    )
)]
pub fn explain(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("authz" / WorkspaceId / "explain")
        .and(warp::post())
        .and(auth::caller(state.clone()))
        .and(body::json())
        .and(with(state))
        .and_then(handle_explain)
}

/// The rules for a workspace: from memory, or read once and kept. A
/// workspace that does not exist gets the default document (deny
/// everything) without being kept, so made-up ids cannot fill memory.
pub async fn live_rules(
    state: &AppState,
    workspace: WorkspaceId,
) -> Result<Arc<LiveRules>, ApiError> {
    static NOWHERE: LazyLock<Arc<LiveRules>> = LazyLock::new(|| {
        Arc::new(LiveRules::new(StoredRoutes {
            document: Default::default(),
            version: 0,
        }))
    });
    if let Some(live) = state.routes.get(workspace) {
        return Ok(live);
    }
    Ok(match state.store.routes(workspace).await? {
        Some(stored) => state
            .routes
            .offer(workspace, Arc::new(LiveRules::new(stored))),
        None => Arc::clone(&NOWHERE),
    })
}

/// The original request as a proxy describes it.
struct Asked<'a> {
    method: &'a str,
    target: &'a [u8],
    /// `ext-authz` has its query apart from its path.
    query: Option<&'a [u8]>,
    host: Option<&'a str>,
    overrides: [Option<&'a str>; 3],
    /// `None` without an `Authorization` header; `Some(None)` for one that
    /// is not `Bearer <credential>`.
    bearer: Option<Option<&'a str>>,
    /// `Origin` and `Access-Control-Request-Method` were both sent.
    preflight_headers: bool,
}

/// Whether the decision has consequences (a live proxy request) or is a
/// dry run (`explain`).
#[derive(Clone, Copy)]
enum Mode {
    Live { ip: Option<IpAddr> },
    DryRun,
}

/// A decision and what led to it.
struct Outcome<'a, 'r> {
    target: Option<Target<'a>>,
    plan: Option<Plan<'r>>,
    /// The deciding rule's index: the `deny` rule that refused, or the rule
    /// of the request's own method.
    rule: Option<usize>,
    /// `Ok(None)`: allowed anonymously; `Ok(Some)`: allowed with a token.
    decision: Result<Option<Arc<TokenGrant>>, ApiError>,
}

fn text(value: Option<&HeaderValue>) -> Option<&str> {
    value.and_then(|v| v.to_str().ok())
}

/// The request headers forward-auth reads, found in one pass: a proxy's
/// subrequest carries a handful, and comparing names is cheaper than
/// hashing each one looked up. The first of repeated headers counts, as
/// with `HeaderMap::get`.
#[derive(Default)]
struct Sent<'h> {
    original_method: Option<&'h HeaderValue>,
    original_uri: Option<&'h HeaderValue>,
    original_url: Option<&'h HeaderValue>,
    forwarded_method: Option<&'h HeaderValue>,
    forwarded_uri: Option<&'h HeaderValue>,
    forwarded_host: Option<&'h HeaderValue>,
    host: Option<&'h HeaderValue>,
    authorization: Option<&'h HeaderValue>,
    overrides: [Option<&'h HeaderValue>; 3],
    origin: bool,
    request_method: bool,
}

impl<'h> Sent<'h> {
    fn read(headers: &'h HeaderMap) -> Self {
        let mut sent = Sent::default();
        for (name, value) in headers {
            let slot = match name.as_str() {
                "x-original-method" => &mut sent.original_method,
                "x-original-uri" => &mut sent.original_uri,
                "x-original-url" => &mut sent.original_url,
                "x-forwarded-method" => &mut sent.forwarded_method,
                "x-forwarded-uri" => &mut sent.forwarded_uri,
                "x-forwarded-host" => &mut sent.forwarded_host,
                "host" => &mut sent.host,
                "authorization" => &mut sent.authorization,
                "origin" => {
                    sent.origin = true;
                    continue;
                }
                "access-control-request-method" => {
                    sent.request_method = true;
                    continue;
                }
                other => match OVERRIDE_HEADERS.iter().position(|o| *o == other) {
                    Some(index) => &mut sent.overrides[index],
                    None => continue,
                },
            };
            slot.get_or_insert(value);
        }
        sent
    }
}

/// What the proxy told us about the original request, or `500
/// proxy_misconfigured` naming the header it left out.
fn describe<'a>(
    endpoint: Endpoint,
    method: &'a Method,
    headers: &'a HeaderMap,
    suffix: Option<&'a Suffix>,
) -> Result<Asked<'a>, ApiError> {
    let missing = |what: &str, fix: &str| {
        ApiError::ProxyMisconfigured(format!(
            "the proxy sent no {what}: {fix} (see docs/forward-auth.md); every request is refused until it does"
        ))
    };
    let sent = Sent::read(headers);
    let (method, target, query, host) = match endpoint {
        Endpoint::AuthRequest => {
            let method = text(sent.original_method).ok_or_else(|| {
                missing(
                    "X-Original-Method header",
                    "add proxy_set_header X-Original-Method $request_method; to the auth location",
                )
            })?;
            let target = sent.original_uri.or(sent.original_url).ok_or_else(|| {
                missing(
                    "X-Original-URI header",
                    "add proxy_set_header X-Original-URI $request_uri; to the auth location",
                )
            })?;
            (method, target.as_bytes(), None, text(sent.forwarded_host))
        }
        Endpoint::ForwardAuth => {
            let method = text(sent.forwarded_method).ok_or_else(|| {
                missing(
                    "X-Forwarded-Method header",
                    "the proxy's forward-auth must send X-Forwarded-Method",
                )
            })?;
            let target = sent.forwarded_uri.ok_or_else(|| {
                missing(
                    "X-Forwarded-Uri header",
                    "the proxy's forward-auth must send X-Forwarded-Uri",
                )
            })?;
            (method, target.as_bytes(), None, text(sent.forwarded_host))
        }
        Endpoint::ExtAuthz => {
            let suffix = suffix.ok_or_else(|| ApiError::internal("ext-authz", "no path"))?;
            let path = original_path(&suffix.full);
            (
                method.as_str(),
                path.as_bytes(),
                Some(suffix.query.as_bytes()),
                text(sent.host),
            )
        }
    };
    if !forward_auth::rules::is_method(method.trim()) {
        return Err(ApiError::ProxyMisconfigured(format!(
            "the proxy sent {method:?} as the original method, which is not an HTTP method"
        )));
    }
    // Through several proxies, the last host is the one the nearest set.
    let host = host
        .and_then(|list| list.rsplit(',').next())
        .map(str::trim)
        .filter(|h| !h.is_empty());
    // A value that is not text cannot be a method: `?` makes it refused.
    let overrides = sent
        .overrides
        .map(|value| value.map(|v| v.to_str().unwrap_or("?")));
    Ok(Asked {
        method: method.trim(),
        target,
        query,
        host,
        overrides,
        bearer: sent
            .authorization
            .map(|value| forward_auth::bearer(value.as_bytes())),
        preflight_headers: sent.origin && sent.request_method,
    })
}

/// The original path of an `ext-authz` request: what follows
/// `/api/v1/authz/{workspace_id}/ext-authz`, or `/`.
fn original_path(full: &str) -> &str {
    const MARK: &str = "/ext-authz";
    let after = full.find(MARK).map_or("", |at| &full[at + MARK.len()..]);
    if after.is_empty() { "/" } else { after }
}

/// A proxy's request to a forward-auth endpoint, as received.
pub(super) struct Forwarded<'r> {
    pub method: &'r Method,
    pub headers: &'r HeaderMap,
    /// `ext-authz` only: the original path and query.
    pub suffix: Option<Suffix>,
}

pub(super) async fn answer(
    endpoint: Endpoint,
    workspace: WorkspaceId,
    forwarded: Forwarded<'_>,
    ip: Option<IpAddr>,
    state: &AppState,
    now: Timestamp,
) -> Response {
    let Forwarded {
        method,
        headers,
        suffix,
    } = forwarded;
    let asked = match describe(endpoint, method, headers, suffix.as_ref()) {
        Ok(asked) => asked,
        Err(err) => {
            tracing::warn!(%workspace, "forward-auth refused: {err}");
            return denial(endpoint, &err);
        }
    };
    let live = match live_rules(state, workspace).await {
        Ok(live) => live,
        Err(err) => return denial(endpoint, &err),
    };
    let outcome = decide(state, workspace, &live, &asked, Mode::Live { ip }, now).await;
    respond(endpoint, &live, &outcome, now)
}

/// The decision of §10, shared by the proxies and `explain`.
async fn decide<'a, 'r>(
    state: &AppState,
    workspace: WorkspaceId,
    live: &'r LiveRules,
    asked: &Asked<'a>,
    mode: Mode,
    now: Timestamp,
) -> Outcome<'a, 'r> {
    let mut outcome = Outcome {
        target: None,
        plan: None,
        rule: None,
        decision: Ok(None),
    };
    let mut target = match canonicalize(asked.target) {
        Ok(target) => target,
        Err(invalid) => {
            outcome.decision = Err(invalid_path(invalid));
            return outcome;
        }
    };
    if let Some(query) = asked.query {
        target.query = query;
    }
    let document = live.rules.document();
    if document.cors_preflight
        && forward_auth::is_preflight(
            asked.method,
            asked.preflight_headers,
            asked.preflight_headers,
            asked.bearer.is_some(),
        )
    {
        outcome.target = Some(target);
        return outcome;
    }
    let query_method = forward_auth::query_method(target.query);
    let [first, second, third] = asked.overrides;
    let request = Request {
        method: asked.method,
        overrides: [first, second, third, query_method.as_deref()],
        host: asked.host,
        path: &target.path,
    };
    let plan = match forward_auth::plan(&live.rules, &request) {
        Ok(plan) => plan,
        Err(refusal) => {
            outcome.decision = Err(match refusal {
                Refusal::Denied(index, rule) => {
                    outcome.rule = Some(index);
                    ApiError::Forbidden(format!("the rule {} denies this request", rule.id))
                }
                Refusal::NoMatchingRule => ApiError::NoMatchingRule,
                Refusal::BadOverride => ApiError::Forbidden(
                    "a method override (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override or _method) is not an HTTP method".into(),
                ),
            });
            outcome.target = Some(target);
            return outcome;
        }
    };
    outcome.rule = plan.rule.map(|(index, _)| index);
    if plan.token {
        outcome.decision = authenticate(state, workspace, asked, &plan, mode, now)
            .await
            .map(Some);
    }
    outcome.plan = Some(plan);
    outcome.target = Some(target);
    outcome
}

fn invalid_path(invalid: InvalidPath) -> ApiError {
    ApiError::InvalidPath(invalid.reason())
}

fn invalid_token(message: &str) -> ApiError {
    ApiError::InvalidToken {
        message: message.to_owned(),
        presented: true,
    }
}

/// The presented token, judged exactly as verify judges it, then held
/// against the plan's scopes.
async fn authenticate(
    state: &AppState,
    workspace: WorkspaceId,
    asked: &Asked<'_>,
    plan: &Plan<'_>,
    mode: Mode,
    now: Timestamp,
) -> Result<Arc<TokenGrant>, ApiError> {
    let Some(bearer) = asked.bearer else {
        return Err(ApiError::InvalidToken {
            message: "this route needs an API token: send Authorization: Bearer <token>".into(),
            presented: false,
        });
    };
    let ip = match mode {
        Mode::Live { ip } => ip,
        Mode::DryRun => None,
    };
    if let (Mode::Live { .. }, Some(ip)) = (mode, ip)
        && let Some(wait) = state.verify_failures.retry_after(&ip)
    {
        return Err(ApiError::RateLimited {
            retry_after: retry_after_seconds(wait),
        });
    }
    let judged = match bearer {
        None => Err(invalid_token(
            "the Authorization header must be: Bearer <token>",
        )),
        Some(secret) => {
            let Inspection { verdict, grant } =
                inspect(state.store.as_ref(), secret, Some(workspace), &[], now).await?;
            match (verdict.refusal(), grant) {
                (None, Some(grant)) => Ok(grant),
                (refusal, _) => Err(invalid_token(
                    refusal.unwrap_or("the API token is not known"),
                )),
            }
        }
    };
    let grant = match judged {
        Ok(grant) => grant,
        Err(err) => {
            if let (Mode::Live { .. }, Some(ip)) = (mode, ip) {
                state.verify_failures.record_failure(ip, Instant::now());
            }
            return Err(err);
        }
    };
    if let Some(needed) = plan.first_missing(grant.effective_scopes()) {
        return Err(ApiError::InsufficientScope {
            needed: needed.to_string(),
        });
    }
    if let Mode::Live { ip } = mode {
        state.usage.record_use(&grant, now, ip);
    }
    Ok(grant)
}

/// The answer of §10's table for an outcome.
fn respond(endpoint: Endpoint, live: &LiveRules, outcome: &Outcome, now: Timestamp) -> Response {
    match &outcome.decision {
        Ok(grant) => allowed(live, outcome.rule, grant.as_deref(), now),
        Err(err) => denial(endpoint, err),
    }
}

fn allowed(
    live: &LiveRules,
    rule: Option<usize>,
    grant: Option<&TokenGrant>,
    now: Timestamp,
) -> Response {
    let rule = rule
        .and_then(|index| live.rule_headers.get(index))
        .map_or(EMPTY, |id| copied_value(id.as_bytes()));
    let cache_seconds = live.rules.document().cache_seconds;
    let expires_at = grant.and_then(|grant| grant.token.expires_at);
    let cache = match forward_auth::max_age(cache_seconds, expires_at, now) {
        Some(seconds) => owned_value(format!("max-age={seconds}")),
        None => HeaderValue::from_static("no-store"),
    };
    let identity = match grant {
        Some(grant) => {
            let token = &grant.token;
            [
                HeaderValue::from_static("token"),
                id_value(token.id.uuid()),
                id_value(token.workspace_id.uuid()),
                id_value(token.created_by.id.uuid()),
                scopes_value(grant.effective_scopes()),
            ]
        }
        None => [
            HeaderValue::from_static("anonymous"),
            EMPTY,
            EMPTY,
            EMPTY,
            EMPTY,
        ],
    };
    let [auth, token_id, workspace_id, user_id, scopes] = identity;
    let values = [cache, auth, token_id, workspace_id, user_id, scopes, rule];
    let mut headers = ALLOWED_HEADERS.clone();
    // The template ends with these seven, in this order: each value is set
    // in place, where inserting would hash its name again.
    let first = headers.len() - values.len();
    for ((_, slot), value) in headers.iter_mut().skip(first).zip(values) {
        *slot = value;
    }
    let mut response = Response::new(Vec::new().into());
    *response.headers_mut() = headers;
    response
}

/// The headers an allowed answer adds to the security headers, in order.
const ALLOWED_NAMES: [HeaderName; 7] = [
    header::CACHE_CONTROL,
    AUTH,
    TOKEN_ID,
    WORKSPACE_ID,
    USER_ID,
    SCOPES,
    RULE,
];

/// The headers of an allowed answer, in the order they are sent, with
/// empty values. A copy gets each value set in place: inserting them into a
/// copy grew the map on every answer.
///
/// No security headers: an allowed answer has no body and goes to the proxy
/// alone (nginx's subrequest, the 2xx of Caddy's, Traefik's and Envoy's
/// check), never to a browser, so it carries what §10 lists and nothing
/// else. Denials, which proxies pass on to the client, keep them.
static ALLOWED_HEADERS: LazyLock<HeaderMap> = LazyLock::new(|| {
    let mut headers = HeaderMap::with_capacity(ALLOWED_NAMES.len());
    for name in ALLOWED_NAMES {
        headers.insert(name, EMPTY);
    }
    headers
});

/// Whether `headers` are an allowed answer's, which gets no security
/// headers (see [`ALLOWED_HEADERS`]); only allowed answers name the caller.
pub(super) fn is_allowed_answer(headers: &HeaderMap) -> bool {
    headers.contains_key(AUTH)
}

fn id_value(uuid: uuid::Uuid) -> HeaderValue {
    let mut buffer = [0u8; uuid::fmt::Hyphenated::LENGTH];
    copied_value(uuid.hyphenated().encode_lower(&mut buffer).as_bytes())
}

/// A header value of its own. Cloning a value held in memory would count
/// a reference on a line that every core answering writes.
fn copied_value(bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(bytes)).unwrap_or(EMPTY)
}

/// A header value that takes `text` over rather than copying it.
fn owned_value(text: String) -> HeaderValue {
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text)).unwrap_or(EMPTY)
}

/// Effective scopes, sorted, space-separated. They are nearly always in
/// order already (stored normalised), so the names are written once into
/// the value and re-ordered only when narrowing to `:read` moved one.
fn scopes_value(scopes: &[Scope]) -> HeaderValue {
    let mut text = String::with_capacity(scopes.len() * 16);
    let mut sorted = true;
    let mut previous = 0..0;
    for scope in scopes {
        if !text.is_empty() {
            text.push(' ');
        }
        let start = text.len();
        for part in scope.parts() {
            text.push_str(part);
        }
        sorted &= text[previous.clone()] <= text[start..];
        previous = start..text.len();
    }
    if !sorted {
        let mut names: Vec<&str> = text.split(' ').collect();
        names.sort_unstable();
        text = names.join(" ");
    }
    owned_value(text)
}

/// Every denial: the error envelope, its challenge, `X-Tokenward-Error`,
/// and no identity header. nginx turns any status but 401 and 403 into a
/// 500, so its rate limit answers 403.
fn denial(endpoint: Endpoint, err: &ApiError) -> Response {
    let mut response = reply::error(err);
    if endpoint == Endpoint::AuthRequest && matches!(err, ApiError::RateLimited { .. }) {
        *response.status_mut() = StatusCode::FORBIDDEN;
    }
    response
        .headers_mut()
        .insert(ERROR, HeaderValue::from_static(err.code()));
    response
}

// Read by `handle_explain`; tests/openapi.rs checks the two agree.
/// The body of `POST /authz/{workspace_id}/explain`: a request as a proxy
/// would describe it.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"method": "GET", "uri": "/contacts/42", "host": "api.example.com"})))]
#[allow(dead_code)]
struct ExplainBody {
    method: String,
    /// The path and query.
    uri: String,
    host: Option<String>,
    /// The bearer token the request would carry.
    token: Option<String>,
}

/// What `explain` answers.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Explanation {
    /// `null` when the path has no canonical form.
    #[schema(required = true)]
    canonical_path: Option<String>,
    /// The deciding rule's id; `null` when none matched.
    #[schema(required = true)]
    rule: Option<String>,
    required_scopes: Vec<String>,
    decision: ExplainedDecision,
    /// `token` or `anonymous` when allowed, else the `error` code.
    code: String,
    /// The status a proxy would get.
    status: u16,
    /// tokenward's headers in that answer.
    headers: std::collections::BTreeMap<String, String>,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum ExplainedDecision {
    Allow,
    Deny,
}

async fn handle_explain(
    workspace: WorkspaceId,
    caller: Caller,
    mut fields: Fields,
    state: AppState,
) -> Result<Response, Rejection> {
    // A session acts in the workspace it names (X-Workspace), a token in its
    // own: another workspace's rules are not there for the caller.
    if caller.workspace_id != workspace {
        return Err(ApiError::NotFound.into());
    }
    caller.require(Scope::read(Resource::Routes))?;
    let method = fields.required_string("method").and_then(|m| {
        let m = m.trim().to_owned();
        fields.check(
            "method",
            if forward_auth::rules::is_method(&m) {
                Ok(m)
            } else {
                Err("must be an HTTP method such as GET")
            },
        )
    });
    let uri = fields.required_string("uri");
    let host = fields.string("host");
    let token = fields.string("token");
    fields.finish()?;
    let (Some(method), Some(uri)) = (method, uri) else {
        return Err(ApiError::internal("explain", "fields passed without values").into());
    };
    let token = token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    let asked = Asked {
        method: &method,
        target: uri.trim().as_bytes(),
        query: None,
        host: host.as_deref().map(str::trim).filter(|h| !h.is_empty()),
        overrides: [None; 3],
        bearer: token.as_deref().map(Some),
        preflight_headers: false,
    };
    let live = live_rules(&state, workspace).await?;
    let now = Timestamp::now();
    let outcome = decide(&state, workspace, &live, &asked, Mode::DryRun, now).await;
    // A database fault is the server's, not a decision to explain.
    if let Err(err @ (ApiError::Internal(_) | ApiError::Unavailable(_))) = outcome.decision {
        return Err(err.into());
    }
    let response = respond(Endpoint::ForwardAuth, &live, &outcome, now);
    Ok(reply::ok(&explanation(&live, &outcome, &response)))
}

/// `{canonical_path, rule, required_scopes, decision, code}`, plus the
/// answer a proxy would get: its status and tokenward's headers.
fn explanation(live: &LiveRules, outcome: &Outcome, response: &Response) -> Value {
    let rules = &live.rules.document().rules;
    let rule = outcome
        .rule
        .and_then(|index| rules.get(index))
        .map(|rule| rule.id.clone());
    let required: Vec<String> = outcome
        .plan
        .as_ref()
        .map(|plan| {
            plan.required_scopes()
                .into_iter()
                .map(Scope::to_string)
                .collect()
        })
        .unwrap_or_default();
    let (decision, code) = match &outcome.decision {
        Ok(Some(_)) => ("allow", "token"),
        Ok(None) => ("allow", "anonymous"),
        Err(err) => ("deny", err.code()),
    };
    let mut headers = Map::new();
    for (name, value) in response.headers() {
        let shown = name.as_str().starts_with("x-tokenward-")
            || name == header::WWW_AUTHENTICATE
            || name == header::CACHE_CONTROL;
        if shown {
            headers.insert(
                name.as_str().to_owned(),
                json!(String::from_utf8_lossy(value.as_bytes())),
            );
        }
    }
    json!({
        "canonical_path": outcome.target.as_ref().map(|t| Cow::clone(&t.path)),
        "rule": rule,
        "required_scopes": required,
        "decision": decision,
        "code": code,
        "status": response.status().as_u16(),
        "headers": headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(texts: &[&str]) -> Vec<Scope> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    #[test]
    fn the_allowed_template_ends_with_the_values_set_in_place() {
        let names: Vec<&HeaderName> = ALLOWED_HEADERS.keys().collect();
        let first = names.len() - ALLOWED_NAMES.len();
        assert!(names[first..].iter().copied().eq(ALLOWED_NAMES.iter()));
        assert_eq!(ALLOWED_HEADERS.len(), names.len(), "one value per name");
    }

    #[test]
    fn scopes_are_sent_sorted() {
        assert_eq!(scopes_value(&[]), "");
        assert_eq!(scopes_value(&scopes(&["a", "b:read"])), "a b:read");
        // Narrowed to `:read`, `a` sorts after `a-b`.
        assert_eq!(
            scopes_value(&scopes(&["a:read", "a-b", "tokens"])),
            "a-b a:read tokens"
        );
    }

    #[test]
    fn the_original_path_follows_the_prefix() {
        assert_eq!(
            original_path("/api/v1/authz/w/ext-authz/contacts/1"),
            "/contacts/1"
        );
        assert_eq!(original_path("/api/v1/authz/w/ext-authz"), "/");
        assert_eq!(original_path("/api/v1/authz/w/ext-authz//admin"), "//admin");
    }
}
