//! What the spool stores: one [`Record`] per accepted message, as versioned JSON.
//!
//! The core builds and reads records; only the shell's `spool.rs` touches the disk. A record is
//! rewritten (with a higher `rev`) when its state changes, e.g. after each part of a long
//! outbound message, so that a restart neither loses nor resends what is already done. A
//! received message the XMPP server refuses to deliver is set aside as an [`Undeliverable`].

use crate::core::json::{self, Value};
use nanoserde::SerJson;

/// The record format version; bump on incompatible changes and keep reading the old ones.
pub const FORMAT_VERSION: u32 = 1;

/// One spooled item. Exactly one of `inbound`, `outbound`, `unrouted` is present.
#[derive(Debug, Clone, PartialEq, Eq, SerJson)]
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
#[derive(Debug, Clone, PartialEq, Eq, SerJson)]
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
    /// Whether VoIP.ms calls it an MMS (its ids may be a separate sequence).
    #[nserde(default)]
    pub mms: bool,
    /// When VoIP.ms received it (Unix ms), when known (backfill): the delay stamp.
    #[nserde(default)]
    pub voipms_ms: Option<u64>,
    /// A group MMS: the other recipients besides the user's own DID, as `+1…` (XEP-0033
    /// addresses on delivery). Empty for a one-to-one message (and in records written before
    /// group messages existed).
    #[nserde(default)]
    pub group: Vec<String>,
}

/// A user's message on its way to VoIP.ms.
#[derive(Debug, Clone, PartialEq, Eq, SerJson)]
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
    /// A send of the next part was in flight when the gateway stopped (wall ms when it began):
    /// after a restart, VoIP.ms is asked whether it went out before it is sent again.
    #[nserde(default)]
    pub unconfirmed_ms: Option<u64>,
}

/// One send of an outbound message.
#[derive(Debug, Clone, PartialEq, Eq, SerJson)]
pub struct OutPart {
    /// `true` for sendMMS, `false` for sendSMS.
    pub mms: bool,
    /// The text.
    pub message: String,
    /// Media URLs.
    pub media: Vec<String>,
}

/// A stanza error owed to a sender.
#[derive(Debug, Clone, PartialEq, Eq, SerJson)]
pub struct Bounce {
    /// RFC 6120 defined condition.
    pub condition: String,
    /// Error type (`cancel`, `wait`, `modify`).
    pub error_type: String,
    /// The reason in plain words.
    pub text: String,
    /// A late bounce: also send the user's bare JID a chat notice (its full JID has likely gone
    /// by now, and servers drop errors to a departed resource but store chats offline).
    #[nserde(default)]
    pub notice: bool,
}

/// A message for a DID that no user maps.
#[derive(Debug, Clone, PartialEq, Eq, SerJson)]
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

/// What `state_dir/undeliverable/ID.json` holds: a received message the XMPP server refused to
/// deliver to its user (RFC 6120 §8.3: an unknown or unreachable user), kept for the operator.
#[derive(Debug, Clone, PartialEq, Eq, SerJson)]
pub struct Undeliverable {
    /// Format version ([`FORMAT_VERSION`]).
    pub v: u32,
    /// The server's defined condition, e.g. `service-unavailable`.
    pub condition: String,
    /// The error's type, e.g. `cancel`.
    pub error_type: String,
    /// When the gateway gave up on it, Unix milliseconds.
    pub failed_ms: u64,
    /// The message.
    pub record: Record,
}

impl Undeliverable {
    /// Serialise (one JSON document).
    pub fn to_json(&self) -> String {
        self.serialize_json()
    }
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
            RecordError::Version(v) => {
                write!(f, "record format version {v} is newer than this gateway")
            }
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

    /// Whether the record is owed to an XMPP user: a received message, or a sent one whose
    /// bounce or XEP-0184 receipt is still to be delivered (what `core::mailbox` holds).
    pub fn owed_to_xmpp(&self) -> bool {
        self.inbound.is_some()
            || self.outbound.as_ref().is_some_and(|o| o.bounce.is_some() || crate::core::receipts::owed(o))
    }

    /// Serialise to one line of JSON.
    pub fn to_json(&self) -> String {
        self.serialize_json()
    }

    /// Parse and check a stored record.
    pub fn from_json(text: &str) -> Result<Record, RecordError> {
        // Read by hand from our own JSON tree. nanoserde's derived reader panics
        // (`unimplemented!`) on an unknown key followed by something that is not a value, e.g.
        // `{"":` (found by fuzzing), and costs 24 KB of code; unknown keys are skipped here too,
        // so that a newer gateway's extra fields do not stop an older one.
        let value = json::parse(text).map_err(|e| RecordError::Malformed(e.to_string()))?;
        let r = record(&Obj::new(&value, "record")?)?;
        if r.v > FORMAT_VERSION || r.v == 0 {
            return Err(RecordError::Version(r.v));
        }
        let kinds =
            usize::from(r.inbound.is_some()) + usize::from(r.outbound.is_some()) + usize::from(r.unrouted.is_some());
        if kinds != 1 {
            return Err(RecordError::Shape);
        }
        Ok(r)
    }
}

/// A JSON object being read into a record, with its path for error messages.
struct Obj<'a> {
    members: &'a [(String, Value)],
    path: &'static str,
}

fn malformed(path: &str, key: &str, what: &str) -> RecordError {
    RecordError::Malformed(format!("{path}.{key}: {what}"))
}

impl<'a> Obj<'a> {
    fn new(value: &'a Value, path: &'static str) -> Result<Obj<'a>, RecordError> {
        let members = value.as_object().ok_or_else(|| RecordError::Malformed(format!("{path}: not an object")))?;
        Ok(Obj { members, path })
    }

    /// A member; `null` counts as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v).filter(|v| !matches!(v, Value::Null))
    }

    fn string(&self, key: &str) -> Result<String, RecordError> {
        self.opt_string(key)?.ok_or_else(|| malformed(self.path, key, "missing"))
    }

    fn opt_string(&self, key: &str) -> Result<Option<String>, RecordError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_str().map(|s| Some(s.to_string())).ok_or_else(|| malformed(self.path, key, "not a string")),
        }
    }

    fn opt_u64(&self, key: &str) -> Result<Option<u64>, RecordError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::UInt(n)) => Ok(Some(*n)),
            Some(_) => Err(malformed(self.path, key, "not a non-negative integer")),
        }
    }

    fn u64(&self, key: &str) -> Result<u64, RecordError> {
        self.opt_u64(key)?.ok_or_else(|| malformed(self.path, key, "missing"))
    }

    fn u32(&self, key: &str) -> Result<u32, RecordError> {
        u32::try_from(self.u64(key)?).map_err(|_| malformed(self.path, key, "too large"))
    }

    /// A flag; absent is `false` (fields added later default so).
    fn flag(&self, key: &str) -> Result<bool, RecordError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(malformed(self.path, key, "not true or false")),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, RecordError> {
        let Some(v) = self.get(key) else { return Ok(Vec::new()) };
        let items = v.as_array().ok_or_else(|| malformed(self.path, key, "not an array"))?;
        items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(|| malformed(self.path, key, "not strings")))
            .collect()
    }

    fn object(&self, key: &str, path: &'static str) -> Result<Option<Obj<'a>>, RecordError> {
        self.get(key).map(|v| Obj::new(v, path)).transpose()
    }
}

fn record(o: &Obj<'_>) -> Result<Record, RecordError> {
    Ok(Record {
        v: o.u32("v")?,
        id: o.string("id")?,
        seq: o.u64("seq")?,
        rev: o.u32("rev")?,
        accepted_ms: o.u64("accepted_ms")?,
        inbound: o.object("inbound", "inbound")?.map(|i| inbound(&i)).transpose()?,
        outbound: o.object("outbound", "outbound")?.map(|x| outbound(&x)).transpose()?,
        unrouted: o.object("unrouted", "unrouted")?.map(|u| unrouted(&u)).transpose()?,
    })
}

fn inbound(o: &Obj<'_>) -> Result<Inbound, RecordError> {
    Ok(Inbound {
        user: o.string("user")?,
        contact: o.string("contact")?,
        did: o.string("did")?,
        text: o.string("text")?,
        media: o.strings("media")?,
        voipms_id: o.opt_string("voipms_id")?,
        mms: o.flag("mms")?,
        voipms_ms: o.opt_u64("voipms_ms")?,
        group: o.strings("group")?,
    })
}

fn outbound(o: &Obj<'_>) -> Result<Outbound, RecordError> {
    let parts = match o.get("parts") {
        None => Vec::new(),
        Some(v) => {
            let items = v.as_array().ok_or_else(|| malformed(o.path, "parts", "not an array"))?;
            items
                .iter()
                .map(|p| {
                    let p = Obj::new(p, "outbound.parts[]")?;
                    Ok(OutPart { mms: p.flag("mms")?, message: p.string("message")?, media: p.strings("media")? })
                })
                .collect::<Result<_, RecordError>>()?
        }
    };
    let bounce = o
        .object("bounce", "outbound.bounce")?
        .map(|b| {
            Ok::<_, RecordError>(Bounce {
                condition: b.string("condition")?,
                error_type: b.string("error_type")?,
                text: b.string("text")?,
                notice: b.flag("notice")?,
            })
        })
        .transpose()?;
    Ok(Outbound {
        sender: o.string("sender")?,
        contact: o.string("contact")?,
        stanza_id: o.opt_string("stanza_id")?,
        did: o.string("did")?,
        dst: o.string("dst")?,
        parts,
        next_part: o.u32("next_part")?,
        receipt: o.flag("receipt")?,
        bounce,
        unconfirmed_ms: o.opt_u64("unconfirmed_ms")?,
    })
}

fn unrouted(o: &Obj<'_>) -> Result<Unrouted, RecordError> {
    Ok(Unrouted {
        from: o.string("from")?,
        to: o.strings("to")?,
        text: o.string("text")?,
        media: o.strings("media")?,
        voipms_id: o.opt_string("voipms_id")?,
    })
}

/// CRC-32 (IEEE 802.3, as in zlib and gzip), to notice a damaged line.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// One spool file line: the record's JSON, a tab, its CRC-32 in hex. JSON escapes every control
/// character, so the tab is unambiguous.
pub fn encode_line(record: &Record) -> String {
    let json = record.to_json();
    format!("{json}\t{:08x}\n", crc32(json.as_bytes()))
}

/// Read one line written by [`encode_line`] (without its newline).
pub fn decode_line(line: &str) -> Result<Record, RecordError> {
    let (json, sum) = line.rsplit_once('\t').ok_or_else(|| RecordError::Malformed("no checksum".into()))?;
    if u32::from_str_radix(sum, 16).ok() != Some(crc32(json.as_bytes())) {
        return Err(RecordError::Malformed("checksum mismatch".into()));
    }
    Record::from_json(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        for text in ["{\"\":", "{\"x\":,", "{\"v\":1,\"zz\":]", "{\"v\":1,\"zz\":}"] {
            assert!(matches!(Record::from_json(text), Err(RecordError::Malformed(_))), "{text}");
        }
    }

    #[test]
    fn crc32_known_values() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn lines_detect_damage() {
        let line = encode_line(&outbound());
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let line = line.trim_end();
        assert_eq!(decode_line(line).unwrap(), outbound());
        let flipped = line.replacen("alice", "alicf", 1);
        assert_eq!(decode_line(&flipped), Err(RecordError::Malformed("checksum mismatch".into())));
        assert!(decode_line(&line[..line.len() - 3]).is_err());
        assert!(decode_line("").is_err());
    }

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
                unconfirmed_ms: None,
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
    fn a_bounce_written_before_notices_existed_still_reads() {
        let mut r = outbound();
        r.outbound.as_mut().unwrap().bounce = Some(Bounce {
            condition: "item-not-found".into(),
            error_type: "cancel".into(),
            text: "x".into(),
            notice: true,
        });
        let text = r.to_json();
        let old = text.replace(",\"notice\":true", "");
        assert_ne!(old, text);
        let read = Record::from_json(&old).unwrap();
        assert!(!read.outbound.unwrap().bounce.unwrap().notice);
        assert_eq!(Record::from_json(&text).unwrap(), r);
    }

    #[test]
    fn an_inbound_record_written_before_group_messages_still_reads() {
        let old = r#"{"v":1,"id":"b1-2","seq":2,"rev":0,"accepted_ms":5,"inbound":{"user":"alice@example.com","contact":"+15559998888","did":"5552345678","text":"hi","media":[],"voipms_id":"7","mms":false,"voipms_ms":null}}"#;
        let r = Record::from_json(old).unwrap();
        assert_eq!(r.inbound.as_ref().unwrap().group, Vec::<String>::new());
        let mut group = r.clone();
        group.inbound.as_mut().unwrap().group = vec!["+15557654321".into(), "+15553334444".into()];
        assert_eq!(Record::from_json(&group.to_json()).unwrap(), group);
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

    #[test]
    fn unknown_keys_are_skipped_and_a_wrong_type_names_its_field() {
        let text = outbound().to_json();
        let newer = text.replacen("{\"v\":1,", "{\"v\":1,\"later\":{\"x\":[1,2]},", 1);
        assert_ne!(newer, text);
        assert_eq!(Record::from_json(&newer).unwrap(), outbound());
        let bad = text.replace("\"next_part\":0", "\"next_part\":\"0\"");
        assert_ne!(bad, text);
        match Record::from_json(&bad) {
            Err(RecordError::Malformed(why)) => assert!(why.contains("outbound.next_part"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
