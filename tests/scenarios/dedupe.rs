//! A webhook delivered twice (same VoIP.ms message id) reaches the user once.

use crate::support::harness::*;
use mock_voipms::{InboundRequest, Options};
use std::time::Duration;

#[test]
fn a_webhook_delivered_twice_reaches_the_user_once() {
    let mut env = TestEnv::new("dedupe");
    let (_gw, mut peer) = env.start_online();
    env.voipms.set_options(Options { webhook_duplicate: true, ..env.voipms.options() });
    let report = env.voipms.inbound(InboundRequest::sms(ALICE_DID, FRIEND, "say it once"));
    assert_eq!(report.deliveries.len(), 2, "the mock delivered it twice");
    assert!(report.deliveries.iter().all(|d| d.http_status == Some(200)), "both acknowledged");
    peer.expect_message(ALICE, "say it once");
    peer.expect_nothing_for(Duration::from_millis(500));
}

#[test]
fn the_same_webhook_posted_concurrently_is_delivered_once() {
    let mut env = TestEnv::new("dedupe-race");
    let (gw, mut peer) = env.start_online();
    let body = webhook_body(FRIEND, ALICE_DID, "raced", &[]);
    let addr = gw.webhook;
    let posts: Vec<_> = (0..4)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || http_request(addr, "POST", &format!("/voipms?key={KEY}"), body.as_bytes()))
        })
        .collect();
    for p in posts {
        assert_eq!(p.join().unwrap(), (200, "ok".to_string()));
    }
    peer.expect_message(ALICE, "raced");
    peer.expect_nothing_for(Duration::from_millis(500));
}
