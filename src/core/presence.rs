//! RFC 6121 presence subscriptions and the XEP-0100 §4 flows, answered statelessly.
//!
//! For a JID in `jid_map` (xmpp.md §6.2; AGWA's sms-over-xmpp does the same):
//! - `subscribe` to the domain (XEP-0100's "user subscribes to the gateway", which puts it in
//!   the roster) or to a contact JID → `subscribed`, then an available presence from that bare
//!   JID with XEP-0115 caps;
//! - `probe` (the user's server asks at login) → the available presence;
//! - `unsubscribe` → `unsubscribed`, then `unavailable` (RFC 6121 §3.3.3);
//! - everything else (available, unavailable, `subscribed`, `unsubscribed`, errors) is ignored.
//!
//! The gateway never asks to subscribe to a user's presence (XEP-0100 §4.1.1 says it SHOULD;
//! SMS has no use for it), and it keeps no roster: each answer follows from the request alone,
//! so a restart forgets nothing. A `subscribe` to something that is not a number the user can
//! text (`pizza@…`, another user's DID in `+1N%+1D`) is denied with `unsubscribed`.
//!
//! A JID not in `jid_map` is never subscribed: its `subscribe` is denied with `unsubscribed`
//! (RFC 6121 §3.2.1, so its client does not wait forever), everything else it sends is ignored
//! (XEP-0100 serves registered users only; answering probes would tell strangers we exist).
//!
//! The domain also announces itself: available to every mapped user when the stream comes up,
//! unavailable before a clean `</stream:stream>` (XEP-0100 §4.1.1, §6.1 SHOULD).

use crate::core::config::{Config, User};
use crate::core::disco;
use crate::core::phone::ContactAddress;
use crate::core::xmpp::jid::Jid;
use crate::core::xmpp::stanza::{Presence, PresenceType, build};

/// The stanzas answering `p` (addressed to our domain or a JID under it), in order.
pub fn answer(config: &Config, p: &Presence) -> Vec<String> {
    let user_jid = p.from.to_bare();
    let user = config.user(&user_jid);
    let on_domain = p.to.local().is_none();
    let ours = Jid::new(p.to.local(), p.to.domain()).to_string();
    let to = user_jid.to_string();
    let Some(user) = user else {
        return match p.kind {
            PresenceType::Subscribe => vec![build::presence(&ours, &to, PresenceType::Unsubscribed, None)],
            _ => Vec::new(),
        };
    };
    let available = || build::presence(&ours, &to, PresenceType::Available, Some(disco::info(on_domain).caps()));
    match p.kind {
        PresenceType::Subscribe if on_domain || textable(user, p.to.local().unwrap_or("")) => {
            vec![build::presence(&ours, &to, PresenceType::Subscribed, None), available()]
        }
        PresenceType::Subscribe => vec![build::presence(&ours, &to, PresenceType::Unsubscribed, None)],
        PresenceType::Probe if on_domain || textable(user, p.to.local().unwrap_or("")) => vec![available()],
        PresenceType::Unsubscribe => vec![
            build::presence(&ours, &to, PresenceType::Unsubscribed, None),
            build::presence(&ours, &to, PresenceType::Unavailable, None),
        ],
        _ => Vec::new(),
    }
}

/// Whether `local` is a contact `user` can text: a number, through one of their own DIDs.
fn textable(user: &User, local: &str) -> bool {
    ContactAddress::parse(local).is_some_and(|a| a.via.is_none_or(|did| user.dids.contains(&did)))
}

/// The domain's available presence (with caps) to every mapped user: the stream is up.
pub fn online(config: &Config) -> Vec<String> {
    let domain = &config.xmpp.component;
    config
        .users
        .iter()
        .map(|u| build::presence(domain, u.jid.as_str(), PresenceType::Available, Some(disco::DOMAIN.caps())))
        .collect()
}

/// The domain's unavailable presence to every mapped user: the gateway is stopping.
pub fn offline(config: &Config) -> Vec<String> {
    let domain = &config.xmpp.component;
    config.users.iter().map(|u| build::presence(domain, u.jid.as_str(), PresenceType::Unavailable, None)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::SecretFiles;
    use crate::core::xmpp::element::{Element, NsContext};
    use crate::core::xmpp::stanza::Stanza;

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

    fn answer_to(xml: &str) -> Vec<String> {
        let e = Element::parse(xml.as_bytes(), &NsContext::component()).unwrap();
        let Ok(Stanza::Presence(p)) = Stanza::from_element(&e) else { panic!("{xml}") };
        answer(&config(), &p)
    }

    const CONTACT_CAPS: &str = "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://github.com/voipms-xmpp/voipms-xmpp' ver='kx2qcW8YQ4PEIOYh0Vm+qZtKqjI='/>";
    const DOMAIN_CAPS: &str = "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://github.com/voipms-xmpp/voipms-xmpp' ver='pQr8xHmIkmHt3yiFjGH4MJU7a1o='/>";

    #[test]
    fn subscribing_to_a_contact_or_the_domain() {
        assert_eq!(
            answer_to("<presence type='subscribe' from='alice@example.com' to='+15559998888@sms.example.com'/>"),
            vec![
                "<presence type='subscribed' from='+15559998888@sms.example.com' to='alice@example.com'/>".to_string(),
                format!(
                    "<presence from='+15559998888@sms.example.com' to='alice@example.com'>{CONTACT_CAPS}</presence>"
                ),
            ]
        );
        assert_eq!(
            answer_to("<presence type='subscribe' from='Alice@Example.com/phone' to='sms.example.com'/>"),
            vec![
                "<presence type='subscribed' from='sms.example.com' to='alice@example.com'/>".to_string(),
                format!("<presence from='sms.example.com' to='alice@example.com'>{DOMAIN_CAPS}</presence>"),
            ],
            "answered to the bare JID, from the bare JID asked"
        );
        // Through one of bob's own DIDs: fine; through alice's: denied; not a number: denied.
        assert_eq!(
            answer_to(
                "<presence type='subscribe' from='bob@example.com' to='+15559998888%+15553334444@sms.example.com'/>"
            )
            .len(),
            2
        );
        assert_eq!(
            answer_to("<presence type='subscribe' from='bob@example.com' to='12345@sms.example.com'/>").len(),
            2
        );
        for to in ["+15559998888%+15552345678@sms.example.com", "pizza@sms.example.com"] {
            assert_eq!(
                answer_to(&format!("<presence type='subscribe' from='bob@example.com' to='{to}'/>")),
                vec![format!("<presence type='unsubscribed' from='{to}' to='bob@example.com'/>")],
                "{to}"
            );
        }
    }

    #[test]
    fn probes_and_unsubscribes() {
        assert_eq!(
            answer_to("<presence type='probe' from='alice@example.com' to='+15559998888@sms.example.com/x'/>"),
            vec![format!(
                "<presence from='+15559998888@sms.example.com' to='alice@example.com'>{CONTACT_CAPS}</presence>"
            )]
        );
        assert_eq!(
            answer_to("<presence type='probe' from='alice@example.com' to='sms.example.com'/>"),
            vec![format!("<presence from='sms.example.com' to='alice@example.com'>{DOMAIN_CAPS}</presence>")]
        );
        assert!(answer_to("<presence type='probe' from='alice@example.com' to='pizza@sms.example.com'/>").is_empty());
        assert_eq!(
            answer_to("<presence type='unsubscribe' from='alice@example.com' to='+15559998888@sms.example.com'/>"),
            vec![
                "<presence type='unsubscribed' from='+15559998888@sms.example.com' to='alice@example.com'/>"
                    .to_string(),
                "<presence type='unavailable' from='+15559998888@sms.example.com' to='alice@example.com'/>".to_string(),
            ]
        );
        for kind in ["", " type='unavailable'", " type='subscribed'", " type='unsubscribed'", " type='error'"] {
            let xml = format!("<presence{kind} from='alice@example.com/phone' to='sms.example.com'/>");
            assert!(answer_to(&xml).is_empty(), "{xml}");
        }
    }

    #[test]
    fn strangers_are_never_subscribed() {
        assert_eq!(
            answer_to("<presence type='subscribe' from='eve@example.org/x' to='+15559998888@sms.example.com'/>"),
            vec![
                "<presence type='unsubscribed' from='+15559998888@sms.example.com' to='eve@example.org'/>".to_string()
            ]
        );
        for kind in ["probe", "unsubscribe", "subscribed"] {
            let xml = format!("<presence type='{kind}' from='eve@example.org' to='sms.example.com'/>");
            assert!(answer_to(&xml).is_empty(), "{xml}");
        }
    }

    #[test]
    fn the_domain_comes_and_goes_for_every_user() {
        assert_eq!(
            online(&config()),
            vec![
                format!("<presence from='sms.example.com' to='alice@example.com'>{DOMAIN_CAPS}</presence>"),
                format!("<presence from='sms.example.com' to='bob@example.com'>{DOMAIN_CAPS}</presence>"),
            ]
        );
        assert_eq!(
            offline(&config()),
            vec![
                "<presence type='unavailable' from='sms.example.com' to='alice@example.com'/>".to_string(),
                "<presence type='unavailable' from='sms.example.com' to='bob@example.com'/>".to_string(),
            ]
        );
    }
}
