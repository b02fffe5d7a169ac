//! An SMS delivered by VoIP.ms's webhook reaches the user as a chat message, after `200 ok`.

use crate::support::harness::*;
use mock_voipms::InboundRequest;
use voipms_xmpp::core::xmpp::ns;

#[test]
fn sms_in_reaches_the_owner_of_the_did() {
    let mut env = TestEnv::new("sms-in");
    let (_gw, mut peer) = env.start_online();
    let report = env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "hi <alice> & \"co\" é😀"));
    let delivery = &report.deliveries[0];
    assert_eq!(delivery.mechanism, "webhook");
    assert_eq!(delivery.http_status, Some(200));
    assert_eq!(delivery.response_body, "ok");
    let m = peer.expect_message(ALICE, "hi <alice> & \"co\" é😀");
    assert_eq!(m.get_attr("from"), Some(format!("+1{FRIEND}@{DOMAIN}").as_str()));
    assert_eq!(m.get_attr("type"), Some("chat"));
    assert!(m.get_child("delay", ns::DELAY).is_none(), "a prompt delivery has no delay stamp");
    let first_id = m.get_attr("id").expect("an id").to_string();
    env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "second"));
    let m2 = peer.expect_message(ALICE, "second");
    assert_ne!(m2.get_attr("id"), Some(first_id.as_str()), "ids are unique");
}

#[test]
fn e164_numbers_in_the_webhook_are_understood() {
    let mut env = TestEnv::new("sms-in-e164");
    let (gw, mut peer) = env.start_online();
    let (status, body) = gw.post_webhook(&webhook_body(&format!("+1{FRIEND}"), &format!("+1{BOB_DID}"), "e164", &[]));
    assert_eq!((status, body.as_str()), (200, "ok"));
    let m = peer.expect_message(BOB, "e164");
    assert_eq!(m.get_attr("from"), Some(format!("+1{FRIEND}@{DOMAIN}").as_str()));
}

#[test]
fn a_message_to_an_unmapped_did_is_kept_for_the_operator() {
    let mut env = TestEnv::new("unmapped");
    let (gw, mut peer) = env.start_online();
    let (status, body) = gw.post_webhook(&webhook_body(FRIEND, "5554443333", "for nobody", &[]));
    assert_eq!((status, body.as_str()), (200, "ok"));
    gw.wait_for_log("…3333 which no user maps");
    assert!(!gw.log_text().contains("5554443333"), "the log shows only the last 4 digits");
    let kept: Vec<_> = std::fs::read_dir(env.state_dir().join("unrouted")).unwrap().collect();
    assert_eq!(kept.len(), 1);
    let text = std::fs::read_to_string(kept[0].as_ref().unwrap().path()).unwrap();
    assert!(text.contains("for nobody") && text.contains("5554443333"), "{text}");
    peer.expect_nothing_for(std::time::Duration::from_millis(300));
}
