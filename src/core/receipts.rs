//! XEP-0184 Message Delivery Receipts for users' messages: `<received/>` once VoIP.ms has
//! accepted every part.
//!
//! Rules (XEP-0184 §5, xmpp.md §6.3): a receipt is owed only when the sender asked
//! (`<request/>`) and the message has an `id` (the receipt names it); it means "VoIP.ms accepted
//! it" (VoIP.ms reports no handset delivery), so it goes out after the last part's `success`,
//! never before, and never after a failure (the stanza error goes instead). It never carries a
//! request of its own. It comes from the contact JID the user wrote to, to the full JID that
//! sent the message. The owed receipt is durable: the finished record is rewritten and goes
//! through `core::mailbox` like a bounce, so it survives an XMPP outage and a restart and leaves
//! the spool only once a later ping is answered.

use crate::core::spool_record::{Outbound, Record};
use crate::core::xmpp::element::Element;
use crate::core::xmpp::ns;
use crate::core::xmpp::stanza::{Message, build};

/// Whether `m` asks for a receipt we can give: a `<request/>` and an `id` to name.
pub fn requested(m: &Message) -> bool {
    m.receipt_requested && m.id.as_deref().is_some_and(|id| !id.is_empty())
}

/// Whether a receipt is owed for this message: asked for, every part accepted, no failure.
pub fn owed(o: &Outbound) -> bool {
    o.receipt && o.bounce.is_none() && o.next_part as usize >= o.parts.len() && o.stanza_id.is_some()
}

/// The receipt for a finished record, if one is owed.
pub fn stanza(record: &Record, domain: &str) -> Option<String> {
    let o = record.outbound.as_ref().filter(|o| owed(o))?;
    let original = o.stanza_id.as_deref()?;
    let from = format!("{}@{domain}", o.contact);
    let received = Element::new("received", ns::RECEIPTS).attr("id", original);
    Some(build::message(&from, &o.sender, &format!("{}-r", record.id), received))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::spool_record::{Bounce, FORMAT_VERSION, OutPart};
    use crate::core::xmpp::element::NsContext;
    use crate::core::xmpp::stanza::Stanza;

    fn record(next_part: u32, receipt: bool) -> Record {
        let part = OutPart { mms: false, message: "x".into(), media: vec![] };
        Record {
            v: FORMAT_VERSION,
            id: "b-3".into(),
            seq: 3,
            rev: 2,
            accepted_ms: 0,
            inbound: None,
            outbound: Some(Outbound {
                sender: "alice@example.com/phone".into(),
                contact: "+15559998888".into(),
                stanza_id: Some("m1".into()),
                did: "5552345678".into(),
                dst: "5559998888".into(),
                parts: vec![part.clone(), part],
                next_part,
                receipt,
                bounce: None,
                unconfirmed_ms: None,
            }),
            unrouted: None,
        }
    }

    #[test]
    fn owed_after_the_last_part_only() {
        assert_eq!(
            stanza(&record(2, true), "sms.example.com").as_deref(),
            Some(
                "<message id='b-3-r' from='+15559998888@sms.example.com' to='alice@example.com/phone'><received xmlns='urn:xmpp:receipts' id='m1'/></message>"
            )
        );
        assert_eq!(stanza(&record(1, true), "sms.example.com"), None, "one part still to go");
        assert_eq!(stanza(&record(2, false), "sms.example.com"), None, "not asked");
        let mut failed = record(2, true);
        failed.outbound.as_mut().unwrap().bounce = Some(Bounce {
            condition: "item-not-found".into(),
            error_type: "cancel".into(),
            text: "x".into(),
            notice: false,
        });
        assert_eq!(stanza(&failed, "sms.example.com"), None, "an error instead");
    }

    fn message(xml: &str) -> Message {
        let e = Element::parse(xml.as_bytes(), &NsContext::component()).unwrap();
        let Ok(Stanza::Message(m)) = Stanza::from_element(&e) else { panic!("{xml}") };
        m
    }

    #[test]
    fn asked_only_with_a_request_and_an_id() {
        assert!(requested(&message(
            "<message id='m1' from='a@b/c' to='+15559998888@sms.b'><body>x</body><request xmlns='urn:xmpp:receipts'/></message>"
        )));
        assert!(!requested(&message(
            "<message from='a@b/c' to='+15559998888@sms.b'><body>x</body><request xmlns='urn:xmpp:receipts'/></message>"
        )));
        assert!(!requested(&message(
            "<message id='' from='a@b/c' to='+15559998888@sms.b'><body>x</body><request xmlns='urn:xmpp:receipts'/></message>"
        )));
        assert!(!requested(&message("<message id='m1' from='a@b/c' to='+15559998888@sms.b'><body>x</body></message>")));
    }
}
