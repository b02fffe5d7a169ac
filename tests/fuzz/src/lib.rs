//! The fuzz targets of voipms-xmpp: every parser that takes bytes from the network or the disk.
//!
//! Each function takes arbitrary bytes and must neither panic nor hang; where a property is
//! cheap to state (what is written parses back the same, a record survives a round trip,
//! every HTTP answer is one), it is asserted too. `fuzz_targets/*.rs` hand them to libFuzzer;
//! `tests/fuzz_corpus.rs` compiles this file into the main test suite and replays the committed
//! corpora, so a crash once found stays fixed.

use std::time::Instant;
use voipms_xmpp::core::action::{Action, Input, WebhookReply};
use voipms_xmpp::core::config::{Config, SecretFiles};
use voipms_xmpp::core::gateway::Gateway;
use voipms_xmpp::core::seen::Seen;
use voipms_xmpp::core::spool_record::{Record, decode_line, encode_line};
use voipms_xmpp::core::time::Now;
use voipms_xmpp::core::voipms::api::{self, CallOutcome};
use voipms_xmpp::core::xmpp::element::{Element, NsContext};
use voipms_xmpp::core::xmpp::framer::{Frame, Framer};
use voipms_xmpp::core::xmpp::ns;
use voipms_xmpp::core::xmpp::session::{MAX_DEPTH, MAX_STANZA_BYTES};
use voipms_xmpp::core::xmpp::stanza::Stanza;

/// A fixed wall clock: targets must be deterministic.
const WALL_MS: u64 = 1_753_043_056_000;

/// The gateway configuration the core-driving target runs with.
pub const CONFIG: &str = r#"{
  "xmpp": {"component": "sms.example.com", "server": "127.0.0.1:5347", "secret": "s3cret"},
  "voipms": {"api_username": "u", "api_password": "p", "backfill_interval_secs": 0},
  "webhook": {"listen": "127.0.0.1:8080", "key": "k"},
  "jid_map": {"alice@example.com": ["+15552345678"], "bob@example.com": ["+15557654321", "+15553334444"]},
  "state_dir": "/var/lib/x"
}"#;

/// Cut `data` into pieces whose sizes come from the data itself, so that every way a stream
/// can arrive in reads is tried.
fn pieces(data: &[u8]) -> Vec<&[u8]> {
    let Some((&first, rest)) = data.split_first() else {
        return Vec::new();
    };
    let size = usize::from(first % 64) + 1;
    rest.chunks(size).collect()
}

/// Parse what the framer cut, and check that writing an element gives back the same element.
fn check_frame(frame: &Frame, ctx: &mut NsContext) {
    match frame {
        Frame::StreamHeader(bytes) => {
            if let Ok(header) = Element::parse_start_tag(bytes) {
                *ctx = NsContext::from_header(&header);
            }
        }
        Frame::Stanza(bytes) => {
            if let Ok(element) = Element::parse(bytes, ctx) {
                let _ = Stanza::from_element(&element);
                let written = element.to_xml(ns::COMPONENT);
                let again = Element::parse(written.as_bytes(), &NsContext::component())
                    .unwrap_or_else(|e| panic!("written XML does not parse: {e}: {written}"));
                assert_eq!(again, element, "round trip changed the element: {written}");
            }
        }
        Frame::StreamEnd => {}
    }
}

/// The XMPP framer and the element parser, on a stream arriving in pieces.
pub fn framer(data: &[u8]) {
    let mut framer = Framer::new(MAX_STANZA_BYTES, MAX_DEPTH);
    let mut ctx = NsContext::component();
    for piece in pieces(data) {
        framer.push(piece);
        while let Ok(Some(frame)) = framer.next_frame() {
            check_frame(&frame, &mut ctx);
        }
        assert!(framer.buffered() <= MAX_STANZA_BYTES + piece.len(), "the framer holds more than its bound");
    }
    // Any element at all, parsed alone.
    let _ = Element::parse(data, &NsContext::component());
}

/// Everything the gateway asks for is answered at once and successfully, for a bounded number
/// of rounds: records are "on disk", VoIP.ms sends, pings are answered.
fn settle(gw: &mut Gateway, now: Now) {
    for _ in 0..64 {
        let mut synced = Vec::new();
        let mut calls = Vec::new();
        let mut pings = Vec::new();
        while let Some(action) = gw.poll_action() {
            match action {
                Action::SpoolWrite(record) => synced.push(record.id.clone()),
                Action::VoipmsCall { job, .. } => calls.push(job),
                Action::XmppWrite(xml) if xml.contains("urn:xmpp:ping") => pings.push(xml),
                _ => {}
            }
        }
        if synced.is_empty() && calls.is_empty() && pings.is_empty() {
            return;
        }
        if !synced.is_empty() {
            gw.handle(now, Input::SpoolSynced(synced));
        }
        for job in calls {
            let body = format!(r#"{{"status":"success","sms":"{}"}}"#, 100 + job);
            gw.handle(now, Input::VoipmsResult { job, outcome: CallOutcome::Response { status: 200, body } });
        }
        for ping in pings {
            // Answer from the pinged server, with the ping's id.
            let attr = |name: &str| {
                let start = ping.find(&format!("{name}='"))? + name.len() + 2;
                Some(ping[start..].split('\'').next()?.to_string())
            };
            if let (Some(id), Some(to)) = (attr("id"), attr("to")) {
                let answer = format!("<iq type='result' id='{id}' from='{to}' to='sms.example.com'/>");
                gw.handle(now, Input::XmppBytes(answer.as_bytes()));
            }
        }
    }
}

/// Stanzas from the XMPP server, through the whole core: session, router, outbound queue,
/// mailbox. The bytes arrive on an established component stream.
pub fn stanza(data: &[u8]) {
    let config = Config::from_json(CONFIG, &SecretFiles::new()).expect("the fuzz config is valid");
    let mut gw = Gateway::new(config, "fuzz", 7);
    let now = Now { mono: Instant::now(), wall_ms: WALL_MS };
    gw.restore(Vec::new(), "", now);
    gw.start(now);
    while gw.poll_action().is_some() {}
    gw.handle(now, Input::XmppConnected);
    gw.handle(
        now,
        Input::XmppBytes(
            b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
              id='fz' from='sms.example.com' xmlns='jabber:component:accept'><handshake/>",
        ),
    );
    settle(&mut gw, now);
    for piece in pieces(data) {
        gw.handle(now, Input::XmppBytes(piece));
        settle(&mut gw, now);
    }
    gw.handle_timeout(now);
    settle(&mut gw, now);
}

/// VoIP.ms's webhook body.
pub fn webhook_json(data: &[u8]) {
    use voipms_xmpp::core::voipms::webhook::{WebhookEvent, parse};
    if let Ok(WebhookEvent::Message(m)) = parse(data) {
        assert!(!m.to.is_empty(), "a message for nobody was accepted");
        assert!(m.media.len() <= 10, "more media than the bound");
    }
}

/// VoIP.ms's answers to our API calls, under any HTTP status.
pub fn voipms_answer(data: &[u8]) {
    let (status, body) = match data.split_first() {
        Some((&b, rest)) if b < 16 => (200 + u16::from(b) * 20, rest),
        _ => (200, data),
    };
    let outcome = CallOutcome::Response { status, body: String::from_utf8_lossy(body).into_owned() };
    let _ = api::classify(&outcome);
    if let Ok(rows) = api::rows(&outcome) {
        assert!(rows.iter().all(|r| !r.id.is_empty()), "a row without an id");
    }
    let _ = api::media(&outcome);
}

/// The configuration file, with every secret file present.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut files = SecretFiles::new();
    files.insert("xmpp.secret_file".into(), Ok("from a file".into()));
    files.insert("voipms.api_password_file".into(), Err("no such file".into()));
    files.insert("webhook.key_file".into(), Ok("k\n".into()));
    if let Err(errors) = Config::from_json(text, &files) {
        assert!(!errors.is_empty(), "refused without a reason");
    }
}

/// Spool batch lines, record JSON and the seen log, as a crash may leave them.
pub fn spool(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        if let Ok(record) = decode_line(line) {
            let again = decode_line(encode_line(&record).trim_end()).expect("an encoded record decodes");
            assert_eq!(again, record, "a record changed in a round trip");
        }
    }
    if let Ok(record) = Record::from_json(&text) {
        assert_eq!(Record::from_json(&record.to_json()).as_ref(), Ok(&record), "JSON round trip");
    }
    let mut seen = Seen::load(&text, WALL_MS);
    let _ = seen.compact(WALL_MS);
    if let Some(log) = seen.take_pending() {
        let _ = Seen::load(&log, WALL_MS);
    }
}

/// Raw bytes on the webhook port: the guard, async-h1 and the real handler, on an in-memory
/// connection, with an event loop that accepts every message. Whatever is written must be
/// HTTP/1.1 answers.
pub fn http(data: &[u8]) {
    use voipms_xmpp::core::secret::Secret;
    use voipms_xmpp::daemon::Event;
    use voipms_xmpp::webhook::guard::Guarded;
    use voipms_xmpp::webhook::memory::Pipe;
    use voipms_xmpp::webhook::{LIMITS, Settings, run_connection};

    let (chunk, input) = match data.split_first() {
        Some((&b, rest)) => (usize::from(b % 32), rest),
        None => (0, data),
    };
    let pipe = Pipe::new(input).chunked(chunk);
    let settings = Settings { path: "/voipms".into(), key: Secret::new("k".into()) };
    let (tx, rx) = smol::channel::bounded::<Event>(16);
    smol::block_on(async {
        let answering = async {
            let mut n = 0usize;
            while let Ok(event) = rx.recv().await {
                if let Event::Webhook { reply, .. } = event {
                    n += 1;
                    let _ = reply.send(WebhookReply::Accepted).await;
                }
            }
            n
        };
        let connection = run_connection(Guarded::new(pipe.clone(), LIMITS), settings, tx);
        smol::future::zip(connection, answering).await
    });
    let out = pipe.output();
    let text = String::from_utf8_lossy(&out);
    assert!(out.is_empty() || text.starts_with("HTTP/1.1 "), "not an HTTP answer: {text:?}");
}
