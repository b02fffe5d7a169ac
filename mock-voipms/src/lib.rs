//! `mock-voipms`: a faithful mock of the VoIP.ms REST API (`/api/v1/rest.php`) and of its
//! inbound pushes (legacy URL callback and JSON webhook), with fault injection, a controllable
//! clock, and a JSON control API under `/_mock/` — for the tests of `voipms-xmpp` and for anyone's
//! CI. The behaviour is specified in `docs/voipms.md` §11.
//!
//! In-process use (all methods block; the server runs on its own threads):
//!
//! ```no_run
//! use mock_voipms::{Fault, InboundRequest, MockConfig, MockVoipms};
//!
//! let mock = MockVoipms::start(MockConfig::for_tests(&["5551234567"]), "127.0.0.1:0".parse().unwrap())
//!     .expect("mock starts");
//! // Point the system under test at mock.api_url(), then for example:
//! mock.inject(Fault::status("sendSMS", 1, "sms_failed"));
//! let report = mock.inbound(InboundRequest::sms("5551234567", "5145550100", "hi"));
//! assert_eq!(report.kind, "sms");
//! ```
//!
//! The control API is unauthenticated: bind the mock to loopback.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod access;
mod api;
mod base64;
mod clock;
mod config;
mod control;
mod fault;
mod form;
mod http;
pub mod json;
mod media;
mod numbers;
mod push;
mod store;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use clock::ClockError;
pub use config::{AccountConfig, AccountPatch, ClockSetting, ConfigError, DidConfig, MockConfig, Options};
pub use fault::{Fault, FaultKind};
pub use push::{DeliveryRecord, InboundError, InboundReport, InboundRequest};
pub use store::{Call, MessageKind, StoredMessage};

use store::{Shared, State};

/// [`MockVoipms::wait_for_calls`] gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitTimeout {
    /// The method waited for.
    pub method: String,
    /// How many calls were wanted.
    pub wanted: usize,
    /// The calls of that method recorded when the time ran out.
    pub got: Vec<Call>,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wanted == 0 {
            write!(f, "timed out waiting for a condition on the calls; {} recorded", self.got.len())
        } else {
            write!(f, "timed out waiting for {} {} call(s); {} recorded", self.wanted, self.method, self.got.len())
        }
    }
}

impl std::error::Error for WaitTimeout {}

/// A running mock. Dropping it shuts the server down.
#[derive(Debug)]
pub struct MockVoipms {
    shared: Arc<Shared>,
    addr: SocketAddr,
    base_url: String,
    stop: Option<smol::channel::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// `now + timeout`, or about a century from now when that overflows (`Duration::MAX`).
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400))).unwrap_or(now)
}

fn invalid_input(e: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

impl MockVoipms {
    /// Start a quiet mock on `listen` (port 0 picks a free port).
    pub fn start(config: MockConfig, listen: SocketAddr) -> io::Result<MockVoipms> {
        MockVoipms::start_with_logging(config, listen, false)
    }

    /// Start a mock; with `log`, every API call and push attempt is logged to stderr (secrets
    /// redacted).
    pub fn start_with_logging(config: MockConfig, listen: SocketAddr, log: bool) -> io::Result<MockVoipms> {
        config.validate().map_err(invalid_input)?;
        let std_listener = std::net::TcpListener::bind(listen)?;
        let addr = std_listener.local_addr()?;
        let shown = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
            IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
            _ => addr,
        };
        let base_url = format!("http://{shown}");
        let state = State::new(config, base_url.clone()).map_err(invalid_input)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed: Condvar::new(),
            retry_cv: Condvar::new(),
            shutdown: AtomicBool::new(false),
            log,
        });
        let listener = smol::net::TcpListener::try_from(std_listener)?;
        let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
        let server_shared = shared.clone();
        let server = std::thread::Builder::new().name("mock-voipms-http".into()).spawn(move || {
            let ex = Arc::new(smol::Executor::new());
            let run = http::serve(listener, server_shared, ex.clone(), stop_rx);
            smol::block_on(ex.run(run));
        })?;
        let retry_shared = shared.clone();
        std::thread::Builder::new().name("mock-voipms-retry".into()).spawn(move || push::retry_loop(retry_shared))?;
        Ok(MockVoipms { shared, addr, base_url, stop: Some(stop_tx), server: Some(server) })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (loopback when listening on an unspecified address).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// [`base_url`](Self::base_url) + `/api/v1/rest.php`.
    pub fn api_url(&self) -> String {
        format!("{}{}", self.base_url, http::API_PATH)
    }

    /// Every recorded API call, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// The recorded calls of one API method, in order.
    pub fn calls_for(&self, method: &str) -> Vec<Call> {
        self.shared.lock().calls.iter().filter(|c| c.method == method).cloned().collect()
    }

    /// Block until at least `n` calls of `method` have been recorded, or `timeout` passes.
    /// Returns as soon as the call is recorded (no polling).
    pub fn wait_for_calls(&self, method: &str, n: usize, timeout: Duration) -> Result<Vec<Call>, WaitTimeout> {
        self.wait_for_calls_where(timeout, |calls| calls.iter().filter(|c| c.method == method).count() >= n)
            .map(|calls| calls.into_iter().filter(|c| c.method == method).collect())
            .map_err(|e| WaitTimeout {
                method: method.to_string(),
                wanted: n,
                got: e.got.into_iter().filter(|c| c.method == method).collect(),
            })
    }

    /// Block until `done(all recorded calls)` is true, or `timeout` passes; re-checked whenever
    /// a call is recorded or its outcome is filled in (e.g. a delayed call becoming
    /// `client_gone`). Returns all calls.
    pub fn wait_for_calls_where(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[Call]) -> bool,
    ) -> Result<Vec<Call>, WaitTimeout> {
        let deadline = deadline_after(timeout);
        let mut st = self.shared.lock();
        loop {
            if done(&st.calls) {
                return Ok(st.calls.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitTimeout { method: "(condition)".to_string(), wanted: 0, got: st.calls.clone() });
            }
            st = match self.shared.changed.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Block until at least `n` push attempts have been recorded (e.g. retries fired by the
    /// real clock), or `timeout` passes (`None`).
    pub fn wait_for_deliveries(&self, n: usize, timeout: Duration) -> Option<Vec<DeliveryRecord>> {
        let deadline = deadline_after(timeout);
        let mut st = self.shared.lock();
        loop {
            if st.deliveries.len() >= n {
                return Some(st.deliveries.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st = match self.shared.changed.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Simulate an inbound message (same as `POST /_mock/inbound`); returns after the first
    /// delivery attempts.
    ///
    /// # Panics
    /// If the request is refused (unknown DID, bad sender, …); see [`MockVoipms::try_inbound`].
    pub fn inbound(&self, req: InboundRequest) -> InboundReport {
        match self.try_inbound(req) {
            Ok(r) => r,
            Err(e) => panic!("mock-voipms: inbound refused: {e}"),
        }
    }

    /// Simulate an inbound message, reporting a refusal as an error.
    pub fn try_inbound(&self, req: InboundRequest) -> Result<InboundReport, InboundError> {
        push::inbound(&self.shared, &req)
    }

    /// Queue a fault (a `count` of 0 is ignored).
    pub fn inject(&self, fault: Fault) {
        control::inject(&self.shared, fault);
    }

    /// The faults still queued.
    pub fn faults(&self) -> Vec<Fault> {
        self.shared.lock().faults.clone()
    }

    /// Drop every queued fault.
    pub fn clear_faults(&self) {
        control::clear_faults(&self.shared);
    }

    /// Add a DID or replace the one with the same number.
    ///
    /// # Panics
    /// If the DID is invalid; see [`MockVoipms::try_set_did`].
    pub fn set_did(&self, did: DidConfig) {
        if let Err(e) = self.try_set_did(did) {
            panic!("mock-voipms: set_did: {e}");
        }
    }

    /// Add or replace a DID, reporting an invalid one as an error.
    pub fn try_set_did(&self, did: DidConfig) -> Result<(), ConfigError> {
        control::set_did(&self.shared, did)
    }

    /// Remove a DID; `false` if it was not on the account.
    pub fn remove_did(&self, did: &str) -> bool {
        control::remove_did(&self.shared, did)
    }

    /// The DIDs on the account now.
    pub fn dids(&self) -> Vec<DidConfig> {
        self.shared.lock().dids.clone()
    }

    /// Change account fields.
    ///
    /// # Panics
    /// If the result is invalid; see [`MockVoipms::try_set_account`].
    pub fn set_account(&self, patch: AccountPatch) {
        if let Err(e) = self.try_set_account(patch) {
            panic!("mock-voipms: set_account: {e}");
        }
    }

    /// Change account fields, reporting an invalid result as an error.
    pub fn try_set_account(&self, patch: AccountPatch) -> Result<(), ConfigError> {
        control::set_account(&self.shared, &patch)
    }

    /// The account now.
    pub fn account(&self) -> AccountConfig {
        self.shared.lock().account.clone()
    }

    /// Replace the switches.
    ///
    /// # Panics
    /// If they are invalid (a zero interval or timeout).
    pub fn set_options(&self, options: Options) {
        if let Err(e) = control::set_options(&self.shared, options) {
            panic!("mock-voipms: set_options: {e}");
        }
    }

    /// The switches now.
    pub fn options(&self) -> Options {
        self.shared.lock().options.clone()
    }

    /// Jump the mock clock to an RFC 3339 instant; retries that fall due run before this
    /// returns, and their attempts are returned.
    pub fn set_clock(&self, rfc3339: &str) -> Result<Vec<DeliveryRecord>, ClockError> {
        control::set_clock(&self.shared, rfc3339)
    }

    /// Move the mock clock forward; retries that fall due run before this returns (each once),
    /// and their attempts are returned.
    pub fn advance_clock(&self, secs: u64) -> Vec<DeliveryRecord> {
        control::advance_clock(&self.shared, secs)
    }

    /// Mock time now, RFC 3339 UTC.
    pub fn now(&self) -> String {
        clock::rfc3339_utc(self.shared.lock().now_ms())
    }

    /// Every stored message (sent and received, SMS and MMS), oldest first.
    pub fn messages(&self) -> Vec<StoredMessage> {
        self.shared.lock().rows.iter().map(|r| r.msg.clone()).collect()
    }

    /// Every push attempt, in order.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.shared.lock().deliveries.clone()
    }

    /// Back to the start configuration: clears calls, messages, media, deliveries, pending
    /// retries, counters and faults, and restarts the clock.
    pub fn reset(&self) {
        control::reset(&self.shared);
    }
}

impl Drop for MockVoipms {
    fn drop(&mut self) {
        {
            // Under the lock, so the retry thread cannot miss the wake-up.
            let _state = self.shared.lock();
            self.shared.shutdown.store(true, Ordering::SeqCst);
            self.shared.retry_cv.notify_all();
        }
        // Closing the channel stops the accept loop; the executor and its connections go with
        // the server thread.
        drop(self.stop.take());
        if let Some(t) = self.server.take() {
            let _ = t.join();
        }
    }
}
