//! The gateway: one state machine that owns the XMPP session, the outbound queue, the mailbox,
//! backfill and the seen set, and turns [`Input`]s into [`Action`]s.
//!
//! Life of a received SMS: webhook (or backfill) → seen? → [`Record`] → `SpoolWrite` →
//! `SpoolSynced` → `200 ok` → mailbox → stanzas → ping answered → `SpoolRemove`. Life of a sent
//! one: stanza → router → `SpoolWrite` → `SpoolSynced` → outbound queue → `VoipmsCall` per part
//! (the record is rewritten after each part) → `SpoolRemove`, or a bounce owed to the sender.
//! Every VoIP.ms failure is classified (`voipms::api`): transient ones are retried with back-off
//! until `voipms.retry_for_secs`, a send whose answer is not VoIP.ms's verdict (none, 5xx,
//! garbage) is looked up before any resend, the daily quota
//! closes sending until midnight US Eastern, the rest bounce at once (docs/reliability.md).

use crate::core::action::{Action, Input, Level, Outbox, WebhookReply, log};
use crate::core::backfill::{Backfill, Found, Progress};
use crate::core::config::Config;
use crate::core::delivery::{Deliveries, Verdict};
use crate::core::iq;
use crate::core::mailbox::{self, Mailbox};
use crate::core::outbound::{Allowance, JobKind, OutboundQueue};
use crate::core::phone::{Nanp, Sender, redact};
use crate::core::quota::Quota;
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

/// First retry delay for a transient VoIP.ms failure.
const RETRY_BASE: Duration = Duration::from_secs(2);
/// Longest retry delay (voipms.md §4.2).
const RETRY_CAP: Duration = Duration::from_secs(300);
/// `sms_failed` gets one retry after this pause (it may be a carrier hiccup).
const SMS_FAILED_RETRY: Duration = Duration::from_secs(30);
/// `api_limit_exceeded` is per minute: the whole account pauses this long.
const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);
/// New seen-log lines wait at most this long for other spool work to travel with.
const SEEN_FLUSH_AFTER: Duration = Duration::from_millis(500);
/// How often the seen set is checked for expired keys.
const SEEN_COMPACT_EVERY: Duration = Duration::from_secs(3600);

/// What to do once a record is durably written.
#[derive(Debug)]
enum Pending {
    /// A received message: answer the webhooks waiting on it, remember its keys (and link its
    /// id key to its fingerprint), then deliver.
    Inbound { tokens: Vec<u64>, record: Record, keys: Vec<String>, link: Option<(String, String)> },
    /// A message for nobody: answer the webhooks, remember its keys.
    Unrouted { tokens: Vec<u64>, keys: Vec<String> },
    /// A new outbound message: queue it.
    Outbound { record: Record },
    /// Progress of a queued message: let its next part go.
    Progress { seq: u64 },
    /// A message's record now says its next part may be in flight: send it.
    Arm { seq: u64 },
    /// A bounce: nothing more to do.
    Bounce,
    /// A delivered message back in the spool to be delivered again: nothing more to do.
    Requeued,
    /// A message the XMPP server refused, being set aside in `undeliverable/`: then leave the
    /// spool (if still in it), and count it.
    Undeliverable { file: Box<Undeliverable>, spooled: bool },
}

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
    /// Keys of messages being written, and the record that carries them.
    pending_keys: HashMap<String, String>,
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
                    if let Some(m) = &record.inbound
                        && let Some(id) = &m.voipms_id
                    {
                        self.seen.insert(id_key(m.mms, id), record.accepted_ms);
                    }
                    self.mailbox.add(record, true);
                }
                Kind::Outbound if record.outbound.as_ref().is_some_and(|o| o.bounce.is_some()) => {
                    inbound += 1;
                    self.mailbox.add(record, true);
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

    /// Queue sizes.
    pub fn stats(&self) -> Stats {
        Stats {
            to_xmpp: self.mailbox.len() + self.deliveries.waiting(),
            to_voipms: self.outbound.len(),
            online: self.session.is_online(),
            undeliverable: self.deliveries.undeliverable(),
        }
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
                for id in ids {
                    self.synced(now, &id);
                }
            }
            Input::SpoolFailed { ids, reason } => {
                log(&mut self.out, Level::Error, format!("cannot write the spool: {reason}"));
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
                SessionEvent::Online => self.mailbox.flush(now, &mut self.session, &mut self.out),
                SessionEvent::Offline => self.mailbox.offline(),
                SessionEvent::PingAnswered(n) => {
                    for record in self.mailbox.ping_answered(n, now, &mut self.session, &mut self.out) {
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
            Stanza::Message(m) => self.message(now, m),
            Stanza::Presence(_) => {}
        }
    }

    fn reply_error(&mut self, m: &Message, error: &ErrorSpec) {
        self.session
            .send(build::message_error(&m.to.to_string(), &m.from.to_string(), m.id.as_deref(), error), &mut self.out);
    }

    fn message(&mut self, now: Now, m: Message) {
        if m.kind == MessageType::Error {
            self.delivery_error(now, &m);
            return;
        }
        let outgoing = match router::route(&self.config, &m) {
            Route::Drop(why) => {
                log(&mut self.out, Level::Debug, format!("dropped a message from {}: {why}", m.from.to_bare()));
                return;
            }
            Route::Reject(error) => {
                log(
                    &mut self.out,
                    Level::Info,
                    format!("refused a message from {}: {} ({})", m.from.to_bare(), error.condition, error.text),
                );
                self.reply_error(&m, &error);
                return;
            }
            Route::Send(o) => o,
        };
        if self.quota.closed(now.wall_ms) {
            let error = self.quota.error(now.wall_ms);
            log(
                &mut self.out,
                Level::Info,
                format!("refused a message from {}: the daily VoIP.ms sending limit is spent", m.from.to_bare()),
            );
            self.reply_error(&m, &error);
            return;
        }
        let parts: Vec<OutPart> = outgoing
            .parts
            .iter()
            .map(|p| OutPart { mms: p.method == Method::Mms, message: p.message.clone(), media: p.media.clone() })
            .collect();
        log(
            &mut self.out,
            Level::Info,
            format!(
                "accepted a message from {} to {} via DID {} ({} part(s))",
                m.from.to_bare(),
                outgoing.dst,
                outgoing.did,
                parts.len()
            ),
        );
        let contact = m.to.local().unwrap_or_default().to_string();
        let record = self.new_record(
            now,
            None,
            Some(Outbound {
                sender: m.from.to_string(),
                contact,
                stanza_id: m.id.clone(),
                did: outgoing.did.ten_digits().to_string(),
                dst: outgoing.dst.ten_digits().to_string(),
                parts,
                next_part: 0,
                receipt: m.receipt_requested,
                bounce: None,
                unconfirmed_ms: None,
            }),
            None,
        );
        self.write(record.clone(), Pending::Outbound { record });
    }

    /// The server answered a message with an error: if it is a delivery of ours, deliver it
    /// again later (`wait`) or set it aside as undeliverable (`core::delivery`).
    fn delivery_error(&mut self, now: Now, m: &Message) {
        let (from, condition) = (m.from.to_bare(), m.error_condition.as_deref().unwrap_or("undefined-condition"));
        let domain = self.config.xmpp.component.clone();
        match self.deliveries.error(m, now, &domain, &mut self.mailbox, &mut self.rng) {
            Verdict::NotOurs => {
                log(&mut self.out, Level::Info, format!("{from} answered a message of ours with error {condition}"));
            }
            Verdict::Forged => log(
                &mut self.out,
                Level::Debug,
                format!("ignored error {condition} from {from}: not the recipient of the message it names"),
            ),
            Verdict::AlreadyHandled => {
                log(&mut self.out, Level::Debug, format!("error {condition} from {from}: already being handled"));
            }
            Verdict::Redeliver { record, rewrite, after } => {
                log(
                    &mut self.out,
                    Level::Warn,
                    format!(
                        "the XMPP server could not deliver a message to {from} now ({condition}); trying again in {}s",
                        after.as_secs()
                    ),
                );
                if rewrite {
                    // It had left the spool: back in, durably, until it is delivered.
                    self.write(*record, Pending::Requeued);
                }
            }
            Verdict::Undeliverable { file, spooled } => {
                self.pending.insert(file.record.id.clone(), Pending::Undeliverable { file: file.clone(), spooled });
                self.out.push_back(Action::SpoolUndeliverable(file));
            }
        }
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

    fn write(&mut self, record: Record, then: Pending) {
        if let Pending::Inbound { keys, .. } | Pending::Unrouted { keys, .. } = &then {
            for key in keys {
                self.pending_keys.insert(key.clone(), record.id.clone());
            }
        }
        self.pending.insert(record.id.clone(), then);
        self.out.push_back(Action::SpoolWrite(Box::new(record)));
    }

    /// If a message with one of `keys` is already ours (or being written), attach `token` to it
    /// and return true.
    fn duplicate(&mut self, keys: &[String], token: Option<u64>) -> bool {
        if keys.iter().any(|k| self.seen.contains(k)) {
            if let Some(token) = token {
                self.out.push_back(Action::WebhookReply { token, reply: WebhookReply::Accepted });
            }
            return true;
        }
        let Some(record_id) = keys.iter().find_map(|k| self.pending_keys.get(k)).cloned() else {
            return false;
        };
        if let (Some(token), Some(Pending::Inbound { tokens, .. } | Pending::Unrouted { tokens, .. })) =
            (token, self.pending.get_mut(&record_id))
        {
            tokens.push(token);
        }
        true
    }

    fn webhook(&mut self, now: Now, token: u64, message: InboundMessage) {
        if message.text.is_empty() && message.media.is_empty() {
            log(&mut self.out, Level::Warn, format!("an empty message from {} was ignored", message.from.redacted()));
            self.out.push_back(Action::WebhookReply { token, reply: WebhookReply::Accepted });
            return;
        }
        let keys: Vec<String> = message.id.iter().map(|id| id_key(message.mms, id)).collect();
        if self.duplicate(&keys, Some(token)) {
            log(
                &mut self.out,
                Level::Info,
                format!(
                    "a webhook repeated a message from {} already received; not delivered again",
                    message.from.redacted()
                ),
            );
            return;
        }
        let owner = message.to.iter().find_map(|did| Some((self.config.owner_of(did)?.jid.clone(), *did)));
        let Some((_, did)) = owner else {
            let dids: Vec<String> = message.to.iter().map(Nanp::to_string).collect();
            log(
                &mut self.out,
                Level::Warn,
                format!(
                    "a message for DID {} which no user maps was kept for the operator in state_dir/unrouted",
                    dids.join(", ")
                ),
            );
            let record = self.new_record(
                now,
                None,
                None,
                Some(Unrouted {
                    from: message.from.localpart(),
                    to: message.to.iter().map(|d| d.ten_digits().to_string()).collect(),
                    text: message.text,
                    media: message.media,
                    voipms_id: message.id,
                }),
            );
            self.write(record, Pending::Unrouted { tokens: vec![token], keys });
            return;
        };
        log(
            &mut self.out,
            Level::Info,
            format!(
                "received a message from {} via DID {did} ({} characters, {} media)",
                message.from.redacted(),
                message.text.chars().count(),
                message.media.len()
            ),
        );
        let _ = self.accept_inbound(
            now,
            &message.from,
            did,
            message.text,
            message.media,
            message.id,
            message.mms,
            None,
            vec![token],
            keys,
        );
    }

    /// Spool a received message for the owner of `did`.
    #[allow(clippy::too_many_arguments)]
    fn accept_inbound(
        &mut self,
        now: Now,
        from: &Sender,
        did: Nanp,
        text: String,
        media: Vec<String>,
        voipms_id: Option<String>,
        mms: bool,
        voipms_ms: Option<u64>,
        tokens: Vec<u64>,
        mut keys: Vec<String>,
    ) -> Option<String> {
        let user = self.config.owner_of(&did)?;
        let default_did = user.dids.first() == Some(&did);
        let contact = if default_did { from.localpart() } else { format!("{}%{}", from.localpart(), did.e164()) };
        let user_jid = user.jid.to_string();
        let mut link = None;
        if voipms_ms.is_none() {
            // Brought by a webhook: a backfilled row under another id may claim this, once; its
            // own row (same id) claims it for sure.
            let pending = &self.pending_keys;
            let fingerprint =
                self.seen.new_fingerprint(&from.localpart(), did.ten_digits(), &text, now.wall_ms, &|k| {
                    pending.contains_key(k)
                });
            link = voipms_id.as_ref().map(|id| (id_key(mms, id), fingerprint.clone()));
            keys.push(fingerprint);
        }
        let record = self.new_record(
            now,
            Some(Inbound {
                user: user_jid,
                contact,
                did: did.ten_digits().to_string(),
                text,
                media,
                voipms_id,
                mms,
                voipms_ms,
            }),
            None,
            None,
        );
        let id = record.id.clone();
        self.write(record.clone(), Pending::Inbound { tokens, record, keys, link });
        Some(id)
    }

    fn backfill_found(&mut self, now: Now, found: Found) {
        let Found { did, row, at_ms } = found;
        let key = id_key(row.mms, &row.id);
        let Some(from) = Sender::parse(&row.contact) else {
            return;
        };
        if self.duplicate(std::slice::from_ref(&key), None) {
            return;
        }
        if self.seen.claim_fingerprint(&from.localpart(), did.ten_digits(), &row.message, at_ms, now.wall_ms) {
            // A webhook brought this one under another id: remember this id too.
            self.seen.insert(key, now.wall_ms);
            return;
        }
        let mut text = row.message;
        if text.is_empty() && row.media.is_empty() {
            if !row.mms {
                log(
                    &mut self.out,
                    Level::Warn,
                    format!("backfill found an empty SMS from {}; ignored", from.redacted()),
                );
                return;
            }
            log(
                &mut self.out,
                Level::Warn,
                format!("backfill found an MMS from {} whose content VoIP.ms did not provide", from.redacted()),
            );
            text = crate::core::backfill::MMS_WITHOUT_CONTENT.to_string();
        }
        log(
            &mut self.out,
            Level::Info,
            format!("backfill found a message from {} via DID {did} that no webhook brought", from.redacted()),
        );
        let id = self.accept_inbound(
            now,
            &from,
            did,
            text,
            row.media,
            Some(row.id),
            row.mms,
            Some(at_ms),
            Vec::new(),
            vec![key],
        );
        self.backfill_pending.extend(id);
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

    /// Move the backfill cursor once the run is over and what it found is durable.
    fn advance_cursor(&mut self) {
        if !self.backfill_pending.is_empty() {
            return;
        }
        if let Some(until) = self.backfill_until.take()
            && self.seen.cursor().is_none_or(|c| until > c)
        {
            self.seen.set_cursor(until);
        }
    }

    fn synced(&mut self, now: Now, id: &str) {
        match self.pending.remove(id) {
            Some(Pending::Inbound { tokens, record, keys, link }) => {
                for token in tokens {
                    self.out.push_back(Action::WebhookReply { token, reply: WebhookReply::Accepted });
                }
                self.remember(keys, now.wall_ms);
                if let Some((id_key, fingerprint)) = link {
                    self.seen.link(&id_key, &fingerprint, now.wall_ms);
                }
                if self.backfill_pending.remove(&record.id) {
                    self.advance_cursor();
                }
                self.mailbox.add(record, false);
                self.mailbox.flush(now, &mut self.session, &mut self.out);
            }
            Some(Pending::Unrouted { tokens, keys }) => {
                for token in tokens {
                    self.out.push_back(Action::WebhookReply { token, reply: WebhookReply::Accepted });
                }
                self.remember(keys, now.wall_ms);
            }
            Some(Pending::Outbound { record }) => {
                if let Some(o) = &record.outbound {
                    // The stanza id (the sender's own, made printable) ties this line to the
                    // message: from here on it cannot be lost.
                    let id: String = o
                        .stanza_id
                        .as_deref()
                        .unwrap_or("")
                        .chars()
                        .filter(|c| c.is_ascii_graphic())
                        .take(64)
                        .collect();
                    log(&mut self.out, Level::Info, format!("message '{id}' from {} is spooled for VoIP.ms", o.sender));
                }
                let seq = record.seq;
                self.outbound.add(record);
                // Accepted while a limit_reached answer came in: bounced like the rest of the queue.
                if self.quota.closed(now.wall_ms) {
                    let error = self.quota.error(now.wall_ms);
                    self.bounce(now, seq, &error);
                }
            }
            Some(Pending::Progress { seq } | Pending::Arm { seq }) => self.outbound.synced(seq),
            Some(Pending::Undeliverable { file, spooled }) => {
                self.deliveries.set_aside();
                let user = file.record.inbound.as_ref().map_or("", |m| m.user.as_str());
                log(
                    &mut self.out,
                    Level::Error,
                    format!(
                        "the XMPP server refused a message for {user} ({}, {}): it is kept in state_dir/undeliverable/",
                        file.condition, file.error_type
                    ),
                );
                if spooled {
                    self.out.push_back(Action::SpoolRemove(file.record.id));
                }
            }
            Some(Pending::Bounce | Pending::Requeued) | None => {}
        }
    }

    fn remember(&mut self, keys: Vec<String>, at_ms: u64) {
        for key in keys {
            self.pending_keys.remove(&key);
            self.seen.insert(key, at_ms);
        }
    }

    fn write_failed(&mut self, now: Now, id: &str) {
        match self.pending.remove(id) {
            Some(Pending::Inbound { tokens, keys, .. } | Pending::Unrouted { tokens, keys }) => {
                for key in keys {
                    self.pending_keys.remove(&key);
                }
                if self.backfill_pending.remove(id) {
                    // Not on disk: the cursor must not pass it; the next run finds it again.
                    self.backfill_failed = true;
                    self.backfill_until = None;
                }
                for token in tokens {
                    self.out.push_back(Action::WebhookReply { token, reply: WebhookReply::Unavailable });
                }
            }
            Some(Pending::Outbound { record }) => {
                // Not stored, so not accepted: the sender hears it (once the stream is up), even
                // though the error itself cannot be stored either.
                let mut record = record;
                if let Some(o) = record.outbound.as_mut() {
                    o.bounce = Some(Bounce {
                        condition: "resource-constraint".into(),
                        error_type: "wait".into(),
                        text: "the gateway cannot store messages right now; try again later".into(),
                        notice: false,
                    });
                    self.mailbox.add(record, false);
                    self.mailbox.flush(now, &mut self.session, &mut self.out);
                }
            }
            Some(Pending::Progress { seq }) => {
                // Keep going: the part was sent; after a crash it could be sent again.
                self.outbound.synced(seq);
            }
            Some(Pending::Arm { seq }) => {
                // The "may be in flight" mark is not on disk: do not send on it; try later.
                self.outbound.disarm(seq);
                self.retry_or_bounce(now, seq, api::classify_status("spool_unwritable"));
            }
            Some(Pending::Undeliverable { file, .. }) => {
                // Not set aside: it stays owed, and is delivered again later (a refusal then
                // tries the file once more).
                log(
                    &mut self.out,
                    Level::Error,
                    "a message the XMPP server refused could not be kept in state_dir/undeliverable/; it will be delivered again later",
                );
                self.deliveries.retry_later(file.record, now.mono);
            }
            Some(Pending::Requeued) => log(
                &mut self.out,
                Level::Error,
                "a message to deliver again could not be written back to the spool; it is kept in memory",
            ),
            Some(Pending::Bounce) | None => {}
        }
    }

    fn voipms_result(&mut self, now: Now, job: u64, outcome: &CallOutcome) {
        if self.backfill.owns(job) {
            let seen = &self.seen;
            let is_seen = |row: &Row| seen.contains(&id_key(true, &row.id)) || seen.contains(&id_key(false, &row.id));
            let progress = self.backfill.result(job, outcome, now, &mut self.next_job, &mut self.out, &is_seen);
            for progress in progress {
                match progress {
                    Progress::Seen(row) => {
                        let _ = self.seen.claim_linked(&id_key(row.mms, &row.id), now.wall_ms)
                            || self.seen.claim_linked(&id_key(!row.mms, &row.id), now.wall_ms);
                    }
                    Progress::Found(found) => self.backfill_found(now, found),
                    Progress::Done { complete, until_ms } => {
                        if complete && !self.backfill_failed {
                            self.backfill_until = Some(until_ms);
                            self.advance_cursor();
                        }
                        self.backfill_failed = false;
                    }
                    Progress::Failed(why) | Progress::Skipped(why) => log(&mut self.out, Level::Warn, why),
                }
            }
            return;
        }
        let Some((seq, kind)) = self.outbound.finish(job) else {
            return;
        };
        match kind {
            JobKind::Send => match classify(outcome) {
                Answer::Sent { id } => {
                    match id {
                        // So that a later lookup does not take this row for another message.
                        Some(id) if api::is_safe_id(&id) => {
                            self.seen.insert(sent_key(&id), now.wall_ms);
                        }
                        Some(_) => log(
                            &mut self.out,
                            Level::Warn,
                            "VoIP.ms answered a send with an id that is not a plain id; not remembered",
                        ),
                        None => {}
                    }
                    // Only a send begun after the reset (the probe) proves the quota is back.
                    let started = self.outbound.started_ms(seq);
                    if self.quota.until_ms.is_some_and(|until| started >= until) {
                        self.quota.clear();
                        self.seen.set_quota_until(None);
                        log(&mut self.out, Level::Info, "the VoIP.ms daily sending limit has reset: sending again");
                    }
                    self.part_sent(now, seq);
                }
                Answer::Failed(f) => self.send_failed(now, seq, f),
            },
            JobKind::Verify => match api::rows(outcome) {
                Ok(rows) if self.outbound.was_sent(seq, &rows, &|id| self.seen.contains(&sent_key(id))) => {
                    log(&mut self.out, Level::Info, "a send whose answer was lost did go out: not sending it again");
                    self.part_sent(now, seq);
                }
                // Not sent: send again now. The failed send already counted for the back-off;
                // the lookup does not count again (that would double every delay).
                Ok(_) => self.outbound.verified_unsent(seq),
                Err(f) => self.retry_or_bounce(now, seq, f),
            },
        }
    }

    fn part_sent(&mut self, now: Now, seq: u64) {
        let Some(mut record) = self.outbound.record(seq).cloned() else {
            return;
        };
        let Some(o) = record.outbound.as_mut() else {
            return;
        };
        o.unconfirmed_ms = None;
        self.operator_logged.clear();
        o.next_part += 1;
        record.rev += 1;
        let total = o.parts.len();
        if o.next_part as usize >= total {
            log(
                &mut self.out,
                Level::Info,
                format!("sent a message to {} via DID {} ({total} part(s))", redact(&o.dst), redact(&o.did)),
            );
            self.outbound.remove(seq);
            self.out.push_back(Action::SpoolRemove(record.id));
        } else {
            self.outbound.update(record.clone());
            self.write(record, Pending::Progress { seq });
        }
        let _ = now;
    }

    fn send_failed(&mut self, now: Now, seq: u64, f: Failure) {
        let dst =
            self.outbound.record(seq).and_then(|r| r.outbound.as_ref()).map(|o| redact(&o.dst)).unwrap_or_default();
        match f.class {
            FailureClass::Transient => {
                log(&mut self.out, Level::Warn, format!("sending to {dst} failed ({}); will retry", f.status));
                self.retry_or_bounce(now, seq, f);
            }
            FailureClass::Ambiguous => {
                log(
                    &mut self.out,
                    Level::Warn,
                    format!(
                        "sending to {dst}: VoIP.ms's answer does not say whether it went out ({}); will look it up before any retry",
                        f.status
                    ),
                );
                self.outbound.verify_before_resend(seq);
                self.retry_or_bounce(now, seq, f);
            }
            FailureClass::RateLimited => {
                let pause = RATE_LIMIT_PAUSE + self.rng.up_to(RATE_LIMIT_PAUSE / 6);
                log(
                    &mut self.out,
                    Level::Warn,
                    format!("VoIP.ms rate limit hit ({}): pausing all calls for {}s", f.status, pause.as_secs()),
                );
                self.paused_until = Some(now.mono + pause);
                self.outbound.retry_at(seq, now.mono + pause);
            }
            FailureClass::SmsFailed if !self.outbound.note_sms_failed(seq) => {
                log(&mut self.out, Level::Warn, format!("VoIP.ms could not send to {dst} (sms_failed); one more try"));
                self.outbound.retry_at(seq, now.mono + SMS_FAILED_RETRY);
            }
            FailureClass::Quota => {
                self.quota.hit(now);
                self.seen.set_quota_until(self.quota.until_ms);
                let error = self.quota.error(now.wall_ms);
                log(
                    &mut self.out,
                    Level::Error,
                    format!(
                        "VoIP.ms daily sending limit reached (limit_reached): no sends until it resets; {}",
                        error.text
                    ),
                );
                self.bounce(now, seq, &error);
                for other in self.outbound.idle() {
                    self.bounce(now, other, &error);
                }
            }
            _ => {
                let level = if f.class == FailureClass::Operator && self.operator_logged.insert(f.status.clone()) {
                    Level::Error
                } else {
                    Level::Warn
                };
                log(
                    &mut self.out,
                    level,
                    format!("VoIP.ms did not send a message to {dst}: {} ({})", f.status, f.text),
                );
                self.bounce(now, seq, &ErrorSpec::new(f.condition, f.error_type, f.text));
            }
        }
    }

    /// Retry a transient failure with back-off, or bounce it once `retry_for` has passed since
    /// the message was accepted.
    fn retry_or_bounce(&mut self, now: Now, seq: u64, f: Failure) {
        let Some(accepted_ms) = self.outbound.record(seq).map(|r| r.accepted_ms) else {
            return;
        };
        let limit = self.config.voipms.retry_for;
        if now.wall_ms.saturating_sub(accepted_ms) >= limit.as_millis() as u64 {
            let hours = limit.as_secs() / 3600;
            let span =
                if hours >= 1 { format!("{hours} hour(s)") } else { format!("{} minute(s)", limit.as_secs() / 60) };
            let text = format!("{}; the gateway gave up after trying for {span}", f.text);
            self.bounce(now, seq, &ErrorSpec::new(f.condition, f.error_type, text));
            return;
        }
        let delay = backoff(self.outbound.attempts(seq), RETRY_BASE, RETRY_CAP, &mut self.rng);
        self.outbound.retry_at(seq, now.mono + delay);
    }

    /// Give up on a message: the error is owed to the sender, durably, through the mailbox.
    fn bounce(&mut self, now: Now, seq: u64, error: &ErrorSpec) {
        let unconfirmed = self.outbound.unconfirmed(seq);
        let Some(mut record) = self.outbound.remove(seq) else {
            return;
        };
        // Late: the sender's resource may be gone; the bare JID gets a notice too.
        let notice = mailbox::is_late(&record, now.wall_ms, &self.boot);
        let Some(o) = record.outbound.as_mut() else {
            return;
        };
        let (done, total) = (o.next_part as usize, o.parts.len());
        let mut text = if total > 1 && done > 0 {
            format!("{} (the first {done} of {total} parts were sent)", error.text)
        } else {
            error.text.clone()
        };
        if unconfirmed {
            // Its last send got no answer and could not be looked up: say so, rather than
            // invite a resend that may duplicate it.
            text.push_str("; the last attempt may nevertheless have reached the recipient");
        }
        o.bounce =
            Some(Bounce { condition: error.condition.clone(), error_type: error.error_type.clone(), text, notice });
        record.rev += 1;
        self.write(record.clone(), Pending::Bounce);
        self.mailbox.add(record, false);
        self.mailbox.flush(now, &mut self.session, &mut self.out);
    }
}
