//! Scenario tests of the gateway driven with simulated time: scripts of `(now, Input)` in,
//! actions out. No sockets, no sleeping: time moves when the test says so.

use crate::core::action::{Action, Input, WebhookReply};
use crate::core::config::{Config, SecretFiles};
use crate::core::gateway::Gateway;
use crate::core::phone::{Nanp, Sender};
use crate::core::spool_record::Record;
use crate::core::time::Now;
use crate::core::voipms::api::{CallOutcome, Request};
use crate::core::voipms::webhook::InboundMessage;
use crate::core::xmpp::handshake::handshake_digest;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"{
  "xmpp": {"component": "sms.example.com", "server": "127.0.0.1:5347", "secret": "s3cret"},
  "voipms": {"api_username": "u", "api_password": "p", "backfill_interval_secs": 0},
  "webhook": {"listen": "127.0.0.1:8080", "key": "k"},
  "jid_map": {"alice@example.com": ["+15552345678"], "bob@example.com": ["+15557654321", "+15553334444"]},
  "state_dir": "/var/lib/x"
}"#;

struct Sim {
    gw: Gateway,
    now: Now,
    log: Vec<String>,
    /// Play a live server during `advance`: answer the gateway's pings.
    pong: bool,
    /// Pings written and not yet answered.
    unanswered: Vec<Action>,
    /// Arming writes (id, revision) already reported synced.
    armed_synced: Vec<(String, u32)>,
}

impl Sim {
    fn new() -> Sim {
        Sim::with_config(CONFIG)
    }

    fn with_config(text: &str) -> Sim {
        let config = Config::from_json(text, &SecretFiles::new()).unwrap();
        Sim {
            gw: Gateway::new(config, "boot", 1),
            now: Now { mono: Instant::now(), wall_ms: 1_753_043_056_000 },
            log: Vec::new(),
            pong: true,
            unanswered: Vec::new(),
            armed_synced: Vec::new(),
        }
    }

    fn drain(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(a) = self.gw.poll_action() {
            if let Action::Log(_, line) = &a {
                self.log.push(line.clone());
            } else {
                if matches!(&a, Action::XmppWrite(w) if w.contains("urn:xmpp:ping")) {
                    self.unanswered.push(a.clone());
                }
                out.push(a);
            }
        }
        out
    }

    fn input(&mut self, input: Input<'_>) -> Vec<Action> {
        self.gw.handle(self.now, input);
        let out = self.drain();
        self.arm(out)
    }

    /// Report the writes that arm a send (the record marked "may be in flight" before its call)
    /// as durable at once, so that the call follows, as it would a moment later in real life.
    fn arm(&mut self, mut out: Vec<Action>) -> Vec<Action> {
        loop {
            let fresh: Vec<(String, u32)> = spooled(&out)
                .iter()
                .filter(|r| r.outbound.as_ref().is_some_and(|o| o.unconfirmed_ms.is_some() && o.bounce.is_none()))
                .map(|r| (r.id.clone(), r.rev))
                .filter(|key| !self.armed_synced.contains(key))
                .collect();
            if fresh.is_empty() {
                return out;
            }
            self.armed_synced.extend(fresh.iter().cloned());
            self.gw.handle(self.now, Input::SpoolSynced(fresh.into_iter().map(|(id, _)| id).collect()));
            out.extend(self.drain());
        }
    }

    /// Move time forward, firing every timer that falls due on the way.
    fn advance(&mut self, d: Duration) -> Vec<Action> {
        let end = self.now.after(d);
        let mut out = Vec::new();
        out.extend(self.pong_all());
        while let Some(t) = self.gw.poll_timeout() {
            if t > end.mono {
                break;
            }
            let step = t.saturating_duration_since(self.now.mono);
            self.now = self.now.after(step);
            self.gw.handle_timeout(self.now);
            let actions = self.drain();
            let actions = self.arm(actions);
            out.extend(actions);
            out.extend(self.pong_all());
        }
        self.now = Now { mono: end.mono, wall_ms: end.wall_ms };
        out
    }

    fn bytes(&mut self, s: &str) -> Vec<Action> {
        self.input(Input::XmppBytes(s.as_bytes()))
    }

    /// Start, connect and complete the handshake.
    fn online(&mut self) -> Vec<Action> {
        self.gw.start(self.now);
        let a = self.drain();
        assert!(a.contains(&Action::XmppConnect), "{a:?}");
        self.connect()
    }

    fn connect(&mut self) -> Vec<Action> {
        let a = self.input(Input::XmppConnected);
        assert!(writes(&a).iter().any(|w| w.contains("<stream:stream") && w.contains("to='sms.example.com'")), "{a:?}");
        let a = self.bytes("<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' id='sid' xmlns='jabber:component:accept' from='sms.example.com'>");
        assert_eq!(writes(&a), vec![format!("<handshake>{}</handshake>", handshake_digest("sid", "s3cret"))]);
        self.bytes("<handshake/>")
    }

    fn webhook(&mut self, token: u64, to: &str, text: &str, media: &[&str]) -> Vec<Action> {
        let message = InboundMessage {
            id: Some(format!("v{token}")),
            from: Sender::Nanp(Nanp::parse("5559998888").unwrap()),
            to: vec![Nanp::parse(to).unwrap()],
            text: text.into(),
            media: media.iter().map(|m| m.to_string()).collect(),
            received_at: None,
            mms: !media.is_empty(),
        };
        self.input(Input::Webhook { token, message })
    }

    /// Report every record written in `actions` as durable.
    /// Report every record written in `actions` durable. Returns what was written to XMPP
    /// meanwhile (a received message goes out while its fsync runs) followed by what the sync
    /// caused.
    fn sync_all(&mut self, actions: &[Action]) -> Vec<Action> {
        let ids: Vec<String> = spooled(actions).iter().map(|r| r.id.clone()).collect();
        assert!(!ids.is_empty(), "nothing was spooled: {actions:?}");
        let mut out: Vec<Action> = actions.iter().filter(|a| matches!(a, Action::XmppWrite(_))).cloned().collect();
        out.extend(self.input(Input::SpoolSynced(ids)));
        out
    }

    /// Answer every outstanding ping (and the ones those answers cause), as a live server would.
    fn pong_all(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        while self.pong && !self.unanswered.is_empty() {
            let pings = std::mem::take(&mut self.unanswered);
            out.extend(self.answer_pings(&pings));
        }
        out
    }

    fn answer_pings(&mut self, actions: &[Action]) -> Vec<Action> {
        let mut out = Vec::new();
        for w in writes(actions) {
            if let Some(id) =
                w.split("id='").nth(1).and_then(|r| r.split('\'').next()).filter(|_| w.contains("urn:xmpp:ping"))
            {
                out.extend(
                    self.bytes(&format!("<iq type='result' id='{id}' from='example.com' to='sms.example.com'/>")),
                );
            }
        }
        out
    }

    /// Several chats (from, to, id, body) at once, all spooled, then reported durable together.
    fn chats(&mut self, msgs: &[(&str, &str, &str, &str)]) -> Vec<Action> {
        let mut all = Vec::new();
        for (from, to, id, body) in msgs {
            all.extend(self.chat(from, to, id, body));
        }
        self.sync_all(&all)
    }

    fn chat(&mut self, from: &str, to_local: &str, id: &str, body: &str) -> Vec<Action> {
        self.bytes(&format!(
            "<message type='chat' id='{id}' from='{from}' to='{to_local}@sms.example.com'><body>{body}</body></message>"
        ))
    }
}

/// What was written to the stream, without presence (the domain announces itself at every
/// connect: see `presences`).
fn writes(actions: &[Action]) -> Vec<String> {
    all_writes(actions).into_iter().filter(|w| !w.starts_with("<presence")).collect()
}

/// Presence stanzas written.
fn presences(actions: &[Action]) -> Vec<String> {
    all_writes(actions).into_iter().filter(|w| w.starts_with("<presence")).collect()
}

fn all_writes(actions: &[Action]) -> Vec<String> {
    actions.iter().filter_map(|a| if let Action::XmppWrite(w) = a { Some(w.clone()) } else { None }).collect()
}

fn spooled(actions: &[Action]) -> Vec<Record> {
    actions.iter().filter_map(|a| if let Action::SpoolWrite(r) = a { Some((**r).clone()) } else { None }).collect()
}

fn removed(actions: &[Action]) -> Vec<String> {
    actions.iter().filter_map(|a| if let Action::SpoolRemove(id) = a { Some(id.clone()) } else { None }).collect()
}

fn calls(actions: &[Action]) -> Vec<(u64, Request)> {
    // Every VoIP.ms call (sends, lookups, backfill).
    actions
        .iter()
        .filter_map(|a| if let Action::VoipmsCall { job, request } = a { Some((*job, request.clone())) } else { None })
        .collect()
}

fn message_text(request: &Request) -> String {
    request.params().into_iter().find(|(k, _)| *k == "message").map(|(_, v)| v).unwrap_or_default()
}

fn success() -> CallOutcome {
    CallOutcome::Response { status: 200, body: r#"{"status":"success","sms":1}"#.into() }
}

#[test]
fn handshake_then_keepalive_pings_then_a_dead_link_is_dropped_and_redialled() {
    let mut sim = Sim::new();
    sim.pong = false;
    sim.online();
    assert!(sim.gw.stats().online);
    // Idle for the keepalive interval: a ping to the server (the domain the component lives under).
    let a = sim.advance(Duration::from_secs(60));
    let w = writes(&a);
    assert_eq!(w.len(), 1, "{a:?}");
    assert!(
        w[0].contains("urn:xmpp:ping") && w[0].contains("to='example.com'") && w[0].contains("from='sms.example.com'")
    );
    // Answered: nothing more until the next interval.
    assert!(sim.answer_pings(&a).is_empty());
    let a = sim.advance(Duration::from_secs(59));
    assert!(a.is_empty(), "{a:?}");
    // The next ping goes unanswered: one interval later (when the next would be due) the link
    // is declared dead.
    let a = sim.advance(Duration::from_secs(1));
    assert_eq!(writes(&a).len(), 1);
    let a = sim.advance(Duration::from_secs(59));
    assert!(!a.contains(&Action::XmppClose), "not yet: {a:?}");
    let a = sim.advance(Duration::from_secs(1));
    assert!(a.contains(&Action::XmppClose), "{a:?}");
    assert!(sim.log.iter().any(|l| l.contains("no answer to a ping within 60s")), "{:?}", sim.log);
    assert!(!sim.gw.stats().online);
    // And it dials again after a short back-off.
    let a = sim.advance(Duration::from_secs(1));
    assert!(a.contains(&Action::XmppConnect), "{a:?}");
}

#[test]
fn the_keepalive_pings_the_local_server_not_a_users_remote_domain() {
    // Regression (issue 6, defect 12): the ping went to the first user's domain; a remote one
    // answers over s2s, late, and the link was declared dead again and again.
    let mut sim = Sim::with_config(
        &CONFIG.replace(r#""alice@example.com": ["+15552345678"]"#, r#""alice@remote.example.org": ["+15552345678"]"#),
    );
    sim.pong = false;
    sim.online();
    let a = sim.advance(Duration::from_secs(60));
    let w = writes(&a);
    assert!(w[0].contains("urn:xmpp:ping") && w[0].contains("to='example.com'"), "{w:?}");
    // Only the local server's answer counts.
    let id = w[0].split("id='").nth(1).and_then(|r| r.split('\'').next()).unwrap().to_string();
    sim.bytes(&format!("<iq type='result' id='{id}' from='remote.example.org' to='sms.example.com'/>"));
    sim.bytes(&format!("<iq type='result' id='{id}' from='example.com' to='sms.example.com'/>"));
    let a = sim.advance(Duration::from_secs(40));
    assert!(!a.contains(&Action::XmppClose), "answered by example.com: alive ({:?})", sim.log);
    // With xmpp.ping_to, that server is pinged instead.
    let mut sim = Sim::with_config(
        &CONFIG.replace(r#""secret": "s3cret""#, r#""secret": "s3cret", "ping_to": "xmpp.example.net""#),
    );
    sim.pong = false;
    sim.online();
    let w = writes(&sim.advance(Duration::from_secs(60)));
    assert!(w[0].contains("to='xmpp.example.net'"), "{w:?}");
}

#[test]
fn reconnect_back_off_grows_with_jitter_and_caps_at_a_minute() {
    let mut sim = Sim::new();
    sim.gw.start(sim.now);
    sim.drain();
    let mut delays = Vec::new();
    for _ in 0..12 {
        sim.input(Input::XmppConnectFailed("refused".into()));
        let start = sim.now.mono;
        let mut waited = Duration::ZERO;
        loop {
            let a = sim.advance(Duration::from_millis(100));
            waited += Duration::from_millis(100);
            if a.contains(&Action::XmppConnect) {
                break;
            }
            assert!(waited <= Duration::from_secs(61), "no reconnect after {waited:?}");
        }
        delays.push(sim.now.mono - start);
    }
    for (n, d) in delays.iter().enumerate() {
        let nominal = Duration::from_secs(1u64 << n.min(6)).min(Duration::from_secs(60));
        assert!(
            *d + Duration::from_millis(100) >= nominal / 2 && *d <= nominal + Duration::from_millis(100),
            "attempt {n}: {d:?}"
        );
    }
}

#[test]
fn a_webhook_is_delivered_while_written_answered_after_the_sync_and_removed_once_confirmed() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.webhook(7, "5552345678", "hello", &[]);
    assert_eq!(spooled(&a).len(), 1);
    assert!(!a.iter().any(|x| matches!(x, Action::WebhookReply { .. })), "no answer before the fsync");
    let spool_write = a.iter().position(|x| matches!(x, Action::SpoolWrite(_))).unwrap();
    let stanza = a.iter().position(|x| matches!(x, Action::XmppWrite(w) if w.contains("hello"))).unwrap();
    assert!(spool_write < stanza, "the write is asked for first, the stanza goes out while it runs: {a:?}");
    let synced = sim.input(Input::SpoolSynced(spooled(&a).iter().map(|r| r.id.clone()).collect()));
    assert!(synced.contains(&Action::WebhookReply { token: 7, reply: WebhookReply::Accepted }));
    assert!(writes(&synced).is_empty(), "delivered once: {synced:?}");
    let w = writes(&a);
    assert!(
        w[0].contains("from='+15559998888@sms.example.com'")
            && w[0].contains("to='alice@example.com'")
            && w[0].contains("<body>hello</body>")
    );
    assert!(!w[0].contains("urn:xmpp:delay"));
    assert!(w[1].contains("urn:xmpp:ping"), "a ping confirms delivery: {w:?}");
    assert!(removed(&a).is_empty(), "not removed before the server confirms");
    let a = sim.answer_pings(&a);
    assert_eq!(removed(&a), vec!["boot-1".to_string()]);
}

#[test]
fn webhooks_while_offline_wait_and_carry_a_delay_stamp() {
    let mut sim = Sim::new();
    sim.gw.start(sim.now);
    sim.drain();
    let a = sim.webhook(1, "5557654321", "first", &[]);
    let a = sim.sync_all(&a);
    assert!(a.contains(&Action::WebhookReply { token: 1, reply: WebhookReply::Accepted }));
    assert!(writes(&a).is_empty());
    let a = sim.webhook(2, "5553334444", "second", &["https://m/x.jpg"]);
    sim.sync_all(&a);
    sim.advance(Duration::from_secs(10));
    let a = sim.connect();
    let w = writes(&a);
    assert_eq!(w.len(), 4, "{w:?}"); // two texts, one picture, one ping
    assert!(w[0].contains("first") && w[0].contains("stamp='2025-07-20T20:24:16.000Z'"), "{}", w[0]);
    assert!(w[1].contains("second") && w[1].contains("from='+15559998888%+15553334444@sms.example.com'"));
    assert!(w[2].contains("<body>https://m/x.jpg</body>") && w[2].contains("jabber:x:oob"));
}

#[test]
fn a_stream_lost_before_confirmation_redelivers() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.webhook(1, "5552345678", "fragile", &[]);
    let a = sim.sync_all(&a);
    assert_eq!(writes(&a).len(), 2);
    sim.input(Input::XmppClosed("reset".into()));
    let a = sim.advance(Duration::from_secs(2));
    assert!(a.contains(&Action::XmppConnect));
    let a = sim.connect();
    assert!(writes(&a)[0].contains("fragile"), "written again on the new stream");
    assert_eq!(removed(&sim.answer_pings(&a)), vec!["boot-1".to_string()]);
}

#[test]
fn long_outbound_text_goes_part_by_part_recording_progress() {
    let mut sim = Sim::new();
    sim.online();
    let text: String = (0..900).map(|i| format!("w{i:03} ")).collect(); // 4500 bytes: 3 parts
    let a = sim.chat("alice@example.com/phone", "+15559998888", "m1", &text);
    assert!(calls(&a).is_empty(), "no call before the spool sync");
    let mut a = sim.sync_all(&a);
    let mut sent = Vec::new();
    for part in 0..3 {
        let c = calls(&a);
        assert_eq!(c.len(), 1, "one part at a time: {a:?}");
        sent.push(message_text(&c[0].1));
        a = sim.input(Input::VoipmsResult { job: c[0].0, outcome: success() });
        if part < 2 {
            let progress = spooled(&a);
            assert_eq!(progress[0].outbound.as_ref().unwrap().next_part, part + 1);
            assert!(calls(&a).is_empty(), "the next part waits for the progress to be durable");
            a = sim.sync_all(&a);
        }
    }
    assert_eq!(removed(&a), vec!["boot-1".to_string()]);
    assert_eq!(sent.concat(), text);
    assert!(writes(&a).is_empty(), "no error");
}

#[test]
fn one_conversation_at_a_time_others_in_parallel() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.chats(&[
        ("alice@example.com/phone", "+15559998888", "a1", "one"),
        ("alice@example.com/phone", "+15559998888", "a2", "two"),
        ("bob@example.com/phone", "+15559998888", "b1", "bob"),
    ]);
    let c = calls(&a);
    let texts: Vec<String> = c.iter().map(|(_, r)| message_text(r)).collect();
    assert_eq!(texts, vec!["one".to_string(), "bob".to_string()], "a2 waits behind a1; bob's conversation is separate");
    let a = sim.input(Input::VoipmsResult { job: c[0].0, outcome: success() });
    assert_eq!(calls(&a).iter().map(|(_, r)| message_text(r)).collect::<Vec<_>>(), vec!["two".to_string()]);
}

#[test]
fn a_failure_bounces_with_the_original_id_and_leaves_the_spool_once_delivered() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.chat("alice@example.com/phone", "+15559998888", "m9", "hi");
    let a = sim.sync_all(&a);
    let job = calls(&a)[0].0;
    let a = sim.input(Input::VoipmsResult {
        job,
        outcome: CallOutcome::Response { status: 200, body: r#"{"status":"invalid_dst"}"#.into() },
    });
    let bounce = spooled(&a);
    assert!(bounce[0].outbound.as_ref().unwrap().bounce.is_some(), "the owed error is durable");
    let w = writes(&a);
    assert!(w[0].contains("type='error'") && w[0].contains("id='m9'") && w[0].contains("item-not-found"), "{w:?}");
    assert!(w[0].contains("from='+15559998888@sms.example.com'") && w[0].contains("to='alice@example.com/phone'"));
    assert!(!w[0].contains("<body>"), "the body is not echoed");
    let a = sim.answer_pings(&a);
    assert_eq!(removed(&a), vec!["boot-1".to_string()]);
}

#[test]
fn spool_failures_answer_503_and_wait_errors() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.webhook(3, "5552345678", "x", &[]);
    let ids: Vec<String> = spooled(&a).iter().map(|r| r.id.clone()).collect();
    let a = sim.input(Input::SpoolFailed { ids, reason: "No space left on device".into() });
    assert!(a.contains(&Action::WebhookReply { token: 3, reply: WebhookReply::Unavailable }));
    let a = sim.chat("alice@example.com/phone", "+15559998888", "m2", "hi");
    let ids: Vec<String> = spooled(&a).iter().map(|r| r.id.clone()).collect();
    let a = sim.input(Input::SpoolFailed { ids, reason: "No space left on device".into() });
    let w = writes(&a);
    assert!(w[0].contains("id='m2'") && w[0].contains("resource-constraint") && w[0].contains("type='wait'"), "{w:?}");
    assert!(calls(&a).is_empty());
}

#[test]
fn shutdown_waits_for_calls_in_flight_then_closes_the_stream() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.chat("alice@example.com/phone", "+15559998888", "m1", "last words");
    let a = sim.sync_all(&a);
    let job = calls(&a)[0].0;
    // Before the call, the record says it may be in flight: if we are cut off before VoIP.ms
    // answers, the next start asks before resending.
    let marker = spooled(&a);
    assert!(marker[0].outbound.as_ref().unwrap().unconfirmed_ms.is_some(), "{a:?}");
    let a = sim.input(Input::Shutdown);
    assert!(!a.contains(&Action::Stopped), "a call is in flight");
    let a = sim.input(Input::VoipmsResult { job, outcome: success() });
    assert!(a.contains(&Action::SpoolRemove("boot-1".into())));
    assert_eq!(writes(&a), vec!["</stream:stream>".to_string()], "a clean close once nothing is in flight");
    assert!(!a.contains(&Action::Stopped), "we read on until the server closes too");
    // What the server handed over before its close is still accepted (spooled for later).
    let a = sim.chat("alice@example.com/phone", "+15559998888", "m2", "just in time");
    assert!(calls(&a).is_empty(), "nothing new is sent while stopping");
    let a = sim.sync_all(&a);
    assert!(!a.contains(&Action::Stopped));
    let a = sim.bytes("</stream:stream>");
    assert!(a.contains(&Action::XmppClose));
    assert_eq!(a.last(), Some(&Action::Stopped));
}

#[test]
fn a_restart_after_an_unanswered_send_asks_voipms_before_resending() {
    let mut first = Sim::new();
    first.online();
    let a = first.chat("alice@example.com/phone", "+15559998888", "m1", "maybe sent");
    let a = first.sync_all(&a);
    assert_eq!(calls(&a).len(), 1);
    // The process dies during the call: what is on disk is the armed record.
    let marker = spooled(&a);
    let mut sim = Sim::new();
    sim.gw.restore(marker, "", sim.now);
    sim.gw.start(sim.now);
    let a = sim.drain();
    let c = calls(&a);
    assert!(matches!(c[0].1, Request::Sent { .. }), "a lookup, not a send: {c:?}");
    let found = r#"{"status":"success","sms":[{"id":"1","date":"2025-07-20 16:24:16","type":"0","did":"5552345678","contact":"5559998888","message":"maybe sent"}]}"#;
    let a = sim
        .input(Input::VoipmsResult { job: c[0].0, outcome: CallOutcome::Response { status: 200, body: found.into() } });
    assert_eq!(removed(&a), vec!["boot-1".to_string()], "it went out: done, not sent twice");
    assert!(calls(&a).is_empty());
}

#[test]
fn restored_records_resume_and_new_ids_continue_after_them() {
    let mut first = Sim::new();
    first.online();
    let a = first.webhook(1, "5552345678", "kept", &[]);
    let mut records = spooled(&a);
    let a = first.chat("alice@example.com/phone", "+15559998888", "m1", "unsent");
    records.extend(spooled(&a));

    let mut sim = Sim::new();
    sim.gw.restore(records, "", sim.now);
    sim.drain();
    assert!(sim.log.iter().any(|l| l.contains("1 to deliver over XMPP, 1 to send to VoIP.ms")), "{:?}", sim.log);
    let a = sim.online();
    let w = writes(&a);
    assert!(w[0].contains("kept") && w[0].contains("urn:xmpp:delay"), "a replayed message is stamped: {w:?}");
    sim.gw.handle_timeout(sim.now);
    let a = sim.webhook(5, "5552345678", "new", &[]);
    assert_eq!(spooled(&a)[0].seq, 3, "sequence numbers continue after the restored ones");
}

#[test]
fn a_forged_ping_answer_confirms_nothing() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.webhook(1, "5552345678", "hello", &[]);
    let a = sim.sync_all(&a);
    let ping = writes(&a).into_iter().find(|w| w.contains("urn:xmpp:ping")).expect("a ping");
    let id = ping.split("id='").nth(1).and_then(|r| r.split('\'').next()).unwrap().to_string();
    assert!(id.len() > 20, "ping ids cannot be guessed: {id}");
    // Another user answers with the right id: not the server we pinged, so nothing is removed.
    let a = sim.bytes(&format!("<iq type='result' id='{id}' from='mallory@evil.example' to='sms.example.com'/>"));
    assert!(removed(&a).is_empty(), "{a:?}");
    let a = sim.bytes("<iq type='result' id='ping-1' from='example.com' to='sms.example.com'/>");
    assert!(removed(&a).is_empty(), "a guessed id confirms nothing");
    let a = sim.bytes(&format!("<iq type='result' id='{id}' from='example.com' to='sms.example.com'/>"));
    assert_eq!(removed(&a), vec!["boot-1".to_string()]);
}

#[test]
fn a_malformed_iq_request_gets_bad_request() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.bytes("<iq type='get' id='q1' from='alice@example.com/x' to='sms.example.com'/>");
    let w = writes(&a);
    assert!(w[0].contains("type='error'") && w[0].contains("bad-request") && w[0].contains("id='q1'"), "{w:?}");
    let a =
        sim.bytes("<iq type='get' id='q2' from='bad jid@x' to='sms.example.com'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert!(writes(&a).is_empty(), "cannot be addressed: no answer");
}

#[test]
fn an_iq_for_another_domain_is_not_answered() {
    // Regression (issue 6, defect 10): the answer took the request's `to` as its `from`, so an
    // iq addressed elsewhere got an answer from a foreign domain and the server killed the
    // stream (invalid-from).
    let mut sim = Sim::new();
    sim.online();
    for to in ["example.com", "alice@example.com", "+15559998888@other.example.net/x", "x.sms.example.com"] {
        let a = sim.bytes(&format!(
            "<iq type='get' id='f1' from='alice@example.com/x' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        assert!(writes(&a).is_empty(), "answered an iq to {to}: {a:?}");
        let a = sim.bytes(&format!("<iq type='get' id='f2' from='alice@example.com/x' to='{to}'/>"));
        assert!(writes(&a).is_empty(), "answered a malformed iq to {to}: {a:?}");
    }
    assert!(sim.log.iter().any(|l| l.contains("not for this component")), "{:?}", sim.log);
    // Ours (the domain or a JID in it) still get their answer, from where they were sent.
    for to in ["sms.example.com", "+15559998888@SMS.example.com/x"] {
        let a = sim.bytes(&format!(
            "<iq type='get' id='o1' from='alice@example.com/x' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        let w = writes(&a);
        assert!(w.len() == 1 && w[0].contains("type='result'") && w[0].contains("sms.example.com"), "{to}: {w:?}");
    }
}

fn status(s: &str) -> CallOutcome {
    CallOutcome::Response { status: 200, body: format!(r#"{{"status":"{s}"}}"#) }
}

fn http(code: u16) -> CallOutcome {
    CallOutcome::Response { status: code, body: String::new() }
}

/// Send one chat from alice to `to` and return the first call it makes.
fn send_one(sim: &mut Sim, to: &str, id: &str, body: &str) -> (u64, Request) {
    let a = sim.chat("alice@example.com/phone", to, id, body);
    let a = sim.sync_all(&a);
    calls(&a).remove(0)
}

#[test]
fn transient_failures_are_retried_with_growing_back_off_until_they_succeed() {
    let mut sim = Sim::new();
    sim.online();
    let (mut job, _) = send_one(&mut sim, "+15559998888", "m1", "hi");
    let mut gaps = Vec::new();
    // Failures that certainly sent nothing (HTTP errors are looked up first: see
    // a_proxy_error_after_the_request_left_is_looked_up_not_resent).
    for outcome in [
        CallOutcome::NotSent("refused".into()),
        status("method_maintenance"),
        CallOutcome::NotSent("no route to host".into()),
        status("provider_outofservice"),
    ] {
        let a = sim.input(Input::VoipmsResult { job, outcome });
        assert!(writes(&a).is_empty(), "no error to the sender yet: {a:?}");
        let start = sim.now.mono;
        let mut next = None;
        for _ in 0..400 {
            let a = sim.advance(Duration::from_millis(250));
            if let Some((j, _)) = calls(&a).into_iter().next() {
                next = Some(j);
                break;
            }
        }
        job = next.expect("a retry");
        gaps.push(sim.now.mono - start);
    }
    // Equal jitter around 2 s, 4 s, 8 s, 16 s: each at least half its nominal delay.
    for (n, gap) in gaps.iter().enumerate() {
        let nominal = Duration::from_secs(2 << n);
        assert!(*gap >= nominal / 2 && *gap <= nominal + Duration::from_millis(250), "retry {n}: {gap:?}");
    }
    let a = sim.input(Input::VoipmsResult { job, outcome: success() });
    assert_eq!(removed(&a), vec!["boot-1".to_string()]);
}

#[test]
fn retries_stop_after_the_configured_time_with_an_error() {
    let mut sim = Sim::with_config(
        &CONFIG.replace(r#""backfill_interval_secs": 0"#, r#""backfill_interval_secs": 0, "retry_for_secs": 600"#),
    );
    sim.online();
    let (mut job, _) = send_one(&mut sim, "+15559998888", "m1", "hi");
    let mut bounced = None;
    for _ in 0..100 {
        let a = sim.input(Input::VoipmsResult { job, outcome: http(502) });
        if let Some(w) = writes(&a).into_iter().find(|w| w.contains("type='error'")) {
            bounced = Some(w);
            break;
        }
        let a = sim.advance(Duration::from_secs(301));
        job = calls(&a).first().expect("a retry").0;
    }
    let w = bounced.expect("an error after ten minutes");
    assert!(w.contains("id='m1'") && w.contains("remote-server-timeout") && w.contains("type='wait'"), "{w}");
    assert!(w.contains("gave up after trying for 10 minute(s)"), "{w}");
    assert!(sim.now.wall_ms - 1_753_043_056_000 >= 600_000);
}

#[test]
fn a_failing_number_holds_back_its_own_later_messages_but_not_other_numbers() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.chats(&[
        ("alice@example.com/phone", "+15559998888", "a1", "first"),
        ("alice@example.com/phone", "+15559998888", "a2", "second"),
    ]);
    let (job, _) = calls(&a)[0].clone();
    assert_eq!(calls(&a).len(), 1);
    let a = sim.input(Input::VoipmsResult { job, outcome: CallOutcome::NotSent("refused".into()) });
    assert!(calls(&a).is_empty(), "'second' waits behind the failing 'first'");
    // Another number goes straight through meanwhile.
    let (other, r) = send_one(&mut sim, "+15557776666", "b1", "elsewhere");
    assert_eq!(message_text(&r), "elsewhere");
    sim.input(Input::VoipmsResult { job: other, outcome: success() });
    let a = sim.advance(Duration::from_secs(3));
    let c = calls(&a);
    assert_eq!(c.iter().map(|(_, r)| message_text(r)).collect::<Vec<_>>(), vec!["first".to_string()]);
    let a = sim.input(Input::VoipmsResult { job: c[0].0, outcome: success() });
    assert_eq!(calls(&a).iter().map(|(_, r)| message_text(r)).collect::<Vec<_>>(), vec!["second".to_string()]);
}

#[test]
fn permanent_failures_bounce_at_once_without_retry() {
    for (s, condition, kind) in [
        ("invalid_dst", "item-not-found", "cancel"),
        ("sms_toolong", "not-acceptable", "modify"),
        ("message_empty", "not-acceptable", "modify"),
        ("invalid_credentials", "service-unavailable", "cancel"),
        ("ip_not_enabled", "service-unavailable", "cancel"),
        ("non_sufficient_funds", "service-unavailable", "cancel"),
        ("missing_method", "internal-server-error", "cancel"),
        ("brand_new_status", "undefined-condition", "cancel"),
    ] {
        let mut sim = Sim::new();
        sim.online();
        let (job, _) = send_one(&mut sim, "+15559998888", "m1", "hi");
        let a = sim.input(Input::VoipmsResult { job, outcome: status(s) });
        let w = writes(&a);
        assert!(w[0].contains(condition) && w[0].contains(&format!("type='{kind}'")) && w[0].contains(s), "{s}: {w:?}");
        assert!(calls(&sim.advance(Duration::from_secs(3600))).is_empty(), "{s} is not retried");
    }
}

#[test]
fn sms_failed_gets_one_more_try_then_recipient_unavailable() {
    let mut sim = Sim::new();
    sim.online();
    let (job, _) = send_one(&mut sim, "+15559998888", "m1", "hi");
    let a = sim.input(Input::VoipmsResult { job, outcome: status("sms_failed") });
    assert!(writes(&a).is_empty());
    let a = sim.advance(Duration::from_secs(30));
    let job = calls(&a)[0].0;
    let a = sim.input(Input::VoipmsResult { job, outcome: status("sms_failed") });
    assert!(writes(&a)[0].contains("recipient-unavailable"), "{a:?}");
}

#[test]
fn the_rate_limit_pauses_every_call_for_a_minute() {
    let mut sim = Sim::new();
    sim.online();
    let (job, _) = send_one(&mut sim, "+15559998888", "m1", "one");
    let a = sim.input(Input::VoipmsResult { job, outcome: status("api_limit_exceeded") });
    assert!(writes(&a).is_empty());
    // A message to another number waits too: the limit is the account's.
    let a = sim.chat("alice@example.com/phone", "+15557776666", "m2", "two");
    let a = sim.sync_all(&a);
    assert!(calls(&a).is_empty(), "paused");
    assert!(calls(&sim.advance(Duration::from_secs(59))).is_empty());
    let a = sim.advance(Duration::from_secs(12));
    assert_eq!(calls(&a).len(), 2, "both go after the pause");
}

#[test]
fn the_daily_quota_bounces_at_once_closes_sending_until_eastern_midnight_then_probes() {
    let mut sim = Sim::new();
    sim.online();
    // 2025-07-20 20:24:16 UTC is 16:24:16 EDT: the cap resets at 04:00 UTC, 7 h 35 min later.
    let a = sim.chats(&[
        ("alice@example.com/phone", "+15559998888", "q1", "one"),
        ("alice@example.com/phone", "+15559998888", "q2", "queued behind"),
    ]);
    let job = calls(&a)[0].0;
    let a = sim.input(Input::VoipmsResult { job, outcome: status("limit_reached") });
    let w = writes(&a);
    assert_eq!(w.iter().filter(|w| w.contains("type='error'")).count(), 2, "the queued one bounces too: {w:?}");
    assert!(w[0].contains("resource-constraint") && w[0].contains("type='wait'"));
    assert!(w[0].contains("daily sending limit") && w[0].contains("7 h 35 min"), "{}", w[0]);
    // While closed, a new message is refused at once and VoIP.ms is not called.
    let a = sim.chat("alice@example.com/phone", "+15557776666", "q3", "later");
    assert!(spooled(&a).is_empty() && calls(&a).is_empty());
    assert!(writes(&a)[0].contains("id='q3'") && writes(&a)[0].contains("daily sending limit"));
    // After midnight Eastern: one probe at a time.
    sim.advance(Duration::from_secs(7 * 3600 + 36 * 60));
    assert!(sim.gw.stats().online, "{:?}", sim.log);
    let a = sim.chats(&[
        ("alice@example.com/phone", "+15559998888", "p1", "probe"),
        ("alice@example.com/phone", "+15557776666", "p2", "other number"),
    ]);
    let c = calls(&a);
    assert_eq!(c.len(), 1, "only a probe: {c:?}");
    // The probe hits the cap again: closed for another hour.
    let a = sim.input(Input::VoipmsResult { job: c[0].0, outcome: status("limit_reached") });
    assert!(writes(&a).iter().any(|w| w.contains("about 1 h 0 min") || w.contains("60 min")), "{:?}", writes(&a));
    sim.advance(Duration::from_secs(3601));
    let (job, _) = send_one(&mut sim, "+15559998888", "p3", "probe again");
    let a = sim.input(Input::VoipmsResult { job, outcome: success() });
    assert!(removed(&a).len() == 1);
    // Open again: several at once.
    let a = sim.chats(&[
        ("alice@example.com/phone", "+15552221111", "o1", "a"),
        ("alice@example.com/phone", "+15553334445", "o2", "b"),
    ]);
    assert_eq!(calls(&a).len(), 2, "{a:?} {:?}", sim.log);
}

#[test]
fn a_lost_answer_is_looked_up_and_resent_only_if_it_did_not_go_out() {
    let mut sim = Sim::new();
    sim.online();
    let (job, _) = send_one(&mut sim, "+15559998888", "m1", "hello");
    let a = sim.input(Input::VoipmsResult { job, outcome: CallOutcome::NoAnswer("timeout".into()) });
    assert!(writes(&a).is_empty());
    let a = sim.advance(Duration::from_secs(3));
    let (job, lookup) = calls(&a).remove(0);
    assert_eq!(lookup.method(), "getSMS");
    let params = lookup.params();
    assert!(params.contains(&("type", "0".into())) && params.contains(&("contact", "5559998888".into())), "{params:?}");
    // Not there: send again.
    let a = sim.input(Input::VoipmsResult { job, outcome: status("no_sms") });
    let (job, again) = calls(&a).remove(0);
    assert_eq!(again.method(), "sendSMS");
    // Lost again; this time the lookup finds it: done, not sent a third time.
    sim.input(Input::VoipmsResult { job, outcome: CallOutcome::NoAnswer("reset".into()) });
    let a = sim.advance(Duration::from_secs(5));
    let (job, _) = calls(&a).remove(0);
    let row = r#"{"status":"success","sms":[{"id":"9","date":"2025-07-20 16:24:17","type":"0","did":"5552345678","contact":"5559998888","message":"hello"}]}"#;
    let a = sim.input(Input::VoipmsResult { job, outcome: CallOutcome::Response { status: 200, body: row.into() } });
    assert_eq!(removed(&a), vec!["boot-1".to_string()]);
    // An older identical text does not count as this one.
    let (job, _) = send_one(&mut sim, "+15559998888", "m2", "hello");
    sim.input(Input::VoipmsResult { job, outcome: CallOutcome::NoAnswer("timeout".into()) });
    let a = sim.advance(Duration::from_secs(5));
    let (job, _) = calls(&a).remove(0);
    let old = r#"{"status":"success","sms":[{"id":"8","date":"2025-07-20 15:00:00","type":"0","did":"5552345678","contact":"5559998888","message":"hello"}]}"#;
    let a = sim.input(Input::VoipmsResult { job, outcome: CallOutcome::Response { status: 200, body: old.into() } });
    assert_eq!(calls(&a)[0].1.method(), "sendSMS", "resent");
}

#[test]
fn a_repeated_webhook_is_delivered_once_even_while_the_first_is_being_written() {
    let mut sim = Sim::new();
    sim.online();
    let first = sim.webhook(1, "5552345678", "once", &[]);
    // Same VoIP.ms id (token 1 → id v1) while the first is not yet on disk.
    let message = InboundMessage {
        id: Some("v1".into()),
        from: Sender::Nanp(Nanp::parse("5559998888").unwrap()),
        to: vec![Nanp::parse("5552345678").unwrap()],
        text: "once".into(),
        media: vec![],
        received_at: None,
        mms: false,
    };
    let a = sim.input(Input::Webhook { token: 2, message: message.clone() });
    assert!(spooled(&a).is_empty() && !a.iter().any(|x| matches!(x, Action::WebhookReply { .. })));
    let a = sim.sync_all(&first);
    assert!(a.contains(&Action::WebhookReply { token: 1, reply: WebhookReply::Accepted }));
    assert!(a.contains(&Action::WebhookReply { token: 2, reply: WebhookReply::Accepted }));
    assert_eq!(writes(&a).iter().filter(|w| w.contains("<body>once</body>")).count(), 1);
    // Remembered in the seen log, within half a second (travelling with other spool work).
    let later = sim.advance(Duration::from_millis(500));
    assert!(
        later.iter().any(|x| matches!(x, Action::SeenAppend(lines)
            if crate::core::seen::Seen::load(lines, sim.now.wall_ms).contains("sms:v1"))),
        "{later:?}"
    );
    // Later, after delivery: still a duplicate.
    let a = sim.input(Input::Webhook { token: 3, message });
    assert_eq!(a, vec![Action::WebhookReply { token: 3, reply: WebhookReply::Accepted }]);
}

#[test]
fn seen_messages_survive_a_restart() {
    let mut first = Sim::new();
    first.online();
    let a = first.webhook(1, "5552345678", "once", &[]);
    let mut a = first.sync_all(&a);
    a.extend(first.advance(Duration::from_millis(500)));
    let log: String =
        a.iter().filter_map(|x| if let Action::SeenAppend(l) = x { Some(l.clone()) } else { None }).collect();
    assert!(crate::core::seen::Seen::load(&log, first.now.wall_ms).contains("sms:v1"), "{log}");
    let mut sim = Sim::new();
    sim.gw.restore(vec![], &log, sim.now);
    sim.online();
    let a = sim.webhook(1, "5552345678", "once", &[]);
    assert_eq!(a, vec![Action::WebhookReply { token: 1, reply: WebhookReply::Accepted }]);
}

const BACKFILL: &str = r#""backfill_interval_secs": 600"#;

impl Sim {
    /// A gateway with backfill on, whose cursor says VoIP.ms was last asked up to 16:00 EDT (now
    /// is 16:24:16 EDT), started and online; with the list calls of its first run, one per DID.
    fn backfilling() -> (Sim, Vec<(u64, Request)>) {
        let mut sim = Sim::with_config(&CONFIG.replace(r#""backfill_interval_secs": 0"#, BACKFILL));
        sim.gw.restore(vec![], "cursor\t1753041600000\n", sim.now);
        sim.gw.start(sim.now);
        let lists = calls(&sim.drain());
        sim.connect();
        (sim, lists)
    }
}

fn rows_body(rows: &[(&str, &str, &str, &str)]) -> CallOutcome {
    let items: Vec<String> = rows
        .iter()
        .map(|(id, date, contact, text)| {
            format!(r#"{{"id":"{id}","date":"{date}","type":"1","did":"5552345678","contact":"{contact}","message":"{text}"}}"#)
        })
        .collect();
    CallOutcome::Response { status: 200, body: format!(r#"{{"status":"success","sms":[{}]}}"#, items.join(",")) }
}

#[test]
fn backfill_delivers_what_the_webhook_missed_once_with_voipms_time() {
    let mut sim = Sim::with_config(&CONFIG.replace(r#""backfill_interval_secs": 0"#, BACKFILL));
    // The cursor says we looked until 16:00 EDT; now is 16:24:16 EDT.
    sim.gw.restore(vec![], "cursor\t1753041600000\n", sim.now);
    sim.gw.start(sim.now);
    let a = sim.drain();
    let lists = calls(&a);
    assert_eq!(lists.len(), 3, "one list per DID: {lists:?}");
    assert_eq!(lists[0].1.method(), "getMMS");
    assert!(lists[0].1.params().contains(&("all_messages", "1".into())));
    sim.connect();
    let rows = rows_body(&[
        ("100000007", "2025-07-20 16:10:00", "5559998888", "missed by the webhook"),
        ("100000006", "2025-07-20 15:30:00", "5559998888", "before the cursor"),
        ("100000008", "2025-07-20 16:23:30", "5559998888", "too recent: the webhook may still come"),
    ]);
    let a = sim.input(Input::VoipmsResult { job: lists[0].0, outcome: rows.clone() });
    let records = spooled(&a);
    assert_eq!(records.len(), 1, "{records:?}");
    let a = sim.sync_all(&a);
    let w = writes(&a);
    assert!(w[0].contains("missed by the webhook") && w[0].contains("stamp='2025-07-20T20:10:00.000Z'"), "{w:?}");
    for (job, _) in &lists[1..] {
        sim.input(Input::VoipmsResult { job: *job, outcome: status("no_sms") });
    }
    // The next run finds the same row again: not delivered twice.
    let a = sim.advance(Duration::from_secs(601));
    let lists = calls(&a);
    assert_eq!(lists.len(), 3);
    let a = sim.input(Input::VoipmsResult { job: lists[0].0, outcome: rows });
    let again = spooled(&a);
    assert_eq!(again.len(), 1, "only the row that was too recent last time: {again:?}");
    assert_eq!(again[0].inbound.as_ref().unwrap().text, "too recent: the webhook may still come");
}

#[test]
fn backfill_matches_a_webhook_message_by_content_when_ids_differ() {
    let (mut sim, lists) = Sim::backfilling();
    // The webhook brings it (id v1) ...
    let a = sim.webhook(1, "5552345678", "hello there", &[]);
    sim.sync_all(&a);
    // ... and the list shows it under another id, dated when it came (a minute earlier here).
    let row = rows_body(&[("555", "2025-07-20 16:23:16", "5559998888", "hello there")]);
    sim.advance(Duration::from_secs(150));
    let a = sim.input(Input::VoipmsResult { job: lists[0].0, outcome: row });
    assert!(spooled(&a).is_empty(), "matched by sender, DID, text and time: {a:?}");
}

// Regression tests from the second review: each failed before its fix.

/// One step of simulated time, firing due timers once, and whether the next deadline is
/// already past (a deadline that `handle_timeout` does not clear makes the shell spin).
fn step_and_check_spin(sim: &mut Sim, d: Duration) -> bool {
    sim.now = sim.now.after(d);
    sim.gw.handle_timeout(sim.now);
    let a = sim.drain();
    sim.arm(a);
    sim.gw.poll_timeout().is_some_and(|t| t <= sim.now.mono)
}

#[test]
fn a_retry_due_while_the_quota_is_closed_does_not_spin_the_timer() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.chats(&[
        ("alice@example.com/phone", "+15559998888", "a1", "to A"),
        ("alice@example.com/phone", "+15557776666", "b1", "to B"),
    ]);
    let c = calls(&a);
    assert_eq!(c.len(), 2);
    sim.input(Input::VoipmsResult { job: c[0].0, outcome: status("limit_reached") });
    sim.input(Input::VoipmsResult { job: c[1].0, outcome: http(500) });
    // B's back-off (<= 2 s) elapses while sending is closed for hours.
    assert!(!step_and_check_spin(&mut sim, Duration::from_secs(3)), "poll_timeout is in the past: busy loop");
}

#[test]
fn a_retry_due_during_a_rate_limit_pause_does_not_spin_the_timer() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.chats(&[
        ("alice@example.com/phone", "+15559998888", "a1", "to A"),
        ("alice@example.com/phone", "+15557776666", "b1", "to B"),
    ]);
    let c = calls(&a);
    sim.input(Input::VoipmsResult { job: c[0].0, outcome: status("api_limit_exceeded") });
    sim.input(Input::VoipmsResult { job: c[1].0, outcome: http(503) });
    assert!(!step_and_check_spin(&mut sim, Duration::from_secs(3)), "poll_timeout is in the past: busy loop");
}

#[test]
fn a_retry_due_while_every_slot_is_busy_does_not_spin_the_timer() {
    let mut sim = Sim::new();
    sim.online();
    let (job, _) = send_one(&mut sim, "+15552220001", "x1", "one");
    sim.input(Input::VoipmsResult { job, outcome: http(503) });
    // Four other conversations keep every slot busy (VoIP.ms is slow).
    for (n, to) in ["+15552220002", "+15552220003", "+15552220004", "+15552220005"].iter().enumerate() {
        send_one(&mut sim, to, &format!("y{n}"), "busy");
    }
    assert!(!step_and_check_spin(&mut sim, Duration::from_secs(3)), "poll_timeout is in the past: busy loop");
}

#[test]
fn a_lookup_does_not_take_an_earlier_identical_text_for_this_one() {
    let mut sim = Sim::new();
    sim.online();
    let (job, _) = send_one(&mut sim, "+15559998888", "m1", "ok");
    sim.input(Input::VoipmsResult { job, outcome: success() }); // 16:24:16 EDT
    sim.advance(Duration::from_secs(30));
    let (job, _) = send_one(&mut sim, "+15559998888", "m2", "ok"); // 16:24:46, answer lost
    sim.input(Input::VoipmsResult { job, outcome: CallOutcome::NoAnswer("timeout".into()) });
    let a = sim.advance(Duration::from_secs(3));
    let (job, lookup) = calls(&a).remove(0);
    assert_eq!(lookup.method(), "getSMS");
    // VoIP.ms never got m2: only m1's row is listed.
    let row = r#"{"status":"success","sms":[{"id":"1","date":"2025-07-20 16:24:16","type":"0","did":"5552345678","contact":"5559998888","message":"ok"}]}"#;
    let a = sim.input(Input::VoipmsResult { job, outcome: CallOutcome::Response { status: 200, body: row.into() } });
    assert!(removed(&a).is_empty(), "m2 was dropped as 'sent' although it never went out: {:?}", sim.log);
}

#[test]
fn backfill_delivers_a_second_identical_text() {
    let (mut sim, lists) = Sim::backfilling();
    // The webhook is broken; the contact texts "ok" at 16:10 and again at 16:28.
    let a = sim.input(Input::VoipmsResult {
        job: lists[0].0,
        outcome: rows_body(&[("101", "2025-07-20 16:10:00", "5559998888", "ok")]),
    });
    assert_eq!(spooled(&a).len(), 1);
    sim.sync_all(&a);
    for (job, _) in &lists[1..] {
        sim.input(Input::VoipmsResult { job: *job, outcome: status("no_sms") });
    }
    let a = sim.advance(Duration::from_secs(601)); // 16:34:17
    let lists = calls(&a);
    let a = sim.input(Input::VoipmsResult {
        job: lists[0].0,
        outcome: rows_body(&[
            ("102", "2025-07-20 16:18:00", "5559998888", "ok"),
            ("101", "2025-07-20 16:10:00", "5559998888", "ok"),
        ]),
    });
    assert_eq!(spooled(&a).len(), 1, "the second 'ok' (id 102) is never delivered: {:?}", sim.log);
}

#[test]
fn the_backfill_cursor_waits_for_what_the_run_found_to_be_on_disk() {
    let (mut sim, lists) = Sim::backfilling();
    let rows = rows_body(&[("101", "2025-07-20 16:05:00", "5559998888", "missed")]);
    let a = sim.input(Input::VoipmsResult { job: lists[0].0, outcome: rows.clone() });
    let ids: Vec<String> = spooled(&a).iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), 1);
    for (job, _) in &lists[1..] {
        sim.input(Input::VoipmsResult { job: *job, outcome: status("no_sms") });
    }
    sim.input(Input::SpoolFailed { ids, reason: "No space left on device".into() });
    // The disk recovers; the next run lists the same row.
    let a = sim.advance(Duration::from_secs(601));
    let lists = calls(&a);
    let a = sim.input(Input::VoipmsResult { job: lists[0].0, outcome: rows });
    assert_eq!(spooled(&a).len(), 1, "the row is never looked at again: lost");
}

#[test]
fn only_the_probe_reopens_the_quota() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.chats(&[
        ("alice@example.com/phone", "+15559998888", "a1", "to A"),
        ("alice@example.com/phone", "+15557776666", "b1", "to B"),
    ]);
    let c = calls(&a);
    let job_of = |t: &str| c.iter().find(|(_, r)| message_text(r) == t).unwrap().0;
    sim.input(Input::VoipmsResult { job: job_of("to A"), outcome: status("limit_reached") });
    sim.input(Input::VoipmsResult { job: job_of("to B"), outcome: CallOutcome::NoAnswer("timeout".into()) });
    let a = sim.advance(Duration::from_secs(3));
    let (job, lookup) = calls(&a).remove(0);
    assert_eq!(lookup.method(), "getSMS", "lookups still run while closed");
    let row = r#"{"status":"success","sms":[{"id":"1","date":"2025-07-20 16:24:16","type":"0","did":"5552345678","contact":"5557776666","message":"to B"}]}"#;
    sim.input(Input::VoipmsResult { job, outcome: CallOutcome::Response { status: 200, body: row.into() } });
    // Hours before midnight: a new message must still be refused without a call.
    let a = sim.chat("alice@example.com/phone", "+15553334445", "c1", "new");
    assert!(spooled(&a).is_empty(), "accepted although the daily cap is spent: {:?}", sim.log);
}

#[test]
fn a_message_spooled_as_the_quota_is_hit_is_bounced_too() {
    let mut sim = Sim::new();
    sim.online();
    let (job, _) = send_one(&mut sim, "+15559998888", "a1", "to A");
    let pending_b = sim.chat("alice@example.com/phone", "+15557776666", "b1", "to B");
    assert_eq!(spooled(&pending_b).len(), 1);
    sim.input(Input::VoipmsResult { job, outcome: status("limit_reached") });
    let a = sim.sync_all(&pending_b);
    assert!(
        writes(&a).iter().any(|w| w.contains("id='b1'") && w.contains("type='error'")),
        "b1 gets no error; it will be sent ~7 h later without the sender knowing: {a:?}"
    );
}

#[test]
fn the_cursor_is_not_written_with_an_unsynced_backfilled_record() {
    let (mut sim, lists) = Sim::backfilling();
    for (job, _) in &lists[1..] {
        sim.input(Input::VoipmsResult { job: *job, outcome: status("no_sms") });
    }
    let a = sim.input(Input::VoipmsResult {
        job: lists[0].0,
        outcome: rows_body(&[("101", "2025-07-20 16:05:00", "5559998888", "missed")]),
    });
    let write_at = a.iter().position(|x| matches!(x, Action::SpoolWrite(_))).unwrap();
    let cursor_at = a.iter().position(|x| matches!(x, Action::SeenAppend(l) if l.contains("cursor")));
    // Spool::apply appends seen lines *before* writing the batch: a kill -9 in between
    // leaves the cursor past a row that is not on disk.
    assert!(cursor_at.is_none(), "cursor moved in the same batch as the unsynced record (write at {write_at}): {a:?}");
}

#[test]
fn backfill_due_during_a_rate_limit_pause_does_not_spin_the_timer() {
    let (mut sim, lists) = Sim::backfilling();
    for (job, _) in &lists {
        sim.input(Input::VoipmsResult { job: *job, outcome: status("no_sms") });
    }
    sim.advance(Duration::from_secs(590));
    let (job, _) = send_one(&mut sim, "+15559998888", "m1", "hi");
    sim.input(Input::VoipmsResult { job, outcome: status("api_limit_exceeded") });
    assert!(!step_and_check_spin(&mut sim, Duration::from_secs(15)), "backfill due during the pause: busy loop");
}

#[test]
fn unsafe_ids_from_backfill_rows_and_send_answers_are_skipped() {
    // Regression (issue 6, defect 9): ids reach the seen log; one with a tab or newline must
    // never be used.
    let (mut sim, lists) = Sim::backfilling();
    let a = sim.input(Input::VoipmsResult {
        job: lists[0].0,
        outcome: rows_body(&[
            ("1\\nquota\\t99999999999999\\nx", "2025-07-20 16:10:00", "5559998888", "injected"),
            ("102", "2025-07-20 16:11:00", "5559998888", "fine"),
        ]),
    });
    let texts: Vec<String> = spooled(&a).iter().map(|r| r.inbound.as_ref().unwrap().text.clone()).collect();
    assert_eq!(texts, vec!["fine".to_string()], "{a:?}");
    assert!(
        sim.log.iter().any(|l| l.contains("skipped 1 message(s) whose VoIP.ms id is not a plain id")),
        "{:?}",
        sim.log
    );
    let (job, _) = send_one(&mut sim, "+15559998888", "m1", "hi");
    let answer = CallOutcome::Response {
        status: 200,
        body: r#"{"status":"success","sms":"7\nquota\t99999999999999\nx"}"#.into(),
    };
    let mut a = sim.input(Input::VoipmsResult { job, outcome: answer });
    a.extend(sim.advance(Duration::from_secs(1)));
    assert!(removed(&a).contains(&"boot-2".to_string()), "sent all the same: {a:?}");
    let lines: String =
        a.iter().filter_map(|x| if let Action::SeenAppend(l) = x { Some(l.clone()) } else { None }).collect();
    assert!(!lines.lines().any(|l| l.starts_with("quota") || l.starts_with('x')), "{lines:?}");
    assert!(sim.log.iter().any(|l| l.contains("not a plain id")), "{:?}", sim.log);
}

impl Sim {
    /// A webhook with VoIP.ms id `id` from the usual contact to alice's DID, synced.
    fn webhook_with_id(&mut self, token: u64, id: &str, text: &str) -> Vec<Action> {
        let message = InboundMessage {
            id: Some(id.into()),
            from: Sender::Nanp(Nanp::parse("5559998888").unwrap()),
            to: vec![Nanp::parse("5552345678").unwrap()],
            text: text.into(),
            media: vec![],
            received_at: None,
            mms: false,
        };
        let a = self.input(Input::Webhook { token, message });
        self.sync_all(&a)
    }
}

#[test]
fn backfill_delivers_a_second_identical_text_whose_webhook_was_lost() {
    // Regression (issue 6, defect 4): "ok" (101) came by webhook, "ok" again (102) did not.
    // Row 101 was skipped by id without claiming its fingerprint, so row 102 claimed it and
    // was never delivered. Newest first (as VoIP.ms lists) and oldest first.
    for newest_first in [true, false] {
        let (mut sim, lists) = Sim::backfilling();
        let a = sim.webhook_with_id(1, "101", "ok");
        assert_eq!(writes(&a).iter().filter(|w| w.contains("<body>ok</body>")).count(), 1);
        let mut rows = vec![
            ("102", "2025-07-20 16:21:00", "5559998888", "ok"),
            ("101", "2025-07-20 16:20:00", "5559998888", "ok"),
        ];
        if !newest_first {
            rows.reverse();
        }
        let a = sim.input(Input::VoipmsResult { job: lists[0].0, outcome: rows_body(&rows) });
        let found: Vec<Option<String>> =
            spooled(&a).iter().map(|r| r.inbound.as_ref().unwrap().voipms_id.clone()).collect();
        assert_eq!(found, vec![Some("102".to_string())], "newest first: {newest_first}; {:?}", sim.log);
    }
}

#[test]
fn a_webhook_message_and_its_row_under_another_id_still_match_after_a_restart() {
    // The link from a webhook's id to its fingerprint is in the seen log: after a restart, row
    // 101 (seen by id) takes its own fingerprint, and 102 is new.
    let mut first = Sim::new();
    first.online();
    let mut a = first.webhook_with_id(1, "101", "ok");
    a.extend(first.advance(Duration::from_millis(500)));
    let log: String =
        a.iter().filter_map(|x| if let Action::SeenAppend(l) = x { Some(l.clone()) } else { None }).collect();
    let mut sim = Sim::with_config(&CONFIG.replace(r#""backfill_interval_secs": 0"#, BACKFILL));
    sim.gw.restore(vec![], &format!("cursor\t1753041600000\n{log}"), sim.now);
    sim.gw.start(sim.now);
    let lists = calls(&sim.drain());
    sim.connect();
    let rows = rows_body(&[
        ("102", "2025-07-20 16:21:00", "5559998888", "ok"),
        ("101", "2025-07-20 16:20:00", "5559998888", "ok"),
    ]);
    let a = sim.input(Input::VoipmsResult { job: lists[0].0, outcome: rows });
    let found: Vec<Option<String>> =
        spooled(&a).iter().map(|r| r.inbound.as_ref().unwrap().voipms_id.clone()).collect();
    assert_eq!(found, vec![Some("102".to_string())], "{:?}", sim.log);
}

/// A getMMS list with one MMS row whose media the list left out (`col_media*` present, empty).
fn mms_row_without_media(id: &str, date: &str, text: &str) -> CallOutcome {
    let row = format!(
        r#"{{"id":"{id}","date":"{date}","type":"1","did":"5552345678","contact":"5559998888","message":"{text}","col_media1":"","col_media2":"","col_media3":"","media":[]}}"#
    );
    CallOutcome::Response { status: 200, body: format!(r#"{{"status":"success","sms":[{row}]}}"#) }
}

fn media_answer(date: &str, urls: &[&str]) -> CallOutcome {
    let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    CallOutcome::Response {
        status: 200,
        body: format!(r#"{{"status":"success","id":"1","date":"{date}","media":[{}]}}"#, urls.join(",")),
    }
}

/// Finish the other DIDs' list calls of a backfill run with nothing found.
fn finish_other_lists(sim: &mut Sim, lists: &[(u64, Request)]) {
    for (job, _) in &lists[1..] {
        sim.input(Input::VoipmsResult { job: *job, outcome: status("no_sms") });
    }
}

#[test]
fn backfill_fetches_the_media_a_listed_mms_lacks() {
    // Regression (issue 6, defect 5): a row is an MMS when it has media columns; one without
    // media gets getMediaMMS, and the cursor waits for it.
    let (mut sim, lists) = Sim::backfilling();
    finish_other_lists(&mut sim, &lists);
    let a = sim.input(Input::VoipmsResult {
        job: lists[0].0,
        outcome: mms_row_without_media("200000001", "2025-07-20 16:10:00", ""),
    });
    let c = calls(&a);
    assert_eq!(c.len(), 1, "a getMediaMMS lookup: {a:?}");
    assert_eq!(c[0].1, Request::Media { id: "200000001".into() });
    assert!(spooled(&a).is_empty() && !a.iter().any(|x| matches!(x, Action::SeenAppend(l) if l.contains("cursor"))));
    let a = sim.input(Input::VoipmsResult {
        job: c[0].0,
        outcome: media_answer("2025-07-20 16:10:00", &["https://voip.ms/media/x/1.jpg"]),
    });
    let records = spooled(&a);
    assert_eq!(records.len(), 1, "{a:?}");
    let m = records[0].inbound.as_ref().unwrap();
    assert_eq!(
        (m.text.as_str(), m.media.clone(), m.mms),
        ("", vec!["https://voip.ms/media/x/1.jpg".to_string()], true)
    );
    let a = sim.sync_all(&a);
    assert!(writes(&a).iter().any(|w| w.contains("jabber:x:oob") && w.contains("1.jpg")), "{a:?}");
}

#[test]
fn an_mms_whose_content_voipms_does_not_provide_is_delivered_with_a_note() {
    // Nothing vanishes: a picture-only MMS whose media the lookup does not give (none, or the
    // answer describes another message: its date differs) reaches the user as a short note.
    for answer in
        [media_answer("2025-07-20 16:10:00", &[]), media_answer("2025-07-19 09:00:00", &["https://x/other.jpg"])]
    {
        let (mut sim, lists) = Sim::backfilling();
        finish_other_lists(&mut sim, &lists);
        let a = sim.input(Input::VoipmsResult {
            job: lists[0].0,
            outcome: mms_row_without_media("200000001", "2025-07-20 16:10:00", ""),
        });
        let (job, _) = calls(&a)[0].clone();
        let a = sim.input(Input::VoipmsResult { job, outcome: answer.clone() });
        let records = spooled(&a);
        assert_eq!(records.len(), 1, "{a:?}");
        let m = records[0].inbound.as_ref().unwrap();
        assert!(m.media.is_empty(), "another message's media are not taken: {m:?}");
        assert!(m.text.contains("MMS") && m.text.contains("VoIP.ms did not provide"), "{}", m.text);
    }
    // With text, the text goes alone.
    let (mut sim, lists) = Sim::backfilling();
    finish_other_lists(&mut sim, &lists);
    let a = sim.input(Input::VoipmsResult {
        job: lists[0].0,
        outcome: mms_row_without_media("200000001", "2025-07-20 16:10:00", "a long text sent as MMS"),
    });
    let (job, _) = calls(&a)[0].clone();
    let a = sim.input(Input::VoipmsResult { job, outcome: media_answer("2025-07-20 16:10:00", &[]) });
    assert_eq!(spooled(&a)[0].inbound.as_ref().unwrap().text, "a long text sent as MMS");
}

#[test]
fn a_listed_mms_that_getmediamms_does_not_know_is_an_sms() {
    let (mut sim, lists) = Sim::backfilling();
    finish_other_lists(&mut sim, &lists);
    let a = sim.input(Input::VoipmsResult {
        job: lists[0].0,
        outcome: mms_row_without_media("100000001", "2025-07-20 16:10:00", "plain text"),
    });
    let (job, _) = calls(&a)[0].clone();
    let a = sim.input(Input::VoipmsResult { job, outcome: status("invalid_id") });
    let m = spooled(&a)[0].inbound.clone().unwrap();
    assert_eq!((m.text.as_str(), m.mms, m.voipms_id.as_deref()), ("plain text", false, Some("100000001")));
    // A lookup that fails for another reason leaves the run incomplete: it is redone soon.
    let (mut sim, lists) = Sim::backfilling();
    finish_other_lists(&mut sim, &lists);
    let a = sim.input(Input::VoipmsResult {
        job: lists[0].0,
        outcome: mms_row_without_media("200000001", "2025-07-20 16:10:00", ""),
    });
    let (job, _) = calls(&a)[0].clone();
    let a = sim.input(Input::VoipmsResult { job, outcome: http(503) });
    assert!(spooled(&a).is_empty());
    let a = sim.advance(Duration::from_secs(61));
    assert!(!a.iter().any(|x| matches!(x, Action::SeenAppend(l) if l.contains("cursor"))), "{a:?}");
    assert_eq!(calls(&a).len(), 3, "the run is redone within a minute: {a:?}");
}

#[test]
fn a_proxy_error_after_the_request_left_is_looked_up_not_resent() {
    // Regression (issue 6, defect 7): HTTP 502 (or garbage, or no status) was retried blind;
    // VoIP.ms may already have sent it, so it is looked up first.
    for outcome in
        [http(502), http(504), CallOutcome::Response { status: 200, body: "<html>oops</html>".into() }, status_less()]
    {
        let mut sim = Sim::new();
        sim.online();
        let (job, _) = send_one(&mut sim, "+15559998888", "m1", "exactly once");
        let a = sim.input(Input::VoipmsResult { job, outcome: outcome.clone() });
        assert!(writes(&a).is_empty() && calls(&a).is_empty(), "{a:?}");
        let a = sim.advance(Duration::from_secs(5));
        let (job, lookup) = calls(&a).remove(0);
        assert_eq!(lookup.method(), "getSMS", "looked up, not resent, after {outcome:?}");
        let row = r#"{"status":"success","sms":[{"id":"9","date":"2025-07-20 16:24:16","type":"0","did":"5552345678","contact":"5559998888","message":"exactly once"}]}"#;
        let a =
            sim.input(Input::VoipmsResult { job, outcome: CallOutcome::Response { status: 200, body: row.into() } });
        assert_eq!(removed(&a), vec!["boot-1".to_string()], "it went out: done");
        assert!(calls(&a).is_empty() && writes(&a).is_empty());
    }
}

#[test]
fn a_proxy_error_when_nothing_went_out_is_resent_after_the_lookup() {
    let mut sim = Sim::new();
    sim.online();
    let (job, _) = send_one(&mut sim, "+15559998888", "m1", "hi");
    sim.input(Input::VoipmsResult { job, outcome: http(503) });
    let a = sim.advance(Duration::from_secs(5));
    let (job, lookup) = calls(&a).remove(0);
    assert_eq!(lookup.method(), "getSMS");
    let a = sim.input(Input::VoipmsResult { job, outcome: status("no_sms") });
    let (job, again) = calls(&a).remove(0);
    assert_eq!(again.method(), "sendSMS");
    let a = sim.input(Input::VoipmsResult { job, outcome: success() });
    assert_eq!(removed(&a), vec!["boot-1".to_string()]);
    // A request that never left is resent without a lookup.
    let (job, _) = send_one(&mut sim, "+15559998888", "m2", "again");
    sim.input(Input::VoipmsResult { job, outcome: CallOutcome::NotSent("connection refused".into()) });
    let a = sim.advance(Duration::from_secs(5));
    assert_eq!(calls(&a).remove(0).1.method(), "sendSMS");
}

fn status_less() -> CallOutcome {
    CallOutcome::Response { status: 200, body: "{}".into() }
}

/// The chat notices (not errors) written to `to`.
fn notices_to(actions: &[Action], to: &str) -> Vec<String> {
    writes(actions)
        .into_iter()
        .filter(|w| w.starts_with("<message") && w.contains("type='chat'") && w.contains(&format!("to='{to}'")))
        .collect()
}

#[test]
fn a_late_bounce_also_goes_to_the_bare_jid_as_a_chat_notice() {
    // Regression (issue 6, defect 8): after hours of retries the error went only to the full
    // JID the message came from; that resource is usually gone by then, and servers drop
    // errors to a departed resource. The notice to the bare JID is stored offline.
    let mut sim = Sim::with_config(
        &CONFIG.replace(r#""backfill_interval_secs": 0"#, r#""backfill_interval_secs": 0, "retry_for_secs": 600"#),
    );
    sim.online();
    let text = "Running late, see you at the station at eight instead of seven";
    let (mut job, _) = send_one(&mut sim, "+15559998888", "m1", text);
    let mut bounced = Vec::new();
    for _ in 0..100 {
        let a = sim.input(Input::VoipmsResult { job, outcome: CallOutcome::NotSent("connection refused".into()) });
        if writes(&a).iter().any(|w| w.contains("type='error'")) {
            bounced = a;
            break;
        }
        let a = sim.advance(Duration::from_secs(301));
        job = calls(&a).first().expect("a retry").0;
    }
    let w = writes(&bounced);
    assert!(
        w.iter()
            .any(|w| w.contains("type='error'") && w.contains("to='alice@example.com/phone'") && w.contains("id='m1'")),
        "{w:?}"
    );
    let notices = notices_to(&bounced, "alice@example.com");
    assert_eq!(notices.len(), 1, "a notice to the bare JID: {w:?}");
    let n = &notices[0];
    assert!(n.contains("from='+15559998888@sms.example.com'"), "{n}");
    assert!(n.contains("was not sent") && n.contains("gave up after trying for 10 minute(s)"), "{n}");
    assert!(
        n.contains("Running late, see you at the station at…") || n.contains("Running late, see you at the…"),
        "{n}"
    );
    assert!(!n.contains("seven"), "only the first words: {n}");
    // What is owed is durable: the record says a notice goes too.
    let record = spooled(&bounced).into_iter().next().expect("the bounce is spooled");
    assert!(record.outbound.unwrap().bounce.unwrap().notice);
}

#[test]
fn a_bounce_answered_at_once_needs_no_notice() {
    let mut sim = Sim::new();
    sim.online();
    let (job, _) = send_one(&mut sim, "+15559998888", "m1", "hi");
    let a = sim.input(Input::VoipmsResult { job, outcome: status("invalid_dst") });
    assert!(writes(&a).iter().any(|w| w.contains("type='error'")));
    assert!(notices_to(&a, "alice@example.com").is_empty(), "{a:?}");
    // Nor a refusal by the router.
    let a = sim.chat("eve@example.com/x", "+15559998888", "e1", "hi");
    assert!(notices_to(&a, "eve@example.com").is_empty(), "{a:?}");
}

#[test]
fn a_bounce_after_a_restart_also_sends_a_notice() {
    let mut first = Sim::new();
    first.online();
    let a = first.chat("alice@example.com/phone", "+15559998888", "m1", "before the restart");
    let mut records = spooled(&a);
    // Accepted by the previous run (another boot id), moments ago.
    records[0].id = "earlier-1".into();
    let mut sim = Sim::new();
    sim.gw.restore(records, "", sim.now);
    sim.gw.start(sim.now);
    let a = sim.drain();
    let (job, _) = calls(&sim.arm(a)).remove(0);
    sim.connect();
    let a = sim.input(Input::VoipmsResult { job, outcome: status("invalid_dst") });
    let notices = notices_to(&a, "alice@example.com");
    assert_eq!(notices.len(), 1, "{a:?}");
    assert!(
        notices[0].contains("before the restart") && notices[0].contains("VoIP.ms cannot send to this number"),
        "{}",
        notices[0]
    );
}

/// A server's delivery error for stanza `id`, from `from` to `to`.
fn delivery_error(id: &str, from: &str, to: &str, kind: &str, condition: &str) -> String {
    format!(
        "<message type='error' id='{id}' from='{from}' to='{to}'><error type='{kind}'><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    )
}

fn undeliverable(actions: &[Action]) -> Vec<crate::core::spool_record::Undeliverable> {
    actions
        .iter()
        .filter_map(|a| if let Action::SpoolUndeliverable(u) = a { Some((**u).clone()) } else { None })
        .collect()
}

const CONTACT: &str = "+15559998888@sms.example.com";

impl Sim {
    /// A webhook text for alice, delivered; with `confirm`, the server's ping answer too.
    fn delivered(&mut self, text: &str, media: &[&str], confirm: bool) -> Vec<Action> {
        let a = self.webhook(1, "5552345678", text, media);
        let a = self.sync_all(&a);
        assert!(writes(&a).iter().any(|w| w.contains(&format!("<body>{text}</body>"))), "{a:?}");
        if confirm {
            let b = self.answer_pings(&a);
            assert_eq!(removed(&b), vec!["boot-1".to_string()], "confirmed and out of the spool");
        }
        a
    }
}

#[test]
fn a_cancel_error_after_the_ping_answer_sets_the_message_aside_as_undeliverable() {
    // Regression (issue 6, defect 6): once the ping was answered the record was deleted, and a
    // later <message type='error'> for it was logged at Info and dropped: the text was gone.
    let mut sim = Sim::new();
    sim.online();
    sim.delivered("hello", &[], true);
    let a = sim.bytes(&delivery_error("boot-1", "alice@example.com", CONTACT, "cancel", "service-unavailable"));
    let u = undeliverable(&a);
    assert_eq!(u.len(), 1, "{a:?}");
    assert_eq!((u[0].condition.as_str(), u[0].error_type.as_str()), ("service-unavailable", "cancel"));
    assert_eq!(u[0].record.inbound.as_ref().unwrap().text, "hello");
    assert_eq!(sim.gw.stats().undeliverable, 0, "counted once on disk");
    let a = sim.input(Input::SpoolSynced(vec!["boot-1".into()]));
    assert!(removed(&a).is_empty(), "it had left the spool already: {a:?}");
    assert_eq!(sim.gw.stats().undeliverable, 1);
    let line = sim.log.iter().find(|l| l.contains("undeliverable")).expect("an error line");
    assert!(
        line.contains("alice@example.com") && line.contains("service-unavailable") && !line.contains("hello"),
        "{line}"
    );
}

#[test]
fn a_cancel_error_before_the_ping_answer_moves_the_record_out_of_the_spool() {
    let mut sim = Sim::new();
    sim.online();
    let delivered = sim.delivered("hello", &["https://m/x.jpg"], false);
    // The same error for the text and the media stanza: handled once.
    let mut a = sim.bytes(&delivery_error("boot-1", "alice@example.com/phone", CONTACT, "cancel", "item-not-found"));
    a.extend(sim.bytes(&delivery_error("boot-1-m1", "alice@example.com", CONTACT, "cancel", "item-not-found")));
    assert_eq!(undeliverable(&a).len(), 1, "{a:?}");
    let a = sim.input(Input::SpoolSynced(vec!["boot-1".into()]));
    assert_eq!(removed(&a), vec!["boot-1".to_string()], "set aside first, then out of the spool");
    // The ping answer that follows confirms nothing more.
    assert!(removed(&sim.answer_pings(&delivered)).is_empty());
    assert_eq!(sim.gw.stats().undeliverable, 1);
}

#[test]
fn a_wait_error_redelivers_later_with_growing_back_off() {
    let mut sim = Sim::new();
    sim.online();
    sim.delivered("hello", &[], true);
    let a = sim.bytes(&delivery_error("boot-1", "alice@example.com", CONTACT, "wait", "resource-constraint"));
    // Back in the spool, durably, until it is delivered again.
    let back = spooled(&a);
    assert_eq!(back.len(), 1, "{a:?}");
    assert_eq!((back[0].id.as_str(), back[0].inbound.as_ref().unwrap().text.as_str()), ("boot-1", "hello"));
    sim.input(Input::SpoolSynced(vec!["boot-1".into()]));
    assert_eq!(sim.gw.stats().to_xmpp, 1, "still owed");
    assert!(writes(&sim.advance(Duration::from_secs(29))).iter().all(|w| !w.contains("hello")), "not at once");
    let a = sim.advance(Duration::from_secs(31));
    assert!(
        writes(&a).iter().any(|w| w.contains("<body>hello</body>") && w.contains("urn:xmpp:delay")),
        "redelivered, stamped: {a:?}"
    );
    assert_eq!(removed(&a), vec!["boot-1".to_string()], "confirmed by the next ping answer");
    // It waits again; the next delay is longer (doubling).
    sim.bytes(&delivery_error("boot-1", "alice@example.com", CONTACT, "wait", "resource-constraint"));
    assert!(writes(&sim.advance(Duration::from_secs(59))).iter().all(|w| !w.contains("hello")));
    let a = sim.advance(Duration::from_secs(61));
    assert!(writes(&a).iter().any(|w| w.contains("<body>hello</body>")), "{a:?}");
    assert_eq!(sim.gw.stats().to_xmpp, 0);
}

#[test]
fn a_wait_error_gives_up_a_day_after_acceptance() {
    let mut sim = Sim::new();
    sim.online();
    sim.delivered("hello", &[], true);
    let mut set_aside = Vec::new();
    for _ in 0..60 {
        let a = sim.bytes(&delivery_error("boot-1", "alice@example.com", CONTACT, "wait", "recipient-unavailable"));
        set_aside = undeliverable(&a);
        if !set_aside.is_empty() {
            break;
        }
        sim.sync_all(&a);
        // Redelivered within the hour-long cap.
        let mut waited = Duration::ZERO;
        while !writes(&sim.advance(Duration::from_secs(60))).iter().any(|w| w.contains("<body>hello</body>")) {
            waited += Duration::from_secs(60);
            assert!(waited <= Duration::from_secs(3600), "not redelivered within the hour");
        }
    }
    assert_eq!(set_aside.len(), 1, "given up after a day");
    assert_eq!(set_aside[0].condition, "recipient-unavailable");
    assert!(sim.now.wall_ms - 1_753_043_056_000 >= 24 * 3600 * 1000);
}

#[test]
fn a_wait_error_before_the_ping_answer_redelivers_without_a_write() {
    let mut sim = Sim::new();
    sim.online();
    let delivered = sim.delivered("hello", &[], false);
    let a = sim.bytes(&delivery_error("boot-1", "alice@example.com", CONTACT, "wait", "remote-server-timeout"));
    assert!(removed(&sim.answer_pings(&delivered)).is_empty(), "the ping answer does not confirm it now");
    assert!(spooled(&a).is_empty() && removed(&a).is_empty(), "it is still in the spool: {a:?}");
    let a = sim.advance(Duration::from_secs(61));
    assert!(writes(&a).iter().any(|w| w.contains("<body>hello</body>")), "{a:?}");
}

#[test]
fn a_forged_or_foreign_delivery_error_is_ignored() {
    let mut sim = Sim::new();
    sim.online();
    sim.delivered("hello", &[], true);
    for xml in [
        // Any XMPP user can send an error with our id: only the recipient's counts.
        delivery_error("boot-1", "mallory@evil.example", CONTACT, "cancel", "service-unavailable"),
        delivery_error("boot-1", "bob@example.com", CONTACT, "cancel", "service-unavailable"),
        // From the user, but about another conversation.
        delivery_error("boot-1", "alice@example.com", "+15551112222@sms.example.com", "cancel", "service-unavailable"),
        // Ids we never gave.
        delivery_error("boot-99", "alice@example.com", CONTACT, "cancel", "service-unavailable"),
        delivery_error("m1", "alice@example.com", CONTACT, "cancel", "service-unavailable"),
    ] {
        let a = sim.bytes(&xml);
        assert!(a.is_empty(), "{xml}: {a:?}");
    }
    assert_eq!(sim.gw.stats().undeliverable, 0);
    // The genuine one still counts.
    let a = sim.bytes(&delivery_error("boot-1", "alice@example.com", CONTACT, "cancel", "service-unavailable"));
    assert_eq!(undeliverable(&a).len(), 1);
}

#[test]
fn errors_for_our_bounces_and_notices_are_only_logged() {
    let mut sim = Sim::new();
    sim.online();
    let (job, _) = send_one(&mut sim, "+15559998888", "m1", "hi");
    let a = sim.input(Input::VoipmsResult { job, outcome: status("invalid_dst") });
    sim.answer_pings(&a);
    let a = sim.bytes(&delivery_error("m1", "alice@example.com/phone", CONTACT, "cancel", "service-unavailable"));
    assert!(a.is_empty(), "{a:?}");
    let a = sim.bytes(&delivery_error("boot-1-n", "alice@example.com", CONTACT, "cancel", "service-unavailable"));
    assert!(a.is_empty(), "{a:?}");
    assert!(
        sim.log.iter().any(|l| l.contains("answered a message of ours with error service-unavailable")),
        "{:?}",
        sim.log
    );
}

#[test]
fn delivered_records_are_remembered_for_ten_minutes_only() {
    let mut sim = Sim::new();
    sim.online();
    sim.delivered("hello", &[], true);
    sim.advance(Duration::from_secs(601));
    let a = sim.bytes(&delivery_error("boot-1", "alice@example.com", CONTACT, "cancel", "service-unavailable"));
    assert!(a.is_empty(), "{a:?}");
}

mod group;
mod paging;
mod presence;
mod receipts;
mod short_codes;
