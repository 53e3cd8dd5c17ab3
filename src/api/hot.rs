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
use warp::http::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue,
};
use warp::http::request::Parts;
use warp::http::{Method, Request, StatusCode};
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
            let sent = VerifyHeaders::read(request.headers());
            let readable = text(sent.authorization).is_ok()
                && text(sent.content_type).is_ok()
                && length(sent.content_length).is_ok();
            return (request.method() == Method::POST && readable).then_some(Hot(Which::Verify));
        }
        // A workspace id in its usual, hyphenated form: any other form of
        // it (percent-encoded, which warp decodes, or another spelling of a
        // UUID) is left to warp.
        let rest = path.strip_prefix(AUTHZ)?;
        let workspace = rest.get(..uuid::fmt::Hyphenated::LENGTH)?;
        let endpoint = rest
            .get(uuid::fmt::Hyphenated::LENGTH..)?
            .strip_prefix('/')?;
        let endpoint = match endpoint {
            "auth-request" => Endpoint::AuthRequest,
            "forward-auth" => Endpoint::ForwardAuth,
            "ext-authz" => Endpoint::ExtAuthz,
            _ if endpoint.starts_with("ext-authz/") => Endpoint::ExtAuthz,
            _ => return None,
        };
        let workspace = workspace.parse().ok()?;
        Some(Hot(Which::Proxy(endpoint, workspace)))
    }

    /// The answer, with everything the warp routes add to one.
    pub async fn answer(&self, hot: Hot, request: Request<Incoming>, peer: SocketAddr) -> Response {
        let started = SystemTime::now();
        let (parts, body) = request.into_parts();
        let (route, response) = match hot.0 {
            Which::Verify => (
                self.verify_route,
                with_security_headers(self.verify(&parts, body, peer).await),
            ),
            Which::Proxy(endpoint, workspace) => {
                let route = self.routes[match endpoint {
                    Endpoint::AuthRequest => 0,
                    Endpoint::ForwardAuth => 1,
                    Endpoint::ExtAuthz => 2,
                }];
                // A proxy's question has no body: the latency's start is
                // the decision's "now" too.
                let response = self
                    .proxy(endpoint, workspace, &parts, peer, Timestamp::at(started))
                    .await;
                // Here only an allowed answer is a 200, and it goes to the
                // proxy alone, without security headers (what
                // `with_security_headers` finds out from its headers).
                if response.status() == StatusCode::OK {
                    (route, response)
                } else {
                    (route, with_security_headers(response))
                }
            }
        };
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
        let sent = VerifyHeaders::read(headers);
        let length = length(sent.content_length).ok().flatten();
        let bytes = match body::read_incoming(length, body).await {
            Ok(bytes) => bytes,
            Err(err) => return reply::error(&err),
        };
        let content_type = text(sent.content_type).ok().flatten();
        let authorization = text(sent.authorization).ok().flatten();
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
        // Read only when trusted: looking a header up is not free.
        let forwarded = self
            .state
            .trust_proxy
            .then(|| headers.get(X_FORWARDED_FOR))
            .flatten()
            .and_then(|value| value.to_str().ok());
        auth::client_ip_of(&self.state, Some(peer), forwarded)
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The headers a verification reads, found in one pass over the request's
/// headers rather than by hashing each name. The first of repeated headers
/// counts, as with `HeaderMap::get`.
#[derive(Default)]
struct VerifyHeaders<'h> {
    authorization: Option<&'h HeaderValue>,
    content_type: Option<&'h HeaderValue>,
    content_length: Option<&'h HeaderValue>,
}

impl<'h> VerifyHeaders<'h> {
    fn read(headers: &'h HeaderMap) -> Self {
        let mut sent = VerifyHeaders::default();
        for (name, value) in headers {
            let slot = if name == AUTHORIZATION {
                &mut sent.authorization
            } else if name == CONTENT_TYPE {
                &mut sent.content_type
            } else if name == CONTENT_LENGTH {
                &mut sent.content_length
            } else {
                continue;
            };
            slot.get_or_insert(value);
        }
        sent
    }
}

/// A header as text, `Err` when it is there but not text (warp refuses it).
fn text(value: Option<&HeaderValue>) -> Result<Option<&str>, ()> {
    value
        .map(|value| value.to_str().map_err(|_| ()))
        .transpose()
}

/// `Content-Length`, `Err` when it is there but not a number.
fn length(value: Option<&HeaderValue>) -> Result<Option<u64>, ()> {
    text(value)?
        .map(|value| value.parse().map_err(|_| ()))
        .transpose()
}

fn unwrap(answer: Result<Response, Infallible>) -> Response {
    match answer {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
