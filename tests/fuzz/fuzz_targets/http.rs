//! libFuzzer entry point; the target itself is [`voipms_xmpp_fuzz::http`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| voipms_xmpp_fuzz::http(data));
