//! XEP-0030 Service Discovery and XEP-0115 Entity Capabilities: what the gateway says it is and
//! can do, on its domain and on each contact JID, and the `ver` string that names each answer.
//!
//! Two fixed answers (xmpp.md §6.1): the domain is a `gateway`/`sms` with the features the
//! gateway really implements; a contact JID is a `client`/`sms` (the registrar's "messages sent
//! to this contact will be delivered as SMS"). Only what is implemented is advertised: no
//! `jabber:iq:register` (the user map is static config), no `http://jabber.org/protocol/address`
//! (VoIP.ms cannot send to several numbers), no chat states. Each answer's XEP-0115 verification
//! string (§5.1, SHA-1, base64) goes into our presence's `<c/>`, and a disco#info request for
//! `NODE#VER` is answered with the matching info (§6.2); any other node is `item-not-found`.
//! Nothing here knows users or stanza routing: `core::iq` hands over the requests.

use crate::core::xmpp::base64;
use crate::core::xmpp::element::Element;
use crate::core::xmpp::ns;
use crate::core::xmpp::sha1::sha1;
use crate::core::xmpp::stanza::ErrorSpec;

/// The XEP-0115 `node`: "a URI that uniquely identifies a software application" (§4), the
/// project's home.
pub const CAPS_NODE: &str = "https://github.com/voipms-xmpp/voipms-xmpp";

/// A disco#info identity (XEP-0030 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The registrar's category (`gateway`, `client`).
    pub category: &'static str,
    /// The registrar's type (`sms`).
    pub kind: &'static str,
    /// A human-readable name, when there is one.
    pub name: Option<&'static str>,
}

/// One entity's disco#info answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// Its identities.
    pub identities: &'static [Identity],
    /// Its features (namespaces it implements).
    pub features: &'static [&'static str],
}

/// The component domain (XEP-0100's gateway): discovery, the XEP-0100 prompt, ping, version,
/// and receipts for what users send through it.
pub const DOMAIN: Info = Info {
    identities: &[Identity { category: "gateway", kind: "sms", name: Some("SMS (VoIP.ms)") }],
    features: &[ns::DISCO_INFO, ns::DISCO_ITEMS, ns::GATEWAY, ns::PING, ns::VERSION, ns::RECEIPTS],
};

/// A contact JID (a phone number): receipts, OOB media, ping.
pub const CONTACT: Info = Info {
    identities: &[Identity { category: "client", kind: "sms", name: None }],
    features: &[ns::DISCO_INFO, ns::RECEIPTS, ns::OOB, ns::PING],
};

/// The answer for the domain (`true`) or a contact JID.
pub fn info(on_domain: bool) -> &'static Info {
    if on_domain { &DOMAIN } else { &CONTACT }
}

/// The XEP-0115 §5.1 verification string: identities sorted by category, type and xml:lang,
/// each `category/type/lang/name<`, then features sorted, each `feature<` (no forms), hashed
/// with SHA-1 and base64-encoded. Sorting is by octets (§5.1 "i;octet" collation).
pub fn verification_string(identities: &[(&str, &str, &str, &str)], features: &[&str]) -> String {
    let mut ids = identities.to_vec();
    ids.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    let mut features = features.to_vec();
    features.sort_unstable();
    features.dedup();
    let mut s = String::new();
    for (category, kind, lang, name) in ids {
        s.push_str(&format!("{category}/{kind}/{lang}/{name}<"));
    }
    for f in features {
        s.push_str(f);
        s.push('<');
    }
    base64::encode(&sha1(s.as_bytes()))
}

impl Info {
    /// This answer's XEP-0115 `ver`.
    pub fn ver(&self) -> String {
        let ids: Vec<(&str, &str, &str, &str)> =
            self.identities.iter().map(|i| (i.category, i.kind, "", i.name.unwrap_or(""))).collect();
        verification_string(&ids, self.features)
    }

    /// The `node` attribute a caps-aware client asks about (`NODE#VER`, XEP-0115 §6.2).
    pub fn caps_node(&self) -> String {
        format!("{CAPS_NODE}#{}", self.ver())
    }

    /// The `<query xmlns='…disco#info'/>` of a result, with `node` echoed when one was asked.
    pub fn query(&self, node: Option<&str>) -> Element {
        let mut q = Element::new("query", ns::DISCO_INFO);
        if let Some(node) = node {
            q.set_attr("node", node);
        }
        for i in self.identities {
            let mut e = Element::new("identity", ns::DISCO_INFO).attr("category", i.category).attr("type", i.kind);
            if let Some(name) = i.name {
                e.set_attr("name", name);
            }
            q.push_child(e);
        }
        for f in self.features {
            q.push_child(Element::new("feature", ns::DISCO_INFO).attr("var", f));
        }
        q
    }

    /// The XEP-0115 `<c/>` element for our presence.
    pub fn caps(&self) -> Element {
        Element::new("c", ns::CAPS).attr("hash", "sha-1").attr("node", CAPS_NODE).attr("ver", &self.ver())
    }
}

/// The answer to a disco#info `get` (its `<query/>` is `payload`): the info, or an error for a
/// node we do not have.
pub fn info_answer(on_domain: bool, payload: &Element) -> Result<Element, ErrorSpec> {
    let info = info(on_domain);
    match payload.get_attr("node") {
        None => Ok(info.query(None)),
        Some(node) if node == info.caps_node() => Ok(info.query(Some(node))),
        Some(node) => Err(ErrorSpec::new(
            "item-not-found",
            "cancel",
            format!("no such disco node '{}'; this entity has only its caps node", printable(node)),
        )),
    }
}

/// The answer to a disco#items `get`: nothing to list (no ad-hoc commands, no rooms); a node is
/// `item-not-found`.
pub fn items_answer(payload: &Element) -> Result<Element, ErrorSpec> {
    match payload.get_attr("node") {
        None => Ok(Element::new("query", ns::DISCO_ITEMS)),
        Some(node) => Err(ErrorSpec::new(
            "item-not-found",
            "cancel",
            format!("no such disco node '{}'; this entity lists no items", printable(node)),
        )),
    }
}

/// A node name fit to quote back in an error text: at most 80 printable characters.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::xmpp::element::NsContext;

    fn xml(e: &Element) -> String {
        e.to_xml(ns::COMPONENT)
    }

    #[test]
    fn the_xep_0115_section_5_2_example() {
        let ver = verification_string(
            &[("client", "pc", "", "Exodus 0.9.1")],
            &[
                "http://jabber.org/protocol/disco#info",
                "http://jabber.org/protocol/disco#items",
                "http://jabber.org/protocol/muc",
                "http://jabber.org/protocol/caps",
            ],
        );
        assert_eq!(ver, "QgayPKawpkPSDYmwT/WM94uAlu0=");
    }

    #[test]
    fn identities_and_features_are_sorted_before_hashing() {
        let a = verification_string(&[("gateway", "sms", "", "x"), ("client", "sms", "", "")], &["b", "a"]);
        let b = verification_string(&[("client", "sms", "", ""), ("gateway", "sms", "", "x")], &["a", "b"]);
        assert_eq!(a, b);
    }

    #[test]
    fn our_two_answers_and_their_vers() {
        // Computed independently (Python's hashlib and base64 over the §5.1 string); a change
        // of features changes them, and clients then ask again.
        assert_eq!(DOMAIN.ver(), "pQr8xHmIkmHt3yiFjGH4MJU7a1o=");
        assert_eq!(CONTACT.ver(), "kx2qcW8YQ4PEIOYh0Vm+qZtKqjI=");
        assert_eq!(DOMAIN.ver(), expected_ver("gateway/sms//SMS (VoIP.ms)<", DOMAIN.features));
        assert_eq!(CONTACT.ver(), expected_ver("client/sms//<", CONTACT.features));
        assert_ne!(DOMAIN.ver(), CONTACT.ver(), "different answers, different names");
        assert_eq!(
            xml(&CONTACT.query(None)),
            "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='sms'/>\
             <feature var='http://jabber.org/protocol/disco#info'/><feature var='urn:xmpp:receipts'/>\
             <feature var='jabber:x:oob'/><feature var='urn:xmpp:ping'/></query>"
        );
        let domain = xml(&DOMAIN.query(None));
        for absent in ["jabber:iq:register", "http://jabber.org/protocol/address", "chatstates"] {
            assert!(!domain.contains(absent), "{absent}");
        }
        assert!(domain.contains("<identity category='gateway' type='sms' name='SMS (VoIP.ms)'/>"), "{domain}");
        assert!(domain.contains("jabber:iq:gateway") && domain.contains("jabber:iq:version"));
    }

    /// The §5.1 string written out by hand, for the tests.
    fn expected_ver(identity: &str, features: &[&str]) -> String {
        let mut f = features.to_vec();
        f.sort_unstable();
        let s: String = std::iter::once(identity.to_string()).chain(f.iter().map(|f| format!("{f}<"))).collect();
        base64::encode(&sha1(s.as_bytes()))
    }

    #[test]
    fn caps_element() {
        let c = xml(&CONTACT.caps());
        assert_eq!(
            c,
            format!(
                "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://github.com/voipms-xmpp/voipms-xmpp' ver='{}'/>",
                CONTACT.ver()
            )
        );
    }

    fn query(s: &str) -> Element {
        Element::parse(s.as_bytes(), &NsContext::component()).unwrap()
    }

    #[test]
    fn nodes() {
        let plain = query("<query xmlns='http://jabber.org/protocol/disco#info'/>");
        assert_eq!(info_answer(true, &plain).unwrap(), DOMAIN.query(None));
        let node = DOMAIN.caps_node();
        let asked = query(&format!("<query xmlns='http://jabber.org/protocol/disco#info' node='{node}'/>"));
        let answer = info_answer(true, &asked).unwrap();
        assert_eq!(answer.get_attr("node"), Some(node.as_str()), "§6.2: the node is echoed");
        assert_eq!(answer.children().count(), DOMAIN.query(None).children().count());
        // The domain's node asked of a contact (and anything else) is not found.
        let e = info_answer(false, &asked).unwrap_err();
        assert_eq!((e.condition.as_str(), e.error_type.as_str()), ("item-not-found", "cancel"));
        assert!(e.text.contains("no such disco node"), "{}", e.text);
        let nope = query("<query xmlns='http://jabber.org/protocol/disco#info' node='nope'/>");
        assert!(info_answer(true, &nope).is_err());
        let items = query("<query xmlns='http://jabber.org/protocol/disco#items'/>");
        assert_eq!(xml(&items_answer(&items).unwrap()), "<query xmlns='http://jabber.org/protocol/disco#items'/>");
        let commands =
            query("<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/>");
        assert_eq!(items_answer(&commands).unwrap_err().condition, "item-not-found");
    }
}
