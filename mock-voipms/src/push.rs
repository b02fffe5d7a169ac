//! Inbound simulation and push delivery (§11.8): storing a received message, rendering the
//! legacy URL callback (GET with placeholders) and the JSON webhook (POST, Telnyx-style
//! envelope, Basic auth from the URL userinfo), sending them with `ureq`, recording every
//! attempt, and retrying on the mock clock.

use std::fmt;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::base64;
use crate::clock;
use crate::config::{ConfigError, DidConfig, Options, members, string};
use crate::form::{percent_decode, percent_encode};
use crate::json::Value;
use crate::media::{self, MediaSource};
use crate::numbers;
use crate::store::{Draft, MediaItem, MessageKind, Shared, State, StoredMessage};

/// Largest response body prefix kept in a delivery record.
const KEEP_RESPONSE_BYTES: u64 = 1024;

/// A simulated inbound message (`POST /_mock/inbound`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRequest {
    /// The receiving DID (any of the three NANP forms).
    pub did: String,
    /// The sender: a NANP number or a 5–6 digit short code.
    pub from: String,
    /// The text (may be empty when there is media).
    pub text: String,
    /// Media: `http(s)://` URLs, `data:` URIs or bare base64; served back from `/media/`.
    pub media: Vec<String>,
    /// `"sms"` or `"mms"`; `None` = `mms` when there is media, else `sms`.
    pub kind: Option<String>,
    /// Mock-only: the recipients of a group message (NANP numbers), listed in the webhook's
    /// `data.payload.to` after the DID (which comes first and once, named here or not). The
    /// message is still stored and pushed for `did` only (whether VoIP.ms also pushes it for
    /// other DIDs of the account is unknown).
    pub to: Vec<String>,
}

impl InboundRequest {
    /// An inbound SMS.
    pub fn sms(did: &str, from: &str, text: &str) -> InboundRequest {
        InboundRequest {
            did: did.to_string(),
            from: from.to_string(),
            text: text.to_string(),
            media: Vec::new(),
            kind: Some("sms".into()),
            to: Vec::new(),
        }
    }

    /// An inbound MMS with media (URLs, `data:` URIs or bare base64).
    pub fn mms(did: &str, from: &str, text: &str, media: &[&str]) -> InboundRequest {
        InboundRequest {
            did: did.to_string(),
            from: from.to_string(),
            text: text.to_string(),
            media: media.iter().map(|m| m.to_string()).collect(),
            kind: Some("mms".into()),
            to: Vec::new(),
        }
    }

    /// The same message as part of a group: `others` are the other recipients.
    pub fn with_group(mut self, others: &[&str]) -> InboundRequest {
        self.to = others.iter().map(|n| n.to_string()).collect();
        self
    }

    pub(crate) fn from_value(v: &Value) -> Result<InboundRequest, ConfigError> {
        let mut r = InboundRequest {
            did: String::new(),
            from: String::new(),
            text: String::new(),
            media: Vec::new(),
            kind: None,
            to: Vec::new(),
        };
        let (mut have_did, mut have_from) = (false, false);
        for (key, path, val) in members(v, "")? {
            match key {
                "did" => {
                    r.did = string(val, &path)?;
                    have_did = true;
                }
                "from" => {
                    r.from = string(val, &path)?;
                    have_from = true;
                }
                "text" => r.text = string(val, &path)?,
                "media" => {
                    let items = val.as_array().ok_or_else(|| ConfigError::WrongType {
                        path: path.clone(),
                        expected: "an array",
                        found: val.type_name(),
                    })?;
                    r.media = items
                        .iter()
                        .enumerate()
                        .map(|(i, m)| string(m, &format!("media[{i}]")))
                        .collect::<Result<_, _>>()?;
                }
                "kind" => r.kind = if val.is_null() { None } else { Some(string(val, &path)?) },
                "to" => {
                    let items = val.as_array().ok_or_else(|| ConfigError::WrongType {
                        path: path.clone(),
                        expected: "an array",
                        found: val.type_name(),
                    })?;
                    r.to = items
                        .iter()
                        .enumerate()
                        .map(|(i, m)| string(m, &format!("to[{i}]")))
                        .collect::<Result<_, _>>()?;
                }
                _ => return Err(ConfigError::UnknownKey { path }),
            }
        }
        for (have, k) in [(have_did, "did"), (have_from, "from")] {
            if !have {
                return Err(ConfigError::MissingKey { path: k.into() });
            }
        }
        Ok(r)
    }
}

/// What `inbound` did: the stored id and kind, and the first delivery attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundReport {
    /// The id given to the stored row.
    pub id: String,
    /// `"sms"` or `"mms"`.
    pub kind: String,
    /// The first attempt of every push (URL callback first, then webhook(s)).
    pub deliveries: Vec<DeliveryRecord>,
}

impl InboundReport {
    pub(crate) fn to_value(&self) -> Value {
        Value::object([
            ("id", Value::from(&self.id)),
            ("kind", Value::from(&self.kind)),
            ("deliveries", Value::Array(self.deliveries.iter().map(DeliveryRecord::to_value).collect())),
        ])
    }
}

/// Why an inbound message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundError {
    /// The DID is not on the account (or SMS is off on it).
    UnknownDid(String),
    /// `from` is neither a NANP number nor a short code.
    InvalidFrom(String),
    /// An entry of `to` is not a NANP number.
    InvalidTo(String),
    /// `kind` is neither `sms` nor `mms`.
    InvalidKind(String),
    /// `kind` is `sms` but media were given.
    SmsWithMedia,
    /// A media value was refused (with the sendMMS status it would get).
    InvalidMedia {
        /// 0-based index in `media`.
        index: usize,
        /// `no_base64file`, `exceeds_file_size` or `invalid_file`.
        status: String,
    },
}

impl fmt::Display for InboundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InboundError::UnknownDid(d) => {
                write!(f, "DID {d:?} is not on the account or has SMS disabled")
            }
            InboundError::InvalidFrom(s) => {
                write!(f, "from {s:?} is not a NANP number or a short code")
            }
            InboundError::InvalidTo(n) => write!(f, "to {n:?} is not a NANP number"),
            InboundError::InvalidKind(k) => write!(f, "kind {k:?} is not \"sms\" or \"mms\""),
            InboundError::SmsWithMedia => write!(f, "an SMS cannot carry media; use kind \"mms\""),
            InboundError::InvalidMedia { index, status } => {
                write!(f, "media[{index}] refused: {status}")
            }
        }
    }
}

impl std::error::Error for InboundError {}

/// One push attempt (URL callback or webhook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// 1, 2, 3… in order of attempts.
    pub seq: u64,
    /// Mock time of the attempt, RFC 3339 UTC.
    pub at: String,
    /// The id of the message delivered.
    pub message_id: String,
    /// `"callback"` (URL callback, GET) or `"webhook"` (JSON, POST).
    pub mechanism: String,
    /// The URL as configured (userinfo and `key` kept; logs redact them).
    pub url: String,
    /// 1 for the first attempt of this delivery, then 2, 3…
    pub attempt: u32,
    /// The body sent (the webhook JSON; empty for a GET).
    pub request_body: String,
    /// The HTTP status received, if any.
    pub http_status: Option<u16>,
    /// The first 1 KiB of the response body.
    pub response_body: String,
    /// Whether the mock counts this attempt as delivered.
    pub acked: bool,
    /// Transport error text, if the attempt got no HTTP response.
    pub error: Option<String>,
}

impl DeliveryRecord {
    pub(crate) fn to_value(&self) -> Value {
        Value::object([
            ("seq", Value::from(self.seq)),
            ("at", Value::from(&self.at)),
            ("message_id", Value::from(&self.message_id)),
            ("mechanism", Value::from(&self.mechanism)),
            ("url", Value::from(&self.url)),
            ("attempt", Value::from(self.attempt)),
            ("request_body", Value::from(&self.request_body)),
            ("http_status", Value::from(self.http_status)),
            ("response_body", Value::from(&self.response_body)),
            ("acked", Value::from(self.acked)),
            ("error", Value::from(self.error.clone())),
        ])
    }
}

/// The push mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    Callback,
    Webhook,
}

/// When an attempt counts as delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckRule {
    /// Any HTTP response (URL callback without retry).
    AnyResponse,
    /// 2xx.
    Success,
    /// 2xx and the trimmed body is exactly `ok`.
    SuccessOk,
}

/// One delivery, as it will be (re)sent.
#[derive(Debug, Clone)]
pub(crate) struct PushJob {
    pub mechanism: Mechanism,
    pub message_id: String,
    pub url: String,
    pub body: Option<String>,
    /// The number of the next attempt.
    pub attempt: u32,
    pub ack: AckRule,
    /// `Some((interval_s, max_attempts))` when unacked attempts are retried.
    pub retry: Option<(u64, Option<u32>)>,
    pub timeout_ms: u64,
}

/// A retry waiting for the mock clock.
#[derive(Debug, Clone)]
pub(crate) struct PendingPush {
    pub due_ms: i64,
    pub job: PushJob,
}

/// Split `scheme://user:pass@host/…` into the URL without userinfo and the decoded
/// `(user, pass)`.
pub(crate) fn split_userinfo(url: &str) -> (String, Option<(String, String)>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    match authority.rsplit_once('@') {
        Some((info, host)) => {
            let (user, pass) = info.split_once(':').unwrap_or((info, ""));
            (
                format!("{scheme}://{host}{}", &rest[auth_end..]),
                Some((percent_decode(user, false), percent_decode(pass, false))),
            )
        }
        None => (url.to_string(), None),
    }
}

/// A URL fit for logs: userinfo and `key` query values replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let (clean, auth) = split_userinfo(url);
    let clean = match (auth, clean.split_once("://")) {
        (Some(_), Some((scheme, rest))) => format!("{scheme}://***@{rest}"),
        _ => clean,
    };
    let Some((base, query)) = clean.split_once('?') else {
        return clean;
    };
    let query: Vec<String> = query
        .split(['&', ';'])
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("key") => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Substitute the URL callback placeholders (values percent-encoded, numbers per dial mode).
pub(crate) fn callback_url(template: &str, msg: &StoredMessage, e164: bool, opts: &Options) -> String {
    let media = msg.media.join(",");
    let mut url = template
        .replace("{FROM}", &percent_encode(&numbers::format(&msg.contact, e164)))
        .replace("{TO}", &percent_encode(&numbers::format(&msg.did, e164)))
        .replace("{MESSAGE}", &percent_encode(&msg.message))
        .replace("{ID}", &percent_encode(&msg.id.to_string()))
        .replace("{TIMESTAMP}", &percent_encode(&msg.date));
    if !(media.is_empty() && opts.media_placeholder_literal) {
        url = url.replace("{MEDIA}", &percent_encode(&media));
    }
    url
}

/// The webhook JSON body (§11.8).
/// `others` are a group message's other recipients (10 digits), listed after the DID.
pub(crate) fn webhook_body(
    st: &State,
    msg: &StoredMessage,
    did: &DidConfig,
    others: &[String],
    event_id: &str,
    url: &str,
) -> String {
    let opts = &st.options;
    let e164 = did.e164() || opts.webhook_numbers_e164;
    let from_number = Value::from(numbers::format(&msg.contact, e164));
    let to_number = Value::from(numbers::format(&msg.did, e164));
    let extras = opts.webhook_telnyx_extras && !opts.webhook_minimal;
    let mut from = vec![("phone_number", from_number)];
    if extras {
        from.push(("carrier", Value::from("T-Mobile USA")));
        from.push(("line_type", Value::from("Wireless")));
    }
    let to_entry = |number: Value| {
        let mut e = vec![("phone_number", number)];
        if extras {
            e.push(("status", Value::from("webhook_delivered")));
        }
        Value::object(e)
    };
    let mut to = vec![to_entry(to_number)];
    for other in others {
        to.push(to_entry(Value::from(numbers::format(other, e164))));
    }
    if opts.webhook_extra_to {
        to.push(to_entry(Value::from(numbers::format("8005550199", e164))));
    }
    let media: Vec<Value> = msg
        .media
        .iter()
        .map(|u| {
            let mut m = vec![("url", Value::from(u))];
            if extras {
                let path = u.strip_prefix(&st.base_url).unwrap_or(u);
                let mime = match st.media.get(path) {
                    Some(MediaItem::Data { mime, .. }) => mime.clone(),
                    _ => "application/octet-stream".to_string(),
                };
                m.push(("content_type", Value::from(mime)));
            }
            Value::object(m)
        })
        .collect();
    let kind = match msg.kind {
        MessageKind::Sms => "SMS",
        MessageKind::Mms => "MMS",
    };
    let payload = if opts.webhook_minimal {
        Value::object([
            ("from", Value::object(from)),
            ("to", Value::Array(to)),
            ("text", Value::from(&msg.message)),
            ("media", Value::Array(media)),
        ])
    } else {
        Value::object([
            ("id", Value::from(msg.id.to_string())),
            ("record_type", Value::from("message")),
            ("direction", Value::from("inbound")),
            ("type", Value::from(kind)),
            ("from", Value::object(from)),
            ("to", Value::Array(to)),
            ("text", Value::from(&msg.message)),
            ("media", Value::Array(media)),
            ("received_at", Value::from(&msg.at)),
        ])
    };
    let data = if opts.webhook_minimal {
        Value::object([("payload", payload)])
    } else {
        Value::object([
            ("id", Value::from(event_id)),
            ("event_type", Value::from("message.received")),
            ("record_type", Value::from("event")),
            ("occurred_at", Value::from(&msg.at)),
            ("payload", payload),
        ])
    };
    let mut top = vec![("data", data)];
    if extras {
        let (clean, _) = split_userinfo(url);
        top.push(("meta", Value::object([("attempt", Value::from(1u32)), ("delivered_to", Value::from(clean))])));
    }
    Value::object(top).to_json()
}

/// A UUID-shaped (version 4 layout) id from a counter.
fn event_uuid(n: u64) -> String {
    format!("6d6f636b-766f-4970-8000-{:012x}", n & 0xffff_ffff_ffff)
}

/// Store an inbound message and push it; blocks until the first attempts are done.
pub(crate) fn inbound(shared: &Arc<Shared>, req: &InboundRequest) -> Result<InboundReport, InboundError> {
    let jobs;
    let msg;
    {
        let mut st = shared.lock();
        let strict = st.options.strict_nanp;
        let did_cfg = numbers::parse_nanp(&req.did, false)
            .and_then(|d| st.did(&d).cloned())
            .filter(|d| d.sms_enabled && d.sms_available)
            .ok_or_else(|| InboundError::UnknownDid(req.did.clone()))?;
        let from =
            numbers::parse_sender(&req.from, strict).ok_or_else(|| InboundError::InvalidFrom(req.from.clone()))?;
        let mut others: Vec<String> = Vec::new();
        for n in &req.to {
            let n = numbers::parse_nanp(n, strict).ok_or_else(|| InboundError::InvalidTo(n.clone()))?;
            // The DID is listed first, once, whether or not `to` names it.
            if n != did_cfg.did && !others.contains(&n) {
                others.push(n);
            }
        }
        let kind = match req.kind.as_deref() {
            None if req.media.is_empty() => MessageKind::Sms,
            None => MessageKind::Mms,
            Some(k) if k.eq_ignore_ascii_case("sms") => MessageKind::Sms,
            Some(k) if k.eq_ignore_ascii_case("mms") => MessageKind::Mms,
            Some(k) => return Err(InboundError::InvalidKind(k.to_string())),
        };
        if kind == MessageKind::Sms && !req.media.is_empty() {
            return Err(InboundError::SmsWithMedia);
        }
        let sources: Vec<MediaSource> = req
            .media
            .iter()
            .enumerate()
            .map(|(index, m)| {
                media::parse(m, false, false).map_err(|s| InboundError::InvalidMedia { index, status: s.to_string() })
            })
            .collect::<Result<_, _>>()?;
        let id = st.next_id(kind);
        let urls = media::register(&mut st, id, sources);
        msg =
            st.store(Draft { kind, id, r#type: 1, did: &did_cfg.did, contact: &from, message: &req.text, media: urls });
        jobs = push_jobs(&mut st, &msg, &did_cfg, &others);
    }
    let deliveries = jobs.into_iter().map(|j| run_job(shared, j)).collect();
    Ok(InboundReport { id: msg.id.to_string(), kind: msg.kind.as_str().to_string(), deliveries })
}

/// The first attempt of each push configured on the DID.
fn push_jobs(st: &mut State, msg: &StoredMessage, did: &DidConfig, others: &[String]) -> Vec<PushJob> {
    let opts = st.options.clone();
    let mut jobs = Vec::new();
    if did.url_callback_enable && !did.url_callback.is_empty() {
        jobs.push(PushJob {
            mechanism: Mechanism::Callback,
            message_id: msg.id.to_string(),
            url: callback_url(&did.url_callback, msg, did.e164(), &opts),
            body: None,
            attempt: 1,
            ack: if did.url_callback_retry { AckRule::SuccessOk } else { AckRule::AnyResponse },
            retry: did.url_callback_retry.then_some((opts.callback_retry_interval_s, opts.callback_max_attempts)),
            timeout_ms: opts.push_timeout_ms,
        });
    }
    if did.webhook_enabled && !did.webhook.is_empty() {
        let event_id = event_uuid(st.next_event);
        st.next_event += 1;
        let job = PushJob {
            mechanism: Mechanism::Webhook,
            message_id: msg.id.to_string(),
            url: did.webhook.clone(),
            body: Some(webhook_body(st, msg, did, others, &event_id, &did.webhook)),
            attempt: 1,
            ack: if opts.webhook_requires_ok { AckRule::SuccessOk } else { AckRule::Success },
            retry: opts.webhook_retry.then_some((opts.webhook_retry_interval_s, opts.webhook_max_attempts)),
            timeout_ms: opts.push_timeout_ms,
        };
        if opts.webhook_duplicate {
            jobs.push(job.clone());
        }
        jobs.push(job);
    }
    jobs
}

/// What one HTTP attempt got.
struct AttemptResult {
    http_status: Option<u16>,
    body: String,
    error: Option<String>,
}

fn send(job: &PushJob) -> AttemptResult {
    let (url, auth) = split_userinfo(&job.url);
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(job.timeout_ms)))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let auth_header = auth.map(|(u, p)| format!("Basic {}", base64::encode(format!("{u}:{p}").as_bytes())));
    let result = match job.mechanism {
        Mechanism::Callback => {
            let mut r = agent.get(&url);
            if let Some(a) = &auth_header {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        Mechanism::Webhook => {
            let mut r = agent.post(&url).header("Content-Type", "application/json");
            if let Some(a) = &auth_header {
                r = r.header("Authorization", a);
            }
            r.send(job.body.as_deref().unwrap_or(""))
        }
    };
    match result {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let mut buf = Vec::new();
            let read = resp.body_mut().as_reader().take(KEEP_RESPONSE_BYTES).read_to_end(&mut buf);
            AttemptResult {
                http_status: Some(status),
                body: String::from_utf8_lossy(&buf).into_owned(),
                error: read.err().map(|e| format!("reading the response body: {e}")),
            }
        }
        Err(e) => AttemptResult { http_status: None, body: String::new(), error: Some(e.to_string()) },
    }
}

fn acked(rule: AckRule, r: &AttemptResult) -> bool {
    let ok2xx = r.http_status.is_some_and(|s| (200..300).contains(&s));
    match rule {
        AckRule::AnyResponse => r.http_status.is_some(),
        AckRule::Success => ok2xx,
        AckRule::SuccessOk => ok2xx && r.body.trim() == "ok",
    }
}

/// Make one attempt, record it, and schedule the next one if needed.
pub(crate) fn run_job(shared: &Arc<Shared>, job: PushJob) -> DeliveryRecord {
    let result = send(&job);
    let acked = acked(job.ack, &result);
    let mechanism = match job.mechanism {
        Mechanism::Callback => "callback",
        Mechanism::Webhook => "webhook",
    };
    shared.log(|| {
        format!(
            "{mechanism} attempt {} for message {} to {} -> {}",
            job.attempt,
            job.message_id,
            redact(&job.url),
            match (&result.http_status, &result.error) {
                (Some(s), _) => format!("HTTP {s}{}", if acked { " (acked)" } else { "" }),
                (None, Some(e)) => format!("error: {e}"),
                (None, None) => "no answer".to_string(),
            }
        )
    });
    let mut st = shared.lock();
    let now = st.now_ms();
    let record = DeliveryRecord {
        seq: st.next_delivery_seq,
        at: clock::rfc3339_utc(now),
        message_id: job.message_id.clone(),
        mechanism: mechanism.to_string(),
        url: job.url.clone(),
        attempt: job.attempt,
        request_body: job.body.clone().unwrap_or_default(),
        http_status: result.http_status,
        response_body: result.body,
        acked,
        error: result.error,
    };
    st.next_delivery_seq += 1;
    st.deliveries.push(record.clone());
    shared.changed.notify_all();
    if let Some((interval_s, max)) = job.retry
        && !acked
        && max.is_none_or(|m| job.attempt < m)
    {
        let due_ms = now + (interval_s as i64).saturating_mul(1000);
        st.pending.push(PendingPush { due_ms, job: PushJob { attempt: job.attempt + 1, ..job } });
        shared.retry_cv.notify_all();
    }
    record
}

/// Remove the retries that are due on the mock clock, oldest first.
pub(crate) fn take_due(st: &mut State) -> Vec<PendingPush> {
    let now = st.now_ms();
    let (mut due, later): (Vec<_>, Vec<_>) = st.pending.drain(..).partition(|p| p.due_ms <= now);
    st.pending = later;
    due.sort_by_key(|p| p.due_ms);
    due
}

/// Run retries taken with [`take_due`] (each once; its next retry, if any, is one interval
/// after now). Returns the attempts made.
pub(crate) fn run_due(shared: &Arc<Shared>, due: Vec<PendingPush>) -> Vec<DeliveryRecord> {
    due.into_iter().map(|p| run_job(shared, p.job)).collect()
}

/// Run every retry that is due now.
pub(crate) fn fire_due(shared: &Arc<Shared>) -> Vec<DeliveryRecord> {
    let due = take_due(&mut shared.lock());
    run_due(shared, due)
}

/// The retry thread: with a real clock, fires retries when they fall due; with a fixed clock
/// only clock moves (which call [`fire_due`] themselves) make retries due.
pub(crate) fn retry_loop(shared: Arc<Shared>) {
    loop {
        {
            let mut st = shared.lock();
            loop {
                if shared.shutdown.load(Ordering::SeqCst) {
                    return;
                }
                let next = st.pending.iter().map(|p| p.due_ms).min();
                match next {
                    Some(due) if st.clock.is_real() => {
                        let now = st.now_ms();
                        if due <= now {
                            break;
                        }
                        let wait = Duration::from_millis((due - now).min(60_000) as u64);
                        st = match shared.retry_cv.wait_timeout(st, wait) {
                            Ok((g, _)) => g,
                            Err(e) => e.into_inner().0,
                        };
                    }
                    _ => {
                        st = match shared.retry_cv.wait(st) {
                            Ok(g) => g,
                            Err(e) => e.into_inner(),
                        };
                    }
                }
            }
        }
        fire_due(&shared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_redaction() {
        let (u, a) = split_userinfo("http://voipms:p%40ss@127.0.0.1:8080/hook?key=s3cret&x=1");
        assert_eq!(u, "http://127.0.0.1:8080/hook?key=s3cret&x=1");
        assert_eq!(a, Some(("voipms".into(), "p@ss".into())));
        assert_eq!(split_userinfo("http://h/p?a=b@c").1, None);
        assert_eq!(
            redact("http://voipms:pw@127.0.0.1:8080/hook?key=s3cret&x=1"),
            "http://***@127.0.0.1:8080/hook?key=***&x=1"
        );
    }

    #[test]
    fn uuid_shape() {
        let u = event_uuid(1);
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
        assert_eq!(u.as_bytes()[19], b'8');
        assert_ne!(event_uuid(1), event_uuid(2));
    }

    #[test]
    fn callback_placeholders() {
        let msg = StoredMessage {
            kind: MessageKind::Sms,
            id: 100000001,
            date: "2025-07-20 12:00:00".into(),
            at: "2025-07-20T16:00:00Z".into(),
            r#type: 1,
            did: "5551234567".into(),
            contact: "5145550100".into(),
            message: "hi & bye".into(),
            media: vec![],
            carrier_status: String::new(),
        };
        let t = "http://h/cb?to={TO};from={FROM};message={MESSAGE};id={ID};date={TIMESTAMP};media={MEDIA}";
        let mut o = Options::default();
        assert_eq!(
            callback_url(t, &msg, true, &o),
            "http://h/cb?to=%2B15551234567;from=%2B15145550100;message=hi%20%26%20bye;id=100000001;date=2025-07-20%2012%3A00%3A00;media="
        );
        o.media_placeholder_literal = true;
        assert!(callback_url(t, &msg, false, &o).ends_with("media={MEDIA}"));
    }
}
