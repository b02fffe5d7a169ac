//! The `mock-voipms` binary: the readiness line, serving, SIGTERM/SIGINT, bad configs.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use common::{raw, read_response};

const BIN: &str = env!("CARGO_BIN_EXE_mock-voipms");

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts")
}

/// Read the readiness line; returns the address and the rest of stdout.
fn ready(child: &mut Child) -> (SocketAddr, BufReader<std::process::ChildStdout>) {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line
        .strip_suffix('\n')
        .and_then(|l| l.strip_prefix("mock-voipms listening on http://"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (url.parse().unwrap(), out)
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap().success();
    assert!(ok);
}

fn get(addr: SocketAddr, target: &str) -> common::Resp {
    let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    raw(addr, req.as_bytes()).unwrap()
}

#[test]
fn prints_one_line_serves_and_exits_0_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("mock-voipms-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        r#"{"account":{"api_username":"ci@example.com","api_password":"pw","allowed_ips":["0.0.0.0"]},
            "dids":[{"did":"4385556789","dialmode":2}],
            "clock":"2025-07-20T12:00:00-04:00"}"#,
    )
    .unwrap();
    let mut child = spawn(&["--listen", "127.0.0.1:0", "--config", config.to_str().unwrap()]);
    let (addr, mut out) = ready(&mut child);
    assert_ne!(addr.port(), 0);

    assert_eq!(get(addr, "/_mock/health").text(), r#"{"ok":true}"#);
    let r = get(addr, "/api/v1/rest.php?method=getDIDsInfo&api_username=ci%40example.com&api_password=pw");
    let v = r.json();
    let did = &v.get("dids").unwrap().as_array().unwrap()[0];
    assert_eq!(did.get("did").unwrap().as_str(), Some("+14385556789"));
    // Keep-alive works too: two requests on one connection.
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    use std::io::Write;
    for _ in 0..2 {
        s.write_all(b"GET /_mock/health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut s).unwrap().status, 200);
    }
    drop(s);

    signal(&child, "-TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "exactly one line on stdout");
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("getDIDsInfo"), "logs go to stderr: {err}");
    assert!(!err.contains("pw&") && !err.contains("api_password=pw"), "no secrets in logs");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn defaults_without_config_and_sigint() {
    let mut child = spawn(&["--listen", "127.0.0.1:0"]);
    let (addr, _out) = ready(&mut child);
    let r = get(
        addr,
        "/api/v1/rest.php?method=sendSMS&api_username=john%40example.com&api_password=secret&did=5551234567&dst=5145550100&message=hi",
    );
    assert_eq!(r.text(), r#"{"status":"success","sms":100000000}"#);
    signal(&child, "-INT");
    assert!(child.wait().unwrap().success());
}

#[test]
fn bad_config_names_the_key_and_fails() {
    let dir = std::env::temp_dir().join(format!("mock-voipms-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bad.json");
    std::fs::write(&config, r#"{"options":{"webhook_retyr":true}}"#).unwrap();
    let out =
        Command::new(BIN).args(["--listen", "127.0.0.1:0", "--config", config.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("options.webhook_retyr"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
