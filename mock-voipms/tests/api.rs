//! The API over HTTP: the §11.13 self-tests, the methods, the pipeline order, transport
//! encodings, and recorded calls.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mock_voipms::json::Value;
use mock_voipms::{AccountPatch, DidConfig, Fault, InboundRequest, MockConfig, Options};

fn sms_id(v: &Value) -> u64 {
    v.get("sms").and_then(Value::as_u64).unwrap_or_else(|| panic!("no numeric sms id in {v}"))
}

fn send(mock: &mock_voipms::MockVoipms, text: &str) -> Value {
    api(mock, "sendSMS", &[("did", DID), ("dst", CONTACT), ("message", text)])
}

fn rows(v: &Value) -> Vec<Value> {
    v.get("sms").and_then(Value::as_array).unwrap_or_else(|| panic!("no sms list in {v}")).to_vec()
}

// ---- §11.13 self-tests ----

#[test]
fn sms_limit_is_160_utf8_bytes() {
    let mock = mock();
    let ok = format!("{}è", "a".repeat(158)); // 159 chars, 160 bytes
    let too_long = format!("{}è", "a".repeat(159)); // 160 chars, 161 bytes
    assert_eq!(ok.len(), 160);
    assert_eq!(status(&send(&mock, &ok)), "success");
    assert_eq!(status(&send(&mock, &too_long)), "sms_toolong");
    assert_eq!(status(&send(&mock, &"a".repeat(160))), "success");
    assert_eq!(status(&send(&mock, &"a".repeat(161))), "sms_toolong");
    assert_eq!(mock.messages().len(), 2);
}

#[test]
fn send_ids_are_numbers_under_sms_and_mms_keys() {
    let mock = mock();
    let r = send(&mock, "hello");
    assert_eq!(r.to_json(), r#"{"status":"success","sms":100000000}"#);
    let r = api(
        &mock,
        "sendMMS",
        &[("did", DID), ("dst", CONTACT), ("message", "hi"), ("media1", "https://example.com/a.jpg")],
    );
    assert_eq!(r.to_json(), r#"{"status":"success","mms":200000000}"#);
    assert!(r.get("sms").is_none());
    // Separate sequences.
    assert_eq!(sms_id(&send(&mock, "again")), 100000001);

    let mut config = MockConfig::for_tests(&[DID]);
    config.options.ids_as_strings = true;
    config.options.shared_id_sequence = true;
    let mock = start(config);
    assert_eq!(send(&mock, "x").to_json(), r#"{"status":"success","sms":"100000000"}"#);
    let r = api(&mock, "sendMMS", &[("did", DID), ("dst", CONTACT), ("message", "y")]);
    assert_eq!(r.to_json(), r#"{"status":"success","mms":"100000001"}"#);
}

#[test]
fn empty_lists_are_no_sms() {
    let mock = mock();
    assert_eq!(api(&mock, "getSMS", &[]).to_json(), r#"{"status":"no_sms"}"#);
    assert_eq!(api(&mock, "getMMS", &[]).to_json(), r#"{"status":"no_sms"}"#);
    send(&mock, "only an sms");
    assert_eq!(status(&api(&mock, "getMMS", &[])), "no_sms");
}

#[test]
fn get_mms_lists_under_sms_key_with_media_fields() {
    let mock = mock();
    send(&mock, "plain");
    api(
        &mock,
        "sendMMS",
        &[("did", DID), ("dst", CONTACT), ("message", "pic"), ("media1", "https://example.com/cat.png")],
    );
    let r = api(&mock, "getMMS", &[]);
    assert_eq!(keys(&r), ["status", "sms"]);
    let list = rows(&r);
    assert_eq!(list.len(), 1);
    assert_eq!(
        keys(&list[0]),
        [
            "id",
            "date",
            "type",
            "did",
            "contact",
            "message",
            "carrier_status",
            "col_media1",
            "col_media2",
            "col_media3",
            "media"
        ]
    );
    let url = format!("{}/media/200000000/1/media.png", mock.base_url());
    assert_eq!(s(&list[0], "col_media1"), url);
    assert_eq!(s(&list[0], "col_media2"), "");
    assert_eq!(list[0].get("media").unwrap().to_json(), format!("[\"{url}\"]"));

    // all_messages=1 mixes both kinds, for either method.
    let all = rows(&api(&mock, "getMMS", &[("all_messages", "1")]));
    assert_eq!(all.len(), 2);
    let all_sms = rows(&api(&mock, "getSMS", &[("all_messages", "1")]));
    assert_eq!(all_sms.len(), 2);
    let sms_only = rows(&api(&mock, "getSMS", &[]));
    assert_eq!(sms_only.len(), 1);
    assert_eq!(keys(&sms_only[0]), ["id", "date", "type", "did", "contact", "message", "carrier_status"]);
    assert_eq!(s(&sms_only[0], "carrier_status"), "Information not available");
}

#[test]
fn rows_are_newest_first_and_limited() {
    let mock = mock();
    for text in ["one", "two", "three"] {
        send(&mock, text);
        mock.advance_clock(60);
    }
    // Same second: the higher id is newer.
    send(&mock, "four");
    send(&mock, "five");
    let list = rows(&api(&mock, "getSMS", &[]));
    let texts: Vec<&str> = list.iter().map(|r| s(r, "message")).collect();
    assert_eq!(texts, ["five", "four", "three", "two", "one"]);
    assert_eq!(s(&list[0], "date"), "2025-07-20 12:03:00");
    assert_eq!(s(&list[4], "date"), "2025-07-20 12:00:00");
    let two = rows(&api(&mock, "getSMS", &[("limit", "2")]));
    assert_eq!(two.len(), 2);
    assert_eq!(s(&two[1], "message"), "four");
}

#[test]
fn date_range_is_at_most_92_days() {
    let mock = mock();
    send(&mock, "x");
    let q = |from: &str, to: &str| status(&api(&mock, "getSMS", &[("from", from), ("to", to)])).to_string();
    assert_eq!(q("2025-04-19", "2025-07-20"), "success"); // 92 days
    assert_eq!(q("2025-04-18", "2025-07-20"), "invalid_daterange"); // 93 days
    assert_eq!(q("2025-07-21", "2025-07-20"), "invalid_date_from");
    assert_eq!(q("2025-07-20 00:00:00", "2025-07-20"), "invalid_date");
    assert_eq!(q("2025-02-30", "2025-07-20"), "invalid_date");
    assert_eq!(q("2025-07-19", "2025-07-19"), "no_sms");
}

#[test]
fn e164_dialmode_shows_plus_one() {
    let mut config = MockConfig::for_tests(&[]).with_fixed_clock(T0);
    config.dids.push(DidConfig::new(DID).with_dialmode(2));
    config.dids.push(DidConfig::new("4385556789"));
    let mock = start(config);
    // Input in any of the three forms; stored as 10 digits.
    api(&mock, "sendSMS", &[("did", "+15551234567"), ("dst", "15145550100"), ("message", "a")]);
    api(&mock, "sendSMS", &[("did", "4385556789"), ("dst", "+15145550100"), ("message", "b")]);
    let list = rows(&api(&mock, "getSMS", &[]));
    assert_eq!((s(&list[0], "did"), s(&list[0], "contact")), ("4385556789", "5145550100"));
    assert_eq!((s(&list[1], "did"), s(&list[1], "contact")), ("+15551234567", "+15145550100"));
    assert!(mock.messages().iter().all(|m| m.did.len() == 10 && m.contact == CONTACT));
    let info = api(&mock, "getDIDsInfo", &[("did", DID)]);
    let dids = info.get("dids").unwrap().as_array().unwrap();
    assert_eq!(s(&dids[0], "did"), "+15551234567");
    assert_eq!(s(&dids[0], "dialmode"), "2");

    // e164_rows_on_did_filter: +1 whenever `did` is given (#273).
    let o = Options { e164_rows_on_did_filter: true, ..Default::default() };
    mock.set_options(o);
    let list = rows(&api(&mock, "getSMS", &[("did", "4385556789")]));
    assert_eq!(s(&list[0], "did"), "+14385556789");
}

#[test]
fn get_media_mms_object_or_array() {
    let mock = mock();
    let png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==";
    let r = api(
        &mock,
        "sendMMS",
        &[
            ("did", DID),
            ("dst", CONTACT),
            ("message", ""),
            ("media1", png),
            ("media2", "https://example.com/v.mp4?x=1"),
        ],
    );
    let id = r.get("mms").unwrap().as_u64().unwrap().to_string();
    let obj = api(&mock, "getMediaMMS", &[("id", &id)]);
    assert_eq!(keys(&obj), ["status", "id", "date", "media"]);
    assert_eq!(s(&obj, "id"), id);
    assert_eq!(s(&obj, "date"), "2025-07-20 12:00:00");
    let media = obj.get("media").unwrap();
    assert_eq!(keys(media), ["1", "2"]);
    let u1 = s(media, "1").to_string();
    let u2 = s(media, "2").to_string();
    assert!(u1.ends_with(&format!("/media/{id}/1/media.png")), "{u1}");
    assert!(u2.ends_with(&format!("/media/{id}/2/media.mp4")), "{u2}");
    let arr = api(&mock, "getMediaMMS", &[("id", &id), ("media_as_array", "1")]);
    assert_eq!(arr.get("media").unwrap().to_json(), format!("[\"{u1}\",\"{u2}\"]"));
    assert_eq!(status(&api(&mock, "getMediaMMS", &[])), "missing_id");
    assert_eq!(status(&api(&mock, "getMediaMMS", &[("id", "100000000")])), "invalid_id");

    // The media endpoint serves the decoded file and redirects URL media.
    let path1 = u1.strip_prefix(&mock.base_url()).unwrap();
    let r =
        raw(mock.addr(), format!("GET {path1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(&r.body[..4], b"\x89PNG");
    let path2 = u2.strip_prefix(&mock.base_url()).unwrap();
    let r =
        raw(mock.addr(), format!("GET {path2} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("https://example.com/v.mp4?x=1"));
    let r = raw(mock.addr(), b"GET /media/1/1/media.png HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(r.status, 404);
}

#[test]
fn set_sms_drops_unstated_callbacks() {
    let mut config = MockConfig::for_tests(&[]).with_fixed_clock(T0);
    let mut did = DidConfig::new(DID).with_url_callback("http://127.0.0.1:9/cb?from={FROM}", true);
    did.email_enabled = true;
    did.email_address = "me@example.com".into();
    config.dids.push(did);
    let mock = start(config);
    let r = api(
        &mock,
        "setSMS",
        &[("did", DID), ("enable", "1"), ("webhook_enable", "1"), ("webhook", "http://127.0.0.1:9/hook")],
    );
    assert_eq!(status(&r), "success");
    let info = api(&mock, "getDIDsInfo", &[("did", DID)]);
    let d = &info.get("dids").unwrap().as_array().unwrap()[0];
    assert_eq!(s(d, "webhook_enabled"), "1");
    assert_eq!(s(d, "webhook"), "http://127.0.0.1:9/hook");
    assert_eq!(s(d, "sms_url_callback_enabled"), "0");
    assert_eq!(s(d, "sms_url_callback"), "");
    assert_eq!(s(d, "sms_email_enabled"), "0");
    assert_eq!(s(d, "sms_email"), "");
    assert_eq!(s(d, "dialmode"), "1");

    // With the switch off, unstated fields are kept. `webhook_enabled` is accepted too.
    let o = Options { setsms_drops_unstated: false, ..Default::default() };
    mock.set_options(o);
    api(&mock, "setSMS", &[("did", DID), ("enable", "1"), ("email_enabled", "1"), ("email_address", "x@example.com")]);
    api(&mock, "setSMS", &[("did", DID), ("enable", "1"), ("webhook_enabled", "0")]);
    let d = mock.dids().remove(0);
    assert!(d.email_enabled && d.email_address == "x@example.com");
    assert!(!d.webhook_enabled && d.webhook == "http://127.0.0.1:9/hook");

    for (params, want) in [
        (vec![("enable", "1")], "missing_did"),
        (vec![("did", "4385556789"), ("enable", "1")], "invalid_did"),
        (vec![("did", DID)], "missing_enable"),
        (vec![("did", DID), ("enable", "1"), ("url_callback_enable", "yes")], "invalid_callback_enable"),
        (vec![("did", DID), ("enable", "1"), ("url_callback_retry", "2")], "invalid_callback_retry"),
        (vec![("did", DID), ("enable", "1"), ("email_enabled", "x")], "invalid_email_enable"),
        (vec![("did", DID), ("enable", "1"), ("sms_forward_enable", "x")], "invalid_forward_enable"),
        (vec![("did", DID), ("enable", "1"), ("url_callback", "ftp://x")], "invalid_callback"),
        (vec![("did", DID), ("enable", "1"), ("webhook", "nope")], "invalid_callback"),
        (vec![("did", DID), ("enable", "1"), ("dialmode", "3")], "missing_params"),
    ] {
        assert_eq!(status(&api(&mock, "setSMS", &params)), want, "{params:?}");
    }
}

#[test]
fn set_sms_toggle_waits_a_minute() {
    let mock = mock();
    assert_eq!(status(&api(&mock, "setSMS", &[("did", DID), ("enable", "0")])), "success");
    assert_eq!(status(&api(&mock, "sendSMS", &[("did", DID), ("dst", CONTACT), ("message", "x")])), "invalid_did");
    mock.advance_clock(59);
    assert_eq!(status(&api(&mock, "setSMS", &[("did", DID), ("enable", "1")])), "sms_wait_message");
    // Not a toggle: fine.
    assert_eq!(status(&api(&mock, "setSMS", &[("did", DID), ("enable", "0")])), "success");
    mock.advance_clock(1);
    assert_eq!(status(&api(&mock, "setSMS", &[("did", DID), ("enable", "1"), ("dialmode", "2")])), "success");
    assert_eq!(mock.dids()[0].dialmode, 2);
}

#[test]
fn missing_method_comes_before_missing_credentials() {
    let mock = mock();
    assert_eq!(get_raw(&mock, "").json().to_json(), r#"{"status":"missing_method"}"#);
    assert_eq!(status(&get_raw(&mock, "method=&api_username=x").json()), "missing_method");
    assert_eq!(status(&get_raw(&mock, "method=getBalance").json()), "missing_credentials");
    assert_eq!(
        status(&get_raw(&mock, "method=getBalance&api_username=john%40example.com&api_password=").json()),
        "missing_credentials"
    );
}

#[test]
fn get_ip_bypasses_the_ip_check() {
    let mock = mock();
    mock.set_account(AccountPatch::default().allowed_ips(&["203.0.113.7"]));
    assert_eq!(status(&api(&mock, "getBalance", &[])), "ip_not_enabled");
    let r = api(&mock, "getIP", &[]);
    assert_eq!(r.to_json(), r#"{"status":"success","ip":"127.0.0.1"}"#);
    // Credentials are still checked.
    let r = get_raw(&mock, "method=getIP&api_username=john%40example.com&api_password=wrong").json();
    assert_eq!(status(&r), "invalid_credentials");
    for rule in ["0.0.0.0", "127.0.0.0/8", "127.0.0.*"] {
        mock.set_account(AccountPatch::default().allowed_ips(&[rule]));
        assert_eq!(status(&api(&mock, "getBalance", &[])), "success", "{rule}");
    }
}

#[test]
fn www_host_gets_a_301() {
    let mock = mock();
    let req = "POST /api/v1/rest.php HTTP/1.1\r\nHost: www.voip.ms\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 14\r\n\r\nmethod=getIP&x";
    let r = raw(mock.addr(), req.as_bytes()).unwrap();
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://voip.ms/api/v1/rest.php"));
    assert!(r.body.is_empty());
    let calls = mock.calls();
    assert_eq!((calls[0].method.as_str(), calls[0].status.as_str()), ("getIP", "http_301"));

    let o = Options { www_redirect: false, ..Default::default() };
    mock.set_options(o);
    let r = raw(mock.addr(), req.as_bytes()).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(status(&r.json()), "missing_credentials");
}

// ---- pipeline ----

#[test]
fn pipeline_order() {
    let mock = mock();
    let bad_creds = "method=nosuch&api_username=john%40example.com&api_password=nope";
    mock.set_account(AccountPatch::default().api_enabled(false).allowed_ips(&["203.0.113.7"]));
    assert_eq!(status(&get_raw(&mock, bad_creds).json()), "api_not_enabled");
    mock.set_account(AccountPatch::default().api_enabled(true));
    assert_eq!(status(&get_raw(&mock, bad_creds).json()), "ip_not_enabled");
    mock.set_account(AccountPatch::default().allowed_ips(&["127.0.0.1"]));
    assert_eq!(status(&get_raw(&mock, bad_creds).json()), "invalid_credentials");
    assert_eq!(status(&api(&mock, "nosuch", &[])), "invalid_method");
    assert_eq!(status(&api(&mock, "getsms", &[])), "invalid_method");

    // Faults are consumed only after authentication: the bad request leaves it queued.
    mock.inject(Fault::status("*", 1, "method_maintenance"));
    let r = get_raw(&mock, "method=getBalance&api_username=john%40example.com&api_password=nope");
    assert_eq!(status(&r.json()), "invalid_credentials");
    assert_eq!(mock.faults().len(), 1);
    // … but before the method: an unknown method is reported before the fault applies.
    assert_eq!(status(&api(&mock, "nosuch", &[])), "invalid_method");
    assert_eq!(status(&api(&mock, "getBalance", &[])), "method_maintenance");
    assert!(mock.faults().is_empty());

    // The per-minute limiter comes before faults and counts any method.
    mock.set_account(AccountPatch::default().rate_limit_per_minute(Some(2)));
    mock.inject(Fault::status("*", 1, "sms_failed"));
    assert_eq!(status(&api(&mock, "getIP", &[])), "sms_failed");
    assert_eq!(status(&api(&mock, "getBalance", &[])), "success");
    assert_eq!(status(&api(&mock, "getBalance", &[])), "api_limit_exceeded");
    mock.advance_clock(59);
    assert_eq!(status(&api(&mock, "getBalance", &[])), "api_limit_exceeded");
    mock.advance_clock(1);
    assert_eq!(status(&api(&mock, "getBalance", &[])), "success");
}

#[test]
fn calls_are_recorded_with_password_redacted() {
    let mock = mock();
    send(&mock, "hello");
    get_raw(&mock, "method=getBalance");
    let calls = mock.calls();
    assert_eq!(calls.len(), 2);
    let c = &calls[0];
    assert_eq!(c.seq, 1);
    assert_eq!(c.at, "2025-07-20T16:00:00Z");
    assert_eq!(c.http_method, "GET");
    assert_eq!(c.encoding, "query");
    assert_eq!(c.client_ip, "127.0.0.1");
    assert_eq!(c.method, "sendSMS");
    assert_eq!(c.param("api_password"), Some("***"));
    assert_eq!(c.param("api_username"), Some("john@example.com"));
    assert_eq!(c.param("message"), Some("hello"));
    assert_eq!(c.status, "success");
    assert_eq!(c.response, r#"{"status":"success","sms":100000000}"#);
    assert_eq!(calls[1].status, "missing_credentials");
    assert_eq!(mock.calls_for("getBalance").len(), 1);
    assert!(!format!("{calls:?}").contains("secret"));
}

// ---- transport ----

#[test]
fn get_urlencoded_and_multipart_all_work() {
    let mock = mock();
    let creds = "api_username=john%40example.com&api_password=secret";
    let body = format!("{creds}&method=sendSMS&did={DID}&dst={CONTACT}&message=caf%C3%A9+au+lait");
    let r = post(&mock, "application/x-www-form-urlencoded", body.as_bytes(), "");
    assert_eq!(status(&r.json()), "success");

    let fields = [
        ("api_username", "john@example.com"),
        ("api_password", "secret"),
        ("method", "sendSMS"),
        ("did", DID),
        ("dst", CONTACT),
        ("message", "line 1\r\nline 2 & more"),
    ];
    let r = post(&mock, "multipart/form-data; boundary=XyZ123", &multipart("XyZ123", &fields), "");
    assert_eq!(status(&r.json()), "success");
    let r = post(&mock, "multipart/form-data; boundary=\"a b:c\"", &multipart("a b:c", &fields), "");
    assert_eq!(status(&r.json()), "success");

    // The body wins over the query string; unknown params and content_type are ignored.
    let q = format!("method=getBalance&message=from-query&content_type=json&{creds}");
    let body = format!("method=sendSMS&did={DID}&dst={CONTACT}&message=from-body&zzz=1");
    let r = post(&mock, "application/x-www-form-urlencoded; charset=UTF-8", body.as_bytes(), &q);
    assert_eq!(status(&r.json()), "success");

    let texts: Vec<String> = mock.messages().into_iter().map(|m| m.message).collect();
    assert_eq!(texts, ["café au lait", "line 1\r\nline 2 & more", "line 1\r\nline 2 & more", "from-body"]);
    let enc: Vec<(String, String)> = mock.calls().into_iter().map(|c| (c.http_method, c.encoding)).collect();
    let want = [("POST", "urlencoded"), ("POST", "multipart"), ("POST", "multipart"), ("POST", "urlencoded")];
    assert_eq!(enc.len(), want.len());
    for (got, want) in enc.iter().zip(want) {
        assert_eq!((got.0.as_str(), got.1.as_str()), want);
    }
    // A body the API cannot read is ignored (PHP would see no fields).
    let r = post(&mock, "application/json", br#"{"method":"getIP"}"#, "");
    assert_eq!(status(&r.json()), "missing_method");
    assert_eq!(mock.calls().last().unwrap().encoding, "other");
}

#[test]
fn other_paths_are_404_and_big_bodies_413() {
    let mock = mock();
    for path in ["/", "/api/v1/rest", "/api/v1/rest.php/x", "/index.php"] {
        let r = raw(mock.addr(), format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
            .unwrap();
        assert_eq!(r.status, 404, "{path}");
    }
    let r = raw(
        mock.addr(),
        b"POST /api/v1/rest.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 8388609\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 413);
    assert!(mock.calls().is_empty());
}

#[test]
fn body_just_under_the_cap_is_read() {
    let mock = mock();
    let mut body = b"method=getIP&api_username=john%40example.com&api_password=secret&pad=".to_vec();
    body.resize(8 * 1024 * 1024, b'a');
    let r = post(&mock, "application/x-www-form-urlencoded", &body, "");
    assert_eq!(status(&r.json()), "success");
}

#[test]
fn wait_for_calls_returns_when_the_call_arrives() {
    let mock = mock();
    let err = mock.wait_for_calls("getSMS", 1, Duration::from_millis(20)).unwrap_err();
    assert!(err.got.is_empty());
    let addr = mock.addr();
    let started = Instant::now();
    let client = std::thread::spawn(move || {
        let q = query(&with_creds(&[("method", "getSMS")]));
        let req = format!("GET /api/v1/rest.php?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        raw(addr, req.as_bytes()).unwrap()
    });
    let calls = mock.wait_for_calls("getSMS", 1, Duration::from_secs(30)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "getSMS");
    assert_eq!(client.join().unwrap().status, 200);
}

// ---- methods ----

#[test]
fn send_validation() {
    let mock = mock();
    for (params, want) in [
        (vec![("dst", CONTACT), ("message", "x")], "missing_did"),
        (vec![("did", "555"), ("dst", CONTACT), ("message", "x")], "invalid_did"),
        (vec![("did", "4385556789"), ("dst", CONTACT), ("message", "x")], "invalid_did"),
        (vec![("did", DID), ("message", "x")], "invalid_dst"),
        (vec![("did", DID), ("dst", "0145550100"), ("message", "x")], "invalid_dst"),
        (vec![("did", DID), ("dst", "12345"), ("message", "x")], "invalid_dst"),
        (vec![("did", DID), ("dst", CONTACT)], "missing_sms"),
        (vec![("did", DID), ("dst", CONTACT), ("message", "")], "message_empty"),
        (vec![("did", DID), ("dst", CONTACT), ("message", " \t\n")], "message_empty"),
    ] {
        assert_eq!(status(&api(&mock, "sendSMS", &params)), want, "{params:?}");
    }
    assert!(mock.messages().is_empty());
}

#[test]
fn send_mms_rules() {
    let mock = mock();
    let mms = |params: &[(&str, &str)]| {
        let mut p = vec![("did", DID), ("dst", CONTACT)];
        p.extend_from_slice(params);
        status(&api(&mock, "sendMMS", &p)).to_string()
    };
    assert_eq!(mms(&[("message", &"é".repeat(300))]), "success"); // 600 bytes, no media
    assert_eq!(mms(&[("message", &"a".repeat(2048))]), "success");
    assert_eq!(mms(&[("message", &"a".repeat(2049))]), "sms_toolong");
    assert_eq!(mms(&[("message", "")]), "message_empty");
    assert_eq!(mms(&[]), "missing_sms");
    assert_eq!(mms(&[("media1", "https://example.com/x.gif")]), "success");
    assert_eq!(mms(&[("message", "x"), ("media1", "!!notbase64!!")]), "no_base64file");
    assert_eq!(mms(&[("message", "x"), ("media2", "data:image/png,raw")]), "invalid_file");
    // Over GET, base64 longer than 512 characters is refused…
    let long = format!("data:image/png;base64,{}", "A".repeat(600));
    assert_eq!(mms(&[("message", "x"), ("media1", &long)]), "exceeds_file_size");
    // … but not over POST.
    let creds = "api_username=john%40example.com&api_password=secret&method=sendMMS";
    let body = format!("{creds}&did={DID}&dst={CONTACT}&message=x&media1={}", enc(&long));
    let r = post(&mock, "application/x-www-form-urlencoded", body.as_bytes(), "");
    assert_eq!(status(&r.json()), "success");
    // Decoded size over 1.2 MB is refused over POST too.
    let big = format!("{creds}&did={DID}&dst={CONTACT}&message=x&media1={}", "A".repeat(1_600_100));
    let r = post(&mock, "application/x-www-form-urlencoded", big.as_bytes(), "");
    assert_eq!(status(&r.json()), "exceeds_file_size");
    // media4 is ignored.
    assert_eq!(mms(&[("message", "x"), ("media4", "!!")]), "success");
    let o = Options { get_base64_limit: false, ..Default::default() };
    mock.set_options(o);
    assert_eq!(mms(&[("message", "x"), ("media1", &long)]), "success");
}

#[test]
fn daily_limit_resets_at_eastern_midnight() {
    let mut config = MockConfig::for_tests(&[DID]).with_fixed_clock("2025-07-20T23:59:00-04:00");
    config.account.daily_limit = 2;
    let mock = start(config);
    assert_eq!(status(&send(&mock, "1")), "success");
    assert_eq!(status(&api(&mock, "sendMMS", &[("did", DID), ("dst", CONTACT), ("message", "2")])), "success");
    assert_eq!(status(&send(&mock, "3")), "limit_reached");
    // Failed sends do not count; other methods still work.
    assert_eq!(status(&api(&mock, "getSMS", &[])), "success");
    mock.advance_clock(59);
    assert_eq!(status(&send(&mock, "4")), "limit_reached");
    mock.advance_clock(1); // 00:00 Eastern
    assert_eq!(status(&send(&mock, "5")), "success");
    mock.set_account(AccountPatch::default().daily_limit(0));
    assert_eq!(status(&send(&mock, "6")), "limit_reached");
}

#[test]
fn filters_and_validation_of_get_sms() {
    let mut config = MockConfig::for_tests(&[DID, "4385556789"]).with_fixed_clock(T0);
    config.options.shared_id_sequence = false;
    let mock = start(config);
    send(&mock, "out");
    mock.inbound(InboundRequest::sms(DID, "2125550199", "in"));
    mock.inbound(InboundRequest::sms("4385556789", CONTACT, "other did"));
    let texts = |params: &[(&str, &str)]| -> Vec<String> {
        let r = api(&mock, "getSMS", params);
        if status(&r) == "no_sms" {
            return vec![];
        }
        rows(&r).iter().map(|r| s(r, "message").to_string()).collect()
    };
    assert_eq!(texts(&[("type", "1")]), ["other did", "in"]);
    assert_eq!(texts(&[("type", "0")]), ["out"]);
    assert_eq!(texts(&[("did", "4385556789")]), ["other did"]);
    assert_eq!(texts(&[("contact", "+12125550199")]), ["in"]);
    assert_eq!(texts(&[("contact", CONTACT), ("did", DID)]), ["out"]);
    assert_eq!(texts(&[("sms", "100000001")]), ["in"]);
    assert_eq!(texts(&[("sms", "100000001"), ("type", "0")]), ["in"]);
    assert_eq!(texts(&[("sms", "999")]), Vec::<String>::new());
    for (params, want) in [
        (vec![("type", "2")], "invalid_type"),
        (vec![("timezone", "14")], "invalid_timezone"),
        (vec![("timezone", "x")], "invalid_timezone"),
        (vec![("did", "2025550100")], "invalid_did"),
        (vec![("contact", "12")], "invalid_contact"),
        (vec![("sms", "abc")], "invalid_id"),
        (vec![("sms", "100000001"), ("all_messages", "1")], "invalid_id"),
    ] {
        assert_eq!(status(&api(&mock, "getSMS", &params)), want, "{params:?}");
    }
    let row = &rows(&api(&mock, "getSMS", &[("type", "1"), ("did", DID)]))[0];
    assert_eq!(s(row, "type"), "1");
    assert_eq!(s(row, "id"), "100000001");
}

#[test]
fn timezone_is_one_fixed_offset_from_todays_eastern_offset() {
    // A row stored in winter (EST, UTC-5) read in summer (EDT, UTC-4) with timezone=0:
    // VoIP.ms shifts by the offset in force *now* (+4 h), one hour off the true UTC time.
    let mock = start(MockConfig::for_tests(&[DID]).with_fixed_clock("2025-01-15T12:00:00-05:00"));
    send(&mock, "winter");
    mock.set_clock("2025-03-20T12:00:00-04:00").unwrap();
    send(&mock, "spring");
    let r = api(&mock, "getSMS", &[("from", "2025-01-01"), ("to", "2025-03-31"), ("timezone", "0")]);
    let list = rows(&r);
    assert_eq!(s(&list[0], "date"), "2025-03-20 16:00:00"); // correct UTC
    assert_eq!(s(&list[1], "date"), "2025-01-15 16:00:00"); // true UTC is 17:00
    let r = api(&mock, "getSMS", &[("from", "2025-01-01"), ("to", "2025-03-31")]);
    assert_eq!(s(&rows(&r)[1], "date"), "2025-01-15 12:00:00");
    // The filter stays on Eastern dates: 23:30 Eastern on the 20th is the 21st in UTC.
    mock.set_clock("2025-03-20T23:30:00-04:00").unwrap();
    send(&mock, "late");
    let r = api(&mock, "getSMS", &[("from", "2025-03-20"), ("to", "2025-03-20"), ("timezone", "0")]);
    let list = rows(&r);
    assert_eq!(s(&list[0], "message"), "late");
    assert_eq!(s(&list[0], "date"), "2025-03-21 03:30:00");
}

#[test]
fn delete_and_dids_and_balance() {
    let mock = mock();
    send(&mock, "x");
    assert_eq!(status(&api(&mock, "deleteSMS", &[])), "missing_id");
    assert_eq!(status(&api(&mock, "deleteMMS", &[("id", "100000000")])), "invalid_id");
    assert_eq!(api(&mock, "deleteSMS", &[("id", "100000000")]).to_json(), r#"{"status":"success"}"#);
    assert_eq!(status(&api(&mock, "deleteSMS", &[("id", "100000000")])), "invalid_id");
    assert!(mock.messages().is_empty());

    let info = api(&mock, "getDIDsInfo", &[]);
    let d = &info.get("dids").unwrap().as_array().unwrap()[0];
    let want = [
        "did",
        "description",
        "routing",
        "billing_type",
        "order_date",
        "sms_available",
        "sms_enabled",
        "sms_email",
        "sms_email_enabled",
        "sms_forward",
        "sms_forward_enabled",
        "sms_url_callback",
        "sms_url_callback_enabled",
        "sms_url_callback_retry",
        "webhook",
        "webhook_enabled",
        "dialmode",
        "mms_available",
        "smpp_enabled",
        "smpp_url",
        "smpp_user",
        "smpp_pass",
        "sms_sipaccount",
        "sms_sipaccount_enabled",
    ];
    assert_eq!(keys(d), want);
    assert!(d.as_object().unwrap().iter().all(|(_, v)| v.as_str().is_some()), "all strings: {d}");
    assert_eq!(s(d, "sms_enabled"), "1");
    assert_eq!(status(&api(&mock, "getDIDsInfo", &[("did", "4385556789")])), "invalid_did");
    assert!(mock.remove_did(DID));
    assert_eq!(status(&api(&mock, "getDIDsInfo", &[])), "no_did");

    assert_eq!(
        api(&mock, "getBalance", &[]).to_json(),
        r#"{"status":"success","balance":{"current_balance":"12.345678"}}"#
    );
    mock.set_account(AccountPatch::default().balance("0.50"));
    let b = api(&mock, "getBalance", &[("advanced", "true")]);
    let bal = b.get("balance").unwrap();
    assert_eq!(
        keys(bal),
        ["current_balance", "spent_total", "calls_total", "time_total", "spent_today", "calls_today", "time_today"]
    );
    assert_eq!(s(bal, "current_balance"), "0.50");
}

#[test]
fn reset_restores_the_start() {
    let mock = mock();
    send(&mock, "x");
    mock.advance_clock(3600);
    mock.inject(Fault::no_status("*", 5));
    mock.remove_did(DID);
    mock.reset();
    assert!(mock.calls().is_empty() && mock.messages().is_empty() && mock.faults().is_empty());
    assert_eq!(mock.now(), "2025-07-20T16:00:00Z");
    assert_eq!(mock.dids().len(), 1);
    assert_eq!(sms_id(&send(&mock, "y")), 100000000);
    assert_eq!(mock.calls()[0].seq, 1);
}

#[test]
fn hostile_input_does_not_break_the_server() {
    let mock = mock();
    let requests: [&[u8]; 6] = [
        b"garbage\r\n\r\n",
        b"GET /api/v1/rest.php HTTP/1.0\r\n\r\n",
        // A non-ASCII header value: async-h1 panics inside this connection's task (its stderr
        // line is expected); the executor catches it and the server carries on.
        b"GET /api/v1/rest.php HTTP/1.1\r\nHost: x\r\nX-Name: caf\xc3\xa9\r\n\r\n",
        b"POST /api/v1/rest.php HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data\r\nContent-Length: 5\r\n\r\n--\r\n-",
        b"POST /api/v1/rest.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\n%ff%fe=\xff&",
        b"POST /_mock/inbound HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n\xff\xfe[[",
    ];
    for req in requests {
        let _ = raw(mock.addr(), req);
    }
    // A client-supplied media URL goes back in a Location header: it cannot split the response.
    let evil = "https://example.com/\u{e9}\r\nSet-Cookie: x=1";
    let r = api(&mock, "sendMMS", &[("did", DID), ("dst", CONTACT), ("message", "m"), ("media1", evil)]);
    assert_eq!(status(&r), "success");
    let path = "/media/200000000/1/media.bin";
    let r =
        raw(mock.addr(), format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("https://example.com/%C3%A9%0D%0ASet-Cookie:%20x=1"));
    assert!(r.header("set-cookie").is_none());
    assert_eq!(status(&api(&mock, "getIP", &[])), "success");
}
