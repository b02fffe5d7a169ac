//! systemd's notification protocol: READY once the gateway serves, WATCHDOG from the event loop,
//! STOPPING at shutdown (issue 7).

use crate::support::harness::*;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

fn next(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_after_the_port_is_bound_then_watchdog_then_stopping() {
    let mut env = TestEnv::new("sd-notify");
    let path = env.dir.0.join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A 400 ms watchdog: fed every 200 ms.
    let gw = env.start_with_env(&[("NOTIFY_SOCKET", path.to_str().unwrap()), ("WATCHDOG_USEC", "400000")]);
    let ready = next(&socket);
    assert!(ready.starts_with("READY=1\nSTATUS="), "{ready}");
    // READY came after the port was bound: a webhook is accepted now.
    assert_eq!(gw.post_webhook(&webhook_body(FRIEND, ALICE_DID, "after ready", &[])).0, 200);
    let _peer = env.xmpp.accept();
    let mut watchdogs = 0;
    let mut statuses = Vec::new();
    while watchdogs < 3 {
        match next(&socket).as_str() {
            "WATCHDOG=1" => watchdogs += 1,
            other => statuses.push(other.to_string()),
        }
    }
    assert!(statuses.iter().any(|s| s.contains("connected to the XMPP server")), "{statuses:?}");
    let status = gw.terminate();
    assert!(status.success());
    // The process is gone: what it sent is queued on the socket.
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let mut rest = Vec::new();
    while let Ok(n) = socket.recv(&mut buf) {
        rest.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(rest.iter().any(|m| m.starts_with("STOPPING=1")), "{rest:?}");
}
