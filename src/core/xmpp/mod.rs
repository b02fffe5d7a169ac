//! The XMPP side of the core: byte framing, the element tree, the XEP-0114 handshake.

pub mod element;
pub mod framer;
pub mod handshake;
pub mod jid;
pub mod ns;
pub mod sha1;
