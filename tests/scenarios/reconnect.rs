//! The gateway reconnects when the server drops the stream, and delivers what arrived meanwhile.

use crate::support::harness::*;
use mock_voipms::InboundRequest;
use std::time::Duration;

#[test]
fn reconnects_after_the_peer_drops_the_stream() {
    let mut env = TestEnv::new("reconnect");
    let (gw, peer) = env.start_online();
    drop(peer); // TCP close without </stream:stream>
    gw.wait_for_log("XMPP connection lost");
    // A message arriving while the stream is down is accepted and waits.
    let report = env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "while you were out"));
    assert_eq!(report.deliveries[0].http_status, Some(200));
    let mut peer = env.xmpp.accept_within(Duration::from_secs(15));
    peer.expect_message(ALICE, "while you were out");
}

#[test]
fn reconnects_after_a_stream_error_and_a_closed_stream() {
    let mut env = TestEnv::new("stream-error");
    let (gw, mut peer) = env.start_online();
    peer.send(
        "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
    );
    peer.expect_closed();
    gw.wait_for_log("XMPP stream error system-shutdown");
    let mut peer = env.xmpp.accept();
    peer.send("</stream:stream>");
    peer.expect_closed();
    let mut peer = env.xmpp.accept();
    env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "third stream"));
    peer.expect_message(ALICE, "third stream");
}

#[test]
fn a_wrong_secret_is_reported_and_retried() {
    let mut env = TestEnv::new("bad-secret");
    let gw = env.start();
    let mut peer = env.xmpp.accept_unauthenticated(Duration::from_secs(15));
    peer.next("the handshake");
    peer.send("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Given token does not match calculated token</text></stream:error></stream:stream>");
    peer.expect_closed();
    let line = gw.wait_for_log("XMPP stream error not-authorized");
    assert!(line.contains("ERROR") && line.contains("xmpp.secret"), "{line}");
    assert!(!gw.log_text().contains(SECRET), "the secret is never logged");
    // A configuration error does not fix itself: no hammering the server.
    env.xmpp.expect_no_connection(Duration::from_secs(3));
}

#[test]
fn a_silent_server_is_noticed_by_the_keepalive_ping() {
    let mut env = TestEnv::new("keepalive");
    env.xmpp_extra = r#", "keepalive_secs": 2"#.into();
    let (gw, mut peer) = env.start_online();
    peer.swallow_pings();
    peer.expect_ping();
    peer.expect_closed();
    gw.wait_for_log("no answer to a ping within 2s: the XMPP connection is dead");
    let mut peer = env.xmpp.accept();
    env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "after the dead link"));
    peer.expect_message(ALICE, "after the dead link");
}

#[test]
fn oversized_and_malformed_input_ends_the_stream_not_the_gateway() {
    let mut env = TestEnv::new("bad-xml");
    let (_gw, mut peer) = env.start_online();
    peer.send("<message from='a@b' to='c'><!-- comment --></message>");
    peer.expect_closed();
    let mut peer = env.xmpp.accept();
    let big = format!(
        "<message from='alice@example.com/x' to='+1{FRIEND}@{DOMAIN}'><body>{}</body></message>",
        "a".repeat(600 * 1024)
    );
    peer.send_bytes(big.as_bytes());
    peer.expect_closed();
    let mut peer = env.xmpp.accept();
    env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "still alive"));
    peer.expect_message(ALICE, "still alive");
}
