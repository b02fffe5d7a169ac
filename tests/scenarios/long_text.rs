//! Long text: sendMMS up to 2048 bytes, longer text cut at character boundaries into parts sent
//! strictly in order; nothing lost, every part valid UTF-8.

use super::chat;
use crate::support::harness::*;
use std::time::Duration;

fn send_and_collect(env: &mut TestEnv, text: &str, parts: usize) -> Vec<String> {
    let (_gw, mut peer) = env.start_online();
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "long", text));
    let calls = env.voipms.wait_for_calls("sendMMS", parts, Duration::from_secs(20)).expect("all parts");
    peer.expect_nothing_for(Duration::from_millis(500));
    assert_eq!(env.voipms.calls_for("sendMMS").len(), parts, "exactly {parts} parts");
    assert!(env.voipms.calls_for("sendSMS").is_empty());
    calls
        .iter()
        .map(|c| {
            assert_eq!(c.status, "success");
            c.param("message").expect("message").to_string()
        })
        .collect()
}

#[test]
fn text_over_160_bytes_is_one_mms() {
    let mut env = TestEnv::new("mms-161");
    // 160 characters, 161 bytes: sendSMS would answer sms_toolong.
    let text = format!("{}è", "a".repeat(159));
    let parts = send_and_collect(&mut env, &text, 1);
    assert_eq!(parts, vec![text]);
}

#[test]
fn long_ascii_text_in_ordered_parts() {
    let mut env = TestEnv::new("long-ascii");
    let text: String = (0..700).map(|i| format!("w{i:04} ")).collect(); // 4200 bytes
    let parts = send_and_collect(&mut env, &text, 3);
    assert!(parts.iter().all(|p| p.len() <= 2048));
    assert_eq!(parts.concat(), text, "in order, nothing lost");
}

#[test]
fn long_multibyte_text_in_ordered_parts() {
    let mut env = TestEnv::new("long-utf8");
    // 2- 3- and 4-byte characters, so no fixed byte offset is a boundary.
    let text: String = (0..400).map(|i| format!("é漢😀{i} ")).collect();
    assert!(text.len() > 4096);
    let parts = send_and_collect(&mut env, &text, 3);
    for p in &parts {
        assert!(p.len() <= 2048, "{} bytes", p.len());
        assert!(!p.contains('\u{fffd}'), "a part was not valid UTF-8");
    }
    assert_eq!(parts.concat(), text, "in order, nothing lost");
}
