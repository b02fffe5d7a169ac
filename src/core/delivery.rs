//! After delivery: the XMPP server's errors for the received messages we delivered to users
//! (RFC 6120 §8.3), so that none is lost silently.
//!
//! A server answers a message for a user it does not know or cannot reach with a
//! `<message type='error'>` that carries our stanza id: the record id, `{id}-m{N}` for a media
//! URL. It may come before the ping that confirms the delivery (the record is still in the
//! mailbox and the spool) or after it (the record has left both), so delivered records are kept
//! a while in memory, bounded by [`RECENT_FOR`] and [`RECENT_MAX`]. Only an error from the
//! record's own user, addressed to the contact JID we sent from, counts: any XMPP user can send
//! an error with a guessed id, but the server stamps its `from`. A `wait` error delivers the
//! record again later, from the spool ([`REDELIVER_BASE`] doubling to [`REDELIVER_CAP`], until
//! [`GIVE_UP_AFTER_MS`] after acceptance); any other error, or a `wait` past that, sets it aside
//! as [`Undeliverable`]. A record is handled once per delivery, whichever of its stanzas the
//! error names. Errors for anything else (our bounces, late-bounce notices) are not acted on.

use crate::core::mailbox::Mailbox;
use crate::core::retry::{Rng, backoff};
use crate::core::spool_record::{FORMAT_VERSION, Kind, Record, Undeliverable};
use crate::core::time::Now;
use crate::core::xmpp::stanza::Message;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a delivered record is remembered. A local server refuses at once; one across s2s
/// answers within its connect timeout (about a minute); ten minutes covers a slow remote server
/// without holding records for long.
pub const RECENT_FOR: Duration = Duration::from_secs(600);
/// At most this many delivered records are remembered (the oldest go first): about 1 MiB, as
/// a record's JSON is a few hundred bytes. Errors from a local server come back within
/// milliseconds, so even a burst of a thousand messages a second keeps each long enough; at a
/// person's pace, [`RECENT_FOR`] is the bound.
pub const RECENT_MAX: usize = 2048;
/// First redelivery after a `wait` error: the server said "later", not "again now".
pub const REDELIVER_BASE: Duration = Duration::from_secs(60);
/// Longest wait between redeliveries.
pub const REDELIVER_CAP: Duration = Duration::from_secs(3600);
/// A message the server keeps deferring is set aside this long after it was accepted: a day, as
/// for sends through a VoIP.ms outage.
pub const GIVE_UP_AFTER_MS: u64 = 24 * 3600 * 1000;

/// What to do about a message error from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not about a delivery we track (an id we did not give or no longer remember, a bounce, a
    /// notice): only logged.
    NotOurs,
    /// About a delivery of ours, but not from its recipient or not about its conversation.
    Forged,
    /// The record already waits for redelivery (the error for its other stanza).
    AlreadyHandled,
    /// Deliver `record` again after `after`; with `rewrite`, it had left the spool and must be
    /// written back first.
    Redeliver {
        /// The record (with a new revision when rewritten).
        record: Box<Record>,
        /// Write it to the spool again.
        rewrite: bool,
        /// When to try again.
        after: Duration,
    },
    /// Set the message aside for the operator; with `spooled`, it is still in the spool (remove
    /// it once the file is durable).
    Undeliverable {
        /// What to write to `state_dir/undeliverable/`.
        file: Box<Undeliverable>,
        /// Still in the spool.
        spooled: bool,
    },
}

#[derive(Debug)]
struct Waiting {
    due: Instant,
    record: Record,
}

/// Delivered records and those waiting to be delivered again.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// Record id → (when its delivery was confirmed, the record as its spool JSON). Kept as
    /// one string, not the parsed record: a third of the memory, and read back only in the rare
    /// case of an error.
    recent: HashMap<String, (Instant, Box<str>)>,
    /// Confirmation order, for eviction by age and count.
    order: VecDeque<(Instant, String)>,
    /// Record id → a record to deliver again.
    waiting: HashMap<String, Waiting>,
    /// Record id → `wait` errors so far (for the back-off).
    deferrals: HashMap<String, u32>,
    /// Messages set aside since the start.
    undeliverable: u64,
}

/// The record id a stanza id of ours names: the id itself, or `{id}-m{N}` for a media URL.
fn record_id(stanza_id: &str) -> &str {
    match stanza_id.rsplit_once("-m") {
        Some((id, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => id,
        _ => stanza_id,
    }
}

/// Whether `m` comes from the user `record` was delivered to and is addressed to the contact
/// JID it came from.
fn addressed_by(record: &Record, m: &Message, domain: &str) -> bool {
    let Some(inbound) = &record.inbound else {
        return false;
    };
    m.from.to_bare().as_str() == inbound.user && m.to.domain() == domain && m.to.local() == Some(&inbound.contact)
}

impl Deliveries {
    /// A received message's delivery was confirmed (and it left the spool): remember it.
    pub fn delivered(&mut self, record: Record, now: Instant) {
        if record.kind() != Kind::Inbound {
            return;
        }
        self.prune(now);
        while self.recent.len() >= RECENT_MAX {
            let Some((at, id)) = self.order.pop_front() else {
                break;
            };
            self.forget_recent(&id, at);
        }
        self.order.push_back((now, record.id.clone()));
        self.recent.insert(record.id.clone(), (now, record.to_json().into_boxed_str()));
    }

    fn forget_recent(&mut self, id: &str, at: Instant) {
        // An id delivered again since has a newer entry: only its own entry removes it.
        if self.recent.get(id).is_some_and(|(t, _)| *t == at) {
            self.recent.remove(id);
            if !self.waiting.contains_key(id) {
                self.deferrals.remove(id);
            }
        }
    }

    fn prune(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < RECENT_FOR {
                break;
            }
            let Some((at, id)) = self.order.pop_front() else {
                break;
            };
            self.forget_recent(&id, at);
        }
    }

    /// The server answered a message with an error: decide, and take the record out of wherever
    /// it was (the mailbox or the recent deliveries) when it is ours.
    pub fn error(&mut self, m: &Message, now: Now, domain: &str, mailbox: &mut Mailbox, rng: &mut Rng) -> Verdict {
        self.prune(now.mono);
        let Some(id) = m.id.as_deref().map(record_id) else {
            return Verdict::NotOurs;
        };
        if let Some(w) = self.waiting.get(id) {
            return if addressed_by(&w.record, m, domain) { Verdict::AlreadyHandled } else { Verdict::Forged };
        }
        let recent: Option<Record>;
        let (record, spooled) = match mailbox.find(id) {
            Some(r) => (r, true),
            None => {
                recent = self.recent.get(id).and_then(|(_, json)| Record::from_json(json).ok());
                match &recent {
                    Some(r) => (r, false),
                    None => return Verdict::NotOurs,
                }
            }
        };
        if record.kind() != Kind::Inbound {
            return Verdict::NotOurs;
        }
        if !addressed_by(record, m, domain) {
            return Verdict::Forged;
        }
        let taken = if spooled {
            mailbox.take(id)
        } else {
            self.recent.remove(id).and_then(|(_, json)| Record::from_json(&json).ok())
        };
        let Some(mut record) = taken else {
            return Verdict::NotOurs;
        };
        let deferrable = m.error_type.as_deref() == Some("wait")
            && now.wall_ms.saturating_sub(record.accepted_ms) < GIVE_UP_AFTER_MS;
        if deferrable {
            let n = self.deferrals.entry(record.id.clone()).or_insert(0);
            let after = backoff(*n, REDELIVER_BASE, REDELIVER_CAP, rng);
            *n += 1;
            if !spooled {
                record.rev += 1;
            }
            self.waiting.insert(record.id.clone(), Waiting { due: now.mono + after, record: record.clone() });
            return Verdict::Redeliver { record: Box::new(record), rewrite: !spooled, after };
        }
        self.deferrals.remove(&record.id);
        let file = Undeliverable {
            v: FORMAT_VERSION,
            condition: m.error_condition.clone().unwrap_or_else(|| "undefined-condition".into()),
            error_type: m.error_type.clone().unwrap_or_default(),
            failed_ms: now.wall_ms,
            record,
        };
        Verdict::Undeliverable { file: Box::new(file), spooled }
    }

    /// Setting a message aside failed (its file could not be written): deliver it again later,
    /// so that a refusal then tries the file once more.
    pub fn retry_later(&mut self, record: Record, now: Instant) {
        self.waiting.insert(record.id.clone(), Waiting { due: now + REDELIVER_BASE, record });
    }

    /// A message's file in `undeliverable/` is durable.
    pub fn set_aside(&mut self) {
        self.undeliverable += 1;
    }

    /// Records whose redelivery is due, in acceptance order.
    pub fn due(&mut self, now: Instant) -> Vec<Record> {
        let ids: Vec<String> = self.waiting.iter().filter(|(_, w)| w.due <= now).map(|(id, _)| id.clone()).collect();
        let mut records: Vec<Record> = ids.iter().filter_map(|id| self.waiting.remove(id)).map(|w| w.record).collect();
        records.sort_by_key(|r| r.seq);
        records
    }

    /// When the next redelivery is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiting.values().map(|w| w.due).min()
    }

    /// Records waiting to be delivered again.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Messages set aside as undeliverable since the start.
    pub fn undeliverable(&self) -> u64 {
        self.undeliverable
    }

    /// Delivered records remembered.
    pub fn remembered(&self) -> usize {
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::spool_record::Inbound;

    fn record(seq: u64) -> Record {
        Record {
            v: FORMAT_VERSION,
            id: format!("b-{seq}"),
            seq,
            rev: 0,
            accepted_ms: 0,
            inbound: Some(Inbound {
                user: "alice@example.com".into(),
                contact: "+15559998888".into(),
                did: "5552345678".into(),
                text: "x".into(),
                media: vec![],
                voipms_id: None,
                mms: false,
                voipms_ms: None,
                group: Vec::new(),
            }),
            outbound: None,
            unrouted: None,
        }
    }

    #[test]
    fn stanza_ids_name_their_record() {
        assert_eq!(record_id("b-7"), "b-7");
        assert_eq!(record_id("b-7-m2"), "b-7");
        assert_eq!(record_id("b-7-n"), "b-7-n", "a notice is not a delivery");
        assert_eq!(record_id("b-7-m"), "b-7-m");
        assert_eq!(record_id("b-7-mx"), "b-7-mx");
    }

    #[test]
    fn remembered_for_a_while_and_at_most_so_many() {
        let start = Instant::now();
        let mut d = Deliveries::default();
        for seq in 0..(RECENT_MAX as u64 + 10) {
            d.delivered(record(seq), start);
        }
        assert_eq!(d.remembered(), RECENT_MAX, "the oldest go first");
        assert!(!d.recent.contains_key("b-0") && d.recent.contains_key(&format!("b-{}", RECENT_MAX + 9)));
        d.delivered(record(99_999), start + RECENT_FOR);
        assert_eq!(d.remembered(), 1, "older than RECENT_FOR: forgotten");
        assert!(d.order.len() <= 1);
    }
}
