//! The outbound queue: users' messages waiting for VoIP.ms, one conversation at a time, with the
//! retry state of each.
//!
//! A conversation is a (DID, destination) pair. Only the head of a conversation is ever in
//! flight, and its parts go one after the other, so texts to one number keep their order (the
//! seed module fired all parts at once and they arrived shuffled); a head that is failing holds
//! its conversation back, never the others. Up to [`MAX_IN_FLIGHT`] calls run at once.
//!
//! A head whose last send got no answer is *verified* before it is sent again: VoIP.ms has no
//! idempotency key, so the queue first asks getSMS/getMMS whether the message went out
//! (voipms.md §4.3).

use crate::core::action::{Action, Outbox};
use crate::core::phone::{Destination, Nanp};
use crate::core::spool_record::{OutPart, Record};
use crate::core::time::{Now, eastern_date};
use crate::core::voipms::api::{Request, Row};
use crate::core::voipms::parts::{Method, Part};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

/// Concurrent VoIP.ms calls. VoIP.ms's per-minute limit is not published; a few at a time keeps
/// one slow conversation from holding up the others without hammering the API.
pub const MAX_IN_FLIGHT: usize = 4;

/// A verified row may be this much older than our attempt (clock skew between us and VoIP.ms).
const VERIFY_SLACK_SECS: i64 = 120;

type Conversation = (String, String);

/// What a call was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Sending the head's next part.
    Send,
    /// Looking up whether a lost send went out.
    Verify,
}

#[derive(Debug)]
struct Entry {
    record: Record,
    /// Waiting for the spool to confirm a state change before the next call.
    syncing: bool,
    /// Not to be tried before this instant (retry back-off).
    not_before: Option<Instant>,
    /// Failed attempts so far (for the back-off).
    attempts: u32,
    /// `sms_failed` was already retried once.
    sms_failed_retried: bool,
    /// The last send got no answer; it started at this wall time (ms). Verify before resending.
    verify_since: Option<u64>,
    /// When the current send started (wall ms).
    started_ms: u64,
}

impl Entry {
    /// Whether the durable record already says a send may be in flight (see `dispatch`).
    fn armed(&self) -> bool {
        self.record.outbound.as_ref().is_some_and(|o| o.unconfirmed_ms.is_some())
    }
}

/// The queue.
#[derive(Debug, Default)]
pub struct OutboundQueue {
    entries: HashMap<u64, Entry>,
    conversations: BTreeMap<Conversation, VecDeque<u64>>,
    in_flight: HashMap<u64, (u64, JobKind)>,
}

fn conversation(record: &Record) -> Conversation {
    let o = record.outbound.as_ref();
    (o.map(|o| o.did.clone()).unwrap_or_default(), o.map(|o| o.dst.clone()).unwrap_or_default())
}

/// How many calls `dispatch` may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// New sends (0 while the daily quota is spent, 1 for the probe after its reset).
    pub sends: usize,
    /// Any call at all (false during a rate-limit pause).
    pub calls: bool,
}

impl OutboundQueue {
    /// Queue a durable outbound record (behind earlier ones to the same conversation).
    pub fn add(&mut self, record: Record) {
        let seq = record.seq;
        let queue = self.conversations.entry(conversation(&record)).or_default();
        // Keep acceptance order even when records arrive out of order (replay).
        let pos = queue.iter().position(|s| *s > seq).unwrap_or(queue.len());
        queue.insert(pos, seq);
        let verify_since = record.outbound.as_ref().and_then(|o| o.unconfirmed_ms);
        self.entries.insert(
            seq,
            Entry {
                record,
                syncing: false,
                not_before: None,
                attempts: 0,
                sms_failed_retried: false,
                verify_since,
                started_ms: 0,
            },
        );
    }

    /// When the oldest message was accepted (wall ms), if there is one.
    pub fn oldest_accepted_ms(&self) -> Option<u64> {
        self.entries.values().map(|e| e.record.accepted_ms).min()
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

    /// Sends in flight.
    pub fn sends_in_flight(&self) -> usize {
        self.in_flight.values().filter(|(_, k)| *k == JobKind::Send).count()
    }

    /// The record of a queued message.
    pub fn record(&self, seq: u64) -> Option<&Record> {
        self.entries.get(&seq).map(|e| &e.record)
    }

    /// Messages queued and not in flight, in acceptance order.
    pub fn idle(&self) -> Vec<u64> {
        let busy: Vec<u64> = self.in_flight.values().map(|(s, _)| *s).collect();
        let mut seqs: Vec<u64> = self.entries.keys().filter(|s| !busy.contains(s)).copied().collect();
        seqs.sort_unstable();
        seqs
    }

    /// Replace a queued record (its state changed) and mark it as waiting for the spool.
    pub fn update(&mut self, record: Record) {
        if let Some(e) = self.entries.get_mut(&record.seq) {
            e.record = record;
            e.syncing = true;
            e.attempts = 0;
            e.sms_failed_retried = false;
            e.verify_since = None;
        }
    }

    /// The spool confirmed the record's latest state.
    pub fn synced(&mut self, seq: u64) {
        if let Some(e) = self.entries.get_mut(&seq) {
            e.syncing = false;
        }
    }

    /// Hold the message back until `at`, counting a failed attempt. Returns the attempt count.
    pub fn retry_at(&mut self, seq: u64, at: Instant) -> u32 {
        match self.entries.get_mut(&seq) {
            Some(e) => {
                e.not_before = Some(at);
                e.attempts += 1;
                e.attempts
            }
            None => 0,
        }
    }

    /// Failed attempts of a message so far.
    pub fn attempts(&self, seq: u64) -> u32 {
        self.entries.get(&seq).map_or(0, |e| e.attempts)
    }

    /// Mark that `sms_failed` was retried once; returns whether it already had been.
    pub fn note_sms_failed(&mut self, seq: u64) -> bool {
        self.entries.get_mut(&seq).is_some_and(|e| std::mem::replace(&mut e.sms_failed_retried, true))
    }

    /// The last send got no answer: look it up before sending again.
    pub fn verify_before_resend(&mut self, seq: u64) {
        if let Some(e) = self.entries.get_mut(&seq) {
            let armed_at = e.record.outbound.as_ref().and_then(|o| o.unconfirmed_ms);
            e.verify_since = Some(armed_at.unwrap_or(e.started_ms).min(e.started_ms.max(1)));
        }
    }

    /// When the message's current send began (wall ms; 0 if it has not).
    pub fn started_ms(&self, seq: u64) -> u64 {
        self.entries.get(&seq).map_or(0, |e| e.started_ms)
    }

    /// The "may be in flight" mark could not be written: forget it, so that the part is armed
    /// again (and only then sent) on the next try.
    pub fn disarm(&mut self, seq: u64) {
        if let Some(e) = self.entries.get_mut(&seq) {
            if let Some(o) = e.record.outbound.as_mut() {
                o.unconfirmed_ms = None;
            }
            e.syncing = false;
        }
    }

    /// Whether the message's last send may have gone out (its answer was lost).
    pub fn unconfirmed(&self, seq: u64) -> bool {
        self.entries.get(&seq).is_some_and(|e| e.verify_since.is_some())
    }

    /// The lookup found nothing: send again.
    pub fn verified_unsent(&mut self, seq: u64) {
        if let Some(e) = self.entries.get_mut(&seq) {
            e.verify_since = None;
        }
    }

    /// Whether `rows` (a getSMS/getMMS answer) hold the head's current part, sent since the lost
    /// attempt started.
    /// `known` tells the ids of messages we sent ourselves (their rows are other messages).
    pub fn was_sent(&self, seq: u64, rows: &[Row], known: &dyn Fn(&str) -> bool) -> bool {
        let Some(e) = self.entries.get(&seq) else {
            return false;
        };
        let Some(o) = e.record.outbound.as_ref() else {
            return false;
        };
        let Some(part) = o.parts.get(o.next_part as usize) else {
            return false;
        };
        let since = (e.verify_since.unwrap_or(e.started_ms) / 1000) as i64 - VERIFY_SLACK_SECS;
        rows.iter()
            .filter(|r| !known(&r.id))
            .any(|r| r.message == part.message && crate::core::time::parse_eastern(&r.date).is_some_and(|t| t >= since))
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

    /// The message and purpose of a finished call.
    pub fn finish(&mut self, job: u64) -> Option<(u64, JobKind)> {
        self.in_flight.remove(&job)
    }

    /// The earliest back-off deadline, for the timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conversations.values().filter_map(|q| q.front()).filter_map(|seq| self.entries.get(seq)?.not_before).min()
    }

    /// Start calls for every conversation whose head is ready, within `allow`. Job numbers come
    /// from `next_job`.
    ///
    /// Before a part is first sent, its record is rewritten saying a send may be in flight
    /// (`unconfirmed_ms`); the send goes out once that is durable. A crash at any moment after
    /// that leaves a record that the next start looks up with getSMS/getMMS before sending
    /// again, so a crash never sends an SMS twice. The returned records are those to write
    /// (the caller reports their sync with [`OutboundQueue::synced`]).
    pub fn dispatch(&mut self, now: Now, allow: Allowance, next_job: &mut u64, out: &mut Outbox) -> Vec<Record> {
        let mut arm = Vec::new();
        // A head whose back-off is over is ready, whether or not it can go now: its deadline is
        // cleared so that the timer does not fire again and again (it waits for a slot, the end
        // of a pause or the quota reset, each of which has its own event).
        for queue in self.conversations.values() {
            if let Some(entry) = queue.front().and_then(|seq| self.entries.get_mut(seq))
                && entry.not_before.is_some_and(|t| now.mono >= t)
            {
                entry.not_before = None;
            }
        }
        if !allow.calls {
            return arm;
        }
        let busy: Vec<u64> = self.in_flight.values().map(|(s, _)| *s).collect();
        let mut sends = self.sends_in_flight();
        for queue in self.conversations.values() {
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                break;
            }
            let Some(seq) = queue.front() else { continue };
            let Some(entry) = self.entries.get_mut(seq) else {
                continue;
            };
            if busy.contains(seq) || entry.syncing || entry.not_before.is_some_and(|t| now.mono < t) {
                continue;
            }
            let (request, kind) = match entry.verify_since {
                Some(since) => (verify_request(&entry.record, since, now), JobKind::Verify),
                None => {
                    if sends >= allow.sends {
                        continue;
                    }
                    if !entry.armed() {
                        if let Some(o) = entry.record.outbound.as_mut() {
                            o.unconfirmed_ms = Some(now.wall_ms);
                            entry.record.rev += 1;
                            entry.syncing = true;
                            arm.push(entry.record.clone());
                        }
                        continue;
                    }
                    (request_for(&entry.record), JobKind::Send)
                }
            };
            let Some(request) = request else { continue };
            entry.not_before = None;
            if kind == JobKind::Send {
                entry.started_ms = now.wall_ms;
                sends += 1;
            }
            *next_job += 1;
            self.in_flight.insert(*next_job, (*seq, kind));
            out.push_back(Action::VoipmsCall { job: *next_job, request });
        }
        arm
    }
}

/// The call for the record's next part.
pub fn request_for(record: &Record) -> Option<Request> {
    let o = record.outbound.as_ref()?;
    let part: &OutPart = o.parts.get(o.next_part as usize)?;
    Some(Request::Send {
        did: Nanp::parse(&o.did)?,
        dst: Destination::parse(&o.dst)?,
        part: Part {
            method: if part.mms { Method::Mms } else { Method::Sms },
            message: part.message.clone(),
            media: part.media.clone(),
        },
    })
}

/// The lookup for a send that got no answer.
fn verify_request(record: &Record, since_ms: u64, now: Now) -> Option<Request> {
    let o = record.outbound.as_ref()?;
    let part = o.parts.get(o.next_part as usize)?;
    let from_secs = (since_ms / 1000) as i64 - VERIFY_SLACK_SECS;
    Some(Request::Sent {
        did: Nanp::parse(&o.did)?,
        contact: Destination::parse(&o.dst)?,
        mms: part.mms,
        from: eastern_date(from_secs),
        to: eastern_date((now.wall_ms / 1000) as i64),
    })
}
