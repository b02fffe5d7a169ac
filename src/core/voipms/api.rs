//! VoIP.ms REST calls: the parameters of each request, and what an answer means.
//!
//! Every answer is classified (voipms.md §4.2, design.md §4): success, transient (retry),
//! ambiguous (the request may have been carried out), quota, operator configuration, permanent,
//! our bug, unknown. Each failure carries the stanza error the XMPP sender receives and a reason
//! in plain words that names no secret, no full phone number and no message text.

use crate::core::json::{self, Value};
use crate::core::phone::{Destination, Nanp};
use crate::core::voipms::did_info::SmsSettings;
use crate::core::voipms::parts::{Method, Part};

/// At most this many rows per list call. VoIP.ms's default is 50; one page must hold a day of
/// a busy DID so that backfill never misses a message that fell off the page.
pub const LIST_LIMIT: u32 = 1000;

/// VoIP.ms ids are numbers; 64 bytes leaves room for other forms without letting one grow.
pub const MAX_ID_BYTES: usize = 64;

/// Whether a VoIP.ms message id may be used: 1 to [`MAX_ID_BYTES`] ASCII letters, digits, `-`,
/// `_`, `.` or `:`. Ids become seen-log keys (`state_dir/seen.log`, one `key<TAB>time` per line)
/// and file-name-like record fields: a tab or newline in one would write lines of its own (a
/// `quota` line closing sending, a `cursor` line stopping backfill). Anything else is refused
/// where it comes in.
pub fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A call to make. Credentials are added by the shell; they never pass through the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `sendSMS` or `sendMMS` for one part of a message.
    Send {
        /// The sending DID.
        did: Nanp,
        /// The destination (a number or a short code).
        dst: Destination,
        /// What to send.
        part: Part,
    },
    /// `getSMS`/`getMMS` for messages sent (type 0) from `did` to `contact`: did a send whose
    /// answer was lost go out? (voipms.md §4.3)
    Sent {
        /// The sending DID.
        did: Nanp,
        /// The destination (a number or a short code).
        contact: Destination,
        /// `getMMS` rather than `getSMS`.
        mms: bool,
        /// First day, `YYYY-MM-DD` US Eastern.
        from: String,
        /// Last day.
        to: String,
    },
    /// `getMMS` with `all_messages=1`: every SMS and MMS received (type 1) by `did` (backfill).
    Received {
        /// The DID.
        did: Nanp,
        /// First day, `YYYY-MM-DD` US Eastern.
        from: String,
        /// Last day.
        to: String,
    },
    /// `getMediaMMS` for an MMS whose list row came without its media (voipms.md §6.2).
    Media {
        /// The MMS id.
        id: String,
    },
    /// `getIP`: the caller's address as VoIP.ms sees it; the one method VoIP.ms answers
    /// whatever its IP allow-list says (voipms.md §2), so it names the address to allow.
    Ip,
    /// `getBalance`: the account's prepaid balance.
    Balance,
    /// `getDIDsInfo` for one DID: whether it is on the account, and its SMS settings (§7.2).
    DidInfo {
        /// The DID.
        did: Nanp,
    },
    /// `setSMS`: a DID's whole SMS configuration, every setting restated (§7.1: setSMS
    /// disables whatever it is not told).
    SetSms(Box<SmsSettings>),
}

impl Request {
    /// The API method name.
    pub fn method(&self) -> &'static str {
        match self {
            Request::Send { part, .. } => match part.method {
                Method::Sms => "sendSMS",
                Method::Mms => "sendMMS",
            },
            Request::Sent { mms: false, .. } => "getSMS",
            Request::Sent { mms: true, .. } | Request::Received { .. } => "getMMS",
            Request::Media { .. } => "getMediaMMS",
            Request::Ip => "getIP",
            Request::Balance => "getBalance",
            Request::DidInfo { .. } => "getDIDsInfo",
            Request::SetSms(_) => "setSMS",
        }
    }

    /// The method's parameters (without `api_username`, `api_password` and `method`).
    pub fn params(&self) -> Vec<(&'static str, String)> {
        match self {
            Request::Send { did, dst, part } => {
                let mut p = vec![
                    ("did", did.ten_digits().to_string()),
                    ("dst", dst.digits().to_string()),
                    ("message", part.message.clone()),
                ];
                for (name, url) in ["media1", "media2", "media3"].into_iter().zip(&part.media) {
                    p.push((name, url.clone()));
                }
                p
            }
            Request::Sent { did, contact, from, to, .. } => vec![
                ("type", "0".to_string()),
                ("did", did.ten_digits().to_string()),
                ("contact", contact.digits().to_string()),
                ("from", from.clone()),
                ("to", to.clone()),
                ("limit", LIST_LIMIT.to_string()),
            ],
            Request::Received { did, from, to } => vec![
                ("type", "1".to_string()),
                ("did", did.ten_digits().to_string()),
                ("from", from.clone()),
                ("to", to.clone()),
                ("all_messages", "1".to_string()),
                ("limit", LIST_LIMIT.to_string()),
            ],
            Request::Media { id } => vec![("id", id.clone()), ("media_as_array", "1".to_string())],
            Request::Ip | Request::Balance => Vec::new(),
            Request::DidInfo { did } => vec![("did", did.ten_digits().to_string())],
            Request::SetSms(settings) => settings.params(),
        }
    }
}

/// What the shell saw when it made a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// An HTTP response (any status). `body` is truncated by the shell to a safe size.
    Response {
        /// HTTP status code.
        status: u16,
        /// The body as text (lossy UTF-8).
        body: String,
    },
    /// The request never left: DNS failure, connection refused, TLS failure.
    NotSent(String),
    /// The request left but no answer came: timeout, reset. It may have been carried out.
    NoAnswer(String),
}

/// The meaning of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `status: success`, with the new message id when VoIP.ms gave one.
    Sent {
        /// The `sms`/`mms` id.
        id: Option<String>,
    },
    /// Anything else.
    Failed(Failure),
}

/// How a failure should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Nothing was done (never sent, `method_maintenance`, …): retry later.
    Transient,
    /// The request may have been carried out (no answer, or an answer that is not VoIP.ms's
    /// verdict: HTTP 4xx/5xx, not JSON, no status): look before resending.
    Ambiguous,
    /// `api_limit_exceeded`: slow down (the limit is per minute).
    RateLimited,
    /// `limit_reached`: the daily sending cap.
    Quota,
    /// `sms_failed`: unknown cause; one short retry at most.
    SmsFailed,
    /// The operator must fix something (credentials, IP allow-list, DID, funds, URL).
    Operator,
    /// This message can never be sent as it is (bad number, too long, bad media).
    Permanent,
    /// The request was malformed: our bug.
    Bug,
    /// A status we do not know: not retried, since a retry could duplicate.
    Unknown,
}

/// A classified failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// How to handle it.
    pub class: FailureClass,
    /// The VoIP.ms status, or `HTTP 503`, `timeout`, … for logs.
    pub status: String,
    /// The RFC 6120 stanza error condition for the sender.
    pub condition: &'static str,
    /// The stanza error type (`cancel`, `wait`, `modify`).
    pub error_type: &'static str,
    /// The reason in plain words.
    pub text: String,
}

/// Interpret the outcome of `request`.
pub fn classify(outcome: &CallOutcome) -> Answer {
    match answer(outcome) {
        Ok((status, value)) if status == "success" => {
            Answer::Sent { id: value.get("sms").or_else(|| value.get("mms")).and_then(Value::as_text) }
        }
        Ok((status, _)) => Answer::Failed(classify_status(&status)),
        Err(f) => Answer::Failed(f),
    }
}

/// The `status` and the JSON of an answer, or the failure of a call that did not produce one
/// (transport trouble, an HTTP error, garbage, a JSON object without a status).
///
/// VoIP.ms answers every call with HTTP 200 and a JSON `status` (voipms.md §3): only that is its
/// own word on what happened, and keeps its class. Anything else that comes back to a request
/// that was sent in full (a proxy's 502/504, an HTML page, JSON without a status, no answer at
/// all) may follow a send VoIP.ms carried out, so it is ambiguous: looked up before any resend.
/// Only a request that never left, and HTTP 429 (refused before it was handled), may be resent
/// blind; a redirect means a wrong `api_url`.
pub(super) fn answer(outcome: &CallOutcome) -> Result<(String, Value), Failure> {
    let (http, body) = match outcome {
        CallOutcome::NotSent(why) => {
            return Err(failure(FailureClass::Transient, "not sent", format!("could not reach VoIP.ms ({why})")));
        }
        CallOutcome::NoAnswer(why) => {
            return Err(failure(
                FailureClass::Ambiguous,
                "no answer",
                format!("VoIP.ms did not answer in time ({why})"),
            ));
        }
        CallOutcome::Response { status, body } => (*status, body),
    };
    let (class, status, text) = match http {
        200..=299 => {
            let Ok(value) = json::parse(body) else {
                return Err(failure(FailureClass::Ambiguous, "not JSON", "VoIP.ms sent an unreadable answer".into()));
            };
            let Some(status) = value.get("status").and_then(Value::as_str).map(str::to_string) else {
                return Err(failure(
                    FailureClass::Ambiguous,
                    "no status",
                    "VoIP.ms sent an answer without a status".into(),
                ));
            };
            return Ok((status, value));
        }
        300..=399 => (
            FailureClass::Operator,
            format!("HTTP {http}"),
            format!("VoIP.ms answered with a redirect (HTTP {http}): the gateway's voipms.api_url is wrong"),
        ),
        429 => (
            FailureClass::RateLimited,
            "HTTP 429".to_string(),
            "VoIP.ms is rate limiting the gateway (HTTP 429)".to_string(),
        ),
        // Not something the API does (it answers 200 with a status); a CDN block, perhaps.
        400..=499 => {
            (FailureClass::Ambiguous, format!("HTTP {http}"), format!("VoIP.ms refused the request (HTTP {http})"))
        }
        _ => (FailureClass::Ambiguous, format!("HTTP {http}"), format!("VoIP.ms is unavailable (HTTP {http})")),
    };
    Err(failure(class, &status, text))
}

/// One message from a getSMS/getMMS list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// VoIP.ms's id.
    pub id: String,
    /// `true` for a row with media columns (an MMS, or an SMS that `all_messages=1` listed
    /// with them: a [`Request::Media`] lookup tells, when the row has no media).
    pub mms: bool,
    /// `YYYY-MM-DD HH:MM:SS`, US Eastern.
    pub date: String,
    /// The DID, as sent (10 digits or `+1…`).
    pub did: String,
    /// The other party, as sent.
    pub contact: String,
    /// The text.
    pub message: String,
    /// Media URLs (may be missing even for a picture; see [`Request::Media`]).
    pub media: Vec<String>,
}

/// Read a list answer (`getSMS`/`getMMS`): rows, none (`no_sms`), or a failure.
pub fn rows(outcome: &CallOutcome) -> Result<Vec<Row>, Failure> {
    let value = match answer(outcome)? {
        (status, value) if status == "success" => value,
        (status, _) if status == "no_sms" || status == "no_mms" => return Ok(Vec::new()),
        (status, _) => return Err(classify_status(&status)),
    };
    let items = value.get("sms").and_then(Value::as_array).unwrap_or(&[]);
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let text = |k: &str| item.get(k).and_then(Value::as_text);
        // A row without an id (or with an empty one, found by fuzzing) cannot be told apart
        // from others: skipped, as one without a date.
        let (Some(id), Some(date)) = (text("id").filter(|i| !i.is_empty()), text("date")) else {
            continue;
        };
        let mut media: Vec<String> = item
            .get("media")
            .and_then(Value::as_array)
            .unwrap_or(&[])
            .iter()
            .filter_map(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect();
        if media.is_empty() {
            media = ["col_media1", "col_media2", "col_media3"]
                .iter()
                .filter_map(|k| text(k))
                .filter(|m| !m.is_empty())
                .collect();
        }
        // getMMS gives MMS rows media columns (voipms.md §11.6), often empty (§6.2): a row with
        // them, whatever their values, is taken for an MMS, and one without media is looked up
        // with getMediaMMS (`invalid_id`: it was an SMS after all).
        let mms = ["col_media1", "col_media2", "col_media3", "media"].iter().any(|k| item.get(k).is_some());
        out.push(Row {
            id,
            mms,
            date,
            did: text("did").unwrap_or_default(),
            contact: text("contact").unwrap_or_default(),
            message: text("message").unwrap_or_default(),
            media,
        });
    }
    Ok(out)
}

/// A `getMediaMMS` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaAnswer {
    /// The message's `date`, when the answer gives one (to check it is the row's message: SMS
    /// and MMS ids may be separate sequences, voipms.md §6.2).
    pub date: Option<String>,
    /// The media URLs.
    pub urls: Vec<String>,
}

/// Read a `getMediaMMS` answer: the media URLs, as an object keyed "1".."3" or an array.
pub fn media(outcome: &CallOutcome) -> Result<MediaAnswer, Failure> {
    let value = match answer(outcome)? {
        (status, value) if status == "success" => value,
        (status, _) => return Err(classify_status(&status)),
    };
    let urls = match value.get("media") {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(Value::Object(members)) => members.iter().filter_map(|(_, v)| v.as_str()).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    let urls = urls.into_iter().filter(|u: &String| !u.is_empty()).collect();
    Ok(MediaAnswer { date: value.get("date").and_then(Value::as_text), urls })
}

/// The classification and wording of a VoIP.ms error status (voipms.md §4.2).
pub fn classify_status(status: &str) -> Failure {
    use FailureClass::*;
    let (class, text): (FailureClass, &str) = match status {
        "api_limit_exceeded" => (RateLimited, "VoIP.ms's per-minute API limit was reached"),
        "method_maintenance" | "unavailable_info" | "provider_outofservice" | "tls_error" => {
            (Transient, "VoIP.ms's sending service is temporarily unavailable")
        }
        "sms_failed" => (SmsFailed, "VoIP.ms could not deliver the message to the carrier"),
        "limit_reached" => (
            Quota,
            "VoIP.ms daily sending limit reached; it resets at midnight US Eastern time (ask VoIP.ms support to raise it)",
        ),
        "invalid_credentials" | "missing_credentials" => (
            Operator,
            "VoIP.ms rejected the gateway's API credentials; the operator must fix voipms.api_username/api_password",
        ),
        "ip_not_enabled" => (
            Operator,
            "VoIP.ms does not accept API calls from the gateway's IP address; the operator must allow it at voip.ms (Main Menu, SOAP and REST/JSON API)",
        ),
        "api_not_enabled" => (Operator, "the VoIP.ms API is not enabled for the account; the operator must enable it"),
        "invalid_did" | "missing_did" | "invalid_from_number" => {
            (Operator, "VoIP.ms will not send from this DID: it is not on the account or SMS is not enabled on it")
        }
        "non_sufficient_funds" => (Operator, "the VoIP.ms account has insufficient funds"),
        "invalid_dst" | "invalid_to_number" => (Permanent, "VoIP.ms cannot send to this number"),
        "sms_toolong" => (Permanent, "VoIP.ms says the message is too long"),
        "message_empty" | "missing_sms" | "invalid_sms" => (Permanent, "VoIP.ms says the message is empty or invalid"),
        "exceeds_file_size" => (Permanent, "an attachment is too large for VoIP.ms"),
        "no_base64file" | "invalid_file" => (Permanent, "VoIP.ms cannot use an attachment"),
        "missing_method" | "invalid_method" | "missing_params" => (Bug, "the gateway sent VoIP.ms a malformed request"),
        _ => (Unknown, "VoIP.ms refused the message"),
    };
    failure(class, status, text.to_string())
}

pub(super) fn failure(class: FailureClass, status: &str, text: String) -> Failure {
    let (condition, error_type) = match class {
        FailureClass::Transient | FailureClass::Ambiguous => ("remote-server-timeout", "wait"),
        FailureClass::RateLimited | FailureClass::Quota => ("resource-constraint", "wait"),
        FailureClass::SmsFailed => ("recipient-unavailable", "wait"),
        FailureClass::Operator => ("service-unavailable", "cancel"),
        FailureClass::Permanent if status == "invalid_dst" || status == "invalid_to_number" => {
            ("item-not-found", "cancel")
        }
        FailureClass::Permanent => ("not-acceptable", "modify"),
        FailureClass::Bug => ("internal-server-error", "cancel"),
        FailureClass::Unknown => ("undefined-condition", "cancel"),
    };
    // The status code is safe to show and lets the user search VoIP.ms's documentation.
    let safe_status: String =
        status.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ' ')).take(48).collect();
    let text =
        if safe_status.is_empty() || text.contains(&safe_status) { text } else { format!("{text} ({safe_status})") };
    Failure { class, status: safe_status, condition, error_type, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: &str) -> Answer {
        classify(&CallOutcome::Response { status: 200, body: body.to_string() })
    }

    fn failed(a: Answer) -> Failure {
        match a {
            Answer::Failed(f) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn success_with_numeric_or_string_ids() {
        assert_eq!(response(r#"{"status":"success","sms":23434}"#), Answer::Sent { id: Some("23434".into()) });
        assert_eq!(response(r#"{"status":"success","mms":"23434"}"#), Answer::Sent { id: Some("23434".into()) });
        assert_eq!(response(r#"{"status":"success"}"#), Answer::Sent { id: None });
    }

    #[test]
    fn statuses_map_to_conditions() {
        let cases = [
            ("invalid_dst", FailureClass::Permanent, "item-not-found", "cancel"),
            ("sms_toolong", FailureClass::Permanent, "not-acceptable", "modify"),
            ("message_empty", FailureClass::Permanent, "not-acceptable", "modify"),
            ("limit_reached", FailureClass::Quota, "resource-constraint", "wait"),
            ("api_limit_exceeded", FailureClass::RateLimited, "resource-constraint", "wait"),
            ("invalid_credentials", FailureClass::Operator, "service-unavailable", "cancel"),
            ("ip_not_enabled", FailureClass::Operator, "service-unavailable", "cancel"),
            ("non_sufficient_funds", FailureClass::Operator, "service-unavailable", "cancel"),
            ("invalid_did", FailureClass::Operator, "service-unavailable", "cancel"),
            ("sms_failed", FailureClass::SmsFailed, "recipient-unavailable", "wait"),
            ("method_maintenance", FailureClass::Transient, "remote-server-timeout", "wait"),
            ("missing_method", FailureClass::Bug, "internal-server-error", "cancel"),
            ("something_new", FailureClass::Unknown, "undefined-condition", "cancel"),
        ];
        for (status, class, condition, kind) in cases {
            let f = failed(response(&format!(r#"{{"status":"{status}"}}"#)));
            assert_eq!((f.class, f.condition, f.error_type), (class, condition, kind), "{status}");
            assert!(f.text.contains(status), "{status}: {}", f.text);
        }
    }

    #[test]
    fn transport_failures() {
        assert_eq!(
            failed(classify(&CallOutcome::Response { status: 503, body: String::new() })).class,
            FailureClass::Ambiguous
        );
        assert_eq!(
            failed(classify(&CallOutcome::Response { status: 429, body: String::new() })).class,
            FailureClass::RateLimited
        );
        let redirect = failed(classify(&CallOutcome::Response { status: 301, body: String::new() }));
        assert_eq!((redirect.class, redirect.condition), (FailureClass::Operator, "service-unavailable"));
        assert_eq!(failed(response("<html>busy</html>")).class, FailureClass::Ambiguous);
        assert_eq!(failed(response("{}")).class, FailureClass::Ambiguous);
        assert_eq!(failed(classify(&CallOutcome::NotSent("connection refused".into()))).class, FailureClass::Transient);
        let lost = failed(classify(&CallOutcome::NoAnswer("timed out".into())));
        assert_eq!(
            (lost.class, lost.condition, lost.error_type),
            (FailureClass::Ambiguous, "remote-server-timeout", "wait")
        );
    }

    #[test]
    fn an_answer_to_a_request_that_was_sent_is_ambiguous_unless_voipms_said_what_happened() {
        // Regression (issue 6, defect 7): a proxy's 502/504, an HTML page or a JSON object
        // without a status can come after VoIP.ms sent the SMS; resending blind sends it twice.
        let http = |status: u16, body: &str| failed(classify(&CallOutcome::Response { status, body: body.into() }));
        for f in [
            http(500, ""),
            http(502, "<h1>Bad gateway</h1>"),
            http(504, ""),
            http(503, r#"{"status":"method_maintenance"}"#),
            http(404, ""),
            http(403, "blocked"),
            http(200, "<html>busy</html>"),
            http(200, "{}"),
            http(200, r#"{"status":7}"#),
            failed(classify(&CallOutcome::NoAnswer("timed out".into()))),
        ] {
            assert_eq!(
                (f.class, f.condition, f.error_type),
                (FailureClass::Ambiguous, "remote-server-timeout", "wait"),
                "{f:?}"
            );
        }
        // Blind resends stay for what certainly did nothing: never sent, or rate limited.
        assert_eq!(failed(classify(&CallOutcome::NotSent("refused".into()))).class, FailureClass::Transient);
        assert_eq!(http(429, "").class, FailureClass::RateLimited);
        // VoIP.ms's own word keeps its class; a redirect is still the operator's.
        assert_eq!(http(200, r#"{"status":"method_maintenance"}"#).class, FailureClass::Transient);
        assert_eq!(http(200, r#"{"status":"invalid_dst"}"#).class, FailureClass::Permanent);
        assert_eq!(http(301, "").class, FailureClass::Operator);
        // Lists (read-only) read the same way: a failure, retried by their caller.
        assert_eq!(
            rows(&CallOutcome::Response { status: 502, body: String::new() }).unwrap_err().class,
            FailureClass::Ambiguous
        );
    }

    #[test]
    fn hostile_statuses_are_sanitised() {
        let f = failed(response(r#"{"status":"<script>alert(1)</script>"}"#));
        assert_eq!(f.status, "scriptalert1script");
        assert!(!f.text.contains('<'));
    }

    #[test]
    fn list_rows_in_every_shape() {
        let body = r#"{"status":"success","sms":[
            {"id":"200000001","date":"2025-07-20 16:24:16","type":"1","did":"5552345678","contact":"+15559998888",
             "message":"pic","col_media1":"","col_media2":"","col_media3":"","media":["https://m/1.jpg"]},
            {"id":100000001,"date":"2025-07-20 16:20:00","type":"1","did":"5552345678","contact":"5559998888",
             "message":"hello","carrier_status":"Information not available"},
            {"id":"200000002","date":"2025-07-20 16:25:00","did":"5552345678","contact":"5559998888","message":"",
             "col_media1":"https://m/2.jpg","col_media2":"","col_media3":""},
            {"date":"no id: skipped"},{"id":"","date":"2025-07-20 16:25:00","message":"empty id: skipped"}]}"#;
        let r = rows(&CallOutcome::Response { status: 200, body: body.into() }).unwrap();
        assert_eq!(r.len(), 3);
        assert!(r[0].mms && r[0].media == vec!["https://m/1.jpg".to_string()]);
        assert!(!r[1].mms && r[1].id == "100000001" && r[1].message == "hello");
        assert_eq!(r[2].media, vec!["https://m/2.jpg".to_string()]);
        assert_eq!(rows(&CallOutcome::Response { status: 200, body: r#"{"status":"no_sms"}"#.into() }), Ok(vec![]));
        assert_eq!(
            rows(&CallOutcome::Response { status: 200, body: r#"{"status":"invalid_did"}"#.into() }).unwrap_err().class,
            FailureClass::Operator
        );
        assert_eq!(rows(&CallOutcome::NotSent("x".into())).unwrap_err().class, FailureClass::Transient);
    }

    #[test]
    fn a_row_with_media_columns_is_an_mms_whatever_their_values() {
        // Regression (issue 6, defect 5): only a row with media counted as an MMS, so one
        // whose media the list omitted was never looked up with getMediaMMS.
        let body = r#"{"status":"success","sms":[
            {"id":"200000003","date":"2025-07-20 16:25:00","did":"5552345678","contact":"5559998888","message":"",
             "col_media1":"","col_media2":"","col_media3":"","media":[]},
            {"id":"200000004","date":"2025-07-20 16:25:00","did":"5552345678","contact":"5559998888","message":"",
             "media":[]},
            {"id":"200000005","date":"2025-07-20 16:25:00","did":"5552345678","contact":"5559998888","message":"",
             "col_media1":""},
            {"id":"100000002","date":"2025-07-20 16:25:00","did":"5552345678","contact":"5559998888","message":"sms"}]}"#;
        let r = rows(&CallOutcome::Response { status: 200, body: body.into() }).unwrap();
        assert_eq!(r.iter().map(|r| r.mms).collect::<Vec<_>>(), vec![true, true, true, false]);
        assert!(r.iter().all(|r| r.media.is_empty()));
    }

    #[test]
    fn media_as_object_or_array() {
        let object = r#"{"status":"success","id":"1","date":"x","media":{"1":"https://a","2":"https://b"}}"#;
        let m = media(&CallOutcome::Response { status: 200, body: object.into() }).unwrap();
        assert_eq!((m.urls, m.date.as_deref()), (vec!["https://a".to_string(), "https://b".to_string()], Some("x")));
        let array = r#"{"status":"success","media":["https://a"]}"#;
        let m = media(&CallOutcome::Response { status: 200, body: array.into() }).unwrap();
        assert_eq!((m.urls, m.date), (vec!["https://a".to_string()], None));
    }

    #[test]
    fn send_params() {
        let did = Nanp::parse("5552345678").unwrap();
        let dst = Nanp::parse("+15557654321").unwrap().into();
        let part =
            Part { method: Method::Mms, message: "hi".into(), media: vec!["https://a/1".into(), "https://a/2".into()] };
        let r = Request::Send { did, dst, part };
        assert_eq!(r.method(), "sendMMS");
        assert_eq!(
            r.params(),
            vec![
                ("did", "5552345678".to_string()),
                ("dst", "5557654321".to_string()),
                ("message", "hi".to_string()),
                ("media1", "https://a/1".to_string()),
                ("media2", "https://a/2".to_string()),
            ]
        );
    }
}
