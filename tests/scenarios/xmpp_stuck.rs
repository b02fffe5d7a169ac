//! A server that stops reading cannot grow the gateway's memory (issue 9): the mailbox writes at
//! most its window before a ping answer, the stream is declared dead when the ping is not
//! answered, and everything unconfirmed goes out on the next stream.

use crate::support::harness::*;

#[test]
fn a_server_that_stops_reading_gets_a_window_then_is_dropped_and_nothing_is_lost() {
    let mut env = TestEnv::new("xmpp-stuck");
    env.xmpp_extra = r#", "keepalive_secs": 2"#.into();
    let (gw, stuck) = env.start_online();
    // `stuck` is never read from again. 6 MB of texts: more than the window (1 MiB) and the
    // write queue's bound (4 MiB); all are accepted, none is queued beyond the window.
    let text = "x".repeat(60_000);
    let posted = 100;
    for _ in 0..posted {
        assert_eq!(gw.post_webhook(&webhook_body(FRIEND, ALICE_DID, &text, &[])).0, 200);
    }
    gw.wait_for_log("reconnecting");
    assert!(!gw.log_text().contains("stopped reading"), "the window kept the queue under its bound");
    let mut peer = env.xmpp.accept();
    let mut delivered = std::collections::HashSet::new();
    while delivered.len() < posted {
        let m = peer.expect("a delivery", |e| e.name() == "message");
        assert_eq!(m.get_attr("to"), Some(ALICE));
        delivered.insert(m.get_attr("id").unwrap_or_default().to_string());
    }
    drop(stuck);
}
