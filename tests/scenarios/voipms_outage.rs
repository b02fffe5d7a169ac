//! VoIP.ms failing: transient errors retried, lost answers looked up, permanent errors at once,
//! retries that expire, the daily quota, and one failing number not holding up the others.

use super::chat;
use crate::support::harness::*;
use mock_voipms::Fault;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn sent_texts(env: &TestEnv) -> Vec<String> {
    env.voipms
        .calls_for("sendSMS")
        .into_iter()
        .filter(|c| c.status == "success")
        .filter_map(|c| c.param("message").map(str::to_string))
        .collect()
}

#[test]
fn http_500_and_garbage_are_looked_up_then_retried_until_they_succeed() {
    let mut env = TestEnv::new("outage-500");
    let (gw, mut peer) = env.start_online();
    env.voipms.inject(Fault::http_status("sendSMS", 2, 500));
    env.voipms.inject(Fault::non_json("sendSMS", 1, "<html>Bad gateway</html>"));
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "r1", "through the outage"));
    let calls = env
        .voipms
        .wait_for_calls_where(WAIT, |c| c.iter().any(|c| c.method == "sendSMS" && c.status == "success"))
        .expect("a success");
    let sends: Vec<&str> = calls.iter().filter(|c| c.method == "sendSMS").map(|c| c.status.as_str()).collect();
    assert_eq!(sends, vec!["http_500", "http_500", "non_json", "success"]);
    // Each answer that is not VoIP.ms's verdict is followed by a lookup before the resend.
    let methods: Vec<&str> = calls.iter().filter(|c| c.method != "getMMS").map(|c| c.method.as_str()).collect();
    assert_eq!(methods, ["sendSMS", "getSMS", "sendSMS", "getSMS", "sendSMS", "getSMS", "sendSMS"]);
    peer.expect_nothing_for(Duration::from_millis(300));
    assert_eq!(sent_texts(&env), vec!["through the outage".to_string()]);
    assert!(gw.log_text().contains("will look it up before any retry"));
}

#[test]
fn a_timeout_after_voipms_sent_it_is_looked_up_not_resent() {
    let mut env = TestEnv::new("outage-lost-answer");
    env.voipms_extra = r#", "timeout_secs": 1"#.into();
    let (gw, mut peer) = env.start_online();
    // VoIP.ms carries out the send but answers after our timeout.
    env.voipms.inject(Fault::delay("sendSMS", 1, 2500, true));
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "t1", "exactly once"));
    env.voipms
        .wait_for_calls_where(WAIT, |c| c.iter().any(|c| c.method == "getSMS" && c.status == "success"))
        .expect("a lookup that finds it");
    gw.wait_for_log("did go out: not sending it again");
    peer.expect_nothing_for(Duration::from_millis(500));
    assert_eq!(env.voipms.calls_for("sendSMS").len(), 1, "not sent twice");
    let stored: Vec<_> = env.voipms.messages().into_iter().filter(|m| m.message == "exactly once").collect();
    assert_eq!(stored.len(), 1);
}

#[test]
fn a_timeout_when_nothing_was_sent_is_resent() {
    let mut env = TestEnv::new("outage-timeout");
    env.voipms_extra = r#", "timeout_secs": 1"#.into();
    let (_gw, mut peer) = env.start_online();
    // The connection drops before VoIP.ms does anything.
    env.voipms.inject(Fault::close_connection("sendSMS", 1, false));
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "t2", "second try"));
    env.voipms
        .wait_for_calls_where(WAIT, |c| c.iter().any(|c| c.method == "sendSMS" && c.status == "success"))
        .unwrap();
    let methods: Vec<String> =
        env.voipms.calls().iter().filter(|c| c.method != "getMMS").map(|c| c.method.clone()).collect();
    assert_eq!(methods, vec!["sendSMS", "getSMS", "sendSMS"], "looked up before the resend");
    assert_eq!(sent_texts(&env), vec!["second try".to_string()]);
    peer.expect_nothing_for(Duration::from_millis(300));
}

#[test]
fn each_permanent_status_reaches_the_sender_at_once() {
    let mut env = TestEnv::new("outage-permanent");
    let (_gw, mut peer) = env.start_online();
    let cases = [
        ("invalid_dst", "item-not-found", "cancel"),
        ("sms_toolong", "not-acceptable", "modify"),
        ("message_empty", "not-acceptable", "modify"),
        ("invalid_credentials", "service-unavailable", "cancel"),
        ("ip_not_enabled", "service-unavailable", "cancel"),
        ("invalid_did", "service-unavailable", "cancel"),
        ("non_sufficient_funds", "service-unavailable", "cancel"),
        ("missing_method", "internal-server-error", "cancel"),
        ("something_new", "undefined-condition", "cancel"),
    ];
    for (n, (status, condition, kind)) in cases.iter().enumerate() {
        env.voipms.inject(Fault::status("sendSMS", 1, status));
        let id = format!("p{n}");
        peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), &id, "text"));
        let (cond, k, text) = peer.expect_error(&id);
        assert_eq!((cond.as_str(), k.as_str()), (*condition, *kind), "{status}");
        assert!(text.contains(status), "{status}: {text}");
    }
    assert_eq!(env.voipms.calls_for("sendSMS").len(), cases.len(), "none retried");
}

#[test]
fn retries_give_up_after_the_configured_time() {
    let mut env = TestEnv::new("outage-expiry");
    env.voipms_extra = r#", "retry_for_secs": 3"#.into();
    let (_gw, mut peer) = env.start_online();
    env.voipms.inject(Fault::http_status("sendSMS", 1000, 503));
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "x1", "never"));
    let (cond, kind, text) = peer.expect_error("x1");
    assert_eq!((cond.as_str(), kind.as_str()), ("remote-server-timeout", "wait"));
    assert!(text.contains("gave up"), "{text}");
    assert!(env.voipms.calls_for("sendSMS").len() >= 2, "it was retried first");
}

#[test]
fn the_daily_limit_is_reported_at_once_and_stops_sending() {
    let mut env = TestEnv::new("outage-quota");
    let (_gw, mut peer) = env.start_online();
    env.voipms.set_account(mock_voipms::AccountPatch::default().daily_limit(1));
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "d1", "the day's one"));
    env.voipms.wait_for_calls("sendSMS", 1, WAIT).unwrap();
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "d2", "one too many"));
    let (cond, kind, text) = peer.expect_error("d2");
    assert_eq!((cond.as_str(), kind.as_str()), ("resource-constraint", "wait"));
    assert!(text.contains("daily sending limit") && text.contains("midnight US Eastern"), "{text}");
    // Until the reset, nothing more is tried: refused without a call.
    peer.send(&chat("alice@example.com/phone", "+15557776666", "d3", "still today"));
    let (cond, _, _) = peer.expect_error("d3");
    assert_eq!(cond, "resource-constraint");
    assert_eq!(env.voipms.calls_for("sendSMS").len(), 2);
}

#[test]
fn a_failing_number_does_not_hold_up_the_others_nor_let_its_own_queue_jump() {
    let mut env = TestEnv::new("outage-order");
    env.voipms_extra = r#", "timeout_secs": 1"#.into();
    let (_gw, mut peer) = env.start_online();
    // The first send hangs past our timeout (and is not carried out).
    env.voipms.inject(Fault::delay("sendSMS", 1, 2500, false));
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "a1", "first to friend"));
    env.voipms.wait_for_calls("sendSMS", 1, WAIT).unwrap();
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "a2", "second to friend"));
    peer.send(&chat("alice@example.com/phone", "+15557776666", "b1", "to someone else"));
    env.voipms.wait_for_calls_where(WAIT, |c| c.iter().filter(|c| c.status == "success").count() == 3).unwrap();
    let order = sent_texts(&env);
    assert_eq!(order[0], "to someone else", "not held up: {order:?}");
    assert_eq!(&order[1..], ["first to friend", "second to friend"], "in order: {order:?}");
}

#[test]
fn a_proxy_error_after_voipms_sent_it_is_looked_up_not_resent() {
    // Regression (issue 6, defect 7): a 502 from a proxy after VoIP.ms had sent the SMS was
    // retried blind, and the SMS went out twice.
    let mut env = TestEnv::new("outage-proxy-502");
    let (gw, mut peer) = env.start_online();
    env.voipms.inject(Fault::http_status_after_success("sendSMS", 1, 502));
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "p1", "one SMS, not two"));
    env.voipms
        .wait_for_calls_where(WAIT, |c| c.iter().any(|c| c.method == "getSMS" && c.status == "success"))
        .expect("a lookup that finds it");
    gw.wait_for_log("did go out: not sending it again");
    peer.expect_nothing_for(Duration::from_millis(500));
    assert_eq!(env.voipms.calls_for("sendSMS").len(), 1, "not sent twice");
    let stored: Vec<_> = env.voipms.messages().into_iter().filter(|m| m.message == "one SMS, not two").collect();
    assert_eq!(stored.len(), 1);
}

#[test]
fn a_message_that_fails_after_a_restart_is_also_reported_to_the_bare_jid() {
    // Regression (issue 6, defect 8): a late error went only to the full JID the message came
    // from, which is usually gone by then. A chat notice to the bare JID is stored offline.
    let mut env = TestEnv::new("outage-late-notice");
    env.voipms_extra = r#", "retry_for_secs": 2"#.into();
    let (gw, mut peer) = env.start_online();
    env.voipms.inject(Fault::http_status("sendSMS", 1000, 503));
    peer.send(&chat("alice@example.com/phone", &format!("+1{FRIEND}"), "n1", "Dinner is at eight, not seven"));
    env.voipms.wait_for_calls("sendSMS", 1, WAIT).unwrap();
    assert!(gw.terminate().success());
    let (_gw, mut peer) = env.start_online();
    let (cond, kind, _) = peer.expect_error("n1");
    assert_eq!((cond.as_str(), kind.as_str()), ("remote-server-timeout", "wait"));
    let notice = peer.expect("a chat notice to the bare JID", |e| {
        e.is("message", voipms_xmpp::core::xmpp::ns::COMPONENT)
            && e.get_attr("type") == Some("chat")
            && e.get_attr("to") == Some(ALICE)
    });
    assert_eq!(notice.get_attr("from"), Some(format!("+1{FRIEND}@{DOMAIN}").as_str()));
    let body = notice.get_child("body", voipms_xmpp::core::xmpp::ns::COMPONENT).unwrap().text_content();
    assert!(body.contains("was not sent") && body.contains("Dinner is at eight"), "{body}");
    assert!(sent_texts(&env).is_empty());
}
