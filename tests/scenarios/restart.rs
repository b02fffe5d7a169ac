//! Whatever is spooled when the gateway dies is delivered after it starts again.

use crate::support::harness::*;
use std::time::Duration;
use voipms_xmpp::core::xmpp::ns;

#[test]
fn a_restart_resumes_a_spooled_inbound_message() {
    let mut env = TestEnv::new("restart");
    let gw = env.start();
    // The server accepts TCP but never answers: the stream never comes up.
    let _silent = env.xmpp.accept_tcp(Duration::from_secs(15));
    let (status, body) = gw.post_webhook(&webhook_body(FRIEND, ALICE_DID, "spooled across a crash", &[]));
    assert_eq!((status, body.as_str()), (200, "ok"), "accepted only once durable");
    gw.kill9();
    let gw = env.start();
    gw.wait_for_log("resuming from the spool: 1 to deliver over XMPP");
    let mut peer = env.xmpp.accept();
    let m = peer.expect_message(ALICE, "spooled across a crash");
    let delay = m.get_child("delay", ns::DELAY).expect("a delay stamp on a late delivery");
    assert!(delay.get_attr("stamp").is_some_and(|s| s.ends_with('Z')));
    // Delivered once: the server's answer to the next ping confirms it and it leaves the spool,
    // so a further restart has nothing to deliver.
    peer.expect_ping();
    drop(peer);
    gw.wait_for_log("XMPP connection lost");
    let status = gw.terminate();
    assert!(status.success(), "{status:?}");
    let gw = env.start();
    let mut peer = env.xmpp.accept();
    peer.expect_nothing_for(Duration::from_millis(500));
    assert!(!gw.log_text().contains("resuming from the spool"));
}

#[test]
fn sigterm_closes_the_stream_and_exits_zero() {
    let mut env = TestEnv::new("sigterm");
    let (gw, mut peer) = env.start_online();
    let status = gw.terminate();
    assert!(status.success(), "{status:?}");
    peer.expect_closed();
}
