//! Webhook throughput and latency of the real binary.
//!
//! `cargo bench --bench webhook -- [--messages N] [--connections C] [--gateway PATH]`
//!
//! This file owns the default mode, against a scripted XMPP peer. `-- --prosody` runs the same
//! kind of load through a real Prosody to a real c2s client instead (prosody_mode.rs and the
//! modules it names), against the gateway, a do-nothing component and optionally mod_voipms.
//!
//! Starts `voipms-xmpp` (built with the bench profile) against a minimal XMPP server that answers
//! the handshake and pings and counts the messages it receives, then posts N VoIP.ms-shaped
//! webhooks over C keep-alive connections. Every `200 ok` means the message was fsynced. Prints
//! accepted messages/s, delivered messages/s (until the last one reached the XMPP server) and
//! the p50/p99/max latency of a webhook request, and the gateway's resident memory when idle and
//! after the load. See docs/benchmarks.md.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use voipms_xmpp::core::xmpp::element::{Element, NsContext};
use voipms_xmpp::core::xmpp::framer::{Frame, Framer};
use voipms_xmpp::core::xmpp::ns;

mod c2s;
mod load;
mod measure;
mod prosody;
mod prosody_mode;
mod targets;

use measure::{ms, rss_kib};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Accept the component, answer pings, count messages; returns (count, time of the last one).
fn xmpp_server(listener: TcpListener, delivered: Arc<AtomicUsize>, last: Arc<Mutex<Option<Instant>>>) {
    let (mut stream, _) = listener.accept().expect("accept");
    let mut writer = stream.try_clone().expect("clone");
    let mut framer = Framer::new(1 << 20, 64);
    let mut ctx = NsContext::component();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        let mut out = String::new();
        while let Ok(Some(frame)) = framer.next_frame() {
            match frame {
                Frame::StreamHeader(bytes) => {
                    ctx = NsContext::from_header(&Element::parse_start_tag(&bytes).expect("header"));
                    out.push_str("<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' id='bench' from='sms.example.com' xmlns='jabber:component:accept'>");
                }
                Frame::Stanza(bytes) => {
                    let e = Element::parse(&bytes, &ctx).expect("stanza");
                    if e.is("handshake", ns::COMPONENT) {
                        out.push_str("<handshake/>");
                    } else if e.is("iq", ns::COMPONENT) && e.get_child("ping", ns::PING).is_some() {
                        out.push_str(&format!(
                            "<iq type='result' id='{}' from='example.com' to='sms.example.com'/>",
                            e.get_attr("id").unwrap_or("")
                        ));
                    } else if e.is("message", ns::COMPONENT) {
                        delivered.fetch_add(1, Ordering::Relaxed);
                        *last.lock().unwrap() = Some(Instant::now());
                    }
                }
                Frame::StreamEnd => return,
            }
        }
        if !out.is_empty() && writer.write_all(out.as_bytes()).is_err() {
            return;
        }
    }
}

/// One keep-alive connection posting `count` webhooks; returns each request's latency.
fn client(addr: SocketAddr, first: usize, count: usize) -> Vec<Duration> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut latencies = Vec::with_capacity(count);
    for i in first..first + count {
        let body = format!(
            r#"{{"data":{{"event_type":"message.received","payload":{{"id":"{i}","type":"SMS","from":{{"phone_number":"5559998888"}},"to":[{{"phone_number":"5552345678"}}],"text":"benchmark message number {i}, about as long as a text","media":[]}}}}}}"#
        );
        let request = format!(
            "POST /voipms?key=bench-key HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let start = Instant::now();
        writer.write_all(request.as_bytes()).expect("send");
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        assert!(status.starts_with("HTTP/1.1 200"), "unexpected answer: {status}");
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("length");
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).expect("body");
        assert_eq!(body, b"ok");
        latencies.push(start.elapsed());
    }
    latencies
}

fn main() -> std::process::ExitCode {
    if std::env::args().any(|a| a == "--prosody") {
        return match prosody_mode::run() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("webhook bench --prosody: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    scripted();
    std::process::ExitCode::SUCCESS
}

/// The default mode: the gateway against a scripted XMPP peer.
fn scripted() {
    let messages = arg("--messages", 20_000);
    let connections = arg("--connections", 16).max(1);
    let dir = std::env::temp_dir().join(format!("voipms-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let xmpp_addr = listener.local_addr().unwrap();
    let delivered = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(Mutex::new(None));
    {
        let (d, l) = (delivered.clone(), last.clone());
        std::thread::spawn(move || xmpp_server(listener, d, l));
    }
    let config = format!(
        r#"{{"xmpp":{{"component":"sms.example.com","server":"{xmpp_addr}","secret":"s"}},
            "voipms":{{"api_username":"u","api_password":"p","api_url":"http://127.0.0.1:9/api"}},
            "webhook":{{"listen":"127.0.0.1:0","key":"bench-key"}},
            "jid_map":{{"alice@example.com":["+15552345678"]}},
            "state_dir":"{}"}}"#,
        dir.join("state").display()
    );
    std::fs::write(dir.join("config.json"), config).unwrap();
    let binary = std::env::args()
        .skip_while(|a| a != "--gateway")
        .nth(1)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_voipms-xmpp").to_string());
    let mut child = Command::new(binary)
        .args(["run", "--config"])
        .arg(dir.join("config.json"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn voipms-xmpp");
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let webhook: SocketAddr = loop {
        let mut line = String::new();
        assert!(log.read_line(&mut line).expect("log") > 0, "the gateway exited");
        if let Some(rest) = line.split("webhook listening on http://").nth(1) {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    let mut online = String::new();
    while !online.contains("online") {
        online.clear();
        log.read_line(&mut online).expect("log");
    }
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    let rss_idle = rss_kib(child.id());

    let per = messages / connections;
    let start = Instant::now();
    let handles: Vec<_> = (0..connections).map(|c| std::thread::spawn(move || client(webhook, c * per, per))).collect();
    let mut latencies: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().expect("client")).collect();
    let accepted_in = start.elapsed();
    let total = latencies.len();
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let delivered_n = delivered.load(Ordering::Relaxed);
    let delivered_in = last.lock().unwrap().map_or(Duration::ZERO, |t| t - start);
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!("webhook benchmark: {total} messages over {connections} keep-alive connections");
    println!(
        "accepted:  {:>8.0} messages/s ({total} in {:.2}s, each fsynced before 200 ok)",
        total as f64 / accepted_in.as_secs_f64(),
        accepted_in.as_secs_f64()
    );
    println!(
        "delivered: {:>8.0} messages/s ({delivered_n} reached the XMPP server in {:.2}s)",
        delivered_n as f64 / delivered_in.as_secs_f64(),
        delivered_in.as_secs_f64()
    );
    println!(
        "latency:   p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*latencies.last().unwrap())
    );
    println!(
        "memory:    {} KiB resident when idle, {} KiB after the load",
        rss_idle.map_or("?".into(), |k| k.to_string()),
        rss_kib(child.id()).map_or("?".into(), |k| k.to_string())
    );
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(delivered_n, total, "every accepted message was delivered");
}
