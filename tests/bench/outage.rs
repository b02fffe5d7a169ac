//! Recovery from an XMPP outage, with the real binary: N received messages spooled while the
//! XMPP server is down, the gateway killed (`kill -9`) and started again, then the server back.
//!
//! `cargo bench --bench outage -- [--messages N] [--connections C] [--contacts K] [--gateway PATH]`
//!
//! Prints how long spooling took, how long the restart took (from the spawn to the first
//! webhook answered `200 ok`, the spool opened and the port bound), the delivery time and rate
//! once the server is back, and the gateway's resident memory: after the spooling, after the
//! restart, its peak (`VmHWM`) and after the delivery. The server checks that every message
//! arrives once and in order for each contact. See docs/benchmarks.md.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use voipms_xmpp::core::xmpp::element::{Element, NsContext};
use voipms_xmpp::core::xmpp::framer::{Frame, Framer};
use voipms_xmpp::core::xmpp::ns;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The contacts texting: `555000NNNN`.
fn contact(k: usize) -> String {
    format!("555000{:04}", k % 10_000)
}

/// One keep-alive connection posting `count` messages, ids from `first`, for its own
/// `contacts` (numbers `lane`, `lane + lanes`, …) in turn, each contact's in order: text
/// "CONTACT-ORDINAL". A contact's messages all go over one connection, one after the other, so
/// the order they are accepted in is the order they must arrive in.
fn post(addr: SocketAddr, first: usize, count: usize, (lane, lanes, contacts): (usize, usize, usize)) {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for j in 0..count {
        let i = first + j;
        let from = contact(lane + lanes * (j % contacts));
        let body = format!(
            r#"{{"data":{{"event_type":"message.received","payload":{{"id":"{i}","type":"SMS","from":{{"phone_number":"{from}"}},"to":[{{"phone_number":"5552345678"}}],"text":"{from}-{}","media":[]}}}}}}"#,
            j / contacts
        );
        let request = format!(
            "POST /voipms?key=bench-key HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
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
        let mut ok = vec![0u8; length];
        reader.read_exact(&mut ok).expect("body");
    }
}

/// Post `n` messages over `connections` connections at once, each with `contacts` contacts of
/// its own.
fn post_all(addr: SocketAddr, n: usize, connections: usize, contacts: usize) {
    let per = n.div_ceil(connections);
    let handles: Vec<_> = (0..connections)
        .map(|c| {
            let count = per.min(n.saturating_sub(c * per));
            std::thread::spawn(move || post(addr, c * per, count, (c, connections, contacts)))
        })
        .collect();
    for h in handles {
        h.join().expect("client");
    }
}

/// Accept the component, answer pings, and read `expected` messages, checking the order of
/// each contact's. Returns (time from accept to the last message, messages read).
fn serve(listener: TcpListener, expected: usize) -> (Duration, usize) {
    let (mut stream, _) = listener.accept().expect("accept");
    let accepted = Instant::now();
    let mut writer = stream.try_clone().expect("clone");
    let mut framer = Framer::new(1 << 20, 64);
    let mut ctx = NsContext::component();
    let mut buf = vec![0u8; 256 * 1024];
    let mut next: HashMap<String, usize> = HashMap::new();
    let mut read = 0;
    while read < expected {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
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
                    } else if e.is("message", ns::COMPONENT)
                        && let Some(body) = e.get_child("body", ns::COMPONENT)
                    {
                        let text = body.text_content();
                        let (from, k) = text.split_once('-').expect("CONTACT-ORDINAL");
                        let want = next.entry(from.to_string()).or_insert(0);
                        assert_eq!(k.parse::<usize>().expect("ordinal"), *want, "in order for {from}, each once");
                        *want += 1;
                        read += 1;
                    }
                }
                Frame::StreamEnd => return (accepted.elapsed(), read),
            }
        }
        if !out.is_empty() && writer.write_all(out.as_bytes()).is_err() {
            break;
        }
    }
    (accepted.elapsed(), read)
}

/// The gateway, killed when dropped (also when a check fails).
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the gateway; returns it and its webhook address once it listens.
fn spawn(binary: &str, config: &Path) -> (Gateway, SocketAddr) {
    let mut child = Command::new(binary)
        .args(["run", "--config"])
        .arg(config)
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
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    (Gateway(child), webhook)
}

/// A line of `/proc/PID/status` (`VmRSS`, `VmHWM`), in KiB.
fn status_kib(pid: u32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let messages = arg("--messages", 100_000).max(1);
    let connections = arg("--connections", 8).max(1);
    // Contacts per connection.
    let contacts = (arg("--contacts", 96) / connections).max(1);
    let binary = std::env::args()
        .skip_while(|a| a != "--gateway")
        .nth(1)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_voipms-xmpp").to_string());
    let dir = std::env::temp_dir().join(format!("voipms-outage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Nothing listens there until the server comes back.
    let xmpp_addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = format!(
        r#"{{"xmpp":{{"component":"sms.example.com","server":"{xmpp_addr}","secret":"s"}},
            "voipms":{{"api_username":"u","api_password":"p","api_url":"http://127.0.0.1:9/api","backfill_interval_secs":0}},
            "webhook":{{"listen":"127.0.0.1:0","key":"bench-key"}},
            "jid_map":{{"alice@example.com":["+15552345678"]}},
            "state_dir":"{}"}}"#,
        dir.join("state").display()
    );
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, config).unwrap();

    let (first, webhook) = spawn(&binary, &config_path);
    let start = Instant::now();
    post_all(webhook, messages, connections, contacts);
    let spooled_in = start.elapsed();
    let rss_spooled = status_kib(first.0.id(), "VmRSS:");
    drop(first);

    // The restart: from the spawn to the first webhook accepted (spool open, port bound).
    let restart = Instant::now();
    let (gw, webhook) = spawn(&binary, &config_path);
    // From a contact of its own (the last number), its first message.
    post(webhook, messages, 1, (9_999, 1, 1));
    let restarted_in = restart.elapsed();
    let rss_restarted = status_kib(gw.0.id(), "VmRSS:");

    let listener = TcpListener::bind(xmpp_addr).expect("the XMPP address again");
    let (delivered_in, read) = serve(listener, messages + 1);
    let rss_peak = status_kib(gw.0.id(), "VmHWM:");
    let rss_after = status_kib(gw.0.id(), "VmRSS:");
    println!(
        "outage benchmark: {messages} messages from {} contacts over {connections} connections",
        contacts * connections
    );
    println!(
        "spooled:    {messages} in {:.2}s ({:.0} messages/s, XMPP down); gateway {rss_spooled} KiB resident",
        spooled_in.as_secs_f64(),
        messages as f64 / spooled_in.as_secs_f64()
    );
    println!(
        "restart:    {:.0} ms after kill -9, spawn to the first webhook answered; {rss_restarted} KiB resident",
        restarted_in.as_secs_f64() * 1000.0
    );
    println!(
        "delivered:  {read} in {:.2}s once the server was back ({:.0} messages/s), in order per contact",
        delivered_in.as_secs_f64(),
        read as f64 / delivered_in.as_secs_f64()
    );
    println!("memory:     peak {rss_peak} KiB resident (VmHWM of the restarted gateway), {rss_after} KiB after");
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(read, messages + 1, "every message was delivered");
}
