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
use std::time::Duration;

/// Give up on a TCP connect after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer size.
const READ_CHUNK: usize = 16 * 1024;

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
    if events.send(Event::XmppConnected { conn, writer: tx }).await.is_err() {
        return;
    }
    let writer = async {
        write_loop(stream.clone(), rx).await;
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

async fn write_loop(mut stream: TcpStream, rx: Receiver<Vec<u8>>) {
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
    }
    let _ = stream.flush().await;
    let _ = stream.shutdown(Shutdown::Both);
}
