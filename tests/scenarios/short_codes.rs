//! Short codes (5–6 digits) as contacts: texts from them arrive from `CODE@domain`, replies go
//! to VoIP.ms with `dst=CODE`, and VoIP.ms's refusal (the mock's `invalid_dst`, as for anything
//! that is not NANP) reaches the sender in plain words.

use super::chat;
use crate::support::harness::*;
use mock_voipms::InboundRequest;
use std::time::Duration;

#[test]
fn a_text_from_a_short_code_comes_from_its_contact_jid() {
    let mut env = TestEnv::new("short-code-in");
    let (_gw, mut peer) = env.start_online();
    let report = env.voipms.inbound(InboundRequest::sms(ALICE_DID, "72345", "Your code is 123456"));
    assert!(report.deliveries.iter().all(|d| d.acked), "{report:?}");
    let m = peer.expect_message(ALICE, "Your code is 123456");
    assert_eq!(m.get_attr("from"), Some(format!("72345@{DOMAIN}").as_str()));
}

#[test]
fn a_reply_to_a_short_code_is_sent_with_the_code_as_dst_and_its_refusal_is_clear() {
    let mut env = TestEnv::new("short-code-out");
    let (_gw, mut peer) = env.start_online();
    peer.send(&chat("alice@example.com/phone", "12345", "s1", "STOP"));
    let calls = env.voipms.wait_for_calls("sendSMS", 1, Duration::from_secs(15)).expect("a sendSMS call");
    assert_eq!(calls[0].param("dst"), Some("12345"));
    assert_eq!(calls[0].param("did"), Some(ALICE_DID));
    assert_eq!(calls[0].status, "invalid_dst", "the mock, like VoIP.ms, takes only NANP numbers");
    let (condition, kind, text) = peer.expect_error("s1");
    assert_eq!((condition.as_str(), kind.as_str()), ("item-not-found", "cancel"));
    assert_eq!(
        text,
        "VoIP.ms did not accept the short code 12345; VoIP.ms may not support texting short codes (invalid_dst)"
    );
    // Refused for good: not tried again.
    peer.expect_nothing_for(Duration::from_millis(300));
    assert_eq!(sends(&env).len(), 1);
}
