//! Inbound simulation, URL callback and JSON webhook delivery, retries on the mock clock, and
//! the JSON control API.

mod common;

use std::time::Duration;

use common::*;
use mock_voipms::json::Value;
use mock_voipms::{DidConfig, InboundRequest, MockConfig, MockVoipms, Options};

fn with_did(did: DidConfig, options: Options) -> MockVoipms {
    let mut config = MockConfig::for_tests(&[]).with_fixed_clock(T0);
    config.dids.push(did);
    config.options = options;
    start(config)
}

fn body_json(h: &HookRequest) -> Value {
    Value::parse(&h.body).unwrap_or_else(|e| panic!("webhook body not JSON ({e}): {}", h.body))
}

#[test]
fn json_webhook_exact_shape_and_basic_auth() {
    let hook = Hook::start(&[(200, "ok")]);
    let url = format!("http://voipms:p%40ss@{}/voipms?key=k", hook.addr);
    let mock = with_did(DidConfig::new(DID).with_webhook(&url), Options::default());
    let report = mock.inbound(InboundRequest::sms(DID, CONTACT, "hi \"there\"\n😀"));
    assert_eq!((report.id.as_str(), report.kind.as_str()), ("100000000", "sms"));

    let reqs = hook.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/voipms?key=k");
    assert_eq!(r.headers.get("content-type").map(String::as_str), Some("application/json"));
    assert_eq!(r.headers.get("authorization").map(String::as_str), Some("Basic dm9pcG1zOnBAc3M="));
    let expected = concat!(
        r#"{"data":{"id":"6d6f636b-766f-4970-8000-000000000001","event_type":"message.received","#,
        r#""record_type":"event","occurred_at":"2025-07-20T16:00:00Z","#,
        r#""payload":{"id":"100000000","record_type":"message","direction":"inbound","type":"SMS","#,
        r#""from":{"phone_number":"5145550100"},"to":[{"phone_number":"5551234567"}],"#,
        r#""text":"hi \"there\"\n😀","media":[],"received_at":"2025-07-20T16:00:00Z"}}}"#
    );
    assert_eq!(r.body, expected);
    assert_eq!(
        body_json(r).get("data").unwrap().get("payload").unwrap().get("text").unwrap().as_str(),
        Some("hi \"there\"\n😀")
    );

    let d = &report.deliveries[0];
    assert_eq!(report.deliveries.len(), 1);
    assert_eq!(d.mechanism, "webhook");
    assert_eq!(d.url, url, "the record keeps userinfo and key");
    assert_eq!((d.attempt, d.http_status, d.acked), (1, Some(200), true));
    assert_eq!(d.response_body, "ok");
    assert_eq!(d.request_body, expected);
    assert_eq!(d.message_id, "100000000");
    assert_eq!(d.error, None);
    assert_eq!(mock.deliveries(), report.deliveries);

    let m = &mock.messages()[0];
    assert_eq!((m.r#type, m.did.as_str(), m.contact.as_str()), (1, DID, CONTACT));
    assert_eq!(m.date, "2025-07-20 12:00:00");
}

#[test]
fn mms_webhook_media_and_e164() {
    let hook = Hook::start(&[(204, "")]);
    let mock = with_did(DidConfig::new(DID).with_webhook(&hook.url("/in")).with_dialmode(2), Options::default());
    let png = "data:image/png;base64,iVBORw0KGgo=";
    let req = InboundRequest {
        did: DID.into(),
        from: CONTACT.into(),
        text: String::new(),
        media: vec![png.into(), "https://example.com/cat.jpg".into()],
        kind: None,
        to: Vec::new(),
    };
    let report = mock.inbound(req);
    assert_eq!((report.id.as_str(), report.kind.as_str()), ("200000000", "mms"));
    assert!(report.deliveries[0].acked, "any 2xx acks a webhook");
    let v = body_json(&hook.requests()[0]);
    let p = v.get("data").unwrap().get("payload").unwrap();
    assert_eq!(s(p, "type"), "MMS");
    assert_eq!(s(p, "text"), "");
    assert_eq!(s(p.get("from").unwrap(), "phone_number"), "+15145550100");
    assert_eq!(s(&p.get("to").unwrap().as_array().unwrap()[0], "phone_number"), "+15551234567");
    let media: Vec<&str> = p.get("media").unwrap().as_array().unwrap().iter().map(|m| s(m, "url")).collect();
    let base = mock.base_url();
    assert_eq!(media, [format!("{base}/media/200000000/1/media.png"), format!("{base}/media/200000000/2/media.jpg")]);
    // The same media through getMMS and getMediaMMS.
    let row = &api(&mock, "getMMS", &[]).get("sms").unwrap().as_array().unwrap()[0].clone();
    assert_eq!(s(row, "col_media2"), media[1]);
    assert_eq!(s(row, "type"), "1");
    assert_eq!(s(row, "contact"), "+15145550100");
}

#[test]
fn webhook_switches() {
    let hook = Hook::start(&[(200, "")]);
    let did = DidConfig::new(DID).with_webhook(&hook.url("/w"));
    let o = Options { webhook_minimal: true, ..Default::default() };
    let mock = with_did(did.clone(), o);
    mock.inbound(InboundRequest::sms(DID, CONTACT, "hi"));
    assert_eq!(
        hook.requests()[0].body,
        r#"{"data":{"payload":{"from":{"phone_number":"5145550100"},"to":[{"phone_number":"5551234567"}],"text":"hi","media":[]}}}"#
    );

    let o = Options {
        webhook_telnyx_extras: true,
        webhook_extra_to: true,
        webhook_numbers_e164: true,
        webhook_duplicate: true,
        ..Default::default()
    };
    mock.set_options(o);
    let report = mock.inbound(InboundRequest::mms(DID, "12345", "hi", &["https://example.com/a.gif"]));
    assert_eq!(report.deliveries.len(), 2);
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[1].body, reqs[2].body, "a duplicate is the same event");
    let v = body_json(&reqs[1]);
    assert_eq!(keys(&v), ["data", "meta"]);
    let p = v.get("data").unwrap().get("payload").unwrap();
    assert_eq!(keys(p.get("from").unwrap()), ["phone_number", "carrier", "line_type"]);
    assert_eq!(s(p.get("from").unwrap(), "phone_number"), "12345", "short codes stay as they are");
    let to = p.get("to").unwrap().as_array().unwrap();
    assert_eq!(to.len(), 2);
    assert_eq!(s(&to[0], "phone_number"), "+15551234567");
    assert_eq!(keys(&to[1]), ["phone_number", "status"]);
    assert_eq!(keys(&p.get("media").unwrap().as_array().unwrap()[0]), ["url", "content_type"]);
}

#[test]
fn a_group_message_lists_its_other_recipients_after_the_did() {
    let hook = Hook::start(&[(200, ""), (200, "")]);
    let mock = with_did(DidConfig::new(DID).with_webhook(&hook.url("/g")).with_dialmode(2), Options::default());
    let group = ["5557654321", "+15553334444", DID, "15557654321"];
    let report = mock.inbound(InboundRequest::sms(DID, CONTACT, "hi all").with_group(&group));
    assert!(report.deliveries[0].acked);
    let v = body_json(&hook.requests()[0]);
    let to = v.get("data").unwrap().get("payload").unwrap().get("to").unwrap().as_array().unwrap();
    let numbers: Vec<&str> = to.iter().map(|t| s(t, "phone_number")).collect();
    assert_eq!(numbers, ["+15551234567", "+15557654321", "+15553334444"], "the DID first, each once, per dial mode");
    assert_eq!(mock.messages().len(), 1, "stored once, for the DID");
    // Not a NANP number: refused.
    let err = mock.try_inbound(InboundRequest::sms(DID, CONTACT, "x").with_group(&["12345"])).unwrap_err();
    assert_eq!(err.to_string(), "to \"12345\" is not a NANP number");
}

#[test]
fn url_callback_retried_until_ok_on_the_mock_clock() {
    let hook = Hook::start(&[(200, "not ok"), (500, "oops"), (200, " ok\n")]);
    let template = hook.url("/cb?to={TO}&from={FROM}&message={MESSAGE}&id={ID}&date={TIMESTAMP}&media={MEDIA}");
    let mock = with_did(DidConfig::new(DID).with_url_callback(&template, true), Options::default());
    let report = mock.inbound(InboundRequest::sms(DID, CONTACT, "hi there"));
    let first = &report.deliveries[0];
    assert_eq!((first.mechanism.as_str(), first.attempt, first.acked), ("callback", 1, false));
    let target =
        "/cb?to=5551234567&from=5145550100&message=hi%20there&id=100000000&date=2025-07-20%2012%3A00%3A00&media=";
    assert_eq!(hook.requests()[0].target, target);
    assert_eq!(hook.requests()[0].method, "GET");

    assert!(mock.advance_clock(1799).is_empty());
    assert_eq!(hook.requests().len(), 1);
    let second = mock.advance_clock(1);
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].attempt, second[0].http_status, second[0].acked), (2, Some(500), false));
    let third = mock.advance_clock(1800);
    assert_eq!((third[0].attempt, third[0].acked), (3, true));
    assert!(mock.advance_clock(7200).is_empty());
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs.iter().all(|r| r.target == target), "the same message each time");
    let attempts: Vec<(u32, String)> = mock.deliveries().into_iter().map(|d| (d.attempt, d.at)).collect();
    assert_eq!(
        attempts,
        [
            (1, "2025-07-20T16:00:00Z".to_string()),
            (2, "2025-07-20T16:30:00Z".to_string()),
            (3, "2025-07-20T17:00:00Z".to_string())
        ]
    );
}

#[test]
fn url_callback_without_retry_and_max_attempts() {
    let hook = Hook::start(&[(500, "no")]);
    let o = Options {
        callback_max_attempts: Some(2),
        callback_retry_interval_s: 60,
        media_placeholder_literal: true,
        ..Default::default()
    };
    let mock = with_did(DidConfig::new(DID).with_url_callback(&hook.url("/cb?m={MEDIA}"), false), o);
    let r = mock.inbound(InboundRequest::sms(DID, CONTACT, "x"));
    assert!(r.deliveries[0].acked, "without retry any answer is accepted");
    assert_eq!(hook.requests()[0].target, "/cb?m={MEDIA}");
    assert!(mock.advance_clock(3600).is_empty());

    mock.set_did(DidConfig::new(DID).with_url_callback(&hook.url("/cb"), true));
    mock.inbound(InboundRequest::sms(DID, CONTACT, "y"));
    assert_eq!(mock.advance_clock(60).len(), 1);
    assert!(mock.advance_clock(60).is_empty(), "callback_max_attempts = 2");
    assert_eq!(hook.requests().len(), 3);
}

#[test]
fn webhook_retry_requires_ok_and_network_errors() {
    let hook = Hook::start(&[(500, ""), (200, "fine"), (200, "ok")]);
    let o =
        Options { webhook_retry: true, webhook_retry_interval_s: 10, webhook_requires_ok: true, ..Default::default() };
    let mock = with_did(DidConfig::new(DID).with_webhook(&hook.url("/w")), o);
    let r = mock.inbound(InboundRequest::sms(DID, CONTACT, "x"));
    assert!(!r.deliveries[0].acked);
    let d = mock.advance_clock(10);
    assert_eq!((d[0].attempt, d[0].http_status, d[0].acked), (2, Some(200), false));
    let d = mock.advance_clock(10);
    assert!(d[0].acked);
    assert!(mock.advance_clock(100).is_empty());

    // Nothing listens on a closed port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    mock.set_did(DidConfig::new(DID).with_webhook(&format!("http://{closed}/w")));
    let r = mock.inbound(InboundRequest::sms(DID, CONTACT, "y"));
    let d = &r.deliveries[0];
    assert_eq!((d.http_status, d.acked), (None, false));
    assert!(d.error.is_some());
}

#[test]
fn real_clock_fires_retries_by_itself() {
    let hook = Hook::start(&[(200, "nope"), (200, "ok")]);
    let mut config = MockConfig::for_tests(&[]);
    config.dids.push(DidConfig::new(DID).with_url_callback(&hook.url("/cb"), true));
    config.options.callback_retry_interval_s = 1;
    let mock = start(config);
    mock.inbound(InboundRequest::sms(DID, CONTACT, "x"));
    let d = mock.wait_for_deliveries(2, Duration::from_secs(20)).expect("the retry fires");
    assert_eq!((d[1].attempt, d[1].acked), (2, true));
}

#[test]
fn inbound_is_refused_politely() {
    let mock = mock();
    let e = mock.try_inbound(InboundRequest::sms("4385556789", CONTACT, "x")).unwrap_err();
    assert!(e.to_string().contains("4385556789"));
    assert!(mock.try_inbound(InboundRequest::sms(DID, "12", "x")).is_err());
    let mut r = InboundRequest::mms(DID, CONTACT, "x", &["https://e.com/a.png"]);
    r.kind = Some("sms".into());
    assert!(mock.try_inbound(r).is_err());
    assert!(mock.try_inbound(InboundRequest::mms(DID, CONTACT, "x", &["!!"])).is_err());
    // A long text with kind sms stays an SMS.
    let r = mock.inbound(InboundRequest::sms(DID, CONTACT, &"a".repeat(500)));
    assert_eq!(r.kind, "sms");
    assert!(mock.messages().len() == 1 && mock.deliveries().is_empty());
}

// ---- control API ----

#[test]
fn control_inbound_takes_a_group() {
    let hook = Hook::start(&[(200, "ok")]);
    let mock = with_did(DidConfig::new(DID).with_webhook(&hook.url("/w")), Options::default());
    let r = control(
        &mock,
        "POST",
        "/_mock/inbound",
        Some(r#"{"did":"5551234567","from":"5145550100","text":"all","to":["5557654321"]}"#),
    );
    assert_eq!(r.status, 200);
    let body = hook.requests().last().unwrap().body.clone();
    assert!(body.contains(r#""to":[{"phone_number":"5551234567"},{"phone_number":"5557654321"}]"#), "{body}");
    let r =
        control(&mock, "POST", "/_mock/inbound", Some(r#"{"did":"5551234567","from":"5145550100","to":"5557654321"}"#));
    assert_eq!(r.status, 400, "to is a list");
}

#[test]
fn control_inbound_calls_messages_deliveries() {
    let hook = Hook::start(&[(200, "ok")]);
    let mock = with_did(DidConfig::new(DID).with_webhook(&hook.url("/w")), Options::default());
    assert_eq!(control(&mock, "GET", "/_mock/health", None).json().to_json(), r#"{"ok":true}"#);

    let r = control(
        &mock,
        "POST",
        "/_mock/inbound",
        Some(r#"{"did":"5551234567","from":"5145550100","text":"hi","media":["https://example.com/a.png"]}"#),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(keys(&v), ["id", "kind", "deliveries"]);
    assert_eq!((s(&v, "id"), s(&v, "kind")), ("200000000", "mms"));
    let d = &v.get("deliveries").unwrap().as_array().unwrap()[0];
    assert_eq!(
        keys(d),
        [
            "seq",
            "at",
            "message_id",
            "mechanism",
            "url",
            "attempt",
            "request_body",
            "http_status",
            "response_body",
            "acked",
            "error"
        ]
    );
    assert_eq!(d.get("acked"), Some(&Value::Bool(true)));
    assert_eq!(d.get("http_status").unwrap().as_u64(), Some(200));

    let r = control(&mock, "POST", "/_mock/inbound", Some(r#"{"did":"5551234567","from":"x"}"#));
    assert_eq!(r.status, 400);
    let r = control(&mock, "POST", "/_mock/inbound", Some(r#"{"did":"5551234567","from":"5145550100","txt":"x"}"#));
    assert_eq!(r.status, 400);
    assert!(s(&r.json(), "error").contains("txt"));

    api(&mock, "sendSMS", &[("did", DID), ("dst", CONTACT), ("message", "one")]);
    api(&mock, "getBalance", &[]);
    api(&mock, "sendSMS", &[("did", DID), ("dst", CONTACT), ("message", "two")]);
    let calls = control(&mock, "GET", "/_mock/calls?method=sendSMS&since=1", None).json();
    let calls = calls.as_array().unwrap();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(
        keys(c),
        ["seq", "at", "http_method", "encoding", "client_ip", "method", "params", "status", "response"]
    );
    assert_eq!(c.get("seq").unwrap().as_u64(), Some(3));
    assert_eq!(s(c.get("params").unwrap(), "api_password"), "***");
    assert_eq!(s(c.get("params").unwrap(), "message"), "two");
    assert_eq!(c.get("response").unwrap().to_json(), r#"{"status":"success","sms":100000001}"#);
    assert_eq!(control(&mock, "GET", "/_mock/calls", None).json().as_array().unwrap().len(), 3);

    let msgs = control(&mock, "GET", "/_mock/messages", None).json();
    let msgs = msgs.as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(
        keys(&msgs[0]),
        ["kind", "id", "date", "at", "type", "did", "contact", "message", "media", "carrier_status"]
    );
    assert_eq!(s(&msgs[0], "kind"), "mms");
    let dl = control(&mock, "GET", "/_mock/deliveries", None).json();
    assert_eq!(dl.as_array().unwrap().len(), 1);
}

#[test]
fn control_clock_fires_due_retries_before_replying() {
    let hook = Hook::start(&[(200, "no"), (200, "ok")]);
    let mock = with_did(DidConfig::new(DID).with_url_callback(&hook.url("/cb"), true), Options::default());
    mock.inbound(InboundRequest::sms(DID, CONTACT, "x"));
    let r = control(&mock, "GET", "/_mock/clock", None).json();
    assert_eq!(r.to_json(), r#"{"now":"2025-07-20T16:00:00Z","eastern":"2025-07-20 12:00:00","real":false}"#);
    let r = control(&mock, "POST", "/_mock/clock", Some(r#"{"advance_s":1800}"#)).json();
    assert_eq!(s(&r, "now"), "2025-07-20T16:30:00Z");
    let fired = r.get("deliveries").unwrap().as_array().unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].get("acked"), Some(&Value::Bool(true)));
    let r = control(&mock, "POST", "/_mock/clock", Some(r#"{"set":"2025-11-02T01:30:00-05:00"}"#)).json();
    assert_eq!(s(&r, "eastern"), "2025-11-02 01:30:00");
    assert_eq!(s(&r, "now"), "2025-11-02T06:30:00Z");
    for bad in [
        r#"{}"#,
        r#"{"set":"soon"}"#,
        r#"{"advance_s":-1}"#,
        r#"{"advance":1}"#,
        r#"{"set":"2025-01-01T00:00:00Z","advance_s":1}"#,
    ] {
        assert_eq!(control(&mock, "POST", "/_mock/clock", Some(bad)).status, 400, "{bad}");
    }
    assert!(mock.set_clock("not a time").is_err());
}

#[test]
fn control_dids_account_options_reset() {
    let mock = mock();
    let r = control(
        &mock,
        "POST",
        "/_mock/dids",
        Some(r#"{"did":"+14385556789","dialmode":2,"webhook_enabled":true,"webhook":"http://127.0.0.1:9/w"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let dids = control(&mock, "GET", "/_mock/dids", None).json();
    let dids = dids.as_array().unwrap();
    assert_eq!(dids.len(), 2);
    assert_eq!(s(&dids[1], "did"), "4385556789");
    assert_eq!(dids[1].get("dialmode").unwrap().as_u64(), Some(2));
    let r = control(&mock, "POST", "/_mock/dids", Some(r#"{"did":"4385556789","webhok":"x"}"#));
    assert_eq!(r.status, 400);
    assert!(s(&r.json(), "error").contains("webhok"));
    assert_eq!(control(&mock, "DELETE", "/_mock/dids?did=4385556789", None).status, 200);
    assert_eq!(control(&mock, "DELETE", "/_mock/dids?did=4385556789", None).status, 404);

    let r = control(&mock, "POST", "/_mock/account", Some(r#"{"api_enabled":false,"balance":3.5}"#));
    assert_eq!(r.status, 200);
    assert_eq!(status(&api(&mock, "getBalance", &[])), "api_not_enabled");
    assert_eq!(mock.account().balance, "3.5");
    let r = control(&mock, "POST", "/_mock/account", Some(r#"{"allowed_ips":["10.0.0.0/99"]}"#));
    assert_eq!(r.status, 400);
    assert!(s(&r.json(), "error").contains("allowed_ips[0]"));
    let r = control(&mock, "POST", "/_mock/account", Some(r#"{"api_enable":true}"#));
    assert_eq!(r.status, 400);

    let r = control(&mock, "POST", "/_mock/options", Some(r#"{"ids_as_strings":true}"#));
    assert_eq!(r.status, 200);
    assert!(mock.options().ids_as_strings);
    assert_eq!(control(&mock, "POST", "/_mock/options", Some(r#"{"ids_as_string":true}"#)).status, 400);

    assert_eq!(control(&mock, "POST", "/_mock/reset", None).status, 200);
    assert_eq!(status(&api(&mock, "getBalance", &[])), "success");
    assert!(!mock.options().ids_as_strings);
    assert_eq!(mock.calls().len(), 1);

    assert_eq!(control(&mock, "GET", "/_mock/nothing", None).status, 404);
    assert_eq!(control(&mock, "PUT", "/_mock/health", None).status, 405);
    assert_eq!(control(&mock, "POST", "/_mock/faults", Some("{not json")).status, 400);
}
