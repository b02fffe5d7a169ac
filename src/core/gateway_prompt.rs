//! XEP-0100 §6.3 Gateway Interaction, `jabber:iq:gateway`: turning the phone number a person
//! types into the contact JID to write to.
//!
//! A `get` returns the `<desc/>` and `<prompt/>` a client shows (Cheogram's "Start
//! conversation" asks every gateway in the roster); a `set` carries what the person typed and
//! gets the `<jid/>` back: a US/Canadian number in any usual punctuation (`(555) 765-4321`,
//! `555.765.4321`, `+1 555 765 4321`, `1-555-765-4321`) becomes `+1NXXNXXXXXX@domain`, a 5–6
//! digit short code `12345@domain`; anything else is `not-acceptable` (modify) with a text
//! saying what is accepted (xmpp.md §6.2).
//!
//! Anyone may ask, as XEP-0100 lets them: the answer is a pure function of the input, reveals
//! nothing about users or DIDs, and sending is still refused to JIDs outside `jid_map`
//! (`core::router`). The JID is always the default-DID form; a user with several DIDs picks
//! another by writing to `+1N%+1D@domain`. Only the domain answers; `core::iq` sends requests
//! to contacts `service-unavailable`.

use crate::core::phone::{Nanp, ShortCode};
use crate::core::xmpp::element::Element;
use crate::core::xmpp::ns;
use crate::core::xmpp::stanza::ErrorSpec;

/// What the `get` answer tells a person (shown above the input box).
pub const DESC: &str =
    "Enter the phone number to text: a US/Canada number (e.g. +1 555 123 4567) or a 5–6 digit short code.";
/// The input box's label.
pub const PROMPT: &str = "Phone Number";
/// The refusal's text: what is accepted.
const ACCEPTED: &str = "not a phone number this gateway can text: enter a US/Canada number such as \
+1 555 123 4567, (555) 123-4567 or 555.123.4567, or a 5–6 digit short code such as 12345";
/// Longer input is not a phone number (and is not worth reading).
const MAX_INPUT_CHARS: usize = 64;

/// The `<query/>` answering a `get`.
pub fn prompt() -> Element {
    Element::new("query", ns::GATEWAY)
        .child(Element::new("desc", ns::GATEWAY).text(DESC))
        .child(Element::new("prompt", ns::GATEWAY).text(PROMPT))
}

/// The contact localpart for what a person typed, if it is a number we can text.
pub fn localpart(input: &str) -> Option<String> {
    let input = input.trim();
    if input.chars().count() > MAX_INPUT_CHARS {
        return None;
    }
    if let Some(n) = Nanp::parse_human(input) {
        return Some(n.e164());
    }
    ShortCode::parse_human(input).map(|c| c.digits().to_string())
}

/// The `<query/>` answering a `set` whose query is `payload`, for component `domain`.
pub fn translate(payload: &Element, domain: &str) -> Result<Element, ErrorSpec> {
    let Some(input) = payload.get_child("prompt", ns::GATEWAY) else {
        return Err(ErrorSpec::new(
            "bad-request",
            "modify",
            "a jabber:iq:gateway set needs a <prompt/> holding the phone number",
        ));
    };
    match localpart(&input.text_content()) {
        Some(local) => Ok(Element::new("query", ns::GATEWAY)
            .child(Element::new("jid", ns::GATEWAY).text(&format!("{local}@{domain}")))),
        None => Err(ErrorSpec::new("not-acceptable", "modify", ACCEPTED)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::xmpp::element::NsContext;

    fn parse(xml: &str) -> Element {
        Element::parse(xml.as_bytes(), &NsContext::component()).unwrap()
    }

    fn set(input: &str) -> Result<String, ErrorSpec> {
        let q = parse(&format!("<query xmlns='jabber:iq:gateway'><prompt>{input}</prompt></query>"));
        translate(&q, "sms.example.com").map(|e| e.to_xml(ns::COMPONENT))
    }

    #[test]
    fn the_prompt() {
        assert_eq!(
            prompt().to_xml(ns::COMPONENT),
            format!("<query xmlns='jabber:iq:gateway'><desc>{DESC}</desc><prompt>Phone Number</prompt></query>")
        );
    }

    #[test]
    fn what_people_type_becomes_a_jid() {
        for input in [
            "(555) 765-4321",
            "555.765.4321",
            "+1 555 765 4321",
            "1-555-765-4321",
            "5557654321",
            "+15557654321",
            " 555 765 4321 ",
        ] {
            assert_eq!(
                set(input).unwrap(),
                "<query xmlns='jabber:iq:gateway'><jid>+15557654321@sms.example.com</jid></query>",
                "{input:?}"
            );
        }
        assert_eq!(set("12345").unwrap(), "<query xmlns='jabber:iq:gateway'><jid>12345@sms.example.com</jid></query>");
        assert!(set("123456").unwrap().contains("<jid>123456@sms.example.com</jid>"));
    }

    #[test]
    fn anything_else_is_refused_saying_what_is_accepted() {
        for input in [
            "pizza",
            "",
            "1234",
            "1234567",
            "+44 20 7946 0958",
            "055 765 4321",
            "555 765 4321 ext 2",
            "+1 555 065 4321",
        ] {
            let e = set(input).unwrap_err();
            assert_eq!((e.condition.as_str(), e.error_type.as_str()), ("not-acceptable", "modify"), "{input:?}");
            assert!(e.text.contains("US/Canada number") && e.text.contains("short code"), "{}", e.text);
        }
        let e = translate(&parse("<query xmlns='jabber:iq:gateway'/>"), "sms.example.com").unwrap_err();
        assert_eq!(e.condition, "bad-request");
        assert!(!e.text.is_empty());
        assert!(localpart(&"5".repeat(200)).is_none());
    }
}
