//! The sans-IO core: protocol logic with no sockets, files, clocks or threads.
//!
//! Everything arrives as an input and leaves as an action (see `ARCHITECTURE.md`).

pub mod config;
pub mod json;
pub mod phone;
pub mod secret;
pub mod voipms;
pub mod xmpp;
