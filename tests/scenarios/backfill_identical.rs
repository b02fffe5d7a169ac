//! Two identical texts in a row, the second without its webhook: backfill delivers the second.

use crate::support::harness::*;
use mock_voipms::InboundRequest;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use voipms_xmpp::core::time::rfc3339_utc;

fn minutes_ago(m: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    rfc3339_utc(now - m * 60_000)
}

#[test]
fn a_second_identical_text_whose_webhook_was_lost_is_backfilled() {
    // Regression (issue 6, defect 4): the first "ok" came by webhook; the backfilled row of the
    // second "ok" took the first one's fingerprint and was never delivered.
    let mut env = TestEnv::new("backfill-identical");
    env.voipms_extra = r#", "backfill_interval_secs": 1"#.into();
    let (gw, mut peer) = env.start_online();
    env.voipms.set_clock(&minutes_ago(4)).unwrap();
    let first = env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "ok"));
    assert_eq!(first.deliveries[0].http_status, Some(200));
    peer.expect_message(ALICE, "ok");
    // The webhook breaks; the contact writes "ok" again.
    let mut did = env.voipms.dids().into_iter().find(|d| d.did == ALICE_DID).unwrap();
    did.webhook_enabled = false;
    env.voipms.set_did(did);
    env.voipms.set_clock(&minutes_ago(3)).unwrap();
    let second = env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "ok"));
    assert!(second.deliveries.is_empty(), "no webhook");
    env.voipms.set_clock(&minutes_ago(0)).unwrap();
    peer.expect_message(ALICE, "ok");
    gw.wait_for_log("backfill found a message from …8888");
    // And only that one: later runs repeat nothing.
    let runs = env.voipms.calls_for("getMMS").len();
    env.voipms.wait_for_calls("getMMS", runs + 6, Duration::from_secs(15)).unwrap();
    peer.expect_nothing_for(Duration::from_millis(300));
}
