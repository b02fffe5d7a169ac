//! [`Guarded`]: the socket as async-h1 sees it, with the request framing done by us.
//!
//! Each request's head is read into a buffer (at most [`head::MAX_HEAD_BYTES`]), judged by
//! [`head::check`], and only then handed to async-h1, rebuilt; then exactly `Content-Length`
//! bytes of body pass through, and the next byte begins the next head. So async-h1 never sees a
//! byte we did not frame, and a refused head ends the connection with our own answer
//! ([`Guarded::rejection`]). `Expect: 100-continue` is answered here, when the handler first
//! reads the body (async-h1 would spawn a task on a global executor for it).
//!
//! The connection's phase (idle, reading a request, waiting for the gateway, writing the
//! answer) and its deadline live in a [`Shared`] state that the connection's watchdog and the
//! connection table read: deadlines hold even if async-h1 stops polling the socket.

use super::head::{self, Reject};
use smol::io::{AsyncRead, AsyncWrite};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How long each phase of a connection may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Between requests on a keep-alive connection (and before the first).
    pub idle: Duration,
    /// From a request's first byte to its last.
    pub request: Duration,
    /// From a complete request to the first byte of the answer: the event loop answers after an
    /// fsync, or says 503 after [`super::REPLY_TIMEOUT`]; this is the backstop.
    pub handling: Duration,
    /// Writing an answer.
    pub write: Duration,
    /// The largest body.
    pub max_body: usize,
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a request.
    Idle,
    /// A request is arriving.
    Reading,
    /// A complete request waits for the gateway's answer.
    Handling,
    /// The answer is being written.
    Writing,
}

#[derive(Debug)]
enum Mode {
    /// Collecting a head in `inbuf`.
    Head,
    /// Handing async-h1 the rebuilt head (from `pos`), then `body_left` bytes of body.
    Serve { head: Vec<u8>, pos: usize, body_left: usize, continue_owed: bool, continue_sent: usize },
    /// The head was refused: async-h1 reads end-of-stream; the answer is [`Guarded::rejection`].
    Refused(Reject),
}

/// The state of one connection, shared by every clone of its [`Guarded`], its watchdog and the
/// connection table.
#[derive(Debug)]
pub struct State {
    phase: Phase,
    since: Instant,
    deadline: Instant,
    limits: Limits,
    mode: Mode,
    /// Bytes read from the socket and not yet handed on.
    inbuf: Vec<u8>,
    /// Something of the current answer was written.
    responded: bool,
}

/// [`State`] behind a lock (the executor is single-threaded; the lock is never contended).
pub type Shared = Arc<Mutex<State>>;

/// Lock `state`, whatever a panic elsewhere left behind (the state stays consistent: every
/// update is a few assignments).
pub fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    fn new(limits: Limits, now: Instant) -> State {
        State {
            phase: Phase::Idle,
            since: now,
            deadline: now + limits.idle,
            limits,
            mode: Mode::Head,
            inbuf: Vec::new(),
            responded: false,
        }
    }

    fn enter(&mut self, phase: Phase, now: Instant) {
        if self.phase == phase {
            return;
        }
        self.phase = phase;
        self.since = now;
        self.deadline = now
            + match phase {
                Phase::Idle => self.limits.idle,
                Phase::Reading => self.limits.request,
                Phase::Handling => self.limits.handling,
                Phase::Writing => self.limits.write,
            };
    }

    /// The phase and when it began.
    pub fn phase(&self) -> (Phase, Instant) {
        (self.phase, self.since)
    }

    /// When the connection must be closed if it is still in the same phase.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The connection's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

/// A socket with our framing in front of async-h1 (see the module documentation).
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    state: Shared,
}

impl<S> Guarded<S> {
    /// Wrap a freshly accepted socket.
    pub fn new(inner: S, limits: Limits) -> Guarded<S> {
        Guarded { inner, state: Arc::new(Mutex::new(State::new(limits, Instant::now()))) }
    }

    /// The shared state (for the watchdog and the connection table).
    pub fn state(&self) -> Shared {
        self.state.clone()
    }

    /// The socket itself, to answer a refused head after async-h1 is done.
    pub fn inner(&self) -> S
    where
        S: Clone,
    {
        self.inner.clone()
    }

    /// The answer owed for a refused head, if one was refused.
    pub fn rejection(&self) -> Option<Reject> {
        match lock(&self.state).mode {
            Mode::Refused(r) => Some(r),
            _ => None,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Guarded<S> {
    /// Fill `inbuf` from the socket until it holds a whole head, then judge it.
    fn poll_head(inner: &mut S, st: &mut State, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some(end) = head::find_end(&st.inbuf) {
                let verdict = head::check(st.inbuf.get(..end).unwrap_or_default(), st.limits.max_body);
                st.inbuf.drain(..end);
                st.mode = match verdict {
                    Ok(h) => Mode::Serve {
                        head: h.rebuilt,
                        pos: 0,
                        body_left: h.content_length,
                        continue_owed: h.expect_continue,
                        continue_sent: 0,
                    },
                    Err(r) => Mode::Refused(r),
                };
                st.responded = false;
                return Poll::Ready(Ok(()));
            }
            if st.inbuf.len() >= head::MAX_HEAD_BYTES {
                st.mode = Mode::Refused(Reject { status: 431, reason: "request head too large" });
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 2048];
            let room = (head::MAX_HEAD_BYTES + 4 - st.inbuf.len()).min(chunk.len());
            match Pin::new(&mut *inner).poll_read(cx, chunk.get_mut(..room).unwrap_or_default()) {
                Poll::Ready(Ok(0)) => {
                    // End of stream: between requests it is a normal close; inside one, the
                    // request is incomplete and there is nobody left to answer.
                    st.inbuf.clear();
                    return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                }
                Poll::Ready(Ok(n)) => {
                    st.inbuf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                    st.enter(Phase::Reading, Instant::now());
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut st = lock(&this.state);
        let st = &mut *st;
        if matches!(st.mode, Mode::Head) {
            match Guarded::poll_head(&mut this.inner, st, cx) {
                Poll::Ready(Ok(())) => {}
                // Whatever happened, async-h1 just sees the stream end.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(0)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let responded = st.responded;
        let Mode::Serve { head, pos, body_left, continue_owed, continue_sent } = &mut st.mode else {
            return Poll::Ready(Ok(0));
        };
        if *pos < head.len() {
            let rest = head.get(*pos..).unwrap_or_default();
            let n = rest.len().min(buf.len());
            buf.get_mut(..n).unwrap_or_default().copy_from_slice(rest.get(..n).unwrap_or_default());
            *pos += n;
            if *pos == head.len() && *body_left == 0 {
                st.mode = Mode::Head;
                st.enter(Phase::Handling, Instant::now());
            }
            return Poll::Ready(Ok(n));
        }
        if *body_left == 0 {
            // async-h1 reads on only for the next request.
            st.mode = Mode::Head;
            return Poll::Ready(Ok(0));
        }
        if *continue_owed && st.inbuf.is_empty() {
            if responded {
                // Answered without the body: the client never sends it.
                *body_left = 0;
                return Poll::Ready(Ok(0));
            }
            while *continue_sent < CONTINUE.len() {
                let rest = CONTINUE.get(*continue_sent..).unwrap_or_default();
                match Pin::new(&mut this.inner).poll_write(cx, rest) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => *continue_sent += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        *continue_owed = false;
        let want = buf.len().min(*body_left);
        let n = if st.inbuf.is_empty() {
            match Pin::new(&mut this.inner).poll_read(cx, buf.get_mut(..want).unwrap_or_default()) {
                Poll::Ready(Ok(n)) => n,
                other => return other,
            }
        } else {
            let n = want.min(st.inbuf.len());
            buf.get_mut(..n).unwrap_or_default().copy_from_slice(st.inbuf.get(..n).unwrap_or_default());
            st.inbuf.drain(..n);
            n
        };
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
        }
        *body_left -= n;
        if *body_left == 0 {
            st.mode = Mode::Head;
            if !responded {
                st.enter(Phase::Handling, Instant::now());
            }
        }
        Poll::Ready(Ok(n))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut st = lock(&this.state);
        st.responded = true;
        st.enter(Phase::Writing, Instant::now());
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        if result.is_ready() {
            // async-h1 flushes once an answer is complete: the connection waits for the next.
            let mut st = lock(&this.state);
            if st.phase == Phase::Writing {
                st.enter(Phase::Idle, Instant::now());
            }
        }
        result
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}
