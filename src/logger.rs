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
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Write one line to stderr.
pub fn line(level: Level, message: &str) {
    let mut text = String::new();
    format_into(&mut text, level, message);
    write(&text);
}

/// Append one stamped line to `out` (to write several lines with one system call).
pub fn format_into(out: &mut String, level: Level, message: &str) {
    out.push_str(&rfc3339_utc(wall_ms()));
    out.push(' ');
    out.push_str(&level.to_string());
    out.push(' ');
    out.push_str(message);
    out.push('\n');
}

/// Write already formatted lines to stderr.
pub fn write(text: &str) {
    if !text.is_empty() {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}
