//! The `--prosody` mode of `cargo bench --bench webhook`: for each target (the gateway, the
//! do-nothing component, optionally mod_voipms) a private Prosody and a c2s client, then each
//! load in turn, and the figures of each load and the summary against the do-nothing ceiling.
//!
//! ```sh
//! cargo bench --bench webhook -- --prosody [--target gateway,nothing,mod_voipms]
//!     [--load closed:8,closed:32,open:100,open:1000] [--messages 20000] [--duration 10]
//!     [--gateway PATH] [--mod-voipms DIR] [--prosody-nagle]
//! ```
//!
//! A closed loop against the do-nothing component keeps the same number of messages in flight
//! as there are connections: a message's "answer" is its arrival at the client, so that target
//! is paced by Prosody's whole route. Prosody runs with `network_settings = { nagle = false }`:
//! with its default (Nagle on, kept by `--prosody-nagle`), a small write to the c2s client, which
//! never sends anything back, can wait for that client's delayed ACK (40 ms), which would pace
//! the do-nothing lanes and put 40 ms into every target's e2e p99.

use crate::c2s::{self, Inbox};
use crate::load::{self, Load, Target};
use crate::measure::{self, ms, quantile};
use crate::prosody::{self, DOMAIN, PASSWORD, Prosody, USER};
use crate::targets::{self, Gateway, Http, Nothing};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEFAULT_LOADS: &str = "closed:8,closed:32,open:100,open:1000";

fn value(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn number(name: &str, default: usize) -> Result<usize, String> {
    value(name).map_or(Ok(default), |v| v.parse().map_err(|_| format!("{name} {v:?}: not a number")))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gateway,
    Nothing,
    ModVoipms,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Gateway => "gateway",
            Kind::Nothing => "nothing",
            Kind::ModVoipms => "mod_voipms",
        }
    }
}

/// The figures of one load, kept for the summary.
struct Row {
    kind: Kind,
    load: String,
    accepted: f64,
    delivered: f64,
    e2e: (Option<Duration>, Option<Duration>),
    cpu_per_message: Option<f64>,
}

/// The processes of one target, stopped in this order when dropped: client, target, Prosody.
struct Stack {
    _client: c2s::Client,
    target: Box<dyn Target>,
    gateway: Option<Gateway>,
    prosody: Prosody,
}

pub fn run() -> Result<(), String> {
    prosody::available()?;
    let messages = number("--messages", 20_000)?;
    let duration = Duration::from_secs(number("--duration", 10)?.max(1) as u64);
    let loads = value("--load")
        .unwrap_or_else(|| DEFAULT_LOADS.into())
        .split(',')
        .map(|s| Load::parse(s.trim(), messages, duration))
        .collect::<Result<Vec<_>, _>>()?;
    let module_dir = value("--mod-voipms").map(PathBuf::from);
    let default_targets = if module_dir.is_some() { "gateway,nothing,mod_voipms" } else { "gateway,nothing" };
    let kinds = value("--target")
        .unwrap_or_else(|| default_targets.into())
        .split(',')
        .map(|t| match t.trim() {
            "gateway" => Ok(Kind::Gateway),
            "nothing" => Ok(Kind::Nothing),
            "mod_voipms" if module_dir.is_some() => Ok(Kind::ModVoipms),
            "mod_voipms" => Err("--target mod_voipms needs --mod-voipms DIR (the directory of mod_voipms.lua)".into()),
            other => Err(format!("--target {other:?}: expected gateway, nothing or mod_voipms")),
        })
        .collect::<Result<Vec<_>, String>>()?;
    let binary = value("--gateway").map_or_else(targets::default_gateway, PathBuf::from);
    let ticks = measure::clock_ticks() as f64;
    let version = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "prosody"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "?".into());
    println!("Prosody {version} on loopback; c2s client {USER}@{DOMAIN}; {} cores", cores());
    if std::env::args().any(|a| a == "--prosody-nagle") {
        println!("Prosody's sockets: its default, Nagle's algorithm on (--prosody-nagle)");
    } else {
        println!(
            "Prosody's sockets: Nagle's algorithm off (network_settings; --prosody-nagle keeps Prosody's default)"
        );
    }

    let root = std::env::temp_dir().join(format!("voipms-bench-prosody-{}", std::process::id()));
    let mut rows = Vec::new();
    let mut load_id = 0u32;
    let mut result = Ok(());
    for &kind in &kinds {
        let dir = root.join(kind.name());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let inbox = Inbox::new();
        let stack = match start(kind, &dir, &binary, module_dir.as_deref(), &inbox) {
            Ok(s) => s,
            Err(e) => {
                result = Err(format!("target {}: {e} (files in {})", kind.name(), dir.display()));
                break;
            }
        };
        println!();
        match kind {
            Kind::Gateway => println!("== target gateway: {} as component {}", binary.display(), prosody::COMPONENT),
            Kind::Nothing => println!("== target nothing: a component that answers and stores nothing"),
            Kind::ModVoipms => {
                println!("== target mod_voipms: Prosody with {}", module_dir.as_ref().unwrap().display())
            }
        }
        for l in &loads {
            load_id += 1;
            match measure_load(kind, l, load_id, &stack, &inbox, ticks) {
                Ok(row) => rows.push(row),
                Err(e) => {
                    println!("  failed: {e}");
                    result = Err(format!("target {}, {}: {e}", kind.name(), l.describe()));
                }
            }
        }
        let warnings = stack.prosody.warnings();
        if !warnings.is_empty() {
            println!("  Prosody logged {} warnings or errors, e.g. {}", warnings.len(), warnings[0]);
        }
        drop(stack);
        if result.is_ok() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    summary(&rows);
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&root);
    }
    result
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

fn start(
    kind: Kind,
    dir: &Path,
    binary: &Path,
    module_dir: Option<&Path>,
    inbox: &Arc<Inbox>,
) -> Result<Stack, String> {
    let nodelay = !std::env::args().any(|a| a == "--prosody-nagle");
    let prosody = Prosody::start(dir, if kind == Kind::ModVoipms { module_dir } else { None }, nodelay)?;
    let client = c2s::connect(prosody.c2s, DOMAIN, USER, PASSWORD, "bench", inbox.clone())
        .map_err(|e| format!("{e}; {}", prosody.log_tail()))?;
    let (target, gateway): (Box<dyn Target>, _) = match kind {
        Kind::Gateway => {
            let g = Gateway::start(binary, dir, prosody.component)?;
            (Box::new(Http::gateway(g.webhook)), Some(g))
        }
        Kind::Nothing => (Box::new(Nothing::connect(prosody.component)?), None),
        Kind::ModVoipms => (Box::new(Http::module(prosody.http)), None),
    };
    // Let the start-up traffic (presence, the gateway's first ping) settle before measuring.
    std::thread::sleep(Duration::from_millis(500));
    Ok(Stack { _client: client, target, gateway, prosody })
}

fn measure_load(kind: Kind, l: &Load, id: u32, stack: &Stack, inbox: &Arc<Inbox>, ticks: f64) -> Result<Row, String> {
    let mut watched = vec![("prosody", stack.prosody.pid())];
    if let Some(g) = &stack.gateway {
        watched.insert(0, ("gateway", g.pid()));
    }
    let total = l.total();
    inbox.begin(id, total);
    let rss_before: Vec<_> = watched.iter().map(|&(_, pid)| measure::rss_kib(pid)).collect();
    let cpu_before: Vec<_> = watched.iter().map(|&(_, pid)| measure::cpu_ticks(pid)).collect();
    let machine_before = measure::machine_ticks();
    let sent = load::drive(l, id, stack.target.as_ref(), inbox)?;
    let start = sent.start.expect("drive sets the start");
    let tally = inbox.wait(sent.accepted, Instant::now() + Duration::from_secs(60));
    let machine_after = measure::machine_ticks();
    let cpu_after: Vec<_> = watched.iter().map(|&(_, pid)| measure::cpu_ticks(pid)).collect();
    let end = tally.last.max(sent.last_answer).unwrap_or(start);
    let wall = end.saturating_duration_since(start).max(Duration::from_micros(1));
    let measured = Instant::now().saturating_duration_since(start);

    let accepted = sent.accepted as f64 / sent.elapsed().as_secs_f64().max(1e-6);
    let delivered =
        tally.last.map_or(0.0, |last| tally.unique as f64 / last.saturating_duration_since(start).as_secs_f64());
    let mut e2e = tally.e2e;
    e2e.sort();
    println!("{}", l.describe());
    println!(
        "  accepted  {accepted:>8.0}/s   delivered {delivered:>8.0}/s   ({total} sent, {} accepted, {} at the client, \
         {} duplicates, {} stray)",
        sent.accepted, tally.unique, tally.duplicates, tally.stray
    );
    if stack.target.http() {
        println!("  HTTP      {}", quantiles(&sent.answers));
    } else if matches!(l, Load::Closed { .. }) {
        println!("  HTTP      none (component stream); each lane waits for its message at the client");
    } else {
        println!("  HTTP      none (component stream)");
    }
    println!("  e2e       {}", quantiles(&e2e));
    if matches!(l, Load::Open { .. }) {
        println!(
            "  schedule  {} of {total} sent more than 1 ms late (largest lag {:.2} ms)",
            sent.late,
            ms(sent.max_lag)
        );
    }
    let mut cpu_total = Some(0.0);
    let mut cpu = Vec::new();
    for (i, &(name, _)) in watched.iter().enumerate() {
        let secs = cpu_before[i].zip(cpu_after[i]).map(|(a, b)| (b - a) as f64 / ticks);
        cpu_total = cpu_total.zip(secs).map(|(t, s)| t + s);
        cpu.push(match secs {
            Some(s) => format!("{name} {s:.2} s ({:.0}% of a core)", s * 100.0 / measured.as_secs_f64()),
            None => format!("{name} ?"),
        });
    }
    let cpu_per_message = cpu_total.filter(|_| tally.unique > 0).map(|t| t * 1e6 / tally.unique as f64);
    println!(
        "  CPU       {}{}",
        cpu.join(", "),
        cpu_per_message.map_or(String::new(), |us| format!(" = {us:.0} µs per delivered message"))
    );
    let rss: Vec<String> = watched
        .iter()
        .enumerate()
        .map(|(i, &(name, pid))| format!("{name} {} → {} KiB", kib(rss_before[i]), kib(measure::rss_kib(pid))))
        .collect();
    println!("  RSS       {} (idle before → after)", rss.join(", "));
    println!(
        "  machine   {} busy over {:.2} s (until the last delivery {:.2} s)",
        measure::busy_percent(machine_before, machine_after).map_or("?".into(), |p| format!("{p:.0}%")),
        measured.as_secs_f64(),
        wall.as_secs_f64()
    );
    if sent.failed > 0 {
        println!("  failed    {} requests: {}", sent.failed, sent.errors.join("; "));
    }
    if tally.unique < sent.accepted {
        return Err(format!("{} accepted messages did not reach the client within 60 s", sent.accepted - tally.unique));
    }
    if sent.failed > 0 {
        return Err(format!("{} requests failed", sent.failed));
    }
    Ok(Row {
        kind,
        load: l.short(),
        accepted,
        delivered,
        e2e: (quantile(&e2e, 0.5), quantile(&e2e, 0.99)),
        cpu_per_message,
    })
}

fn quantiles(sorted: &[Duration]) -> String {
    match (quantile(sorted, 0.5), quantile(sorted, 0.99), sorted.last()) {
        (Some(p50), Some(p99), Some(max)) => {
            format!("p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", ms(p50), ms(p99), ms(*max))
        }
        _ => "none".into(),
    }
}

fn kib(k: Option<u64>) -> String {
    k.map_or("?".into(), |k| k.to_string())
}

/// Each target's figures against the do-nothing component's at the same load.
fn summary(rows: &[Row]) {
    let ceiling = |load: &str| rows.iter().find(|r| r.kind == Kind::Nothing && r.load == load);
    let others: Vec<&Row> = rows.iter().filter(|r| r.kind != Kind::Nothing).collect();
    if others.is_empty() || !rows.iter().any(|r| r.kind == Kind::Nothing) {
        return;
    }
    println!();
    println!("== against the do-nothing component (Prosody's routing ceiling on this machine)");
    println!(
        "{:<11} {:<11} {:>10} {:>10} {:>9} {:>14} {:>14} {:>14}",
        "target", "load", "accepted/s", "delivered", "of max", "e2e p50", "e2e p99", "CPU/message"
    );
    let times = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) if b > Duration::ZERO => {
            format!("{:.2} ms {:>4.1}×", ms(a), a.as_secs_f64() / b.as_secs_f64())
        }
        (Some(a), _) => format!("{:.2} ms", ms(a)),
        _ => "?".into(),
    };
    for r in others {
        let Some(c) = ceiling(&r.load) else { continue };
        let cpu = match (r.cpu_per_message, c.cpu_per_message) {
            (Some(a), Some(b)) if b > 0.0 => format!("{a:.0} µs {:>4.1}×", a / b),
            _ => "?".into(),
        };
        println!(
            "{:<11} {:<11} {:>10.0} {:>10.0} {:>8.0}% {:>14} {:>14} {:>14}",
            r.kind.name(),
            r.load,
            r.accepted,
            r.delivered,
            r.delivered * 100.0 / c.delivered.max(1e-9),
            times(r.e2e.0, c.e2e.0),
            times(r.e2e.1, c.e2e.1),
            cpu
        );
    }
    println!("of max: delivered/s as a share of the do-nothing component's; ×: the target's figure over its.");
    println!("CPU/message: the gateway's and Prosody's CPU time (Prosody's alone for nothing and mod_voipms).");
    println!("Closed loops: the do-nothing component has no answer; each lane waits for its message at the client.");
}
