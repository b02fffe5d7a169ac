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

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod c2s;
mod load;
mod measure;
mod prosody;
mod prosody_mode;
mod scripted;
mod targets;

use measure::{ms, rss_kib};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Accept the component, answer pings, count messages and note the time of the last one.
fn xmpp_server(listener: TcpListener, delivered: Arc<AtomicUsize>, last: Arc<Mutex<Option<Instant>>>) {
    let (stream, _) = listener.accept().expect("accept");
    scripted::serve_component(stream, |_| {
        delivered.fetch_add(1, Ordering::Relaxed);
        *last.lock().unwrap() = Some(Instant::now());
        true
    });
}

/// One keep-alive connection posting `count` webhooks; returns each request's latency.
fn client(addr: SocketAddr, first: usize, count: usize) -> Vec<Duration> {
    let mut poster = scripted::Poster::connect(addr);
    let mut latencies = Vec::with_capacity(count);
    for i in first..first + count {
        let body =
            scripted::sms_body(i, "5559998888", &format!("benchmark message number {i}, about as long as a text"));
        let start = Instant::now();
        poster.post(&body);
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
