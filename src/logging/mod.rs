//! Log output: each thread appends its finished lines to a buffer of its
//! own, and one thread writes every buffer to standard error every 50 ms
//! (sooner when one fills). One log line per request then costs a copy, not
//! a system call, a thread wake-up or a lock another core holds, on the
//! request path. Within one write, lines are grouped by the thread that
//! wrote them; their timestamps give the order across threads. Dropping
//! the guard writes what is left.
//!
//! Events from `tracing` arrive through [`BatchedStderr`]; the line each
//! request leaves comes through [`RequestLog`], formatted here directly:
//! going through `tracing` was 6% of the instructions of a verification.
//!
//! Lines are text (`line`) or, with `--log-format json`, one JSON object
//! each (`json`), with the same fields.

mod json;
mod line;

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tracing_subscriber::fmt::MakeWriter;

pub use json::JsonFormat;
pub use line::{LineFormat, REQUEST_TARGET};

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-03-25T14:00:00.007Z  INFO target: message name=value …`
    #[default]
    Text,
    /// One JSON object per line with the same fields.
    Json,
}

const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Wake the writer early beyond this many bytes pending in one buffer.
const FLUSH_AT: usize = 256 * 1024;
/// Beyond this in one buffer (standard error blocked), new lines are
/// dropped rather than letting memory grow or requests wait.
const DROP_AT: usize = 4 * 1024 * 1024;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One thread's lines not yet written. Aligned so that no other data
/// shares its cache lines: every line written takes its lock.
#[derive(Default)]
#[repr(align(128))]
struct Buffer {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    dropped: u64,
}

struct Shared {
    /// Tells this batch apart in the threads' lists of buffers.
    id: u64,
    /// Every thread's buffer; the writer drops those whose thread ended.
    buffers: Mutex<Vec<Arc<Buffer>>>,
    closed: AtomicBool,
    /// The writer waits on this between writes.
    idle: Mutex<()>,
    wake: Condvar,
}

impl Shared {
    fn new() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            buffers: Mutex::default(),
            closed: AtomicBool::new(false),
            idle: Mutex::default(),
            wake: Condvar::new(),
        }
    }

    fn append(self: &Arc<Self>, line: &[u8]) {
        thread_local! {
            // This thread's buffer in each batch it has written to: one, but
            // for tests that start several servers in one process.
            static MINE: RefCell<Vec<(u64, Arc<Buffer>)>> = const { RefCell::new(Vec::new()) };
        }
        MINE.with_borrow_mut(|mine| {
            let buffer = match mine.iter().find(|(id, _)| *id == self.id) {
                Some((_, buffer)) => buffer,
                None => {
                    let buffer = Arc::new(Buffer::default());
                    lock(&self.buffers).push(Arc::clone(&buffer));
                    mine.push((self.id, buffer));
                    &mine[mine.len() - 1].1
                }
            };
            let mut pending = lock(&buffer.pending);
            let before = pending.bytes.len();
            if before + line.len() > DROP_AT {
                pending.dropped += 1;
            } else {
                pending.bytes.extend_from_slice(line);
                // Once, as the buffer crosses the mark: waking the writer is
                // a system call, and lines keep arriving until it has run.
                if before < FLUSH_AT && pending.bytes.len() >= FLUSH_AT {
                    self.wake.notify_one();
                }
            }
        });
    }

    /// Writes every buffer's lines to `out`; forgets buffers whose thread
    /// has ended.
    fn write_all(&self, spare: &mut Vec<u8>, out: &mut impl Write) {
        // Copied out, so a thread's first line never waits on `out`.
        let buffers = lock(&self.buffers).clone();
        for buffer in &buffers {
            let dropped = {
                let mut pending = lock(&buffer.pending);
                std::mem::swap(&mut pending.bytes, spare);
                std::mem::take(&mut pending.dropped)
            };
            if dropped > 0 {
                let _ = writeln!(
                    out,
                    "tokenward: {dropped} log lines were dropped: standard error did not keep up"
                );
            }
            // Nowhere to report a failed write to standard error; carry on.
            let _ = out.write_all(spare);
            spare.clear();
        }
        let _ = out.flush();
        drop(buffers);
        // Held by this list alone: its thread is gone, its lines written.
        lock(&self.buffers).retain(|buffer| {
            Arc::strong_count(buffer) > 1 || !lock(&buffer.pending).bytes.is_empty()
        });
    }
}

/// The `MakeWriter` to give the fmt subscriber.
#[derive(Clone)]
pub struct BatchedStderr {
    shared: Arc<Shared>,
    format: LogFormat,
}

/// Stops the writer thread after a last write.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread; request lines will be in `format`.
pub fn batched_stderr(format: LogFormat) -> std::io::Result<(BatchedStderr, FlushGuard)> {
    let shared = Arc::new(Shared::new());
    let writer = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_until_closed(&writer))?;
    Ok((
        BatchedStderr {
            shared: Arc::clone(&shared),
            format,
        },
        FlushGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

fn write_until_closed(shared: &Shared) {
    let mut spare = Vec::new();
    loop {
        let closed = shared.closed.load(Ordering::Acquire);
        if !closed {
            let idle = lock(&shared.idle);
            // A wake-up that comes between the check and the wait is lost;
            // the next write is then at most one period away.
            drop(
                shared
                    .wake
                    .wait_timeout(idle, FLUSH_EVERY)
                    .map(|(guard, _)| guard)
                    .unwrap_or_else(|poisoned| poisoned.into_inner().0),
            );
        }
        shared.write_all(&mut spare, &mut std::io::stderr().lock());
        if closed {
            return;
        }
    }
}

/// One log line being written.
pub struct LineWriter<'a> {
    shared: &'a Arc<Shared>,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.shared.append(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl BatchedStderr {
    /// Request lines into the same batch.
    pub fn request_log(&self) -> RequestLog {
        RequestLog {
            shared: Arc::clone(&self.shared),
            format: self.format,
        }
    }
}

/// Writes the line each answered request leaves, in the format of every
/// other line, straight into the batch.
#[derive(Clone)]
pub struct RequestLog {
    shared: Arc<Shared>,
    format: LogFormat,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestLog")
    }
}

impl RequestLog {
    /// Whether `TOKENWARD_LOG` lets request lines through.
    pub fn enabled() -> bool {
        tracing::enabled!(target: REQUEST_TARGET, tracing::Level::INFO)
    }

    /// The line of a request answered `at`.
    pub fn record(&self, at: SystemTime, method: &str, path: &str, status: u16, latency_us: u64) {
        thread_local! {
            // Reused, so a line costs no allocation.
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            // Writing into a String cannot fail.
            let _ = match self.format {
                LogFormat::Text => line::request_line(line, at, method, path, status, latency_us),
                LogFormat::Json => json::request_line(line, at, method, path, status, latency_us),
            };
            self.shared.append(line.as_bytes());
        });
    }
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the two formats' tests share: a request line written directly and
/// the `tracing` event it stands for.
#[cfg(test)]
mod request_cases {
    use std::fmt;
    use std::time::SystemTime;

    /// Method, path, status and latency; an odd path and the extremes.
    pub const CASES: [(&str, &str, u16, u64); 3] = [
        ("POST", "/api/v1/tokens/verify", 200, 41),
        ("GET", "/odd path/\"x\"=y\\", 404, 0),
        ("DELETE", "", 204, u64::MAX),
    ];

    /// The event a request line stands for, through `tracing`.
    pub fn emit((method, path, status, latency): (&str, &str, u16, u64)) {
        tracing::info!(
            target: "tokenward::http",
            method = %method,
            path = path,
            status = status,
            latency_us = latency,
        );
    }

    type RequestLine = fn(&mut String, SystemTime, &str, &str, u16, u64) -> fmt::Result;

    /// The line `request_line` writes now.
    pub fn written(request_line: RequestLine, case: (&str, &str, u16, u64)) -> String {
        let (method, path, status, latency) = case;
        let mut line = String::new();
        request_line(&mut line, SystemTime::now(), method, path, status, latency).unwrap();
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(shared: &Shared) -> String {
        let mut out = Vec::new();
        shared.write_all(&mut Vec::new(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_threads_lines_are_written_each_in_its_order() {
        let shared = Arc::new(Shared::new());
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    for line in 0..500 {
                        shared.append(format!("{thread} {line}\n").as_bytes());
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let out = written(&shared);
        for thread in 0..4 {
            let lines: Vec<u32> = out
                .lines()
                .filter_map(|line| line.strip_prefix(&format!("{thread} ")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(lines, (0..500).collect::<Vec<_>>(), "thread {thread}");
        }
        // Their threads ended and their lines are out: the buffers go.
        assert!(lock(&shared.buffers).is_empty());
        assert_eq!(written(&shared), "");
    }

    #[test]
    fn a_living_threads_buffer_is_kept_and_written_again() {
        let shared = Arc::new(Shared::new());
        shared.append(b"one\n");
        assert_eq!(written(&shared), "one\n");
        shared.append(b"two\n");
        assert_eq!(written(&shared), "two\n");
        assert_eq!(lock(&shared.buffers).len(), 1);
    }

    #[test]
    fn a_full_buffer_drops_lines_and_says_how_many() {
        let shared = Arc::new(Shared::new());
        let line = vec![b'x'; DROP_AT / 2];
        for _ in 0..5 {
            shared.append(&line);
        }
        let out = written(&shared);
        assert!(
            out.starts_with("tokenward: 3 log lines were dropped"),
            "{}",
            &out[..80]
        );
        assert_eq!(out.len() - out.find('\n').unwrap() - 1, 2 * line.len());
    }
}
