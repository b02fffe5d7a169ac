//! The HTTP server for VoIP.ms's SMS/MMS webhook: the only module that uses async-h1 and
//! http-types.
//!
//! The port faces the internet, so no request may take the process down or starve VoIP.ms:
//! - [`guard`] frames every request itself and hands async-h1 only heads [`head`] accepted and
//!   rebuilt, so async-h1's parser never sees a client's header bytes, chunked bodies or
//!   trailers;
//! - each connection runs under a watchdog that closes it at its phase's deadline, whether or
//!   not async-h1 polls the socket, and inside `catch_unwind`: a panic in async-h1 or
//!   http-types ends that one connection ([`panic_is_contained`]; any other panic aborts the
//!   process, whose spool keeps everything acknowledged);
//! - at most [`MAX_CONNECTIONS`] connections; when the table is full, the one idle (or stalled
//!   mid-request) the longest is closed to make room, never one waiting for the gateway.
//!
//! [`handler`] answers the requests. Nothing here logs a URL (it holds the key) or a body.

pub mod guard;
pub mod handler;
pub mod head;
pub mod memory;
pub mod metrics;

use crate::core::action::Level;
use crate::core::secret::Secret;
use crate::daemon::Event;
use crate::logger;
use guard::{Guarded, Limits, Phase, Shared, lock};
use http_types::{Request, Response};
use smol::channel::Sender;
use smol::future::FutureExt as _;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use smol::{Executor, Task, Timer};
use std::cell::Cell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// VoIP.ms bodies are a few hundred bytes; 64 KiB leaves room for long MMS text.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The event loop answers after an fsync; if it has not after this long, say 503.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Simultaneous connections. Each costs a socket and a few KiB; VoIP.ms opens one per message.
pub const MAX_CONNECTIONS: usize = 256;
/// The deadlines in production.
pub const LIMITS: Limits = Limits {
    // A keep-alive connection may idle this long between requests.
    idle: Duration::from_secs(30),
    // A whole request (head and body) must arrive within this.
    request: Duration::from_secs(10),
    // The handler answers 503 after REPLY_TIMEOUT; this only catches a handler that hangs.
    handling: Duration::from_secs(35),
    // Writing an answer of a few hundred bytes.
    write: Duration::from_secs(10),
    max_body: MAX_BODY_BYTES,
};
/// After refusing a request, read (and drop) what the client still sends for at most this long
/// and this much, so that its unread bytes do not turn our answer into a TCP reset.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;
/// Evictions are logged at most this often (an attack would otherwise flood the log).
const EVICTION_LOG_EVERY: Duration = Duration::from_secs(60);

/// What the handler needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The URL path.
    pub path: String,
    /// The `key` query parameter.
    pub key: Secret,
}

/// A byte stream a connection can run on: a TCP socket, or [`memory::Pipe`] in tests.
pub trait Socket: AsyncRead + AsyncWrite + Clone + Send + Sync + Unpin + 'static {
    /// Half-close: no more bytes from us.
    fn shutdown_write(&self);
}

impl Socket for TcpStream {
    fn shutdown_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client or async-h1 closed it.
    Closed,
    /// A head was refused with this status.
    Refused(u16),
    /// A phase's deadline passed.
    TimedOut,
    /// Code under it panicked; the panic was contained.
    Panicked,
}

thread_local! {
    /// Set while a webhook connection is being polled.
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

/// Whether a panic happening now is inside a webhook connection (and will be caught there).
/// The panic hook lets those unwind and aborts on every other.
pub fn panic_is_contained() -> bool {
    CONTAINED.with(Cell::get)
}

/// Polls its future with [`CONTAINED`] set (and restored, even while unwinding).
struct Contain<F>(Pin<Box<F>>);

impl<F: Future> Future for Contain<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        struct Restore(bool);
        impl Drop for Restore {
            fn drop(&mut self) {
                CONTAINED.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CONTAINED.with(|c| c.replace(true)));
        self.0.as_mut().poll(cx)
    }
}

/// Completes once the connection's deadline has passed; the deadline moves with its phase.
async fn watchdog(state: Shared) {
    loop {
        let at = lock(&state).deadline();
        Timer::at(at).await;
        if Instant::now() >= lock(&state).deadline() {
            return;
        }
    }
}

/// Serve one connection of the webhook until it closes, is refused, times out or panics.
pub async fn run_connection<S: Socket>(io: Guarded<S>, settings: Settings, events: Sender<Event>) -> Ended {
    let counts = Arc::new(StatusCounts::default());
    serve_connection(io, webhook_handler(settings, events), counts).await
}

/// An answer being computed.
pub type Answer = Pin<Box<dyn Future<Output = http_types::Result<Response>> + Send>>;
/// A request handler. One type for every listener, so that async-h1's server is compiled once
/// (each handler type would instantiate it again: about 14 KB each).
pub type Handler = Arc<dyn Fn(Request) -> Answer + Send + Sync>;

fn webhook_handler(settings: Settings, events: Sender<Event>) -> Handler {
    Arc::new(move |req| Box::pin(handler::handle(req, settings.clone(), events.clone())))
}

/// Answers by HTTP status, for `GET /metrics` (refused heads included).
#[derive(Debug, Default)]
pub struct StatusCounts([AtomicU64; STATUSES.len() + 1]);

/// The statuses counted one by one; any other counts as `other`.
const STATUSES: [u16; 13] = [200, 400, 401, 403, 404, 405, 411, 413, 417, 431, 501, 503, 505];

impl StatusCounts {
    fn count(&self, status: u16) {
        let i = STATUSES.iter().position(|&s| s == status).unwrap_or(STATUSES.len());
        if let Some(n) = self.0.get(i) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(status, count)` for every status seen at least once (`"other"` last).
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let names = STATUSES.iter().map(u16::to_string).chain(std::iter::once("other".to_string()));
        names.zip(self.0.iter()).map(|(name, n)| (name, n.load(Ordering::Relaxed))).filter(|(_, n)| *n > 0).collect()
    }
}

/// Serve one connection with `handle` until it closes, is refused, times out or panics;
/// every answer's status is counted in `counts`.
pub async fn serve_connection<S: Socket>(io: Guarded<S>, handle: Handler, counts: Arc<StatusCounts>) -> Ended {
    let (state, guard) = (io.state(), io.clone());
    let limits = lock(&state).limits();
    let answered = counts.clone();
    let h1 = async_h1::accept(io, move |req| {
        let answer = handle(req);
        let counts = answered.clone();
        async move {
            let res = answer.await?;
            counts.count(u16::from(res.status()));
            Ok(res)
        }
    });
    let work = async {
        match AssertUnwindSafe(Contain(Box::pin(h1))).catch_unwind().await {
            Ok(_) => Ended::Closed,
            Err(_) => Ended::Panicked,
        }
    };
    let ended = work
        .or(async {
            watchdog(state).await;
            Ended::TimedOut
        })
        .await;
    if ended != Ended::Closed {
        return ended;
    }
    let Some(refused) = guard.rejection() else {
        return ended;
    };
    let mut socket = guard.inner();
    let response = refused.response();
    let write = async {
        let _ = socket.write_all(&response).await;
        let _ = socket.flush().await;
    };
    write
        .or(async {
            Timer::after(limits.write).await;
        })
        .await;
    socket.shutdown_write();
    let drain = async {
        let (mut buf, mut total) = ([0u8; 4096], 0);
        while let Ok(n @ 1..) = socket.read(&mut buf).await {
            total += n;
            if total >= LINGER_BYTES {
                break;
            }
        }
    };
    drain
        .or(async {
            Timer::after(LINGER).await;
        })
        .await;
    counts.count(refused.status);
    Ended::Refused(refused.status)
}

struct Slot {
    task: Task<Ended>,
    state: Shared,
}

/// The open connections. When the server stops (shutdown), they are left to finish: a webhook
/// waiting for its fsync still gets its answer.
struct Slots(Vec<Slot>);

impl Drop for Slots {
    fn drop(&mut self) {
        for slot in self.0.drain(..) {
            slot.task.detach();
        }
    }
}

/// The connection to close to make room: idle the longest, else stalled mid-request the
/// longest. Connections waiting for the gateway or being answered are never chosen.
fn victim(slots: &[Slot]) -> Option<usize> {
    let mut best: Option<(usize, (u8, Instant))> = None;
    for (i, slot) in slots.iter().enumerate() {
        let (phase, since) = lock(&slot.state).phase();
        let rank = match phase {
            Phase::Idle => 0,
            Phase::Reading => 1,
            Phase::Handling | Phase::Writing => continue,
        };
        if best.is_none_or(|(_, b)| (rank, since) < b) {
            best = Some((i, (rank, since)));
        }
    }
    best.map(|(i, _)| i)
}

/// Accept webhook connections until the task is cancelled; answers are counted in `counts`.
pub async fn serve(
    ex: Arc<Executor<'static>>,
    listener: TcpListener,
    settings: Settings,
    events: Sender<Event>,
    counts: Arc<StatusCounts>,
) {
    serve_with(ex, listener, "webhook", webhook_handler(settings, events), counts).await;
}

/// Accept connections for `handle` until the task is cancelled, within the connection table.
pub async fn serve_with(
    ex: Arc<Executor<'static>>,
    listener: TcpListener,
    what: &'static str,
    handle: Handler,
    counts: Arc<StatusCounts>,
) {
    let mut slots = Slots(Vec::new());
    let (mut evicted, mut refused, mut last_log): (u64, u64, Option<Instant>) = (0, 0, None);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // EMFILE and friends: wait a little rather than spin.
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        slots.0.retain(|s| !s.task.is_finished());
        if slots.0.len() >= MAX_CONNECTIONS {
            match victim(&slots.0) {
                Some(i) => {
                    drop(slots.0.swap_remove(i).task);
                    evicted += 1;
                }
                None => refused += 1,
            }
            if last_log.is_none_or(|t| t.elapsed() >= EVICTION_LOG_EVERY) {
                last_log = Some(Instant::now());
                logger::line(
                    Level::Warn,
                    &format!(
                        "{what}: {MAX_CONNECTIONS} connections open; closed {evicted} idle or stalled ones to make room, refused {refused} while all were busy"
                    ),
                );
                (evicted, refused) = (0, 0);
            }
            if slots.0.len() >= MAX_CONNECTIONS {
                continue;
            }
        }
        // async-h1 writes the head and the body separately: without this, Nagle's algorithm
        // holds the body back until the client's delayed ACK (40 ms per request).
        let _ = stream.set_nodelay(true);
        let io = Guarded::new(stream, LIMITS);
        let state = io.state();
        let task = ex.spawn(serve_connection(io, handle.clone(), counts.clone()));
        slots.0.push(Slot { task, state });
    }
}

#[cfg(test)]
mod tests;
