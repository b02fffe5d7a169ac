//! Presence through the gateway (`core::presence`): the domain at connect and at shutdown, and
//! subscriptions answered for mapped users only.

use super::*;

#[test]
fn at_every_connect_the_domain_is_available_to_every_mapped_user() {
    let mut sim = Sim::new();
    let a = sim.online();
    let p = presences(&a);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].starts_with(
        "<presence from='sms.example.com' to='alice@example.com'><c xmlns='http://jabber.org/protocol/caps'"
    ));
    assert!(p[1].contains("to='bob@example.com'") && p[1].contains("ver='pQr8xHmIkmHt3yiFjGH4MJU7a1o='"));
    // Again on the next stream.
    sim.input(Input::XmppClosed("reset".into()));
    sim.advance(Duration::from_secs(2));
    assert_eq!(presences(&sim.connect()).len(), 2);
}

#[test]
fn subscriptions_are_answered_for_mapped_users_only() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.bytes("<presence type='subscribe' from='alice@example.com' to='+15559998888@sms.example.com'/>");
    let p = presences(&a);
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(p[0], "<presence type='subscribed' from='+15559998888@sms.example.com' to='alice@example.com'/>");
    assert!(p[1].starts_with("<presence from='+15559998888@sms.example.com' to='alice@example.com'><c "), "{}", p[1]);
    let a = sim.bytes("<presence type='probe' from='bob@example.com' to='sms.example.com'/>");
    assert_eq!(presences(&a).len(), 1);
    let a = sim.bytes("<presence type='unsubscribe' from='alice@example.com' to='sms.example.com'/>");
    assert_eq!(
        presences(&a),
        vec![
            "<presence type='unsubscribed' from='sms.example.com' to='alice@example.com'/>".to_string(),
            "<presence type='unavailable' from='sms.example.com' to='alice@example.com'/>".to_string(),
        ]
    );
    // A stranger's subscription is denied; its probe is not answered.
    let a = sim.bytes("<presence type='subscribe' from='eve@example.org/x' to='sms.example.com'/>");
    assert_eq!(
        presences(&a),
        vec!["<presence type='unsubscribed' from='sms.example.com' to='eve@example.org'/>".to_string()]
    );
    assert!(sim.bytes("<presence type='probe' from='eve@example.org' to='sms.example.com'/>").is_empty());
    // Presence for another domain is not ours to answer (its `from` would be foreign).
    assert!(sim.bytes("<presence type='subscribe' from='alice@example.com' to='x@other.example.com'/>").is_empty());
    // Nothing here ever reaches VoIP.ms or the spool.
    assert!(calls(&a).is_empty() && spooled(&a).is_empty());
}

#[test]
fn a_clean_shutdown_says_the_domain_is_unavailable_before_closing_the_stream() {
    let mut sim = Sim::new();
    sim.online();
    let a = sim.input(Input::Shutdown);
    assert_eq!(
        all_writes(&a),
        vec![
            "<presence type='unavailable' from='sms.example.com' to='alice@example.com'/>".to_string(),
            "<presence type='unavailable' from='sms.example.com' to='bob@example.com'/>".to_string(),
            "</stream:stream>".to_string(),
        ]
    );
    // Once only, though the loop runs on until the server closes too.
    let a = sim.bytes("<presence type='probe' from='alice@example.com' to='sms.example.com'/>");
    assert!(presences(&a).is_empty(), "closing: nothing more is written");
    let a = sim.bytes("</stream:stream>");
    assert!(presences(&a).is_empty() && a.last() == Some(&Action::Stopped), "{a:?}");
}
