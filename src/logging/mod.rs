//! Log output: request threads append finished lines to a buffer in memory,
//! and one thread writes the buffer to standard error every 50 ms (sooner
//! when it fills). One log line per request then costs a copy, not a system
//! call or a thread wake-up, on the request path. Dropping the guard writes
//! what is left.
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
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

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
/// Wake the writer early beyond this many pending bytes.
const FLUSH_AT: usize = 256 * 1024;
/// Beyond this (standard error blocked), new lines are dropped rather than
/// letting memory grow or requests wait.
const DROP_AT: usize = 16 * 1024 * 1024;

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    dropped: u64,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append(&self, line: &[u8]) {
        let mut pending = self.lock();
        let before = pending.bytes.len();
        if before + line.len() > DROP_AT {
            pending.dropped += 1;
        } else {
            pending.bytes.extend_from_slice(line);
            // Once, as the batch crosses the mark: waking the writer is a
            // system call, and lines keep arriving until it has taken them.
            if before < FLUSH_AT && pending.bytes.len() >= FLUSH_AT {
                self.wake.notify_one();
            }
        }
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
    let shared = Arc::new(Shared::default());
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
        let (closed, dropped) = {
            let mut pending = shared.lock();
            if !pending.closed && pending.bytes.len() < FLUSH_AT {
                pending = shared
                    .wake
                    .wait_timeout(pending, FLUSH_EVERY)
                    .map(|(guard, _)| guard)
                    .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            }
            std::mem::swap(&mut pending.bytes, &mut spare);
            (pending.closed, std::mem::take(&mut pending.dropped))
        };
        let mut stderr = std::io::stderr().lock();
        if dropped > 0 {
            let _ = writeln!(
                stderr,
                "tokenward: {dropped} log lines were dropped: standard error did not keep up"
            );
        }
        // Nowhere to report a failed write to standard error; carry on.
        let _ = stderr.write_all(&spare);
        let _ = stderr.flush();
        spare.clear();
        if closed {
            return;
        }
    }
}

/// One log line being written.
pub struct LineWriter<'a> {
    shared: &'a Shared,
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

    pub fn record(&self, method: &str, path: &str, status: u16, latency_us: u64) {
        thread_local! {
            // Reused, so a line costs no allocation.
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            // Writing into a String cannot fail.
            let _ = match self.format {
                LogFormat::Text => line::request_line(line, method, path, status, latency_us),
                LogFormat::Json => json::request_line(line, method, path, status, latency_us),
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
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
