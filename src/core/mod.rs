//! The sans-IO core: protocol logic with no sockets, files, clocks or threads.
//!
//! Everything arrives as an [`Input`] and leaves as an [`Action`]; `now` is always a parameter.
//! `tests/sans_io.rs` keeps it that way. Map of the core:
//! - [`gateway`]: the state machine the shell drives; owns everything below.
//! - [`action`]: inputs and actions, the whole vocabulary with the shell.
//! - [`xmpp`]: framer, element tree, stanzas, JIDs, handshake, session.
//! - [`router`]: who may send what from which DID; [`outbound`]: the send queue;
//!   [`mailbox`]: stanzas owed to users until the server has read them; [`delivery`]: the
//!   server's errors for what was delivered (redelivery, undeliverable).
//! - [`voipms`]: API requests and answers, message parts, the webhook body; [`backfill`]:
//!   asking VoIP.ms for what the webhook missed; [`seen`]: each received message once.
//! - [`quota`]: the daily sending cap.
//! - [`iq`]: the iq dispatcher; [`disco`]: XEP-0030 + XEP-0115; [`gateway_prompt`]: XEP-0100;
//!   [`presence`]: RFC 6121 subscriptions and the XEP-0100 presence flows.
//! - [`config`], [`json`], [`secret`], [`phone`], [`time`], [`retry`], [`spool_record`].

pub mod action;
pub mod addresses;
pub mod backfill;
pub mod config;
pub mod delivery;
pub mod disco;
pub mod gateway;
pub mod gateway_prompt;
#[cfg(test)]
mod gateway_tests;
pub mod iq;
pub mod json;
pub mod mailbox;
pub mod metrics;
pub mod outbound;
pub mod phone;
pub mod presence;
pub mod quota;
pub mod receipts;
pub mod retry;
pub mod router;
pub mod secret;
pub mod seen;
pub mod spool_record;
pub mod time;
pub mod voipms;
pub mod xmpp;

pub use action::{Action, Input, Level, WebhookReply};
pub use gateway::Gateway;
