//! XEP-0033 Extended Stanza Addressing, inbound only, as JMP's SGX group-text convention uses it
//! (https://wiki.soprani.ca/SGX/GroupMMS, xmpp.md §6.6).
//!
//! A group MMS received by a user's DID is delivered to that user with an `<addresses/>` element
//! naming every recipient: the user itself as `<address type='to' jid='USER'/>`, every other
//! recipient number as `<address type='to' uri='sms:+1…' delivered='true'/>` (it got its own
//! copy from the carrier); the sender is the stanza's `from`. Clients that know the convention
//! (Cheogram) show a group conversation; others show a one-to-one chat with the sender.
//!
//! The other direction is not implemented: VoIP.ms cannot send to several numbers (voipms.md
//! §5.2), so the gateway does not advertise `http://jabber.org/protocol/address`, and a message
//! naming more than one recipient is refused by `core::router` (never fanned out as separate
//! texts, which would break the group for everyone). [`recipients`] counts them.

use crate::core::xmpp::element::Element;
use crate::core::xmpp::ns;

/// Address types that name a recipient (XEP-0033 §4.6: `to`, `cc`, `bcc`); `replyto`,
/// `replyroom`, `noreply` and `ofrom` do not.
const RECIPIENT_TYPES: [&str; 3] = ["to", "cc", "bcc"];

/// How many recipients a message's `<addresses/>` names (0 without one).
pub fn recipients(message: &Element) -> usize {
    message.get_child("addresses", ns::ADDRESS).map_or(0, |a| {
        a.children()
            .filter(|c| c.is("address", ns::ADDRESS))
            .filter(|c| c.get_attr("type").is_some_and(|t| RECIPIENT_TYPES.contains(&t)))
            .count()
    })
}

/// The `<addresses/>` of a group message delivered to `user` (a bare JID) whose other
/// recipients are `others` (`+1…` numbers).
pub fn group(user: &str, others: &[String]) -> Element {
    let mut a = Element::new("addresses", ns::ADDRESS)
        .child(Element::new("address", ns::ADDRESS).attr("type", "to").attr("jid", user));
    for number in others {
        a.push_child(
            Element::new("address", ns::ADDRESS)
                .attr("type", "to")
                .attr("uri", &format!("sms:{number}"))
                .attr("delivered", "true"),
        );
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::xmpp::element::NsContext;

    fn parse(xml: &str) -> Element {
        Element::parse(xml.as_bytes(), &NsContext::component()).unwrap()
    }

    #[test]
    fn the_sgx_inbound_form() {
        assert_eq!(
            group("alice@example.com", &["+12261234578".into(), "+15557654321".into()]).to_xml(ns::COMPONENT),
            "<addresses xmlns='http://jabber.org/protocol/address'>\
             <address type='to' jid='alice@example.com'/>\
             <address type='to' uri='sms:+12261234578' delivered='true'/>\
             <address type='to' uri='sms:+15557654321' delivered='true'/></addresses>"
        );
    }

    #[test]
    fn counts_recipients_only() {
        let m = parse(
            "<message to='sms.b' from='a@b/c'><addresses xmlns='http://jabber.org/protocol/address'>\
             <address type='to' uri='sms:+12261234567'/><address type='cc' uri='sms:+12261234578'/>\
             <address type='bcc' jid='x@y'/><address type='replyto' jid='a@b'/><address type='ofrom' jid='a@b'/>\
             <other xmlns='urn:example'/></addresses><body>hi</body></message>",
        );
        assert_eq!(recipients(&m), 3);
        assert_eq!(recipients(&parse("<message to='sms.b' from='a@b/c'><body>hi</body></message>")), 0);
        let one = parse(
            "<message to='sms.b' from='a@b/c'><addresses xmlns='http://jabber.org/protocol/address'><address type='to' uri='sms:+12261234567'/></addresses></message>",
        );
        assert_eq!(recipients(&one), 1);
        // An addresses element in another namespace is not XEP-0033.
        let other = parse(
            "<message to='sms.b' from='a@b/c'><addresses xmlns='urn:example'><address type='to'/></addresses></message>",
        );
        assert_eq!(recipients(&other), 0);
    }
}
