//! Stanzas owed to XMPP users, kept until the server has provably read them.
//!
//! Holds received SMS/MMS and the errors owed for failed outbound messages, in acceptance order.
//! XEP-0114 has no stream management, so a stanza written just before a connection dies can be
//! lost. An item therefore leaves the spool only after a ping written *after* it was answered on
//! the same stream (the server processes a stream in order; xmpp.md §4). If the stream drops
//! first, every unconfirmed item is written again on the next stream: a duplicate is possible,
//! a loss is not.

use crate::core::action::{Action, Outbox};
use crate::core::spool_record::{Kind, Record};
use crate::core::time::{Now, rfc3339_utc};
use crate::core::xmpp::session::Session;
use crate::core::xmpp::stanza::{ErrorSpec, build};
use std::collections::BTreeMap;

/// Delivered later than this after acceptance, a message carries an XEP-0203 delay stamp.
const DELAY_STAMP_AFTER_MS: u64 = 5_000;

#[derive(Debug)]
struct Item {
    record: Record,
    written: bool,
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
}

impl Mailbox {
    /// Queue a record (inbound message, or outbound with a bounce). `delayed` marks one that
    /// already waited (replayed from the spool); one added while the stream is down becomes
    /// delayed when it is written later.
    pub fn add(&mut self, record: Record, delayed: bool) {
        self.items.insert(record.seq, Item { record, written: false, delayed });
    }

    /// Items waiting or unconfirmed.
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

    /// Write every unwritten item (when online), in order, and make sure a ping covers them.
    pub fn flush(&mut self, now: Now, session: &mut Session, out: &mut Outbox) {
        if !session.is_online() {
            for item in self.items.values_mut() {
                item.delayed = true;
            }
            return;
        }
        let domain = session.domain().to_string();
        for (seq, item) in self.items.iter_mut() {
            if item.written {
                continue;
            }
            for xml in stanzas(&item.record, &domain, now, item.delayed) {
                session.send(xml, out);
            }
            item.written = true;
            self.unpinged.push(*seq);
        }
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

    /// A ping came back: the items it covers are delivered and leave the spool.
    pub fn ping_answered(&mut self, n: u64, now: Now, session: &mut Session, out: &mut Outbox) -> usize {
        let mut done = 0;
        if let Some((p, seqs)) = self.confirming.take() {
            if p == n {
                for seq in seqs {
                    if let Some(item) = self.items.remove(&seq) {
                        out.push_back(Action::SpoolRemove(item.record.id));
                        done += 1;
                    }
                }
            } else {
                self.confirming = Some((p, seqs));
            }
        }
        self.ping_if_needed(now, session, out);
        done
    }

    /// The stream is gone: nothing written on it counts, and everything owed now waits.
    pub fn offline(&mut self) {
        for item in self.items.values_mut() {
            item.written = false;
            item.delayed = true;
        }
        self.unpinged.clear();
        self.confirming = None;
    }
}

/// The stanzas for a record: a received message as one message for the text and one per media
/// URL (body = URL plus OOB, which is what makes Conversations show the picture); an outbound
/// bounce as one message error.
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
            let mut out = Vec::new();
            if !m.text.is_empty() {
                out.push(build::chat(&from, &m.user, &record.id, &m.text, None, delay));
            }
            for (i, url) in m.media.iter().enumerate() {
                out.push(build::chat(&from, &m.user, &format!("{}-m{}", record.id, i + 1), url, Some(url), delay));
            }
            out
        }
        Kind::Outbound => {
            let Some(o) = &record.outbound else {
                return Vec::new();
            };
            let Some(b) = &o.bounce else {
                return Vec::new();
            };
            let error = ErrorSpec::new(&b.condition, &b.error_type, b.text.clone());
            vec![build::message_error(&format!("{}@{domain}", o.contact), &o.sender, o.stanza_id.as_deref(), &error)]
        }
        Kind::Unrouted => Vec::new(),
    }
}
