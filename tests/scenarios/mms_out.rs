//! OOB attachments become sendMMS media; a body that only repeats the URL is not sent as text.

use crate::support::harness::*;
use std::time::Duration;

fn with_oob(id: &str, body: &str, urls: &[&str]) -> String {
    let oob: String = urls.iter().map(|u| format!("<x xmlns='jabber:x:oob'><url>{u}</url></x>")).collect();
    format!(
        "<message type='chat' id='{id}' from='alice@example.com/phone' to='+1{FRIEND}@{DOMAIN}'><body>{body}</body>{oob}</message>"
    )
}

#[test]
fn mms_out_with_an_uploaded_picture() {
    let mut env = TestEnv::new("mms-out");
    let (_gw, mut peer) = env.start_online();
    let url = "https://upload.example.com/abc/photo.jpg";
    peer.send(&with_oob("p1", url, &[url]));
    let calls = env.voipms.wait_for_calls("sendMMS", 1, Duration::from_secs(15)).expect("sendMMS");
    assert_eq!(calls[0].param("did"), Some(ALICE_DID));
    assert_eq!(calls[0].param("dst"), Some(FRIEND));
    assert_eq!(calls[0].param("media1"), Some(url));
    assert_eq!(calls[0].param("message").unwrap_or(""), "");
    assert_eq!(calls[0].status, "success");
    peer.send(&with_oob("p2", &format!("two pictures {url}"), &[url, "https://upload.example.com/2.png"]));
    let calls = env.voipms.wait_for_calls("sendMMS", 2, Duration::from_secs(15)).expect("second sendMMS");
    assert_eq!(calls[1].param("message"), Some("two pictures"));
    assert_eq!(calls[1].param("media2"), Some("https://upload.example.com/2.png"));
    assert!(env.voipms.calls_for("sendSMS").is_empty());
    peer.expect_nothing_for(Duration::from_millis(300));
}

#[test]
fn four_attachments_or_encrypted_files_are_refused() {
    let mut env = TestEnv::new("mms-out-bad");
    let (_gw, mut peer) = env.start_online();
    let urls = ["https://u/1", "https://u/2", "https://u/3", "https://u/4"];
    peer.send(&with_oob("p4", "", &urls));
    let (cond, kind, _) = peer.expect_error("p4");
    assert_eq!((cond.as_str(), kind.as_str()), ("not-acceptable", "modify"));
    peer.send(&with_oob("p5", "aesgcm://u/x.jpg#key", &["aesgcm://u/x.jpg#key"]));
    let (cond, _, text) = peer.expect_error("p5");
    assert_eq!(cond, "not-acceptable");
    assert!(text.contains("encrypted"), "{text}");
    assert!(sends(&env).is_empty());
}
