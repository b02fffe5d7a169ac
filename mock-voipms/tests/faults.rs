//! Fault injection (§11.10): every kind, through the library and the control API.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use mock_voipms::{Fault, FaultKind, MockVoipms};

fn send_request() -> String {
    let q = query(&with_creds(&[("method", "sendSMS"), ("did", DID), ("dst", CONTACT), ("message", "hi")]));
    format!("GET /api/v1/rest.php?{q} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
}

fn send_sms(mock: &MockVoipms) -> Resp {
    raw(mock.addr(), send_request().as_bytes()).expect("response")
}

/// Send sendSMS and give up after `patience`; returns whether any byte arrived.
fn impatient_send(mock: &MockVoipms, patience: Duration) -> bool {
    let mut s = TcpStream::connect(mock.addr()).unwrap();
    s.set_read_timeout(Some(patience)).unwrap();
    s.write_all(send_request().as_bytes()).unwrap();
    let mut buf = [0u8; 1];
    matches!(s.read(&mut buf), Ok(n) if n > 0)
}

fn statuses(mock: &MockVoipms) -> Vec<String> {
    mock.calls().into_iter().map(|c| c.status).collect()
}

#[test]
fn status_fault_answers_without_running_the_method() {
    let mock = mock();
    mock.inject(Fault::status("sendSMS", 2, "sms_failed"));
    mock.inject(Fault::status("getSMS", 1, "method_maintenance"));
    assert_eq!(send_sms(&mock).json().to_json(), r#"{"status":"sms_failed"}"#);
    assert_eq!(status(&send_sms(&mock).json()), "sms_failed");
    assert!(mock.messages().is_empty());
    assert_eq!(status(&send_sms(&mock).json()), "success");
    assert_eq!(mock.messages().len(), 1);
    assert_eq!(statuses(&mock), ["sms_failed", "sms_failed", "success"]);
    assert_eq!(mock.faults(), vec![Fault::status("getSMS", 1, "method_maintenance")]);
    mock.clear_faults();
    assert!(mock.faults().is_empty());
}

#[test]
fn http_status_fault() {
    let mock = mock();
    mock.inject(Fault::http_status("sendSMS", 1, 503));
    mock.inject(Fault::new(
        "sendSMS",
        1,
        FaultKind::HttpStatus { code: 502, body: Some("<h1>Bad gateway</h1>".into()), then_succeed: false },
    ));
    let r = send_sms(&mock);
    assert_eq!(r.status, 503);
    assert!(r.body.is_empty());
    let r = send_sms(&mock);
    assert_eq!(r.status, 502);
    assert_eq!(r.text(), "<h1>Bad gateway</h1>");
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(mock.messages().is_empty());
    assert_eq!(statuses(&mock), ["http_503", "http_502"]);
}

#[test]
fn http_status_fault_after_the_method_ran() {
    // A proxy's 502/504 after VoIP.ms already sent the SMS.
    let mock = mock();
    mock.inject(Fault::http_status_after_success("sendSMS", 1, 502));
    let r = send_sms(&mock);
    assert_eq!(r.status, 502);
    assert_eq!(mock.messages().len(), 1, "the row is stored");
    assert_eq!(statuses(&mock), ["http_502"]);
}

#[test]
fn non_json_and_no_status_faults() {
    let mock = mock();
    mock.inject(Fault::non_json("*", 1, "<html>Cloudflare</html>"));
    mock.inject(Fault::no_status("*", 2));
    let r = send_sms(&mock);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(r.text(), "<html>Cloudflare</html>");
    let r = api(&mock, "getBalance", &[]);
    assert_eq!(r.to_json(), "{}");
    assert_eq!(api(&mock, "getIP", &[]).to_json(), "{}");
    assert_eq!(status(&api(&mock, "getIP", &[])), "success");
    assert!(mock.messages().is_empty());
    assert_eq!(statuses(&mock), ["non_json", "no_status", "no_status", "success"]);
}

#[test]
fn delay_answers_late_to_a_patient_client() {
    let mock = mock();
    mock.inject(Fault::delay("sendSMS", 1, 300, false));
    let t = Instant::now();
    let r = send_sms(&mock);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.json().to_json(), r#"{"status":"success","sms":100000000}"#);
    assert_eq!(mock.messages().len(), 1);
    assert_eq!(statuses(&mock), ["success"]);
}

#[test]
fn delay_without_then_succeed_stores_nothing_when_the_client_gives_up() {
    let mock = mock();
    mock.inject(Fault::delay("sendSMS", 1, 20_000, false));
    assert!(!impatient_send(&mock, Duration::from_millis(200)));
    // The client closed its socket: the mock notices long before the 20 s delay ends.
    let calls = mock
        .wait_for_calls_where(Duration::from_secs(10), |c| c.iter().any(|c| c.status == "client_gone"))
        .expect("client_gone recorded");
    assert_eq!(calls.len(), 1);
    assert!(mock.messages().is_empty());
}

#[test]
fn delay_with_then_succeed_stores_the_row_and_does_not_block_others() {
    let mock = mock();
    mock.inject(Fault::delay("sendSMS", 1, 3_000, true));
    let addr = mock.addr();
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(send_request().as_bytes()).unwrap();
        let t = Instant::now();
        let r = read_response(&mut s).unwrap();
        (t.elapsed(), r)
    });
    let calls = mock.wait_for_calls("sendSMS", 1, Duration::from_secs(10)).unwrap();
    assert_eq!(calls[0].status, "success");
    assert_eq!(mock.messages().len(), 1, "stored before the late answer");
    // Another request is answered while the first one waits.
    let t = Instant::now();
    assert_eq!(status(&api(&mock, "getBalance", &[])), "success");
    assert!(t.elapsed() < Duration::from_millis(2_500));
    let (elapsed, r) = client.join().unwrap();
    assert!(elapsed >= Duration::from_millis(2_500), "{elapsed:?}");
    assert_eq!(status(&r.json()), "success");

    // An impatient client still leaves the row behind.
    mock.inject(Fault::delay("sendSMS", 1, 5_000, true));
    assert!(!impatient_send(&mock, Duration::from_millis(200)));
    let calls = mock.wait_for_calls("sendSMS", 2, Duration::from_secs(10)).unwrap();
    assert_eq!(calls[1].status, "success");
    assert_eq!(mock.messages().len(), 2);
}

#[test]
fn close_connection_drops_without_a_byte() {
    let mock = mock();
    mock.inject(Fault::close_connection("sendSMS", 1, false));
    mock.inject(Fault::close_connection("sendSMS", 1, true));
    for _ in 0..2 {
        let mut s = TcpStream::connect(mock.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(send_request().as_bytes()).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    }
    assert_eq!(statuses(&mock), ["closed", "closed"]);
    // Only the then_succeed one stored a row.
    assert_eq!(mock.messages().len(), 1);
    assert_eq!(status(&send_sms(&mock).json()), "success");
}

#[test]
fn faults_through_the_control_api() {
    let mock = mock();
    let body = r#"[{"method":"sendSMS","count":2,"kind":{"http_status":503}},
                   {"method":"*","kind":{"status":"api_limit_exceeded"}}]"#;
    let r = control(&mock, "POST", "/_mock/faults", Some(body));
    assert_eq!(r.status, 200);
    assert_eq!(r.json().to_json(), r#"{"ok":true,"queued":2}"#);
    let listed = control(&mock, "GET", "/_mock/faults", None).json();
    assert_eq!(
        listed.to_json(),
        r#"[{"method":"sendSMS","count":2,"kind":{"http_status":503}},{"method":"*","count":1,"kind":{"status":"api_limit_exceeded"}}]"#
    );
    assert_eq!(status(&api(&mock, "getIP", &[])), "api_limit_exceeded");
    assert_eq!(send_sms(&mock).status, 503);
    let r = control(&mock, "DELETE", "/_mock/faults", None);
    assert_eq!(r.status, 200);
    assert_eq!(send_sms(&mock).status, 200);

    let r = control(&mock, "POST", "/_mock/faults", Some(r#"{"method":"x","kind":{"delay_ms":5,"then_succed":true}}"#));
    assert_eq!(r.status, 400);
    assert!(s(&r.json(), "error").contains("kind.then_succed"), "{}", r.text());
    let r = control(
        &mock,
        "POST",
        "/_mock/faults",
        Some(r#"{"method":"x","kind":{"close_connection":true,"then_succeed":true}}"#),
    );
    assert_eq!(r.status, 200);
    assert_eq!(mock.faults(), vec![Fault::close_connection("x", 1, true)]);
}
