//! The three things the `--prosody` mode puts under load, each behind Prosody and measured at
//! the same c2s client:
//!
//! - `gateway`: the voipms-xmpp binary as Prosody's component, fed VoIP.ms-shaped webhooks over
//!   keep-alive HTTP/1.1 (`200 ok` once the message is durable);
//! - `nothing`: a do-nothing component in this process: it completes the XEP-0114 handshake,
//!   reads and drops whatever Prosody sends, stores nothing, and the load generator writes the
//!   gateway's kind of `<message/>` straight onto its stream: the ceiling of Prosody's routing;
//! - `mod_voipms`: the module voipms-xmpp replaces, loaded into Prosody from a directory given
//!   on the command line (never committed nor downloaded here); it takes the same VoIP.ms JSON
//!   at Prosody's HTTP port, `POST /voipms?key=…`, answers `204` and sends the message from the
//!   host `localhost` itself.

use crate::c2s::{Inbox, Marker};
use crate::load::{Conn, Target};
use crate::prosody::{COMPONENT, DOMAIN, MODULE_KEY, SECRET, USER};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use voipms_xmpp::core::xmpp::element::{Element, NsContext};
use voipms_xmpp::core::xmpp::framer::{Frame, Framer};
use voipms_xmpp::core::xmpp::{handshake, ns, stanza};

/// The sender of every benchmark message, and the user's DID.
const FROM: &str = "5559998888";
const DID: &str = "5552345678";
const GATEWAY_KEY: &str = "bench-key";

/// The VoIP.ms webhook body for one message (the gateway and mod_voipms read the same JSON).
fn webhook_body(m: &Marker) -> String {
    format!(
        r#"{{"data":{{"event_type":"message.received","payload":{{"id":"{}-{}","type":"SMS","from":{{"phone_number":"{FROM}"}},"to":[{{"phone_number":"{DID}"}}],"text":"{}","media":[]}}}}}}"#,
        m.load,
        m.seq,
        m.text()
    )
}

/// A webhook endpoint: where, and what a good answer is.
pub struct Http {
    pub addr: SocketAddr,
    /// Path and query, e.g. `/voipms?key=…`.
    pub target: String,
    /// The `Host` header: Prosody's HTTP server picks the virtual host by it.
    pub host: String,
    pub status: u16,
}

impl Http {
    pub fn gateway(addr: SocketAddr) -> Http {
        Http { addr, target: format!("/voipms?key={GATEWAY_KEY}"), host: addr.to_string(), status: 200 }
    }

    pub fn module(addr: SocketAddr) -> Http {
        Http { addr, target: format!("/voipms?key={MODULE_KEY}"), host: DOMAIN.to_string(), status: 204 }
    }
}

impl Target for Http {
    fn connect(&self, _lane: u32, _closed: bool, _inbox: &Arc<Inbox>) -> Result<Box<dyn Conn>, String> {
        Ok(Box::new(HttpConn {
            http: Http { target: self.target.clone(), host: self.host.clone(), ..*self },
            io: None,
        }))
    }
}

/// One keep-alive HTTP/1.1 connection (reopened if the server closes it).
struct HttpConn {
    http: Http,
    io: Option<(TcpStream, BufReader<TcpStream>)>,
}

impl Conn for HttpConn {
    fn send(&mut self, m: &Marker) -> Result<(), String> {
        if self.io.is_none() {
            let s = TcpStream::connect(self.http.addr).map_err(|e| format!("connect {}: {e}", self.http.addr))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
            let r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
            self.io = Some((s, r));
        }
        let (writer, reader) = self.io.as_mut().expect("connected");
        let body = webhook_body(m);
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.http.target,
            self.http.host,
            body.len()
        );
        writer.write_all(request.as_bytes()).map_err(|e| format!("send: {e}"))?;
        let (status, close) = read_answer(reader)?;
        if close {
            self.io = None;
        }
        if status != self.http.status {
            return Err(format!("HTTP {status}, expected {}", self.http.status));
        }
        Ok(())
    }
}

/// Read one HTTP/1.1 answer (Content-Length or chunked body, or none); returns its status and
/// whether the server closes the connection after it.
fn read_answer(r: &mut BufReader<TcpStream>) -> Result<(u16, bool), String> {
    let mut line = String::new();
    let read_line = |r: &mut BufReader<TcpStream>, line: &mut String| -> Result<(), String> {
        line.clear();
        match r.read_line(line) {
            Ok(0) => Err("connection closed before the answer".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("read: {e}")),
        }
    };
    read_line(r, &mut line)?;
    let status: u16 =
        line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or(format!("bad status line {line:?}"))?;
    let (mut length, mut chunked, mut close) = (0usize, false, false);
    loop {
        read_line(r, &mut line)?;
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        let (name, value) = lower.split_once(':').unwrap_or((&lower, ""));
        match (name.trim(), value.trim()) {
            ("content-length", v) => length = v.parse().map_err(|_| format!("bad {line:?}"))?,
            ("transfer-encoding", v) => chunked = v.contains("chunked"),
            ("connection", v) => close = v.contains("close"),
            _ => {}
        }
    }
    if status == 204 || status == 304 {
        return Ok((status, close));
    }
    if chunked {
        loop {
            read_line(r, &mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {line:?}"))?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).map_err(|e| format!("read: {e}"))?;
            if size == 0 {
                break;
            }
        }
    } else {
        let mut body = vec![0; length];
        r.read_exact(&mut body).map_err(|e| format!("read: {e}"))?;
    }
    Ok((status, close))
}

/// The voipms-xmpp binary as Prosody's component; SIGTERM when dropped.
pub struct Gateway {
    child: Child,
    pub webhook: SocketAddr,
}

impl Gateway {
    /// Start `binary` with a config in `dir` against Prosody's component port; wait until its
    /// webhook listens and its component stream is online. Its log goes to `dir/gateway.log`.
    pub fn start(binary: &Path, dir: &Path, component: SocketAddr) -> Result<Gateway, String> {
        let config = format!(
            // No `ping_to`: the component lives under the Prosody host, which it then pings, and
            // builds from before that key existed run with the same config.
            r#"{{"xmpp":{{"component":"{COMPONENT}","server":"{component}","secret":"{SECRET}"}},
                "voipms":{{"api_username":"u","api_password":"p","api_url":"http://127.0.0.1:9/api"}},
                "webhook":{{"listen":"127.0.0.1:0","key":"{GATEWAY_KEY}"}},
                "jid_map":{{"{USER}@{DOMAIN}":["+1{DID}"]}},
                "state_dir":"{}"}}"#,
            dir.join("state").display()
        );
        let path = dir.join("gateway.json");
        std::fs::write(&path, config).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut child = Command::new(binary)
            .args(["run", "--config"])
            .arg(&path)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let mut log = BufReader::new(child.stderr.take().expect("piped"));
        let mut file = std::fs::File::create(dir.join("gateway.log")).map_err(|e| e.to_string())?;
        let mut webhook = None;
        let mut line = String::new();
        // The first lines are read here (both waits end with the log line they wait for); the
        // gateway is stopped if it never says them.
        let found = loop {
            line.clear();
            if log.read_line(&mut line).unwrap_or(0) == 0 {
                break Err("the gateway exited while starting (see gateway.log)".to_string());
            }
            let _ = file.write_all(line.as_bytes());
            if let Some(rest) = line.split("webhook listening on http://").nth(1) {
                webhook = rest.split('/').next().and_then(|a| a.parse().ok());
            }
            if line.contains(&format!("XMPP component {COMPONENT} online")) {
                break webhook.ok_or_else(|| "the gateway came online before saying where its webhook is".to_string());
            }
        };
        let webhook = match found {
            Ok(w) => w,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{e}; last line: {}", line.trim()));
            }
        };
        std::thread::spawn(move || std::io::copy(&mut log, &mut file));
        Ok(Gateway { child, webhook })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        crate::prosody::stop(&mut self.child);
    }
}

/// The do-nothing component: one XEP-0114 stream, shared by every sending lane.
pub struct Nothing {
    writer: Arc<Mutex<TcpStream>>,
}

impl Nothing {
    pub fn connect(component: SocketAddr) -> Result<Nothing, String> {
        let mut socket = TcpStream::connect(component).map_err(|e| format!("component connect: {e}"))?;
        socket.set_nodelay(true).map_err(|e| e.to_string())?;
        socket.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        socket.write_all(handshake::stream_header(COMPONENT).as_bytes()).map_err(|e| e.to_string())?;
        let mut framer = Framer::new(1 << 20, 64);
        let mut ctx = NsContext::component();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match framer.next_frame().map_err(|e| format!("component stream: {e:?}"))? {
                Some(Frame::StreamHeader(bytes)) => {
                    let header = Element::parse_start_tag(&bytes).map_err(|e| format!("{e:?}"))?;
                    let id = header.get_attr("id").ok_or("Prosody's component header has no id")?.to_string();
                    ctx = NsContext::from_header(&header);
                    let digest = handshake::handshake_digest(&id, SECRET);
                    socket.write_all(handshake::handshake_element(&digest).as_bytes()).map_err(|e| e.to_string())?;
                }
                Some(Frame::Stanza(bytes)) => {
                    let e = Element::parse(&bytes, &ctx).map_err(|e| format!("{e:?}"))?;
                    if e.is("handshake", ns::COMPONENT) {
                        break;
                    }
                    return Err(format!("component handshake refused: {}", String::from_utf8_lossy(&bytes)));
                }
                Some(Frame::StreamEnd) => return Err("Prosody closed the component stream".into()),
                None => {
                    let n = socket.read(&mut buf).map_err(|e| format!("component read: {e}"))?;
                    if n == 0 {
                        return Err("Prosody closed the component connection".into());
                    }
                    framer.push(&buf[..n]);
                }
            }
        }
        socket.set_read_timeout(None).map_err(|e| e.to_string())?;
        let mut reader = socket.try_clone().map_err(|e| e.to_string())?;
        // Answers nothing: whatever Prosody sends is read and dropped.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        Ok(Nothing { writer: Arc::new(Mutex::new(socket)) })
    }
}

impl Drop for Nothing {
    fn drop(&mut self) {
        if let Ok(mut w) = self.writer.lock() {
            let _ = w.write_all(b"</stream:stream>");
            let _ = w.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Target for Nothing {
    fn connect(&self, lane: u32, closed: bool, inbox: &Arc<Inbox>) -> Result<Box<dyn Conn>, String> {
        let arrivals = closed.then(|| inbox.lane(lane));
        Ok(Box::new(NothingConn { writer: self.writer.clone(), arrivals }))
    }

    /// One writer suffices: writing a stanza does not wait for anything.
    fn open_connections(&self, _rate: u32) -> usize {
        1
    }

    fn http(&self) -> bool {
        false
    }
}

struct NothingConn {
    writer: Arc<Mutex<TcpStream>>,
    /// Closed loop: the lane's arrivals at the client, its "answers".
    arrivals: Option<Receiver<u32>>,
}

impl Conn for NothingConn {
    fn send(&mut self, m: &Marker) -> Result<(), String> {
        let from = format!("+1{FROM}@{COMPONENT}");
        let to = format!("{USER}@{DOMAIN}");
        let id = format!("{}-{}", m.load, m.seq);
        let xml = stanza::build::chat(&from, &to, &id, &m.text(), None, None, None);
        self.writer.lock().unwrap().write_all(xml.as_bytes()).map_err(|e| format!("component write: {e}"))?;
        if let Some(arrivals) = &self.arrivals {
            loop {
                match arrivals.recv_timeout(Duration::from_secs(30)) {
                    Ok(seq) if seq == m.seq => break,
                    Ok(_) => continue,
                    Err(_) => return Err("not delivered to the client within 30 s".into()),
                }
            }
        }
        Ok(())
    }
}

/// The gateway binary `cargo bench` built (the bench profile: the release settings).
pub fn default_gateway() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_voipms-xmpp"))
}
