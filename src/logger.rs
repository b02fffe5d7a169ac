//! Log lines: one per event, to stderr, `TIMESTAMP LEVEL message`.
//!
//! The core composes every message (already redacted: numbers by their last four digits, never
//! a body, a secret or a URL); this module stamps and writes them, and escapes every control
//! character in them ([`clean_into`]): values from the network (ids, statuses, reasons) reach
//! log lines, and one with a newline must not be able to forge a second line.

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
    clean_into(out, message);
    out.push('\n');
}

/// Append `text` with control characters escaped: `\n`, `\r`, `\t`, `\\` (so an escape cannot
/// be faked either), and `\u{…}` for other C0/C1 controls, DEL, and the Unicode line and
/// paragraph separators and bidirectional overrides that can make a terminal show a forged
/// line.
pub fn clean_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
}

/// [`clean_into`] a new string.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    clean_into(&mut out, text);
    out
}

/// Write already formatted lines to stderr.
pub fn write(text: &str) {
    if !text.is_empty() {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_value_can_forge_a_line() {
        let mut out = String::new();
        format_into(
            &mut out,
            Level::Info,
            "iq type 'x\n2026-01-01T00:00:00Z ERROR forged' \\n\r\t\u{1b}[31m\u{85}\u{2028}\u{202e}",
        );
        assert_eq!(out.matches('\n').count(), 1, "{out}");
        assert!(
            out.ends_with(
                "iq type 'x\\n2026-01-01T00:00:00Z ERROR forged' \\\\n\\r\\t\\u{1b}[31m\\u{85}\\u{2028}\\u{202e}\n"
            ),
            "{out}"
        );
        assert_eq!(clean("plain text, é 漢 😀"), "plain text, é 漢 😀");
    }
}
