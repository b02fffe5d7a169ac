//! The component's connection to the XMPP server (XEP-0114): connect, handshake, keepalive,
//! stream errors and reconnect with back-off.
//!
//! States: idle (waiting to reconnect) → connecting → awaiting the server's stream header →
//! awaiting `<handshake/>` → online. Any failure sends our stream error if the fault is the
//! server's, closes, and schedules a reconnect with exponential back-off and jitter (1 s doubling
//! to 60 s; xmpp.md §4). Liveness: an XEP-0199 ping to the XMPP server's own domain (`xmpp.ping_to`) every `keepalive`,
//! answered within it (at most a minute), else the link is declared dead. Pings also confirm delivery: the
//! server handles a stream in order, so an answer proves it read everything written before.

use crate::core::action::{Action, Level, Outbox, log};
use crate::core::config::XmppConfig;
use crate::core::retry::{Rng, backoff};
use crate::core::secret::Secret;
use crate::core::xmpp::element::{Element, NsContext};
use crate::core::xmpp::framer::{Frame, Framer};
use crate::core::xmpp::handshake::{handshake_digest, handshake_element, stream_header};
use crate::core::xmpp::ns;
use crate::core::xmpp::stanza::build;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Prosody's default `component_stanza_size_limit` (xmpp.md §3): nothing legitimate is larger.
pub const MAX_STANZA_BYTES: usize = 512 * 1024;
/// Element nesting deeper than this is an attack, not a message.
pub const MAX_DEPTH: usize = 32;
/// From TCP connect to `<handshake/>`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// First reconnect delay.
const RECONNECT_BASE: Duration = Duration::from_secs(1);
/// Longest reconnect delay.
const RECONNECT_CAP: Duration = Duration::from_secs(60);
/// How long a clean close waits for the server's `</stream:stream>`.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// A session that stayed up this long resets the back-off.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// What the gateway learns from the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The handshake succeeded: stanzas may flow.
    Online,
    /// The stream is gone; everything written but unconfirmed must be written again later.
    Offline,
    /// A stanza from the server.
    Stanza(Element),
    /// The answer to [`Session::ping`] number `n` arrived.
    PingAnswered(u64),
}

#[derive(Debug)]
enum State {
    Idle {
        reconnect_at: Option<Instant>,
    },
    Connecting,
    AwaitHeader {
        deadline: Instant,
    },
    AwaitHandshake {
        deadline: Instant,
    },
    Online {
        since: Instant,
    },
    /// Shutting down: we sent `</stream:stream>` and read on until the server's, so that
    /// nothing it already handed us is lost.
    Closing {
        deadline: Instant,
    },
    Stopped,
}

/// The session state machine.
#[derive(Debug)]
pub struct Session {
    domain: String,
    secret: Secret,
    ping_to: String,
    keepalive: Duration,
    framer: Framer,
    ctx: NsContext,
    state: State,
    attempt: u32,
    next_ping: u64,
    /// Random per stream: ping ids cannot be guessed, so an answer cannot be forged by another
    /// XMPP user to confirm deliveries the server never saw.
    nonce: String,
    /// Pings in flight: (number, deadline), oldest first.
    pings: VecDeque<(u64, Instant)>,
    last_ping_at: Option<Instant>,
}

impl Session {
    /// A session for `config`; liveness pings go to `config.ping_to` (the server's own domain).
    pub fn new(config: &XmppConfig) -> Session {
        Session {
            domain: config.component.clone(),
            secret: config.secret.clone(),
            ping_to: config.ping_to.clone(),
            keepalive: config.keepalive,
            framer: Framer::new(MAX_STANZA_BYTES, MAX_DEPTH),
            ctx: NsContext::component(),
            state: State::Idle { reconnect_at: None },
            attempt: 0,
            next_ping: 0,
            nonce: String::new(),
            pings: VecDeque::new(),
            last_ping_at: None,
        }
    }

    /// Whether stanzas can be sent now.
    pub fn is_online(&self) -> bool {
        matches!(self.state, State::Online { .. })
    }

    /// Our component domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// How long a ping may go unanswered: the keepalive period, at most a minute. With the
    /// default period the answer's deadline is the next ping's time, so an idle session has one
    /// timer, not two; every timer the loop sets costs the reactor thread a wakeup (issue 9: an
    /// idle gateway wakes 5 times a minute). A dead link is noticed within two periods.
    fn ping_timeout(&self) -> Duration {
        self.keepalive.clamp(Duration::from_secs(1), Duration::from_secs(60))
    }

    /// Begin connecting.
    pub fn start(&mut self, out: &mut Outbox) {
        if matches!(self.state, State::Idle { .. }) {
            self.state = State::Connecting;
            out.push_back(Action::XmppConnect);
        }
    }

    /// The TCP connection is up: open the stream.
    pub fn connected(&mut self, now: Instant, out: &mut Outbox, rng: &mut Rng) {
        if !matches!(self.state, State::Connecting) {
            out.push_back(Action::XmppClose);
            return;
        }
        self.nonce = format!("{:016x}", rng.next_u64());
        self.framer.reset();
        self.ctx = NsContext::component();
        self.pings.clear();
        out.push_back(Action::XmppWrite(stream_header(&self.domain)));
        self.state = State::AwaitHeader { deadline: now + HANDSHAKE_TIMEOUT };
    }

    /// The TCP connection could not be made.
    pub fn connect_failed(&mut self, now: Instant, reason: &str, out: &mut Outbox, rng: &mut Rng) {
        if matches!(self.state, State::Connecting) {
            self.fail(now, Level::Warn, &format!("cannot connect to the XMPP server: {reason}"), false, out, rng);
        }
    }

    /// The connection closed underneath us.
    pub fn closed(&mut self, now: Instant, reason: &str, out: &mut Outbox, rng: &mut Rng) -> Vec<SessionEvent> {
        match self.state {
            State::Idle { .. } | State::Stopped | State::Connecting => Vec::new(),
            State::Closing { .. } => {
                self.state = State::Stopped;
                vec![SessionEvent::Offline]
            }
            _ => self.fail(now, Level::Warn, &format!("XMPP connection lost: {reason}"), false, out, rng),
        }
    }

    /// Bytes from the server.
    pub fn bytes(&mut self, now: Instant, data: &[u8], out: &mut Outbox, rng: &mut Rng) -> Vec<SessionEvent> {
        if matches!(self.state, State::Idle { .. } | State::Connecting | State::Stopped) {
            return Vec::new();
        }
        self.framer.push(data);
        let mut events = Vec::new();
        loop {
            let frame = match self.framer.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    events.extend(self.bad_xml(now, e.stream_condition(), &e, out, rng));
                    break;
                }
            };
            match self.frame(now, frame, out, rng) {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => {}
                Err(mut evs) => {
                    events.append(&mut evs);
                    break;
                }
            }
        }
        events
    }

    /// Handle one frame; `Err` carries the events of a failure that ended the stream.
    fn frame(
        &mut self,
        now: Instant,
        frame: Frame,
        out: &mut Outbox,
        rng: &mut Rng,
    ) -> Result<Option<SessionEvent>, Vec<SessionEvent>> {
        match frame {
            Frame::StreamHeader(bytes) => {
                if !matches!(self.state, State::AwaitHeader { .. }) {
                    return Err(self.protocol_error(now, "a second stream header", out, rng));
                }
                let header = match Element::parse_start_tag(&bytes) {
                    Ok(h) if h.is("stream", ns::STREAMS) => h,
                    _ => {
                        return Err(self.protocol_error(now, "an invalid stream header", out, rng));
                    }
                };
                self.ctx = NsContext::from_header(&header);
                let deadline = now + HANDSHAKE_TIMEOUT;
                match header.get_attr("id") {
                    Some(id) if !id.is_empty() => {
                        out.push_back(Action::XmppWrite(handshake_element(&handshake_digest(
                            id,
                            self.secret.expose(),
                        ))));
                    }
                    // Prosody sends id='' before a host-unknown error: wait for the error.
                    _ => {}
                }
                self.state = State::AwaitHandshake { deadline };
                Ok(None)
            }
            Frame::StreamEnd if matches!(self.state, State::Closing { .. }) => {
                out.push_back(Action::XmppClose);
                self.state = State::Stopped;
                Err(vec![SessionEvent::Offline])
            }
            Frame::StreamEnd => {
                out.push_back(Action::XmppWrite("</stream:stream>".into()));
                Err(self.fail(now, Level::Warn, "the XMPP server closed the stream", true, out, rng))
            }
            Frame::Stanza(bytes) => {
                let element = match Element::parse(&bytes, &self.ctx) {
                    Ok(e) => e,
                    Err(e) => return Err(self.bad_xml(now, e.stream_condition(), &e, out, rng)),
                };
                if element.is("error", ns::STREAMS) {
                    return Err(self.stream_error(now, &element, out, rng));
                }
                match self.state {
                    State::AwaitHandshake { .. } if element.is("handshake", ns::COMPONENT) => {
                        log(out, Level::Info, format!("XMPP component {} online", self.domain));
                        self.state = State::Online { since: now };
                        self.last_ping_at = Some(now);
                        Ok(Some(SessionEvent::Online))
                    }
                    State::AwaitHandshake { .. } => {
                        Err(self.protocol_error(now, &format!("<{}/> before the handshake", element.name()), out, rng))
                    }
                    State::Online { .. } | State::Closing { .. } => {
                        if let Some(n) = self.ping_answer(&element) {
                            return Ok(Some(SessionEvent::PingAnswered(n)));
                        }
                        Ok(Some(SessionEvent::Stanza(element)))
                    }
                    _ => Err(self.protocol_error(now, "a stanza before the stream header", out, rng)),
                }
            }
        }
    }

    /// If `e` answers one of our pings, its number (and the ping is done).
    fn ping_answer(&mut self, e: &Element) -> Option<u64> {
        if !e.is("iq", ns::COMPONENT) || !matches!(e.get_attr("type"), Some("result" | "error")) {
            return None;
        }
        // Only the server we pinged may answer (any user could send an iq result to us).
        let from = e.get_attr("from")?;
        if !from.eq_ignore_ascii_case(&self.ping_to) {
            return None;
        }
        let rest = e.get_attr("id")?.strip_prefix("ping-")?;
        let n: u64 = rest.strip_prefix(self.nonce.as_str())?.strip_prefix('-')?.parse().ok()?;
        let pos = self.pings.iter().position(|(p, _)| *p == n)?;
        self.pings.remove(pos);
        Some(n)
    }

    fn stream_error(&mut self, now: Instant, e: &Element, out: &mut Outbox, rng: &mut Rng) -> Vec<SessionEvent> {
        let condition = e
            .children()
            .find(|c| c.ns() == ns::STREAM_ERRORS && c.name() != "text")
            .map_or("undefined-condition", Element::name)
            .to_string();
        let text = e.get_child("text", ns::STREAM_ERRORS).map(|t| t.text_content()).unwrap_or_default();
        let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
        let (level, hint, fatal) = match condition.as_str() {
            "not-authorized" => (Level::Error, "check xmpp.secret against the server's component_secret", true),
            "host-unknown" => (Level::Error, "the server has no component configured for xmpp.component", true),
            "conflict" => (
                Level::Warn,
                "another connection holds this component (an old session or a second gateway); retrying",
                false,
            ),
            "invalid-from" | "improper-addressing" | "invalid-namespace" | "not-well-formed" => {
                (Level::Error, "the server rejected what the gateway sent: please report this bug", false)
            }
            _ => (Level::Warn, "reconnecting", false),
        };
        let detail = if text.is_empty() { String::new() } else { format!(" \"{text}\"") };
        out.push_back(Action::XmppWrite("</stream:stream>".into()));
        if fatal {
            // A configuration error will not fix itself quickly: wait the longest.
            self.attempt = self.attempt.max(16);
        }
        self.fail(now, level, &format!("XMPP stream error {condition}{detail}: {hint}"), true, out, rng)
    }

    /// The server's XML is broken: our stream error, then close and reconnect.
    fn bad_xml(
        &mut self,
        now: Instant,
        condition: &str,
        e: &dyn std::fmt::Display,
        out: &mut Outbox,
        rng: &mut Rng,
    ) -> Vec<SessionEvent> {
        out.push_back(Action::XmppWrite(build::stream_error(condition, "")));
        self.fail(now, Level::Warn, &format!("XMPP server sent bad XML: {e}"), true, out, rng)
    }

    fn protocol_error(&mut self, now: Instant, what: &str, out: &mut Outbox, rng: &mut Rng) -> Vec<SessionEvent> {
        out.push_back(Action::XmppWrite(build::stream_error("not-well-formed", "")));
        self.fail(now, Level::Warn, &format!("XMPP server sent {what}"), true, out, rng)
    }

    /// Tear down and schedule a reconnect.
    fn fail(
        &mut self,
        now: Instant,
        level: Level,
        why: &str,
        close: bool,
        out: &mut Outbox,
        rng: &mut Rng,
    ) -> Vec<SessionEvent> {
        match self.state {
            State::Stopped => return Vec::new(),
            State::Closing { .. } => {
                // Shutting down anyway: no reconnect.
                out.push_back(Action::XmppClose);
                self.state = State::Stopped;
                return vec![SessionEvent::Offline];
            }
            _ => {}
        }
        let was_online = match self.state {
            State::Online { since } => {
                if now.duration_since(since) >= STABLE_AFTER {
                    self.attempt = 0;
                }
                true
            }
            _ => false,
        };
        if close {
            out.push_back(Action::XmppClose);
        }
        let delay = backoff(self.attempt, RECONNECT_BASE, RECONNECT_CAP, rng);
        self.attempt = self.attempt.saturating_add(1);
        log(out, level, format!("{why}; reconnecting in {:.1}s", delay.as_secs_f64()));
        self.state = State::Idle { reconnect_at: Some(now + delay) };
        self.pings.clear();
        self.framer.reset();
        if was_online { vec![SessionEvent::Offline] } else { Vec::new() }
    }

    /// Send a stanza; returns `false` (and sends nothing) when offline.
    pub fn send(&mut self, xml: String, out: &mut Outbox) -> bool {
        if self.is_online() {
            out.push_back(Action::XmppWrite(xml));
            true
        } else {
            false
        }
    }

    /// Send a ping; its answer comes back as [`SessionEvent::PingAnswered`] with the number
    /// returned here. `None` when offline.
    pub fn ping(&mut self, now: Instant, out: &mut Outbox) -> Option<u64> {
        if !self.is_online() {
            return None;
        }
        self.next_ping += 1;
        let n = self.next_ping;
        out.push_back(Action::XmppWrite(build::ping(&self.domain, &self.ping_to, &format!("ping-{}-{n}", self.nonce))));
        self.pings.push_back((n, now + self.ping_timeout()));
        self.last_ping_at = Some(now);
        Some(n)
    }

    /// Timers: reconnect, handshake deadline, keepalive ping, ping deadline.
    pub fn timeout(&mut self, now: Instant, out: &mut Outbox, rng: &mut Rng) -> Vec<SessionEvent> {
        match self.state {
            State::Idle { reconnect_at: Some(at) } if now >= at => {
                self.state = State::Connecting;
                out.push_back(Action::XmppConnect);
                Vec::new()
            }
            State::AwaitHeader { deadline } | State::AwaitHandshake { deadline } if now >= deadline => {
                out.push_back(Action::XmppWrite("</stream:stream>".into()));
                self.fail(now, Level::Warn, "the XMPP server did not complete the handshake in time", true, out, rng)
            }
            State::Online { .. } => {
                if let Some((_, deadline)) = self.pings.front()
                    && now >= *deadline
                {
                    let secs = self.ping_timeout().as_secs();
                    out.push_back(Action::XmppWrite("</stream:stream>".into()));
                    return self.fail(
                        now,
                        Level::Warn,
                        &format!("no answer to a ping within {secs}s: the XMPP connection is dead"),
                        true,
                        out,
                        rng,
                    );
                }
                let due = self.last_ping_at.is_none_or(|t| now >= t + self.keepalive);
                if self.pings.is_empty() && due {
                    self.ping(now, out);
                }
                Vec::new()
            }
            State::Closing { deadline } if now >= deadline => {
                out.push_back(Action::XmppClose);
                self.state = State::Stopped;
                vec![SessionEvent::Offline]
            }
            _ => Vec::new(),
        }
    }

    /// Whether the session has ended for good (after [`Session::shutdown`]).
    pub fn is_stopped(&self) -> bool {
        matches!(self.state, State::Stopped)
    }

    /// When [`Session::timeout`] next needs to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Idle { reconnect_at } => reconnect_at,
            State::AwaitHeader { deadline } | State::AwaitHandshake { deadline } => Some(deadline),
            State::Online { .. } => match self.pings.front() {
                Some((_, deadline)) => Some(*deadline),
                None => self.last_ping_at.map(|t| t + self.keepalive),
            },
            State::Closing { deadline } => Some(deadline),
            State::Connecting | State::Stopped => None,
        }
    }

    /// Close the stream cleanly for shutdown (XEP-0114 has no other goodbye): send
    /// `</stream:stream>` and keep reading until the server's own, EOF, or [`CLOSE_TIMEOUT`],
    /// since the server may already have handed us stanzas it now considers delivered.
    pub fn shutdown(&mut self, now: Instant, out: &mut Outbox) {
        match self.state {
            State::Online { .. } => {
                out.push_back(Action::XmppWrite("</stream:stream>".into()));
                self.state = State::Closing { deadline: now + CLOSE_TIMEOUT };
                return;
            }
            State::AwaitHeader { .. } | State::AwaitHandshake { .. } => {
                out.push_back(Action::XmppWrite("</stream:stream>".into()));
                out.push_back(Action::XmppClose);
            }
            State::Connecting => out.push_back(Action::XmppClose),
            State::Closing { .. } => return,
            State::Idle { .. } | State::Stopped => {}
        }
        self.state = State::Stopped;
    }
}
