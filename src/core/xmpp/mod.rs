//! The XMPP side of the core: byte framing, the element tree, stanzas, JIDs, the XEP-0114
//! handshake and the session state machine.

pub mod base64;
pub mod element;
pub mod framer;
pub mod handshake;
pub mod jid;
pub mod ns;
pub mod session;
pub mod sha1;
pub mod stanza;
