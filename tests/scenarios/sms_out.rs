//! A user's message becomes a sendSMS from their default DID, in order, with nothing bounced.

use super::chat;
use crate::support::harness::*;
use std::time::Duration;

#[test]
fn sms_out_from_the_default_did() {
    let mut env = TestEnv::new("sms-out");
    let (_gw, mut peer) = env.start_online();
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "m1", "hello &amp; bye"));
    let calls = env.voipms.wait_for_calls("sendSMS", 1, Duration::from_secs(15)).expect("a sendSMS call");
    assert_eq!(calls[0].param("did"), Some(ALICE_DID));
    assert_eq!(calls[0].param("dst"), Some(FRIEND));
    assert_eq!(calls[0].param("message"), Some("hello & bye"));
    assert_eq!(calls[0].status, "success");
    // The credentials came from the config, and no error went back to alice.
    assert_eq!(calls[0].param("api_username"), Some("john@example.com"));
    peer.expect_nothing_for(Duration::from_millis(300));
}

#[test]
fn messages_to_one_number_keep_their_order() {
    let mut env = TestEnv::new("order");
    let (_gw, mut peer) = env.start_online();
    for i in 0..6 {
        // Every localpart form reaches the same number.
        let to = [format!("+1{FRIEND}"), format!("1{FRIEND}"), FRIEND.to_string()][i % 3].clone();
        peer.send(&chat("alice@example.com/phone", &to, &format!("o{i}"), &format!("message {i}")));
    }
    let calls = env.voipms.wait_for_calls("sendSMS", 6, Duration::from_secs(15)).expect("six sends");
    let texts: Vec<&str> = calls.iter().filter_map(|c| c.param("message")).collect();
    assert_eq!(texts, vec!["message 0", "message 1", "message 2", "message 3", "message 4", "message 5"]);
}
