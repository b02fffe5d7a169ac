//! Chat states, receipts and markers never become SMS, and get no error either.

use super::chat;
use crate::support::harness::*;
use std::time::Duration;

#[test]
fn bodyless_stanzas_are_ignored() {
    let mut env = TestEnv::new("bodyless");
    let (_gw, mut peer) = env.start_online();
    let to = format!("+1{FRIEND}@{DOMAIN}");
    for payload in [
        "<composing xmlns='http://jabber.org/protocol/chatstates'/>",
        "<active xmlns='http://jabber.org/protocol/chatstates'/>",
        "<received xmlns='urn:xmpp:receipts' id='x1'/>",
        "<displayed xmlns='urn:xmpp:chat-markers:0' id='x1'/>",
        "<body>   </body>",
    ] {
        peer.send(&format!("<message type='chat' from='alice@example.com/phone' to='{to}'>{payload}</message>"));
    }
    // A stranger's chat state gets no error either.
    peer.send(&format!("<message type='chat' from='eve@example.com/x' to='{to}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "real", "the only text"));
    let calls = env.voipms.wait_for_calls("sendSMS", 1, Duration::from_secs(15)).unwrap();
    assert_eq!(calls[0].param("message"), Some("the only text"));
    assert_eq!(sends(&env).len(), 1);
    peer.expect_nothing_for(Duration::from_millis(300));
}
