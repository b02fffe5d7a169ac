//! The webhook port faces the internet: hostile requests from strangers (issue 6, defects 1–3,
//! and the connection-slot bounds). Each test ends by showing that a real webhook still goes
//! through and that the process is alive.

use crate::support::harness::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Send `bytes` in one write and read the answer until the server closes (at most `wait`).
fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_of(answer: &str) -> Option<u16> {
    answer.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// The gateway still answers a real webhook, and its log shows no panic.
fn still_serving(gw: &Gateway) {
    assert_eq!(gw.post_webhook(&webhook_body(FRIEND, ALICE_DID, "still serving", &[])).0, 200, "{}", gw.log_text());
    assert!(!gw.log_text().contains("internal error") && !gw.log_text().contains("panicked"), "{}", gw.log_text());
}

#[test]
fn issue6_a_non_ascii_chunked_trailer_does_not_kill_the_process() {
    let env = TestEnv::new("hostile-trailer");
    let gw = env.start();
    let anywhere = b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: \xc3\xa9\r\n\r\n";
    let answer = raw(gw.webhook, anywhere, Duration::from_secs(5));
    assert_eq!(status_of(&answer), Some(411), "{answer}");
    let keyed = format!("POST /voipms?key={KEY} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut keyed = keyed.into_bytes();
    keyed.extend_from_slice(b"0\r\nX: \xc3\xa9\r\n\r\n");
    let answer = raw(gw.webhook, &keyed, Duration::from_secs(5));
    assert_eq!(status_of(&answer), Some(411), "{answer}");
    still_serving(&gw);
}

#[test]
fn issue6_a_request_hanging_in_a_chunked_trailer_is_answered_at_once() {
    let env = TestEnv::new("hostile-hang");
    let gw = env.start();
    let started = Instant::now();
    let answer = raw(
        gw.webhook,
        format!("POST /voipms?key={KEY} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a").as_bytes(),
        Duration::from_secs(20),
    );
    assert_eq!(status_of(&answer), Some(411), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    still_serving(&gw);
}

#[test]
fn issue6_http_framing_smuggling_and_unknown_methods() {
    let env = TestEnv::new("hostile-framing");
    let gw = env.start();
    let body = webhook_body(FRIEND, ALICE_DID, "x", &[]);
    let two_lengths = format!(
        "POST /voipms?key={KEY} HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len(),
        body.len() + 5
    );
    let answer = raw(gw.webhook, two_lengths.as_bytes(), Duration::from_secs(5));
    assert_eq!(status_of(&answer), Some(400), "{answer}");
    let unknown = format!("FOO /voipms?key={KEY} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    let answer = raw(gw.webhook, unknown.as_bytes(), Duration::from_secs(5));
    assert_eq!(status_of(&answer), Some(501), "{answer}");
    let star = "POST * HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
    let answer = raw(gw.webhook, star.as_bytes(), Duration::from_secs(5));
    assert_eq!(status_of(&answer), Some(400), "{answer}");
    // Nothing smuggled was delivered: the only message is the one below.
    still_serving(&gw);
}

#[test]
fn issue6_full_connection_table_still_lets_a_real_webhook_through() {
    let env = TestEnv::new("hostile-slots");
    let gw = env.start();
    // 300 idle connections, then 300 that sent half a request and stopped.
    let mut hogs = Vec::new();
    for _ in 0..300 {
        hogs.push(TcpStream::connect(gw.webhook).expect("connect idle"));
    }
    let half = format!("POST /voipms?key={KEY} HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n{{\"da");
    for _ in 0..300 {
        let mut s = TcpStream::connect(gw.webhook).expect("connect half");
        s.write_all(half.as_bytes()).unwrap();
        hogs.push(s);
    }
    let started = Instant::now();
    let (status, _) = gw.post_webhook(&webhook_body(FRIEND, ALICE_DID, "through the crowd", &[]));
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    drop(hogs);
    still_serving(&gw);
}
