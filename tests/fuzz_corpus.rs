//! Replays every committed fuzz corpus (tests/fuzz/seeds/TARGET/*) through its target, on the
//! stable toolchain, as part of `cargo test`: inputs that once crashed a parser stay fixed, and
//! the seeds keep exercising each target's paths. Fuzzing itself: tests/fuzz/README.md.

#[path = "fuzz/src/lib.rs"]
mod targets;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the {target} seeds are missing");
    for file in &files {
        let data = std::fs::read(file).expect("read corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", file.display());
    }
}

#[test]
fn framer() {
    replay("framer", targets::framer);
}

#[test]
fn stanza() {
    replay("stanza", targets::stanza);
}

#[test]
fn webhook_json() {
    replay("webhook_json", targets::webhook_json);
}

#[test]
fn voipms_answer() {
    replay("voipms_answer", targets::voipms_answer);
}

#[test]
fn config() {
    replay("config", targets::config);
}

#[test]
fn spool() {
    replay("spool", targets::spool);
}

#[test]
fn http() {
    replay("http", targets::http);
}
