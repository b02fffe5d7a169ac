//! An MMS arrives as one message for the text and one per picture (body = URL, plus OOB).

use crate::support::harness::*;
use mock_voipms::InboundRequest;
use voipms_xmpp::core::xmpp::ns;

#[test]
fn mms_in_text_and_each_media_url() {
    let mut env = TestEnv::new("mms-in");
    let (_gw, mut peer) = env.start_online();
    let media = ["https://media.example.net/a.jpg", "https://media.example.net/b.png"];
    let report = env.voipms.inbound(InboundRequest::mms(ALICE_DID, FRIEND, "look", &media));
    assert_eq!(report.deliveries[0].http_status, Some(200));
    // VoIP.ms re-hosts media: the URLs users get are the ones in the webhook.
    let hosted = hosted_media(&env, &report.id);
    assert_eq!(hosted.len(), 2);
    let text = peer.next("the text");
    assert_eq!(text.get_child("body", ns::COMPONENT).unwrap().text_content(), "look");
    for url in &hosted {
        let m = peer.next("a media message");
        assert_eq!(m.get_attr("to"), Some(ALICE));
        assert_eq!(&m.get_child("body", ns::COMPONENT).unwrap().text_content(), url);
        let oob = m.get_child("x", ns::OOB).expect("OOB").get_child("url", ns::OOB).unwrap().text_content();
        assert_eq!(&oob, url);
    }
}

#[test]
fn a_picture_without_text_is_only_the_picture() {
    let mut env = TestEnv::new("mms-in-nocap");
    let (_gw, mut peer) = env.start_online();
    let report = env.voipms.inbound(InboundRequest::mms(ALICE_DID, FRIEND, "", &["https://media.example.net/c.jpg"]));
    let hosted = hosted_media(&env, &report.id);
    let m = peer.next("the picture");
    assert_eq!(m.get_child("body", ns::COMPONENT).unwrap().text_content(), hosted[0]);
    peer.expect_nothing_for(std::time::Duration::from_millis(300));
}

fn hosted_media(env: &TestEnv, id: &str) -> Vec<String> {
    env.voipms.messages().into_iter().find(|m| m.id.to_string() == id).expect("the stored MMS").media
}
