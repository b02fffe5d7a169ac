//! Stanzas (RFC 6120 §8) as typed values: what we read from the server and what we write.
//!
//! Parsing keeps only what the gateway acts on (xmpp.md §6, §8): addresses, ids, type, body,
//! XEP-0066 OOB URLs, XEP-0184 receipt requests, XEP-0033 addresses, end-to-end encryption
//! markers. Building produces the XML text of each stanza we send; every one carries a `from`
//! in our domain (XEP-0114 §3) and a `to`.

use crate::core::xmpp::element::Element;
use crate::core::xmpp::jid::Jid;
use crate::core::xmpp::ns;
use std::fmt;

/// A `<message/>` `type` (RFC 6120 §5.2.2; absent means `normal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// One-to-one chat.
    Chat,
    /// A standalone message.
    Normal,
    /// Multi-user chat.
    Groupchat,
    /// An alert that expects no reply.
    Headline,
    /// An error about a message we sent.
    Error,
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Sender (full JID).
    pub from: Jid,
    /// Recipient: our domain or a contact JID under it.
    pub to: Jid,
    /// The stanza id, echoed in errors and receipts.
    pub id: Option<String>,
    /// The type.
    pub kind: MessageType,
    /// The body text (the first `<body/>`; clients send one).
    pub body: Option<String>,
    /// XEP-0066 out-of-band URLs.
    pub oob_urls: Vec<String>,
    /// XEP-0184 `<request/>` present.
    pub receipt_requested: bool,
    /// Recipients (`to`, `cc`, `bcc`) listed in an XEP-0033 `<addresses/>` element.
    pub addresses: usize,
    /// An OMEMO, OpenPGP or legacy PGP payload (its fallback body must not go out as SMS).
    pub encrypted: bool,
    /// For `type='error'`: the defined condition.
    pub error_condition: Option<String>,
    /// For `type='error'`: the error's `type` (`cancel`, `wait`, `modify`, `auth`, `continue`).
    pub error_type: Option<String>,
}

/// An `<iq/>` `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqType {
    /// A request for information.
    Get,
    /// A request to change something.
    Set,
    /// A successful answer.
    Result,
    /// A failed answer.
    Error,
}

/// An iq from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iq {
    /// Sender.
    pub from: Jid,
    /// Recipient.
    pub to: Jid,
    /// The id (required for iq).
    pub id: String,
    /// The type.
    pub kind: IqType,
    /// The first child element, if any.
    pub payload: Option<Element>,
}

/// A `<presence/>` `type` (RFC 6121 §4.7.1; absent means available).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceType {
    /// No `type`: the sender is available.
    Available,
    /// The sender is no longer available.
    Unavailable,
    /// A request to subscribe to the recipient's presence.
    Subscribe,
    /// The recipient's subscription request was approved.
    Subscribed,
    /// A request to end a subscription to the recipient's presence.
    Unsubscribe,
    /// A subscription request was denied, or a subscription cancelled.
    Unsubscribed,
    /// A request for the recipient's current presence.
    Probe,
    /// An error about a presence we sent.
    Error,
}

impl PresenceType {
    /// The `type` attribute value (`None` for available).
    pub fn as_attr(self) -> Option<&'static str> {
        match self {
            PresenceType::Available => None,
            PresenceType::Unavailable => Some("unavailable"),
            PresenceType::Subscribe => Some("subscribe"),
            PresenceType::Subscribed => Some("subscribed"),
            PresenceType::Unsubscribe => Some("unsubscribe"),
            PresenceType::Unsubscribed => Some("unsubscribed"),
            PresenceType::Probe => Some("probe"),
            PresenceType::Error => Some("error"),
        }
    }

    fn parse(attr: Option<&str>) -> Result<PresenceType, StanzaError> {
        Ok(match attr {
            None => PresenceType::Available,
            Some("unavailable") => PresenceType::Unavailable,
            Some("subscribe") => PresenceType::Subscribe,
            Some("subscribed") => PresenceType::Subscribed,
            Some("unsubscribe") => PresenceType::Unsubscribe,
            Some("unsubscribed") => PresenceType::Unsubscribed,
            Some("probe") => PresenceType::Probe,
            Some("error") => PresenceType::Error,
            // RFC 6121 §4.7.1: any other value is not a presence we can act on.
            Some(other) => return Err(StanzaError::BadType(other.to_string())),
        })
    }
}

/// A presence from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// Sender.
    pub from: Jid,
    /// Recipient.
    pub to: Jid,
    /// The type.
    pub kind: PresenceType,
}

/// A stanza from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stanza {
    /// `<message/>`.
    Message(Message),
    /// `<iq/>`.
    Iq(Iq),
    /// `<presence/>`.
    Presence(Presence),
}

/// Why an element is not a usable stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StanzaError {
    /// Not message, iq or presence in the component namespace.
    UnknownElement(String),
    /// A required attribute is missing.
    MissingAttribute(&'static str),
    /// An address attribute is not a JID.
    BadJid(&'static str),
    /// The `type` attribute has a value not allowed for this stanza.
    BadType(String),
}

impl fmt::Display for StanzaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StanzaError::UnknownElement(name) => write!(f, "unknown top-level element <{name}/>"),
            StanzaError::MissingAttribute(a) => write!(f, "missing '{a}' attribute"),
            StanzaError::BadJid(a) => write!(f, "'{a}' is not a valid JID"),
            StanzaError::BadType(t) => write!(f, "invalid type '{t}'"),
        }
    }
}

impl std::error::Error for StanzaError {}

fn jid_attr(e: &Element, name: &'static str) -> Result<Jid, StanzaError> {
    let v = e.get_attr(name).ok_or(StanzaError::MissingAttribute(name))?;
    Jid::parse(v).map_err(|_| StanzaError::BadJid(name))
}

impl Stanza {
    /// Read a stanza from a parsed top-level element.
    pub fn from_element(e: &Element) -> Result<Stanza, StanzaError> {
        if e.ns() != ns::COMPONENT && e.ns() != "jabber:client" && e.ns() != "jabber:server" {
            return Err(StanzaError::UnknownElement(e.name().to_string()));
        }
        match e.name() {
            "message" => Ok(Stanza::Message(parse_message(e)?)),
            "iq" => Ok(Stanza::Iq(parse_iq(e)?)),
            "presence" => Ok(Stanza::Presence(Presence {
                from: jid_attr(e, "from")?,
                to: jid_attr(e, "to")?,
                kind: PresenceType::parse(e.get_attr("type"))?,
            })),
            other => Err(StanzaError::UnknownElement(other.to_string())),
        }
    }
}

fn parse_message(e: &Element) -> Result<Message, StanzaError> {
    let kind = match e.get_attr("type") {
        None | Some("normal") => MessageType::Normal,
        Some("chat") => MessageType::Chat,
        Some("groupchat") => MessageType::Groupchat,
        Some("headline") => MessageType::Headline,
        Some("error") => MessageType::Error,
        // RFC 6120 §5.2.2: an unknown type is treated as normal.
        Some(_) => MessageType::Normal,
    };
    let body = e.children().find(|c| c.is("body", e.ns())).map(Element::text_content);
    let oob_urls = e
        .children()
        .filter(|c| c.is("x", ns::OOB))
        .filter_map(|x| x.get_child("url", ns::OOB))
        .map(|u| u.text_content().trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    let encrypted = e.children().any(|c| {
        c.is("encrypted", ns::OMEMO)
            || c.is("encrypted", ns::OMEMO2)
            || c.is("openpgp", ns::OPENPGP)
            || c.is("x", ns::LEGACY_PGP)
    }) || e.get_child("encryption", ns::EME).is_some();
    let addresses = crate::core::addresses::recipients(e);
    let error = e.get_child("error", e.ns());
    let error_condition = error
        .and_then(|err| err.children().find(|c| c.ns() == ns::STANZA_ERRORS && c.name() != "text"))
        .map(|c| c.name().to_string());
    let error_type = error.and_then(|err| err.get_attr("type")).map(str::to_string);
    Ok(Message {
        from: jid_attr(e, "from")?,
        to: jid_attr(e, "to")?,
        id: e.get_attr("id").map(str::to_string),
        kind,
        body,
        oob_urls,
        receipt_requested: e.get_child("request", ns::RECEIPTS).is_some(),
        addresses,
        encrypted,
        error_condition,
        error_type,
    })
}

fn parse_iq(e: &Element) -> Result<Iq, StanzaError> {
    let kind = match e.get_attr("type") {
        Some("get") => IqType::Get,
        Some("set") => IqType::Set,
        Some("result") => IqType::Result,
        Some("error") => IqType::Error,
        Some(other) => return Err(StanzaError::BadType(other.to_string())),
        None => return Err(StanzaError::MissingAttribute("type")),
    };
    Ok(Iq {
        from: jid_attr(e, "from")?,
        to: jid_attr(e, "to")?,
        id: e.get_attr("id").ok_or(StanzaError::MissingAttribute("id"))?.to_string(),
        kind,
        payload: e.children().next().cloned(),
    })
}

/// A stanza error to send (RFC 6120 §8.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorSpec {
    /// The defined condition, e.g. `not-allowed`.
    pub condition: String,
    /// `cancel`, `continue`, `modify`, `auth` or `wait`.
    pub error_type: String,
    /// Human-readable text.
    pub text: String,
}

impl ErrorSpec {
    /// Build from static parts.
    pub fn new(condition: &str, error_type: &str, text: impl Into<String>) -> ErrorSpec {
        ErrorSpec { condition: condition.to_string(), error_type: error_type.to_string(), text: text.into() }
    }

    fn element(&self) -> Element {
        let mut e = Element::new("error", ns::COMPONENT)
            .attr("type", &self.error_type)
            .child(Element::new(&self.condition, ns::STANZA_ERRORS));
        if !self.text.is_empty() {
            e.push_child(Element::new("text", ns::STANZA_ERRORS).attr("xml:lang", "en").text(&self.text));
        }
        e
    }
}

/// Build stanzas as XML text.
pub mod build {
    use super::*;

    fn finish(e: Element) -> String {
        e.to_xml(ns::COMPONENT)
    }

    /// An inbound SMS/MMS: `type='chat'`, a body, optionally XEP-0033 addresses (a group
    /// message), OOB and an XEP-0203 delay stamp.
    pub fn chat(
        from: &str,
        to: &str,
        id: &str,
        body: &str,
        addresses: Option<&Element>,
        oob_url: Option<&str>,
        delay: Option<(&str, &str)>,
    ) -> String {
        let mut m = Element::new("message", ns::COMPONENT)
            .attr("type", "chat")
            .attr("id", id)
            .attr("from", from)
            .attr("to", to)
            .child(Element::new("body", ns::COMPONENT).text(body));
        if let Some(a) = addresses {
            m.push_child(a.clone());
        }
        if let Some(url) = oob_url {
            m.push_child(Element::new("x", ns::OOB).child(Element::new("url", ns::OOB).text(url)));
        }
        if let Some((stamp, by)) = delay {
            m.push_child(Element::new("delay", ns::DELAY).attr("from", by).attr("stamp", stamp));
        }
        finish(m)
    }

    /// A message with no `type` and no body carrying one payload element (an XEP-0184
    /// receipt).
    pub fn message(from: &str, to: &str, id: &str, payload: Element) -> String {
        finish(Element::new("message", ns::COMPONENT).attr("id", id).attr("from", from).attr("to", to).child(payload))
    }

    /// A message error in reply to a message (to/from swapped, same id, no body echoed).
    pub fn message_error(from: &str, to: &str, id: Option<&str>, error: &ErrorSpec) -> String {
        let mut m = Element::new("message", ns::COMPONENT).attr("type", "error");
        if let Some(id) = id {
            m.set_attr("id", id);
        }
        finish(m.attr("from", from).attr("to", to).child(error.element()))
    }

    /// An iq result with an optional payload.
    pub fn iq_result(from: &str, to: &str, id: &str, payload: Option<Element>) -> String {
        let mut iq =
            Element::new("iq", ns::COMPONENT).attr("type", "result").attr("id", id).attr("from", from).attr("to", to);
        if let Some(p) = payload {
            iq.push_child(p);
        }
        finish(iq)
    }

    /// An iq error in reply to a get/set; the request's payload is echoed (RFC 6120 §8.3.1 allows it).
    pub fn iq_error(from: &str, to: &str, id: &str, payload: Option<&Element>, error: &ErrorSpec) -> String {
        let mut iq =
            Element::new("iq", ns::COMPONENT).attr("type", "error").attr("id", id).attr("from", from).attr("to", to);
        if let Some(p) = payload {
            iq.push_child(Element::new(p.name(), p.ns()));
        }
        iq.push_child(error.element());
        finish(iq)
    }

    /// A presence of ours (RFC 6121 §4), with an optional payload (XEP-0115 caps).
    pub fn presence(from: &str, to: &str, kind: PresenceType, payload: Option<Element>) -> String {
        let mut p = Element::new("presence", ns::COMPONENT);
        if let Some(t) = kind.as_attr() {
            p.set_attr("type", t);
        }
        let mut p = p.attr("from", from).attr("to", to);
        if let Some(e) = payload {
            p.push_child(e);
        }
        finish(p)
    }

    /// An XEP-0199 ping.
    pub fn ping(from: &str, to: &str, id: &str) -> String {
        finish(
            Element::new("iq", ns::COMPONENT)
                .attr("type", "get")
                .attr("id", id)
                .attr("from", from)
                .attr("to", to)
                .child(Element::new("ping", ns::PING)),
        )
    }

    /// A stream error followed by the end of the stream (RFC 6120 §4.9).
    pub fn stream_error(condition: &str, text: &str) -> String {
        let mut e = Element::new("error", ns::STREAMS).child(Element::new(condition, ns::STREAM_ERRORS));
        if !text.is_empty() {
            e.push_child(Element::new("text", ns::STREAM_ERRORS).text(text));
        }
        let mut out = e.to_xml(ns::COMPONENT);
        out.push_str("</stream:stream>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::xmpp::element::NsContext;

    fn parse(xml: &str) -> Stanza {
        let e = Element::parse(xml.as_bytes(), &NsContext::component()).unwrap();
        Stanza::from_element(&e).unwrap()
    }

    fn message(xml: &str) -> Message {
        match parse(xml) {
            Stanza::Message(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_a_prosody_message() {
        let m = message(
            "<message type='chat' id='25543a3f' from='alice@localhost/test' xml:lang='en' to='+15551234567@sms.localhost'><body>hello &lt;sms&gt; &amp; co</body><request xmlns='urn:xmpp:receipts'/></message>",
        );
        assert_eq!(m.kind, MessageType::Chat);
        assert_eq!(m.id.as_deref(), Some("25543a3f"));
        assert_eq!(m.from.to_string(), "alice@localhost/test");
        assert_eq!(m.to.local(), Some("+15551234567"));
        assert_eq!(m.body.as_deref(), Some("hello <sms> & co"));
        assert!(m.receipt_requested);
        assert!(!m.encrypted);
    }

    #[test]
    fn reads_oob_encryption_addresses_and_chat_states() {
        let m = message(
            "<message from='a@b/c' to='+15551234567@sms.b'><body>https://up/x.jpg</body><x xmlns='jabber:x:oob'><url> https://up/x.jpg </url></x></message>",
        );
        assert_eq!(m.kind, MessageType::Normal);
        assert_eq!(m.oob_urls, vec!["https://up/x.jpg".to_string()]);
        let m = message(
            "<message type='chat' from='a@b/c' to='+15551234567@sms.b'><body>I sent you an OMEMO encrypted message</body><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>",
        );
        assert!(m.encrypted);
        let m = message(
            "<message type='chat' from='a@b/c' to='sms.b'><addresses xmlns='http://jabber.org/protocol/address'><address type='to' uri='sms:+12261234567'/><address type='to' uri='sms:+12261234578'/></addresses><body>hi</body></message>",
        );
        assert_eq!(m.addresses, 2);
        let m = message(
            "<message type='chat' from='a@b/c' to='+15551234567@sms.b'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        );
        assert_eq!(m.body, None);
        let m = message(
            "<message type='error' from='a@b/c' to='+15551234567@sms.b'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
        );
        assert_eq!(m.error_condition.as_deref(), Some("item-not-found"));
        assert_eq!(m.error_type.as_deref(), Some("cancel"));
    }

    #[test]
    fn reads_iq_and_presence() {
        match parse("<iq type='get' id='p1' from='a@b/c' to='sms.b'><ping xmlns='urn:xmpp:ping'/></iq>") {
            Stanza::Iq(iq) => {
                assert_eq!(iq.kind, IqType::Get);
                assert!(iq.payload.unwrap().is("ping", ns::PING));
            }
            other => panic!("{other:?}"),
        }
        for (attr, kind) in [
            ("", PresenceType::Available),
            (" type='unavailable'", PresenceType::Unavailable),
            (" type='subscribe'", PresenceType::Subscribe),
            (" type='subscribed'", PresenceType::Subscribed),
            (" type='unsubscribe'", PresenceType::Unsubscribe),
            (" type='unsubscribed'", PresenceType::Unsubscribed),
            (" type='probe'", PresenceType::Probe),
            (" type='error'", PresenceType::Error),
        ] {
            let xml = format!("<presence from='a@b' to='sms.b'{attr}/>");
            assert!(matches!(parse(&xml), Stanza::Presence(p) if p.kind == kind), "{xml}");
            assert_eq!(kind.as_attr().map(|t| format!(" type='{t}'")).unwrap_or_default(), attr);
        }
        let e = Element::parse(b"<presence from='a@b' to='sms.b' type='chat'/>", &NsContext::component()).unwrap();
        assert_eq!(Stanza::from_element(&e), Err(StanzaError::BadType("chat".into())));
        assert_eq!(
            build::presence("+15551234567@sms.b", "a@b", PresenceType::Subscribed, None),
            "<presence type='subscribed' from='+15551234567@sms.b' to='a@b'/>"
        );
        assert_eq!(
            build::presence(
                "sms.b",
                "a@b",
                PresenceType::Available,
                Some(Element::new("c", ns::CAPS).attr("ver", "v"))
            ),
            "<presence from='sms.b' to='a@b'><c xmlns='http://jabber.org/protocol/caps' ver='v'/></presence>"
        );
    }

    #[test]
    fn refuses_broken_stanzas() {
        let ctx = NsContext::component();
        let cases = [
            ("<message to='x@y'/>", StanzaError::MissingAttribute("from")),
            ("<message from='a b@c' to='x@y'/>", StanzaError::BadJid("from")),
            ("<iq from='a@b' to='c' id='1' type='nope'/>", StanzaError::BadType("nope".into())),
            ("<iq from='a@b' to='c' type='get'/>", StanzaError::MissingAttribute("id")),
            ("<foo/>", StanzaError::UnknownElement("foo".into())),
        ];
        for (xml, expected) in cases {
            let e = Element::parse(xml.as_bytes(), &ctx).unwrap();
            assert_eq!(Stanza::from_element(&e), Err(expected), "{xml}");
        }
    }

    #[test]
    fn builds_messages_that_read_back() {
        let xml = build::chat(
            "+15557654321@sms.b",
            "alice@b",
            "i-1",
            "a < b & 'c'",
            None,
            Some("https://m/x.jpg"),
            Some(("2025-07-20T20:24:16.000Z", "sms.b")),
        );
        let m = message(&xml);
        assert_eq!(m.body.as_deref(), Some("a < b & 'c'"));
        assert_eq!(m.oob_urls, vec!["https://m/x.jpg".to_string()]);
        let e = Element::parse(xml.as_bytes(), &NsContext::component()).unwrap();
        let delay = e.get_child("delay", ns::DELAY).unwrap();
        assert_eq!(delay.get_attr("stamp"), Some("2025-07-20T20:24:16.000Z"));
    }

    #[test]
    fn builds_errors() {
        let xml = build::message_error(
            "+15557654321@sms.b",
            "alice@b/phone",
            Some("m1"),
            &ErrorSpec::new("not-allowed", "cancel", "no"),
        );
        let e = Element::parse(xml.as_bytes(), &NsContext::component()).unwrap();
        assert_eq!(e.get_attr("type"), Some("error"));
        assert_eq!(e.get_attr("id"), Some("m1"));
        let err = e.get_child("error", ns::COMPONENT).unwrap();
        assert_eq!(err.get_attr("type"), Some("cancel"));
        assert!(err.get_child("not-allowed", ns::STANZA_ERRORS).is_some());
        assert_eq!(err.get_child("text", ns::STANZA_ERRORS).unwrap().text_content(), "no");
        assert_eq!(message(&xml).error_condition.as_deref(), Some("not-allowed"));
        let s = build::stream_error("policy-violation", "");
        assert_eq!(
            s,
            "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
        );
    }
}
