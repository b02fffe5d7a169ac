//! Who may send what from which DID to whom: the decision for each message from XMPP.
//!
//! The order follows xmpp.md §8. Only a bare JID listed in `jid_map` may send, and only from its
//! own DIDs (the seed module let anyone send from any DID). Body-less stanzas (chat states,
//! receipts, markers) are dropped silently and never become SMS. Everything refused gets a stanza
//! error with the RFC 6120 condition of xmpp.md §9 and no VoIP.ms call is made.

use crate::core::config::Config;
use crate::core::phone::{ContactAddress, Destination, Nanp};
use crate::core::voipms::parts::{self, Part, PlanError};
use crate::core::xmpp::stanza::{ErrorSpec, Message, MessageType};

/// The decision for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Nothing to do (and nothing to answer), for the given reason.
    Drop(&'static str),
    /// Refuse with this stanza error.
    Reject(ErrorSpec),
    /// Send through VoIP.ms.
    Send(Outgoing),
}

/// A message cleared for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The DID it leaves from.
    pub did: Nanp,
    /// The destination: a number or a short code.
    pub dst: Destination,
    /// The VoIP.ms sends, in order.
    pub parts: Vec<Part>,
}

/// Decide what to do with `msg`.
pub fn route(config: &Config, msg: &Message) -> Route {
    match msg.kind {
        // Never answer an error with an error; group chat and headlines are not for SMS.
        MessageType::Error => return Route::Drop("an error stanza"),
        MessageType::Groupchat => return Route::Drop("a groupchat message"),
        MessageType::Headline => return Route::Drop("a headline message"),
        MessageType::Chat | MessageType::Normal => {}
    }
    let body = msg.body.as_deref().unwrap_or("");
    if body.trim().is_empty() && msg.oob_urls.is_empty() {
        return Route::Drop("no body");
    }
    let Some(user) = config.user(&msg.from.to_bare()) else {
        return Route::Reject(ErrorSpec::new(
            "not-allowed",
            "cancel",
            "you are not allowed to send SMS through this gateway",
        ));
    };
    // XEP-0033 (xmpp.md §6.6): VoIP.ms sends to one number per call, and separate texts would
    // break the group for everyone, so a group reply is refused, whatever JID it went to.
    if msg.addresses > 1 {
        return Route::Reject(ErrorSpec::new(
            "feature-not-implemented",
            "cancel",
            format!(
                "VoIP.ms cannot send group messages, so nothing was sent to the {} recipients; text each number on its own (+1NXXNXXXXXX@{})",
                msg.addresses, config.xmpp.component
            ),
        ));
    }
    let Some(local) = msg.to.local() else {
        if msg.addresses > 0 {
            return Route::Reject(ErrorSpec::new(
                "feature-not-implemented",
                "cancel",
                format!(
                    "this gateway does not route XEP-0033 addresses; write to the number's own JID (+1NXXNXXXXXX@{})",
                    config.xmpp.component
                ),
            ));
        }
        return Route::Reject(ErrorSpec::new(
            "service-unavailable",
            "cancel",
            format!("to text a number, write to +1NXXNXXXXXX@{}", config.xmpp.component),
        ));
    };
    let Some(address) = ContactAddress::parse(local) else {
        // A real number VoIP.ms cannot reach (another country, a 3–4 or 7–8 digit code) is not
        // a malformed address: xmpp.md §8.7. (5–6 digit short codes parsed above: they are sent,
        // and only VoIP.ms's `invalid_dst` refuses them.)
        let number = local.split('%').next().unwrap_or(local);
        if is_phone_number(number) {
            return Route::Reject(ErrorSpec::new(
                "item-not-found",
                "cancel",
                "VoIP.ms can only text US and Canadian numbers (+1NXXNXXXXXX) and 5–6 digit short codes",
            ));
        }
        return Route::Reject(ErrorSpec::new(
            "jid-malformed",
            "modify",
            "not a US/Canada phone number: write to +1NXXNXXXXXX, +1NXXNXXXXXX%+1DID or a 5–6 digit short code",
        ));
    };
    let did = match address.via {
        Some(did) if user.dids.contains(&did) => did,
        Some(did) => {
            return Route::Reject(ErrorSpec::new(
                "not-allowed",
                "cancel",
                format!("DID ending in {} is not one of yours", did.last4()),
            ));
        }
        None => match user.dids.first() {
            Some(d) => *d,
            None => {
                return Route::Reject(ErrorSpec::new("not-allowed", "cancel", "you have no DID"));
            }
        },
    };
    if msg.encrypted {
        return Route::Reject(ErrorSpec::new(
            "not-acceptable",
            "modify",
            "encrypted messages cannot be sent as SMS; turn encryption off for this contact",
        ));
    }
    let text = strip_media_urls(body, &msg.oob_urls);
    match parts::plan(&text, &msg.oob_urls) {
        Ok(parts) => Route::Send(Outgoing { did, dst: address.number, parts }),
        Err(PlanError::Empty) => Route::Drop("no body"),
        Err(e) => Route::Reject(ErrorSpec::new("not-acceptable", "modify", e.to_string())),
    }
}

/// An E.164 number (`+` and 8–15 digits) or a short code (3–8 digits).
fn is_phone_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    let len_ok = if s.starts_with('+') { (8..=15).contains(&digits.len()) } else { (3..=8).contains(&digits.len()) };
    len_ok && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The text to send: the body without the media URLs it repeats. XEP-0363 clients put the URL in
/// the body as well as in OOB, often alone, sometimes after a caption (JMP's SGX guidance). A URL
/// the body mentions elsewhere is the user's text and stays.
pub fn strip_media_urls(body: &str, urls: &[String]) -> String {
    let mut text = body;
    for url in urls {
        if text.trim() == url {
            text = "";
        } else if let Some(rest) = text.trim_end().strip_suffix(url.as_str()) {
            text = rest.trim_end();
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::SecretFiles;
    use crate::core::voipms::parts::Method;
    use crate::core::xmpp::jid::Jid;

    fn config() -> Config {
        Config::from_json(
            r#"{"xmpp":{"component":"sms.example.com","server":"127.0.0.1:5347","secret":"s"},
                "voipms":{"api_username":"u","api_password":"p"},
                "webhook":{"listen":"127.0.0.1:8080","key":"k"},
                "jid_map":{"alice@example.com":["+15552345678"],"bob@example.com":["+15557654321","+15553334444"]},
                "state_dir":"/tmp/x"}"#,
            &SecretFiles::new(),
        )
        .unwrap()
    }

    fn msg(from: &str, to: &str, body: Option<&str>) -> Message {
        Message {
            from: Jid::parse(from).unwrap(),
            to: Jid::parse(to).unwrap(),
            id: Some("m1".into()),
            kind: MessageType::Chat,
            body: body.map(str::to_string),
            oob_urls: Vec::new(),
            receipt_requested: false,
            addresses: 0,
            encrypted: false,
            error_condition: None,
            error_type: None,
        }
    }

    fn reject(r: Route) -> (String, String) {
        match r {
            Route::Reject(e) => (e.condition, e.error_type),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sends_from_the_default_did() {
        let r = route(&config(), &msg("bob@example.com/phone", "+15559998888@sms.example.com", Some("hi")));
        let Route::Send(o) = r else { panic!("{r:?}") };
        assert_eq!(o.did.e164(), "+15557654321");
        assert_eq!(o.dst.localpart(), "+15559998888");
        assert_eq!(o.parts[0].method, Method::Sms);
    }

    #[test]
    fn sends_from_a_named_did_of_the_sender() {
        for to in [
            "+15559998888%+15553334444@sms.example.com",
            "15559998888%5553334444@sms.example.com",
            "5559998888%+15553334444@sms.example.com",
        ] {
            let Route::Send(o) = route(&config(), &msg("Bob@Example.com/x", to, Some("hi"))) else { panic!("{to}") };
            assert_eq!(o.did.e164(), "+15553334444");
        }
    }

    #[test]
    fn refuses_strangers_and_foreign_dids() {
        let c = config();
        assert_eq!(
            reject(route(&c, &msg("eve@example.com/x", "+15559998888@sms.example.com", Some("hi")))),
            ("not-allowed".into(), "cancel".into())
        );
        assert_eq!(
            reject(route(&c, &msg("alice@example.com/x", "+15559998888%+15557654321@sms.example.com", Some("hi")))),
            ("not-allowed".into(), "cancel".into())
        );
        // A DID on nobody's list is refused the same way.
        assert_eq!(
            reject(route(&c, &msg("alice@example.com/x", "+15559998888%+15552221111@sms.example.com", Some("hi")))),
            ("not-allowed".into(), "cancel".into())
        );
    }

    #[test]
    fn drops_bodyless_errors_and_groupchat_silently() {
        let c = config();
        assert_eq!(
            route(&c, &msg("alice@example.com/x", "+15559998888@sms.example.com", None)),
            Route::Drop("no body")
        );
        assert_eq!(
            route(&c, &msg("alice@example.com/x", "+15559998888@sms.example.com", Some(" \n"))),
            Route::Drop("no body")
        );
        // Even a stranger's chat state gets no error (errors to chat states are noise).
        assert_eq!(route(&c, &msg("eve@example.com/x", "+15559998888@sms.example.com", None)), Route::Drop("no body"));
        let mut e = msg("alice@example.com/x", "+15559998888@sms.example.com", Some("x"));
        e.kind = MessageType::Error;
        assert_eq!(route(&c, &e), Route::Drop("an error stanza"));
        e.kind = MessageType::Groupchat;
        assert_eq!(route(&c, &e), Route::Drop("a groupchat message"));
    }

    #[test]
    fn bad_addresses() {
        let c = config();
        assert_eq!(
            reject(route(&c, &msg("alice@example.com/x", "sms.example.com", Some("hi")))),
            ("service-unavailable".into(), "cancel".into())
        );
        assert_eq!(
            reject(route(&c, &msg("alice@example.com/x", "pizza@sms.example.com", Some("hi")))),
            ("jid-malformed".into(), "modify".into())
        );
        assert_eq!(
            reject(route(&c, &msg("alice@example.com/x", "+442079460958@sms.example.com", Some("hi")))),
            ("item-not-found".into(), "cancel".into())
        );
        let mut group = msg("alice@example.com/x", "sms.example.com", Some("hi"));
        group.addresses = 2;
        assert_eq!(reject(route(&c, &group)), ("feature-not-implemented".into(), "cancel".into()));
        // To a contact too, even one through a DID that is not theirs: the group is the reason.
        for to in ["+15559998888@sms.example.com", "+15559998888%+15557654321@sms.example.com"] {
            group.to = Jid::parse(to).unwrap();
            let Route::Reject(e) = route(&c, &group) else { panic!("{to}") };
            assert_eq!((e.condition.as_str(), e.error_type.as_str()), ("feature-not-implemented", "cancel"));
            assert!(e.text.contains("cannot send group messages") && e.text.contains("2 recipients"), "{}", e.text);
        }
        // One address to a contact is an ordinary message.
        group.to = Jid::parse("+15559998888@sms.example.com").unwrap();
        group.addresses = 1;
        assert!(matches!(route(&c, &group), Route::Send(_)));
        group.to = Jid::parse("sms.example.com").unwrap();
        assert_eq!(reject(route(&c, &group)), ("feature-not-implemented".into(), "cancel".into()));
    }

    #[test]
    fn short_codes_are_sent_other_codes_are_not_found() {
        let c = config();
        for (to, did) in
            [("12345@sms.example.com", "+15557654321"), ("654321%+15553334444@sms.example.com", "+15553334444")]
        {
            let r = route(&c, &msg("bob@example.com/x", to, Some("STOP")));
            let Route::Send(o) = r else { panic!("{to}: {r:?}") };
            assert!(o.dst.short_code().is_some(), "{to}");
            assert_eq!(o.did.e164(), did);
        }
        for to in ["1234@sms.example.com", "1234567@sms.example.com"] {
            assert_eq!(
                reject(route(&c, &msg("bob@example.com/x", to, Some("hi")))),
                ("item-not-found".into(), "cancel".into()),
                "{to}"
            );
        }
    }

    #[test]
    fn media_and_encryption() {
        let c = config();
        let mut m = msg("alice@example.com/x", "+15559998888@sms.example.com", Some("https://up.example.com/a.jpg"));
        m.oob_urls = vec!["https://up.example.com/a.jpg".into()];
        let Route::Send(o) = route(&c, &m) else { panic!() };
        assert_eq!(o.parts, vec![Part { method: Method::Mms, message: String::new(), media: m.oob_urls.clone() }]);
        m.body = Some("look at this\nhttps://up.example.com/a.jpg".into());
        let Route::Send(o) = route(&c, &m) else { panic!() };
        assert_eq!(o.parts[0].message, "look at this");
        m.oob_urls = vec!["aesgcm://up.example.com/a.jpg#k".into()];
        assert_eq!(reject(route(&c, &m)), ("not-acceptable".into(), "modify".into()));
        let mut enc =
            msg("alice@example.com/x", "+15559998888@sms.example.com", Some("I sent you an OMEMO encrypted message"));
        enc.encrypted = true;
        assert_eq!(reject(route(&c, &enc)), ("not-acceptable".into(), "modify".into()));
    }

    #[test]
    fn a_link_in_text_without_oob_is_text() {
        // The seed sent any body line starting with http as MMS media.
        let Route::Send(o) = route(
            &config(),
            &msg("alice@example.com/x", "+15559998888@sms.example.com", Some("https://example.com/menu")),
        ) else {
            panic!()
        };
        assert_eq!(
            o.parts,
            vec![Part { method: Method::Sms, message: "https://example.com/menu".into(), media: vec![] }]
        );
    }

    #[test]
    fn strips_only_repeated_urls() {
        let urls = vec!["https://u/x.jpg".to_string()];
        assert_eq!(strip_media_urls("https://u/x.jpg", &urls), "");
        assert_eq!(strip_media_urls("  https://u/x.jpg \n", &urls), "");
        assert_eq!(strip_media_urls("caption https://u/x.jpg", &urls), "caption");
        assert_eq!(strip_media_urls("see https://u/x.jpg and more", &urls), "see https://u/x.jpg and more");
    }
}
