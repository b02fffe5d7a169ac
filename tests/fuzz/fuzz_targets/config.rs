//! libFuzzer entry point; the target itself is [`voipms_xmpp_fuzz::config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| voipms_xmpp_fuzz::config(data));
