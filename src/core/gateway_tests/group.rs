//! Group MMS: one webhook naming several recipients reaches each mapped user among them once,
//! with XEP-0033 addresses; a reply to several recipients is refused.

use super::*;

const OUTSIDER: &str = "5552223333";

fn group_message(id: &str, to: &[&str]) -> InboundMessage {
    InboundMessage {
        id: Some(id.into()),
        from: Sender::Nanp(Nanp::parse("5559998888").unwrap()),
        to: to.iter().map(|d| Nanp::parse(d).unwrap()).collect(),
        text: "hi all".into(),
        media: vec!["https://m/x.jpg".into()],
        received_at: None,
        mms: true,
    }
}

fn ids(actions: &[Action]) -> Vec<String> {
    spooled(actions).iter().map(|r| r.id.clone()).collect()
}

#[test]
fn a_group_mms_reaches_each_mapped_recipient_once_with_the_group_named() {
    let mut sim = Sim::new();
    sim.online();
    // Alice's DID, both of bob's, and a number that is not ours.
    let message = group_message("g1", &["5552345678", "5553334444", OUTSIDER, "5557654321"]);
    let a = sim.input(Input::Webhook { token: 1, message });
    let records = spooled(&a);
    assert_eq!(records.len(), 2, "alice once, bob once: {records:?}");
    let (alice, bob) = (records[0].inbound.clone().unwrap(), records[1].inbound.clone().unwrap());
    assert_eq!((alice.user.as_str(), alice.contact.as_str()), ("alice@example.com", "+15559998888"));
    assert_eq!(alice.group, vec!["+15553334444", "+15552223333", "+15557654321"]);
    // Bob through his default DID (listed last), so the plain contact form.
    assert_eq!(
        (bob.user.as_str(), bob.contact.as_str(), bob.did.as_str()),
        ("bob@example.com", "+15559998888", "5557654321")
    );
    assert_eq!(bob.group, vec!["+15552345678", "+15553334444", "+15552223333"]);
    // Delivered while the records are written; answered once both are durable, not before.
    let w = writes(&a);
    let first = sim.input(Input::SpoolSynced(vec![records[0].id.clone()]));
    assert!(!first.iter().any(|x| matches!(x, Action::WebhookReply { .. })), "{first:?}");
    let done = sim.input(Input::SpoolSynced(vec![records[1].id.clone()]));
    assert!(done.contains(&Action::WebhookReply { token: 1, reply: WebhookReply::Accepted }));
    let to_alice: Vec<&String> = w.iter().filter(|s| s.contains("to='alice@example.com'")).collect();
    assert_eq!(to_alice.len(), 2, "the text and the picture: {w:?}");
    for stanza in &to_alice {
        assert!(
            stanza.contains(
                "<addresses xmlns='http://jabber.org/protocol/address'><address type='to' jid='alice@example.com'/>\
                 <address type='to' uri='sms:+15553334444' delivered='true'/>\
                 <address type='to' uri='sms:+15552223333' delivered='true'/>\
                 <address type='to' uri='sms:+15557654321' delivered='true'/></addresses>"
            ),
            "{stanza}"
        );
        assert!(stanza.contains("from='+15559998888@sms.example.com'"));
    }
    assert!(w.iter().any(|s| s.contains("to='bob@example.com'") && s.contains("jid='bob@example.com'")));
    assert!(!sim.log.iter().any(|l| l.contains("5552223333") || l.contains("hi all")), "{:?}", sim.log);
}

#[test]
fn a_repeated_group_webhook_reaches_each_user_once() {
    let mut sim = Sim::new();
    sim.online();
    let to = ["5552345678", "5557654321"];
    let a = sim.input(Input::Webhook { token: 1, message: group_message("g2", &to) });
    assert_eq!(spooled(&a).len(), 2);
    // Again while it is being written: it waits for the same records.
    let again = sim.input(Input::Webhook { token: 2, message: group_message("g2", &to) });
    assert!(spooled(&again).is_empty() && !again.iter().any(|x| matches!(x, Action::WebhookReply { .. })));
    let done = sim.input(Input::SpoolSynced(ids(&a)));
    assert!(done.contains(&Action::WebhookReply { token: 1, reply: WebhookReply::Accepted }));
    assert!(done.contains(&Action::WebhookReply { token: 2, reply: WebhookReply::Accepted }));
    // And once it is remembered: answered at once, nothing written.
    let late = sim.input(Input::Webhook { token: 3, message: group_message("g2", &to) });
    assert_eq!(late, vec![Action::WebhookReply { token: 3, reply: WebhookReply::Accepted }]);
    // One delivery each (text and picture), made while the first copy was being written.
    let w: Vec<String> = [&a, &again, &done].iter().flat_map(|x| writes(x)).collect();
    assert_eq!(w.iter().filter(|s| s.contains("<body>hi all</body>")).count(), 2, "{w:?}");
}

#[test]
fn a_user_reached_only_through_a_second_did_gets_that_contact_form() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.input(Input::Webhook { token: 1, message: group_message("g3", &["5553334444", OUTSIDER]) });
    let records = spooled(&a);
    assert_eq!(records.len(), 1);
    let bob = records[0].inbound.clone().unwrap();
    assert_eq!(
        (bob.contact.as_str(), bob.group.clone()),
        ("+15559998888%+15553334444", vec!["+15552223333".to_string()])
    );
}

#[test]
fn one_record_not_written_answers_503_and_every_copy_is_still_delivered() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.input(Input::Webhook { token: 1, message: group_message("g4", &["5552345678", "5557654321"]) });
    let w = writes(&a);
    assert!(
        w.iter().any(|w| w.contains("to='alice@example.com'")) && w.iter().any(|w| w.contains("to='bob@example.com'"))
    );
    let records = ids(&a);
    sim.input(Input::SpoolSynced(vec![records[0].clone()]));
    let a = sim.input(Input::SpoolFailed { ids: vec![records[1].clone()], reason: "disk full".into() });
    assert!(a.contains(&Action::WebhookReply { token: 1, reply: WebhookReply::Unavailable }), "{a:?}");
    // Not remembered: VoIP.ms's retry is taken in again (bob's copy is not lost).
    let retry = sim.input(Input::Webhook { token: 2, message: group_message("g4", &["5552345678", "5557654321"]) });
    assert_eq!(spooled(&retry).len(), 2);
}

#[test]
fn a_reply_to_several_recipients_is_refused_and_nothing_is_sent() {
    let mut sim = Sim::new();
    sim.online();
    for to in ["sms.example.com", "+15559998888@sms.example.com"] {
        let a = sim.bytes(&format!(
            "<message type='chat' id='r1' from='alice@example.com/phone' to='{to}'><addresses xmlns='http://jabber.org/protocol/address'><address type='to' uri='sms:+15559998888'/><address type='to' uri='sms:+15552223333'/></addresses><body>reply all</body></message>"
        ));
        assert!(spooled(&a).is_empty() && calls(&a).is_empty(), "{to}: {a:?}");
        let w = writes(&a);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("type='error'") && w[0].contains("id='r1'") && w[0].contains("<feature-not-implemented "),
            "{}",
            w[0]
        );
        assert!(w[0].contains("type='cancel'") && w[0].contains("cannot send group messages"), "{}", w[0]);
        assert!(w[0].contains(&format!("from='{to}'")), "{}", w[0]);
    }
}
