//! XEP-0184 receipts for users' messages (`core::receipts`), and what never becomes an SMS.

use super::*;

/// A chat from alice asking for a receipt.
fn asking(sim: &mut Sim, id: &str, body: &str) -> Vec<Action> {
    sim.bytes(&format!(
        "<message type='chat' id='{id}' from='alice@example.com/phone' to='+15559998888@sms.example.com'><body>{body}</body><request xmlns='urn:xmpp:receipts'/></message>"
    ))
}

fn receipts(actions: &[Action]) -> Vec<String> {
    writes(actions).into_iter().filter(|w| w.contains("<received ")).collect()
}

const RECEIPT: &str = "<message id='boot-1-r' from='+15559998888@sms.example.com' to='alice@example.com/phone'><received xmlns='urn:xmpp:receipts' id='m1'/></message>";

#[test]
fn a_receipt_follows_the_last_part_never_an_earlier_one() {
    let mut sim = Sim::new();
    sim.online();
    let text: String = (0..900).map(|i| format!("w{i:03} ")).collect(); // 3 parts
    let a = asking(&mut sim, "m1", &text);
    assert!(spooled(&a)[0].outbound.as_ref().unwrap().receipt, "the request is stored");
    let mut a = sim.sync_all(&a);
    for part in 0..3 {
        let job = calls(&a)[0].0;
        a = sim.input(Input::VoipmsResult { job, outcome: success() });
        if part < 2 {
            assert!(receipts(&a).is_empty(), "not after part {}", part + 1);
            a = sim.sync_all(&a);
            assert!(receipts(&a).is_empty());
        }
    }
    // Owed durably first: the finished record is rewritten, then the receipt goes out.
    let owed = spooled(&a);
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].outbound.as_ref().unwrap().next_part, 3);
    assert_eq!(receipts(&a), vec![RECEIPT.to_string()]);
    assert!(removed(&a).is_empty(), "not gone before the server confirms it");
    let a = sim.answer_pings(&a);
    assert_eq!(removed(&a), vec!["boot-1".to_string()]);
}

#[test]
fn no_receipt_unless_asked_with_an_id_nor_after_a_failure() {
    let mut sim = Sim::new();
    sim.online();
    // Not asked.
    let (job, _) = send_one(&mut sim, "+15559998888", "m0", "plain");
    let a = sim.input(Input::VoipmsResult { job, outcome: success() });
    assert!(receipts(&a).is_empty() && spooled(&a).is_empty());
    assert_eq!(removed(&a), vec!["boot-1".to_string()]);
    // Asked without an id: nothing to name.
    let a = sim.bytes("<message type='chat' from='alice@example.com/phone' to='+15559998888@sms.example.com'><body>no id</body><request xmlns='urn:xmpp:receipts'/></message>");
    assert!(!spooled(&a)[0].outbound.as_ref().unwrap().receipt);
    let a = sim.sync_all(&a);
    let a = sim.input(Input::VoipmsResult { job: calls(&a)[0].0, outcome: success() });
    assert!(receipts(&a).is_empty());
    // Asked, and it fails: the error goes, and no receipt.
    let a = asking(&mut sim, "m3", "doomed");
    let a = sim.sync_all(&a);
    let a = sim.input(Input::VoipmsResult { job: calls(&a)[0].0, outcome: status("invalid_dst") });
    let w = writes(&a);
    assert!(w[0].contains("type='error'") && w[0].contains("id='m3'"), "{w:?}");
    assert!(receipts(&a).is_empty());
}

#[test]
fn a_receipt_owed_while_the_stream_is_down_goes_out_on_the_next_one() {
    let mut sim = Sim::new();
    sim.online();
    let a = asking(&mut sim, "m1", "through an outage");
    let a = sim.sync_all(&a);
    let job = calls(&a)[0].0;
    sim.input(Input::XmppClosed("reset".into()));
    let a = sim.input(Input::VoipmsResult { job, outcome: success() });
    assert!(receipts(&a).is_empty() && writes(&a).is_empty(), "offline: nothing written");
    assert_eq!(spooled(&a).len(), 1, "but owed on disk");
    sim.advance(Duration::from_secs(2));
    let a = sim.connect();
    assert_eq!(receipts(&a), vec![RECEIPT.to_string()]);
    // A stream lost before the ping answer: written again on the next stream.
    sim.input(Input::XmppClosed("reset".into()));
    sim.advance(Duration::from_secs(4));
    let a = sim.connect();
    assert_eq!(receipts(&a), vec![RECEIPT.to_string()]);
    assert_eq!(removed(&sim.answer_pings(&a)), vec!["boot-1".to_string()]);
}

#[test]
fn a_receipt_owed_at_a_restart_is_delivered_after_it() {
    let mut first = Sim::new();
    first.online();
    let a = asking(&mut first, "m1", "before the crash");
    let a = first.sync_all(&a);
    first.pong = false;
    let a = first.input(Input::VoipmsResult { job: calls(&a)[0].0, outcome: success() });
    let owed = spooled(&a);
    // The process dies before the ping answer: on disk is the finished record.
    let mut sim = Sim::new();
    sim.gw.restore(owed, "", sim.now);
    sim.drain();
    assert!(sim.log.iter().any(|l| l.contains("1 to deliver over XMPP, 0 to send to VoIP.ms")), "{:?}", sim.log);
    let a = sim.online();
    assert_eq!(receipts(&a), vec![RECEIPT.to_string()]);
    assert!(calls(&a).is_empty(), "not sent again");
    assert_eq!(removed(&sim.answer_pings(&a)), vec!["boot-1".to_string()]);
}

#[test]
fn chat_states_markers_and_receipts_from_users_never_become_sms() {
    let mut sim = Sim::new();
    sim.online();
    for payload in [
        "<composing xmlns='http://jabber.org/protocol/chatstates'/>",
        "<paused xmlns='http://jabber.org/protocol/chatstates'/>",
        "<gone xmlns='http://jabber.org/protocol/chatstates'/>",
        "<displayed xmlns='urn:xmpp:chat-markers:0' id='in-1'/>",
        "<markable xmlns='urn:xmpp:chat-markers:0'/><active xmlns='http://jabber.org/protocol/chatstates'/>",
        "<received xmlns='urn:xmpp:receipts' id='boot-7'/>",
        "<request xmlns='urn:xmpp:receipts'/>",
    ] {
        for from in ["alice@example.com/phone", "eve@example.org/x"] {
            let a = sim.bytes(&format!(
                "<message type='chat' id='cs' from='{from}' to='+15559998888@sms.example.com'>{payload}</message>"
            ));
            assert!(a.is_empty(), "{payload} from {from}: nothing spooled, sent or answered: {a:?}");
        }
    }
}
