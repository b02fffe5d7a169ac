//! A picture-only MMS that only backfill finds, listed without its media (as getMMS often
//! does): its media are fetched with getMediaMMS and the picture is delivered.

use crate::support::harness::*;
use mock_voipms::{InboundRequest, Options};
use std::time::{SystemTime, UNIX_EPOCH};
use voipms_xmpp::core::time::rfc3339_utc;
use voipms_xmpp::core::xmpp::ns;

#[test]
fn a_picture_the_list_omits_is_fetched_and_delivered() {
    // Regression (issue 6, defect 5): the row was taken for an SMS with no text; nothing was
    // delivered and the cursor moved past it.
    let mut env = TestEnv::new("mms-backfill");
    env.voipms_extra = r#", "backfill_interval_secs": 1"#.into();
    env.webhooks = false;
    env.voipms.set_options(Options { omit_mms_media: true, ..env.voipms.options() });
    let (gw, mut peer) = env.start_online();
    gw.wait_for_log("voipms-xmpp");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    env.voipms.set_clock(&rfc3339_utc(now - 5 * 60_000)).unwrap();
    let report = env.voipms.inbound(InboundRequest::mms(ALICE_DID, FRIEND, "", &["https://media.example.net/p.jpg"]));
    env.voipms.set_clock(&rfc3339_utc(now)).unwrap();
    let hosted = env.voipms.messages().into_iter().find(|m| m.id.to_string() == report.id).unwrap().media;
    let m = peer.next("the picture");
    assert_eq!(m.get_attr("to"), Some(ALICE));
    assert_eq!(m.get_child("body", ns::COMPONENT).unwrap().text_content(), hosted[0]);
    assert!(m.get_child("x", ns::OOB).is_some());
    assert_eq!(env.voipms.calls_for("getMediaMMS").iter().filter(|c| c.status == "success").count(), 1);
}
