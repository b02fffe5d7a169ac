//! The XMPP server away: received texts wait in the spool and arrive in order, delay-stamped,
//! when it is back; a stream cut mid-stanza loses nothing; `conflict` is retried.

use crate::support::harness::*;
use crate::support::xmpp_peer::XmppServer;
use mock_voipms::InboundRequest;
use std::time::Duration;
use voipms_xmpp::core::xmpp::ns;

#[test]
fn texts_wait_while_the_server_refuses_connections_then_arrive_in_order_with_stamps() {
    let mut env = TestEnv::new("xmpp-down");
    // Nothing listens where the gateway connects: every attempt is refused.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    env.xmpp_server = addr;
    let gw = env.start();
    gw.wait_for_log("cannot connect to the XMPP server");
    for i in 0..3 {
        let report = env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, &format!("queued {i}")));
        assert_eq!(report.deliveries[0].http_status, Some(200), "accepted while XMPP is down");
    }
    // The server comes back on the same address.
    env.xmpp = XmppServer::bind_at(addr, DOMAIN, SECRET);
    let mut peer = env.xmpp.accept_within(Duration::from_secs(70));
    for i in 0..3 {
        let m = peer.next("a queued text");
        assert_eq!(m.get_child("body", ns::COMPONENT).unwrap().text_content(), format!("queued {i}"), "in order");
        let stamp = m.get_child("delay", ns::DELAY).and_then(|d| d.get_attr("stamp").map(str::to_string));
        assert!(stamp.is_some_and(|s| s.ends_with('Z')), "delay-stamped: {m:?}");
    }
}

#[test]
fn a_stream_cut_mid_stanza_loses_nothing() {
    let mut env = TestEnv::new("xmpp-cut");
    let (gw, mut peer) = env.start_online();
    // The server dies half-way through a stanza, and without answering the gateway's ping.
    peer.swallow_pings();
    env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "written just before the cut"));
    peer.expect_message(ALICE, "written just before the cut");
    peer.send_bytes(b"<message from='alice@example.com/x' to='+15559998888@sms.example.com'><bo");
    drop(peer);
    gw.wait_for_log("XMPP connection lost");
    // Not confirmed on the dead stream, so written again on the next one.
    let mut peer = env.xmpp.accept();
    peer.expect_message(ALICE, "written just before the cut");
}

#[test]
fn conflict_on_reconnect_is_retried() {
    let mut env = TestEnv::new("xmpp-conflict");
    let gw = env.start();
    let mut peer = env.xmpp.accept_unauthenticated(Duration::from_secs(15));
    peer.next("the handshake");
    peer.send("<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Component already connected</text></stream:error></stream:stream>");
    peer.expect_closed();
    gw.wait_for_log("XMPP stream error conflict");
    let mut peer = env.xmpp.accept();
    env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "after the conflict"));
    peer.expect_message(ALICE, "after the conflict");
}
