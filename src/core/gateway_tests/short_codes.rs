//! Short codes (5–6 digits) as contacts, both ways.

use super::*;

#[test]
fn a_text_from_a_short_code_comes_from_its_own_contact_jid() {
    let mut sim = Sim::new();
    sim.online();
    let message = InboundMessage {
        id: Some("sc1".into()),
        from: Sender::parse("72345").unwrap(),
        to: vec![Nanp::parse("5552345678").unwrap()],
        text: "Your code is 123456".into(),
        media: Vec::new(),
        received_at: None,
        mms: false,
    };
    let a = sim.input(Input::Webhook { token: 1, message });
    let a = sim.sync_all(&a);
    let w = writes(&a);
    assert!(
        w[0].starts_with("<message type='chat' id='boot-1' from='72345@sms.example.com' to='alice@example.com'>"),
        "{w:?}"
    );
    assert!(!sim.log.iter().any(|l| l.contains("72345")), "logs show the last four digits only: {:?}", sim.log);
}

#[test]
fn a_message_to_a_short_code_is_sent_to_it() {
    let mut sim = Sim::new();
    sim.online();
    let (job, request) = send_one(&mut sim, "12345", "s1", "STOP");
    assert_eq!(request.method(), "sendSMS");
    let params = request.params();
    assert!(
        params.contains(&("dst", "12345".to_string())) && params.contains(&("did", "5552345678".to_string())),
        "{params:?}"
    );
    let a = sim.input(Input::VoipmsResult { job, outcome: success() });
    assert_eq!(removed(&a), vec!["boot-1".to_string()]);
    assert!(writes(&a).is_empty(), "no error");
    // Through another of bob's DIDs too.
    let a = sim.chat("bob@example.com/phone", "654321%+15553334444", "s2", "HELP");
    let a = sim.sync_all(&a);
    let params = calls(&a)[0].1.params();
    assert!(
        params.contains(&("dst", "654321".to_string())) && params.contains(&("did", "5553334444".to_string())),
        "{params:?}"
    );
}

#[test]
fn a_short_code_voipms_refuses_is_a_clear_error() {
    let mut sim = Sim::new();
    sim.online();
    let (job, _) = send_one(&mut sim, "12345", "s1", "STOP");
    let a = sim.input(Input::VoipmsResult { job, outcome: status("invalid_dst") });
    let w = writes(&a);
    assert!(w[0].contains("id='s1'") && w[0].contains("from='12345@sms.example.com'"), "{w:?}");
    assert!(w[0].contains("<item-not-found ") && w[0].contains("type='cancel'"), "{}", w[0]);
    assert!(
        w[0].contains(
            "VoIP.ms did not accept the short code 12345; VoIP.ms may not support texting short codes (invalid_dst)"
        ),
        "{}",
        w[0]
    );
    assert!(calls(&sim.advance(Duration::from_secs(3600))).is_empty(), "not retried");
}

#[test]
fn codes_of_other_lengths_are_not_sent() {
    let mut sim = Sim::new();
    sim.online();
    for (n, to) in ["1234", "1234567"].iter().enumerate() {
        let a = sim.chat("alice@example.com/phone", to, &format!("x{n}"), "hi");
        assert!(spooled(&a).is_empty() && calls(&a).is_empty());
        assert!(writes(&a)[0].contains("item-not-found"), "{to}: {a:?}");
    }
}
