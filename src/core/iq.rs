//! Answers to iq requests (RFC 6120 §8.2.3: every get/set gets a result or an error).
//!
//! Implemented: XEP-0199 ping, XEP-0030 service discovery (`gateway/sms` on the domain,
//! `client/sms` on contacts), XEP-0092 software version. Anything else is
//! `service-unavailable`. Only what is implemented is advertised. The reply comes from the
//! request's `to`, so the gateway hands over only requests addressed to its own domain.

use crate::core::xmpp::element::Element;
use crate::core::xmpp::ns;
use crate::core::xmpp::stanza::{ErrorSpec, Iq, IqType, build};

/// The software version we report.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The reply to `iq`, or `None` for results and errors (never answered).
pub fn answer(iq: &Iq) -> Option<String> {
    if matches!(iq.kind, IqType::Result | IqType::Error) {
        return None;
    }
    let (from, to, id) = (iq.to.to_string(), iq.from.to_string(), iq.id.as_str());
    let Some(payload) = &iq.payload else {
        return Some(build::iq_error(&from, &to, id, None, &ErrorSpec::new("bad-request", "modify", "")));
    };
    let on_domain = iq.to.local().is_none();
    let get = iq.kind == IqType::Get;
    let reply = match (payload.ns(), payload.name(), get) {
        (ns::PING, "ping", true) => build::iq_result(&from, &to, id, None),
        (ns::DISCO_INFO, "query", true) if payload.get_attr("node").is_some() => {
            build::iq_error(&from, &to, id, Some(payload), &ErrorSpec::new("item-not-found", "cancel", ""))
        }
        (ns::DISCO_INFO, "query", true) => build::iq_result(&from, &to, id, Some(disco_info(on_domain))),
        (ns::DISCO_ITEMS, "query", true) => {
            build::iq_result(&from, &to, id, Some(Element::new("query", ns::DISCO_ITEMS)))
        }
        (ns::VERSION, "query", true) if on_domain => {
            let q = Element::new("query", ns::VERSION)
                .child(Element::new("name", ns::VERSION).text("voipms-xmpp"))
                .child(Element::new("version", ns::VERSION).text(VERSION));
            build::iq_result(&from, &to, id, Some(q))
        }
        (ns::VERSION, "query", true) => {
            build::iq_error(&from, &to, id, Some(payload), &ErrorSpec::new("service-unavailable", "cancel", ""))
        }
        (ns::PING | ns::DISCO_INFO | ns::DISCO_ITEMS | ns::VERSION, _, _) => {
            build::iq_error(&from, &to, id, Some(payload), &ErrorSpec::new("bad-request", "modify", ""))
        }
        _ => build::iq_error(&from, &to, id, Some(payload), &ErrorSpec::new("service-unavailable", "cancel", "")),
    };
    Some(reply)
}

fn disco_info(on_domain: bool) -> Element {
    let mut q = Element::new("query", ns::DISCO_INFO);
    let features: &[&str] = if on_domain {
        q.push_child(
            Element::new("identity", ns::DISCO_INFO)
                .attr("category", "gateway")
                .attr("type", "sms")
                .attr("name", "SMS (VoIP.ms)"),
        );
        &[ns::DISCO_INFO, ns::DISCO_ITEMS, ns::PING, ns::VERSION]
    } else {
        q.push_child(Element::new("identity", ns::DISCO_INFO).attr("category", "client").attr("type", "sms"));
        &[ns::DISCO_INFO, ns::OOB, ns::PING]
    };
    for f in features {
        q.push_child(Element::new("feature", ns::DISCO_INFO).attr("var", f));
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::xmpp::element::NsContext;
    use crate::core::xmpp::stanza::Stanza;

    fn ask(xml: &str) -> Option<Element> {
        let e = Element::parse(xml.as_bytes(), &NsContext::component()).unwrap();
        let Ok(Stanza::Iq(iq)) = Stanza::from_element(&e) else { panic!("{xml}") };
        answer(&iq).map(|r| Element::parse(r.as_bytes(), &NsContext::component()).unwrap())
    }

    #[test]
    fn answers_ping_with_swapped_addresses() {
        let r = ask("<iq type='get' id='p1' from='alice@example.com/phone' to='+15551234567@sms.example.com'><ping xmlns='urn:xmpp:ping'/></iq>").unwrap();
        assert_eq!(r.get_attr("type"), Some("result"));
        assert_eq!(r.get_attr("id"), Some("p1"));
        assert_eq!(r.get_attr("from"), Some("+15551234567@sms.example.com"));
        assert_eq!(r.get_attr("to"), Some("alice@example.com/phone"));
    }

    #[test]
    fn disco_on_domain_and_contact() {
        let r = ask("<iq type='get' id='d1' from='a@b/c' to='sms.b'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").unwrap();
        let q = r.get_child("query", ns::DISCO_INFO).unwrap();
        let id = q.get_child("identity", ns::DISCO_INFO).unwrap();
        assert_eq!((id.get_attr("category"), id.get_attr("type")), (Some("gateway"), Some("sms")));
        let vars: Vec<&str> = q.children().filter_map(|c| c.get_attr("var")).collect();
        assert!(vars.contains(&ns::PING) && !vars.contains(&"jabber:iq:register"));
        let r = ask("<iq type='get' id='d2' from='a@b/c' to='+15551234567@sms.b'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").unwrap();
        let id = r.get_child("query", ns::DISCO_INFO).unwrap().get_child("identity", ns::DISCO_INFO).unwrap();
        assert_eq!(id.get_attr("category"), Some("client"));
        let r = ask("<iq type='get' id='d4' from='a@b/c' to='sms.b'><query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>").unwrap();
        assert!(r.get_child("error", ns::COMPONENT).unwrap().get_child("item-not-found", ns::STANZA_ERRORS).is_some());
    }

    #[test]
    fn unknown_namespaces_and_sets() {
        let r = ask("<iq type='get' id='x' from='a@b/c' to='sms.b'><query xmlns='jabber:iq:register'/></iq>").unwrap();
        assert_eq!(r.get_attr("type"), Some("error"));
        assert!(
            r.get_child("error", ns::COMPONENT).unwrap().get_child("service-unavailable", ns::STANZA_ERRORS).is_some()
        );
        let r = ask(
            "<iq type='set' id='y' from='a@b/c' to='sms.b'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        )
        .unwrap();
        assert!(r.get_child("error", ns::COMPONENT).unwrap().get_child("bad-request", ns::STANZA_ERRORS).is_some());
        assert!(ask("<iq type='result' id='z' from='a@b/c' to='sms.b'/>").is_none());
    }

    #[test]
    fn version() {
        let r = ask("<iq type='get' id='v1' from='a@b/c' to='sms.b'><query xmlns='jabber:iq:version'/></iq>").unwrap();
        let q = r.get_child("query", ns::VERSION).unwrap();
        assert_eq!(q.get_child("name", ns::VERSION).unwrap().text_content(), "voipms-xmpp");
    }
}
