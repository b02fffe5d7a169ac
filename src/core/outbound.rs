//! The outbound queue: users' messages waiting for VoIP.ms, one conversation at a time.
//!
//! A conversation is a (DID, destination) pair. Only the head of a conversation is ever in
//! flight, and its parts go one after the other, so texts to one number keep their order (the
//! seed module fired all parts at once and they arrived shuffled). Different conversations
//! proceed side by side, up to [`MAX_IN_FLIGHT`] calls at once.

use crate::core::action::{Action, Outbox};
use crate::core::phone::Nanp;
use crate::core::spool_record::{OutPart, Record};
use crate::core::voipms::api::Request;
use crate::core::voipms::parts::{Method, Part};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

/// Concurrent VoIP.ms calls. VoIP.ms's per-minute limit is not published; a few at a time keeps
/// one slow conversation from holding up the others without hammering the API.
pub const MAX_IN_FLIGHT: usize = 4;

type Conversation = (String, String);

#[derive(Debug)]
struct Entry {
    record: Record,
    /// Waiting for the spool to confirm a state change before the next call.
    syncing: bool,
    /// Not to be tried before this instant (retry back-off).
    not_before: Option<Instant>,
}

/// The queue.
#[derive(Debug, Default)]
pub struct OutboundQueue {
    entries: HashMap<u64, Entry>,
    conversations: BTreeMap<Conversation, VecDeque<u64>>,
    in_flight: HashMap<u64, u64>,
    next_job: u64,
}

fn conversation(record: &Record) -> Conversation {
    let o = record.outbound.as_ref();
    (
        o.map(|o| o.did.clone()).unwrap_or_default(),
        o.map(|o| o.dst.clone()).unwrap_or_default(),
    )
}

impl OutboundQueue {
    /// Queue a durable outbound record (behind earlier ones to the same conversation).
    pub fn add(&mut self, record: Record) {
        let seq = record.seq;
        let queue = self.conversations.entry(conversation(&record)).or_default();
        // Keep acceptance order even when records arrive out of order (replay).
        let pos = queue.iter().position(|s| *s > seq).unwrap_or(queue.len());
        queue.insert(pos, seq);
        self.entries.insert(
            seq,
            Entry {
                record,
                syncing: false,
                not_before: None,
            },
        );
    }

    /// Messages waiting or in flight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The record of a queued message.
    pub fn record(&self, seq: u64) -> Option<&Record> {
        self.entries.get(&seq).map(|e| &e.record)
    }

    /// Replace a queued record (its state changed) and mark it as waiting for the spool.
    pub fn update(&mut self, record: Record) {
        if let Some(e) = self.entries.get_mut(&record.seq) {
            e.record = record;
            e.syncing = true;
        }
    }

    /// The spool confirmed the record's latest state.
    pub fn synced(&mut self, seq: u64) {
        if let Some(e) = self.entries.get_mut(&seq) {
            e.syncing = false;
        }
    }

    /// Hold the message back until `at`.
    pub fn defer(&mut self, seq: u64, at: Instant) {
        if let Some(e) = self.entries.get_mut(&seq) {
            e.not_before = Some(at);
        }
    }

    /// Take a message out of the queue (sent, or failed for good).
    pub fn remove(&mut self, seq: u64) -> Option<Record> {
        let entry = self.entries.remove(&seq)?;
        let key = conversation(&entry.record);
        if let Some(q) = self.conversations.get_mut(&key) {
            q.retain(|s| *s != seq);
            if q.is_empty() {
                self.conversations.remove(&key);
            }
        }
        Some(entry.record)
    }

    /// The message a finished call belonged to.
    pub fn finish(&mut self, job: u64) -> Option<u64> {
        self.in_flight.remove(&job)
    }

    /// The earliest back-off deadline, for the timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conversations
            .values()
            .filter_map(|q| q.front())
            .filter_map(|seq| self.entries.get(seq)?.not_before)
            .min()
    }

    /// Start calls for every conversation whose head is ready.
    pub fn dispatch(&mut self, now: Instant, out: &mut Outbox) {
        let busy: Vec<u64> = self.in_flight.values().copied().collect();
        for queue in self.conversations.values() {
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                break;
            }
            let Some(seq) = queue.front() else { continue };
            let Some(entry) = self.entries.get_mut(seq) else {
                continue;
            };
            if busy.contains(seq) || entry.syncing || entry.not_before.is_some_and(|t| now < t) {
                continue;
            }
            let Some(request) = request_for(&entry.record) else {
                continue;
            };
            entry.not_before = None;
            self.next_job += 1;
            self.in_flight.insert(self.next_job, *seq);
            out.push_back(Action::VoipmsCall {
                job: self.next_job,
                request,
            });
        }
    }
}

/// The call for the record's next part.
pub fn request_for(record: &Record) -> Option<Request> {
    let o = record.outbound.as_ref()?;
    let part: &OutPart = o.parts.get(o.next_part as usize)?;
    Some(Request::Send {
        did: Nanp::parse(&o.did)?,
        dst: Nanp::parse(&o.dst)?,
        part: Part {
            method: if part.mms { Method::Mms } else { Method::Sms },
            message: part.message.clone(),
            media: part.media.clone(),
        },
    })
}
