//! Disk trouble: when the spool cannot be written, webhooks get 503 (VoIP.ms keeps the message)
//! and senders a `wait` error; the gateway recovers by itself when the disk does.

use super::chat;
use crate::support::harness::*;
use std::time::Duration;

#[test]
fn an_unwritable_spool_answers_503_and_wait_then_recovers() {
    let mut env = TestEnv::new("disk");
    let (gw, mut peer) = env.start_online();
    // Make the spool unwritable in a way that holds even for root: its journal directory is
    // moved aside and a file takes its place. A commit then fails (its segment is no longer
    // where the next start would read it), and so does the fresh segment it tries next.
    let journal = env.state_dir().join("spool/journal");
    let away = env.state_dir().join("spool/journal.away");
    std::fs::rename(&journal, &away).unwrap();
    std::fs::write(&journal, b"not a directory").unwrap();
    let (status, _) = gw.post_webhook(&webhook_body(FRIEND, ALICE_DID, "no room", &[]));
    assert_eq!(status, 503, "VoIP.ms should keep it");
    // It went out while the write was tried (VoIP.ms's retry may bring it again: a duplicate,
    // never a loss).
    peer.expect_message(ALICE, "no room");
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "w1", "cannot store"));
    let (cond, kind, _) = peer.expect_error("w1");
    assert_eq!((cond.as_str(), kind.as_str()), ("resource-constraint", "wait"));
    assert!(sends(&env).is_empty(), "nothing unstored is sent");
    // The disk is fine again.
    std::fs::remove_file(&journal).unwrap();
    std::fs::rename(&away, &journal).unwrap();
    let (status, body) = gw.post_webhook(&webhook_body(FRIEND, ALICE_DID, "room again", &[]));
    assert_eq!((status, body.as_str()), (200, "ok"));
    peer.expect_message(ALICE, "room again");
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "w2", "stored now"));
    env.voipms.wait_for_calls("sendSMS", 1, Duration::from_secs(15)).unwrap();
    peer.expect_nothing_for(Duration::from_millis(300));
}
