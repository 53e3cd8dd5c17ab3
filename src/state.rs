//! What every request handler shares.

use std::net::IpAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::auth::jwt::SessionKey;
use crate::auth::password::Passwords;
use crate::core::ratelimit::SlidingWindow;
use crate::logging::RequestLog;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::usage::UsageLog;

/// Sign-in failures allowed per account and per address in the window.
pub const LOGIN_FAILURE_LIMIT: usize = 10;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
pub const VERIFY_WINDOW: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: Arc<dyn Store>,
    pub passwords: Passwords,
    pub session_key: SessionKey,
    pub usage: UsageLog,
    pub login_failures: Mutex<LoginFailures>,
    pub verify_failures: VerifyFailures,
    /// Needed by the first sign-up when the server is reachable beyond
    /// loopback; taken once used.
    pub setup_code: Mutex<Option<String>>,
    /// Take the client address from `X-Forwarded-For` (set by a reverse
    /// proxy in front) rather than from the TCP peer.
    pub trust_proxy: bool,
    pub request_log: Option<RequestLog>,
    /// Counters for `--metrics-addr`; counting takes no lock.
    pub metrics: Metrics,
}

pub struct LoginFailures {
    pub by_email: SlidingWindow<String>,
    pub by_ip: SlidingWindow<IpAddr>,
}

pub struct Options {
    pub verify_fail_limit: usize,
    pub password_workers: usize,
    pub setup_code: Option<String>,
    pub trust_proxy: bool,
    pub request_log: Option<RequestLog>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, session_key: SessionKey, options: Options) -> Self {
        AppState(Arc::new(Shared {
            store,
            passwords: Passwords::new(options.password_workers),
            session_key,
            usage: UsageLog::default(),
            login_failures: Mutex::new(LoginFailures {
                by_email: SlidingWindow::new(LOGIN_FAILURE_LIMIT, LOGIN_WINDOW),
                by_ip: SlidingWindow::new(LOGIN_FAILURE_LIMIT, LOGIN_WINDOW),
            }),
            verify_failures: VerifyFailures::new(options.verify_fail_limit),
            setup_code: Mutex::new(options.setup_code),
            trust_proxy: options.trust_proxy,
            request_log: options.request_log,
            metrics: Metrics::default(),
        }))
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Failed verifications per client address. Every verification asks
/// whether its address is locked out; the lock is taken only while some
/// address has failed recently, so the usual answer touches no memory that
/// another core writes.
pub struct VerifyFailures {
    window: Mutex<SlidingWindow<IpAddr>>,
    any: AtomicBool,
}

impl VerifyFailures {
    fn new(limit: usize) -> Self {
        VerifyFailures {
            window: Mutex::new(SlidingWindow::new(limit, VERIFY_WINDOW)),
            any: AtomicBool::new(false),
        }
    }

    pub fn retry_after(&self, ip: &IpAddr, now: Instant) -> Option<Duration> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.window).retry_after(ip, now)
    }

    pub fn record_failure(&self, ip: IpAddr, now: Instant) {
        let mut window = lock(&self.window);
        window.record_failure(ip, now);
        self.any.store(window.tracked_keys() > 0, Ordering::Release);
    }

    /// Forgets addresses whose failures have all left the window.
    pub fn prune(&self, now: Instant) {
        let mut window = lock(&self.window);
        window.prune(now);
        self.any.store(window.tracked_keys() > 0, Ordering::Release);
    }
}

/// Locks a `std` mutex that guards plain in-memory counters: never held
/// across an `.await`, and still consistent if a holder panicked.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
