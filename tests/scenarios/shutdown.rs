//! SIGTERM: stop intake, finish in-flight work, close the stream cleanly, exit 0.

use super::chat;
use crate::support::harness::*;
use mock_voipms::Fault;
use std::time::Duration;

#[test]
fn sigterm_finishes_a_send_in_flight_and_closes_the_stream() {
    let mut env = TestEnv::new("shutdown");
    let (gw, mut peer) = env.start_online();
    env.voipms.inject(Fault::delay("sendSMS", 1, 1500, false));
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "s1", "in flight at SIGTERM"));
    env.voipms.wait_for_calls_where(Duration::from_secs(15), |c| c.iter().any(|c| c.method == "sendSMS")).unwrap();
    let status = gw.terminate();
    assert!(status.success(), "{status:?}");
    peer.expect_closed();
    let sent: Vec<_> = env.voipms.calls_for("sendSMS").into_iter().filter(|c| c.status == "success").collect();
    assert_eq!(sent.len(), 1, "the send in flight finished before the exit");
    // Nothing left to do after a restart: not sent twice.
    let gw = env.start();
    let mut peer = env.xmpp.accept();
    peer.expect_nothing_for(Duration::from_millis(500));
    assert_eq!(env.voipms.calls_for("sendSMS").len(), 1);
    assert!(!gw.log_text().contains("resuming from the spool"));
}

#[test]
fn sigint_stops_cleanly_too() {
    let mut env = TestEnv::new("sigint");
    let (gw, mut peer) = env.start_online();
    let (status, _) = gw.post_webhook(&webhook_body(FRIEND, ALICE_DID, "before the interrupt", &[]));
    assert_eq!(status, 200);
    peer.expect_message(ALICE, "before the interrupt");
    let status = gw.stop_with("INT");
    assert!(status.success(), "{status:?}");
    peer.expect_closed();
}
