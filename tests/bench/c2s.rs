//! The c2s side of the `--prosody` mode: a minimal XMPP client (plain TCP on loopback, SASL
//! PLAIN, stream restart, resource bind, initial presence) that reads the messages Prosody
//! delivers to the test user, and the `Inbox` where it records them.
//!
//! Every benchmark message carries a `Marker` in its text (load, sequence number, lane, send
//! time); the client stamps each read with `Instant::now()` right after the `read` returned, so
//! e2e latency = client read time − (scheduled) webhook send time, both on one clock.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use voipms_xmpp::core::xmpp::base64;
use voipms_xmpp::core::xmpp::element::{Element, NsContext};
use voipms_xmpp::core::xmpp::framer::{Frame, Framer};

const CLIENT: &str = "jabber:client";
const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";

/// What a benchmark message says about itself, written into and read back from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub load: u32,
    pub seq: u32,
    pub lane: u32,
    /// Microseconds from the inbox's base instant to the (scheduled) send.
    pub sent_us: u64,
}

impl Marker {
    /// The message text: the marker, then words to make it about as long as a text.
    pub fn text(&self) -> String {
        format!(
            "bench {}:{}:{}:{} about as long as a text message, give or take",
            self.load, self.seq, self.lane, self.sent_us
        )
    }

    pub fn parse(text: &str) -> Option<Marker> {
        let word = text.strip_prefix("bench ")?.split(' ').next()?;
        let mut it = word.split(':').map(|n| n.parse::<u64>().ok());
        let (load, seq, lane, sent_us) = (it.next()??, it.next()??, it.next()??, it.next()??);
        Some(Marker { load: load as u32, seq: seq as u32, lane: lane as u32, sent_us })
    }
}

/// The deliveries of the current load.
#[derive(Default)]
pub struct Tally {
    pub load: u32,
    /// Which sequence numbers arrived (sized by `begin`).
    pub seen: Vec<bool>,
    pub unique: usize,
    pub duplicates: usize,
    /// Messages of another load, or with a sequence number out of range.
    pub stray: usize,
    pub e2e: Vec<Duration>,
    pub first: Option<Instant>,
    pub last: Option<Instant>,
    /// Closed-loop lanes waiting for their message (the do-nothing target's pacing).
    pub lanes: Vec<Option<mpsc::Sender<u32>>>,
}

/// Shared by the client's reader thread and the load generator.
pub struct Inbox {
    pub base: Instant,
    tally: Mutex<Tally>,
    arrived: Condvar,
}

impl Inbox {
    pub fn new() -> Arc<Inbox> {
        Arc::new(Inbox { base: Instant::now(), tally: Mutex::new(Tally::default()), arrived: Condvar::new() })
    }

    pub fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_micros() as u64
    }

    /// Start counting load `load`, of at most `expected` messages.
    pub fn begin(&self, load: u32, expected: usize) {
        let mut t = self.tally.lock().unwrap();
        *t = Tally { load, seen: vec![false; expected], ..Tally::default() };
    }

    /// A channel on which lane `lane` hears of each of its messages' arrival.
    pub fn lane(&self, lane: u32) -> mpsc::Receiver<u32> {
        let (tx, rx) = mpsc::channel();
        let mut t = self.tally.lock().unwrap();
        let i = lane as usize;
        if t.lanes.len() <= i {
            t.lanes.resize_with(i + 1, || None);
        }
        t.lanes[i] = Some(tx);
        rx
    }

    fn record(&self, markers: &[Marker], read_at: Instant) {
        let mut t = self.tally.lock().unwrap();
        for m in markers {
            let i = m.seq as usize;
            if m.load != t.load || i >= t.seen.len() {
                t.stray += 1;
                continue;
            }
            if t.seen[i] {
                t.duplicates += 1;
                continue;
            }
            t.seen[i] = true;
            t.unique += 1;
            let sent = self.base + Duration::from_micros(m.sent_us);
            t.e2e.push(read_at.saturating_duration_since(sent));
            t.first.get_or_insert(read_at);
            t.last = Some(read_at);
            if let Some(Some(tx)) = t.lanes.get(m.lane as usize) {
                let _ = tx.send(m.seq);
            }
        }
        drop(t);
        self.arrived.notify_all();
    }

    /// Wait until `count` distinct messages of the current load arrived, or `deadline`; then
    /// hand over the tally (the inbox keeps counting into an empty one).
    pub fn wait(&self, count: usize, deadline: Instant) -> Tally {
        let mut t = self.tally.lock().unwrap();
        while t.unique < count {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            t = self.arrived.wait_timeout(t, deadline - now).unwrap().0;
        }
        let load = t.load;
        let seen = vec![false; t.seen.len()];
        std::mem::replace(&mut *t, Tally { load, seen, ..Tally::default() })
    }
}

/// A logged-in, available client; its reader thread records into the inbox until the stream ends.
pub struct Client {
    writer: TcpStream,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.writer.write_all(b"</stream:stream>");
        let _ = self.writer.shutdown(std::net::Shutdown::Both);
    }
}

/// The stream's reading half: a framer over a socket, with the namespace context of the current
/// stream header.
struct Stream {
    socket: TcpStream,
    framer: Framer,
    ctx: NsContext,
    buf: Vec<u8>,
}

impl Stream {
    /// The next stanza-level element, skipping the stream header (whose namespaces it keeps).
    fn next(&mut self) -> Result<Element, String> {
        loop {
            match self.framer.next_frame().map_err(|e| format!("c2s stream: {e:?}"))? {
                Some(Frame::StreamHeader(bytes)) => {
                    let header = Element::parse_start_tag(&bytes).map_err(|e| format!("c2s header: {e:?}"))?;
                    self.ctx = NsContext::from_header(&header);
                }
                Some(Frame::Stanza(bytes)) => {
                    return Element::parse(&bytes, &self.ctx).map_err(|e| format!("c2s stanza: {e:?}"));
                }
                Some(Frame::StreamEnd) => return Err("Prosody closed the c2s stream".into()),
                None => {
                    let n = self.socket.read(&mut self.buf).map_err(|e| format!("c2s read: {e}"))?;
                    if n == 0 {
                        return Err("Prosody closed the c2s connection".into());
                    }
                    self.framer.push(&self.buf[..n]);
                }
            }
        }
    }
}

fn header(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' xml:lang='en' \
         xmlns='{CLIENT}' xmlns:stream='http://etherx.jabber.org/streams'>"
    )
}

/// Log in as `user@domain` with SASL PLAIN, bind `resource`, send initial presence, and start the
/// reader thread.
pub fn connect(
    addr: SocketAddr,
    domain: &str,
    user: &str,
    password: &str,
    resource: &str,
    inbox: Arc<Inbox>,
) -> Result<Client, String> {
    let socket = TcpStream::connect(addr).map_err(|e| format!("c2s connect {addr}: {e}"))?;
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    socket.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let mut writer = socket.try_clone().map_err(|e| e.to_string())?;
    let mut stream =
        Stream { socket, framer: Framer::new(1 << 20, 64), ctx: NsContext::component(), buf: vec![0; 64 * 1024] };
    let mut send = |text: &str| writer.write_all(text.as_bytes()).map_err(|e| format!("c2s write: {e}"));

    send(&header(domain))?;
    let features = stream.next()?;
    if features.name() != "features" || !features.children().any(|m| m.is("mechanisms", SASL)) {
        return Err(format!("c2s: no SASL mechanisms offered: {}", features.to_xml(CLIENT)));
    }
    let plain = base64::encode(format!("\0{user}\0{password}").as_bytes());
    send(&format!("<auth xmlns='{SASL}' mechanism='PLAIN'>{plain}</auth>"))?;
    let answer = stream.next()?;
    if !answer.is("success", SASL) {
        return Err(format!("c2s: SASL PLAIN refused: {}", answer.to_xml(CLIENT)));
    }

    stream.framer.reset();
    send(&header(domain))?;
    let features = stream.next()?;
    if features.children().all(|f| !f.is("bind", BIND)) {
        return Err(format!("c2s: no resource binding offered: {}", features.to_xml(CLIENT)));
    }
    send(&format!("<iq type='set' id='bind1'><bind xmlns='{BIND}'><resource>{resource}</resource></bind></iq>"))?;
    loop {
        let e = stream.next()?;
        if e.name() == "iq" && e.get_attr("id") == Some("bind1") {
            if e.get_attr("type") != Some("result") {
                return Err(format!("c2s: bind failed: {}", e.to_xml(CLIENT)));
            }
            break;
        }
    }
    send("<presence/>")?;
    stream.socket.set_read_timeout(None).map_err(|e| e.to_string())?;

    let answers = writer.try_clone().map_err(|e| e.to_string())?;
    std::thread::spawn(move || read_loop(stream, answers, inbox));
    Ok(Client { writer })
}

/// Record every message's marker with the time of the read that brought it; answer iq requests
/// with an error, as a client that implements nothing; ignore everything else.
fn read_loop(mut stream: Stream, mut writer: TcpStream, inbox: Arc<Inbox>) {
    let mut markers = Vec::new();
    let mut out = String::new();
    loop {
        let read_at = Instant::now();
        loop {
            let frame = match stream.framer.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(_) => return,
            };
            let Frame::Stanza(bytes) = frame else {
                if frame == Frame::StreamEnd {
                    return;
                }
                continue;
            };
            let Ok(e) = Element::parse(&bytes, &stream.ctx) else { continue };
            match e.name() {
                "message" => {
                    if let Some(m) = e.get_child("body", CLIENT).and_then(|b| Marker::parse(&b.text_content())) {
                        markers.push(m);
                    }
                }
                "iq" if matches!(e.get_attr("type"), Some("get" | "set")) => {
                    out.push_str(&format!(
                        "<iq type='error' id='{}' to='{}'><error type='cancel'><service-unavailable \
                         xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
                        escape(e.get_attr("id").unwrap_or("")),
                        escape(e.get_attr("from").unwrap_or("")),
                    ));
                }
                _ => {}
            }
        }
        if !markers.is_empty() {
            inbox.record(&markers, read_at);
            markers.clear();
        }
        if !out.is_empty() {
            if writer.write_all(out.as_bytes()).is_err() {
                return;
            }
            out.clear();
        }
        match stream.socket.read(&mut stream.buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => stream.framer.push(&stream.buf[..n]),
        }
    }
}

/// An attribute value taken from a received stanza, escaped to be written back.
fn escape(value: &str) -> String {
    value.replace('&', "&amp;").replace('\'', "&apos;").replace('<', "&lt;").replace('"', "&quot;")
}
