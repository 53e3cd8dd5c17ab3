//! The accept loop and the HTTP/1.1 connections, with the timers and bounds
//! warp's own server leaves out.
//!
//! warp 0.4's `serve` gives hyper no timer, so hyper's header timeout is
//! off and a connection that sends half a request, or nothing, is held
//! forever; and it accepts until the process runs out of files, after which
//! every other connection (health checks, verification) waits. Here the
//! routes become a hyper service (`warp::service`) and each connection is
//! served by hyper's HTTP/1.1 connection, with:
//!
//! - **Header timeout.** A connection must complete each request's head
//!   within it, and is closed once idle that long between requests: it is
//!   the idle timeout as well. Each connection keeps it itself
//!   ([`crate::idle`]) rather than through hyper's timer, which costs two
//!   operations on the runtime's shared timer wheel per request.
//! - **A bound on open connections** below the open-file limit
//!   ([`connection_bound`]). At the bound the loop stops accepting, and new
//!   connections wait in the listen backlog until one closes.
//! - **Accept errors back off** (5 ms doubling to 1 s) with one line logged
//!   per burst, rather than a line per retry.
//! - **Shutdown** stops accepting, lets requests in flight finish, and
//!   closes at once connections with none: idle ones, and ones that have not
//!   finished sending their first request head (hyper alone would wait for
//!   those until their header timeout).
//!
//! Only HTTP/1.1 is spoken: clients reach tokenward directly on loopback or
//! through a reverse proxy, both HTTP/1.1, and one protocol means one set of
//! timeouts to get right.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::api::HotRoutes;
use crate::idle::{self, Activity, WhenWoken};

/// How connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time allowed for a request head, and for idling between requests.
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Files kept free for everything that is not a client connection: the
/// standard streams, the listener, the runtime's poller and wakers, the
/// database, its WAL and shared memory for each of the pool's connections,
/// SQLite's temporary files. About 30 are in use; the rest is headroom.
const RESERVED_FILES: u64 = 128;

/// Connections to serve at once under an open-file limit of `file_limit`:
/// all but [`RESERVED_FILES`], and at least half the limit when it is tiny.
pub fn connection_bound(file_limit: u64) -> usize {
    let bound = file_limit
        .saturating_sub(RESERVED_FILES)
        .max(file_limit / 2)
        .max(1);
    // No more than the semaphore in `serve` can count.
    let most = Semaphore::MAX_PERMITS.min(u32::MAX as usize);
    usize::try_from(bound).map_or(most, |bound| bound.min(most))
}

/// Raises the soft limit on open files to the hard limit, as Go's runtime
/// does at start: the soft limit (1 024 under systemd unless the unit says
/// otherwise) exists for programs that use `select`, which tokenward does
/// not. Returns the soft limit now in force.
#[cfg(unix)]
// `rlim_t` is u64 on 64-bit systems only.
#[allow(clippy::useless_conversion)]
pub fn raise_file_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given a valid pointer to.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above, with a valid struct to read.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Ok(u64::from(raised.rlim_cur));
        }
        // Some systems refuse an unlimited soft limit; the old one stands.
    }
    Ok(u64::from(limit.rlim_cur))
}

#[cfg(not(unix))]
pub fn raise_file_limit() -> std::io::Result<u64> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "no open-file limit on this system",
    ))
}

/// The TCP peer of a request's connection, as the accept loop saw it.
#[derive(Debug, Clone, Copy)]
struct PeerAddr(SocketAddr);

/// The address of the connection's peer. It stands in for
/// `warp::addr::remote()`, which reads an extension only warp's own server
/// can set.
pub fn peer_addr() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<PeerAddr>().map(|peer: Option<PeerAddr>| peer.map(|PeerAddr(addr)| addr))
}

/// Serves `routes` on `listener` until `shutdown` resolves, then waits for
/// every connection to end (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    hot: Option<HotRoutes>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let routes = TowerToHyperService::new(warp::service(routes));
    // What the semaphore can count, and what acquire_many can wait for.
    let most = Semaphore::MAX_PERMITS.min(u32::MAX as usize);
    let max_connections = limits.max_connections.clamp(1, most);
    let slots = Arc::new(Semaphore::new(max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut backoff = Backoff::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A free slot first: at the bound, connections queue in the kernel's
        // backlog rather than here, each holding a file.
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => {
                slot.expect("the connection semaphore is never closed")
            }
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let failures = backoff.succeeded();
                if failures > 0 {
                    tracing::debug!(failures, "accepting connections again");
                }
                tokio::spawn(connection(
                    stream,
                    peer,
                    routes.clone(),
                    hot.clone(),
                    limits.header_timeout,
                    stopping.clone(),
                    slot,
                ));
            }
            Err(err) if went_away(&err) => {
                tracing::debug!(error = %err, "a connection went away before it was accepted");
            }
            Err(err) => {
                let pause = backoff.failed();
                if backoff.failures == 1 {
                    tracing::warn!(
                        error = %err,
                        "cannot accept connections; retrying with pauses growing to {:?} \
                         (out of files? raise the open-file limit, LimitNOFILE= in a systemd unit)",
                        Backoff::LONGEST
                    );
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    // Each connection holds its slot until it ends.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

/// Serves one connection until it ends or, at shutdown, until its request
/// in flight is answered.
async fn connection<S>(
    stream: TcpStream,
    peer: SocketAddr,
    routes: S,
    hot: Option<HotRoutes>,
    header_timeout: Duration,
    mut stopping: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) where
    S: Service<hyper::Request<Incoming>, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    let activity = Arc::new(Activity::default());
    // Shared by this connection's requests: cloning the routes themselves
    // per request counted a reference on the server's state, a line every
    // core answering writes; this count is the connection's own.
    let hot = hot.map(Arc::new);
    let service = {
        let activity = Arc::clone(&activity);
        service_fn(move |mut request: hyper::Request<Incoming>| {
            activity.request();
            let activity = Arc::clone(&activity);
            if let Some((hot, which)) = hot
                .as_ref()
                .and_then(|hot| Some((Arc::clone(hot), hot.pick(&request)?)))
            {
                return Either::Left(async move {
                    let response = hot.answer(which, request, peer).await;
                    activity.answered();
                    Ok::<_, Infallible>(response)
                });
            }
            request.extensions_mut().insert(PeerAddr(peer));
            // Boxed: warp's future is over 4 KiB, and hyper moves the
            // future it is given, so every hot answer would copy that size.
            let answer = Box::pin(routes.call(request));
            Either::Right(async move {
                let response = answer.await;
                activity.answered();
                response
            })
        })
    };
    // The header timeout is kept by `idle`, not by hyper's timer.
    let mut http = http1::Builder::new();
    http.header_read_timeout(None);
    let mut served = std::pin::pin!(http.serve_connection(TokioIo::new(stream), service));
    // A closed channel means the server is gone: stop as well.
    let stop = WhenWoken::new(async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    });
    let mut quiet = std::pin::pin!(WhenWoken::new(idle::quiet_for(
        Arc::clone(&activity),
        header_timeout
    )));
    const QUIET: &str = "closing a connection quiet for the header timeout";
    let ended = tokio::select! {
        biased;
        ended = served.as_mut() => ended,
        () = quiet.as_mut() => {
            tracing::debug!(%peer, "{QUIET}");
            return;
        }
        () = stop => {
            // Until a request head came in whole, hyper counts the
            // connection as busy and would keep it open.
            if !activity.any_request() {
                tracing::debug!(%peer, "shutdown: closing a connection that sent no request");
                return;
            }
            // Answers the request in flight, if any, then closes; an idle
            // connection closes at once. A client that stops reading that
            // answer does not hold up the shutdown past the timeout.
            served.as_mut().graceful_shutdown();
            tokio::select! {
                biased;
                ended = served.as_mut() => ended,
                () = quiet.as_mut() => {
                    tracing::debug!(%peer, "shutdown: {QUIET}");
                    return;
                }
            }
        }
    };
    if let Err(err) = ended {
        // A client that resets, sends garbage or stalls past the header
        // timeout is its own business; only a failure on our side is news.
        if err.is_user() {
            tracing::warn!(%peer, error = ?err, "connection failed");
        } else {
            tracing::debug!(%peer, error = ?err, "connection closed on a client error");
        }
    }
}

/// Errors about one connection that went away before it was accepted; the
/// next one can be accepted at once.
fn went_away(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    )
}

/// The pause after a failed `accept` (out of files, of buffers…): short at
/// first, doubling while the failures go on, so a full file table is
/// neither spun on nor waited out longer than needed.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const LONGEST: Duration = Duration::from_secs(1);

    /// Counts a failure; returns the pause before the next attempt.
    fn failed(&mut self) -> Duration {
        let doublings = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        Self::FIRST
            .saturating_mul(1 << doublings)
            .min(Self::LONGEST)
    }

    /// Counts a success; returns how many failures it ended.
    fn succeeded(&mut self) -> u32 {
        std::mem::take(&mut self.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_leaves_room_for_the_database_and_the_runtime() {
        assert_eq!(connection_bound(1024), 896);
        assert_eq!(connection_bound(65_536), 65_408);
        // A tiny limit still serves, with half of it.
        assert_eq!(connection_bound(200), 100);
        assert_eq!(connection_bound(1), 1);
        assert_eq!(connection_bound(0), 1);
        // Unlimited is bounded by what the semaphore can count.
        assert!(connection_bound(u64::MAX) >= 1 << 28);
    }

    #[test]
    fn accept_pauses_double_from_5_ms_to_1_s_and_reset_on_success() {
        let mut backoff = Backoff::default();
        let pauses: Vec<u64> = (0..10)
            .map(|_| backoff.failed().as_millis() as u64)
            .collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        for _ in 0..100 {
            assert_eq!(backoff.failed(), Backoff::LONGEST);
        }
        assert_eq!(backoff.succeeded(), 110);
        assert_eq!(backoff.failed(), Backoff::FIRST);
    }

    #[cfg(unix)]
    #[allow(clippy::useless_conversion)]
    #[test]
    fn the_soft_file_limit_is_raised_to_the_hard_one() {
        let soft = raise_file_limit().unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills a valid struct.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!(soft, u64::from(limit.rlim_cur));
        assert_eq!(limit.rlim_cur, limit.rlim_max);
    }
}
