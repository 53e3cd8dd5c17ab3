//! Prometheus metrics (§11), served on their own listener (`--metrics-addr`)
//! in the text exposition format 0.0.4.
//!
//! Counting happens on the request path, so every count is one relaxed
//! atomic add: no lock, no allocation. Counters that every request touches
//! sit on cache lines of their own, so cores counting different things do
//! not fight over one line; and they come in [`SHARDS`] copies, each thread
//! counting in its own, so cores counting the same thing (every
//! verification) do not either. A scrape adds the copies up. Routes are labelled by their template
//! (`/api/v1/tokens/{id}`), chosen from a fixed table, never by the raw
//! path: a label never holds an id, and the number of series stays small.
//! What the database knows (tokens by state, the file's size) is read when
//! Prometheus scrapes.
//!
//! The format is a few lines per family; writing it by hand costs less than
//! a client library and its dependencies.

use std::convert::Infallible;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::core::time::Timestamp;
use crate::state::AppState;

/// The codes `POST /tokens/verify` answers with (§4).
const CODES: [&str; 7] = [
    "VALID",
    "MALFORMED",
    "NOT_FOUND",
    "EXPIRED",
    "REVOKED",
    "DISABLED",
    "INSUFFICIENT_SCOPE",
];

/// Route templates, as §4 writes them. The first that matches a path wins,
/// so a literal segment comes before a placeholder in the same place;
/// `{…}` matches any one non-empty segment. Verification is first: it is
/// most requests. A new route belongs here too; until then it counts as
/// [`OTHER`].
const ROUTES: &[&str] = &[
    "/api/v1/tokens/verify",
    // Forward-auth answers every request a proxy sees: early in the table.
    "/api/v1/authz/{id}/auth-request",
    "/api/v1/authz/{id}/forward-auth",
    "/api/v1/authz/{id}/ext-authz/{path...}",
    "/api/v1/authz/{id}/explain",
    "/api/v1/routes",
    "/api/v1/tokens/self",
    "/api/v1/tokens",
    "/api/v1/tokens/{id}",
    "/api/v1/tokens/{id}/reset",
    "/api/v1/domains",
    "/api/v1/domains/{id}",
    "/api/v1/sessions",
    "/api/v1/sessions/current",
    "/api/v1/me",
    "/api/v1/accounts",
    "/api/v1/accounts/{id}",
    "/api/v1/workspaces",
    "/api/v1/workspaces/{id}",
    "/api/v1/workspaces/{id}/members",
    "/api/v1/workspaces/{id}/members/{account_id}",
    "/api/v1/workspaces/{id}/scopes",
    "/api/v1/workspaces/{id}/scopes/{name}",
    "/api/v1/settings",
    "/api/v1/instance",
    "/api/v1/audit",
    "/healthz",
    "/assets/{file}",
];
/// The web UI's pages: every other path outside `/api`.
const UI: &str = "/";
/// Any other `/api` path (all of them answer 404 or 405).
const OTHER: &str = "other";
const ROUTE_COUNT: usize = ROUTES.len() + 2;
/// Rows of request counters: one per route and method.
const ROWS: usize = ROUTE_COUNT * METHODS.len();

const METHODS: [&str; 8] = [
    "GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "other",
];

/// Upper bounds of the latency buckets, in microseconds: 100 µs to 10 s.
const BUCKETS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// A counter on a cache line of its own.
#[derive(Default)]
#[repr(align(64))]
struct Counter(AtomicU64);

impl Counter {
    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The requests of one route and method: latency buckets (each counting
/// only its own range; the scrape adds them up) and answers by status
/// class.
/// Copies of the per-request counters; a thread counts in one of them.
const SHARDS: usize = 4;

/// The copy the current thread counts in: threads take them in turn.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

#[derive(Default)]
#[repr(align(64))]
struct RouteStats {
    /// One per bound in [`BUCKETS_US`], then one for anything slower.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
    /// 1xx to 5xx.
    statuses: [AtomicU64; 5],
}

/// The requests of one route and method, added up over the shards.
#[derive(Default)]
struct RouteTotals {
    buckets: [u64; BUCKETS_US.len() + 1],
    sum_us: u64,
    statuses: [u64; 5],
}

/// Answers of verify by code, in one shard.
#[derive(Default)]
#[repr(align(64))]
struct Codes([AtomicU64; CODES.len()]);

pub struct Metrics {
    /// [`SHARDS`] copies.
    verifications: Box<[Codes]>,
    /// [`SHARDS`] copies of a row per route and method.
    requests: Box<[RouteStats]>,
    sweeper_runs: Counter,
    sweeper_failures: Counter,
    purged_tokens: Counter,
    purged_sessions: Counter,
    sign_in_failures: Counter,
    sign_in_lockouts: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            verifications: (0..SHARDS).map(|_| Codes::default()).collect(),
            requests: (0..SHARDS * ROWS).map(|_| RouteStats::default()).collect(),
            sweeper_runs: Counter::default(),
            sweeper_failures: Counter::default(),
            purged_tokens: Counter::default(),
            purged_sessions: Counter::default(),
            sign_in_failures: Counter::default(),
            sign_in_lockouts: Counter::default(),
        }
    }
}

/// The index of the template in [`ROUTES`] that `path` matches, else the
/// web UI or [`OTHER`].
pub fn route_index(path: &str) -> usize {
    let matches = |template: &str| {
        let mut given = path.split('/');
        let mut wanted = template.split('/');
        loop {
            match (given.next(), wanted.next()) {
                (None, None) => return true,
                // The rest of the path, whatever it is.
                (_, Some("{path...}")) => return true,
                (Some(segment), Some(pattern)) => {
                    let ok = if pattern.starts_with('{') {
                        !segment.is_empty()
                    } else {
                        segment == pattern
                    };
                    if !ok {
                        return false;
                    }
                }
                _ => return false,
            }
        }
    };
    if let Some(index) = ROUTES.iter().position(|template| matches(template)) {
        index
    } else if path == "/api" || path.starts_with("/api/") {
        ROUTES.len() + 1
    } else {
        ROUTES.len()
    }
}

fn route_name(index: usize) -> &'static str {
    match ROUTES.get(index) {
        Some(template) => template,
        None if index == ROUTES.len() => UI,
        None => OTHER,
    }
}

fn method_index(method: &str) -> usize {
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

impl Metrics {
    /// One answered request.
    pub fn request(&self, method: &str, path: &str, status: u16, latency_us: u64) {
        self.request_on(route_index(path), method, status, latency_us);
    }

    /// One answered request on a route whose index is known ([`route_index`]).
    pub fn request_on(&self, route: usize, method: &str, status: u16, latency_us: u64) {
        let route = route.min(ROUTE_COUNT - 1);
        let row = route * METHODS.len() + method_index(method);
        let stats = &self.requests[shard() * ROWS + row];
        let bucket = BUCKETS_US
            .iter()
            .position(|&bound| latency_us <= bound)
            .unwrap_or(BUCKETS_US.len());
        stats.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        stats.sum_us.fetch_add(latency_us, Ordering::Relaxed);
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        stats.statuses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// One answer of `POST /tokens/verify`, by its code.
    pub fn verified(&self, code: &str) {
        if let Some(index) = CODES.iter().position(|c| *c == code) {
            self.verifications[shard()].0[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The answers of verify with the code at `index` in [`CODES`].
    fn verifications(&self, index: usize) -> u64 {
        self.verifications
            .iter()
            .map(|shard| shard.0[index].load(Ordering::Relaxed))
            .sum()
    }

    /// Row `row`'s counters, added up over the shards.
    fn totals(&self, row: usize) -> RouteTotals {
        let mut totals = RouteTotals::default();
        for shard in self.requests.chunks(ROWS) {
            let stats = &shard[row];
            for (total, bucket) in totals.buckets.iter_mut().zip(&stats.buckets) {
                *total += bucket.load(Ordering::Relaxed);
            }
            totals.sum_us += stats.sum_us.load(Ordering::Relaxed);
            for (total, status) in totals.statuses.iter_mut().zip(&stats.statuses) {
                *total += status.load(Ordering::Relaxed);
            }
        }
        totals
    }

    /// A sweep (the purge), with what it removed or `None` when it failed.
    pub fn swept(&self, purged: Option<(u64, u64)>) {
        self.sweeper_runs.add(1);
        match purged {
            Some((tokens, sessions)) => {
                self.purged_tokens.add(tokens);
                self.purged_sessions.add(sessions);
            }
            None => self.sweeper_failures.add(1),
        }
    }

    /// A sign-in refused for a wrong email or password.
    pub fn sign_in_failed(&self) {
        self.sign_in_failures.add(1);
    }

    /// A sign-in refused with `429` without being checked.
    pub fn sign_in_locked_out(&self) {
        self.sign_in_lockouts.add(1);
    }
}

/// What the scrape reads besides the counters.
struct Readings {
    tokens: Option<[(&'static str, u64); 3]>,
    last_used_pending: usize,
    /// The database file and its WAL, in bytes.
    database: (u64, u64),
    /// 1 while the verify cache is bypassed (a node that cannot hear other
    /// nodes' writes).
    cache_bypassed: u64,
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

async fn read(state: &AppState, db: &Path) -> Readings {
    let tokens = match state.store.token_counts(Timestamp::now()).await {
        Ok(counts) => Some([
            ("active", counts.active),
            ("expired", counts.expired),
            ("revoked", counts.revoked),
        ]),
        Err(err) => {
            tracing::warn!(%err, "metrics: could not count tokens");
            None
        }
    };
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    Readings {
        tokens,
        last_used_pending: state.usage.pending(),
        database: (file_size(db), file_size(Path::new(&wal))),
        cache_bypassed: state
            .verify_cache
            .as_ref()
            .map_or(0, |cache| u64::from(cache.is_bypassed())),
    }
}

/// Writes one family: its `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn render(metrics: &Metrics, readings: &Readings) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let o = &mut out;

    family(
        o,
        "tokenward_build_info",
        "gauge",
        "Always 1; the version label says which tokenward is running.",
    );
    let _ = writeln!(
        o,
        "tokenward_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );

    family(
        o,
        "tokenward_verifications_total",
        "counter",
        "Answers of POST /api/v1/tokens/verify, by code.",
    );
    for (index, code) in CODES.iter().enumerate() {
        let _ = writeln!(
            o,
            "tokenward_verifications_total{{code=\"{code}\"}} {}",
            metrics.verifications(index)
        );
    }

    family(
        o,
        "tokenward_http_request_duration_seconds",
        "histogram",
        "Time from a request's arrival to its answer, by route template and method.",
    );
    let rows: Vec<RouteTotals> = (0..ROWS).map(|row| metrics.totals(row)).collect();
    for (index, stats) in rows.iter().enumerate() {
        if stats.statuses.iter().all(|&count| count == 0) {
            continue;
        }
        let labels = format!(
            "route=\"{}\",method=\"{}\"",
            route_name(index / METHODS.len()),
            METHODS[index % METHODS.len()]
        );
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS_US.iter().zip(&stats.buckets) {
            cumulative += bucket;
            let _ = writeln!(
                o,
                "tokenward_http_request_duration_seconds_bucket{{{labels},le=\"{}\"}} {cumulative}",
                seconds(*bound)
            );
        }
        cumulative += stats.buckets[BUCKETS_US.len()];
        let _ = writeln!(
            o,
            "tokenward_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            o,
            "tokenward_http_request_duration_seconds_sum{{{labels}}} {}",
            seconds(stats.sum_us)
        );
        let _ = writeln!(
            o,
            "tokenward_http_request_duration_seconds_count{{{labels}}} {cumulative}"
        );
    }

    family(
        o,
        "tokenward_http_requests_total",
        "counter",
        "Answered requests, by route template, method and status class.",
    );
    for (index, stats) in rows.iter().enumerate() {
        for (class, &count) in stats.statuses.iter().enumerate() {
            if count > 0 {
                let _ = writeln!(
                    o,
                    "tokenward_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}xx\"}} {count}",
                    route_name(index / METHODS.len()),
                    METHODS[index % METHODS.len()],
                    class + 1
                );
            }
        }
    }

    if let Some(tokens) = readings.tokens {
        family(
            o,
            "tokenward_tokens",
            "gauge",
            "API tokens not yet purged, by state.",
        );
        for (state, count) in tokens {
            let _ = writeln!(o, "tokenward_tokens{{state=\"{state}\"}} {count}");
        }
    }

    let counters = [
        (
            "tokenward_sweeper_runs_total",
            "Sweeps (purges of old tokens and dead sessions) started.",
            &metrics.sweeper_runs,
        ),
        (
            "tokenward_sweeper_failures_total",
            "Sweeps that failed (the log says why).",
            &metrics.sweeper_failures,
        ),
        (
            "tokenward_sweeper_purged_tokens_total",
            "Expired or revoked tokens deleted by the sweeper.",
            &metrics.purged_tokens,
        ),
        (
            "tokenward_sweeper_purged_sessions_total",
            "Expired or ended sessions deleted by the sweeper.",
            &metrics.purged_sessions,
        ),
        (
            "tokenward_sign_in_failures_total",
            "Sign-ins refused for a wrong email or password.",
            &metrics.sign_in_failures,
        ),
        (
            "tokenward_sign_in_lockouts_total",
            "Sign-ins refused with 429 because the account or address is locked out.",
            &metrics.sign_in_lockouts,
        ),
    ];
    for (name, help, counter) in counters {
        family(o, name, "counter", help);
        let _ = writeln!(o, "{name} {}", counter.get());
    }

    let gauges = [
        (
            "tokenward_last_used_pending",
            "Tokens whose last use waits in memory for the next flush.",
            readings.last_used_pending as u64,
        ),
        (
            "tokenward_database_size_bytes",
            "The database file and its write-ahead log, in bytes.",
            readings.database.0 + readings.database.1,
        ),
        (
            "tokenward_database_wal_size_bytes",
            "The write-ahead log alone, in bytes.",
            readings.database.1,
        ),
        (
            "tokenward_verify_cache_bypassed",
            "1 while this node cannot hear other nodes' writes and verifies from the database alone.",
            readings.cache_bypassed,
        ),
    ];
    for (name, help, value) in gauges {
        family(o, name, "gauge", help);
        let _ = writeln!(o, "{name} {value}");
    }
    out
}

/// Microseconds as seconds, without a float's rounding noise.
fn seconds(us: u64) -> String {
    let text = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The metrics listener's only route, `GET /metrics`; anything else is a
/// plain `404`.
pub fn routes(state: AppState, db: PathBuf) -> BoxedFilter<(Response,)> {
    warp::path!("metrics")
        .and(warp::get())
        .then(move || {
            let (state, db) = (state.clone(), db.clone());
            async move {
                let readings = read(&state, &db).await;
                let mut response = Response::new(render(&state.metrics, &readings).into());
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
        })
        .recover(|_: Rejection| async {
            let mut response = Response::new("not found; the metrics are at /metrics\n".into());
            *response.status_mut() = StatusCode::NOT_FOUND;
            Ok::<_, Infallible>(response)
        })
        .unify()
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_labelled_by_their_route_template() {
        let route = |path: &str| route_name(route_index(path));
        assert_eq!(route("/api/v1/tokens/verify"), "/api/v1/tokens/verify");
        assert_eq!(route("/api/v1/tokens/self"), "/api/v1/tokens/self");
        assert_eq!(
            route("/api/v1/tokens/5b1c8e9e-0f7e-4c1e-9a39-3d3b7b0f0a11"),
            "/api/v1/tokens/{id}"
        );
        assert_eq!(route("/api/v1/tokens/x/reset"), "/api/v1/tokens/{id}/reset");
        assert_eq!(
            route("/api/v1/workspaces/w/members/a"),
            "/api/v1/workspaces/{id}/members/{account_id}"
        );
        assert_eq!(route("/api/v1/tokens/"), OTHER);
        assert_eq!(
            route("/api/v1/authz/w/ext-authz/contacts/42"),
            "/api/v1/authz/{id}/ext-authz/{path...}"
        );
        assert_eq!(
            route("/api/v1/authz/w/auth-request"),
            "/api/v1/authz/{id}/auth-request"
        );
        assert_eq!(route("/api/v1/nothing/here"), OTHER);
        assert_eq!(route("/api"), OTHER);
        assert_eq!(route("/assets/app.js"), "/assets/{file}");
        assert_eq!(route("/tokens/new"), UI);
        assert_eq!(route("/"), UI);
    }

    #[test]
    fn a_scrape_adds_up_the_counts_of_every_thread() {
        let metrics = Metrics::default();
        std::thread::scope(|scope| {
            for _ in 0..SHARDS * 2 + 1 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        metrics.request("POST", "/api/v1/tokens/verify", 200, 50);
                        metrics.verified("VALID");
                    }
                });
            }
        });
        let threads = (SHARDS * 2 + 1) as u64;
        let stats = metrics.totals(method_index("POST"));
        assert_eq!(stats.buckets[0], 100 * threads);
        assert_eq!(stats.sum_us, 5_000 * threads);
        assert_eq!(stats.statuses[1], 100 * threads);
        assert_eq!(metrics.verifications(0), 100 * threads);
    }

    #[test]
    fn requests_fall_into_their_bucket_and_status_class() {
        let metrics = Metrics::default();
        metrics.request("POST", "/api/v1/tokens/verify", 200, 100);
        metrics.request("POST", "/api/v1/tokens/verify", 200, 101);
        metrics.request("POST", "/api/v1/tokens/verify", 429, 20_000_000);
        metrics.request("BREW", "/api/v1/tokens/verify", 405, 1);
        let stats = metrics.totals(method_index("POST"));
        let counts = stats.buckets;
        assert_eq!(counts[0], 1);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[BUCKETS_US.len()], 1);
        assert_eq!(stats.statuses[1], 2);
        assert_eq!(stats.statuses[3], 1);
        let text = render(
            &metrics,
            &Readings {
                tokens: None,
                last_used_pending: 0,
                database: (0, 0),
                cache_bypassed: 0,
            },
        );
        assert!(text.contains(
            "tokenward_http_request_duration_seconds_bucket{route=\"/api/v1/tokens/verify\",method=\"POST\",le=\"0.0001\"} 1\n"
        ));
        assert!(text.contains(
            "tokenward_http_request_duration_seconds_count{route=\"/api/v1/tokens/verify\",method=\"POST\"} 3\n"
        ));
        assert!(text.contains(
            "tokenward_http_request_duration_seconds_sum{route=\"/api/v1/tokens/verify\",method=\"POST\"} 20.000201\n"
        ));
        assert!(text.contains(
            "tokenward_http_requests_total{route=\"/api/v1/tokens/verify\",method=\"other\",status=\"4xx\"} 1\n"
        ));
    }

    #[test]
    fn seconds_are_written_exactly() {
        assert_eq!(seconds(100), "0.0001");
        assert_eq!(seconds(1_000_000), "1");
        assert_eq!(seconds(2_500_000), "2.5");
        assert_eq!(seconds(0), "0");
    }
}
