//! Group MMS: a webhook listing several recipients reaches each of our users among them once,
//! from the sender's contact JID, with XEP-0033 addresses naming the group (JMP's SGX
//! convention); a repeated webhook changes nothing; a reply to several recipients is refused
//! without a VoIP.ms call.

use crate::support::harness::*;
use crate::support::xmpp_peer::Peer;
use mock_voipms::{InboundRequest, Options};
use std::time::Duration;
use voipms_xmpp::core::xmpp::element::Element;
use voipms_xmpp::core::xmpp::ns;

const OUTSIDER: &str = "5552223333";

/// (jid or uri, delivered) of each address of a delivered message.
fn addresses(m: &Element) -> Vec<(String, bool)> {
    let a = m.get_child("addresses", ns::ADDRESS).expect("XEP-0033 addresses");
    a.children()
        .map(|c| {
            assert_eq!(c.get_attr("type"), Some("to"));
            let who = c.get_attr("jid").or_else(|| c.get_attr("uri")).unwrap_or("").to_string();
            (who, c.get_attr("delivered") == Some("true"))
        })
        .collect()
}

fn group_text(peer: &mut Peer, user: &str) -> Element {
    let m = peer.expect_message(user, "hi all");
    assert_eq!(m.get_attr("from"), Some(format!("+1{FRIEND}@{DOMAIN}").as_str()), "the sender's contact JID");
    m
}

fn group() -> InboundRequest {
    // To alice's DID, both of bob's, and a number that is not ours.
    InboundRequest::sms(ALICE_DID, FRIEND, "hi all").with_group(&[BOB_DID2, OUTSIDER, BOB_DID])
}

#[test]
fn a_group_mms_reaches_each_user_once_with_the_group_named() {
    let mut env = TestEnv::new("group-in");
    let (_gw, mut peer) = env.start_online();
    let report = env.voipms.inbound(group());
    assert!(report.deliveries.iter().all(|d| d.acked), "{report:?}");
    let alice = group_text(&mut peer, ALICE);
    assert_eq!(
        addresses(&alice),
        vec![
            (ALICE.to_string(), false),
            (format!("sms:+1{BOB_DID2}"), true),
            (format!("sms:+1{OUTSIDER}"), true),
            (format!("sms:+1{BOB_DID}"), true),
        ]
    );
    // Bob owns two of the recipients: one copy, through his default DID.
    let bob = group_text(&mut peer, BOB);
    assert_eq!(
        addresses(&bob),
        vec![
            (BOB.to_string(), false),
            (format!("sms:+1{ALICE_DID}"), true),
            (format!("sms:+1{BOB_DID2}"), true),
            (format!("sms:+1{OUTSIDER}"), true),
        ]
    );
    peer.expect_nothing_for(Duration::from_millis(500));
}

#[test]
fn a_repeated_group_webhook_reaches_each_user_once() {
    let mut env = TestEnv::new("group-dedupe");
    let (_gw, mut peer) = env.start_online();
    env.voipms.set_options(Options { webhook_duplicate: true, ..env.voipms.options() });
    let report = env.voipms.inbound(group());
    assert_eq!(report.deliveries.len(), 2, "pushed twice");
    assert!(report.deliveries.iter().all(|d| d.acked), "{report:?}");
    group_text(&mut peer, ALICE);
    group_text(&mut peer, BOB);
    peer.expect_nothing_for(Duration::from_millis(700));
}

#[test]
fn a_reply_to_several_recipients_is_refused_and_nothing_is_sent() {
    let mut env = TestEnv::new("group-reply");
    let (_gw, mut peer) = env.start_online();
    let addresses = format!(
        "<addresses xmlns='http://jabber.org/protocol/address'><address type='to' uri='sms:+1{FRIEND}'/><address type='to' uri='sms:+1{OUTSIDER}'/></addresses>"
    );
    for (id, to) in [("r1", DOMAIN.to_string()), ("r2", format!("+1{FRIEND}@{DOMAIN}"))] {
        peer.send(&format!(
            "<message type='chat' id='{id}' from='alice@example.com/phone' to='{to}'>{addresses}<body>reply all</body></message>"
        ));
        let (condition, kind, text) = peer.expect_error(id);
        assert_eq!((condition.as_str(), kind.as_str()), ("feature-not-implemented", "cancel"), "{to}");
        assert!(text.contains("VoIP.ms cannot send group messages") && text.contains("nothing was sent"), "{text}");
    }
    // A plain message afterwards goes out: the refusals made no call.
    peer.send(&super::chat("alice@example.com/phone", &format!("+1{FRIEND}"), "p1", "just you"));
    env.voipms.wait_for_calls("sendSMS", 1, Duration::from_secs(15)).expect("the plain message");
    let sent = sends(&env);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].param("message"), Some("just you"));
}
