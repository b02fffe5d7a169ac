//! Received messages already accepted, so that each reaches its user once: VoIP.ms may deliver
//! a webhook twice, and backfill finds again what the webhook already brought. Also the ids of
//! messages we sent (so that a lookup after a lost answer does not take an earlier identical
//! text for this one), the backfill cursor and the daily-quota state.
//!
//! Keys: VoIP.ms's message id (`sms:ID` / `mms:ID`); the id of a message we sent (`sent:ID`);
//! and, for a message a webhook brought, a fingerprint of sender, DID and text in a one-minute
//! bucket, numbered within it (`fp:HASH:MINUTE:N`), which a backfilled row under another id may
//! *claim* once (`claimed:fp:…`): two identical texts are two messages. A webhook message's id
//! key is linked to its fingerprint (`link:sms:ID>fp:…`), so that its own row, recognised by id,
//! claims that fingerprint and a newer identical row cannot take it. Keys are kept for
//! [`KEEP_MS`]. The shell appends new lines to `state_dir/seen.log` and compacts it when the core
//! asks; `cursor` and `quota` lines hold the backfill cursor and the closed-until time of the
//! daily quota. No I/O here.

use std::collections::HashMap;
use std::fmt::Write as _;

/// How long a key is remembered: longer than any redelivery, and than backfill reaches back
/// ([`crate::core::backfill`] never looks further than 30 days).
pub const KEEP_MS: u64 = 35 * 24 * 3600 * 1000;
/// A backfilled row matches a webhook whose arrival is this close to the row's date.
pub const MATCH_WINDOW_MINUTES: u64 = 10;

/// The set of seen keys.
#[derive(Debug, Default)]
pub struct Seen {
    keys: HashMap<String, u64>,
    cursor_ms: Option<u64>,
    quota_until_ms: Option<u64>,
    /// Lines not yet handed to the shell.
    pending: String,
    /// Lines in the log (to decide when to compact it).
    log_lines: usize,
    /// A webhook message's id key → its fingerprint keys (from the `link:` keys): one per
    /// user it reached (a group MMS reaches every mapped user among its recipients).
    links: HashMap<String, Vec<String>>,
}

/// The key of a received message's VoIP.ms id.
pub fn id_key(mms: bool, id: &str) -> String {
    format!("{}:{id}", if mms { "mms" } else { "sms" })
}

/// The key of the VoIP.ms id of a message we sent.
pub fn sent_key(id: &str) -> String {
    format!("sent:{id}")
}

/// The key that joins a webhook message's id key to its fingerprint key. `>` appears in
/// neither (ids are letters, digits and `-_.:`), so the key splits back unambiguously; a log
/// written before links existed simply has none, and older versions read these lines as plain
/// keys that nothing asks for.
fn link_key(id_key: &str, fingerprint: &str) -> String {
    format!("{LINK_PREFIX}{id_key}>{fingerprint}")
}

/// The prefix of [`link_key`]s.
const LINK_PREFIX: &str = "link:";

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

/// The fingerprint keys' prefix for a message in the minute of `at_ms`.
fn fingerprint_base(from: &str, did: &str, text: &str, minute: u64) -> String {
    format!("fp:{:016x}:{minute}", fnv1a(&[from, did, text]))
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
            match key {
                "cursor" => seen.cursor_ms = Some(seen.cursor_ms.map_or(at, |c| c.max(at))),
                "quota" => seen.quota_until_ms = (at > 0).then_some(at),
                "" => {}
                _ if now_ms.saturating_sub(at) < KEEP_MS => {
                    if let Some((id, fingerprint)) = key.strip_prefix(LINK_PREFIX).and_then(|l| l.split_once('>')) {
                        seen.add_link(id, fingerprint);
                    }
                    seen.keys.insert(key.to_string(), at);
                }
                _ => {}
            }
            seen.log_lines += 1;
        }
        seen
    }

    /// Whether `key` was seen.
    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    /// Remember `key` (seen at `at_ms`). A key that could break the log's line format (a tab,
    /// a newline or another control character, or one of the log's own line names) is refused
    /// and `false` returned: ids are checked where they come in, this is the last defence.
    pub fn insert(&mut self, key: String, at_ms: u64) -> bool {
        if key.is_empty() || key.chars().any(char::is_control) || matches!(key.as_str(), "cursor" | "quota") {
            return false;
        }
        let _ = writeln!(self.pending, "{key}\t{at_ms}");
        self.log_lines += 1;
        self.keys.insert(key, at_ms);
        true
    }

    /// The fingerprint key for one more message with this sender, DID and text in the minute of
    /// `at_ms` (numbered, so that identical texts in one minute stay distinct).
    /// `taken` tells keys already handed out but not yet inserted.
    pub fn new_fingerprint(
        &self,
        from: &str,
        did: &str,
        text: &str,
        at_ms: u64,
        taken: &dyn Fn(&str) -> bool,
    ) -> String {
        let base = fingerprint_base(from, did, text, at_ms / 60_000);
        (0..).map(|n| format!("{base}:{n}")).find(|k| !self.keys.contains_key(k) && !taken(k)).unwrap_or(base)
    }

    /// If a webhook message with this sender, DID and text arrived within the match window of
    /// `at_ms` and no other row claimed it yet, claim it (the row is that message) and say so.
    pub fn claim_fingerprint(&mut self, from: &str, did: &str, text: &str, at_ms: u64, now_ms: u64) -> bool {
        let base = at_ms / 60_000;
        for minute in base.saturating_sub(MATCH_WINDOW_MINUTES)..=base + MATCH_WINDOW_MINUTES {
            let prefix = fingerprint_base(from, did, text, minute);
            for n in 0.. {
                let key = format!("{prefix}:{n}");
                if !self.keys.contains_key(&key) {
                    break;
                }
                let claim = format!("claimed:{key}");
                if !self.keys.contains_key(&claim) {
                    self.insert(claim, now_ms);
                    return true;
                }
            }
        }
        false
    }

    /// Remember that the webhook message with id key `id_key` has fingerprint key `fingerprint`
    /// (one of them, for a group MMS delivered to several users), so that its backfilled row,
    /// recognised by id, claims that fingerprint and no other.
    pub fn link(&mut self, id_key: &str, fingerprint: &str, at_ms: u64) {
        if self.insert(link_key(id_key, fingerprint), at_ms) {
            self.add_link(id_key, fingerprint);
        }
    }

    fn add_link(&mut self, id_key: &str, fingerprint: &str) {
        let linked = self.links.entry(id_key.to_string()).or_default();
        if !linked.iter().any(|f| f == fingerprint) {
            linked.push(fingerprint.to_string());
        }
    }

    /// A backfilled row was recognised by its id key: claim a fingerprint of the webhook message
    /// it is, if one is not yet claimed: the one of the row's own sender, DID and text
    /// (`row`) when there is one (a group MMS has one per user), else the first. Returns
    /// whether it did.
    pub fn claim_linked(&mut self, id_key: &str, row: Option<(&str, &str, &str)>, now_ms: u64) -> bool {
        let Some(linked) = self.links.get(id_key) else {
            return false;
        };
        let open: Vec<&String> = linked
            .iter()
            .filter(|f| self.keys.contains_key(*f) && !self.keys.contains_key(&format!("claimed:{f}")))
            .collect();
        let own = row.map(|(from, did, text)| format!("fp:{:016x}:", fnv1a(&[from, did, text])));
        let Some(fingerprint) = own
            .and_then(|prefix| open.iter().find(|f| f.starts_with(&prefix)).copied())
            .or_else(|| open.first().copied())
        else {
            return false;
        };
        let claim = format!("claimed:{fingerprint}");
        self.insert(claim, now_ms)
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

    /// Until when the daily quota was last known closed, if it was.
    pub fn quota_until(&self) -> Option<u64> {
        self.quota_until_ms
    }

    /// Remember the quota closed until `until_ms` (`None`: open).
    pub fn set_quota_until(&mut self, until_ms: Option<u64>) {
        if self.quota_until_ms != until_ms {
            self.quota_until_ms = until_ms;
            let _ = writeln!(self.pending, "quota\t{}", until_ms.unwrap_or(0));
            self.log_lines += 1;
        }
    }

    /// Whether lines wait to be appended to the log.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// New lines to append to the log, if any.
    pub fn take_pending(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }

    /// Forget expired keys; if the log has grown well past what is live, the whole log to
    /// write in its place.
    pub fn compact(&mut self, now_ms: u64) -> Option<String> {
        self.keys.retain(|_, at| now_ms.saturating_sub(*at) < KEEP_MS);
        let keys = &self.keys;
        self.links.retain(|id, fingerprints| {
            fingerprints.retain(|f| keys.contains_key(&link_key(id, f)));
            !fingerprints.is_empty()
        });
        if self.log_lines <= 2 * self.keys.len() + 1000 {
            return None;
        }
        let mut text = String::new();
        if let Some(c) = self.cursor_ms {
            let _ = writeln!(text, "cursor\t{c}");
        }
        if let Some(q) = self.quota_until_ms {
            let _ = writeln!(text, "quota\t{q}");
        }
        for (key, at) in &self.keys {
            let _ = writeln!(text, "{key}\t{at}");
        }
        self.log_lines = text.lines().count();
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
        let fp = s.new_fingerprint("+15559998888", "5552345678", "hi", 120_000, &|_| false);
        s.insert(fp, 120_000);
        s.set_cursor(5_000);
        s.set_quota_until(Some(9_000));
        let text = s.take_pending().unwrap();
        assert!(s.take_pending().is_none());
        let mut again = Seen::load(&format!("{text}half-written line"), 10_000);
        assert!(again.contains("sms:100"));
        assert!(!again.contains("mms:100"), "SMS and MMS ids are separate");
        assert_eq!(again.cursor(), Some(5_000));
        assert_eq!(again.quota_until(), Some(9_000));
        assert!(!again.claim_fingerprint("+15559998888", "5552345678", "hi!", 120_000, 1), "another text");
        assert!(!again.claim_fingerprint("+15559998888", "5552345678", "hi", 120_000 + 11 * 60_000, 1), "too late");
        assert!(again.claim_fingerprint("+15559998888", "5552345678", "hi", 120_000 + 9 * 60_000, 1));
        assert!(!again.claim_fingerprint("+15559998888", "5552345678", "hi", 120_000, 1), "claimed once only");
        again.set_quota_until(None);
        let text = again.take_pending().unwrap();
        assert_eq!(Seen::load(&text, 10_000).quota_until(), None);
    }

    #[test]
    fn identical_texts_in_one_minute_are_two_messages() {
        let mut s = Seen::default();
        for _ in 0..2 {
            let fp = s.new_fingerprint("+15559998888", "5552345678", "ok", 60_000, &|_| false);
            s.insert(fp, 60_000);
        }
        assert!(s.claim_fingerprint("+15559998888", "5552345678", "ok", 60_000, 1));
        assert!(s.claim_fingerprint("+15559998888", "5552345678", "ok", 60_000, 1));
        assert!(!s.claim_fingerprint("+15559998888", "5552345678", "ok", 60_000, 1), "a third is new");
    }

    #[test]
    fn a_key_cannot_inject_a_line() {
        // Regression (issue 6, defect 9): a key with a newline wrote a `quota` line of its own.
        let mut s = Seen::default();
        s.insert("sms:1\nquota\t99999999999999\nx".into(), 1_000);
        s.insert("sms:2\tcursor".into(), 1_000);
        s.insert("cursor".into(), 1_000);
        s.insert(id_key(false, "3"), 1_000);
        let text = s.take_pending().unwrap_or_default();
        assert_eq!(text, "sms:3\t1000\n", "only the safe key is written");
        let again = Seen::load(&text, 2_000);
        assert_eq!((again.quota_until(), again.cursor(), again.len()), (None, None, 1));
        assert!(!s.contains("sms:1\nquota\t99999999999999\nx"));
    }

    #[test]
    fn a_webhook_id_claims_its_own_fingerprint_once_across_a_reload() {
        // Issue 6, defect 4: a row seen by id claims the fingerprint of its own webhook message.
        let mut s = Seen::default();
        let first = s.new_fingerprint("+15559998888", "5552345678", "ok", 60_000, &|_| false);
        s.insert(first.clone(), 60_000);
        s.link(&id_key(false, "101"), &first, 60_000);
        let second = s.new_fingerprint("+15559998888", "5552345678", "ok", 60_000, &|_| false);
        s.insert(second, 60_000);
        let text = s.take_pending().unwrap();
        // An old log has no link lines; this one loads in both old and new form.
        let mut again = Seen::load(&text, 70_000);
        assert!(again.claim_linked(&id_key(false, "101"), None, 80_000));
        assert!(!again.claim_linked(&id_key(false, "101"), None, 80_000), "once");
        assert!(!again.claim_linked(&id_key(false, "999"), None, 80_000), "no link");
        assert!(again.claim_fingerprint("+15559998888", "5552345678", "ok", 60_000, 80_000), "the other one");
        assert!(!again.claim_fingerprint("+15559998888", "5552345678", "ok", 60_000, 80_000), "none left");
        // Links live as long as the keys they join.
        let compacted = Seen::load(&text, KEEP_MS + 60_001);
        assert!(compacted.is_empty());
    }

    #[test]
    fn a_group_webhook_links_its_id_to_each_users_fingerprint() {
        // One group MMS delivered to alice (DID …5678) and bob (DID …4321).
        let mut s = Seen::default();
        let id = id_key(true, "300");
        let alice = s.new_fingerprint("+15559998888", "5552345678", "hi all", 60_000, &|_| false);
        let bob = s.new_fingerprint("+15559998888", "5557654321", "hi all", 60_000, &|_| false);
        for fp in [&alice, &bob] {
            s.insert(fp.clone(), 60_000);
            s.link(&id, fp, 60_000);
        }
        let mut again = Seen::load(&s.take_pending().unwrap(), 70_000);
        // Bob's DID lists the row under the webhook's id: it claims bob's fingerprint, not alice's.
        assert!(again.claim_linked(&id, Some(("+15559998888", "5557654321", "hi all")), 80_000));
        assert!(again.contains(&format!("claimed:{bob}")) && !again.contains(&format!("claimed:{alice}")));
        // Alice's DID lists it under another id: her fingerprint is still there to claim.
        assert!(again.claim_fingerprint("+15559998888", "5552345678", "hi all", 60_000, 80_000));
        assert!(!again.claim_linked(&id, None, 80_000), "both claimed");
        let kept = again.compact(70_000);
        assert!(kept.is_none() && again.links.get(&id).map(Vec::len) == Some(2));
    }

    #[test]
    fn forgets_after_its_time_and_compacts() {
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
