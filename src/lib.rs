//! tokenward: a self-hosted API token server.
//!
//! Module map:
//! - [`core`]: pure domain logic (token format, scope grammar, expiry
//!   policy, settings rules, validation), no IO.
//! - [`store`]: the storage door ([`store::Store`]), its SQLite and
//!   PostgreSQL implementations with numbered migrations, and the verify
//!   cache in front of either.
//! - [`auth`]: passwords (argon2id), session JWTs, presented API tokens,
//!   callers.
//! - [`api`]: the HTTP transport, warp filters per resource.
//! - [`serve`]: the accept loop and connections, with their timeouts and
//!   bounds.
//! - [`usage`]: last-used times, batched in memory.
//! - [`sweeper`]: the background task that flushes and purges.
//! - [`logging`]: log lines batched off the request path.
//! - [`metrics`]: Prometheus counters, served on their own listener.
//! - [`config`], [`admin`]: the command line.

pub mod admin;
pub mod api;
pub mod auth;
pub mod config;
pub mod core;
pub mod error;
mod idle;
pub mod logging;
pub mod metrics;
pub mod random;
pub mod serve;
pub mod state;
pub mod store;
pub mod sweeper;
pub mod usage;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::auth::jwt::SessionKey;
use crate::auth::password::Passwords;
use crate::state::{AppState, Options};
use crate::store::{Backend, CachedStore, Store};

/// How long open connections may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections the metrics listener serves at once: a scraper or two.
const METRICS_CONNECTIONS: usize = 16;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub db: PathBuf,
    pub sweep_interval: Duration,
    pub verify_fail_limit: usize,
    pub trust_proxy: bool,
    /// Verified tokens kept in memory (0: none).
    pub verify_cache: usize,
    /// Where request lines go; without one they go through `tracing`.
    pub request_log: Option<logging::RequestLog>,
    /// Time a client has for each request head, and for idling between
    /// requests on a kept-alive connection.
    pub header_timeout: Duration,
    /// Where to serve `GET /metrics`, if anywhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// One async worker more than there are cores, unless `TOKIO_WORKER_THREADS`
/// says otherwise. tokenward shares its machine with the services that call
/// it; with one worker per core, a worker descheduled for a caller leaves
/// its ready connections waiting and the other core idle. On two cores under
/// verification load, the extra worker raised throughput by about 17% and
/// halved the wake-ups per request (docs/benchmarks.md).
pub fn worker_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    workers_for(std::env::var("TOKIO_WORKER_THREADS").ok().as_deref(), cores)
}

fn workers_for(requested: Option<&str>, cores: usize) -> usize {
    requested
        .and_then(|n| n.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(cores + 1)
}

/// Listens on `addr` with `TCP_NODELAY`, which Linux passes on to every
/// accepted connection: an answer longer than one segment is sent whole at
/// once rather than its tail waiting for the client's delayed ACK.
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves on `listener` until `shutdown` resolves, then drains connections
/// and flushes last-used times. Binding is the caller's job, so tests can
/// listen on port 0.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let address = listener
        .local_addr()
        .context("while reading the listening address")?;
    // Before anything starts, so a bad address is reported at once.
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(listen(addr).with_context(|| {
            format!(
                "cannot listen on {addr} for metrics (set --metrics-addr or TOKENWARD_METRICS_ADDR)"
            )
        })?),
        None => None,
    };
    let db = config.db.clone();
    let verify_cache = config.verify_cache;
    let backend = tokio::task::spawn_blocking(move || Backend::open(&db))
        .await
        .context("while opening the database")??;
    let cached = CachedStore::new(backend.store(), verify_cache);
    let verify_grants = cached.grants();
    let store: Arc<dyn Store> = Arc::new(cached);
    let key = store
        .signing_key()
        .await
        .context("while loading the session signing key")?;
    let session_key = SessionKey::new(&key)?;

    let setup_code = if address.ip().is_loopback() || store.has_accounts().await? {
        None
    } else {
        let code = random::string_from(b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789", 16)?;
        let code = format!(
            "{}-{}-{}-{}",
            &code[..4],
            &code[4..8],
            &code[8..12],
            &code[12..]
        );
        tracing::warn!(
            "no account exists yet and this server is reachable from other machines: \
             the first sign-up must give the setup code {code}"
        );
        Some(code)
    };

    let state = AppState::new(
        store,
        session_key,
        Options {
            verify_fail_limit: config.verify_fail_limit,
            password_workers: Passwords::default_workers(),
            setup_code,
            trust_proxy: config.trust_proxy,
            request_log: config.request_log.clone(),
            attempts: Some(backend.attempts(state::LOGIN_FAILURE_LIMIT, state::LOGIN_WINDOW)),
            verify_cache: Some(Arc::clone(&verify_grants)),
        },
    );
    let follow_writes_elsewhere = backend.follow_writes_elsewhere(
        Arc::clone(&verify_grants),
        Arc::new(state.clone()) as Arc<dyn store::RulesWatch>,
    );
    let (stop_sweeper, sweeper_stopped) = watch::channel(false);
    let mut follower_stopped = sweeper_stopped.clone();
    let follower = tokio::spawn(async move {
        tokio::select! {
            () = follow_writes_elsewhere => {}
            _ = follower_stopped.changed() => {}
        }
    });
    let sweeper = tokio::spawn(sweeper::run(
        state.clone(),
        config.sweep_interval,
        sweeper_stopped,
    ));

    let file_limit = serve::raise_file_limit().unwrap_or_else(|err| {
        tracing::warn!("cannot read the open-file limit ({err}); assuming 1024");
        1024
    });
    let limits = serve::Limits {
        header_timeout: config.header_timeout,
        max_connections: serve::connection_bound(file_limit),
    };
    tracing::info!(
        "open-file limit {file_limit}: serving at most {} connections at once",
        limits.max_connections
    );

    tracing::info!(db = %store::shown_db(&config.db), "tokenward listening on http://{address}");
    println!("tokenward listening on http://{address}");

    let (stopping, stop_seen) = watch::channel(false);
    let metrics_server = match metrics_listener {
        Some(listener) => {
            let addr = listener
                .local_addr()
                .context("while reading the metrics address")?;
            tracing::info!("tokenward metrics on http://{addr}/metrics");
            println!("tokenward metrics on http://{addr}/metrics");
            let mut stop_seen = stop_seen;
            Some(tokio::spawn(serve::serve(
                listener,
                metrics::routes(state.clone(), config.db.clone()),
                None,
                serve::Limits {
                    header_timeout: config.header_timeout,
                    max_connections: METRICS_CONNECTIONS,
                },
                async move {
                    let _ = stop_seen.wait_for(|stop| *stop).await;
                },
            )))
        }
        None => None,
    };

    let (signalled, signal_seen) = oneshot::channel::<()>();
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing open requests");
        let _ = stopping.send(true);
        let _ = signalled.send(());
    };
    let server = serve::serve(
        listener,
        api::routes(state.clone()),
        Some(api::HotRoutes::new(state.clone())),
        limits,
        graceful,
    );
    tokio::select! {
        () = server => {}
        () = async {
            let _ = signal_seen.await;
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } => tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them"),
    }

    let _ = stop_sweeper.send(true);
    sweeper.await.context("while stopping the sweeper")?;
    let _ = follower.await;
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_more_than_the_cores_unless_told() {
        assert_eq!(workers_for(None, 2), 3);
        assert_eq!(workers_for(Some("2"), 2), 2);
        assert_eq!(workers_for(Some(" 8 "), 2), 8);
        // Nonsense falls back to the default rather than failing to start.
        assert_eq!(workers_for(Some("0"), 4), 5);
        assert_eq!(workers_for(Some("many"), 1), 2);
    }

    #[tokio::test]
    async fn accepted_connections_send_without_delay() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(accepted.nodelay().unwrap());
    }
}
