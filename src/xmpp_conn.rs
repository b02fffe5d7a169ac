//! The TCP connection to the XMPP server: connect with a timeout, then move bytes both ways.
//! Nothing here understands XMPP; the core's session does.
//!
//! Each connection has a number. Its reader sends the bytes it reads as events; its writer writes
//! what the loop hands it and, when the loop drops its sender, flushes and shuts the socket down,
//! which ends the connection. Events from an old connection are ignored by number.

use crate::daemon::Event;
use smol::channel::{Receiver, Sender};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Give up on a TCP connect after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer size.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes written to the server and not yet taken by the socket. More means the server stopped
/// reading: the connection is then dropped (and what was unconfirmed is written again on the
/// next one), so that a stuck server cannot grow the gateway's memory. 4 MiB is thousands of
/// stanzas on top of what the kernel's socket buffer already holds.
pub const MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;

/// Where the loop hands bytes for the connection; knows how much is still queued.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: Sender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
}

/// The server is not reading: [`MAX_QUEUED_BYTES`] are waiting already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

impl Writer {
    /// Queue `bytes` for the socket, unless too much is waiting already.
    pub fn send(&self, bytes: Vec<u8>) -> Result<(), Overflow> {
        if self.queued.load(Ordering::Relaxed) + bytes.len() > MAX_QUEUED_BYTES {
            return Err(Overflow);
        }
        self.queued.fetch_add(bytes.len(), Ordering::Relaxed);
        // The channel is unbounded; the byte count above is its bound. A closed channel means
        // the connection is ending, and its own event says so.
        let _ = self.tx.try_send(bytes);
        Ok(())
    }
}

/// Connect to `server` (`host:port`) and run the connection until it closes.
pub async fn run(conn: u64, server: String, events: Sender<Event>) {
    let connect = async { TcpStream::connect(server.as_str()).await.map_err(|e| e.to_string()) };
    let timeout = async {
        smol::Timer::after(CONNECT_TIMEOUT).await;
        Err(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()))
    };
    let stream = match smol::future::or(connect, timeout).await {
        Ok(s) => s,
        Err(why) => {
            let _ = events.send(Event::XmppConnectFailed { conn, reason: format!("{server}: {why}") }).await;
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let (tx, rx) = smol::channel::unbounded::<Vec<u8>>();
    let queued = Arc::new(AtomicUsize::new(0));
    let writer = Writer { tx, queued: queued.clone() };
    if events.send(Event::XmppConnected { conn, writer }).await.is_err() {
        return;
    }
    let writer = async {
        write_loop(stream.clone(), rx, &queued).await;
        "closed by the gateway".to_string()
    };
    let reason = smol::future::or(read_loop(conn, stream.clone(), &events), writer).await;
    let _ = stream.shutdown(Shutdown::Both);
    let _ = events.send(Event::XmppClosed { conn, reason }).await;
}

async fn read_loop(conn: u64, mut stream: TcpStream, events: &Sender<Event>) -> String {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return "the server closed the connection".into(),
            Ok(n) => {
                if events.send(Event::XmppBytes { conn, bytes: buf[..n].to_vec() }).await.is_err() {
                    return "shutting down".into();
                }
            }
            Err(e) => return e.to_string(),
        }
    }
}

async fn write_loop(mut stream: TcpStream, rx: Receiver<Vec<u8>>, queued: &AtomicUsize) {
    while let Ok(first) = rx.recv().await {
        // Coalesce what is queued into one write: many stanzas, one syscall.
        let mut chunk = first;
        while let Ok(more) = rx.try_recv() {
            chunk.extend_from_slice(&more);
            if chunk.len() >= 256 * 1024 {
                break;
            }
        }
        if stream.write_all(&chunk).await.is_err() {
            break;
        }
        queued.fetch_sub(chunk.len(), Ordering::Relaxed);
    }
    let _ = stream.flush().await;
    let _ = stream.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_refuses_bytes_past_its_bound_until_the_socket_takes_some() {
        let (tx, rx) = smol::channel::unbounded();
        let queued = Arc::new(AtomicUsize::new(0));
        let w = Writer { tx, queued: queued.clone() };
        assert_eq!(w.send(vec![0; MAX_QUEUED_BYTES - 10]), Ok(()));
        assert_eq!(w.send(vec![0; 11]), Err(Overflow));
        assert_eq!(w.send(vec![0; 10]), Ok(()));
        assert_eq!(rx.len(), 2, "the refused bytes were not queued");
        // The write loop takes them off as it writes.
        queued.fetch_sub(MAX_QUEUED_BYTES, Ordering::Relaxed);
        assert_eq!(w.send(vec![0; 11]), Ok(()));
    }
}
