//! What the spool stores: one [`Record`] per accepted message, as versioned JSON.
//!
//! The core builds and reads records; only the shell's `spool.rs` touches the disk. A record is
//! rewritten (with a higher `rev`) when its state changes, e.g. after each part of a long
//! outbound message, so that a restart neither loses nor resends what is already done.

use nanoserde::{DeJson, SerJson};

/// The record format version; bump on incompatible changes and keep reading the old ones.
pub const FORMAT_VERSION: u32 = 1;

/// One spooled item. Exactly one of `inbound`, `outbound`, `unrouted` is present.
#[derive(Debug, Clone, PartialEq, Eq, SerJson, DeJson)]
pub struct Record {
    /// Format version ([`FORMAT_VERSION`]).
    pub v: u32,
    /// Unique id (boot id and sequence number); also the stem of stanza ids.
    pub id: String,
    /// Acceptance order: inbound messages are delivered, and outbound sent, in this order.
    pub seq: u64,
    /// Revision: the highest wins when two copies exist after a crash.
    pub rev: u32,
    /// When the gateway accepted it, milliseconds since the Unix epoch (UTC).
    pub accepted_ms: u64,
    /// SMS/MMS from VoIP.ms for a user.
    #[nserde(default)]
    pub inbound: Option<Inbound>,
    /// A user's message for VoIP.ms.
    #[nserde(default)]
    pub outbound: Option<Outbound>,
    /// SMS/MMS to a DID nobody maps, kept for the operator.
    #[nserde(default)]
    pub unrouted: Option<Unrouted>,
}

/// A received message waiting to be delivered over XMPP.
#[derive(Debug, Clone, PartialEq, Eq, SerJson, DeJson)]
pub struct Inbound {
    /// The user's bare JID.
    pub user: String,
    /// The localpart of the contact JID it comes from (`+1N` or `+1N%+1D`).
    pub contact: String,
    /// The DID it was sent to (10 digits).
    pub did: String,
    /// The text (may be empty).
    pub text: String,
    /// Media URLs, each delivered as its own message.
    pub media: Vec<String>,
    /// VoIP.ms's message id, when known.
    #[nserde(default)]
    pub voipms_id: Option<String>,
}

/// A user's message on its way to VoIP.ms.
#[derive(Debug, Clone, PartialEq, Eq, SerJson, DeJson)]
pub struct Outbound {
    /// The sender's full JID (errors go back to it).
    pub sender: String,
    /// The localpart of the contact JID the user wrote to (errors come from it).
    pub contact: String,
    /// The stanza `id`, echoed in errors and receipts.
    #[nserde(default)]
    pub stanza_id: Option<String>,
    /// Sending DID (10 digits).
    pub did: String,
    /// Destination (10 digits).
    pub dst: String,
    /// The sends, in order.
    pub parts: Vec<OutPart>,
    /// How many parts VoIP.ms has accepted.
    pub next_part: u32,
    /// Whether the sender asked for an XEP-0184 receipt.
    #[nserde(default)]
    pub receipt: bool,
    /// Set when the message has failed for good: the error still owed to the sender.
    #[nserde(default)]
    pub bounce: Option<Bounce>,
}

/// One send of an outbound message.
#[derive(Debug, Clone, PartialEq, Eq, SerJson, DeJson)]
pub struct OutPart {
    /// `true` for sendMMS, `false` for sendSMS.
    pub mms: bool,
    /// The text.
    pub message: String,
    /// Media URLs.
    pub media: Vec<String>,
}

/// A stanza error owed to a sender.
#[derive(Debug, Clone, PartialEq, Eq, SerJson, DeJson)]
pub struct Bounce {
    /// RFC 6120 defined condition.
    pub condition: String,
    /// Error type (`cancel`, `wait`, `modify`).
    pub error_type: String,
    /// The reason in plain words.
    pub text: String,
}

/// A message for a DID that no user maps.
#[derive(Debug, Clone, PartialEq, Eq, SerJson, DeJson)]
pub struct Unrouted {
    /// The sender as received.
    pub from: String,
    /// The DIDs it was addressed to (10 digits).
    pub to: Vec<String>,
    /// The text.
    pub text: String,
    /// Media URLs.
    pub media: Vec<String>,
    /// VoIP.ms's message id, when known.
    #[nserde(default)]
    pub voipms_id: Option<String>,
}

/// What kind of record this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// [`Inbound`].
    Inbound,
    /// [`Outbound`].
    Outbound,
    /// [`Unrouted`].
    Unrouted,
}

/// Why stored bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// Not JSON of the right shape.
    Malformed(String),
    /// A format version we cannot read.
    Version(u32),
    /// Not exactly one kind present.
    Shape,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Malformed(why) => write!(f, "malformed record: {why}"),
            RecordError::Version(v) => write!(f, "record format version {v} is newer than this gateway"),
            RecordError::Shape => write!(f, "record holds no message or more than one"),
        }
    }
}

impl std::error::Error for RecordError {}

impl Record {
    /// The record's kind.
    pub fn kind(&self) -> Kind {
        if self.inbound.is_some() {
            Kind::Inbound
        } else if self.outbound.is_some() {
            Kind::Outbound
        } else {
            Kind::Unrouted
        }
    }

    /// Serialise to one line of JSON.
    pub fn to_json(&self) -> String {
        self.serialize_json()
    }

    /// Parse and check a stored record.
    pub fn from_json(text: &str) -> Result<Record, RecordError> {
        let r = Record::deserialize_json(text).map_err(|e| RecordError::Malformed(e.to_string()))?;
        if r.v > FORMAT_VERSION || r.v == 0 {
            return Err(RecordError::Version(r.v));
        }
        let kinds = usize::from(r.inbound.is_some()) + usize::from(r.outbound.is_some()) + usize::from(r.unrouted.is_some());
        if kinds != 1 {
            return Err(RecordError::Shape);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound() -> Record {
        Record {
            v: FORMAT_VERSION,
            id: "b1-7".into(),
            seq: 7,
            rev: 2,
            accepted_ms: 1_753_043_056_123,
            inbound: None,
            outbound: Some(Outbound {
                sender: "alice@example.com/phone".into(),
                contact: "+15557654321".into(),
                stanza_id: Some("m\"1".into()),
                did: "5552345678".into(),
                dst: "5557654321".into(),
                parts: vec![OutPart { mms: true, message: "é\n漢😀".into(), media: vec!["https://x/y".into()] }],
                next_part: 0,
                receipt: true,
                bounce: None,
            }),
            unrouted: None,
        }
    }

    #[test]
    fn round_trips() {
        let r = outbound();
        let text = r.to_json();
        assert!(!text.contains('\n'), "one line: {text}");
        assert_eq!(Record::from_json(&text).unwrap(), r);
        assert_eq!(r.kind(), Kind::Outbound);
    }

    #[test]
    fn rejects_damage() {
        let text = outbound().to_json();
        assert!(matches!(Record::from_json(&text[..text.len() / 2]), Err(RecordError::Malformed(_))));
        assert_eq!(Record::from_json(&text.replace("\"v\":1", "\"v\":99")), Err(RecordError::Version(99)));
        let mut none = outbound();
        none.outbound = None;
        assert_eq!(Record::from_json(&none.to_json()), Err(RecordError::Shape));
    }
}
