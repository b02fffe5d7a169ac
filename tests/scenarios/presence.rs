//! Presence (RFC 6121, XEP-0100 §4): the domain announces itself at connect and says goodbye at
//! a clean shutdown; mapped users' subscriptions and probes are answered with caps, strangers'
//! never are.

use super::disco::{CAPS_NODE, CONTACT_VER, DOMAIN_VER};
use crate::support::harness::*;
use crate::support::xmpp_peer::Peer;
use std::time::Duration;
use voipms_xmpp::core::xmpp::element::Element;
use voipms_xmpp::core::xmpp::ns;

/// Wait for a presence of `kind` (`None`: available) from `from` to `to`.
fn presence(peer: &mut Peer, kind: Option<&str>, from: &str, to: &str) -> Element {
    peer.expect_presence(&format!("presence {kind:?} from {from} to {to}"), |e| {
        e.get_attr("type") == kind && e.get_attr("from") == Some(from) && e.get_attr("to") == Some(to)
    })
}

/// The XEP-0115 `ver` of a presence's caps, checking hash and node.
fn caps_ver(p: &Element) -> String {
    let c = p.get_child("c", ns::CAPS).expect("XEP-0115 caps");
    assert_eq!(c.get_attr("hash"), Some("sha-1"));
    assert_eq!(c.get_attr("node"), Some(CAPS_NODE));
    c.get_attr("ver").unwrap_or("").to_string()
}

#[test]
fn the_domain_is_available_to_every_user_at_connect_and_unavailable_at_shutdown() {
    let mut env = TestEnv::new("presence-connect");
    let (gw, mut peer) = env.start_online();
    for user in [ALICE, BOB] {
        let p = presence(&mut peer, None, DOMAIN, user);
        assert_eq!(caps_ver(&p), DOMAIN_VER);
    }
    assert!(gw.terminate().success());
    for user in [ALICE, BOB] {
        presence(&mut peer, Some("unavailable"), DOMAIN, user);
    }
    peer.expect_closed();
}

#[test]
fn subscriptions_and_probes_from_users_are_answered_with_caps() {
    let mut env = TestEnv::new("presence-subscribe");
    let (_gw, mut peer) = env.start_online();
    let contact = format!("+1{FRIEND}@{DOMAIN}");
    peer.send(&format!("<presence type='subscribe' from='{ALICE}' to='{contact}'/>"));
    presence(&mut peer, Some("subscribed"), &contact, ALICE);
    let p = presence(&mut peer, None, &contact, ALICE);
    assert_eq!(caps_ver(&p), CONTACT_VER);
    // The gateway itself, as XEP-0100 registration would add it to the roster.
    peer.send(&format!("<presence type='subscribe' from='{BOB}' to='{DOMAIN}'/>"));
    presence(&mut peer, Some("subscribed"), DOMAIN, BOB);
    // A second available presence to bob: the first came at connect.
    peer.expect_presence("the domain's presence after bob's subscribe", |e| {
        e.get_attr("type").is_none() && e.get_attr("to") == Some(BOB) && e.get_child("c", ns::CAPS).is_some()
    });
    // A probe (the user's server at login) gets the available presence.
    peer.send(&format!("<presence type='probe' from='{ALICE}' to='{contact}'/>"));
    let p = presence(&mut peer, None, &contact, ALICE);
    assert_eq!(caps_ver(&p), CONTACT_VER);
    peer.send(&format!("<presence type='unsubscribe' from='{ALICE}' to='{contact}'/>"));
    presence(&mut peer, Some("unsubscribed"), &contact, ALICE);
    presence(&mut peer, Some("unavailable"), &contact, ALICE);
}

#[test]
fn strangers_are_never_subscribed() {
    let mut env = TestEnv::new("presence-stranger");
    let (_gw, mut peer) = env.start_online();
    for user in [ALICE, BOB] {
        presence(&mut peer, None, DOMAIN, user);
    }
    let contact = format!("+1{FRIEND}@{DOMAIN}");
    peer.send(&format!("<presence type='subscribe' from='eve@example.org/x' to='{contact}'/>"));
    presence(&mut peer, Some("unsubscribed"), &contact, "eve@example.org");
    peer.send(&format!("<presence type='probe' from='eve@example.org' to='{contact}'/>"));
    peer.send(&format!("<presence from='eve@example.org/x' to='{DOMAIN}'/>"));
    peer.expect_no_presence_for(Duration::from_millis(500));
}
