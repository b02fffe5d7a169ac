//! voipms-xmpp: an XMPP external component (XEP-0114) that gateways SMS/MMS through VoIP.ms.
//!
//! The library target exists so that tests can drive the sans-IO core and the daemon in-process;
//! the binary (`src/main.rs`) is a thin command line over it. See `ARCHITECTURE.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod core;
