//! The two kinds of journal line, and the scan of a file's bytes into them.
//!
//! - A record line is `core::spool_record::encode_line`: the record's JSON, a tab, its CRC-32.
//!   It starts with `{`.
//! - A tombstone line says that a record was removed: `-`, the record id (with `%`, tab, newline
//!   and other control characters written `%XX`), a tab, the CRC-32 of everything before the tab,
//!   a newline. It starts with `-`, so the kinds cannot be confused; `decode_line` of a
//!   tombstone fails (its text is not JSON), so it can never be taken for a record.
//!
//! A line is good when its checksum matches (and, in the journal, when it ends with a newline:
//! a line is written whole, newline included, in one `write`, and acknowledged only after the
//! `fdatasync`, so a line without its newline was never acknowledged).

use crate::core::spool_record::{Record, crc32, decode_line};
use std::fmt::Write as _;

/// The first byte of a tombstone line; a record line starts with `{`.
const TOMBSTONE: u8 = b'-';

/// One good line.
#[derive(Debug)]
pub(super) enum Line {
    /// A copy of a record.
    Record(Box<Record>),
    /// The record with this id was removed: copies before this line are dead.
    Tombstone(String),
}

/// The tombstone line for `id`, newline included.
pub(super) fn encode_tombstone(id: &str) -> String {
    let mut body = String::with_capacity(id.len() + 1);
    body.push(char::from(TOMBSTONE));
    for c in id.chars() {
        if c == '%' || c.is_control() {
            let mut utf8 = [0u8; 4];
            for b in c.encode_utf8(&mut utf8).bytes() {
                let _ = write!(body, "%{b:02x}");
            }
        } else {
            body.push(c);
        }
    }
    let sum = crc32(body.as_bytes());
    format!("{body}\t{sum:08x}\n")
}

/// Read a tombstone line (without its newline): the removed id, or `None` when damaged.
pub(super) fn decode_tombstone(line: &str) -> Option<String> {
    let (body, sum) = line.rsplit_once('\t')?;
    if sum.len() != 8 || u32::from_str_radix(sum, 16).ok()? != crc32(body.as_bytes()) {
        return None;
    }
    let escaped = body.strip_prefix(char::from(TOMBSTONE))?.as_bytes();
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut i = 0;
    while i < escaped.len() {
        if escaped[i] == b'%' {
            let hex = std::str::from_utf8(escaped.get(i + 1..i + 3)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            bytes.push(escaped[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes).ok()
}

fn decode(raw: &[u8]) -> Option<Line> {
    let text = std::str::from_utf8(raw).ok()?;
    if raw.first() == Some(&TOMBSTONE) {
        decode_tombstone(text).map(Line::Tombstone)
    } else {
        decode_line(text).ok().map(|r| Line::Record(Box::new(r)))
    }
}

/// Read `bytes` line by line, calling `each(offset, length, line)` for every good line (the
/// length includes its newline, when it has one). Empty lines are skipped. Returns whether some
/// line was damaged: a bad checksum, or, when `newline_required`, a last line without its
/// newline (a torn write). Damage stops nothing: the good lines after it are read too.
pub(super) fn scan(bytes: &[u8], newline_required: bool, mut each: impl FnMut(u64, u32, Line)) -> bool {
    let mut damaged = false;
    let mut start = 0;
    while start < bytes.len() {
        let (end, next, complete) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => (start + i, start + i + 1, true),
            None => (bytes.len(), bytes.len(), false),
        };
        if end > start {
            let line = if complete || !newline_required { decode(&bytes[start..end]) } else { None };
            match line {
                // A line is at most a webhook's worth of JSON (64 KiB), far below u32::MAX.
                Some(line) => each(start as u64, u32::try_from(next - start).unwrap_or(u32::MAX), line),
                None => damaged = true,
            }
        }
        start = next;
    }
    damaged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_round_trip_and_are_never_records() {
        for id in ["b-1", "boot7-123456", "we%ird\tid\nwith\u{7f}controls\u{85}", "", "-"] {
            let line = encode_tombstone(id);
            assert!(line.ends_with('\n') && line.matches('\n').count() == 1, "{line:?}");
            let text = line.trim_end_matches('\n');
            assert_eq!(decode_tombstone(text).as_deref(), Some(id));
            assert!(decode_line(text).is_err(), "a tombstone is not a record: {line:?}");
        }
        let line = encode_tombstone("b-1");
        let flipped = line.replace("b-1", "b-2");
        assert_eq!(decode_tombstone(flipped.trim_end()), None, "the checksum covers the id");
    }

    #[test]
    fn a_scan_keeps_good_lines_and_reports_damage_and_torn_tails() {
        let t1 = encode_tombstone("a");
        let t2 = encode_tombstone("b");
        let mut seen = Vec::new();
        let text = format!("{t1}\ngarbage\n{t2}");
        let damaged = scan(text.as_bytes(), true, |off, len, line| seen.push((off, len, format!("{line:?}"))));
        assert!(damaged);
        assert_eq!(seen.len(), 2);
        assert_eq!((seen[0].0, seen[0].1), (0, t1.len() as u32));
        assert_eq!((seen[1].0, seen[1].1), ((t1.len() + 9) as u64, t2.len() as u32));
        // The same bytes without their last newline: torn, unless newlines are not required.
        let torn = format!("{t1}{}", t2.trim_end());
        let mut n = 0;
        assert!(scan(torn.as_bytes(), true, |_, _, _| n += 1));
        assert_eq!(n, 1);
        let mut n = 0;
        assert!(!scan(torn.as_bytes(), false, |_, _, _| n += 1));
        assert_eq!(n, 2);
    }
}
