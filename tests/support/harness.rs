//! Runs the real `voipms-xmpp` binary against a scripted XMPP server and mock-voipms.
//!
//! A [`TestEnv`] owns a temporary directory, the XMPP peer and the mock; [`TestEnv::start`]
//! writes a config, spawns the binary, and learns the webhook port from its log. The process is
//! killed on drop. Nothing here reaches the internet.

use super::xmpp_peer::{Peer, XmppServer};
use mock_voipms::{DidConfig, MockConfig, MockVoipms};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const DOMAIN: &str = "sms.example.com";
pub const SECRET: &str = "component-secret";
pub const KEY: &str = "webhook-key";
pub const ALICE: &str = "alice@example.com";
pub const ALICE_DID: &str = "5552345678";
pub const BOB: &str = "bob@example.com";
pub const BOB_DID: &str = "5557654321";
pub const BOB_DID2: &str = "5553334444";
/// A phone that texts our users.
pub const FRIEND: &str = "5559998888";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The command that runs the gateway binary: the one cargo built for these tests, or
/// `$E2E_GATEWAY_BIN` (another build, e.g. the static aarch64 one), run through
/// `$E2E_GATEWAY_RUNNER` when set (e.g. `qemu-aarch64-static`).
pub fn gateway_command() -> Command {
    let bin = std::env::var_os("E2E_GATEWAY_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_voipms-xmpp").into());
    match std::env::var_os("E2E_GATEWAY_RUNNER") {
        Some(runner) => {
            let mut c = Command::new(runner);
            c.arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

/// A unique empty directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("voipms-e2e-{tag}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Everything a scenario needs.
pub struct TestEnv {
    pub dir: TempDir,
    pub xmpp: XmppServer,
    pub voipms: MockVoipms,
    /// Extra `"key": value` members for the `xmpp` section (e.g. `"keepalive_secs": 2`).
    pub xmpp_extra: String,
    /// Extra members for the `voipms` section.
    pub voipms_extra: String,
    /// Extra top-level members (e.g. `"metrics": {…}`), each followed by a comma.
    pub top_extra: String,
    /// Point the mock's DIDs' webhooks at the gateway (off: only backfill finds messages).
    pub webhooks: bool,
    /// Where the gateway connects for XMPP (the peer's address unless a test changes it).
    pub xmpp_server: SocketAddr,
}

impl TestEnv {
    pub fn new(tag: &str) -> TestEnv {
        TestEnv::with_mock(tag, MockConfig::for_tests(&[ALICE_DID, BOB_DID, BOB_DID2]))
    }

    /// With a mock configured by the test (its DIDs must include ALICE_DID, BOB_DID, BOB_DID2).
    pub fn with_mock(tag: &str, mock: MockConfig) -> TestEnv {
        let voipms = MockVoipms::start(mock, "127.0.0.1:0".parse().unwrap()).expect("start mock-voipms");
        let xmpp = XmppServer::bind(DOMAIN, SECRET);
        let xmpp_addr = xmpp.addr();
        TestEnv {
            dir: TempDir::new(tag),
            xmpp,
            voipms,
            xmpp_extra: String::new(),
            voipms_extra: String::new(),
            top_extra: String::new(),
            webhooks: true,
            xmpp_server: xmpp_addr,
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.0.join("state")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.0.join("config.json")
    }

    /// Write the gateway's config (the mock's API URL, webhook path `/voipms`, key [`KEY`],
    /// Alice's and Bob's DIDs) to [`TestEnv::config_path`].
    pub fn write_config(&self) {
        let config = format!(
            r#"{{
  "xmpp": {{ "component": "{DOMAIN}", "server": "{}", "secret": "{SECRET}"{} }},
  "voipms": {{ "api_username": "john@example.com", "api_password": "secret", "api_url": "{}"{} }},
  "webhook": {{ "listen": "127.0.0.1:0", "path": "/voipms", "key": "{KEY}" }},
  "jid_map": {{ "{ALICE}": ["+1{ALICE_DID}"], "{BOB}": ["+1{BOB_DID}", "+1{BOB_DID2}"] }},{}
  "state_dir": "{}"
}}"#,
            self.xmpp_server,
            self.xmpp_extra,
            self.voipms.api_url(),
            self.voipms_extra,
            self.top_extra,
            self.state_dir().display()
        );
        std::fs::write(self.config_path(), config).expect("write config");
    }

    /// Start the gateway and point every mock DID's webhook at it.
    pub fn start(&self) -> Gateway {
        self.start_with_env(&[])
    }

    /// [`TestEnv::start`] with extra environment variables for the gateway.
    pub fn start_with_env(&self, env: &[(&str, &str)]) -> Gateway {
        self.write_config();
        let gw = Gateway::spawn_with_env(&self.config_path(), env);
        for did in [ALICE_DID, BOB_DID, BOB_DID2] {
            let mut d = DidConfig::new(did);
            d.webhook_enabled = self.webhooks;
            d.webhook = gw.webhook_url();
            self.voipms.set_did(d);
        }
        gw
    }

    /// Start the gateway and accept its component connection.
    pub fn start_online(&mut self) -> (Gateway, Peer) {
        let gw = self.start();
        let peer = self.xmpp.accept();
        (gw, peer)
    }
}

/// Lines the gateway wrote to stderr, with a condition variable to wait on.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

/// The running binary.
pub struct Gateway {
    child: Option<Child>,
    log: Arc<Log>,
    pub webhook: SocketAddr,
}

impl Gateway {
    /// Spawn the binary on `config`, with extra environment variables.
    pub fn spawn_with_env(config: &Path, env: &[(&str, &str)]) -> Gateway {
        let mut child = gateway_command()
            .args(["run", "--config"])
            .envs(env.iter().copied())
            .arg(config)
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("CREDENTIALS_DIRECTORY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn voipms-xmpp");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Log::default());
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("E2E_VERBOSE").is_some() {
                    eprintln!("gateway: {line}");
                }
                sink.lines.lock().unwrap().push(line);
                sink.grew.notify_all();
            }
        });
        let mut gw = Gateway { child: Some(child), log, webhook: "0.0.0.0:0".parse().unwrap() };
        let line = gw.wait_for_log("webhook listening on http://");
        let addr = line.split("http://").nth(1).and_then(|rest| rest.split('/').next()).expect("address in log line");
        gw.webhook = addr.parse().expect("webhook address");
        gw
    }

    pub fn webhook_url(&self) -> String {
        format!("http://{}/voipms?key={KEY}", self.webhook)
    }

    /// Wait for a log line containing `needle` (returns it).
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut lines = self.log.lines.lock().unwrap();
        loop {
            if let Some(l) = lines.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let now = Instant::now();
            assert!(now < deadline, "no log line containing {needle:?}; log:\n{}", lines.join("\n"));
            lines = self.log.grew.wait_timeout(lines, deadline - now).unwrap().0;
        }
    }

    /// Everything logged so far.
    pub fn log_text(&self) -> String {
        self.log.lines.lock().unwrap().join("\n")
    }

    /// A raw HTTP/1.1 request to the webhook port. Returns (status, body).
    pub fn http(&self, method: &str, target: &str, body: &[u8]) -> (u16, String) {
        http_request(self.webhook, method, target, body)
    }

    /// POST a webhook body with the right key.
    pub fn post_webhook(&self, body: &str) -> (u16, String) {
        self.http("POST", &format!("/voipms?key={KEY}"), body.as_bytes())
    }

    /// Send SIGTERM and wait (at most 15 s) for the exit status.
    pub fn terminate(self) -> ExitStatus {
        self.stop_with("TERM")
    }

    /// Send a signal (`TERM`, `INT`) and wait (at most 15 s) for the exit status.
    pub fn stop_with(mut self, signal: &str) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("run kill");
        assert!(status.success());
        match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(status) => status.expect("wait"),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                panic!("the gateway did not exit within 15 s of SIGTERM");
            }
        }
    }

    /// SIGKILL: a crash.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A minimal HTTP/1.1 client: one request, `Connection: close`, read to the end.
pub fn http_request(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the webhook");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body and close; ignore write errors.
    let _ = s.write_all(body);
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status =
        text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A VoIP.ms-shaped webhook body.
pub fn webhook_body(from: &str, to: &str, text: &str, media: &[&str]) -> String {
    let media: Vec<String> = media.iter().map(|m| format!("{{\"url\":\"{m}\"}}")).collect();
    format!(
        r#"{{"data":{{"event_type":"message.received","payload":{{"id":"{}","type":"{}","from":{{"phone_number":"{from}"}},"to":[{{"phone_number":"{to}"}}],"text":"{text}","media":[{}]}}}}}}"#,
        COUNTER.fetch_add(1, Ordering::Relaxed) + 1000,
        if media.is_empty() { "SMS" } else { "MMS" },
        media.join(",")
    )
}

/// Every send VoIP.ms received (sendSMS and sendMMS, in order); list calls (backfill) excluded.
pub fn sends(env: &TestEnv) -> Vec<mock_voipms::Call> {
    env.voipms.calls().into_iter().filter(|c| c.method == "sendSMS" || c.method == "sendMMS").collect()
}
