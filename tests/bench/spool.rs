//! Spool figures, by hand: `cargo bench --bench spool` (release settings).
//!
//! - group-commit latency: `apply` of one received message, one after the other (median, p99);
//! - start: `Spool::open` of a spool holding 100,000 received messages of about 400 bytes of
//!   JSON each, timed in a child process that reports its peak resident memory (VmHWM).
//!
//! It uses only the spool's public API, so the same file measures any version of the spool.
//! `SPOOL_BENCH_DIR` chooses where to write (default: the system's temp dir; it must be a real
//! disk for the fsync figures to mean anything).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use voipms_xmpp::core::spool_record::{FORMAT_VERSION, Inbound, Record};
use voipms_xmpp::spool::{Op, Spool};

const COMMITS: usize = 400;
const RECORDS: u64 = 100_000;

fn record(seq: u64) -> Record {
    Record {
        v: FORMAT_VERSION,
        id: format!("bench-{seq}"),
        seq,
        rev: 0,
        accepted_ms: 1_700_000_000_000 + seq,
        inbound: Some(Inbound {
            user: "alice@example.com".into(),
            contact: "+15557654321".into(),
            did: "5552345678".into(),
            text: format!("{seq:08} {}", "a received text message of a typical length, ".repeat(5)),
            media: vec![],
            voipms_id: Some(format!("{}", 900_000_000 + seq)),
            mms: false,
            voipms_ms: None,
            group: Vec::new(),
        }),
        outbound: None,
        unrouted: None,
    }
}

fn base() -> PathBuf {
    std::env::var_os("SPOOL_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn fresh(name: &str) -> PathBuf {
    let d = base().join(format!("voipms-spool-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn commit_latency() {
    let dir = fresh("commit");
    let mut spool = Spool::open(&dir).expect("open").spool;
    let mut times = Vec::with_capacity(COMMITS);
    for seq in 0..COMMITS as u64 {
        let op = Op::Write(Box::new(record(seq)));
        let t = Instant::now();
        spool.apply(vec![op]).expect("apply");
        times.push(t.elapsed());
        // As the daemon does after each commit (off the webhook's path, so not timed).
        spool.tidy(false);
    }
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "commit of one record: median {:.0} µs, p99 {:.0} µs, mean {:.0} µs ({COMMITS} commits)",
        us(times[times.len() / 2]),
        us(times[times.len() * 99 / 100]),
        us(times.iter().sum::<Duration>() / times.len() as u32)
    );
    drop(spool);
    let _ = std::fs::remove_dir_all(&dir);
}

/// In the child: open, report.
fn open_child(dir: &Path) {
    let before = peak_kib();
    let t = Instant::now();
    let opened = Spool::open(dir).expect("open");
    let took = t.elapsed();
    // Received messages are owed to XMPP: the first page is handed over, the rest said to wait.
    let more = opened.more.map_or(0, |(_, count, _)| count);
    assert_eq!(opened.records.len() as u64 + more as u64, RECORDS, "{:?}", opened.warnings);
    println!(
        "open of {RECORDS} records: {:.0} ms, peak resident {} MiB (before open {} MiB)",
        took.as_secs_f64() * 1e3,
        peak_kib() / 1024,
        before / 1024
    );
}

fn open_time() {
    let dir = fresh("open");
    {
        let mut spool = Spool::open(&dir).expect("open").spool;
        for chunk in 0..RECORDS / 1000 {
            let ops = (chunk * 1000..(chunk + 1) * 1000).map(|s| Op::Write(Box::new(record(s)))).collect();
            spool.apply(ops).expect("apply");
            spool.tidy(false);
        }
    }
    let bytes: u64 = walk(&dir.join("spool"));
    println!("spool of {RECORDS} records: {} MiB on disk", bytes >> 20);
    for _ in 0..2 {
        let out = std::process::Command::new(std::env::current_exe().expect("own path"))
            .arg("--open-child")
            .arg(&dir)
            .output()
            .expect("run the child");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() { walk(&p) } else { e.metadata().map_or(0, |m| m.len()) }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--open-child") {
        open_child(Path::new(&args[i + 1]));
        return;
    }
    // `cargo bench` passes `--bench`; anything else naming a filter is ignored.
    commit_latency();
    open_time();
}
