//! Received messages already accepted, so that each reaches its user once: VoIP.ms may deliver
//! a webhook twice, and backfill finds again what the webhook already brought.
//!
//! Two kinds of key: VoIP.ms's message id (`sms:ID` / `mms:ID`), and a fingerprint of sender,
//! DID and text in a one-minute bucket (`fp:HASH:MINUTE`) for matching a backfilled row to a
//! webhook whose id may differ. Keys are kept for [`KEEP`]. The shell appends new lines to
//! `state_dir/seen.log` before the messages they describe are committed, and compacts it when
//! the core asks; the backfill cursor lives there too (`cursor` line). No I/O here.

use std::collections::HashMap;
use std::fmt::Write as _;

/// How long a key is remembered: far longer than any redelivery or backfill window.
pub const KEEP_MS: u64 = 7 * 24 * 3600 * 1000;
/// A backfilled row matches a webhook whose arrival is this close to the row's date.
pub const MATCH_WINDOW_MINUTES: u64 = 10;

/// The set of seen keys.
#[derive(Debug, Default)]
pub struct Seen {
    keys: HashMap<String, u64>,
    cursor_ms: Option<u64>,
    /// Lines not yet handed to the shell.
    pending: String,
    /// Lines in the log (to decide when to compact it).
    log_lines: usize,
}

/// The key of a VoIP.ms message id.
pub fn id_key(mms: bool, id: &str) -> String {
    format!("{}:{id}", if mms { "mms" } else { "sms" })
}

/// FNV-1a, 64 bits: stable across versions and platforms (unlike std's hasher).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The fingerprint key of a message at `at_ms`.
pub fn fingerprint(from: &str, did: &str, text: &str, at_ms: u64) -> String {
    format!("fp:{:016x}:{}", fnv1a(&[from, did, text]), at_ms / 60_000)
}

impl Seen {
    /// Read the log written by earlier runs, dropping what has expired. Unreadable lines are
    /// skipped (a half-written last line after a crash).
    pub fn load(text: &str, now_ms: u64) -> Seen {
        let mut seen = Seen::default();
        for line in text.lines() {
            let Some((key, at)) = line.split_once('\t') else {
                continue;
            };
            let Ok(at) = at.parse::<u64>() else { continue };
            if key == "cursor" {
                seen.cursor_ms = Some(seen.cursor_ms.map_or(at, |c| c.max(at)));
            } else if !key.is_empty() && now_ms.saturating_sub(at) < KEEP_MS {
                seen.keys.insert(key.to_string(), at);
            }
            seen.log_lines += 1;
        }
        seen
    }

    /// Whether `key` was seen.
    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    /// Whether a message with this fingerprint was seen within the match window of `at_ms`.
    pub fn matches_fingerprint(&self, from: &str, did: &str, text: &str, at_ms: u64) -> bool {
        let base = at_ms / 60_000;
        let window = base.saturating_sub(MATCH_WINDOW_MINUTES)..=base + MATCH_WINDOW_MINUTES;
        window.into_iter().any(|minute| self.keys.contains_key(&fingerprint(from, did, text, minute * 60_000)))
    }

    /// Remember `key` (seen at `at_ms`).
    pub fn insert(&mut self, key: String, at_ms: u64) {
        let _ = writeln!(self.pending, "{key}\t{at_ms}");
        self.log_lines += 1;
        self.keys.insert(key, at_ms);
    }

    /// The backfill cursor: received messages older than this were looked for already.
    pub fn cursor(&self) -> Option<u64> {
        self.cursor_ms
    }

    /// Move the backfill cursor.
    pub fn set_cursor(&mut self, at_ms: u64) {
        self.cursor_ms = Some(at_ms);
        let _ = writeln!(self.pending, "cursor\t{at_ms}");
        self.log_lines += 1;
    }

    /// New lines to append to the log, if any.
    pub fn take_pending(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }

    /// Forget expired keys; if the log has grown well past what is live, the whole log to
    /// write in its place.
    pub fn compact(&mut self, now_ms: u64) -> Option<String> {
        self.keys.retain(|_, at| now_ms.saturating_sub(*at) < KEEP_MS);
        if self.log_lines <= 2 * self.keys.len() + 1000 {
            return None;
        }
        let mut text = String::new();
        if let Some(c) = self.cursor_ms {
            let _ = writeln!(text, "cursor\t{c}");
        }
        for (key, at) in &self.keys {
            let _ = writeln!(text, "{key}\t{at}");
        }
        self.log_lines = self.keys.len() + usize::from(self.cursor_ms.is_some());
        self.pending.clear();
        Some(text)
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_reloads() {
        let mut s = Seen::default();
        s.insert(id_key(false, "100"), 1_000);
        s.insert(fingerprint("+15559998888", "5552345678", "hi", 120_000), 120_000);
        s.set_cursor(5_000);
        let text = s.take_pending().unwrap();
        assert!(s.take_pending().is_none());
        let again = Seen::load(&format!("{text}half-written line"), 10_000);
        assert!(again.contains("sms:100"));
        assert!(!again.contains("mms:100"), "SMS and MMS ids are separate");
        assert_eq!(again.cursor(), Some(5_000));
        assert!(again.matches_fingerprint("+15559998888", "5552345678", "hi", 120_000 + 9 * 60_000));
        assert!(!again.matches_fingerprint("+15559998888", "5552345678", "hi", 120_000 + 11 * 60_000));
        assert!(!again.matches_fingerprint("+15559998888", "5552345678", "hi!", 120_000));
    }

    #[test]
    fn forgets_after_a_week_and_compacts() {
        let mut s = Seen::default();
        for i in 0..3000 {
            s.insert(format!("sms:{i}"), 0);
        }
        s.insert("sms:new".into(), KEEP_MS);
        assert!(s.compact(KEEP_MS + 1).is_some());
        assert!(!s.contains("sms:1") && s.contains("sms:new"));
        assert_eq!(Seen::load("sms:old\t0\n", KEEP_MS).len(), 0);
        assert!(s.compact(KEEP_MS + 2).is_none(), "nothing to gain");
    }
}
