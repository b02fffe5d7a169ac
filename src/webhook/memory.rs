//! [`Pipe`]: an in-memory [`super::Socket`] for tests and fuzzing: the client's bytes in,
//! the server's bytes out, no network.

use super::Socket;
use smol::io::{AsyncRead, AsyncWrite};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

#[derive(Debug, Default)]
struct Inner {
    input: Vec<u8>,
    pos: usize,
    /// Bytes handed out per read at most (0: all there is), to exercise every split.
    chunk: usize,
    /// After the input, stay silent forever (and never wake the reader) instead of ending.
    stall: bool,
    output: Vec<u8>,
    write_closed: bool,
}

/// Both ends of a connection in memory; clones share them.
#[derive(Debug, Clone, Default)]
pub struct Pipe(Arc<Mutex<Inner>>);

impl Pipe {
    /// A client that sends `input`, then closes its side.
    pub fn new(input: &[u8]) -> Pipe {
        Pipe(Arc::new(Mutex::new(Inner { input: input.to_vec(), ..Inner::default() })))
    }

    /// A client that sends `input` and then never sends or closes: reads stay pending and no
    /// waker is ever woken (what a stuck peer, or a stuck parser, looks like).
    pub fn stalling(input: &[u8]) -> Pipe {
        let pipe = Pipe::new(input);
        pipe.lock().stall = true;
        pipe
    }

    /// Hand out at most `n` bytes per read.
    pub fn chunked(self, n: usize) -> Pipe {
        self.lock().chunk = n;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Everything the server wrote.
    pub fn output(&self) -> Vec<u8> {
        self.lock().output.clone()
    }
}

impl AsyncRead for Pipe {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut inner = self.lock();
        let left = inner.input.len() - inner.pos;
        if left == 0 {
            return if inner.stall { Poll::Pending } else { Poll::Ready(Ok(0)) };
        }
        let mut n = left.min(buf.len());
        if inner.chunk > 0 {
            n = n.min(inner.chunk);
        }
        let start = inner.pos;
        buf[..n].copy_from_slice(&inner.input[start..start + n]);
        inner.pos += n;
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut inner = self.lock();
        if inner.write_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        inner.output.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.lock().write_closed = true;
        Poll::Ready(Ok(()))
    }
}

impl Socket for Pipe {
    fn shutdown_write(&self) {
        self.lock().write_closed = true;
    }
}
