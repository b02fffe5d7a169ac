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
//!
//! Memory: a key is held as 64 bits of its SHA-1 with a 32-bit time and a 32-bit tag (16 bytes a
//! slot, in a sorted vector with no spare room: `table`): a received message costs two slots
//! (its id and its fingerprint, which carries the link and the claim in its tag), about 34
//! bytes. A false match
//! needs two of the keys of 35 days to share 64 bits (about 10^-8 at a million keys). The log
//! holds the same: `#HASH<TAB>MS<TAB>TAG` lines; lines of older logs (the keys themselves,
//! `link:` and `claimed:` keys) are read as well.

mod table;

use std::fmt::Write as _;
use table::Table;

/// How long a key is remembered: longer than any redelivery, and than backfill reaches back
/// ([`crate::core::backfill`] never looks further than 30 days).
pub const KEEP_MS: u64 = 35 * 24 * 3600 * 1000;
/// A backfilled row matches a webhook whose arrival is this close to the row's date.
pub const MATCH_WINDOW_MINUTES: u64 = 10;

/// A fingerprint claimed by a backfilled row (in a slot's tag).
const CLAIMED: u32 = 1 << 31;

/// What is held for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    /// When it was seen, Unix seconds.
    at: u32,
    /// For a fingerprint: [`CLAIMED`], and in the other 31 bits the [`owner`] of the webhook
    /// id that brought it (0: none).
    tag: u32,
}

/// The set of seen keys.
#[derive(Debug, Default)]
pub struct Seen {
    keys: Table,
    cursor_ms: Option<u64>,
    quota_until_ms: Option<u64>,
    /// Lines not yet handed to the shell.
    pending: String,
    /// Lines in the log (to decide when to compact it).
    log_lines: usize,
}

/// The key of a received message's VoIP.ms id.
pub fn id_key(mms: bool, id: &str) -> String {
    format!("{}:{id}", if mms { "mms" } else { "sms" })
}

/// The key of the VoIP.ms id of a message we sent.
pub fn sent_key(id: &str) -> String {
    format!("sent:{id}")
}

/// Prefixes of older logs' link and claim keys (`link:ID-KEY>FINGERPRINT`, `claimed:FINGERPRINT`).
const LINK_PREFIX: &str = "link:";
const CLAIMED_PREFIX: &str = "claimed:";

/// 64 bits of a key's SHA-1: stable across versions and platforms, as the log needs, and no
/// peer can choose a text whose key collides with another's.
fn hash(key: &str) -> u64 {
    let d = crate::core::xmpp::sha1::sha1(key.as_bytes());
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// The 31-bit tag of the id key that brought a fingerprint (never 0).
fn owner(id_key: &str) -> u32 {
    ((hash(id_key) >> 33) as u32).max(1)
}

/// FNV-1a, 64 bits, of a message's sender, DID and text (the fingerprint's middle part).
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

fn secs(ms: u64) -> u32 {
    u32::try_from(ms / 1000).unwrap_or(u32::MAX)
}

impl Seen {
    /// Read the log written by earlier runs, dropping what has expired. Unreadable lines are
    /// skipped (a half-written last line after a crash).
    pub fn load(text: &str, now_ms: u64) -> Seen {
        let mut seen = Seen::default();
        for line in text.lines() {
            let mut fields = line.split('\t');
            let (Some(key), Some(at)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Ok(at) = at.parse::<u64>() else { continue };
            let tag = fields.next().map(str::parse::<u32>);
            seen.log_lines += 1;
            match key {
                "cursor" => seen.cursor_ms = Some(seen.cursor_ms.map_or(at, |c| c.max(at))),
                "quota" => seen.quota_until_ms = (at > 0).then_some(at),
                "" => {}
                _ if now_ms.saturating_sub(at) >= KEEP_MS => {}
                _ => {
                    if let Some(hex) = key.strip_prefix('#') {
                        // This version's line: the whole state of one slot.
                        let (Ok(h), Some(Ok(tag))) = (u64::from_str_radix(hex, 16), tag) else { continue };
                        seen.keys.insert(h, Slot { at: secs(at), tag });
                    } else if let Some((id, fingerprint)) =
                        key.strip_prefix(LINK_PREFIX).and_then(|l| l.split_once('>'))
                    {
                        let owner = owner(id);
                        seen.keys.update(hash(fingerprint), Slot { at: secs(at), tag: 0 }, |slot| {
                            slot.tag = (slot.tag & CLAIMED) | owner;
                        });
                    } else if let Some(fingerprint) = key.strip_prefix(CLAIMED_PREFIX) {
                        seen.keys.update(hash(fingerprint), Slot { at: secs(at), tag: 0 }, |slot| slot.tag |= CLAIMED);
                    } else {
                        seen.keys.update(hash(key), Slot { at: 0, tag: 0 }, |slot| slot.at = slot.at.max(secs(at)));
                    }
                }
            }
        }
        seen
    }

    /// Whether `key` was seen.
    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains(hash(key))
    }

    fn write_slot(&mut self, h: u64, slot: Slot) {
        let _ = writeln!(self.pending, "#{h:016x}\t{}\t{}", u64::from(slot.at) * 1000, slot.tag);
        self.log_lines += 1;
        self.keys.insert(h, slot);
    }

    /// Remember `key` (seen at `at_ms`). A key with a control character, or one of the log's
    /// own line names, is refused and `false` returned: ids are checked where they come in.
    pub fn insert(&mut self, key: String, at_ms: u64) -> bool {
        if key.is_empty() || key.chars().any(char::is_control) || matches!(key.as_str(), "cursor" | "quota") {
            return false;
        }
        let h = hash(&key);
        let tag = self.keys.get(h).map_or(0, |s| s.tag);
        self.write_slot(h, Slot { at: secs(at_ms), tag });
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
        (0..).map(|n| format!("{base}:{n}")).find(|k| !self.contains(k) && !taken(k)).unwrap_or(base)
    }

    /// The fingerprints held for this sender, DID and text within the match window of `at_ms`,
    /// with their slots.
    fn candidates(&self, from: &str, did: &str, text: &str, at_ms: u64) -> Vec<(u64, Slot)> {
        let base = at_ms / 60_000;
        let mut found = Vec::new();
        for minute in base.saturating_sub(MATCH_WINDOW_MINUTES)..=base + MATCH_WINDOW_MINUTES {
            let prefix = fingerprint_base(from, did, text, minute);
            for n in 0.. {
                let h = hash(&format!("{prefix}:{n}"));
                let Some(slot) = self.keys.get(h) else { break };
                found.push((h, slot));
            }
        }
        found
    }

    fn claim(&mut self, h: u64, slot: Slot) {
        self.write_slot(h, Slot { at: slot.at, tag: slot.tag | CLAIMED });
    }

    /// If a webhook message with this sender, DID and text arrived within the match window of
    /// `at_ms` and no other row claimed it yet, claim it (the row is that message) and say so.
    /// One that no webhook id owns goes first: an owned one is more likely its own row's.
    pub fn claim_fingerprint(&mut self, from: &str, did: &str, text: &str, at_ms: u64, _now_ms: u64) -> bool {
        let mut open: Vec<(u64, Slot)> =
            self.candidates(from, did, text, at_ms).into_iter().filter(|(_, s)| s.tag & CLAIMED == 0).collect();
        open.sort_by_key(|(_, s)| s.tag != 0);
        match open.first() {
            Some(&(h, slot)) => {
                self.claim(h, slot);
                true
            }
            None => false,
        }
    }

    /// Remember that the webhook message with id key `id_key` has fingerprint key `fingerprint`,
    /// so that its backfilled row, recognised by id, claims that fingerprint and no other.
    pub fn link(&mut self, id_key: &str, fingerprint: &str, at_ms: u64) {
        let h = hash(fingerprint);
        let slot = self.keys.get(h).unwrap_or(Slot { at: secs(at_ms), tag: 0 });
        self.write_slot(h, Slot { at: slot.at, tag: (slot.tag & CLAIMED) | owner(id_key) });
    }

    /// A backfilled row (this sender, DID, text and date) was recognised by its id key: claim
    /// the fingerprint of the webhook message it is, if it has one not yet claimed.
    pub fn claim_linked(&mut self, id_key: &str, from: &str, did: &str, text: &str, at_ms: u64) -> bool {
        let mine = owner(id_key);
        let own = self.candidates(from, did, text, at_ms).into_iter().find(|(_, s)| s.tag & !CLAIMED == mine);
        match own {
            Some((h, slot)) if slot.tag & CLAIMED == 0 => {
                self.claim(h, slot);
                true
            }
            _ => false,
        }
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
        let now = secs(now_ms);
        let keep = secs(KEEP_MS);
        self.keys.retain(|slot| now.saturating_sub(slot.at) < keep);
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
        for (h, slot) in self.keys.iter() {
            let _ = writeln!(text, "#{h:016x}\t{}\t{}", u64::from(slot.at) * 1000, slot.tag);
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
        self.keys.len() == 0
    }

    /// Bytes the table takes, for the benchmarks.
    pub fn table_bytes(&self) -> usize {
        self.keys.bytes()
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
        assert_eq!(text.lines().count(), 1, "only the safe key is written: {text}");
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
        let row =
            |id: &str, s: &mut Seen| s.claim_linked(&id_key(false, id), "+15559998888", "5552345678", "ok", 60_000);
        assert!(row("101", &mut again));
        assert!(!row("101", &mut again), "once");
        assert!(!row("999", &mut again), "no link");
        assert!(again.claim_fingerprint("+15559998888", "5552345678", "ok", 60_000, 80_000), "the other one");
        assert!(!again.claim_fingerprint("+15559998888", "5552345678", "ok", 60_000, 80_000), "none left");
        // Links live as long as the keys they join.
        let compacted = Seen::load(&text, KEEP_MS + 60_001);
        assert!(compacted.is_empty());
    }

    #[test]
    fn a_group_webhook_links_its_id_to_each_users_fingerprint() {
        // One group MMS delivered to alice (DID …5678) and bob (DID …4321): one id, two
        // fingerprints, each linked to it.
        let mut s = Seen::default();
        let id = id_key(true, "300");
        for did in ["5552345678", "5557654321"] {
            let fp = s.new_fingerprint("+15559998888", did, "hi all", 60_000, &|_| false);
            s.insert(fp.clone(), 60_000);
            s.link(&id, &fp, 60_000);
        }
        let mut again = Seen::load(&s.take_pending().unwrap(), 70_000);
        // Bob's DID lists the row under the webhook's id: it claims bob's fingerprint only.
        assert!(again.claim_linked(&id, "+15559998888", "5557654321", "hi all", 60_000));
        assert!(!again.claim_linked(&id, "+15559998888", "5557654321", "hi all", 60_000), "once");
        // Alice's copy is still there, for her DID's row (by id, or under another id).
        assert!(again.claim_fingerprint("+15559998888", "5552345678", "hi all", 60_000, 80_000));
        assert!(!again.claim_linked(&id, "+15559998888", "5552345678", "hi all", 60_000), "claimed");
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

    #[test]
    fn logs_of_the_string_format_still_load() {
        // What versions before the hashed slots wrote: the keys themselves.
        let fp = format!("{}:0", fingerprint_base("+15559998888", "5552345678", "ok", 1));
        let old = format!(
            "cursor\t5000\nsms:100\t60000\nsent:7\t60000\n{fp}\t60000\nlink:sms:100>{fp}\t60000\nclaimed:{fp}\t61000\n"
        );
        let mut s = Seen::load(&old, 70_000);
        assert_eq!(s.cursor(), Some(5_000));
        assert!(s.contains("sms:100") && s.contains("sent:7") && s.contains(&fp));
        assert_eq!(s.len(), 3, "link and claim lines fold into the fingerprint's slot");
        assert!(!s.claim_fingerprint("+15559998888", "5552345678", "ok", 60_000, 80_000), "already claimed");
        // And the hashed form round-trips, tag included.
        s.link("sms:200", &fp, 60_000);
        let again = Seen::load(&s.compact(KEEP_MS / 2).unwrap_or_else(|| s.take_pending().unwrap()), 70_000);
        assert!(again.contains(&fp));
    }

    #[test]
    fn a_remembered_message_costs_well_under_64_bytes() {
        let mut seen = Seen::default();
        let now = 1_753_000_000_000;
        let n = 100_000u64;
        for i in 0..n {
            let id = id_key(false, &i.to_string());
            let fp = seen.new_fingerprint("5559998888", "5552345678", &format!("text {i}"), now, &|_| false);
            assert!(seen.insert(id.clone(), now) && seen.insert(fp.clone(), now));
            seen.link(&id, &fp, now);
        }
        assert_eq!(seen.len(), 2 * n as usize);
        let per_message = seen.table_bytes() as u64 / n;
        assert!(per_message <= 40, "{per_message} bytes a message");
        assert!(seen.contains(&id_key(false, "0")) && seen.contains(&id_key(false, &(n - 1).to_string())));
    }
}
