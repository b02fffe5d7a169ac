//! Answers to iq requests (RFC 6120 §8.2.3: every get/set gets a result or an error; results
//! and errors are never answered).
//!
//! A dispatcher: XEP-0030/XEP-0115 discovery is `core::disco`'s, XEP-0100's `jabber:iq:gateway`
//! is `core::gateway_prompt`'s; XEP-0199 ping (domain and contacts) and XEP-0092 software version
//! (domain) are answered here. Anything else is `service-unavailable` (RFC 6120 §8.4), a known
//! namespace with the wrong type or element `bad-request`; every error keeps the request's id
//! and has a text saying what to do. The reply comes from the request's `to`, so the gateway
//! hands over only requests addressed to its own domain.

use crate::core::disco;
use crate::core::gateway_prompt;
use crate::core::xmpp::element::Element;
use crate::core::xmpp::ns;
use crate::core::xmpp::stanza::{ErrorSpec, Iq, IqType, build};

/// The software version we report.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The software name we report (XEP-0092).
pub const NAME: &str = "voipms-xmpp";

/// The reply to `iq`, or `None` for results and errors (never answered).
pub fn answer(iq: &Iq) -> Option<String> {
    if matches!(iq.kind, IqType::Result | IqType::Error) {
        return None;
    }
    let (from, to, id) = (iq.to.to_string(), iq.from.to_string(), iq.id.as_str());
    let Some(payload) = &iq.payload else {
        let error =
            ErrorSpec::new("bad-request", "modify", "an iq get or set needs a child element saying what it asks");
        return Some(build::iq_error(&from, &to, id, None, &error));
    };
    let reply = match handle(iq, payload) {
        Ok(result) => build::iq_result(&from, &to, id, result),
        Err(error) => build::iq_error(&from, &to, id, Some(payload), &error),
    };
    Some(reply)
}

/// The result's payload (if any), or the error.
fn handle(iq: &Iq, payload: &Element) -> Result<Option<Element>, ErrorSpec> {
    let on_domain = iq.to.local().is_none();
    let domain = iq.to.domain();
    let get = iq.kind == IqType::Get;
    match (payload.ns(), payload.name(), get) {
        (ns::PING, "ping", true) => Ok(None),
        (ns::DISCO_INFO, "query", true) => disco::info_answer(on_domain, payload).map(Some),
        (ns::DISCO_ITEMS, "query", true) => disco::items_answer(payload).map(Some),
        (ns::VERSION, "query", true) if on_domain => Ok(Some(version())),
        (ns::GATEWAY, "query", true) if on_domain => Ok(Some(gateway_prompt::prompt())),
        (ns::GATEWAY, "query", false) if on_domain => gateway_prompt::translate(payload, domain).map(Some),
        (ns::VERSION | ns::GATEWAY, "query", _) => Err(ErrorSpec::new(
            "service-unavailable",
            "cancel",
            format!("a contact JID does not answer {}; ask the gateway's domain {domain}", payload.ns()),
        )),
        (ns::PING | ns::DISCO_INFO | ns::DISCO_ITEMS | ns::VERSION, _, _) => Err(ErrorSpec::new(
            "bad-request",
            "modify",
            format!(
                "{} is answered to a get with <{}/>",
                payload.ns(),
                if payload.ns() == ns::PING { "ping" } else { "query" }
            ),
        )),
        (other, _, _) => Err(ErrorSpec::new(
            "service-unavailable",
            "cancel",
            format!("this SMS gateway does not implement {}", printable(other)),
        )),
    }
}

fn version() -> Element {
    Element::new("query", ns::VERSION)
        .child(Element::new("name", ns::VERSION).text(NAME))
        .child(Element::new("version", ns::VERSION).text(VERSION))
}

/// A peer's namespace fit to quote in an error text: at most 100 printable characters.
fn printable(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).take(100).collect();
    if s.is_empty() { "requests without a namespace".to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::xmpp::element::NsContext;
    use crate::core::xmpp::stanza::Stanza;

    fn ask(xml: &str) -> Option<String> {
        let e = Element::parse(xml.as_bytes(), &NsContext::component()).unwrap();
        let Ok(Stanza::Iq(iq)) = Stanza::from_element(&e) else { panic!("{xml}") };
        answer(&iq)
    }

    /// (condition, type, text) of an error answer.
    fn error(xml: &str) -> (String, String, String) {
        let r = ask(xml).unwrap();
        let e = Element::parse(r.as_bytes(), &NsContext::component()).unwrap();
        assert_eq!(e.get_attr("type"), Some("error"), "{r}");
        assert!(e.get_attr("id").is_some(), "{r}");
        let err = e.get_child("error", ns::COMPONENT).unwrap();
        let condition = err.children().find(|c| c.ns() == ns::STANZA_ERRORS && c.name() != "text").unwrap();
        let text = err.get_child("text", ns::STANZA_ERRORS).map(Element::text_content).unwrap_or_default();
        assert!(!text.is_empty(), "every error says what to do: {r}");
        (condition.name().to_string(), err.get_attr("type").unwrap().to_string(), text)
    }

    #[test]
    fn ping_on_the_domain_and_on_contacts() {
        assert_eq!(
            ask("<iq type='get' id='p1' from='alice@example.com/phone' to='sms.example.com'><ping xmlns='urn:xmpp:ping'/></iq>").unwrap(),
            "<iq type='result' id='p1' from='sms.example.com' to='alice@example.com/phone'/>"
        );
        assert_eq!(
            ask("<iq type='get' id='p2' from='alice@example.com/phone' to='+15551234567@sms.example.com'><ping xmlns='urn:xmpp:ping'/></iq>").unwrap(),
            "<iq type='result' id='p2' from='+15551234567@sms.example.com' to='alice@example.com/phone'/>"
        );
    }

    #[test]
    fn disco_goes_to_the_disco_module() {
        let r = ask("<iq type='get' id='d1' from='a@b/c' to='sms.b'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").unwrap();
        assert!(r.starts_with("<iq type='result' id='d1' from='sms.b' to='a@b/c'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='gateway' type='sms'"), "{r}");
        let r = ask("<iq type='get' id='d2' from='a@b/c' to='+15551234567@sms.b'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").unwrap();
        assert!(r.contains("<identity category='client' type='sms'/>"), "{r}");
        let r = ask("<iq type='get' id='d3' from='a@b/c' to='sms.b'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>").unwrap();
        assert_eq!(
            r,
            "<iq type='result' id='d3' from='sms.b' to='a@b/c'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"
        );
        let (c, t, _) = error(
            "<iq type='get' id='d4' from='a@b/c' to='sms.b'><query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>",
        );
        assert_eq!((c.as_str(), t.as_str()), ("item-not-found", "cancel"));
        assert!(ask("<iq type='get' id='d4' from='a@b/c' to='sms.b'><query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>").unwrap()
            .contains("<query xmlns='http://jabber.org/protocol/disco#info'/><error type='cancel'>"), "the query is echoed");
    }

    #[test]
    fn the_gateway_prompt_on_the_domain_only() {
        let r = ask("<iq type='get' id='g1' from='a@b/c' to='sms.b'><query xmlns='jabber:iq:gateway'/></iq>").unwrap();
        assert!(r.contains("<prompt>Phone Number</prompt>"), "{r}");
        let r = ask("<iq type='set' id='g2' from='a@b/c' to='sms.b'><query xmlns='jabber:iq:gateway'><prompt>(555) 765-4321</prompt></query></iq>").unwrap();
        assert_eq!(
            r,
            "<iq type='result' id='g2' from='sms.b' to='a@b/c'><query xmlns='jabber:iq:gateway'><jid>+15557654321@sms.b</jid></query></iq>"
        );
        let (c, t, _) = error(
            "<iq type='set' id='g3' from='a@b/c' to='sms.b'><query xmlns='jabber:iq:gateway'><prompt>pizza</prompt></query></iq>",
        );
        assert_eq!((c.as_str(), t.as_str()), ("not-acceptable", "modify"));
        let (c, _, text) = error(
            "<iq type='get' id='g4' from='a@b/c' to='+15551234567@sms.b'><query xmlns='jabber:iq:gateway'/></iq>",
        );
        assert_eq!(c, "service-unavailable");
        assert!(text.contains("sms.b"), "{text}");
    }

    #[test]
    fn version_on_the_domain() {
        let r = ask("<iq type='get' id='v1' from='a@b/c' to='sms.b'><query xmlns='jabber:iq:version'/></iq>").unwrap();
        assert_eq!(
            r,
            format!(
                "<iq type='result' id='v1' from='sms.b' to='a@b/c'><query xmlns='jabber:iq:version'><name>voipms-xmpp</name><version>{VERSION}</version></query></iq>"
            )
        );
        assert_eq!(
            error(
                "<iq type='get' id='v2' from='a@b/c' to='+15551234567@sms.b'><query xmlns='jabber:iq:version'/></iq>"
            )
            .0,
            "service-unavailable"
        );
    }

    #[test]
    fn unknown_namespaces_wrong_types_and_answers() {
        let (c, t, text) =
            error("<iq type='get' id='x' from='a@b/c' to='sms.b'><query xmlns='jabber:iq:register'/></iq>");
        assert_eq!((c.as_str(), t.as_str()), ("service-unavailable", "cancel"));
        assert!(text.contains("jabber:iq:register"), "{text}");
        assert_eq!(
            error("<iq type='set' id='x2' from='a@b/c' to='+15551234567@sms.b'><vCard xmlns='vcard-temp'/></iq>").0,
            "service-unavailable"
        );
        let (c, t, _) = error(
            "<iq type='set' id='y' from='a@b/c' to='sms.b'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        );
        assert_eq!((c.as_str(), t.as_str()), ("bad-request", "modify"));
        assert_eq!(
            error("<iq type='set' id='y2' from='a@b/c' to='sms.b'><ping xmlns='urn:xmpp:ping'/></iq>").0,
            "bad-request"
        );
        assert_eq!(error("<iq type='get' id='y3' from='a@b/c' to='sms.b'/>").0, "bad-request");
        assert!(ask("<iq type='result' id='z' from='a@b/c' to='sms.b'/>").is_none());
        assert!(
            ask("<iq type='error' id='z' from='a@b/c' to='sms.b'><query xmlns='jabber:iq:register'/></iq>").is_none()
        );
    }
}
