//! The VoIP.ms side of the core: API requests and answers, message parts, the inbound webhook.

pub mod api;
pub mod parts;
pub mod webhook;
