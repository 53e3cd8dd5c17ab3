//! The hot routes, served straight from hyper's request: `POST
//! /tokens/verify` and the proxies' forward-auth questions, which every
//! request behind a proxy asks. Trying warp's filters one by one, boxing
//! their futures and keeping the request in a task-local cost more than the
//! answer itself; here the path is matched once and the same handlers run.
//!
//! Only the usual shape of each request is taken: the exact path and
//! method, and headers that warp would read without complaint. Anything
//! else (a trailing slash, a header that is not text) goes to the warp
//! routes, which answer it as they always have. The answer gets the same
//! security headers, log line and counters; tests send both shapes and
//! compare the answers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::SystemTime;

use hyper::body::Incoming;
use warp::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName};
use warp::http::request::Parts;
use warp::http::{Method, Request};
use warp::reply::Response;

use super::authz::{self, Endpoint, Forwarded, Suffix};
use super::tokens::Asked;
use super::{auth, body, record, recover, reply, tokens, with_security_headers};
use crate::core::ids::Id;
use crate::core::model::Workspace;
use crate::core::time::Timestamp;
use crate::metrics;
use crate::state::AppState;

const VERIFY: &str = "/api/v1/tokens/verify";
const AUTHZ: &str = "/api/v1/authz/";

/// A request the hot routes answer.
pub struct Hot(Which);

enum Which {
    Verify,
    Proxy(Endpoint, Id<Workspace>),
}

#[derive(Clone)]
pub struct HotRoutes {
    state: AppState,
    /// Each route's row in the metrics, found once.
    verify_route: usize,
    routes: [usize; 3],
}

impl HotRoutes {
    pub fn new(state: AppState) -> Self {
        let route = |endpoint: &str| metrics::route_index(&format!("{AUTHZ}id/{endpoint}"));
        HotRoutes {
            state,
            verify_route: metrics::route_index(VERIFY),
            routes: [
                route("auth-request"),
                route("forward-auth"),
                route("ext-authz"),
            ],
        }
    }

    /// Which hot route answers `request`, if one does.
    pub fn pick<B>(&self, request: &Request<B>) -> Option<Hot> {
        let path = request.uri().path();
        if path == VERIFY {
            let headers = request.headers();
            let readable = [AUTHORIZATION, CONTENT_TYPE]
                .iter()
                .all(|name| text(headers, name).is_ok())
                && length(headers).is_ok();
            return (request.method() == Method::POST && readable).then_some(Hot(Which::Verify));
        }
        let (workspace, endpoint) = path.strip_prefix(AUTHZ)?.split_once('/')?;
        let endpoint = match endpoint {
            "auth-request" => Endpoint::AuthRequest,
            "forward-auth" => Endpoint::ForwardAuth,
            "ext-authz" => Endpoint::ExtAuthz,
            _ if endpoint.starts_with("ext-authz/") => Endpoint::ExtAuthz,
            _ => return None,
        };
        // warp decodes a percent-encoded id; such a rare request is left to it.
        let workspace = workspace
            .parse()
            .ok()
            .filter(|_| !workspace.contains('%'))?;
        Some(Hot(Which::Proxy(endpoint, workspace)))
    }

    /// The answer, with everything the warp routes add to one.
    pub async fn answer(&self, hot: Hot, request: Request<Incoming>, peer: SocketAddr) -> Response {
        let started = SystemTime::now();
        let (parts, body) = request.into_parts();
        let (route, response) = match hot.0 {
            Which::Verify => (self.verify_route, self.verify(&parts, body, peer).await),
            Which::Proxy(endpoint, workspace) => (
                self.routes[match endpoint {
                    Endpoint::AuthRequest => 0,
                    Endpoint::ForwardAuth => 1,
                    Endpoint::ExtAuthz => 2,
                }],
                // A proxy's question has no body: the latency's start is
                // the decision's "now" too.
                self.proxy(endpoint, workspace, &parts, peer, Timestamp::at(started))
                    .await,
            ),
        };
        let response = with_security_headers(response);
        // The answer's time gives both the latency and the line's stamp:
        // with `started`, two or three clock reads where there were four or
        // five. A step of the wall clock during a request misstates that
        // one request's latency, as nginx's `$request_time` would.
        let answered = SystemTime::now();
        record(
            &self.state,
            route,
            parts.method.as_str(),
            parts.uri.path(),
            response.status(),
            answered.duration_since(started).unwrap_or_default(),
            answered,
        );
        response
    }

    async fn verify(&self, parts: &Parts, body: Incoming, peer: SocketAddr) -> Response {
        let headers = &parts.headers;
        let ip = self.client_ip(headers, peer);
        let bytes = match body::read_incoming(length(headers).ok().flatten(), body).await {
            Ok(bytes) => bytes,
            Err(err) => return reply::error(&err),
        };
        let content_type = text(headers, &CONTENT_TYPE).ok().flatten();
        let authorization = text(headers, &AUTHORIZATION).ok().flatten();
        // Without a verifier token the body must name a workspace.
        let body = match authorization.and(body::just_a_token(content_type, &bytes)) {
            Some(token) => Asked::JustAToken(token),
            None => match body::from_bytes(content_type, &bytes, true) {
                Ok(fields) => Asked::Fields(fields),
                Err(err) => return reply::error(&err),
            },
        };
        // Read once the body is in: a client that trickles it in must not
        // have its token judged at an earlier time. The verifier token and
        // the presented one are judged at the same instant.
        let now = Timestamp::now();
        match tokens::handle_verify(ip, authorization, body, &self.state, now).await {
            Ok(response) => response,
            Err(rejection) => unwrap(recover(rejection).await),
        }
    }

    async fn proxy(
        &self,
        endpoint: Endpoint,
        workspace: Id<Workspace>,
        parts: &Parts,
        peer: SocketAddr,
        now: Timestamp,
    ) -> Response {
        let ip = self.client_ip(&parts.headers, peer);
        let suffix = (endpoint == Endpoint::ExtAuthz).then(|| Suffix {
            full: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
        });
        authz::answer(
            endpoint,
            workspace,
            Forwarded {
                method: &parts.method,
                headers: &parts.headers,
                suffix,
            },
            ip,
            &self.state,
            now,
        )
        .await
    }

    fn client_ip(&self, headers: &HeaderMap, peer: SocketAddr) -> Option<std::net::IpAddr> {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok());
        auth::client_ip_of(&self.state, Some(peer), forwarded)
    }
}

/// A header as text, `Err` when it is there but not text (warp refuses it).
fn text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, ()> {
    headers
        .get(name)
        .map(|value| value.to_str().map_err(|_| ()))
        .transpose()
}

/// `Content-Length`, `Err` when it is there but not a number.
fn length(headers: &HeaderMap) -> Result<Option<u64>, ()> {
    text(headers, &CONTENT_LENGTH)?
        .map(|value| value.parse().map_err(|_| ()))
        .transpose()
}

fn unwrap(answer: Result<Response, Infallible>) -> Response {
    match answer {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
