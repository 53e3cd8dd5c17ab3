//! Connection floods (issue 14): connections that send half a request, or
//! nothing, are closed after the header timeout; idle sockets beyond the
//! soft open-file limit leave the server answering; a shutdown is not held
//! up by connections that have no request in flight; aborted and malformed
//! connections are not logged as errors.
//!
//! These start the real binary themselves (rather than through
//! `common::Server`) because some need a lower open-file limit for it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{BIN, TempDir};

/// Generous: every bound below is several times what the server needs.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// A server process with its own database and log; killed when dropped.
struct Running {
    child: Option<Child>,
    addr: SocketAddr,
    dir: TempDir,
}

/// How to start one.
#[derive(Default)]
struct Launch<'a> {
    args: &'a [&'a str],
    env: &'a [(&'a str, &'a str)],
    /// `RLIMIT_NOFILE` (soft, hard) for the server process.
    nofile: Option<(libc::rlim_t, libc::rlim_t)>,
}

impl Launch<'_> {
    fn start(self) -> Running {
        let dir = TempDir::new();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("tokenward.db"))
            .args(self.args)
            .env("TOKENWARD_LOG", "info,tokenward=debug")
            .envs(self.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some((soft, hard)) = self.nofile {
            // SAFETY: between fork and exec only setrlimit runs, which is
            // async-signal-safe, on a value built before the fork.
            unsafe {
                command.pre_exec(move || set_file_limit(soft, hard));
            }
        }
        let mut child = command.spawn().expect("the tokenward binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            panic!("server did not print its address; log:\n{log}");
        };
        let addr = line
            .rsplit("http://")
            .next()
            .and_then(|addr| addr.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Running {
            child: Some(child),
            addr,
            dir,
        }
    }
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).expect("connect to the server")
    }

    /// Sends SIGTERM.
    fn signal_term(&self) {
        let child = self.child.as_ref().expect("server is running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The exit status, or `None` if the process still runs after `within`.
    fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("server is running");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Waits until the log holds `needle`: log lines are written in
    /// batches, a few milliseconds after the event.
    fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + CLOSE_WITHIN;
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn set_file_limit(soft: libc::rlim_t, hard: libc::rlim_t) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: a plain system call on a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn file_limit() -> (libc::rlim_t, libc::rlim_t) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a plain system call filling a valid struct.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    (limit.rlim_cur, limit.rlim_max)
}

/// Lets this test process hold `files` open sockets at once.
fn allow_own_files(files: libc::rlim_t) -> libc::rlim_t {
    let (soft, hard) = file_limit();
    if soft < files {
        assert!(
            hard >= files,
            "this test needs {files} open files but the hard limit is {hard}"
        );
        set_file_limit(hard, hard).unwrap();
    }
    hard
}

/// Whether the server closes `stream` (end of file or a reset) before
/// `deadline`; whatever it answers first is read and dropped.
fn closed_by(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// `GET /healthz` on a new connection; the time the answer took, or `None`
/// if it did not come within `within`.
fn healthz(addr: SocketAddr, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, within).ok()?;
    stream.set_read_timeout(Some(within)).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: tokenward\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    (answer.starts_with("HTTP/1.1 200") && answer.contains("\"ok\""))
        .then(|| started.elapsed())
        .filter(|took| *took < within)
}

/// Reads one whole response (with a `content-length`) and leaves the
/// connection open.
fn read_response(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(CLOSE_WITHIN)).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).expect("a response");
        assert!(n > 0, "closed before a whole response");
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some(split) = text.find("\r\n\r\n") {
            let length: usize = text[..split]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("a content-length");
            if raw.len() >= split + 4 + length {
                return text;
            }
        }
    }
}

/// Makes the next close send a reset instead of a FIN.
fn reset_on_close(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a plain system call on an open socket and a valid struct.
    let done = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(done, 0);
}

/// The log's lines at WARN or ERROR.
fn complaints(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .collect()
}

/// Sends `GET path` again and again without reading an answer, until every
/// buffer between client and server is full: the server is left writing
/// answers nobody reads. Returns how many requests went out.
fn send_ahead_until_full(stream: &mut TcpStream, path: &str) -> usize {
    stream.set_nonblocking(true).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: tokenward\r\n\r\n");
    let request = request.as_bytes();
    let mut sent = 0usize;
    let mut pending: &[u8] = request;
    let filling = Instant::now();
    let mut blocked_since = None;
    loop {
        match stream.write(pending) {
            Ok(n) => {
                blocked_since = None;
                pending = &pending[n..];
                if pending.is_empty() {
                    sent += 1;
                    pending = request;
                }
            }
            // Full for good only once the server has stopped reading.
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                match blocked_since {
                    Some(since) if Instant::now() - since > Duration::from_millis(200) => break,
                    Some(_) => {}
                    None => blocked_since = Some(Instant::now()),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => panic!("sending: {err}"),
        }
        assert!(filling.elapsed() < CLOSE_WITHIN, "the buffers never filled");
    }
    sent
}

/// What the server logs as it closes a connection quiet for its header
/// timeout.
const QUIET: &str = "closing a connection quiet for the header timeout";

/// Requests cut short in three places, none ending its header block.
const HALF_SENT: [&[u8]; 3] = [
    b"GET /hea",
    b"GET /healthz HTTP/1.1\r\nHost: tokenw",
    b"POST /api/v1/tokens/verify HTTP/1.1\r\nHost: tokenward\r\nContent-Length: 2\r\n",
];

#[test]
fn half_sent_requests_and_silent_connections_are_closed_after_the_header_timeout() {
    let server = Launch {
        args: &["--header-timeout", "1"],
        ..Launch::default()
    }
    .start();
    let opened = Instant::now();
    let mut sockets: Vec<TcpStream> = (0..50)
        .map(|i| {
            let mut stream = server.connect();
            stream.write_all(HALF_SENT[i % HALF_SENT.len()]).unwrap();
            stream
        })
        .collect();
    sockets.extend((0..10).map(|_| server.connect()));

    let deadline = opened + CLOSE_WITHIN;
    let open: Vec<usize> = sockets
        .iter_mut()
        .enumerate()
        .filter_map(|(i, stream)| (!closed_by(stream, deadline)).then_some(i))
        .collect();
    assert!(
        open.is_empty(),
        "{} of {} connections still open after {CLOSE_WITHIN:?}: {open:?}",
        open.len(),
        sockets.len()
    );
    eprintln!("all 60 closed {:?} after opening", opened.elapsed());
    assert!(healthz(server.addr, CLOSE_WITHIN).is_some());
}

#[test]
fn idle_keep_alive_connections_are_closed_after_the_header_timeout() {
    let server = Launch {
        env: &[("TOKENWARD_HEADER_TIMEOUT", "1")],
        ..Launch::default()
    }
    .start();
    let mut stream = server.connect();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: tokenward\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut stream).starts_with("HTTP/1.1 200"));
    // A second request on the same connection is served too: keep-alive
    // still works, it is only bounded.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: tokenward\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut stream).starts_with("HTTP/1.1 200"));
    let idle_since = Instant::now();
    assert!(
        closed_by(&mut stream, idle_since + CLOSE_WITHIN),
        "an idle keep-alive connection is still open after {CLOSE_WITHIN:?}"
    );
    eprintln!(
        "idle keep-alive connection closed after {:?}",
        idle_since.elapsed()
    );
}

#[test]
fn a_client_that_stops_reading_its_answers_is_closed_after_the_header_timeout() {
    let server = Launch {
        args: &["--header-timeout", "1"],
        ..Launch::default()
    }
    .start();
    let mut stream = server.connect();
    let sent = send_ahead_until_full(&mut stream, "/healthz");
    eprintln!("{sent} requests sent ahead before the buffers filled");
    let log = server.wait_for_log(QUIET);
    assert!(
        log.contains(QUIET),
        "a connection whose answers go unread is still open after {CLOSE_WITHIN:?}"
    );
    drop(stream);
}

#[test]
fn idle_sockets_beyond_the_soft_file_limit_leave_healthz_answering() {
    const IDLE: usize = 1500;
    let hard = allow_own_files(IDLE as libc::rlim_t + 200);
    // systemd's default soft limit; the hard one is left as it is.
    let server = Launch {
        nofile: Some((1024, hard)),
        ..Launch::default()
    }
    .start();
    let idle: Vec<TcpStream> = (0..IDLE).map(|_| server.connect()).collect();
    let took = healthz(server.addr, CLOSE_WITHIN);
    assert!(
        took.is_some(),
        "/healthz did not answer within {CLOSE_WITHIN:?} with {IDLE} idle sockets open"
    );
    eprintln!(
        "/healthz answered in {:?} with {} idle sockets open (server limit 1024:{hard})",
        took.unwrap(),
        idle.len()
    );
    let log = server.wait_for_log("path=/healthz");
    assert!(complaints(&log).is_empty(), "{log}");
}

#[test]
fn at_the_connection_bound_new_connections_wait_instead_of_failing() {
    const IDLE: usize = 1500;
    allow_own_files(IDLE as libc::rlim_t + 200);
    // Soft and hard limit both 1 024: the server cannot raise its limit, so
    // it accepts fewer connections than that and leaves the rest queued
    // until the header timeout frees room.
    let server = Launch {
        env: &[("TOKENWARD_HEADER_TIMEOUT", "1")],
        nofile: Some((1024, 1024)),
        ..Launch::default()
    }
    .start();
    let idle: Vec<TcpStream> = (0..IDLE).map(|_| server.connect()).collect();
    let took = healthz(server.addr, CLOSE_WITHIN);
    assert!(
        took.is_some(),
        "/healthz did not answer within {CLOSE_WITHIN:?} with {IDLE} idle sockets open"
    );
    eprintln!(
        "/healthz answered in {:?} with {} idle sockets open (server limit 1024:1024)",
        took.unwrap(),
        idle.len()
    );
    // Never out of files: no accept error was logged.
    let log = server.wait_for_log("path=/healthz");
    assert!(complaints(&log).is_empty(), "{log}");
}

#[test]
fn shutdown_is_not_held_up_by_a_client_that_stops_reading() {
    // Long enough that the connection is still open at the signal, short
    // enough to end well before the server's own 10 s limit on draining.
    let mut server = Launch {
        args: &["--header-timeout", "2"],
        ..Launch::default()
    }
    .start();
    let mut stream = server.connect();
    // Large answers, so that the server is cut off in the middle of one:
    // hyper's graceful shutdown waits for an answer under way.
    send_ahead_until_full(&mut stream, "/api/v1/openapi.json");
    server.signal_term();
    let signalled = Instant::now();
    let status = server.wait_exit(CLOSE_WITHIN).unwrap_or_else(|| {
        panic!(
            "still running {:?} after SIGTERM, held by a client that reads nothing; log:\n{}",
            signalled.elapsed(),
            server.log()
        )
    });
    eprintln!("stopped {:?} after SIGTERM", signalled.elapsed());
    assert!(status.success(), "{status}; log:\n{}", server.log());
    assert!(server.log().contains(&format!("shutdown: {QUIET}")));
    drop(stream);
}

#[test]
fn shutdown_is_not_held_up_by_connections_without_a_request_in_flight() {
    // The default header timeout (10 s) is as long as the drain: only
    // closing these at once lets the server stop promptly.
    let mut server = Launch::default().start();
    let mut half_sent = server.connect();
    half_sent.write_all(HALF_SENT[1]).unwrap();
    let mut silent = server.connect();
    let mut kept_alive = server.connect();
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: tokenward\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut kept_alive).starts_with("HTTP/1.1 200"));
    // One request in flight: its head is in, its body is not.
    let mut in_flight = server.connect();
    let body = br#"{"token":"tw_nope","workspace_id":"00000000-0000-4000-8000-000000000000"}"#;
    in_flight
        .write_all(
            format!(
                "POST /api/v1/tokens/verify HTTP/1.1\r\nHost: tokenward\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    in_flight.write_all(&body[..5]).unwrap();
    // Let the server see everything sent so far.
    std::thread::sleep(Duration::from_millis(200));

    server.signal_term();
    let signalled = Instant::now();
    let deadline = signalled + Duration::from_secs(3);
    for (name, stream) in [
        ("half-sent", &mut half_sent),
        ("silent", &mut silent),
        ("idle keep-alive", &mut kept_alive),
    ] {
        assert!(
            closed_by(stream, deadline),
            "the {name} connection was not closed at shutdown"
        );
    }
    // The request in flight is still served, then the server stops.
    in_flight.write_all(&body[5..]).unwrap();
    let answer = read_response(&mut in_flight);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("MALFORMED"), "{answer}");
    let status = server
        .wait_exit(deadline.saturating_duration_since(Instant::now()))
        .unwrap_or_else(|| {
            panic!(
                "still running {:?} after SIGTERM; log:\n{}",
                signalled.elapsed(),
                server.log()
            )
        });
    eprintln!("stopped {:?} after SIGTERM", signalled.elapsed());
    assert!(status.success(), "{status}; log:\n{}", server.log());
    assert!(server.log().contains("stopped"));
}

#[test]
fn aborted_and_malformed_connections_are_logged_at_debug_only() {
    let server = Launch {
        env: &[("TOKENWARD_HEADER_TIMEOUT", "1")],
        ..Launch::default()
    }
    .start();
    let deadline = Instant::now() + CLOSE_WITHIN;
    let mut malformed = server.connect();
    malformed.write_all(b"NONSENSE\r\n\r\n").unwrap();
    let mut bad_header = server.connect();
    bad_header
        .write_all(b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n")
        .unwrap();
    let mut timed_out = server.connect();
    timed_out.write_all(HALF_SENT[2]).unwrap();
    let reset = server.connect();
    (&reset).write_all(HALF_SENT[1]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    reset_on_close(&reset);
    drop(reset);
    for stream in [&mut malformed, &mut bad_header] {
        assert!(closed_by(stream, deadline));
    }
    let timed_out_closed = closed_by(&mut timed_out, deadline);

    assert!(healthz(server.addr, CLOSE_WITHIN).is_some());
    let log = server.wait_for_log("path=/healthz");
    assert!(log.contains("path=/healthz"), "{log}");
    assert!(complaints(&log).is_empty(), "{log}");
    assert!(
        log.lines()
            .any(|line| line.contains(" DEBUG tokenward") && line.contains("connection")),
        "{log}"
    );
    assert!(timed_out_closed);
}
