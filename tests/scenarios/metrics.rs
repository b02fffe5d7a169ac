//! `GET /healthz` and `GET /metrics` on the optional metrics address (issue 7).

use crate::support::harness::*;
use std::net::SocketAddr;

fn metrics_addr(gw: &Gateway) -> SocketAddr {
    let line = gw.wait_for_log("health and metrics on http://");
    let rest = line.split("http://").nth(1).expect("address");
    rest.split('/').next().expect("host:port").parse().expect("a socket address")
}

fn sample(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn health_follows_the_xmpp_stream_and_metrics_count_what_happened() {
    let mut env = TestEnv::new("metrics");
    env.top_extra = r#" "metrics": { "listen": "127.0.0.1:0" },"#.into();
    let gw = env.start();
    let addr = metrics_addr(&gw);
    // No XMPP stream yet: unhealthy, and it says why.
    let (status, body) = http_request(addr, "GET", "/healthz", b"");
    assert_eq!(status, 503);
    assert!(body.contains("XMPP component stream is down"), "{body}");
    let _peer = env.xmpp.accept();
    gw.wait_for_log("online");
    assert_eq!(http_request(addr, "GET", "/healthz", b""), (200, "ok\n".to_string()));

    assert_eq!(gw.post_webhook(&webhook_body(FRIEND, ALICE_DID, "counted", &[])).0, 200);
    assert_eq!(gw.http("POST", "/voipms?key=wrong", b"{}").0, 403);
    let (status, text) = http_request(addr, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    assert_eq!(sample(&text, "voipms_xmpp_xmpp_up"), Some(1));
    assert_eq!(sample(&text, "voipms_xmpp_messages_received_total{source=\"webhook\"}"), Some(1));
    assert_eq!(sample(&text, "voipms_xmpp_webhook_requests_total{status=\"200\"}"), Some(1));
    assert_eq!(sample(&text, "voipms_xmpp_webhook_requests_total{status=\"403\"}"), Some(1));
    assert_eq!(sample(&text, "voipms_xmpp_xmpp_connects_total"), Some(1));
    assert!(sample(&text, "voipms_xmpp_resident_memory_bytes").is_some_and(|b| b > 1_000_000), "{text}");
    assert!(
        text.lines().all(|l| l.starts_with("# HELP voipms_xmpp_")
            || l.starts_with("# TYPE voipms_xmpp_")
            || l.starts_with("voipms_xmpp_")),
        "{text}"
    );

    assert_eq!(http_request(addr, "POST", "/metrics", b"").0, 405);
    assert_eq!(http_request(addr, "GET", "/other", b"").0, 404);
    // Never on the public port.
    assert_eq!(gw.http("GET", "/metrics", b"").0, 404);
    assert!(!gw.log_text().contains(KEY));
}
