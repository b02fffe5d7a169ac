//! The HTTP server for VoIP.ms's SMS/MMS webhook: the only module that uses async-h1 and
//! http-types.
//!
//! `POST {path}?key=KEY` with VoIP.ms's JSON body. Missing key → 401, wrong key → 403 (compared
//! in constant time), wrong path → 404, other methods → 405, body over 64 KiB → 413, bad JSON or
//! numbers → 400, cannot store → 503. `200 ok` only once the message is durably spooled: the
//! handler hands the parsed message to the event loop and waits for its answer.
//!
//! async-h1 has no body limit, reads header lines without a length cap until a newline, and has
//! a 60 s header timeout; so every connection's socket is wrapped in [`Guarded`], which caps the
//! bytes of each request and the time each phase may take, and the number of connections is
//! capped. Nothing here logs a URL (it holds the key) or a body.

use crate::core::action::WebhookReply;
use crate::core::secret::Secret;
use crate::core::voipms::webhook::{self, WebhookEvent};
use crate::daemon::Event;
use http_types::{Request, Response, StatusCode};
use smol::channel::Sender;
use smol::io::AsyncReadExt;
use smol::net::{TcpListener, TcpStream};
use smol::{Executor, Timer};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// VoIP.ms bodies are a few hundred bytes; 64 KiB leaves room for long MMS text.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Request line and headers (async-h1's own cap is 8 KiB).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// A whole request must arrive within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A keep-alive connection may idle this long between requests.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Writing a response may take this long.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The event loop answers after an fsync; if it has not after this long, say 503.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Simultaneous connections; more are closed at once.
pub const MAX_CONNECTIONS: usize = 256;

/// What the handler needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The URL path.
    pub path: String,
    /// The `key` query parameter.
    pub key: Secret,
}

/// Accept connections until the task is cancelled.
pub async fn serve(ex: Arc<Executor<'static>>, listener: TcpListener, settings: Settings, events: Sender<Event>) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // EMFILE and friends: wait a little rather than spin.
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            drop(stream);
            continue;
        }
        // async-h1 writes the head and the body separately: without this, Nagle's algorithm
        // holds the body back until the client's delayed ACK (40 ms per request).
        let _ = stream.set_nodelay(true);
        active.fetch_add(1, Ordering::Relaxed);
        let count = ConnectionCount(active.clone());
        let (settings, events) = (settings.clone(), events.clone());
        ex.spawn(async move {
            let _count = count;
            let io = Guarded::new(stream);
            let _ = async_h1::accept(io, |req| handle(req, settings.clone(), events.clone())).await;
        })
        .detach();
    }
}

struct ConnectionCount(Arc<AtomicUsize>);

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn reply(status: StatusCode, text: &str) -> http_types::Result<Response> {
    let mut res = Response::new(status);
    res.set_body(text.to_string());
    res.insert_header("Content-Type", "text/plain; charset=utf-8");
    if status != StatusCode::Ok {
        res.insert_header("Connection", "close");
    }
    Ok(res)
}

async fn handle(mut req: Request, settings: Settings, events: Sender<Event>) -> http_types::Result<Response> {
    if req.url().path() != settings.path {
        return reply(StatusCode::NotFound, "not found\n");
    }
    if req.method() != http_types::Method::Post {
        let mut res = reply(StatusCode::MethodNotAllowed, "use POST\n")?;
        res.insert_header("Allow", "POST");
        return Ok(res);
    }
    let key = req.url().query_pairs().find(|(k, _)| k == "key").map(|(_, v)| v.into_owned());
    match key {
        None => return reply(StatusCode::Unauthorized, "missing key\n"),
        Some(k) if !settings.key.matches(k.as_bytes()) => {
            return reply(StatusCode::Forbidden, "wrong key\n");
        }
        Some(_) => {}
    }
    if req.len().is_some_and(|n| n > MAX_BODY_BYTES) {
        return reply(StatusCode::PayloadTooLarge, "body too large\n");
    }
    let mut body = Vec::new();
    let read = req.take_body().take(MAX_BODY_BYTES as u64 + 1).read_to_end(&mut body).await;
    if let Err(e) = read {
        return reply(StatusCode::BadRequest, &format!("could not read the body: {e}\n"));
    }
    if body.len() > MAX_BODY_BYTES {
        return reply(StatusCode::PayloadTooLarge, "body too large\n");
    }
    let message = match webhook::parse(&body) {
        Ok(WebhookEvent::Message(m)) => m,
        Ok(WebhookEvent::Ignored(why)) => {
            let why: String = why.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(80).collect();
            crate::logger::line(
                crate::core::action::Level::Info,
                &format!("webhook: not a received message ({why}); acknowledged"),
            );
            return reply(StatusCode::Ok, "ok");
        }
        Err(e) => return reply(StatusCode::BadRequest, &format!("{e}\n")),
    };
    let (tx, rx) = smol::channel::bounded(1);
    if events.send(Event::Webhook { message, reply: tx }).await.is_err() {
        return reply(StatusCode::ServiceUnavailable, "shutting down\n");
    }
    let answer = smol::future::or(async { rx.recv().await.ok() }, async {
        Timer::after(REPLY_TIMEOUT).await;
        None
    })
    .await;
    match answer {
        Some(WebhookReply::Accepted) => reply(StatusCode::Ok, "ok"),
        Some(WebhookReply::Unavailable) | None => {
            reply(StatusCode::ServiceUnavailable, "cannot store the message now; try again later\n")
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Reading,
    Writing,
}

#[derive(Debug)]
struct GuardState {
    phase: Phase,
    budget: usize,
    timer: Timer,
    /// A response was flushed: the next byte read starts a new request.
    response_done: bool,
    /// Still inside the request head (before the blank line).
    in_head: bool,
    /// The last bytes of the head seen, to find its end across reads.
    head_tail: u32,
}

/// Checks the request head before async-h1 sees it. httparse accepts bytes ≥ 0x80 in header
/// values, and http-types then panics on them (found by mock-voipms's tests); with
/// `panic = "abort"` one such request would take the gateway down. VoIP.ms sends ASCII heads.
fn check_head(st: &mut GuardState, bytes: &[u8]) -> io::Result<()> {
    for &b in bytes {
        if !st.in_head {
            break;
        }
        if b >= 0x80 || (b < 0x20 && b != b'\r' && b != b'\n' && b != b'\t') {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "non-ASCII byte in the request head"));
        }
        st.head_tail = (st.head_tail << 8) | u32::from(b);
        if st.head_tail == u32::from_be_bytes(*b"\r\n\r\n") {
            st.in_head = false;
        }
    }
    Ok(())
}

/// A socket with a byte budget per request, a check of the request head, and a deadline per
/// phase (idle, reading a request, writing a response). Clones share all of it, as async-h1
/// clones its I/O.
#[derive(Debug, Clone)]
pub struct Guarded {
    inner: TcpStream,
    state: Arc<Mutex<GuardState>>,
}

impl Guarded {
    fn new(inner: TcpStream) -> Guarded {
        let state = GuardState {
            phase: Phase::Idle,
            budget: MAX_HEAD_BYTES + MAX_BODY_BYTES,
            timer: Timer::at(Instant::now() + IDLE_TIMEOUT),
            response_done: false,
            in_head: true,
            head_tail: 0,
        };
        Guarded { inner, state: Arc::new(Mutex::new(state)) }
    }
}

fn lock(state: &Mutex<GuardState>) -> std::sync::MutexGuard<'_, GuardState> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "webhook client too slow")
}

/// `Pending` from the socket becomes a timeout error once the phase's deadline has passed.
fn pending_or_timeout<T>(st: &mut GuardState, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
    match Pin::new(&mut st.timer).poll(cx) {
        Poll::Ready(_) => Poll::Ready(Err(timed_out())),
        Poll::Pending => Poll::Pending,
    }
}

impl smol::io::AsyncRead for Guarded {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut st = lock(&this.state);
        if st.response_done {
            // The response went out: the next request may start. (An interim `100 Continue` is
            // written but not flushed by async-h1, so it does not end the request.)
            st.response_done = false;
            st.phase = Phase::Idle;
            st.budget = MAX_HEAD_BYTES + MAX_BODY_BYTES;
            st.timer.set_at(Instant::now() + IDLE_TIMEOUT);
            st.in_head = true;
            st.head_tail = 0;
        }
        if st.budget == 0 {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, "webhook request too large")));
        }
        let n = buf.len().min(st.budget);
        match Pin::new(&mut this.inner).poll_read(cx, &mut buf[..n]) {
            Poll::Ready(Ok(k)) => {
                check_head(&mut st, &buf[..k])?;
                st.budget -= k;
                if st.phase == Phase::Idle && k > 0 {
                    st.phase = Phase::Reading;
                    st.timer.set_at(Instant::now() + REQUEST_TIMEOUT);
                }
                Poll::Ready(Ok(k))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => pending_or_timeout(&mut st, cx),
        }
    }
}

impl smol::io::AsyncWrite for Guarded {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut st = lock(&this.state);
        if st.phase != Phase::Writing {
            st.phase = Phase::Writing;
            st.timer.set_at(Instant::now() + WRITE_TIMEOUT);
        }
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => pending_or_timeout(&mut st, cx),
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut st = lock(&this.state);
        // async-h1 flushes once a response is complete (an interim `100 Continue` is written
        // without a flush), so the next byte read begins a new request.
        if st.phase == Phase::Writing {
            st.response_done = true;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}
