//! The webhook's HTTP contract: key, path, method, JSON, size.

use crate::support::harness::*;

#[test]
fn bad_key_missing_key_wrong_path_and_method() {
    let env = TestEnv::new("webhook-auth");
    let gw = env.start();
    let body = webhook_body(FRIEND, ALICE_DID, "x", &[]);
    assert_eq!(gw.http("POST", "/voipms?key=wrong", body.as_bytes()).0, 403);
    assert_eq!(gw.http("POST", &format!("/voipms?key={KEY}x"), body.as_bytes()).0, 403);
    assert_eq!(
        gw.http("POST", &format!("/voipms?xkey={KEY}"), body.as_bytes()).0,
        401,
        "the key parameter is matched exactly"
    );
    assert_eq!(gw.http("POST", "/voipms", body.as_bytes()).0, 401);
    assert_eq!(gw.http("POST", &format!("/other?key={KEY}"), body.as_bytes()).0, 404);
    assert_eq!(gw.http("GET", &format!("/voipms?key={KEY}"), b"").0, 405);
    // A percent-encoded key is decoded before comparison.
    let encoded: String = KEY.bytes().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(gw.http("POST", &format!("/voipms?key={encoded}"), body.as_bytes()).0, 200);
    assert!(!gw.log_text().contains(KEY), "the key is never logged");
}

#[test]
fn bad_json_missing_numbers_and_oversize() {
    let env = TestEnv::new("webhook-body");
    let gw = env.start();
    let target = format!("/voipms?key={KEY}");
    let (status, body) = gw.http("POST", &target, b"{not json");
    assert_eq!(status, 400);
    assert!(body.contains("not JSON"), "{body}");
    let (status, body) =
        gw.http("POST", &target, br#"{"data":{"payload":{"to":[{"phone_number":"5552345678"}],"text":"x"}}}"#);
    assert_eq!(status, 400);
    assert!(body.contains("from.phone_number"), "{body}");
    let (status, _) = gw.http(
        "POST",
        &target,
        br#"{"data":{"payload":{"from":{"phone_number":"5559998888"},"to":[{"phone_number":"12"}],"text":"x"}}}"#,
    );
    assert_eq!(status, 400);
    let huge = vec![b' '; 200 * 1024];
    assert_eq!(gw.http("POST", &target, &huge).0, 413);
    // The server is still fine afterwards.
    assert_eq!(gw.post_webhook(&webhook_body(FRIEND, ALICE_DID, "after", &[])).0, 200);
}

#[test]
fn hostile_heads_and_slow_clients_do_not_hurt_the_server() {
    use std::io::{Read, Write};
    let env = TestEnv::new("webhook-hostile");
    let gw = env.start();
    // Non-ASCII in a header value: http-types would panic on it; the connection is refused.
    let mut s = std::net::TcpStream::connect(gw.webhook).unwrap();
    s.write_all(
        b"POST /voipms?key=webhook-key HTTP/1.1\r\nHost: x\r\nX-Name: \xc3\xa9t\xc3\xa9\r\nContent-Length: 2\r\n\r\n{}",
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    // A header line without an end is cut off at the head budget, not buffered forever.
    let mut s = std::net::TcpStream::connect(gw.webhook).unwrap();
    let _ = s.write_all(b"POST /voipms?key=webhook-key HTTP/1.1\r\nX-Long: ");
    let _ = s.write_all(&vec![b'a'; 200 * 1024]);
    let _ = s.read_to_end(&mut answer);
    // UTF-8 in the body is fine, also after a `100 Continue` (curl asks for one above 1 KiB).
    let body = webhook_body(FRIEND, ALICE_DID, &format!("{} é漢😀", "x".repeat(1200)), &[]);
    let mut s = std::net::TcpStream::connect(gw.webhook).unwrap();
    write!(s, "POST /voipms?key={KEY} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
    let mut buf = [0u8; 25];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(body.as_bytes()).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
    assert!(!gw.log_text().contains("panicked"), "{}", gw.log_text());
    assert_eq!(gw.post_webhook(&webhook_body(FRIEND, ALICE_DID, "still serving", &[])).0, 200);
}
