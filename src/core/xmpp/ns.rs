//! XML namespace names used across the gateway, in one place.
//!
//! Owns only string constants: no parsing, no behaviour. Each constant cites the specification that
//! defines the namespace, so that matching on a namespace never depends on a typo in a literal
//! scattered through the code. Stanzas are matched on [`COMPONENT`] (XEP-0114), never on
//! `jabber:client` (see `docs/xmpp.md` §1).

/// XEP-0114 §3: the default namespace of a component stream; stanzas without `xmlns` inherit it.
pub const COMPONENT: &str = "jabber:component:accept";

/// RFC 6120 §4.8.1: the namespace of `<stream:stream>`, `<stream:error>` and `<stream:features>`.
pub const STREAMS: &str = "http://etherx.jabber.org/streams";

/// RFC 6120 §4.9.3: the namespace of stream error conditions inside `<stream:error>`.
pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

/// RFC 6120 §8.3.3: the namespace of stanza error conditions inside `<error>`.
pub const STANZA_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// XEP-0199: XMPP Ping, our liveness probe towards the server.
pub const PING: &str = "urn:xmpp:ping";

/// XEP-0066: Out of Band Data, how MMS media URLs travel in messages.
pub const OOB: &str = "jabber:x:oob";

/// XEP-0203: Delayed Delivery, the timestamp of an SMS that was received while we were offline.
pub const DELAY: &str = "urn:xmpp:delay";

/// XEP-0184: Message Delivery Receipts (`<request/>` and `<received/>`).
pub const RECEIPTS: &str = "urn:xmpp:receipts";

/// XEP-0085: Chat State Notifications; never forwarded as SMS.
pub const CHATSTATES: &str = "http://jabber.org/protocol/chatstates";

/// XEP-0333: Displayed Markers; never forwarded as SMS.
pub const CHAT_MARKERS: &str = "urn:xmpp:chat-markers:0";

/// XEP-0030: Service Discovery, `disco#info` queries.
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

/// XEP-0030: Service Discovery, `disco#items` queries.
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// XEP-0115: Entity Capabilities, the `<c/>` in our presence.
pub const CAPS: &str = "http://jabber.org/protocol/caps";

/// XEP-0100 §6.3: `jabber:iq:gateway`, turning a typed phone number into a contact JID.
pub const GATEWAY: &str = "jabber:iq:gateway";

/// XEP-0092: Software Version.
pub const VERSION: &str = "jabber:iq:version";

/// XEP-0033: Extended Stanza Addressing (group messages, JMP's SGX convention).
pub const ADDRESS: &str = "http://jabber.org/protocol/address";

/// XEP-0380: Explicit Message Encryption; tells us a message body is ciphertext.
pub const EME: &str = "urn:xmpp:eme:0";

/// XEP-0384 (legacy, v0.3): OMEMO as deployed by Conversations; cannot be sent as SMS.
pub const OMEMO: &str = "eu.siacs.conversations.axolotl";

/// XEP-0384 (v0.8+): OMEMO 2; cannot be sent as SMS.
pub const OMEMO2: &str = "urn:xmpp:omemo:2";

/// XEP-0373: OpenPGP for XMPP; cannot be sent as SMS.
pub const OPENPGP: &str = "urn:xmpp:openpgp:0";

/// XEP-0027: legacy OpenPGP (`<x xmlns='jabber:x:encrypted'>`); cannot be sent as SMS.
pub const LEGACY_PGP: &str = "jabber:x:encrypted";

/// XEP-0359: Unique and Stable Stanza IDs (`<stanza-id/>`, `<origin-id/>`).
pub const SID: &str = "urn:xmpp:sid:0";

/// Namespaces in XML 1.0 §3: the namespace permanently bound to the `xml` prefix (`xml:lang`).
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Namespaces in XML 1.0 §3: the namespace of `xmlns` declarations themselves; no element or
/// attribute may be placed in it, and no prefix may be bound to it.
pub const XMLNS: &str = "http://www.w3.org/2000/xmlns/";
