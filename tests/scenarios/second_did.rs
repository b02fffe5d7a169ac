//! A user's second DID works both ways: texts to it come from `+1N%+1D`, replies leave from it.

use super::chat;
use crate::support::harness::*;
use mock_voipms::InboundRequest;
use std::time::Duration;

#[test]
fn second_did_both_ways() {
    let mut env = TestEnv::new("second-did");
    let (_gw, mut peer) = env.start_online();
    env.voipms.inbound(InboundRequest::sms(BOB_DID2, FRIEND, "to your second number"));
    let m = peer.expect_message(BOB, "to your second number");
    let from = m.get_attr("from").unwrap().to_string();
    assert_eq!(from, format!("+1{FRIEND}%+1{BOB_DID2}@{DOMAIN}"));
    // A reply to that JID leaves from the second DID.
    let local = from.split('@').next().unwrap();
    peer.send(&chat("bob@example.com/laptop", local, "r1", "reply"));
    let calls = env.voipms.wait_for_calls("sendSMS", 1, Duration::from_secs(15)).unwrap();
    assert_eq!((calls[0].param("did"), calls[0].param("dst")), (Some(BOB_DID2), Some(FRIEND)));
    // Texts to the first DID come from the plain contact JID and replies leave from it.
    env.voipms.inbound(InboundRequest::sms(BOB_DID, FRIEND, "to your first number"));
    let m = peer.expect_message(BOB, "to your first number");
    assert_eq!(m.get_attr("from"), Some(format!("+1{FRIEND}@{DOMAIN}").as_str()));
    peer.send(&chat("bob@example.com/laptop", &format!("+1{FRIEND}"), "r2", "reply 2"));
    let calls = env.voipms.wait_for_calls("sendSMS", 2, Duration::from_secs(15)).unwrap();
    assert_eq!(calls[1].param("did"), Some(BOB_DID));
}
