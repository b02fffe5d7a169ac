//! The gateway: one state machine that owns the XMPP session, the outbound queue, the mailbox,
//! backfill and the seen set, and turns [`Input`]s into [`Action`]s.
//!
//! Life of a received SMS: webhook (or backfill) → seen? → [`Record`] → `SpoolWrite` →
//! `SpoolSynced` → `200 ok` → mailbox → stanzas → ping answered → `SpoolRemove`. Life of a sent
//! one: stanza → router → `SpoolWrite` → `SpoolSynced` → outbound queue → `VoipmsCall` per part
//! (the record is rewritten after each part) → `SpoolRemove`, or a bounce owed to the sender.
//! Every VoIP.ms failure is classified (`voipms::api`): transient ones are retried with back-off
//! until `voipms.retry_for_secs`, a send whose answer is not VoIP.ms's verdict (none, 5xx,
//! garbage) is looked up before any resend, the daily quota closes sending until midnight US
//! Eastern, the rest bounce at once (docs/reliability.md).
//!
//! This file holds the state, the inputs and the dispatch; `received` handles received messages
//! (webhooks, backfill, the server's delivery errors), `sending` users' messages to VoIP.ms and
//! `durable` what follows the spool's answers. Each protocol the gateway speaks has its own
//! module (`core::iq`, `disco`, `gateway_prompt`, `presence`, `receipts`, `addresses`); this
//! file only dispatches to them.

mod durable;
mod received;
mod sending;

use durable::{Arrival, Pending};

use crate::core::action::{Action, Input, Level, Outbox, WebhookReply, log};
use crate::core::backfill::{Backfill, Found, Progress};
use crate::core::config::Config;
use crate::core::delivery::{Deliveries, Verdict};
use crate::core::iq;
use crate::core::mailbox::{self, Mailbox};
use crate::core::metrics::{self, Counters, Gauges};
use crate::core::outbound::{Allowance, JobKind, OutboundQueue};
use crate::core::phone::{Destination, Nanp, Sender, redact};
use crate::core::presence;
use crate::core::quota::Quota;
use crate::core::receipts;
use crate::core::retry::{Rng, backoff};
use crate::core::router::{self, Route};
use crate::core::seen::{Seen, id_key, sent_key};
use crate::core::spool_record::{
    Bounce, FORMAT_VERSION, Inbound, Kind, OutPart, Outbound, Record, Undeliverable, Unrouted,
};
use crate::core::time::Now;
use crate::core::voipms::api::{self, Answer, CallOutcome, Failure, FailureClass, Row, classify};
use crate::core::voipms::parts::Method;
use crate::core::voipms::webhook::InboundMessage;
use crate::core::xmpp::element::Element;
use crate::core::xmpp::jid::Jid;
use crate::core::xmpp::ns;
use crate::core::xmpp::session::{Session, SessionEvent};
use crate::core::xmpp::stanza::{ErrorSpec, Message, MessageType, Stanza, build};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// New seen-log lines wait at most this long for other spool work to travel with.
const SEEN_FLUSH_AFTER: Duration = Duration::from_millis(500);
/// How often the seen set is checked for expired keys.
const SEEN_COMPACT_EVERY: Duration = Duration::from_secs(3600);

/// Counts for logs and health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Stanzas owed to XMPP users (received messages and bounces).
    pub to_xmpp: usize,
    /// Messages waiting for VoIP.ms.
    pub to_voipms: usize,
    /// Whether the component is online.
    pub online: bool,
    /// Received messages the XMPP server refused to deliver, set aside in
    /// `state_dir/undeliverable/` since the start.
    pub undeliverable: u64,
}

/// The sans-IO gateway.
#[derive(Debug)]
pub struct Gateway {
    config: Config,
    session: Session,
    rng: Rng,
    boot: String,
    next_seq: u64,
    next_job: u64,
    out: Outbox,
    mailbox: Mailbox,
    /// Delivered messages the server may still refuse, and those to deliver again.
    deliveries: Deliveries,
    outbound: OutboundQueue,
    backfill: Backfill,
    seen: Seen,
    /// Keys of messages being written, and the record that carries them (the first record of
    /// an arrival).
    pending_keys: HashMap<String, String>,
    /// Received messages being written, by number.
    arrivals: HashMap<u64, Arrival>,
    next_arrival: u64,
    pending: HashMap<String, Pending>,
    quota: Quota,
    paused_until: Option<Instant>,
    /// Operator errors already logged at error level (once per cause until a send succeeds).
    operator_logged: HashSet<String>,
    next_seen_compact: Option<Instant>,
    /// When pending seen-log lines must go out at the latest.
    seen_flush_at: Option<Instant>,
    /// Records found by backfill and not yet durable; the cursor waits for them.
    backfill_pending: HashSet<String>,
    /// The cursor to move to once `backfill_pending` is empty.
    backfill_until: Option<u64>,
    /// A backfilled record could not be written: the run does not count.
    backfill_failed: bool,
    shutting_down: bool,
    stopped: bool,
    /// What happened, for `GET /metrics`.
    pub(super) counters: Counters,
    /// The last spool write failed, and why (for `GET /healthz`).
    spool_failing: Option<String>,
}

impl Gateway {
    /// A gateway for `config`. `boot` makes ids unique across restarts; `seed` feeds the jitter.
    pub fn new(config: Config, boot: &str, seed: u64) -> Gateway {
        Gateway {
            session: Session::new(&config.xmpp),
            backfill: Backfill::new(config.voipms.backfill_interval),
            config,
            rng: Rng::new(seed),
            boot: boot.to_string(),
            next_seq: 1,
            next_job: 0,
            out: Outbox::new(),
            mailbox: Mailbox::default(),
            deliveries: Deliveries::default(),
            outbound: OutboundQueue::default(),
            seen: Seen::default(),
            pending_keys: HashMap::new(),
            arrivals: HashMap::new(),
            next_arrival: 0,
            pending: HashMap::new(),
            quota: Quota::default(),
            paused_until: None,
            operator_logged: HashSet::new(),
            next_seen_compact: None,
            seen_flush_at: None,
            backfill_pending: HashSet::new(),
            backfill_until: None,
            backfill_failed: false,
            shutting_down: false,
            stopped: false,
            counters: Counters::default(),
            spool_failing: None,
        }
    }

    /// Take back what earlier runs left: the spool's records (deliveries owed, sends not yet
    /// done) and the seen log (`state_dir/seen.log`).
    pub fn restore(&mut self, records: Vec<Record>, seen_log: &str, now: Now) {
        self.seen = Seen::load(seen_log, now.wall_ms);
        let (mut inbound, mut outbound) = (0, 0);
        for record in records {
            self.next_seq = self.next_seq.max(record.seq + 1);
            match record.kind() {
                Kind::Inbound => {
                    inbound += 1;
                    self.remember_spooled_id(&record);
                    self.mailbox.offer(record, true);
                }
                // An error or a receipt still owed to the sender.
                Kind::Outbound if record.owed_to_xmpp() => {
                    inbound += 1;
                    self.mailbox.offer(record, true);
                }
                // Every part sent and nothing owed (not written so; kept from going nowhere).
                Kind::Outbound if record.outbound.as_ref().is_some_and(|o| o.next_part as usize >= o.parts.len()) => {
                    self.out.push_back(Action::SpoolRemove(record.id));
                }
                Kind::Outbound => {
                    outbound += 1;
                    self.outbound.add(record);
                }
                Kind::Unrouted => {}
            }
        }
        if let Some(until) = self.seen.quota_until() {
            // Closed when we stopped: it stays closed until the same reset (then a probe).
            self.quota.until_ms = Some(until);
            self.quota.reopen_at = now.mono.checked_add(Duration::from_millis(until.saturating_sub(now.wall_ms)));
        }
        if self.seen.cursor().is_none() {
            // First start: backfill covers what arrives from now on, not the account's history.
            self.seen.set_cursor(now.wall_ms);
        }
        if let Some(text) = self.seen.compact(now.wall_ms) {
            self.out.push_back(Action::SeenRewrite(text));
        }
        let inbound = inbound + self.mailbox.paged();
        if inbound + outbound > 0 {
            log(
                &mut self.out,
                Level::Info,
                format!("resuming from the spool: {inbound} to deliver over XMPP, {outbound} to send to VoIP.ms"),
            );
        }
    }

    /// Begin: connect to the XMPP server, send whatever was restored, backfill.
    pub fn start(&mut self, now: Now) {
        self.session.start(&mut self.out);
        self.backfill.start(now.mono);
        self.next_seen_compact = Some(now.mono + SEEN_COMPACT_EVERY);
        self.dispatch(now);
    }

    /// The next action to carry out; drain until `None` after every call into the gateway.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// When [`Gateway::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // Nothing here may stay in the past once handle_timeout ran, or the shell would spin:
        // backfill waits for the end of a rate-limit pause; the quota reset is its own timer.
        let backfill = self.backfill.next_deadline().map(|t| self.paused_until.map_or(t, |p| t.max(p)));
        [
            self.session.poll_timeout(),
            self.outbound.next_deadline(),
            self.deliveries.next_deadline(),
            backfill,
            self.paused_until,
            self.quota.reopen_at,
            self.next_seen_compact,
            self.seen_flush_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The spool holds `count` more records owed to XMPP users than it hands to
    /// [`Gateway::restore`], from sequence number `from_seq` on, up to `max_seq`: they are read
    /// back in order as the mailbox makes room (`core::mailbox`, paging), and new records are
    /// numbered after them. Called before `restore`.
    pub fn more_in_spool(&mut self, from_seq: u64, count: usize, max_seq: u64) {
        self.next_seq = self.next_seq.max(max_seq + 1);
        self.mailbox.leave_in_spool(from_seq, count);
    }

    /// A received message read back from the spool (at start, or paged in): its VoIP.ms id is
    /// remembered, in case the seen log lost the line (it is synced lazily).
    fn remember_spooled_id(&mut self, record: &Record) {
        if let Some(m) = &record.inbound
            && let Some(id) = &m.voipms_id
        {
            let key = id_key(m.mms, id);
            if !self.seen.contains(&key) {
                self.seen.insert(key, record.accepted_ms);
            }
        }
    }

    /// Queue sizes.
    pub fn stats(&self) -> Stats {
        Stats {
            to_xmpp: self.mailbox.len() + self.mailbox.paged() + self.deliveries.waiting(),
            to_voipms: self.outbound.len(),
            online: self.session.is_online(),
            undeliverable: self.deliveries.undeliverable(),
        }
    }

    /// The gateway's part of `GET /metrics` (Prometheus text).
    pub fn metrics(&self, now: Now) -> String {
        let oldest =
            [self.mailbox.oldest_accepted_ms(), self.outbound.oldest_accepted_ms()].into_iter().flatten().min();
        let gauges = Gauges {
            xmpp_up: self.session.is_online(),
            to_xmpp: self.mailbox.len() + self.mailbox.paged() + self.deliveries.waiting(),
            to_voipms: self.outbound.len(),
            oldest_age_secs: oldest.map_or(0, |ms| now.wall_ms.saturating_sub(ms) / 1000),
            spool_failing: self.spool_failing.is_some(),
            quota_closed: self.quota.closed(now.wall_ms),
            undeliverable: self.deliveries.undeliverable(),
        };
        metrics::render(&self.counters, &gauges)
    }

    /// Why the gateway is not healthy (`GET /healthz`): empty when the XMPP stream is up and
    /// the last spool write succeeded.
    pub fn health(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.session.is_online() {
            problems.push("the XMPP component stream is down".to_string());
        }
        if let Some(why) = &self.spool_failing {
            problems.push(format!("the spool cannot be written: {why}"));
        }
        problems
    }

    /// Timers are due.
    pub fn handle_timeout(&mut self, now: Now) {
        let events = self.session.timeout(now.mono, &mut self.out, &mut self.rng);
        self.session_events(now, events);
        if self.paused_until.is_some_and(|t| now.mono >= t) {
            self.paused_until = None;
        }
        if self.quota.reopen_at.is_some_and(|t| now.mono >= t) {
            self.quota.reopen_at = None;
        }
        let again = self.deliveries.due(now.mono);
        self.counters.redelivered += again.len() as u64;
        if !again.is_empty() {
            for record in again {
                self.mailbox.add(record, true);
            }
            self.mailbox.flush(now, &mut self.session, &mut self.out);
        }
        if self.next_seen_compact.is_some_and(|t| now.mono >= t) {
            self.next_seen_compact = Some(now.mono + SEEN_COMPACT_EVERY);
            if let Some(text) = self.seen.compact(now.wall_ms) {
                self.out.push_back(Action::SeenRewrite(text));
            }
        }
        self.dispatch(now);
    }

    /// Feed one input.
    pub fn handle(&mut self, now: Now, input: Input<'_>) {
        match input {
            Input::XmppConnected => self.session.connected(now.mono, &mut self.out, &mut self.rng),
            Input::XmppConnectFailed(why) => self.session.connect_failed(now.mono, &why, &mut self.out, &mut self.rng),
            Input::XmppBytes(bytes) => {
                let events = self.session.bytes(now.mono, bytes, &mut self.out, &mut self.rng);
                self.session_events(now, events);
            }
            Input::XmppClosed(why) => {
                let events = self.session.closed(now.mono, &why, &mut self.out, &mut self.rng);
                self.session_events(now, events);
            }
            Input::Webhook { token, message } => self.webhook(now, token, message),
            Input::SpoolSynced(ids) => {
                self.spool_failing = None;
                for id in ids {
                    self.synced(now, &id);
                }
            }
            Input::SpoolPaged { records, max } => {
                for record in &records {
                    self.next_seq = self.next_seq.max(record.seq + 1);
                    self.remember_spooled_id(record);
                }
                self.mailbox.paged_in(records, max);
                self.mailbox.flush(now, &mut self.session, &mut self.out);
            }
            Input::SpoolPageFailed(reason) => {
                log(&mut self.out, Level::Error, format!("cannot read spooled messages back: {reason}"));
                self.mailbox.page_failed();
            }
            Input::SpoolFailed { ids, reason } => {
                log(&mut self.out, Level::Error, format!("cannot write the spool: {reason}"));
                self.counters.spool_failures += 1;
                self.spool_failing = Some(reason);
                for id in ids {
                    self.write_failed(now, &id);
                }
            }
            Input::VoipmsResult { job, outcome } => self.voipms_result(now, job, &outcome),
            Input::Shutdown => {
                if !self.shutting_down {
                    self.shutting_down = true;
                    log(&mut self.out, Level::Info, "shutting down: finishing in-flight work");
                }
            }
        }
        self.dispatch(now);
    }

    fn dispatch(&mut self, now: Now) {
        self.flush_seen(now, false);
        if self.stopped {
            return;
        }
        if self.shutting_down {
            let calls_done = self.outbound.in_flight() == 0 && self.pending.is_empty();
            let delivered = !self.mailbox.awaiting_confirmation() || !self.session.is_online();
            if calls_done && delivered {
                // XEP-0100: the gateway says it is going before the stream ends (once: after
                // this the session is closing, not online).
                if self.session.is_online() {
                    for xml in presence::offline(&self.config) {
                        self.session.send(xml, &mut self.out);
                    }
                }
                self.session.shutdown(now.mono, &mut self.out);
            }
            // Stanzas the server sent before our close are spooled before we stop.
            if self.session.is_stopped() && self.pending.is_empty() {
                self.stopped = true;
                self.out.push_back(Action::Stopped);
            }
            return;
        }
        let calls = self.paused_until.is_none_or(|t| now.mono >= t);
        let allow = Allowance { sends: self.quota.sends_allowed(now.wall_ms), calls };
        for record in self.outbound.dispatch(now, allow, &mut self.next_job, &mut self.out) {
            let seq = record.seq;
            self.write(record, Pending::Arm { seq });
        }
        // Checked first: this runs after every event, the DID list is needed once per run.
        if calls && self.backfill.due(now.mono) {
            let dids: Vec<Nanp> = self.config.users.iter().flat_map(|u| u.dids.iter().copied()).collect();
            let cursor = self.seen.cursor().unwrap_or(now.wall_ms);
            self.backfill.poll(now, &dids, cursor, &mut self.next_job, &mut self.out);
        }
    }

    fn session_events(&mut self, now: Now, events: Vec<SessionEvent>) {
        for event in events {
            match event {
                SessionEvent::Online => {
                    self.counters.xmpp_connects += 1;
                    for xml in presence::online(&self.config) {
                        self.session.send(xml, &mut self.out);
                    }
                    self.mailbox.flush(now, &mut self.session, &mut self.out);
                }
                SessionEvent::Offline => self.mailbox.offline(),
                SessionEvent::PingAnswered(n) => {
                    for record in self.mailbox.ping_answered(n, now, &mut self.session, &mut self.out) {
                        if record.kind() == Kind::Inbound {
                            self.counters.delivered += 1;
                        }
                        self.deliveries.delivered(record, now.mono);
                    }
                }
                SessionEvent::Stanza(element) => self.stanza(now, &element),
            }
        }
    }

    fn stanza(&mut self, now: Now, element: &Element) {
        let stanza = match Stanza::from_element(element) {
            Ok(s) => s,
            Err(e) => {
                log(&mut self.out, Level::Debug, format!("ignored a stanza from the server: {e}"));
                // RFC 6120 §8.2.3: an iq get/set always gets an answer, if it can be addressed.
                let request =
                    element.is("iq", ns::COMPONENT) && matches!(element.get_attr("type"), Some("get" | "set"));
                let (from, to, id) = (element.get_attr("from"), element.get_attr("to"), element.get_attr("id"));
                if let (true, Some(from), Some(to), Some(id)) = (request, from, to, id)
                    && Jid::parse(from).is_ok()
                    && Jid::parse(to).is_ok_and(|j| j.domain() == self.config.xmpp.component)
                {
                    let error = ErrorSpec::new("bad-request", "modify", e.to_string());
                    self.session.send(build::iq_error(to, from, id, None, &error), &mut self.out);
                }
                return;
            }
        };
        // Only what is addressed to our domain (or a JID in it) is ours to answer: the answer's
        // `from` is the request's `to`, and one outside our domain gets the stream killed
        // (invalid-from, xmpp.md §3).
        let to = match &stanza {
            Stanza::Iq(iq) => &iq.to,
            Stanza::Message(m) => &m.to,
            Stanza::Presence(p) => &p.to,
        };
        if to.domain() != self.config.xmpp.component {
            log(&mut self.out, Level::Debug, format!("ignored a stanza not for this component (to {})", to.domain()));
            return;
        }
        match stanza {
            Stanza::Iq(iq) => {
                if let Some(reply) = iq::answer(&iq) {
                    self.session.send(reply, &mut self.out);
                }
            }
            Stanza::Message(m) if m.kind == MessageType::Error => self.delivery_error(now, &m),
            Stanza::Message(m) => self.message(now, m),
            Stanza::Presence(p) => {
                for xml in presence::answer(&self.config, &p) {
                    self.session.send(xml, &mut self.out);
                }
            }
        }
    }

    fn reply_error(&mut self, m: &Message, error: &ErrorSpec) {
        self.session
            .send(build::message_error(&m.to.to_string(), &m.from.to_string(), m.id.as_deref(), error), &mut self.out);
    }

    fn new_record(
        &mut self,
        now: Now,
        inbound: Option<Inbound>,
        outbound: Option<Outbound>,
        unrouted: Option<Unrouted>,
    ) -> Record {
        let seq = self.next_seq;
        self.next_seq += 1;
        Record {
            v: FORMAT_VERSION,
            id: format!("{}-{seq}", self.boot),
            seq,
            rev: 0,
            accepted_ms: now.wall_ms,
            inbound,
            outbound,
            unrouted,
        }
    }

    /// Hand new seen-log lines to the shell: with other spool work when there is some (one trip to
    /// the disk thread), else within [`SEEN_FLUSH_AFTER`]. They are not on the webhook's path: a
    /// record carries its own id until it is gone.
    fn flush_seen(&mut self, now: Now, force: bool) {
        if !self.seen.has_pending() {
            self.seen_flush_at = None;
            return;
        }
        let spool_work = self.out.iter().any(|a| matches!(a, Action::SpoolWrite(_) | Action::SpoolRemove(_)));
        let due = self.seen_flush_at.is_some_and(|t| now.mono >= t);
        if force || spool_work || due || self.shutting_down {
            if let Some(lines) = self.seen.take_pending() {
                self.out.push_back(Action::SeenAppend(lines));
            }
            self.seen_flush_at = None;
        } else if self.seen_flush_at.is_none() {
            self.seen_flush_at = Some(now.mono + SEEN_FLUSH_AFTER);
        }
    }

    fn voipms_result(&mut self, now: Now, job: u64, outcome: &CallOutcome) {
        if self.backfill.owns(job) {
            self.backfill_result(now, job, outcome);
        } else if let Some((seq, kind)) = self.outbound.finish(job) {
            self.send_result(now, seq, kind, outcome);
        }
    }
}
