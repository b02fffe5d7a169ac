//! Stanzas owed to XMPP users, kept until the server has provably read them.
//!
//! Holds received SMS/MMS, the errors owed for failed outbound messages and the XEP-0184
//! receipts owed for sent ones (`core::receipts`), in acceptance order.
//! XEP-0114 has no stream management, so a stanza written just before a connection dies can be
//! lost. An item therefore leaves the spool only after a ping written *after* it was answered on
//! the same stream (the server processes a stream in order; xmpp.md §4). If the stream drops
//! first, every unconfirmed item is written again on the next stream: a duplicate is possible,
//! a loss is not.
//!
//! Flow control: at most [`WINDOW_BYTES`] are written and not yet confirmed on a stream; the
//! rest waits for the next ping answer. A backlog (after an outage) then goes out at the pace
//! the server reads, and never piles up in the gateway's write queue, which drops a stream that
//! stops reading (`xmpp_conn::MAX_QUEUED_BYTES`).
//!
//! Paging: at most [`HOLD_MAX`] records are held in memory. A durable record that finds the
//! mailbox full (a backlog during an XMPP outage, or at start) stays only in the spool, and so
//! does every later one, so that what is held is always a prefix of the sequence order; when
//! fewer than [`REFILL_AT`] are held, the mailbox asks the spool for the next ones in order
//! ([`Action::SpoolPage`]). A backlog of any size is delivered in order, in bounded memory.
//!
//! A bounce that comes late (a minute after acceptance, or from an earlier run) goes to the full
//! JID that sent the message *and*, as a chat notice naming the message, to the user's bare JID:
//! servers drop errors for departed resources but store chats offline.

use crate::core::action::{Action, Outbox};
use crate::core::addresses;
use crate::core::receipts;
use crate::core::spool_record::{Bounce, Kind, Outbound, Record};
use crate::core::time::{Now, rfc3339_utc};
use crate::core::xmpp::session::Session;
use crate::core::xmpp::stanza::{ErrorSpec, build};
use std::collections::BTreeMap;

/// Delivered later than this after acceptance, a message carries an XEP-0203 delay stamp.
const DELAY_STAMP_AFTER_MS: u64 = 5_000;
/// Stanza bytes written and not yet confirmed by a ping answer, at most. One ping round trip
/// on a local server is well under a millisecond, so this is no limit on speed; it is a quarter
/// of the write queue's bound, so that a backlog never looks like a server that stopped reading.
pub const WINDOW_BYTES: usize = 1024 * 1024;
/// Records held in memory at most (a few hundred bytes each); the rest wait in the spool.
pub const HOLD_MAX: usize = 1024;
/// Fewer held than this, and records wait in the spool: ask for the next ones.
pub const REFILL_AT: usize = HOLD_MAX / 4;

#[derive(Debug)]
struct Item {
    record: Record,
    written: bool,
    /// Bytes of its stanzas on the current stream, while written and unconfirmed.
    bytes: usize,
    /// Could not go out at once (came from the spool at start, or waited for the stream):
    /// always stamped.
    delayed: bool,
}

/// The XMPP-bound queue.
#[derive(Debug, Default)]
pub struct Mailbox {
    items: BTreeMap<u64, Item>,
    /// Written, not yet covered by a ping.
    unpinged: Vec<u64>,
    /// The ping in flight and the items it will confirm.
    confirming: Option<(u64, Vec<u64>)>,
    /// Bytes written on this stream and not yet confirmed ([`WINDOW_BYTES`] at most).
    in_flight: usize,
    /// No unwritten item has a lower sequence number (where `flush` starts looking).
    unwritten_from: u64,
    /// Records from this sequence number on wait in the spool, not held.
    paged_from: Option<u64>,
    /// Records left in the spool, not held (as far as this run knows).
    paged: usize,
    /// A page was asked for and not yet answered; and whether a record was left in the spool
    /// since it was asked for (the answer then cannot say that nothing more waits).
    asked: Option<bool>,
}

impl Mailbox {
    /// Queue a record (inbound message, or outbound with a bounce). `delayed` marks one that
    /// already waited (replayed from the spool); one added while the stream is down becomes
    /// delayed when it is written later.
    pub fn add(&mut self, record: Record, delayed: bool) {
        self.unwritten_from = self.unwritten_from.min(record.seq);
        self.items.insert(record.seq, Item { record, written: false, bytes: 0, delayed });
    }

    /// Hold a durable record (or one about to be), unless records already wait in the spool
    /// or the mailbox is full: then it waits in the spool too, and `false` is returned. A
    /// record that is not yet durable and not held must be durable before it is forgotten (the
    /// caller answers its webhook only then).
    pub fn offer(&mut self, record: Record, delayed: bool) -> bool {
        let behind = self.paged_from.is_some_and(|from| record.seq >= from);
        if behind || self.items.len() >= HOLD_MAX {
            self.leave_in_spool(record.seq, 1);
            return false;
        }
        self.add(record, delayed);
        true
    }

    /// `count` durable records, from sequence number `seq` on, are not held: they wait in the
    /// spool.
    pub fn leave_in_spool(&mut self, seq: u64, count: usize) {
        self.paged_from = Some(self.paged_from.map_or(seq, |from| from.min(seq)));
        self.paged += count;
        if let Some(since) = self.asked.as_mut() {
            *since = true;
        }
    }

    /// Ask the spool for the next records, if some wait there and there is room.
    fn refill(&mut self, out: &mut Outbox) {
        if let Some(from) = self.paged_from
            && self.asked.is_none()
            && self.items.len() < REFILL_AT
        {
            self.asked = Some(false);
            out.push_back(Action::SpoolPage { from_seq: from, max: HOLD_MAX - self.items.len() });
        }
    }

    /// The spool's answer to [`Action::SpoolPage`]: up to `max` records, in order, from the
    /// sequence number asked for. Records already held (a bounce written meanwhile) are not
    /// taken twice.
    pub fn paged_in(&mut self, records: Vec<Record>, max: usize) {
        let left_meanwhile = self.asked.take().unwrap_or(true);
        let full = records.len() >= max;
        let last = records.last().map(|r| r.seq);
        self.paged = self.paged.saturating_sub(records.len());
        for record in records {
            if !self.items.contains_key(&record.seq) {
                self.add(record, true);
            }
        }
        self.paged_from = match (last, full || left_meanwhile) {
            // Everything that waited is held now.
            (_, false) => None,
            (Some(seq), true) => Some(seq + 1),
            (None, true) => self.paged_from,
        };
        if self.paged_from.is_none() {
            self.paged = 0;
        }
    }

    /// The page asked for could not be read: ask again at the next flush (the next delivery
    /// or event, not in a loop).
    pub fn page_failed(&mut self) {
        self.asked = None;
    }

    /// Records waiting in the spool, not held.
    pub fn paged(&self) -> usize {
        self.paged
    }

    /// When the oldest item was accepted (wall ms), if there is one.
    pub fn oldest_accepted_ms(&self) -> Option<u64> {
        self.items.values().map(|i| i.record.accepted_ms).min()
    }

    /// Items held, waiting or unconfirmed (see [`Mailbox::paged`] for the rest).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is owed.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether something was written on the current stream and is not yet confirmed.
    pub fn awaiting_confirmation(&self) -> bool {
        self.confirming.is_some() || !self.unpinged.is_empty()
    }

    /// Write unwritten items (when online), in order, as far as the window allows, and make
    /// sure a ping covers them.
    pub fn flush(&mut self, now: Now, session: &mut Session, out: &mut Outbox) {
        self.refill(out);
        if !session.is_online() {
            for item in self.items.values_mut() {
                item.delayed = true;
            }
            return;
        }
        let domain = session.domain().to_string();
        let mut next = None;
        for (seq, item) in self.items.range_mut(self.unwritten_from..) {
            if item.written {
                continue;
            }
            if self.in_flight >= WINDOW_BYTES {
                next = Some(*seq);
                break;
            }
            for xml in stanzas(&item.record, &domain, now, item.delayed) {
                item.bytes += xml.len();
                session.send(xml, out);
            }
            self.in_flight += item.bytes;
            item.written = true;
            self.unpinged.push(*seq);
        }
        self.unwritten_from = next.unwrap_or(u64::MAX);
        self.ping_if_needed(now, session, out);
    }

    fn ping_if_needed(&mut self, now: Now, session: &mut Session, out: &mut Outbox) {
        if self.confirming.is_none()
            && !self.unpinged.is_empty()
            && let Some(n) = session.ping(now.mono, out)
        {
            self.confirming = Some((n, std::mem::take(&mut self.unpinged)));
        }
    }

    /// A ping came back: the items it covers are delivered and leave the spool. Returns their
    /// records (the server may still answer one with an error: see `core::delivery`).
    pub fn ping_answered(&mut self, n: u64, now: Now, session: &mut Session, out: &mut Outbox) -> Vec<Record> {
        let mut done = Vec::new();
        if let Some((p, seqs)) = self.confirming.take() {
            if p == n {
                for seq in seqs {
                    if let Some(item) = self.items.remove(&seq) {
                        self.in_flight = self.in_flight.saturating_sub(item.bytes);
                        out.push_back(Action::SpoolRemove(item.record.id.clone()));
                        done.push(item.record);
                    }
                }
            } else {
                self.confirming = Some((p, seqs));
            }
        }
        // Room in the window again: what waited goes out now (and more is read from the spool).
        self.flush(now, session, out);
        done
    }

    /// The record with this id, if it is owed (written or not).
    pub fn find(&self, id: &str) -> Option<&Record> {
        self.items.values().map(|i| &i.record).find(|r| r.id == id)
    }

    /// Take the record with this id out (the server refused its delivery); it stays in the
    /// spool, and no ping answer confirms it any more.
    pub fn take(&mut self, id: &str) -> Option<Record> {
        let seq = self.items.iter().find(|(_, i)| i.record.id == id).map(|(seq, _)| *seq)?;
        self.unpinged.retain(|s| *s != seq);
        if let Some((_, seqs)) = self.confirming.as_mut() {
            seqs.retain(|s| *s != seq);
        }
        let item = self.items.remove(&seq)?;
        if item.written {
            self.in_flight = self.in_flight.saturating_sub(item.bytes);
        }
        Some(item.record)
    }

    /// The stream is gone: nothing written on it counts, and everything owed now waits.
    pub fn offline(&mut self) {
        for item in self.items.values_mut() {
            item.written = false;
            item.bytes = 0;
            item.delayed = true;
        }
        self.unpinged.clear();
        self.confirming = None;
        self.in_flight = 0;
        self.unwritten_from = 0;
    }
}

/// The stanzas for a record: a received message as one message for the text and one per media
/// URL (body = URL plus OOB, which is what makes Conversations show the picture); an outbound
/// bounce as one message error; a sent message as its receipt.
fn stanzas(record: &Record, domain: &str, now: Now, delayed: bool) -> Vec<String> {
    match record.kind() {
        Kind::Inbound => {
            let Some(m) = &record.inbound else {
                return Vec::new();
            };
            let from = format!("{}@{domain}", m.contact);
            // When VoIP.ms's own time is known (backfill), it is the stamp; else our acceptance.
            let received = m.voipms_ms.unwrap_or(record.accepted_ms);
            let late = now.wall_ms.saturating_sub(received) > DELAY_STAMP_AFTER_MS;
            let stamp = (delayed || late || m.voipms_ms.is_some()).then(|| rfc3339_utc(received));
            let delay = stamp.as_deref().map(|s| (s, domain));
            // A group MMS: every stanza of it names the group (XEP-0033), so that each lands in it.
            let group = (!m.group.is_empty()).then(|| addresses::group(&m.user, &m.group));
            let mut out = Vec::new();
            if !m.text.is_empty() {
                out.push(build::chat(&from, &m.user, &record.id, &m.text, group.as_ref(), None, delay));
            }
            for (i, url) in m.media.iter().enumerate() {
                let id = format!("{}-m{}", record.id, i + 1);
                out.push(build::chat(&from, &m.user, &id, url, group.as_ref(), Some(url), delay));
            }
            out
        }
        Kind::Outbound => {
            let Some(o) = &record.outbound else {
                return Vec::new();
            };
            let Some(b) = &o.bounce else {
                // Sent: the receipt, if one is owed.
                return receipts::stanza(record, domain).into_iter().collect();
            };
            let error = ErrorSpec::new(&b.condition, &b.error_type, b.text.clone());
            let from = format!("{}@{domain}", o.contact);
            let mut out = vec![build::message_error(&from, &o.sender, o.stanza_id.as_deref(), &error)];
            if b.notice {
                let bare = o.sender.split('/').next().unwrap_or(&o.sender);
                out.push(build::chat(&from, bare, &format!("{}-n", record.id), &notice_text(o, b), None, None, None));
            }
            out
        }
        Kind::Unrouted => Vec::new(),
    }
}

/// A bounce this long after the message was accepted is *late*: the sending resource has often
/// gone (a phone app closed, a laptop asleep), and servers drop an error addressed to a departed
/// resource. Late bounces also go to the bare JID as a chat notice, which servers store offline
/// and archive. A minute is past every prompt failure (a refusal, a permanent VoIP.ms status,
/// the `sms_failed` retry after 30 s), which need no notice: the client shows those errors.
pub const LATE_BOUNCE_AFTER_MS: u64 = 60_000;

/// The notice quotes this many characters of the message, so that the user knows which one.
const EXCERPT_CHARS: usize = 40;

/// Whether a bounce for `record` now is late ([`LATE_BOUNCE_AFTER_MS`]), or comes from an
/// earlier run of the gateway (its id does not carry this run's `boot`): the resource that sent
/// it then cannot be counted on.
pub fn is_late(record: &Record, now_ms: u64, boot: &str) -> bool {
    let earlier_run = record.id.strip_prefix(boot).is_none_or(|rest| !rest.starts_with('-'));
    earlier_run || now_ms.saturating_sub(record.accepted_ms) >= LATE_BOUNCE_AFTER_MS
}

/// The first words of `text`, on one line: at most [`EXCERPT_CHARS`] characters, cut after a
/// whole word when that keeps at least half of them, with `…` when something was cut.
fn excerpt(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let line = words.join(" ");
    if line.chars().count() <= EXCERPT_CHARS {
        return line;
    }
    let cut: String = line.chars().take(EXCERPT_CHARS + 1).collect();
    let head = match cut.rfind(' ') {
        Some(i) if cut[..i].chars().count() >= EXCERPT_CHARS / 2 => cut[..i].to_string(),
        _ => cut.chars().take(EXCERPT_CHARS).collect(),
    };
    format!("{}…", head.trim_end())
}

/// The chat notice of a late bounce: which message, and why it was not sent.
fn notice_text(o: &Outbound, b: &Bounce) -> String {
    let text: String = o.parts.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join(" ");
    let which = match excerpt(&text) {
        e if e.is_empty() => "(an attachment)".to_string(),
        e => format!("“{e}”"),
    };
    format!("Your message {which} was not sent: {}", b.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_the_first_words() {
        assert_eq!(excerpt("hi"), "hi");
        assert_eq!(excerpt("  two\n\nlines  "), "two lines");
        assert_eq!(
            excerpt("Running late, see you at the station at eight instead of seven"),
            "Running late, see you at the station at…"
        );
        // Cut on characters, never inside one; a word too long for the excerpt is cut too.
        assert_eq!(excerpt(&"é".repeat(50)), format!("{}…", "é".repeat(40)));
        assert_eq!(excerpt(&format!("a {}", "😀".repeat(60))), format!("a {}…", "😀".repeat(38)));
        assert_eq!(excerpt(""), "");
    }
}
