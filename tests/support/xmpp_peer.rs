//! A scripted XMPP server: accepts the gateway's component connection, checks the XEP-0114
//! handshake, then sends stanzas and expects stanzas (including "expect nothing").
//!
//! It answers the gateway's XEP-0199 pings by itself, as a server does, unless told not to (to
//! play a dead connection). Presence stanzas are kept apart (the gateway announces its domain at
//! every connect): [`Peer::expect_presence`] waits for them, the other expectations never see
//! them. On a failed expectation it prints what it received instead.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};
use voipms_xmpp::core::xmpp::element::{Element, NsContext};
use voipms_xmpp::core::xmpp::framer::{Frame, Framer};
use voipms_xmpp::core::xmpp::handshake::handshake_digest;
use voipms_xmpp::core::xmpp::ns;

/// How long an expectation waits by default.
pub const WAIT: Duration = Duration::from_secs(15);

/// The listening side. A thread accepts connections and queues them, so that waiting for one
/// is a channel receive with a timeout.
pub struct XmppServer {
    addr: SocketAddr,
    incoming: Receiver<TcpStream>,
    pub domain: String,
    pub secret: String,
    next_id: u32,
}

impl XmppServer {
    pub fn bind(domain: &str, secret: &str) -> XmppServer {
        XmppServer::bind_at("127.0.0.1:0".parse().unwrap(), domain, secret)
    }

    /// Listen on a given address (to come back where the gateway keeps trying).
    pub fn bind_at(addr: SocketAddr, domain: &str, secret: &str) -> XmppServer {
        let listener = TcpListener::bind(addr).expect("bind the XMPP peer");
        let addr = listener.local_addr().expect("local addr");
        let (tx, incoming) = channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if tx.send(stream).is_err() {
                    break;
                }
            }
        });
        XmppServer { addr, incoming, domain: domain.to_string(), secret: secret.to_string(), next_id: 0 }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Wait for the gateway to connect (TCP only).
    pub fn accept_tcp(&self, wait: Duration) -> TcpStream {
        match self.incoming.recv_timeout(wait) {
            Ok(stream) => stream,
            Err(RecvTimeoutError::Timeout) => panic!("the gateway did not connect within {wait:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the XMPP peer's listener died"),
        }
    }

    /// Assert that the gateway does not connect within `d`.
    pub fn expect_no_connection(&self, d: Duration) {
        if self.incoming.recv_timeout(d).is_ok() {
            panic!("the gateway connected, and should not have");
        }
    }

    /// Accept the gateway, check its stream header and handshake, and say `<handshake/>`.
    pub fn accept(&mut self) -> Peer {
        self.accept_within(WAIT)
    }

    pub fn accept_within(&mut self, wait: Duration) -> Peer {
        let mut peer = self.accept_unauthenticated(wait);
        let hs = peer.expect_raw("<handshake/>", |e| e.is("handshake", ns::COMPONENT));
        let expected = handshake_digest(&peer.stream_id, &self.secret);
        assert_eq!(hs.text_content(), expected, "handshake digest");
        peer.send("<handshake/>");
        peer
    }

    /// Accept and exchange stream headers, but leave the handshake to the test.
    pub fn accept_unauthenticated(&mut self, wait: Duration) -> Peer {
        let stream = self.accept_tcp(wait);
        self.next_id += 1;
        let mut peer = Peer::new(stream, format!("stream-{}-{}", std::process::id(), self.next_id));
        let header = peer.expect_header();
        assert!(header.is("stream", ns::STREAMS), "stream header: {header:?}");
        assert_eq!(header.get_attr("to"), Some(self.domain.as_str()), "the header's 'to' is the component domain");
        let id = peer.stream_id.clone();
        peer.send(&format!(
            "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' id='{id}' xml:lang='en' from='{}' xmlns='jabber:component:accept'>",
            self.domain
        ));
        peer
    }
}

/// One accepted connection.
pub struct Peer {
    stream: TcpStream,
    framer: Framer,
    ctx: NsContext,
    pub stream_id: String,
    /// Answer the gateway's pings automatically.
    pub answer_pings: bool,
    /// Pings seen (answered or not).
    pub pings_seen: usize,
    received: VecDeque<Element>,
    /// Presence stanzas received and not yet expected.
    presences: VecDeque<Element>,
    log: Vec<String>,
    closed: bool,
}

enum Read1 {
    Stanza(Element),
    Header(Element),
    End,
    Closed,
    Timeout,
}

impl Peer {
    fn new(stream: TcpStream, stream_id: String) -> Peer {
        Peer {
            stream,
            framer: Framer::new(1 << 20, 64),
            ctx: NsContext::component(),
            stream_id,
            answer_pings: true,
            pings_seen: 0,
            received: VecDeque::new(),
            presences: VecDeque::new(),
            log: Vec::new(),
            closed: false,
        }
    }

    pub fn send(&mut self, xml: &str) {
        self.stream.write_all(xml.as_bytes()).expect("write to the gateway");
    }

    /// Write raw bytes (for partial stanzas).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    fn read_frame(&mut self, deadline: Instant) -> Read1 {
        loop {
            match self.framer.next_frame() {
                Ok(Some(Frame::Stanza(bytes))) => {
                    let e = Element::parse(&bytes, &self.ctx).unwrap_or_else(|err| {
                        panic!("the gateway sent bad XML ({err}): {}", String::from_utf8_lossy(&bytes))
                    });
                    self.log.push(String::from_utf8_lossy(&bytes).into_owned());
                    return Read1::Stanza(e);
                }
                Ok(Some(Frame::StreamHeader(bytes))) => {
                    let e = Element::parse_start_tag(&bytes).expect("the gateway's stream header parses");
                    self.ctx = NsContext::from_header(&e);
                    return Read1::Header(e);
                }
                Ok(Some(Frame::StreamEnd)) => {
                    // A server answers the close with its own.
                    let _ = self.stream.write_all(b"</stream:stream>");
                    return Read1::End;
                }
                Ok(None) => {}
                Err(e) => panic!("the gateway's stream is not well-formed: {e}"),
            }
            if self.closed {
                return Read1::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Read1::Timeout;
            }
            self.stream.set_read_timeout(Some((deadline - now).max(Duration::from_millis(1)))).expect("timeout");
            let mut buf = [0u8; 16 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self.framer.push(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Read1::Timeout;
                }
                Err(_) => self.closed = true,
            }
        }
    }

    fn expect_header(&mut self) -> Element {
        match self.read_frame(Instant::now() + WAIT) {
            Read1::Header(h) => h,
            _ => panic!("expected the gateway's stream header"),
        }
    }

    fn is_ping(e: &Element) -> bool {
        e.is("iq", ns::COMPONENT) && e.get_attr("type") == Some("get") && e.get_child("ping", ns::PING).is_some()
    }

    /// Read the next stanza that is not a ping (pings are answered when `answer_pings`).
    fn next_stanza(&mut self, deadline: Instant) -> Option<Element> {
        if let Some(e) = self.received.pop_front() {
            return Some(e);
        }
        loop {
            match self.read_frame(deadline) {
                Read1::Stanza(e) if Self::is_ping(&e) => {
                    self.pings_seen += 1;
                    if self.answer_pings {
                        self.answer_ping(&e);
                    }
                }
                Read1::Stanza(e) if e.is("presence", ns::COMPONENT) => self.presences.push_back(e),
                Read1::Stanza(e) => return Some(e),
                Read1::Header(_) => panic!("a second stream header"),
                Read1::End | Read1::Closed | Read1::Timeout => return None,
            }
        }
    }

    fn expect_raw(&mut self, what: &str, pred: impl Fn(&Element) -> bool) -> Element {
        let deadline = Instant::now() + WAIT;
        let mut skipped = Vec::new();
        while let Some(e) = self.next_stanza(deadline) {
            if pred(&e) {
                for s in skipped.into_iter().rev() {
                    self.received.push_front(s);
                }
                return e;
            }
            skipped.push(e);
        }
        panic!("expected {what}; received instead:\n{}", self.log.join("\n"));
    }

    /// Wait for a stanza matching `pred`; earlier non-matching stanzas stay queued.
    pub fn expect(&mut self, what: &str, pred: impl Fn(&Element) -> bool) -> Element {
        self.expect_raw(what, pred)
    }

    /// Wait for a presence matching `pred` (earlier presences that do not match stay queued;
    /// other stanzas read meanwhile stay queued for the other expectations).
    pub fn expect_presence(&mut self, what: &str, pred: impl Fn(&Element) -> bool) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(i) = self.presences.iter().position(&pred) {
                return self.presences.remove(i).expect("present");
            }
            match self.read_frame(deadline) {
                Read1::Stanza(e) if Self::is_ping(&e) => {
                    self.pings_seen += 1;
                    if self.answer_pings {
                        self.answer_ping(&e);
                    }
                }
                Read1::Stanza(e) if e.is("presence", ns::COMPONENT) => self.presences.push_back(e),
                Read1::Stanza(e) => self.received.push_back(e),
                _ => panic!("expected {what}; received instead:\n{}", self.log.join("\n")),
            }
        }
    }

    /// Assert that no presence arrives within `d` (and none is queued).
    pub fn expect_no_presence_for(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while self.presences.is_empty() {
            match self.read_frame(deadline) {
                Read1::Stanza(e) if Self::is_ping(&e) => {
                    self.pings_seen += 1;
                    if self.answer_pings {
                        self.answer_ping(&e);
                    }
                }
                Read1::Stanza(e) if e.is("presence", ns::COMPONENT) => self.presences.push_back(e),
                Read1::Stanza(e) => self.received.push_back(e),
                _ => return,
            }
        }
        panic!("expected no presence; received {:?}", self.presences);
    }

    /// Wait for the next stanza, whatever it is.
    pub fn next(&mut self, what: &str) -> Element {
        self.expect_raw(what, |_| true)
    }

    /// Wait for a message to `to` with body `body`.
    pub fn expect_message(&mut self, to: &str, body: &str) -> Element {
        self.expect(&format!("a message to {to} with body {body:?}"), |e| {
            e.is("message", ns::COMPONENT)
                && e.get_attr("to") == Some(to)
                && e.get_child("body", ns::COMPONENT).is_some_and(|b| b.text_content() == body)
        })
    }

    /// Wait for an error reply to message `id`.
    pub fn expect_error(&mut self, id: &str) -> (String, String, String) {
        let e = self.expect(&format!("an error for message {id}"), |e| {
            e.is("message", ns::COMPONENT) && e.get_attr("type") == Some("error") && e.get_attr("id") == Some(id)
        });
        let err = e.get_child("error", ns::COMPONENT).expect("an <error/> child");
        let condition = err
            .children()
            .find(|c| c.ns() == ns::STANZA_ERRORS && c.name() != "text")
            .map(|c| c.name().to_string())
            .unwrap_or_default();
        let text = err.get_child("text", ns::STANZA_ERRORS).map(|t| t.text_content()).unwrap_or_default();
        (condition, err.get_attr("type").unwrap_or("").to_string(), text)
    }

    /// Assert that no stanza (other than pings) arrives within `d`.
    pub fn expect_nothing_for(&mut self, d: Duration) {
        if let Some(e) = self.next_stanza(Instant::now() + d) {
            panic!("expected nothing; received {e:?}\nlog:\n{}", self.log.join("\n"));
        }
    }

    /// Wait until the gateway closes the stream or the connection.
    pub fn expect_closed(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read_frame(deadline) {
                Read1::End | Read1::Closed => return,
                Read1::Timeout => panic!("the gateway did not close the stream"),
                _ => {}
            }
        }
    }

    /// Wait for the next ping (answered if `answer_pings`); stanzas before it stay queued.
    pub fn expect_ping(&mut self) {
        let deadline = Instant::now() + WAIT;
        let before = self.pings_seen;
        while self.pings_seen == before {
            match self.read_frame(deadline) {
                Read1::Stanza(e) if Self::is_ping(&e) => {
                    self.pings_seen += 1;
                    if self.answer_pings {
                        self.answer_ping(&e);
                    }
                }
                Read1::Stanza(e) => self.received.push_back(e),
                _ => panic!("expected a ping; log:\n{}", self.log.join("\n")),
            }
        }
    }

    fn answer_ping(&mut self, e: &Element) {
        let reply = format!(
            "<iq type='result' id='{}' from='{}' to='{}'/>",
            e.get_attr("id").unwrap_or(""),
            e.get_attr("to").unwrap_or(""),
            e.get_attr("from").unwrap_or("")
        );
        self.send(&reply);
    }

    /// Answer a message the gateway delivered with a delivery error, as a server does for an
    /// unknown or unreachable user: from its recipient, to its sender, same id (RFC 6120 §8.3).
    pub fn answer_with_error(&mut self, delivered: &Element, error_type: &str, condition: &str) {
        let attr = |name: &str| delivered.get_attr(name).unwrap_or("").to_string();
        let xml = format!(
            "<message type='error' id='{}' from='{}' to='{}'><error type='{error_type}'><{condition} xmlns='{}'/></error></message>",
            attr("id"),
            attr("to"),
            attr("from"),
            ns::STANZA_ERRORS
        );
        self.send(&xml);
    }

    /// Wait for a ping and do not answer it (a dead server).
    pub fn swallow_pings(&mut self) {
        self.answer_pings = false;
    }

    /// Everything received so far, as text.
    pub fn transcript(&self) -> String {
        self.log.join("\n")
    }
}
