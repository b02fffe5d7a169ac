//! Test helpers: a raw HTTP/1.1 client (full control over the request bytes), API call
//! shorthands, and a tiny scripted HTTP listener standing in for a webhook/callback receiver.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mock_voipms::json::Value;
use mock_voipms::{MockConfig, MockVoipms};

pub const DID: &str = "5551234567";
pub const CONTACT: &str = "5145550100";
pub const T0: &str = "2025-07-20T12:00:00-04:00";

/// A mock with one DID and a fixed clock at [`T0`].
pub fn mock() -> MockVoipms {
    start(MockConfig::for_tests(&[DID]).with_fixed_clock(T0))
}

pub fn start(config: MockConfig) -> MockVoipms {
    MockVoipms::start(config, "127.0.0.1:0".parse().unwrap()).expect("mock starts")
}

/// An HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        Value::parse(&self.text()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Read one response (Content-Length bodies, or to EOF when there is none).
pub fn read_response(stream: &mut impl Read) -> io::Result<Resp> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no response"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = Vec::new();
    match len {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body)?;
        }
        None => {
            r.read_to_end(&mut body)?;
        }
    }
    Ok(Resp { status, headers, body })
}

/// Send raw request bytes and read the response.
pub fn raw(addr: SocketAddr, request: &[u8]) -> io::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(request)?;
    read_response(&mut s)
}

pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn query(params: &[(&str, &str)]) -> String {
    params.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// `params` plus the default credentials.
pub fn with_creds<'a>(params: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![("api_username", "john@example.com"), ("api_password", "secret")];
    p.extend_from_slice(params);
    p
}

pub fn get_raw(mock: &MockVoipms, q: &str) -> Resp {
    let req = format!("GET /api/v1/rest.php?{q} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    raw(mock.addr(), req.as_bytes()).expect("response")
}

/// GET an API method with credentials; returns the JSON answer.
pub fn api(mock: &MockVoipms, method: &str, params: &[(&str, &str)]) -> Value {
    let mut p = with_creds(params);
    p.push(("method", method));
    let r = get_raw(mock, &query(&p));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

pub fn post(mock: &MockVoipms, content_type: &str, body: &[u8], q: &str) -> Resp {
    let mut req = format!(
        "POST /api/v1/rest.php{}{q} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        if q.is_empty() { "" } else { "?" },
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    raw(mock.addr(), &req).expect("response")
}

/// A multipart/form-data body with CRLF line endings.
pub fn multipart(boundary: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut b = String::new();
    for (k, v) in fields {
        b.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
    }
    b.push_str(&format!("--{boundary}--\r\n"));
    b.into_bytes()
}

/// GET a control endpoint.
pub fn control(mock: &MockVoipms, method: &str, path: &str, body: Option<&str>) -> Resp {
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(mock.addr(), req.as_bytes()).expect("response")
}

pub fn status(v: &Value) -> &str {
    v.get("status").and_then(Value::as_str).unwrap_or("(none)")
}

pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_else(|| panic!("no string {key} in {v}"))
}

pub fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).iter().map(|(k, _)| k.as_str()).collect()
}

/// One request received by a [`Hook`].
#[derive(Debug, Clone)]
pub struct HookRequest {
    pub method: String,
    pub target: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// A scripted HTTP receiver: answers the n-th request with `replies[n]` (the last one
/// repeats) and records every request.
pub struct Hook {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<HookRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hook {
    pub fn start(replies: &[(u16, &str)]) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let replies: Vec<(u16, String)> = replies.iter().map(|(c, b)| (*c, b.to_string())).collect();
        let (reqs, stop2) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let Some(req) = read_request(&mut stream) else {
                    continue;
                };
                let n = {
                    let mut r = reqs.lock().unwrap();
                    r.push(req);
                    r.len() - 1
                };
                let (code, body) = &replies[n.min(replies.len() - 1)];
                let _ = write!(
                    stream,
                    "HTTP/1.1 {code} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Hook { addr, requests, stop, thread: Some(thread) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<HookRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(stream: &mut TcpStream) -> Option<HookRequest> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut r = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(HookRequest { method, target, headers, body: String::from_utf8_lossy(&body).into_owned() })
}
