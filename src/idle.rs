//! The header timeout, kept by each connection's own task.
//!
//! A connection must send each request head within the timeout, and may
//! idle that long between requests. hyper keeps that rule with a timer it
//! makes and drops around every request head, and each of those adds an
//! entry to the runtime's timer wheel and removes it, both under a lock
//! every worker thread shares: a few per cent of a verification's CPU.
//!
//! Here the connection notes, with plain stores, when a request comes in
//! and when its answer is ready; a watch that wakes eight times per timeout
//! closes the connection once it has gone a whole timeout with no new
//! request and no answer under way. The connection is closed between one
//! and one and a quarter timeouts after it fell quiet. An answer the client
//! does not read counts as quiet too, so a client that stops reading is
//! closed like one that stops writing.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// What a connection is doing, written only by its own task: relaxed loads
/// and stores, no read-modify-write, on the request path.
#[derive(Debug, Default)]
pub struct Activity {
    requests: AtomicU64,
    answering: AtomicBool,
}

impl Activity {
    /// A request head came in whole.
    pub fn request(&self) {
        self.requests
            .store(self.requests.load(Relaxed) + 1, Relaxed);
        self.answering.store(true, Relaxed);
    }

    /// The answer is ready to be sent.
    pub fn answered(&self) {
        self.answering.store(false, Relaxed);
    }

    /// Whether any request head came in.
    pub fn any_request(&self) -> bool {
        self.requests.load(Relaxed) > 0
    }
}

const CHECKS_PER_TIMEOUT: u32 = 8;

/// Resolves once the connection has been quiet for `timeout`: no new
/// request and no answer under way.
pub async fn quiet_for(activity: Arc<Activity>, timeout: Duration) {
    let check = timeout / CHECKS_PER_TIMEOUT;
    let mut seen = activity.requests.load(Relaxed);
    let mut quiet_checks = 0;
    loop {
        tokio::time::sleep(check).await;
        let requests = activity.requests.load(Relaxed);
        if requests != seen || activity.answering.load(Relaxed) {
            seen = requests;
            quiet_checks = 0;
        } else {
            quiet_checks += 1;
            // One more than fits in a timeout: the quiet may have begun
            // just before the first of them.
            if quiet_checks > CHECKS_PER_TIMEOUT {
                return;
            }
        }
    }
}

/// A future polled only after it has woken its task itself. A connection's
/// task is polled at every request; the futures it waits on besides hyper
/// (the shutdown signal, the quiet watch) would otherwise each take a lock
/// or an atomic read-modify-write at every one of those polls. Here such a
/// poll is a comparison and a load.
pub struct WhenWoken<F> {
    inner: Pin<Box<F>>,
    woke: Arc<WokeFlag>,
    /// The waker `woke.task` holds, to compare without its lock.
    registered: Option<Waker>,
}

struct WokeFlag {
    woke: AtomicBool,
    /// Kept, not taken, by a wake: the task is polled again and again.
    task: Mutex<Option<Waker>>,
}

impl WokeFlag {
    fn task(&self) -> MutexGuard<'_, Option<Waker>> {
        self.task.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Wake for WokeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woke.store(true, std::sync::atomic::Ordering::Release);
        if let Some(task) = self.task().as_ref() {
            task.wake_by_ref();
        }
    }
}

impl<F: Future> WhenWoken<F> {
    pub fn new(inner: F) -> Self {
        WhenWoken {
            inner: Box::pin(inner),
            // Polled the first time, to register its waker.
            woke: Arc::new(WokeFlag {
                woke: AtomicBool::new(true),
                task: Mutex::new(None),
            }),
            registered: None,
        }
    }
}

impl<F: Future> Future for WhenWoken<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if !this
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            *this.woke.task() = Some(cx.waker().clone());
            this.registered = Some(cx.waker().clone());
        }
        if !this.woke.woke.load(std::sync::atomic::Ordering::Acquire) {
            return Poll::Pending;
        }
        this.woke
            .woke
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let waker = Waker::from(Arc::clone(&this.woke));
        this.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn a_future_polled_only_when_woken_still_finishes() {
        let (send, receive) = tokio::sync::oneshot::channel::<u8>();
        let mut waiting = WhenWoken::new(receive);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut waiting).poll(&mut cx).is_pending());
        // Polled again without having woken: not passed on.
        assert!(Pin::new(&mut waiting).poll(&mut cx).is_pending());
        send.send(7).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(got, Ok(Ok(7))), "{got:?}");
    }

    #[tokio::test]
    async fn it_is_woken_every_time_its_future_wakes() {
        let (send, mut receive) = tokio::sync::mpsc::unbounded_channel::<u8>();
        let mut third = WhenWoken::new(async move {
            for _ in 0..2 {
                receive.recv().await;
            }
            receive.recv().await
        });
        for n in 1..=3 {
            let sender = send.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                sender.send(n).unwrap();
            });
            if n < 3 {
                let early = tokio::time::timeout(Duration::from_millis(200), &mut third).await;
                assert!(early.is_err(), "finished after {n} of 3 messages");
            }
        }
        let got = tokio::time::timeout(Duration::from_secs(5), third).await;
        assert_eq!(got.ok().flatten(), Some(3), "the third wake was lost");
    }

    #[tokio::test]
    async fn a_quiet_connection_is_let_go_after_the_timeout() {
        let activity = Arc::new(Activity::default());
        let started = Instant::now();
        quiet_for(Arc::clone(&activity), Duration::from_millis(200)).await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(200), "{took:?}");
    }

    #[tokio::test]
    async fn requests_and_answers_under_way_keep_it() {
        let activity = Arc::new(Activity::default());
        let timeout = Duration::from_millis(200);
        let mut watch = Box::pin(quiet_for(Arc::clone(&activity), timeout));
        // A request every 100 ms for 600 ms, then one answer taking 400 ms.
        for _ in 0..6 {
            activity.request();
            activity.answered();
            let slept = tokio::time::timeout(Duration::from_millis(100), &mut watch).await;
            assert!(slept.is_err(), "let go while requests kept coming");
        }
        activity.request();
        let slept = tokio::time::timeout(Duration::from_millis(400), &mut watch).await;
        assert!(slept.is_err(), "let go while an answer was under way");
        activity.answered();
        let quiet = Instant::now();
        watch.await;
        assert!(quiet.elapsed() >= timeout);
    }
}
