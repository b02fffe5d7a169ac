//! Test support: the harness that runs the binary, and the scripted XMPP server.

pub mod harness;
pub mod xmpp_peer;
