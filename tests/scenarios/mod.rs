//! One file per feature.

mod backfill;
mod backfill_identical;
mod backlog;
mod bodyless;
mod cli;
mod crash;
mod dedupe;
mod delivery_error;
mod disco;
mod disk;
mod gateway_prompt;
mod group_mms;
mod long_text;
mod metrics;
mod mms_backfill;
mod mms_in;
mod mms_out;
mod ops;
mod presence;
mod receipts;
mod reconnect;
mod restart;
mod sd_notify;
mod second_did;
mod seen_log;
mod short_codes;
mod shutdown;
mod sms_in;
mod sms_out;
mod unauthorised;
mod voipms_error;
mod voipms_outage;
mod webhook_hostile;
mod webhook_http;
mod xmpp_outage;
mod xmpp_stuck;

use crate::support::harness::DOMAIN;

/// A chat message from `from` to the contact `local@DOMAIN`.
pub fn chat(from: &str, local: &str, id: &str, body: &str) -> String {
    format!(
        "<message type='chat' id='{id}' from='{from}' to='{local}@{DOMAIN}' xml:lang='en'><body>{body}</body></message>"
    )
}
