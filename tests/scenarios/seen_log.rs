//! A webhook id that would inject a line into seen.log is refused (400), and a restart finds
//! sending open.

use super::chat;
use crate::support::harness::*;
use std::time::Duration;

#[test]
fn a_webhook_id_with_a_newline_is_refused_and_cannot_close_sending() {
    // Regression (issue 6, defect 9): the id reached seen.log raw; at the next start its
    // `quota` line closed sending until the year 5138.
    let mut env = TestEnv::new("seen-inject");
    let (gw, _peer) = env.start_online();
    let body = format!(
        r#"{{"data":{{"payload":{{"id":"1\nquota\t99999999999999\nx","type":"SMS","from":{{"phone_number":"{FRIEND}"}},"to":[{{"phone_number":"{ALICE_DID}"}}],"text":"hi"}}}}}}"#
    );
    let (status, answer) = gw.post_webhook(&body);
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("data.payload.id"), "{answer}");
    assert!(gw.terminate().success());
    let seen = std::fs::read_to_string(env.state_dir().join("seen.log")).unwrap_or_default();
    assert!(!seen.lines().any(|l| l.starts_with("quota")), "{seen:?}");
    // After a restart, sending is open.
    let (_gw, mut peer) = env.start_online();
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "s1", "still open"));
    env.voipms
        .wait_for_calls_where(Duration::from_secs(20), |c| c.iter().any(|c| c.method == "sendSMS"))
        .expect("a send after the restart");
    peer.expect_nothing_for(Duration::from_millis(300));
}
