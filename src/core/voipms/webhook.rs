//! VoIP.ms's inbound JSON webhook body (voipms.md §8.1) → [`InboundMessage`].
//!
//! Only `data.payload.from.phone_number`, `data.payload.to[].phone_number`, `data.payload.text`
//! and `data.payload.media[].url` are confirmed; everything else is read when present and never
//! required. Numbers come as 10 digits or `+1…` depending on the DID's dial mode. Unknown keys
//! are ignored (VoIP.ms may add fields). Sizes are bounded by the HTTP layer (64 KiB body) and
//! again here per field.

use crate::core::json::{self, Value};
use crate::core::phone::{Nanp, Sender};
use crate::core::voipms::api;
use std::fmt;

/// More `to` entries than this is not a real VoIP.ms delivery.
const MAX_RECIPIENTS: usize = 16;
/// VoIP.ms MMS carry at most 3 media; 10 leaves room without letting a body fan out widely.
const MAX_MEDIA: usize = 10;
/// Telnyx event types for messages we sent (their status reports), never received messages.
const OTHER_EVENTS: [&str; 3] = ["message.sent", "message.finalized", "message.failed"];
/// A media URL longer than this is not a URL we will forward.
const MAX_URL_BYTES: usize = 2048;

/// A received SMS/MMS, as VoIP.ms described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// `data.payload.id`, VoIP.ms's message id, when present (used to drop duplicates).
    pub id: Option<String>,
    /// Who sent it.
    pub from: Sender,
    /// The DIDs it was sent to (normally one).
    pub to: Vec<Nanp>,
    /// The text; may be empty for a picture-only MMS.
    pub text: String,
    /// Media URLs.
    pub media: Vec<String>,
    /// `data.payload.received_at` as sent, when present (format not documented).
    pub received_at: Option<String>,
    /// Whether VoIP.ms calls it an MMS (`data.payload.type`; guessed from media when absent).
    /// SMS and MMS ids may come from separate sequences, so the kind is part of the id.
    pub mms: bool,
}

/// What a webhook body asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// A message to deliver.
    Message(InboundMessage),
    /// Something that is not a received message (another event type, an outbound echo):
    /// acknowledged and not delivered.
    Ignored(String),
}

/// Why a body was refused (answered with HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookError {
    /// The body is not UTF-8 JSON.
    NotJson(String),
    /// A required part is missing or has the wrong shape.
    Missing(&'static str),
    /// The sender's number cannot be used.
    BadSender,
    /// No `to` entry is a NANP number.
    BadRecipient,
    /// Some part exceeds our bounds.
    TooLarge(&'static str),
    /// The message id has characters outside [`api::is_safe_id`]'s alphabet, or is too long.
    BadId,
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebhookError::NotJson(why) => write!(f, "body is not JSON: {why}"),
            WebhookError::Missing(what) => write!(f, "missing {what}"),
            WebhookError::BadSender => {
                write!(f, "data.payload.from.phone_number is not a phone number")
            }
            WebhookError::BadRecipient => {
                write!(f, "no data.payload.to[].phone_number is a US/Canada number")
            }
            WebhookError::TooLarge(what) => write!(f, "too many or too large: {what}"),
            WebhookError::BadId => write!(
                f,
                "data.payload.id must be at most {} ASCII letters, digits, '-', '_', '.' or ':'",
                api::MAX_ID_BYTES
            ),
        }
    }
}

impl std::error::Error for WebhookError {}

/// Parse a webhook body.
pub fn parse(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let text = std::str::from_utf8(body).map_err(|_| WebhookError::NotJson("not UTF-8".into()))?;
    let root = json::parse(text).map_err(|e| WebhookError::NotJson(e.to_string()))?;
    let data = root.get("data").filter(|d| d.as_object().is_some()).ok_or(WebhookError::Missing("data"))?;
    // Both fields are unverified Telnyx analogues (voipms.md §8.1): only values that clearly
    // describe something other than a received message are ignored; anything unknown is
    // delivered, since dropping a real text after answering `200 ok` would lose it for good.
    if let Some(event) = data.get("event_type").and_then(Value::as_str)
        && OTHER_EVENTS.contains(&event)
    {
        return Ok(WebhookEvent::Ignored(format!("event_type {event}")));
    }
    let payload =
        data.get("payload").filter(|p| p.as_object().is_some()).ok_or(WebhookError::Missing("data.payload"))?;
    if let Some(direction) = payload.get("direction").and_then(Value::as_str)
        && direction.eq_ignore_ascii_case("outbound")
    {
        return Ok(WebhookEvent::Ignored(format!("direction {direction}")));
    }
    let from_text = payload
        .get("from")
        .and_then(|f| f.get("phone_number"))
        .and_then(Value::as_text)
        .ok_or(WebhookError::Missing("data.payload.from.phone_number"))?;
    let from = Sender::parse(&from_text).ok_or(WebhookError::BadSender)?;
    let to_items = match payload.get("to") {
        Some(Value::Array(items)) if !items.is_empty() => items.as_slice(),
        // Before July 2025 some accounts sent a single object (AGWA commit ca1e25a).
        Some(obj @ Value::Object(_)) => std::slice::from_ref(obj),
        _ => return Err(WebhookError::Missing("data.payload.to")),
    };
    if to_items.len() > MAX_RECIPIENTS {
        return Err(WebhookError::TooLarge("data.payload.to"));
    }
    let mut to: Vec<Nanp> = Vec::new();
    for item in to_items {
        let number = item.get("phone_number").and_then(Value::as_text).and_then(|n| Nanp::parse(n.trim()));
        if let Some(n) = number
            && !to.contains(&n)
        {
            to.push(n);
        }
    }
    if to.is_empty() {
        return Err(WebhookError::BadRecipient);
    }
    let text = match payload.get("text") {
        None | Some(Value::Null) => String::new(),
        Some(v) => v.as_text().ok_or(WebhookError::Missing("data.payload.text as a string"))?,
    };
    let mut media = Vec::new();
    if let Some(items) = payload.get("media").and_then(Value::as_array) {
        if items.len() > MAX_MEDIA {
            return Err(WebhookError::TooLarge("data.payload.media"));
        }
        for item in items {
            // `{"url": …}` is the confirmed shape; a bare string is accepted too.
            let url = item.get("url").and_then(Value::as_str).or_else(|| item.as_str()).map(str::trim);
            match url {
                Some(u) if u.len() > MAX_URL_BYTES => {
                    return Err(WebhookError::TooLarge("data.payload.media[].url"));
                }
                Some(u) if !u.is_empty() => media.push(u.to_string()),
                _ => {}
            }
        }
    }
    let id = payload.get("id").and_then(Value::as_text).or_else(|| data.get("id").and_then(Value::as_text));
    let id = id.filter(|i| !i.is_empty());
    if id.as_deref().is_some_and(|i| !api::is_safe_id(i)) {
        return Err(WebhookError::BadId);
    }
    let mms = match payload.get("type").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("mms") => true,
        Some(t) if t.eq_ignore_ascii_case("sms") => false,
        _ => !media.is_empty(),
    };
    let received_at = payload.get("received_at").and_then(Value::as_str).map(str::to_string).filter(|r| r.len() <= 64);
    Ok(WebhookEvent::Message(InboundMessage { id, from, to, text, media, received_at, mms }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> InboundMessage {
        match parse(body.as_bytes()) {
            Ok(WebhookEvent::Message(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_documented_example() {
        let m = message(
            r#"{"data":{"id":"b1c2","event_type":"message.received",
              "payload":{"id":"272377221","type":"MMS",
                "from":{"phone_number":"5145551234"},
                "to":[{"phone_number":"4385556789"}],
                "text":"hello",
                "media":[{"url":"https://voip.ms/media/x/media.jpeg"}],
                "received_at":"2025-07-20 16:24:16"}}}"#,
        );
        assert_eq!(m.id.as_deref(), Some("272377221"));
        assert_eq!(m.from, Sender::Nanp(Nanp::parse("5145551234").unwrap()));
        assert_eq!(m.to, vec![Nanp::parse("4385556789").unwrap()]);
        assert_eq!(m.text, "hello");
        assert_eq!(m.media, vec!["https://voip.ms/media/x/media.jpeg".to_string()]);
        assert_eq!(m.received_at.as_deref(), Some("2025-07-20 16:24:16"));
    }

    #[test]
    fn e164_numbers_several_recipients_extra_keys_and_numeric_ids() {
        let m = message(
            r#"{"meta":{"x":1},"data":{"record_type":"event","payload":{"id":272377221,
              "from":{"phone_number":"+15145551234","carrier":"T","line_type":"Wireless"},
              "to":[{"phone_number":"+14385556789","status":"delivered"},{"phone_number":"+15552345678"}],
              "text":"hi","media":[]}}}"#,
        );
        assert_eq!(m.id.as_deref(), Some("272377221"));
        assert_eq!(m.to.len(), 2);
        assert!(m.media.is_empty());
    }

    #[test]
    fn minimal_body_short_code_sender_and_no_text() {
        let m = message(
            r#"{"data":{"payload":{"from":{"phone_number":"72345"},"to":[{"phone_number":"4385556789"}],"media":[{"url":"https://x/y.jpg"}]}}}"#,
        );
        assert_eq!(m.from, Sender::Other("72345".into()));
        assert_eq!(m.text, "");
        assert_eq!(m.id, None);
        assert_eq!(m.media.len(), 1);
    }

    #[test]
    fn other_events_are_ignored_not_refused() {
        let body = r#"{"data":{"event_type":"message.sent","payload":{}}}"#;
        assert_eq!(parse(body.as_bytes()), Ok(WebhookEvent::Ignored("event_type message.sent".into())));
        // An unknown event type or direction is delivered: answering 200 and dropping it
        // would lose a real text if VoIP.ms's values differ from Telnyx's.
        for (event, direction) in [("message.incoming", "inbound"), ("message.received", "incoming")] {
            let body = format!(
                r#"{{"data":{{"event_type":"{event}","payload":{{"direction":"{direction}","from":{{"phone_number":"4385556789"}},"to":[{{"phone_number":"5145551234"}}],"text":"x"}}}}}}"#
            );
            assert!(matches!(parse(body.as_bytes()), Ok(WebhookEvent::Message(_))), "{event} {direction}");
        }
        let body = r#"{"data":{"payload":{"direction":"outbound","from":{"phone_number":"4385556789"},"to":[{"phone_number":"5145551234"}]}}}"#;
        assert!(matches!(parse(body.as_bytes()), Ok(WebhookEvent::Ignored(_))));
    }

    #[test]
    fn ids_outside_the_safe_alphabet_are_refused() {
        // Regression (issue 6, defect 9): an id with a newline was written raw to seen.log,
        // where it became a `quota` (or `cursor`) line at the next start.
        let body = |id: &str| {
            format!(
                r#"{{"data":{{"payload":{{"id":{id},"from":{{"phone_number":"5145551234"}},"to":[{{"phone_number":"4385556789"}}],"text":"x"}}}}}}"#
            )
        };
        for bad in [r#""1\nquota\t99999999999999\nx""#, r#""1\tx""#, r#""a b""#, r#""é""#, r#""1/2""#] {
            assert_eq!(parse(body(bad).as_bytes()), Err(WebhookError::BadId), "{bad}");
        }
        let long = format!("\"{}\"", "9".repeat(65));
        assert_eq!(parse(body(&long).as_bytes()), Err(WebhookError::BadId));
        assert!(!WebhookError::BadId.to_string().contains('\n'));
        for good in [r#""272377221""#, "272377221", r#""mms-2.7_a:B""#, &format!("\"{}\"", "9".repeat(64))] {
            assert!(matches!(parse(body(good).as_bytes()), Ok(WebhookEvent::Message(_))), "{good}");
        }
        // An empty id is no id (dedupe then relies on the fingerprint).
        let Ok(WebhookEvent::Message(m)) = parse(body(r#""""#).as_bytes()) else { panic!() };
        assert_eq!(m.id, None);
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        let cases: [(&str, WebhookError); 8] = [
            ("not json", WebhookError::NotJson(String::new())),
            ("{}", WebhookError::Missing("data")),
            (r#"{"data":{}}"#, WebhookError::Missing("data.payload")),
            (
                r#"{"data":{"payload":{"to":[{"phone_number":"4385556789"}]}}}"#,
                WebhookError::Missing("data.payload.from.phone_number"),
            ),
            (
                r#"{"data":{"payload":{"from":{"phone_number":"5145551234"}}}}"#,
                WebhookError::Missing("data.payload.to"),
            ),
            (
                r#"{"data":{"payload":{"from":{"phone_number":"5145551234"},"to":[]}}}"#,
                WebhookError::Missing("data.payload.to"),
            ),
            (
                r#"{"data":{"payload":{"from":{"phone_number":"5145551234"},"to":[{"phone_number":"123"}]}}}"#,
                WebhookError::BadRecipient,
            ),
            (
                r#"{"data":{"payload":{"from":{"phone_number":"<b>"},"to":[{"phone_number":"4385556789"}]}}}"#,
                WebhookError::BadSender,
            ),
        ];
        for (body, expected) in cases {
            let got = parse(body.as_bytes()).unwrap_err();
            match (&got, &expected) {
                (WebhookError::NotJson(_), WebhookError::NotJson(_)) => {}
                _ => assert_eq!(got, expected, "{body}"),
            }
        }
        assert!(matches!(parse(&[0xff, 0xfe]), Err(WebhookError::NotJson(_))));
    }
}
