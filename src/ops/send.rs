//! `send`: one message from a configured DID, through the gateway's client and its SMS/MMS rules
//! (`core::voipms::parts`): no media and at most 160 UTF-8 bytes → sendSMS, else sendMMS;
//! text over 2048 bytes is cut into parts sent in order, each after the one before it went out.
//!
//! Nothing is resent: a send has no idempotency key (voipms.md §4.3), so a second try is the
//! operator's call, and a failure after which the message may have gone out (no answer, a
//! proxy's error) says so. The reasons are `core::voipms::api`'s, the ones XMPP users get.

use super::{Api, Verdict};
use crate::core::config::Config;
use crate::core::phone::Nanp;
use crate::core::router::Outgoing;
use crate::core::voipms::api::{self, Answer, FailureClass, Request};
use crate::core::voipms::parts;
use crate::logger;
use std::io::Write;

/// Check the command line against the config and plan the parts. `from` must be one of the
/// config's DIDs (any user's). The error is a usage error, in plain words.
pub fn prepare(config: &Config, from: &str, to: &str, text: &str, media: &[String]) -> Result<Outgoing, String> {
    let did =
        Nanp::parse_human(from).ok_or_else(|| format!("--from \"{from}\" is not a US/Canada number (+1NXXNXXXXXX)"))?;
    if config.owner_of(&did).is_none() {
        return Err(format!("--from {} is not one of the config's DIDs (jid_map)", did.e164()));
    }
    let dst = Nanp::parse_human(to).ok_or_else(|| {
        format!("--to \"{to}\" is not a US/Canada number: VoIP.ms can only text those (+1NXXNXXXXXX)")
    })?;
    let parts = parts::plan(text, media).map_err(|e| e.to_string())?;
    Ok(Outgoing { did, dst: dst.into(), parts })
}

/// Send the parts in order; each id goes to `out`, a failure's reason to `err`.
pub fn run(outgoing: &Outgoing, api: &dyn Api, out: &mut dyn Write, err: &mut dyn Write) -> Verdict {
    let n = outgoing.parts.len();
    for (i, part) in outgoing.parts.iter().enumerate() {
        let request = Request::Send { did: outgoing.did, dst: outgoing.dst, part: part.clone() };
        let method = request.method();
        let label = if n > 1 { format!("part {} of {n}", i + 1) } else { "the message".to_string() };
        match api::classify(&api.call(&request)) {
            Answer::Sent { id } => {
                let id = id.filter(|id| api::is_safe_id(id)).unwrap_or_else(|| "(none given)".to_string());
                let line = format!("sent {label} by {method}: VoIP.ms id {id}\n");
                if out.write_all(line.as_bytes()).and_then(|()| out.flush()).is_err() {
                    return Verdict::Problem;
                }
            }
            Answer::Failed(f) => {
                let rest = if i + 1 < n { format!("; parts {} to {n} were not sent", i + 2) } else { String::new() };
                let line = match f.class {
                    FailureClass::Ambiguous => format!(
                        "{label} may have been sent: {}; look at the DID's sent messages at voip.ms before sending it again{rest}",
                        f.text
                    ),
                    _ => format!("{label} was not sent: {}{rest}", f.text),
                };
                let _ = writeln!(err, "voipms-xmpp: {}", logger::clean(&line));
                return Verdict::Problem;
            }
        }
    }
    Verdict::Ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{Script, config};

    fn send(script: &Script, text: &str, media: &[String]) -> (Verdict, String, String) {
        let o = prepare(&config(), "+1 (555) 765-4321", "5559998888", text, media).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let v = run(&o, script, &mut out, &mut err);
        (v, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    #[test]
    fn usage_errors() {
        let c = config();
        assert!(
            prepare(&c, "5552223333", "5559998888", "hi", &[]).unwrap_err().contains("not one of the config's DIDs")
        );
        assert!(prepare(&c, "pizza", "5559998888", "hi", &[]).unwrap_err().contains("--from \"pizza\""));
        assert!(prepare(&c, "5552345678", "+442079460958", "hi", &[]).unwrap_err().contains("US/Canada"));
        assert_eq!(prepare(&c, "5552345678", "5559998888", " ", &[]).unwrap_err(), "the message is empty");
        let four: Vec<String> = (0..4).map(|i| format!("https://x/{i}")).collect();
        assert!(prepare(&c, "5552345678", "5559998888", "", &four).unwrap_err().contains("at most 3"));
        // Any user's DID will do.
        assert_eq!(prepare(&c, "15553334444", "5559998888", "hi", &[]).unwrap().did.e164(), "+15553334444");
    }

    #[test]
    fn sms_mms_and_parts_in_order() {
        let s = Script::new(&[("sendSMS", r#"{"status":"success","sms":100000001}"#)]);
        let (v, out, _) = send(&s, "hello", &[]);
        assert_eq!((v, out.as_str()), (Verdict::Ok, "sent the message by sendSMS: VoIP.ms id 100000001\n"));
        let media = vec!["https://up.example.com/a.jpg".to_string()];
        let s = Script::new(&[("sendMMS", r#"{"status":"success","mms":"200000001"}"#)]);
        assert_eq!(send(&s, "look", &media).1, "sent the message by sendMMS: VoIP.ms id 200000001\n");
        let long = "word ".repeat(500);
        let s = Script::new(&[
            ("sendMMS", r#"{"status":"success","mms":1}"#),
            ("sendMMS", r#"{"status":"success","mms":2}"#),
        ]);
        let (v, out, _) = send(&s, &long, &[]);
        assert_eq!(v, Verdict::Ok);
        assert_eq!(out, "sent part 1 of 2 by sendMMS: VoIP.ms id 1\nsent part 2 of 2 by sendMMS: VoIP.ms id 2\n");
    }

    #[test]
    fn failures_say_why_and_whether_it_may_have_gone() {
        let s = Script::new(&[("sendSMS", r#"{"status":"invalid_dst"}"#)]);
        let (v, out, err) = send(&s, "hi", &[]);
        assert_eq!((v, out.as_str()), (Verdict::Problem, ""));
        assert_eq!(err, "voipms-xmpp: the message was not sent: VoIP.ms cannot send to this number (invalid_dst)\n");
        let s = Script::new(&[("sendSMS", "<html>bad gateway</html>")]);
        let (_, _, err) = send(&s, "hi", &[]);
        assert!(err.contains("the message may have been sent: VoIP.ms sent an unreadable answer"), "{err}");
        assert_eq!(s.methods(), vec!["sendSMS"], "never resent");
        let long = "word ".repeat(900);
        let s = Script::new(&[
            ("sendMMS", r#"{"status":"success","mms":"a\tb"}"#),
            ("sendMMS", r#"{"status":"limit_reached"}"#),
        ]);
        let (v, out, err) = send(&s, &long, &[]);
        assert_eq!(v, Verdict::Problem);
        assert_eq!(out, "sent part 1 of 3 by sendMMS: VoIP.ms id (none given)\n", "an unsafe id is not shown");
        assert!(err.starts_with("voipms-xmpp: part 2 of 3 was not sent: VoIP.ms daily sending limit reached"), "{err}");
        assert!(err.ends_with("; parts 3 to 3 were not sent\n"), "{err}");
    }
}
