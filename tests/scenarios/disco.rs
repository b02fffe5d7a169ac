//! XEP-0030 discovery on the domain and on a contact JID, XEP-0115 caps nodes, XEP-0092
//! version and XEP-0199 ping, and `service-unavailable` for what the gateway does not speak.

use crate::support::harness::*;
use crate::support::xmpp_peer::Peer;
use std::time::Duration;
use voipms_xmpp::core::xmpp::element::Element;
use voipms_xmpp::core::xmpp::ns;

/// The XEP-0115 `ver` of the domain's and a contact's disco#info (computed outside the
/// gateway with Python's hashlib over the §5.1 strings).
pub const DOMAIN_VER: &str = "pQr8xHmIkmHt3yiFjGH4MJU7a1o=";
pub const CONTACT_VER: &str = "kx2qcW8YQ4PEIOYh0Vm+qZtKqjI=";
pub const CAPS_NODE: &str = "https://github.com/voipms-xmpp/voipms-xmpp";

/// Send an iq get/set and wait for its answer.
pub fn iq(peer: &mut Peer, kind: &str, id: &str, to: &str, payload: &str) -> Element {
    peer.send(&format!("<iq type='{kind}' id='{id}' from='alice@example.com/phone' to='{to}'>{payload}</iq>"));
    let answer =
        peer.expect(&format!("the answer to iq {id}"), |e| e.is("iq", ns::COMPONENT) && e.get_attr("id") == Some(id));
    assert_eq!(answer.get_attr("from"), Some(to), "answered from the JID asked");
    assert_eq!(answer.get_attr("to"), Some("alice@example.com/phone"));
    answer
}

/// The defined condition, type and text of an iq error.
pub fn iq_error(answer: &Element) -> (String, String, String) {
    assert_eq!(answer.get_attr("type"), Some("error"), "{answer:?}");
    let err = answer.get_child("error", ns::COMPONENT).expect("an <error/>");
    let condition = err.children().find(|c| c.ns() == ns::STANZA_ERRORS && c.name() != "text").expect("a condition");
    let text = err.get_child("text", ns::STANZA_ERRORS).map(Element::text_content).unwrap_or_default();
    (condition.name().to_string(), err.get_attr("type").unwrap_or("").to_string(), text)
}

fn features(answer: &Element) -> Vec<String> {
    let q = answer.get_child("query", ns::DISCO_INFO).expect("a disco#info query");
    q.children().filter(|c| c.name() == "feature").filter_map(|c| c.get_attr("var")).map(str::to_string).collect()
}

fn identity(answer: &Element) -> (String, String) {
    let q = answer.get_child("query", ns::DISCO_INFO).expect("a disco#info query");
    let i = q.get_child("identity", ns::DISCO_INFO).expect("an identity");
    (i.get_attr("category").unwrap_or("").into(), i.get_attr("type").unwrap_or("").into())
}

const INFO: &str = "<query xmlns='http://jabber.org/protocol/disco#info'/>";

#[test]
fn the_domain_is_an_sms_gateway_and_says_what_it_speaks() {
    let mut env = TestEnv::new("disco-domain");
    let (_gw, mut peer) = env.start_online();
    let a = iq(&mut peer, "get", "d1", DOMAIN, INFO);
    assert_eq!(a.get_attr("type"), Some("result"));
    assert_eq!(identity(&a), ("gateway".into(), "sms".into()));
    let mut f = features(&a);
    f.sort();
    assert_eq!(
        f,
        vec![
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/disco#items",
            "jabber:iq:gateway",
            "jabber:iq:version",
            "urn:xmpp:ping",
            "urn:xmpp:receipts"
        ]
    );
    // XEP-0115 §6.2: the caps node of our presence gets the same answer, node echoed.
    let node = format!("{CAPS_NODE}#{DOMAIN_VER}");
    let a = iq(&mut peer, "get", "d2", DOMAIN, &format!("<query xmlns='{}' node='{node}'/>", ns::DISCO_INFO));
    assert_eq!(a.get_child("query", ns::DISCO_INFO).and_then(|q| q.get_attr("node")), Some(node.as_str()));
    assert_eq!(features(&a).len(), 6);
    // The contact's node is not the domain's, and nor is anything else.
    for node in [format!("{CAPS_NODE}#{CONTACT_VER}"), "nope".to_string()] {
        let a = iq(&mut peer, "get", "d3", DOMAIN, &format!("<query xmlns='{}' node='{node}'/>", ns::DISCO_INFO));
        let (condition, kind, text) = iq_error(&a);
        assert_eq!((condition.as_str(), kind.as_str()), ("item-not-found", "cancel"), "{node}");
        assert!(text.contains("no such disco node"), "{text}");
    }
    let a = iq(&mut peer, "get", "d4", DOMAIN, "<query xmlns='http://jabber.org/protocol/disco#items'/>");
    assert_eq!(a.get_attr("type"), Some("result"));
    assert_eq!(a.get_child("query", ns::DISCO_ITEMS).map(|q| q.children().count()), Some(0));
    // Version and ping.
    let a = iq(&mut peer, "get", "v1", DOMAIN, "<query xmlns='jabber:iq:version'/>");
    let q = a.get_child("query", ns::VERSION).expect("a version query");
    assert_eq!(q.get_child("name", ns::VERSION).map(Element::text_content).as_deref(), Some("voipms-xmpp"));
    assert_eq!(
        q.get_child("version", ns::VERSION).map(Element::text_content).as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let a = iq(&mut peer, "get", "p1", DOMAIN, "<ping xmlns='urn:xmpp:ping'/>");
    assert_eq!((a.get_attr("type"), a.children().count()), (Some("result"), 0));
}

#[test]
fn a_contact_is_an_sms_client() {
    let mut env = TestEnv::new("disco-contact");
    let (_gw, mut peer) = env.start_online();
    let contact = format!("+1{FRIEND}@{DOMAIN}");
    let a = iq(&mut peer, "get", "c1", &contact, INFO);
    assert_eq!(identity(&a), ("client".into(), "sms".into()));
    let mut f = features(&a);
    f.sort();
    assert_eq!(f, vec!["http://jabber.org/protocol/disco#info", "jabber:x:oob", "urn:xmpp:ping", "urn:xmpp:receipts"]);
    let node = format!("{CAPS_NODE}#{CONTACT_VER}");
    let a = iq(&mut peer, "get", "c2", &contact, &format!("<query xmlns='{}' node='{node}'/>", ns::DISCO_INFO));
    assert_eq!(a.get_attr("type"), Some("result"));
    assert_eq!(features(&a).len(), 4);
    let a = iq(
        &mut peer,
        "get",
        "c3",
        &contact,
        &format!("<query xmlns='{}' node='{CAPS_NODE}#{DOMAIN_VER}'/>", ns::DISCO_INFO),
    );
    assert_eq!(iq_error(&a).0, "item-not-found");
    let a = iq(&mut peer, "get", "c4", &contact, "<ping xmlns='urn:xmpp:ping'/>");
    assert_eq!(a.get_attr("type"), Some("result"));
    // A short code is a contact too.
    let a = iq(&mut peer, "get", "c5", &format!("12345@{DOMAIN}"), INFO);
    assert_eq!(identity(&a), ("client".into(), "sms".into()));
}

#[test]
fn what_the_gateway_does_not_speak_is_service_unavailable_and_answers_are_not_answered() {
    let mut env = TestEnv::new("disco-unknown");
    let (_gw, mut peer) = env.start_online();
    let contact = format!("+1{FRIEND}@{DOMAIN}");
    for (id, to, payload) in [
        ("u1", DOMAIN, "<query xmlns='jabber:iq:register'/>"),
        ("u2", contact.as_str(), "<vCard xmlns='vcard-temp'/>"),
        ("u3", contact.as_str(), "<query xmlns='jabber:iq:version'/>"),
        ("u4", contact.as_str(), "<query xmlns='jabber:iq:gateway'/>"),
    ] {
        let a = iq(&mut peer, "get", id, to, payload);
        let (condition, kind, text) = iq_error(&a);
        assert_eq!((condition.as_str(), kind.as_str()), ("service-unavailable", "cancel"), "{payload}");
        assert!(!text.is_empty(), "{payload}: a text says why");
    }
    let a = iq(&mut peer, "set", "b1", DOMAIN, INFO);
    assert_eq!(iq_error(&a).0, "bad-request");
    // Results and errors are never answered.
    peer.send(&format!("<iq type='result' id='r1' from='alice@example.com/phone' to='{DOMAIN}'/>"));
    peer.send(&format!("<iq type='error' id='r2' from='alice@example.com/phone' to='{DOMAIN}'><error type='cancel'><service-unavailable xmlns='{}'/></error></iq>", ns::STANZA_ERRORS));
    // The ping proves the gateway read them; nothing came back for either.
    let a = iq(&mut peer, "get", "after", DOMAIN, "<ping xmlns='urn:xmpp:ping'/>");
    assert_eq!(a.get_attr("type"), Some("result"));
    peer.expect_nothing_for(Duration::from_millis(200));
}
