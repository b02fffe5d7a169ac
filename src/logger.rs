//! Log lines: one per event, to stderr, `TIMESTAMP LEVEL message`.
//!
//! The core composes every message (already redacted: numbers by their last four digits, never
//! a body, a secret or a URL); this module only stamps and writes them.

use crate::core::action::Level;
use crate::core::time::rfc3339_utc;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, from the system clock.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Write one line to stderr.
pub fn line(level: Level, message: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{} {level} {message}", rfc3339_utc(wall_ms()));
}
