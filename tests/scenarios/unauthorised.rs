//! Only a mapped JID may send, and only from its own DIDs; refusals make no VoIP.ms call.

use super::chat;
use crate::support::harness::*;
use std::time::Duration;

#[test]
fn unauthorised_sender_is_refused() {
    let mut env = TestEnv::new("unauth");
    let (_gw, mut peer) = env.start_online();
    peer.send(&chat("eve@example.com/x", &format!("+1{FRIEND}"), "e1", "let me in"));
    let (cond, kind, _) = peer.expect_error("e1");
    assert_eq!((cond.as_str(), kind.as_str()), ("not-allowed", "cancel"));
    // A later permitted message is the only call VoIP.ms sees: the refused one made none.
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "a1", "allowed"));
    let calls = env.voipms.wait_for_calls("sendSMS", 1, Duration::from_secs(15)).unwrap();
    assert_eq!(sends(&env).len(), 1);
    assert_eq!(calls[0].param("message"), Some("allowed"));
}

#[test]
fn sending_from_someone_elses_did_is_refused() {
    let mut env = TestEnv::new("wrong-did");
    let (_gw, mut peer) = env.start_online();
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}%+1{BOB_DID}"), "w1", "spoof"));
    let (cond, kind, text) = peer.expect_error("w1");
    assert_eq!((cond.as_str(), kind.as_str()), ("not-allowed", "cancel"));
    assert!(!text.contains(BOB_DID), "the error names no full number: {text}");
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "a2", "mine"));
    env.voipms.wait_for_calls("sendSMS", 1, Duration::from_secs(15)).unwrap();
    assert_eq!(sends(&env).len(), 1);
}

#[test]
fn numbers_voipms_cannot_reach_and_addresses_that_are_not_numbers() {
    let mut env = TestEnv::new("bad-number");
    let (_gw, mut peer) = env.start_online();
    peer.send(&chat("alice@example.com/phone", "+442079460958", "n1", "hello London"));
    let (cond, kind, _) = peer.expect_error("n1");
    assert_eq!((cond.as_str(), kind.as_str()), ("item-not-found", "cancel"));
    peer.send(&chat("alice@example.com/phone", "pizza", "n0", "hello?"));
    let (cond, kind, _) = peer.expect_error("n0");
    assert_eq!((cond.as_str(), kind.as_str()), ("jid-malformed", "modify"));
    peer.send(&format!("<message type='chat' id='n2' from='alice@example.com/phone' to='{DOMAIN}'><body>to the gateway</body></message>"));
    let (cond, _, _) = peer.expect_error("n2");
    assert_eq!(cond, "service-unavailable");
    assert!(sends(&env).is_empty());
}
