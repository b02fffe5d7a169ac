//! A backlog larger than the gateway holds in memory (`core::mailbox`, paging): spooled during
//! an XMPP outage and across a kill -9, then delivered in order per contact, each once.

use crate::support::harness::*;
use crate::support::xmpp_peer::XmppServer;
use std::collections::HashMap;
use std::time::Duration;
use voipms_xmpp::core::mailbox::HOLD_MAX;
use voipms_xmpp::core::xmpp::ns;

const CONTACTS: [&str; 3] = [FRIEND, "5551112222", "5554445555"];

fn post(gw: &Gateway, i: usize) {
    let contact = CONTACTS[i % CONTACTS.len()];
    let text = format!("{contact}-{}", i / CONTACTS.len());
    let (status, _) = gw.post_webhook(&webhook_body(contact, ALICE_DID, &text, &[]));
    assert_eq!(status, 200, "message {i} accepted while XMPP is down");
}

#[test]
fn a_backlog_beyond_memory_survives_a_kill_and_arrives_in_order_per_contact() {
    let mut env = TestEnv::new("backlog");
    // Nothing listens where the gateway connects: every attempt is refused.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    env.xmpp_server = addr;
    let n = 2 * HOLD_MAX + 300;
    let gw = env.start();
    gw.wait_for_log("cannot connect to the XMPP server");
    for i in 0..n / 2 {
        post(&gw, i);
    }
    gw.kill9();
    // The next run holds only part of the backlog and must read the rest back from the spool.
    let gw = env.start();
    gw.wait_for_log("to deliver over XMPP");
    for i in n / 2..n {
        post(&gw, i);
    }
    env.xmpp = XmppServer::bind_at(addr, DOMAIN, SECRET);
    let mut peer = env.xmpp.accept_within(Duration::from_secs(70));
    let mut next: HashMap<String, usize> = HashMap::new();
    for _ in 0..n {
        let m = peer.next("a text of the backlog");
        let body = m.get_child("body", ns::COMPONENT).expect("a text").text_content();
        let (contact, k) = body.split_once('-').expect("contact-number");
        let expected = next.entry(contact.to_string()).or_insert(0);
        assert_eq!(k.parse::<usize>().unwrap(), *expected, "in order for {contact}, each once");
        *expected += 1;
    }
    let total: usize = next.values().sum();
    assert_eq!(total, n, "every message arrived");
    peer.expect_nothing_for(Duration::from_millis(500));
    drop(gw);
}
