//! A VoIP.ms failure reaches the sender as a stanza error with the original id and the reason.

use super::chat;
use crate::support::harness::*;
use mock_voipms::Fault;
use std::time::Duration;

#[test]
fn a_voipms_error_reaches_the_sender() {
    let mut env = TestEnv::new("voipms-error");
    let (gw, mut peer) = env.start_online();
    env.voipms.inject(Fault::status("sendSMS", 1, "invalid_dst"));
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "x1", "to nowhere"));
    let (cond, kind, text) = peer.expect_error("x1");
    assert_eq!((cond.as_str(), kind.as_str()), ("item-not-found", "cancel"));
    assert!(text.contains("invalid_dst"), "{text}");
    let e = peer.transcript();
    assert!(!e.contains("to nowhere"), "the body is not echoed back");
    gw.wait_for_log("VoIP.ms did not send a message to …8888");
    assert!(!gw.log_text().contains("to nowhere"), "bodies are never logged");
    assert!(!gw.log_text().contains("secret"), "secrets are never logged");
}

#[test]
fn garbage_is_retried_and_operator_errors_bounce_at_once() {
    let mut env = TestEnv::new("voipms-http");
    let (_gw, mut peer) = env.start_online();
    env.voipms.inject(Fault::non_json("sendSMS", 1, "<html>Cloudflare</html>"));
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "h1", "one"));
    let calls = env.voipms.wait_for_calls("sendSMS", 2, Duration::from_secs(15)).unwrap();
    assert_eq!(calls[0].status, "non_json");
    assert_eq!((calls[1].status.as_str(), calls[1].param("message")), ("success", Some("one")));
    env.voipms.inject(Fault::status("sendSMS", 1, "invalid_credentials"));
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "h2", "two"));
    let (cond, kind, text) = peer.expect_error("h2");
    assert_eq!((cond.as_str(), kind.as_str()), ("service-unavailable", "cancel"));
    assert!(text.contains("credentials"), "{text}");
    assert_eq!(env.voipms.calls_for("sendSMS").len(), 3, "no retry of an operator error");
}
