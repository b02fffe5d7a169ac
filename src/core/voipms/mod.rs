//! The VoIP.ms side of the core: API requests and answers, message parts, the inbound webhook,
//! and a DID's SMS settings (what the operator commands read and write).

pub mod api;
pub mod did_info;
pub mod parts;
pub mod webhook;
