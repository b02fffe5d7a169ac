//! XEP-0100 `jabber:iq:gateway`: the prompt, and what a person types turned into a contact JID.

use super::disco::{iq, iq_error};
use crate::support::harness::*;
use voipms_xmpp::core::xmpp::ns;

#[test]
fn the_prompt_turns_typed_numbers_into_contact_jids() {
    let mut env = TestEnv::new("gateway-prompt");
    let (_gw, mut peer) = env.start_online();
    let a = iq(&mut peer, "get", "g0", DOMAIN, "<query xmlns='jabber:iq:gateway'/>");
    let q = a.get_child("query", ns::GATEWAY).expect("a jabber:iq:gateway query");
    assert!(q.get_child("desc", ns::GATEWAY).is_some_and(|d| d.text_content().contains("phone number")));
    assert_eq!(q.get_child("prompt", ns::GATEWAY).map(|p| p.text_content()).as_deref(), Some("Phone Number"));
    for (n, (typed, jid)) in [
        ("(555) 765-4321", format!("+15557654321@{DOMAIN}")),
        ("555.765.4321", format!("+15557654321@{DOMAIN}")),
        ("+1 555 765 4321", format!("+15557654321@{DOMAIN}")),
        ("1-555-765-4321", format!("+15557654321@{DOMAIN}")),
        ("12345", format!("12345@{DOMAIN}")),
        ("654321", format!("654321@{DOMAIN}")),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("g{}", n + 1);
        let a = iq(
            &mut peer,
            "set",
            &id,
            DOMAIN,
            &format!("<query xmlns='jabber:iq:gateway'><prompt>{typed}</prompt></query>"),
        );
        assert_eq!(a.get_attr("type"), Some("result"), "{typed}");
        let got =
            a.get_child("query", ns::GATEWAY).and_then(|q| q.get_child("jid", ns::GATEWAY)).map(|j| j.text_content());
        assert_eq!(got.as_deref(), Some(jid.as_str()), "{typed}");
    }
    // Anything else is refused with what is accepted; a stranger gets the same answers.
    let a = iq(&mut peer, "set", "bad", DOMAIN, "<query xmlns='jabber:iq:gateway'><prompt>call mom</prompt></query>");
    let (condition, kind, text) = iq_error(&a);
    assert_eq!((condition.as_str(), kind.as_str()), ("not-acceptable", "modify"));
    assert!(text.contains("US/Canada") && text.contains("short code"), "{text}");
    peer.send(&format!("<iq type='set' id='eve' from='eve@example.org/x' to='{DOMAIN}'><query xmlns='jabber:iq:gateway'><prompt>555 765 4321</prompt></query></iq>"));
    let a = peer.expect("the answer to eve", |e| e.get_attr("id") == Some("eve"));
    assert_eq!(a.get_attr("to"), Some("eve@example.org/x"));
    assert!(a.get_child("query", ns::GATEWAY).and_then(|q| q.get_child("jid", ns::GATEWAY)).is_some());
}
