//! The XMPP server refuses a delivery (an unknown or unreachable user): the message is kept in
//! `state_dir/undeliverable/`, not lost; a temporary refusal is delivered again later.

use crate::support::harness::*;
use mock_voipms::InboundRequest;
use std::time::Duration;

#[test]
fn a_delivery_the_server_refuses_is_kept_in_undeliverable() {
    // Regression (issue 6, defect 6): the server's error for a delivered message was logged
    // at Info and dropped, and the record deleted: the text was gone.
    let mut env = TestEnv::new("delivery-error");
    let (gw, mut peer) = env.start_online();
    env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "for a user the server does not know"));
    let m = peer.expect_message(ALICE, "for a user the server does not know");
    peer.expect_ping();
    peer.answer_with_error(&m, "cancel", "service-unavailable");
    let line = gw.wait_for_log("undeliverable");
    assert!(line.contains("ERROR") && line.contains(ALICE) && line.contains("service-unavailable"), "{line}");
    assert!(!line.contains("does not know"), "no body in the log: {line}");
    let files: Vec<_> = std::fs::read_dir(env.state_dir().join("undeliverable")).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(text.contains("for a user the server does not know") && text.contains("service-unavailable"), "{text}");
    // Not delivered again, now or after a restart.
    peer.expect_nothing_for(Duration::from_millis(300));
    assert!(gw.terminate().success());
    let (_gw, mut peer) = env.start_online();
    peer.expect_nothing_for(Duration::from_millis(500));
}

#[test]
fn a_delivery_the_server_defers_is_delivered_again() {
    let mut env = TestEnv::new("delivery-wait");
    let (gw, mut peer) = env.start_online();
    env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "try me later"));
    let m = peer.expect_message(ALICE, "try me later");
    peer.answer_with_error(&m, "wait", "resource-constraint");
    gw.wait_for_log("trying again in");
    // The back-off is a minute: a restart brings it at once (it is back in the spool).
    assert!(gw.terminate().success());
    let (_gw, mut peer) = env.start_online();
    peer.expect_message(ALICE, "try me later");
}
