//! Backfill: messages the webhook never brought are found with getMMS and delivered once,
//! stamped with VoIP.ms's time; messages the webhook did bring are not repeated.

use crate::support::harness::*;
use mock_voipms::InboundRequest;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use voipms_xmpp::core::time::rfc3339_utc;
use voipms_xmpp::core::xmpp::ns;

fn minutes_ago(m: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    rfc3339_utc(now - m * 60_000)
}

#[test]
fn messages_only_backfill_can_find_are_delivered_once() {
    let mut env = TestEnv::new("backfill");
    env.voipms_extra = r#", "backfill_interval_secs": 1"#.into();
    env.webhooks = false;
    // First start: the gateway's backfill covers what arrives from now on.
    let gw = env.start();
    let mut peer = env.xmpp.accept();
    gw.wait_for_log("voipms-xmpp");
    // A text VoIP.ms received 5 minutes "ago" by its clock, while the webhook was not set.
    env.voipms.set_clock(&minutes_ago(5)).unwrap();
    let report = env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "only backfill knows"));
    assert!(report.deliveries.is_empty(), "no webhook");
    env.voipms.set_clock(&minutes_ago(0)).unwrap();
    // Started before the message was dated, so the next run finds it.
    let m = peer.expect_message(ALICE, "only backfill knows");
    let stamp = m.get_child("delay", ns::DELAY).and_then(|d| d.get_attr("stamp")).expect("a delay stamp").to_string();
    assert!(stamp.ends_with('Z'));
    gw.wait_for_log("backfill found a message from …8888");
    // Later runs see it again and do not deliver it again.
    let runs_before = env.voipms.calls_for("getMMS").len();
    env.voipms.wait_for_calls("getMMS", runs_before + 6, Duration::from_secs(15)).unwrap();
    peer.expect_nothing_for(Duration::from_millis(300));
}

#[test]
fn backfill_does_not_repeat_what_the_webhook_brought() {
    let mut env = TestEnv::new("backfill-dedupe");
    env.voipms_extra = r#", "backfill_interval_secs": 1"#.into();
    let (_gw, mut peer) = env.start_online();
    env.voipms.set_clock(&minutes_ago(4)).unwrap();
    env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "brought by the webhook"));
    env.voipms.set_clock(&minutes_ago(0)).unwrap();
    peer.expect_message(ALICE, "brought by the webhook");
    let runs_before = env.voipms.calls_for("getMMS").len();
    env.voipms.wait_for_calls("getMMS", runs_before + 6, Duration::from_secs(15)).unwrap();
    peer.expect_nothing_for(Duration::from_millis(300));
}
