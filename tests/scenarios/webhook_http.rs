//! The webhook's HTTP contract: key, path, method, JSON, size.

use crate::support::harness::*;

#[test]
fn bad_key_missing_key_wrong_path_and_method() {
    let env = TestEnv::new("webhook-auth");
    let gw = env.start();
    let body = webhook_body(FRIEND, ALICE_DID, "x", &[]);
    assert_eq!(gw.http("POST", "/voipms?key=wrong", body.as_bytes()).0, 403);
    assert_eq!(
        gw.http("POST", &format!("/voipms?key={KEY}x"), body.as_bytes())
            .0,
        403
    );
    assert_eq!(
        gw.http("POST", &format!("/voipms?xkey={KEY}"), body.as_bytes())
            .0,
        401,
        "the key parameter is matched exactly"
    );
    assert_eq!(gw.http("POST", "/voipms", body.as_bytes()).0, 401);
    assert_eq!(
        gw.http("POST", &format!("/other?key={KEY}"), body.as_bytes())
            .0,
        404
    );
    assert_eq!(gw.http("GET", &format!("/voipms?key={KEY}"), b"").0, 405);
    // A percent-encoded key is decoded before comparison.
    let encoded: String = KEY.bytes().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(
        gw.http("POST", &format!("/voipms?key={encoded}"), body.as_bytes())
            .0,
        200
    );
    assert!(!gw.log_text().contains(KEY), "the key is never logged");
}

#[test]
fn bad_json_missing_numbers_and_oversize() {
    let env = TestEnv::new("webhook-body");
    let gw = env.start();
    let target = format!("/voipms?key={KEY}");
    let (status, body) = gw.http("POST", &target, b"{not json");
    assert_eq!(status, 400);
    assert!(body.contains("not JSON"), "{body}");
    let (status, body) = gw.http(
        "POST",
        &target,
        br#"{"data":{"payload":{"to":[{"phone_number":"5552345678"}],"text":"x"}}}"#,
    );
    assert_eq!(status, 400);
    assert!(body.contains("from.phone_number"), "{body}");
    let (status, _) = gw.http("POST", &target, br#"{"data":{"payload":{"from":{"phone_number":"5559998888"},"to":[{"phone_number":"12"}],"text":"x"}}}"#);
    assert_eq!(status, 400);
    let huge = vec![b' '; 200 * 1024];
    assert_eq!(gw.http("POST", &target, &huge).0, 413);
    // The server is still fine afterwards.
    assert_eq!(
        gw.post_webhook(&webhook_body(FRIEND, ALICE_DID, "after", &[]))
            .0,
        200
    );
}
