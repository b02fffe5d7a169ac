//! voipms-xmpp: an XMPP external component (XEP-0114) that gateways SMS/MMS through VoIP.ms.
//!
//! The library target exists so that tests can drive the sans-IO core and the daemon in-process;
//! the binary (`src/main.rs`) is a thin command line over it. `core` holds all protocol logic
//! and does no I/O; the other modules are the shell that connects it to sockets, files and
//! clocks. See `ARCHITECTURE.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod config_file;
pub mod core;
pub mod daemon;
pub mod logger;
pub mod ops;
pub mod sd_notify;
pub mod spool;
pub mod voipms_client;
pub mod webhook;
pub mod xmpp_conn;
