//! The gateway: one state machine that owns the XMPP session, the outbound queue and the
//! mailbox, and turns [`Input`]s into [`Action`]s.
//!
//! Life of a received SMS: webhook → [`Record`] → `SpoolWrite` → `SpoolSynced` → `200 ok` →
//! mailbox → stanzas → ping answered → `SpoolRemove`. Life of a sent one: stanza → router →
//! `SpoolWrite` → `SpoolSynced` → outbound queue → `VoipmsCall` per part (the record is rewritten
//! after each part) → `SpoolRemove`, or a bounce owed to the sender through the mailbox.

use crate::core::action::{Action, Input, Level, Outbox, WebhookReply, log};
use crate::core::config::Config;
use crate::core::iq;
use crate::core::mailbox::Mailbox;
use crate::core::outbound::OutboundQueue;
use crate::core::phone::Nanp;
use crate::core::retry::Rng;
use crate::core::router::{self, Route};
use crate::core::spool_record::{
    Bounce, FORMAT_VERSION, Inbound, Kind, OutPart, Outbound, Record, Unrouted,
};
use crate::core::time::Now;
use crate::core::voipms::api::{Answer, CallOutcome, classify};
use crate::core::voipms::parts::Method;
use crate::core::voipms::webhook::InboundMessage;
use crate::core::xmpp::element::Element;
use crate::core::xmpp::session::{Session, SessionEvent};
use crate::core::xmpp::stanza::{ErrorSpec, Message, Stanza, build};
use std::collections::HashMap;
use std::time::Instant;

/// What to do once a record is durably written.
#[derive(Debug)]
enum Pending {
    /// A received message: answer the webhook, then deliver.
    Inbound { token: u64, record: Record },
    /// A message for nobody: answer the webhook.
    Unrouted { token: u64 },
    /// A new outbound message: queue it. `reply_to` is where to bounce if the write fails.
    Outbound { record: Record },
    /// Progress of a queued message: let its next part go.
    Progress { seq: u64 },
    /// A bounce: nothing more to do.
    Bounce,
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
}

/// The sans-IO gateway.
#[derive(Debug)]
pub struct Gateway {
    config: Config,
    session: Session,
    rng: Rng,
    boot: String,
    next_seq: u64,
    out: Outbox,
    mailbox: Mailbox,
    outbound: OutboundQueue,
    pending: HashMap<String, Pending>,
    shutting_down: bool,
    stopped: bool,
}

impl Gateway {
    /// A gateway for `config`. `boot` makes ids unique across restarts; `seed` feeds the jitter.
    pub fn new(config: Config, boot: &str, seed: u64) -> Gateway {
        let ping_to = config.users.first().map_or_else(
            || config.xmpp.component.clone(),
            |u| u.jid.domain().to_string(),
        );
        Gateway {
            session: Session::new(&config.xmpp, &ping_to),
            config,
            rng: Rng::new(seed),
            boot: boot.to_string(),
            next_seq: 1,
            out: Outbox::new(),
            mailbox: Mailbox::default(),
            outbound: OutboundQueue::default(),
            pending: HashMap::new(),
            shutting_down: false,
            stopped: false,
        }
    }

    /// Take back what the spool held at start: deliveries owed, sends not yet done.
    pub fn restore(&mut self, records: Vec<Record>) {
        let (mut inbound, mut outbound) = (0, 0);
        for record in records {
            self.next_seq = self.next_seq.max(record.seq + 1);
            match record.kind() {
                Kind::Inbound => {
                    inbound += 1;
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
        if inbound + outbound > 0 {
            log(
                &mut self.out,
                Level::Info,
                format!(
                    "resuming from the spool: {inbound} to deliver over XMPP, {outbound} to send to VoIP.ms"
                ),
            );
        }
    }

    /// Begin: connect to the XMPP server and send whatever was restored.
    pub fn start(&mut self, now: Now) {
        self.session.start(&mut self.out);
        self.outbound.dispatch(now.mono, &mut self.out);
    }

    /// The next action to carry out; drain until `None` after every call into the gateway.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// When [`Gateway::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.session.poll_timeout(), self.outbound.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Queue sizes.
    pub fn stats(&self) -> Stats {
        Stats {
            to_xmpp: self.mailbox.len(),
            to_voipms: self.outbound.len(),
            online: self.session.is_online(),
        }
    }

    /// Timers are due.
    pub fn handle_timeout(&mut self, now: Now) {
        let events = self.session.timeout(now.mono, &mut self.out, &mut self.rng);
        self.session_events(now, events);
        self.dispatch(now);
    }

    /// Feed one input.
    pub fn handle(&mut self, now: Now, input: Input<'_>) {
        match input {
            Input::XmppConnected => self.session.connected(now.mono, &mut self.out),
            Input::XmppConnectFailed(why) => {
                self.session
                    .connect_failed(now.mono, &why, &mut self.out, &mut self.rng)
            }
            Input::XmppBytes(bytes) => {
                let events = self
                    .session
                    .bytes(now.mono, bytes, &mut self.out, &mut self.rng);
                self.session_events(now, events);
            }
            Input::XmppClosed(why) => {
                let events = self
                    .session
                    .closed(now.mono, &why, &mut self.out, &mut self.rng);
                self.session_events(now, events);
            }
            Input::Webhook { token, message } => self.webhook(now, token, message),
            Input::SpoolSynced(ids) => {
                for id in ids {
                    self.synced(now, &id);
                }
            }
            Input::SpoolFailed { ids, reason } => {
                log(
                    &mut self.out,
                    Level::Error,
                    format!("cannot write the spool: {reason}"),
                );
                for id in ids {
                    self.write_failed(now, &id);
                }
            }
            Input::VoipmsResult { job, outcome } => self.voipms_result(now, job, &outcome),
            Input::Shutdown => {
                if !self.shutting_down {
                    self.shutting_down = true;
                    log(
                        &mut self.out,
                        Level::Info,
                        "shutting down: finishing in-flight work",
                    );
                }
            }
        }
        self.dispatch(now);
    }

    fn dispatch(&mut self, now: Now) {
        if self.stopped {
            return;
        }
        if self.shutting_down {
            let idle = self.outbound.in_flight() == 0
                && self.pending.is_empty()
                && !self.mailbox.awaiting_confirmation();
            if idle
                || !self.session.is_online()
                    && self.outbound.in_flight() == 0
                    && self.pending.is_empty()
            {
                self.session.shutdown(&mut self.out);
                self.stopped = true;
                self.out.push_back(Action::Stopped);
            }
            return;
        }
        self.outbound.dispatch(now.mono, &mut self.out);
    }

    fn session_events(&mut self, now: Now, events: Vec<SessionEvent>) {
        for event in events {
            match event {
                SessionEvent::Online => self.mailbox.flush(now, &mut self.session, &mut self.out),
                SessionEvent::Offline => self.mailbox.offline(),
                SessionEvent::PingAnswered(n) => {
                    self.mailbox
                        .ping_answered(n, now, &mut self.session, &mut self.out);
                }
                SessionEvent::Stanza(element) => self.stanza(now, &element),
            }
        }
    }

    fn stanza(&mut self, now: Now, element: &Element) {
        let stanza = match Stanza::from_element(element) {
            Ok(s) => s,
            Err(e) => {
                log(
                    &mut self.out,
                    Level::Debug,
                    format!("ignored a stanza from the server: {e}"),
                );
                return;
            }
        };
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

    fn message(&mut self, now: Now, m: Message) {
        if m.to.domain() != self.config.xmpp.component {
            return;
        }
        let outgoing = match router::route(&self.config, &m) {
            Route::Drop(why) => {
                if let Some(cond) = &m.error_condition {
                    log(
                        &mut self.out,
                        Level::Info,
                        format!(
                            "{} answered a message of ours with error {cond}",
                            m.from.to_bare()
                        ),
                    );
                } else {
                    log(
                        &mut self.out,
                        Level::Debug,
                        format!("dropped a message from {}: {why}", m.from.to_bare()),
                    );
                }
                return;
            }
            Route::Reject(error) => {
                log(
                    &mut self.out,
                    Level::Info,
                    format!(
                        "refused a message from {}: {} ({})",
                        m.from.to_bare(),
                        error.condition,
                        error.text
                    ),
                );
                self.session.send(
                    build::message_error(
                        &m.to.to_string(),
                        &m.from.to_string(),
                        m.id.as_deref(),
                        &error,
                    ),
                    &mut self.out,
                );
                return;
            }
            Route::Send(o) => o,
        };
        let parts: Vec<OutPart> = outgoing
            .parts
            .iter()
            .map(|p| OutPart {
                mms: p.method == Method::Mms,
                message: p.message.clone(),
                media: p.media.clone(),
            })
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
            }),
            None,
        );
        self.write(record.clone(), Pending::Outbound { record });
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
        self.pending.insert(record.id.clone(), then);
        self.out.push_back(Action::SpoolWrite(Box::new(record)));
    }

    fn webhook(&mut self, now: Now, token: u64, message: InboundMessage) {
        if message.text.is_empty() && message.media.is_empty() {
            log(
                &mut self.out,
                Level::Warn,
                format!(
                    "an empty message from {} was ignored",
                    message.from.redacted()
                ),
            );
            self.out.push_back(Action::WebhookReply {
                token,
                reply: WebhookReply::Accepted,
            });
            return;
        }
        let owner = message
            .to
            .iter()
            .find_map(|did| Some((self.config.owner_of(did)?, *did)));
        let Some((user, did)) = owner else {
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
                    to: message
                        .to
                        .iter()
                        .map(|d| d.ten_digits().to_string())
                        .collect(),
                    text: message.text,
                    media: message.media,
                    voipms_id: message.id,
                }),
            );
            self.write(record, Pending::Unrouted { token });
            return;
        };
        let default_did = user.dids.first() == Some(&did);
        let contact = if default_did {
            message.from.localpart()
        } else {
            format!("{}%{}", message.from.localpart(), did.e164())
        };
        let user_jid = user.jid.to_string();
        log(
            &mut self.out,
            Level::Info,
            format!(
                "received a message from {} for {user_jid} via DID {did} ({} characters, {} media)",
                message.from.redacted(),
                message.text.chars().count(),
                message.media.len()
            ),
        );
        let record = self.new_record(
            now,
            Some(Inbound {
                user: user_jid,
                contact,
                did: did.ten_digits().to_string(),
                text: message.text,
                media: message.media,
                voipms_id: message.id,
            }),
            None,
            None,
        );
        self.write(record.clone(), Pending::Inbound { token, record });
    }

    fn synced(&mut self, now: Now, id: &str) {
        match self.pending.remove(id) {
            Some(Pending::Inbound { token, record }) => {
                self.out.push_back(Action::WebhookReply {
                    token,
                    reply: WebhookReply::Accepted,
                });
                self.mailbox.add(record, false);
                self.mailbox.flush(now, &mut self.session, &mut self.out);
            }
            Some(Pending::Unrouted { token }) => self.out.push_back(Action::WebhookReply {
                token,
                reply: WebhookReply::Accepted,
            }),
            Some(Pending::Outbound { record }) => self.outbound.add(record),
            Some(Pending::Progress { seq }) => self.outbound.synced(seq),
            Some(Pending::Bounce) | None => {}
        }
    }

    fn write_failed(&mut self, now: Now, id: &str) {
        match self.pending.remove(id) {
            Some(Pending::Inbound { token, .. } | Pending::Unrouted { token }) => {
                self.out.push_back(Action::WebhookReply {
                    token,
                    reply: WebhookReply::Unavailable,
                });
            }
            Some(Pending::Outbound { record }) => {
                if let Some(o) = &record.outbound {
                    let error = ErrorSpec::new(
                        "resource-constraint",
                        "wait",
                        "the gateway cannot store messages right now; try again later",
                    );
                    let from = format!("{}@{}", o.contact, self.config.xmpp.component);
                    self.session.send(
                        build::message_error(&from, &o.sender, o.stanza_id.as_deref(), &error),
                        &mut self.out,
                    );
                }
            }
            Some(Pending::Progress { seq }) => {
                // Keep going: the part was sent; after a crash it could be sent again.
                self.outbound.synced(seq);
            }
            Some(Pending::Bounce) | None => {}
        }
        let _ = now;
    }

    fn voipms_result(&mut self, now: Now, job: u64, outcome: &CallOutcome) {
        let Some(seq) = self.outbound.finish(job) else {
            return;
        };
        let Some(mut record) = self.outbound.record(seq).cloned() else {
            return;
        };
        let Some(o) = record.outbound.as_mut() else {
            return;
        };
        let total = o.parts.len();
        let (dst, did) = (
            crate::core::phone::redact(&o.dst),
            crate::core::phone::redact(&o.did),
        );
        match classify(outcome) {
            Answer::Sent { .. } => {
                o.next_part += 1;
                record.rev += 1;
                if o.next_part as usize >= total {
                    log(
                        &mut self.out,
                        Level::Info,
                        format!("sent a message to {dst} via DID {did} ({total} part(s))"),
                    );
                    self.outbound.remove(seq);
                    self.out.push_back(Action::SpoolRemove(record.id));
                } else {
                    self.outbound.update(record.clone());
                    self.write(record, Pending::Progress { seq });
                }
            }
            Answer::Failed(f) => {
                let done = o.next_part as usize;
                let text = if total > 1 && done > 0 {
                    format!("{} (the first {done} of {total} parts were sent)", f.text)
                } else {
                    f.text.clone()
                };
                log(
                    &mut self.out,
                    Level::Warn,
                    format!(
                        "VoIP.ms did not send a message to {dst} via DID {did}: {}",
                        f.status
                    ),
                );
                o.bounce = Some(Bounce {
                    condition: f.condition.to_string(),
                    error_type: f.error_type.to_string(),
                    text,
                });
                record.rev += 1;
                self.outbound.remove(seq);
                self.write(record.clone(), Pending::Bounce);
                self.mailbox.add(record, false);
                self.mailbox.flush(now, &mut self.session, &mut self.out);
            }
        }
    }
}
