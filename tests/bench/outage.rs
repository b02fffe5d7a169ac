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
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use voipms_xmpp::core::xmpp::ns;

mod scripted;

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
    let mut poster = scripted::Poster::connect(addr);
    for j in 0..count {
        let from = contact(lane + lanes * (j % contacts));
        poster.post(&scripted::sms_body(first + j, &from, &format!("{from}-{}", j / contacts)));
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

/// Accept the component and read `expected` messages, checking the order of each contact's.
/// Returns (time from accept to the last message, messages read).
fn serve(listener: TcpListener, expected: usize) -> (Duration, usize) {
    let (stream, _) = listener.accept().expect("accept");
    let accepted = Instant::now();
    let mut next: HashMap<String, usize> = HashMap::new();
    let mut read = 0;
    scripted::serve_component(stream, |e| {
        if let Some(body) = e.get_child("body", ns::COMPONENT) {
            let text = body.text_content();
            let (from, k) = text.split_once('-').expect("CONTACT-ORDINAL");
            let want = next.entry(from.to_string()).or_insert(0);
            assert_eq!(k.parse::<usize>().expect("ordinal"), *want, "in order for {from}, each once");
            *want += 1;
            read += 1;
        }
        read < expected
    });
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
