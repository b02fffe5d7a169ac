//! The mock's state: configuration in force, stored messages and media, recorded API calls and
//! push deliveries, pending push retries, queued faults, and the counters (message ids, daily
//! sends, the per-minute window, SMS toggle times). One `Mutex<State>` guards it; the condition
//! variables wake call waiters and the retry thread.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::clock::{self, Date, MockClock};
use crate::config::{AccountConfig, ClockSetting, ConfigError, DidConfig, MockConfig, Options};
use crate::fault::Fault;
use crate::json::Value;
use crate::push::{DeliveryRecord, PendingPush};

/// First SMS id.
pub(crate) const FIRST_SMS_ID: u64 = 100_000_000;
/// First MMS id (when SMS and MMS have separate sequences).
pub(crate) const FIRST_MMS_ID: u64 = 200_000_000;

/// One recorded API request (every request to `/api/v1/rest.php`, rejected ones included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// 1, 2, 3… in arrival order.
    pub seq: u64,
    /// Mock time of arrival, RFC 3339 UTC.
    pub at: String,
    /// `GET`, `POST`, …
    pub http_method: String,
    /// `query` (no body), `urlencoded`, `multipart`, or `other` (a POST body the API ignores).
    pub encoding: String,
    /// The client address as the mock saw it.
    pub client_ip: String,
    /// The `method` parameter (empty when missing).
    pub method: String,
    /// Every parameter (query and body merged, body wins); `api_password` is `"***"`.
    pub params: BTreeMap<String, String>,
    /// The `status` answered, or for answers without one: `http_<code>` (HTTP error or www
    /// redirect), `non_json`, `no_status`, `closed` (connection dropped), `client_gone` (a
    /// delayed request whose client left), `delayed` (still waiting).
    pub status: String,
    /// The body sent (JSON text for API answers; empty when nothing was sent).
    pub response: String,
}

impl Call {
    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The response parsed as JSON (`None` if it is not JSON).
    pub fn response_json(&self) -> Option<Value> {
        Value::parse(&self.response).ok()
    }

    pub(crate) fn to_value(&self) -> Value {
        let params = Value::Object(self.params.iter().map(|(k, v)| (k.clone(), Value::from(v))).collect());
        let response = match Value::parse(&self.response) {
            Ok(v) => v,
            Err(_) if self.response.is_empty() => Value::Null,
            Err(_) => Value::from(&self.response),
        };
        Value::object([
            ("seq", Value::from(self.seq)),
            ("at", Value::from(&self.at)),
            ("http_method", Value::from(&self.http_method)),
            ("encoding", Value::from(&self.encoding)),
            ("client_ip", Value::from(&self.client_ip)),
            ("method", Value::from(&self.method)),
            ("params", params),
            ("status", Value::from(&self.status)),
            ("response", response),
        ])
    }
}

/// SMS or MMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A text message (getSMS).
    Sms,
    /// A multimedia message, or long text sent with sendMMS (getMMS).
    Mms,
}

impl MessageKind {
    /// `"sms"` or `"mms"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Sms => "sms",
            MessageKind::Mms => "mms",
        }
    }
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored message row (§11.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// SMS or MMS.
    pub kind: MessageKind,
    /// Its id (SMS and MMS ids come from separate sequences unless `shared_id_sequence`).
    pub id: u64,
    /// US Eastern local time, `YYYY-MM-DD HH:MM:SS`.
    pub date: String,
    /// The same instant, RFC 3339 UTC.
    pub at: String,
    /// 0 = sent through the API, 1 = received.
    pub r#type: u8,
    /// The DID, 10 digits.
    pub did: String,
    /// The other party, 10 digits (or a short code).
    pub contact: String,
    /// The text.
    pub message: String,
    /// Media URLs served by the mock (`http://…/media/<id>/<n>/media.<ext>`).
    pub media: Vec<String>,
    /// `"Information not available"`.
    pub carrier_status: String,
}

impl StoredMessage {
    pub(crate) fn to_value(&self) -> Value {
        Value::object([
            ("kind", Value::from(self.kind.as_str())),
            ("id", Value::from(self.id.to_string())),
            ("date", Value::from(&self.date)),
            ("at", Value::from(&self.at)),
            ("type", Value::from(self.r#type.to_string())),
            ("did", Value::from(&self.did)),
            ("contact", Value::from(&self.contact)),
            ("message", Value::from(&self.message)),
            ("media", Value::from(self.media.clone())),
            ("carrier_status", Value::from(&self.carrier_status)),
        ])
    }
}

/// A stored row with its instant.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub at_ms: i64,
    pub msg: StoredMessage,
}

/// A row about to be stored (the store stamps the time).
#[derive(Debug)]
pub(crate) struct Draft<'a> {
    pub kind: MessageKind,
    pub id: u64,
    pub r#type: u8,
    pub did: &'a str,
    pub contact: &'a str,
    pub message: &'a str,
    pub media: Vec<String>,
}

/// A media file served under `/media/`.
#[derive(Debug, Clone)]
pub(crate) enum MediaItem {
    /// Decoded base64 with its MIME type.
    Data { mime: String, bytes: Vec<u8> },
    /// A URL given by the client: answered with a 302.
    Redirect(String),
}

/// Everything the mock knows; see the module docs.
#[derive(Debug)]
pub(crate) struct State {
    pub start: MockConfig,
    pub account: AccountConfig,
    pub dids: Vec<DidConfig>,
    pub options: Options,
    pub clock: MockClock,
    /// `http://127.0.0.1:PORT`, for media URLs.
    pub base_url: String,
    pub calls: Vec<Call>,
    pub next_call_seq: u64,
    pub rows: Vec<Row>,
    pub next_sms_id: u64,
    pub next_mms_id: u64,
    /// Path (`/media/<id>/<n>/media.<ext>`) → file.
    pub media: HashMap<String, MediaItem>,
    pub deliveries: Vec<DeliveryRecord>,
    pub next_delivery_seq: u64,
    pub pending: Vec<PendingPush>,
    pub faults: Vec<Fault>,
    /// Eastern date of the daily counter and the sends counted on it.
    pub daily: Option<(Date, u32)>,
    /// Instants of the requests admitted in the last 60 s.
    pub rate_window: VecDeque<i64>,
    /// When setSMS last changed each DID's SMS state.
    pub sms_toggled_at: HashMap<String, i64>,
    /// Webhook event id counter.
    pub next_event: u64,
}

fn clock_from(setting: &ClockSetting) -> Result<MockClock, ConfigError> {
    Ok(match setting {
        ClockSetting::Real => MockClock::Real { offset_ms: 0 },
        ClockSetting::Fixed(s) => MockClock::Fixed {
            now_ms: clock::parse_rfc3339(s)
                .map_err(|e| ConfigError::Invalid { path: "clock".into(), message: e.to_string() })?,
        },
    })
}

impl State {
    pub fn new(config: MockConfig, base_url: String) -> Result<State, ConfigError> {
        config.validate()?;
        Ok(State {
            account: config.account.clone(),
            dids: config.dids.clone(),
            options: config.options.clone(),
            clock: clock_from(&config.clock)?,
            start: config,
            base_url,
            calls: Vec::new(),
            next_call_seq: 1,
            rows: Vec::new(),
            next_sms_id: FIRST_SMS_ID,
            next_mms_id: FIRST_MMS_ID,
            media: HashMap::new(),
            deliveries: Vec::new(),
            next_delivery_seq: 1,
            pending: Vec::new(),
            faults: Vec::new(),
            daily: None,
            rate_window: VecDeque::new(),
            sms_toggled_at: HashMap::new(),
            next_event: 1,
        })
    }

    /// Back to the start configuration, forgetting everything recorded.
    pub fn reset(&mut self) {
        let start = self.start.clone();
        let base = std::mem::take(&mut self.base_url);
        // The start config was validated when the mock started.
        if let Ok(fresh) = State::new(start, base) {
            *self = fresh;
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn did(&self, did: &str) -> Option<&DidConfig> {
        self.dids.iter().find(|d| d.did == did)
    }

    /// Whether a stored number for `did` is shown with `+1`.
    pub fn did_e164(&self, did: &str) -> bool {
        self.did(did).is_some_and(DidConfig::e164)
    }

    pub fn next_id(&mut self, kind: MessageKind) -> u64 {
        let counter = if self.options.shared_id_sequence || kind == MessageKind::Sms {
            &mut self.next_sms_id
        } else {
            &mut self.next_mms_id
        };
        let id = *counter;
        *counter += 1;
        id
    }

    /// Store a row stamped with the mock time.
    pub fn store(&mut self, d: Draft<'_>) -> StoredMessage {
        let at_ms = self.now_ms();
        let msg = StoredMessage {
            kind: d.kind,
            id: d.id,
            date: clock::eastern(at_ms).api_format(),
            at: clock::rfc3339_utc(at_ms),
            r#type: d.r#type,
            did: d.did.to_string(),
            contact: d.contact.to_string(),
            message: d.message.to_string(),
            media: d.media,
            carrier_status: "Information not available".into(),
        };
        self.rows.push(Row { at_ms, msg: msg.clone() });
        msg
    }

    /// Today's sends so far (the counter resets at 00:00 America/New_York).
    pub fn daily_count(&mut self) -> u32 {
        let today = clock::eastern(self.now_ms()).date;
        match self.daily {
            Some((d, n)) if d == today => n,
            _ => {
                self.daily = Some((today, 0));
                0
            }
        }
    }

    pub fn count_send(&mut self) {
        let n = self.daily_count();
        let today = clock::eastern(self.now_ms()).date;
        self.daily = Some((today, n + 1));
    }

    /// Record a call; returns its seq.
    #[allow(clippy::too_many_arguments)]
    pub fn record_call(
        &mut self,
        http_method: &str,
        encoding: &str,
        client_ip: &str,
        params: &BTreeMap<String, String>,
        status: &str,
        response: &str,
    ) -> u64 {
        let seq = self.next_call_seq;
        self.next_call_seq += 1;
        let mut params = params.clone();
        if let Some(p) = params.get_mut("api_password") {
            *p = "***".into();
        }
        self.calls.push(Call {
            seq,
            at: clock::rfc3339_utc(self.now_ms()),
            http_method: http_method.to_string(),
            encoding: encoding.to_string(),
            client_ip: client_ip.to_string(),
            method: params.get("method").cloned().unwrap_or_default(),
            params,
            status: status.to_string(),
            response: response.to_string(),
        });
        seq
    }

    /// Fill in the outcome of a call recorded earlier (delayed answers).
    pub fn update_call(&mut self, seq: u64, status: &str, response: &str) {
        if let Some(c) = self.calls.iter_mut().rev().find(|c| c.seq == seq) {
            c.status = status.to_string();
            c.response = response.to_string();
        }
    }
}

/// State plus the means to wait on it.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<State>,
    /// Signalled whenever a call is recorded or updated, or a delivery is recorded.
    pub changed: Condvar,
    /// Signalled when a retry is scheduled, the clock moves, or the mock shuts down.
    pub retry_cv: Condvar,
    pub shutdown: AtomicBool,
    /// Log requests and deliveries to stderr.
    pub log: bool,
}

impl Shared {
    /// Lock the state. A panic while holding the lock (a bug) does not make the mock unusable.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn log(&self, line: impl FnOnce() -> String) {
        if self.log {
            eprintln!("mock-voipms: {}", line());
        }
    }
}
