//! XEP-0184: a user who asks gets `<received/>` once VoIP.ms has accepted every part of the
//! message, never before, never after a failure, and also when the stream was down meanwhile.

use crate::support::harness::*;
use crate::support::xmpp_peer::Peer;
use mock_voipms::Fault;
use std::time::Duration;
use voipms_xmpp::core::xmpp::element::Element;
use voipms_xmpp::core::xmpp::ns;

fn asking(id: &str, body: &str) -> String {
    format!(
        "<message type='chat' id='{id}' from='alice@example.com/phone' to='+1{FRIEND}@{DOMAIN}'><body>{body}</body><request xmlns='urn:xmpp:receipts'/></message>"
    )
}

fn is_receipt(e: &Element) -> bool {
    e.is("message", ns::COMPONENT) && e.get_child("received", ns::RECEIPTS).is_some()
}

/// Wait for the receipt naming `id` and check its addresses.
fn expect_receipt(peer: &mut Peer, id: &str) {
    let r = peer.expect(&format!("a receipt for {id}"), is_receipt);
    assert_eq!(r.get_child("received", ns::RECEIPTS).and_then(|x| x.get_attr("id")), Some(id));
    assert_eq!(r.get_attr("from"), Some(format!("+1{FRIEND}@{DOMAIN}").as_str()));
    assert_eq!(r.get_attr("to"), Some("alice@example.com/phone"), "to the resource that sent it");
    assert!(r.get_child("request", ns::RECEIPTS).is_none() && r.get_child("body", ns::COMPONENT).is_none());
}

#[test]
fn the_receipt_comes_after_the_last_part_not_before() {
    let mut env = TestEnv::new("receipt-parts");
    let (_gw, mut peer) = env.start_online();
    // Part 1 answers at once; part 2's answer takes 1.5 s.
    env.voipms.inject(Fault::delay("sendMMS", 1, 0, true));
    env.voipms.inject(Fault::delay("sendMMS", 1, 1500, true));
    let text: String = (0..500).map(|i| format!("w{i:04} ")).collect(); // 3000 bytes: 2 parts
    peer.send(&asking("long1", &text));
    env.voipms.wait_for_calls("sendMMS", 2, Duration::from_secs(15)).expect("both parts under way");
    // Part 1 was accepted, part 2 is still with VoIP.ms: no receipt yet.
    peer.expect_nothing_for(Duration::from_millis(700));
    expect_receipt(&mut peer, "long1");
    let calls = env.voipms.calls_for("sendMMS");
    assert!(calls.iter().all(|c| c.status == "success"), "{calls:?}");
    peer.expect_nothing_for(Duration::from_millis(300));
}

#[test]
fn a_failed_part_gets_the_error_and_no_receipt() {
    let mut env = TestEnv::new("receipt-failure");
    let (_gw, mut peer) = env.start_online();
    env.voipms.inject(Fault::delay("sendMMS", 1, 800, false));
    let text: String = (0..500).map(|i| format!("w{i:04} ")).collect();
    peer.send(&asking("long2", &text));
    env.voipms.wait_for_calls("sendMMS", 1, Duration::from_secs(15)).expect("part 1 under way");
    // Queued behind the delay, so it is the second part that meets it.
    env.voipms.inject(Fault::status("sendMMS", 1, "sms_toolong"));
    let (condition, kind, text) = peer.expect_error("long2");
    assert_eq!((condition.as_str(), kind.as_str()), ("not-acceptable", "modify"));
    assert!(text.contains("the first 1 of 2 parts were sent"), "{text}");
    peer.expect_nothing_for(Duration::from_millis(500));
}

#[test]
fn a_receipt_owed_during_an_xmpp_outage_arrives_after_it() {
    let mut env = TestEnv::new("receipt-outage");
    let (_gw, mut peer) = env.start_online();
    env.voipms.inject(Fault::delay("sendSMS", 1, 1000, false));
    peer.send(&asking("m1", "sent while the stream was down"));
    env.voipms.wait_for_calls("sendSMS", 1, Duration::from_secs(15)).expect("a sendSMS call");
    // The server goes away while VoIP.ms works on it; the send finishes with no stream.
    drop(peer);
    env.voipms
        .wait_for_calls_where(Duration::from_secs(15), |c| {
            c.iter().any(|c| c.method == "sendSMS" && c.status == "success")
        })
        .expect("the send finished");
    let mut peer = env.xmpp.accept();
    expect_receipt(&mut peer, "m1");
    assert_eq!(sends(&env).len(), 1, "sent once");
}
