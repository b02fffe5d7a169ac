//! `check --online`: asks VoIP.ms, read-only, whether the gateway can work (voipms.md §2, §7.3).
//!
//! In order: `getIP` (answered whatever the IP allow-list says, so it names this machine's
//! address), then `getDIDsInfo` for each mapped DID (the first answer proves the credentials,
//! the API switch and the allow-list; then: is the DID on the account, is SMS on, is the
//! webhook on and pointing at `webhook.path` with `webhook.key`, and at `--url` when given; is
//! the legacy URL callback also aimed at the gateway), then `getBalance`. Each finding is one
//! line, each problem with its fix in plain words; this replaces mod_voipms's troubleshooting
//! page (API password and allow-list, webhook port and key). Never calls setSMS: it would clear
//! whatever it is not told (voipms.md §7.1).

use super::{Api, PORTAL_API, PORTAL_DID, Report, Verdict};
use crate::core::config::{Config, User, redact_url};
use crate::core::phone::Nanp;
use crate::core::voipms::api::{Failure, FailureClass, Request};
use crate::core::voipms::did_info::{self, DidInfo, HttpUrl, WebhookFault};
use std::io::Write;

/// Below this balance (US dollars), a warning: about 50 MMS at VoIP.ms's published $0.02.
pub const LOW_BALANCE: f64 = 1.0;

/// VoIP.ms has refused long API passwords that were right (mod_voipms's README: seen above 128
/// characters, suggests staying under 32).
pub const LONG_PASSWORD: usize = 32;

/// Run the online checks. `target` is the validated `--url` ([`super::webhook_target`]).
pub fn online(config: &Config, target: Option<&str>, api: &dyn Api, out: &mut dyn Write) -> Verdict {
    let mut r = Report::new(out);
    let expected = target.and_then(HttpUrl::parse);
    r.note(&format!(
        "asking VoIP.ms at {} as {} (read-only)",
        redact_url(&config.voipms.api_url),
        config.voipms.api_username
    ));
    let ip = match did_info::ip(&api.call(&Request::Ip)) {
        Ok(ip) => {
            r.ok(&format!("VoIP.ms answers; it sees this machine as {ip}"));
            Some(ip)
        }
        Err(f) => match account_problem(&f, None, config) {
            Some(p) => {
                r.problem(&p);
                return r.finish();
            }
            None => {
                r.warning(&format!("VoIP.ms did not say which address it sees this machine as: {}", f.text));
                None
            }
        },
    };
    let mut access_ok = false;
    for user in &config.users {
        for did in &user.dids {
            match did_info::did_info(&api.call(&Request::DidInfo { did: *did }), did) {
                Err(f) => {
                    if let Some(p) = account_problem(&f, ip.as_deref(), config) {
                        r.problem(&p);
                        return r.finish();
                    }
                    r.problem(&format!(
                        "DID {} ({}): VoIP.ms did not say how it is set up: {}. Fix: run the check again; if it persists, look at the DID at {PORTAL_DID}.",
                        did.e164(),
                        user.jid,
                        f.text
                    ));
                }
                Ok(info) => {
                    if !access_ok {
                        r.ok("VoIP.ms accepts the API credentials and this machine's IP address");
                        access_ok = true;
                    }
                    match info {
                        None => r.problem(&format!(
                            "DID {} ({}) is not on this VoIP.ms account. Fix: compare jid_map with voip.ms → DID Numbers → Manage DIDs (a typo?), or use the account that owns it.",
                            did.e164(),
                            user.jid
                        )),
                        Some(info) => judge_did(&mut r, config, user, did, &info, target, expected.as_ref()),
                    }
                }
            }
        }
    }
    match did_info::balance(&api.call(&Request::Balance)) {
        Ok((text, Some(amount))) if amount <= 0.0 => r.problem(&format!(
            "the VoIP.ms balance is {text}: VoIP.ms refuses to send (non_sufficient_funds). Fix: add funds to the VoIP.ms account."
        )),
        Ok((text, Some(amount))) if amount < LOW_BALANCE => r.warning(&format!(
            "the VoIP.ms balance is low ({text}); texts are charged to it, and sending fails when it runs out. Fix: add funds to the VoIP.ms account, or turn on automatic recharge."
        )),
        Ok((text, _)) => r.ok(&format!("VoIP.ms balance: {text}")),
        Err(f) => r.warning(&format!("could not read the VoIP.ms balance: {}", f.text)),
    }
    r.finish()
}

/// The finding for a failure that concerns the whole account (credentials, API switch, IP
/// allow-list, `api_url`, VoIP.ms unreachable), after which no other call can tell anything;
/// `None` for any other failure.
pub fn account_problem(f: &Failure, ip: Option<&str>, config: &Config) -> Option<String> {
    let url = redact_url(&config.voipms.api_url);
    let text = match f.status.as_str() {
        "invalid_credentials" | "missing_credentials" => {
            let n = config.voipms.api_password.expose().chars().count();
            let long = if n >= LONG_PASSWORD {
                format!(
                    "; yours is {n} characters long, and VoIP.ms has refused long API passwords that were right: set one shorter than {LONG_PASSWORD}"
                )
            } else {
                String::new()
            };
            format!(
                "VoIP.ms rejects the API credentials for \"{}\" ({}). Fix: voipms.api_username must be the e-mail address you log in to voip.ms with, and voipms.api_password the API password set at {PORTAL_API} (not the portal password){long}.",
                config.voipms.api_username, f.status
            )
        }
        "api_not_enabled" => format!(
            "the VoIP.ms API is not enabled for this account (api_not_enabled). Fix: {PORTAL_API} → Enable API, then Save."
        ),
        "ip_not_enabled" => match ip {
            Some(ip) => format!(
                "VoIP.ms does not accept API calls from this machine's IP address, {ip} (ip_not_enabled). Fix: {PORTAL_API} → Enable IP Addresses: add {ip} (separate several addresses with commas), then Save."
            ),
            None => format!(
                "VoIP.ms does not accept API calls from this machine's IP address (ip_not_enabled; VoIP.ms did not say which address it sees). Fix: {PORTAL_API} → Enable IP Addresses: add this machine's public address, then Save."
            ),
        },
        s if s.starts_with("HTTP 3") => format!(
            "{}. Fix: set voipms.api_url to https://voip.ms/api/v1/rest.php (host voip.ms, not www.voip.ms), or leave it out.",
            f.text
        ),
        _ => match f.class {
            FailureClass::Transient if f.status == "not sent" => format!(
                "{}; voipms.api_url is {url}. Fix: check this machine's DNS, firewall and outbound HTTPS, and voipms.api_url.",
                f.text
            ),
            FailureClass::Transient | FailureClass::Ambiguous | FailureClass::RateLimited => format!(
                "VoIP.ms at {url} did not answer usefully: {}. Fix: try again in a few minutes; if it persists, check voipms.api_url.",
                f.text
            ),
            _ => return None,
        },
    };
    Some(text)
}

/// The webhook URL to tell the operator to set: the `--url` target (key masked), or a template.
fn our_url(config: &Config, target: Option<&str>) -> String {
    match target {
        Some(t) => format!("{} (key= is webhook.key)", did_info::mask(t)),
        None => format!("https://YOUR-HOST[:PORT]{}?key=KEY (KEY: webhook.key)", config.webhook.path),
    }
}

fn judge_did(
    r: &mut Report<'_>,
    config: &Config,
    user: &User,
    did: &Nanp,
    info: &DidInfo,
    target: Option<&str>,
    expected: Option<&HttpUrl>,
) {
    let name = format!("DID {} ({})", did.e164(), user.jid);
    let before = r.problems();
    let public = match expected {
        Some(e) => {
            let default_port = if e.https { 443 } else { 80 };
            let port = if e.port == default_port { String::new() } else { format!(":{}", e.port) };
            format!("{}://{}{port}{}", e.scheme(), e.host, e.path)
        }
        None => format!("https://YOUR-HOST[:PORT]{}", config.webhook.path),
    };
    let fix = |what: &str| {
        format!(
            "Fix: {PORTAL_DID}: {what} {}, or run `voipms-xmpp setup-webhook --config FILE --url {public}`.",
            our_url(config, target)
        )
    };
    let fix_url = fix("set SMS/MMS Webhook URL to");
    if info.sms_available == Some(false) {
        r.problem(&format!(
            "{name}: VoIP.ms offers no SMS on this number. Fix: use a DID with SMS available (its page at {PORTAL_DID} says), or ask VoIP.ms support."
        ));
    } else if info.sms_enabled != Some(true) {
        r.problem(&format!(
            "{name}: SMS is disabled{}, so it can neither send nor receive texts. Fix: {PORTAL_DID}: enable SMS.",
            if info.sms_enabled.is_none() { " (VoIP.ms did not report it as enabled)" } else { "" }
        ));
    }
    let late = match config.voipms.backfill_interval {
        Some(every) => format!(" (backfill still finds them, up to {} minutes late)", every.as_secs().div_ceil(60)),
        None => String::new(),
    };
    let url = info.webhook.as_deref().unwrap_or("").trim();
    match info.webhook_enabled {
        Some(true) => {}
        Some(false) => r.problem(&format!(
            "{name}: the SMS/MMS webhook is off, so texts to it do not reach the gateway{late}. {}",
            fix("enable the SMS/MMS Webhook, with the URL")
        )),
        None if info.webhook.is_none() => {
            r.warning(&format!(
                "{name}: VoIP.ms did not report the SMS/MMS webhook; check at {PORTAL_DID} that it is on and set to {}.",
                our_url(config, target)
            ));
            return;
        }
        None => r.problem(&format!("{name}: VoIP.ms does not report the SMS/MMS webhook as on{late}. {fix_url}")),
    }
    let shown = did_info::mask(url);
    for fault in did_info::judge_webhook(url, &config.webhook.path, &config.webhook.key, expected) {
        let text = match fault {
            WebhookFault::Empty => format!("{name}: no SMS/MMS webhook URL is set{late}. {fix_url}"),
            WebhookFault::NotHttp => format!("{name}: the webhook URL \"{shown}\" is not an http(s) URL. {fix_url}"),
            WebhookFault::Path { found } => format!(
                "{name}: the webhook URL {shown} has the path \"{}\", but the gateway listens at \"{}\" (webhook.path), so it refuses VoIP.ms's posts (404){late}. {fix_url}",
                did_info::mask(&found),
                config.webhook.path
            ),
            WebhookFault::NoKey => format!(
                "{name}: the webhook URL {shown} has no key=, so the gateway refuses VoIP.ms's posts (401){late}. {fix_url}"
            ),
            WebhookFault::WrongKey => format!(
                "{name}: the key= in the webhook URL {shown} is not webhook.key, so the gateway refuses VoIP.ms's posts (403){late}. {fix_url}"
            ),
            WebhookFault::Elsewhere { what, found, expected } => {
                let port_hint = if what == "port" {
                    " (a port other than 80 for http or 443 for https must be written in the URL, as in https://host:8443/…)"
                } else {
                    ""
                };
                format!(
                    "{name}: the webhook URL {shown} goes to {what} {found}, not to {expected} as --url says{port_hint}. {fix_url}"
                )
            }
        };
        r.problem(&text);
    }
    if let Some(u) = info.sms_url_callback.as_deref().filter(|_| info.sms_url_callback_enabled == Some(true))
        && let Some(cb) = HttpUrl::parse(u.trim())
        && cb.path == config.webhook.path
        && expected.is_none_or(|e| e.host == cb.host)
    {
        let retry = if info.sms_url_callback_retry == Some(true) {
            ", and VoIP.ms repeats it every 30 minutes because it never gets \"ok\""
        } else {
            ""
        };
        r.warning(&format!(
            "{name}: the legacy SMS URL Callback is also on and aimed at the gateway ({}). The gateway takes only the SMS/MMS Webhook (POST) and answers the callback's GET with 405{retry}. Fix: {PORTAL_DID}: turn the URL Callback off.",
            did_info::mask(u.trim())
        ));
    }
    if r.problems() > before {
        return;
    }
    let parsed = HttpUrl::parse(url);
    if let Some(u) = parsed.as_ref().filter(|u| u.is_private()) {
        r.warning(&format!(
            "{name}: the webhook URL goes to {}, a local or private address that VoIP.ms cannot reach from the internet. Fix: give VoIP.ms the gateway's public address (behind a TLS reverse proxy), e.g. run `voipms-xmpp setup-webhook --config FILE --url https://YOUR-HOST{}`.",
            u.host, config.webhook.path
        ));
    } else if parsed.as_ref().is_some_and(|u| !u.https) {
        r.warning(&format!(
            "{name}: the webhook URL is plain http://, so the key and every text cross the internet unencrypted. Fix: put a TLS-terminating reverse proxy in front of the gateway and use an https:// URL."
        ));
    }
    r.ok(&format!(
        "DID {did} ({}): SMS on; webhook on, to {shown} (path and key match{})",
        user.jid,
        if expected.is_some() { ", and --url" } else { "" }
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{Script, config, did_answer};

    const IP: &str = r#"{"status":"success","ip":"203.0.113.7"}"#;
    const BALANCE: &str = r#"{"status":"success","balance":{"current_balance":"12.345678"}}"#;
    const GOOD: &str = "https://sms.example.net/voipms?key=webhook-key";

    fn run(script: &Script, target: Option<&str>) -> (Verdict, String) {
        let mut out = Vec::new();
        let v = online(&config(), target, script, &mut out);
        (v, String::from_utf8(out).unwrap())
    }

    #[test]
    fn all_is_well() {
        let s = Script::new(&[
            ("getIP", IP),
            ("getDIDsInfo", &did_answer("5552345678", GOOD)),
            ("getDIDsInfo", &did_answer("+15557654321", GOOD)),
            ("getDIDsInfo", &did_answer("5553334444", GOOD)),
            ("getBalance", BALANCE),
        ]);
        let (v, out) = run(&s, None);
        assert_eq!(v, Verdict::Ok, "{out}");
        assert!(out.contains("ok: VoIP.ms answers; it sees this machine as 203.0.113.7"), "{out}");
        assert!(
            out.contains(
                "ok: DID …5678 (alice@example.com): SMS on; webhook on, to https://sms.example.net/voipms?key=***"
            ),
            "{out}"
        );
        assert!(out.contains("ok: VoIP.ms balance: 12.345678") && out.ends_with("result: all is well\n"), "{out}");
        assert!(!out.contains("webhook-key") && !out.contains("secret"), "{out}");
    }

    #[test]
    fn the_ip_to_allow_comes_from_get_ip() {
        let s = Script::new(&[("getIP", IP), ("getDIDsInfo", r#"{"status":"ip_not_enabled"}"#)]);
        let (v, out) = run(&s, None);
        assert_eq!(v, Verdict::Problem);
        assert!(
            out.contains("problem: VoIP.ms does not accept API calls from this machine's IP address, 203.0.113.7"),
            "{out}"
        );
        assert!(out.contains("Enable IP Addresses: add 203.0.113.7"), "{out}");
        assert_eq!(s.methods(), vec!["getIP", "getDIDsInfo"], "stops: every other call would fail the same way");
    }

    #[test]
    fn credentials_and_the_api_switch_stop_the_check() {
        let s = Script::new(&[("getIP", r#"{"status":"invalid_credentials"}"#)]);
        let (v, out) = run(&s, None);
        assert_eq!(v, Verdict::Problem);
        assert!(
            out.contains("VoIP.ms rejects the API credentials for \"john@example.com\" (invalid_credentials)"),
            "{out}"
        );
        assert!(!out.contains("characters long"), "a short password gets no length hint: {out}");
        let s = Script::new(&[("getIP", r#"{"status":"api_not_enabled"}"#)]);
        assert!(run(&s, None).1.contains("Enable API"));
        let s = Script::new(&[("getIP", r#"<html>"#)]);
        let (v, out) = run(&s, None);
        assert!(v == Verdict::Problem && out.contains("did not answer usefully"), "{out}");
    }

    #[test]
    fn a_wrong_api_url_and_an_unreachable_voipms_are_named() {
        use crate::core::voipms::api::CallOutcome;
        let s = Script::outcomes(vec![("getIP", CallOutcome::Response { status: 301, body: String::new() })]);
        let (v, out) = run(&s, None);
        assert_eq!(v, Verdict::Problem);
        assert!(out.contains("problem: VoIP.ms answered with a redirect (HTTP 301): the gateway's voipms.api_url is wrong. Fix: set voipms.api_url to https://voip.ms/api/v1/rest.php"), "{out}");
        let s = Script::outcomes(vec![("getIP", CallOutcome::NotSent("ConnectionRefused".into()))]);
        let (v, out) = run(&s, None);
        assert_eq!(v, Verdict::Problem);
        assert!(
            out.contains(
                "problem: could not reach VoIP.ms (ConnectionRefused) (not sent); voipms.api_url is http://127.0.0.1:1/api. Fix: check this machine's DNS"
            ),
            "{out}"
        );
        // A getIP that fails otherwise only costs the address.
        let s = Script::outcomes(vec![
            ("getIP", CallOutcome::Response { status: 200, body: r#"{"status":"success"}"#.into() }),
            ("getDIDsInfo", CallOutcome::Response { status: 200, body: r#"{"status":"ip_not_enabled"}"#.into() }),
        ]);
        let (_, out) = run(&s, None);
        assert!(out.contains("warning: VoIP.ms did not say which address it sees this machine as"), "{out}");
        assert!(out.contains("(ip_not_enabled; VoIP.ms did not say which address it sees)"), "{out}");
    }

    #[test]
    fn each_did_problem_has_its_own_line_and_fix() {
        let off = did_answer("5552345678", GOOD).replace(r#""sms_enabled":"1""#, r#""sms_enabled":"0""#);
        let wrong_key = did_answer("5557654321", "https://sms.example.net/voipms?key=old");
        let no_hook = did_answer("5553334444", "").replace(r#""webhook_enabled":"1""#, r#""webhook_enabled":"0""#);
        let s = Script::new(&[
            ("getIP", IP),
            ("getDIDsInfo", &off),
            ("getDIDsInfo", &wrong_key),
            ("getDIDsInfo", &no_hook),
            ("getBalance", r#"{"status":"success","balance":{"current_balance":"0.50"}}"#),
        ]);
        let (v, out) = run(&s, None);
        assert_eq!(v, Verdict::Problem);
        let problems: Vec<&str> = out.lines().filter(|l| l.starts_with("problem: ")).collect();
        assert!(problems[0].contains("DID +15552345678 (alice@example.com): SMS is disabled"), "{out}");
        assert!(problems[0].contains(
            "Fix: voip.ms → DID Numbers → Manage DIDs → edit the DID → Message Service (SMS/MMS): enable SMS."
        ));
        assert!(problems[1].contains("DID +15557654321 (bob@example.com): the key= in the webhook URL https://sms.example.net/voipms?key=*** is not webhook.key"), "{out}");
        assert!(
            problems[2].contains("the SMS/MMS webhook is off") && problems[2].contains("up to 10 minutes late"),
            "{out}"
        );
        assert!(problems[3].contains("no SMS/MMS webhook URL is set"), "{out}");
        assert_eq!(problems.len(), 4, "{out}");
        assert!(out.contains("warning: the VoIP.ms balance is low (0.50)"), "{out}");
        assert!(out.ends_with("result: 4 problems, 1 warning\n"), "{out}");
        assert!(!out.contains("key=old"), "{out}");
    }

    #[test]
    fn url_must_match_in_full_when_given() {
        let target = "https://sms.example.net:8443/voipms?key=webhook-key";
        let s = Script::new(&[
            ("getIP", IP),
            ("getDIDsInfo", &did_answer("5552345678", GOOD)),
            ("getDIDsInfo", &did_answer("5557654321", target)),
            ("getDIDsInfo", r#"{"status":"invalid_did"}"#),
            ("getBalance", BALANCE),
        ]);
        let (v, out) = run(&s, Some(target));
        assert_eq!(v, Verdict::Problem);
        assert!(out.contains("goes to port 443, not to 8443 as --url says (a port other than 80"), "{out}");
        assert!(out.contains("ok: DID …4321 (bob@example.com): SMS on; webhook on, to https://sms.example.net:8443/voipms?key=*** (path and key match, and --url)"), "{out}");
        assert!(out.contains("problem: DID +15553334444 (bob@example.com) is not on this VoIP.ms account"), "{out}");
    }

    #[test]
    fn url_callback_and_private_addresses_are_warnings() {
        let both = did_answer("5552345678", "http://127.0.0.1:8080/voipms?key=webhook-key")
            .replace(
                r#""sms_url_callback":"""#,
                r#""sms_url_callback":"https://sms.example.net/voipms?key=webhook-key&from={FROM}""#,
            )
            .replace(r#""sms_url_callback_enabled":"0""#, r#""sms_url_callback_enabled":"1""#)
            .replace(r#""sms_url_callback_retry":"0""#, r#""sms_url_callback_retry":"1""#);
        let plain = did_answer("5557654321", "http://sms.example.net/voipms?key=webhook-key");
        let s = Script::new(&[
            ("getIP", IP),
            ("getDIDsInfo", &both),
            ("getDIDsInfo", &plain),
            ("getDIDsInfo", &did_answer("5553334444", GOOD)),
            ("getBalance", BALANCE),
        ]);
        let (v, out) = run(&s, None);
        assert_eq!(v, Verdict::Ok, "{out}");
        assert!(out.contains("the legacy SMS URL Callback is also on and aimed at the gateway (https://sms.example.net/voipms?key=***&from={FROM})"), "{out}");
        assert!(out.contains("answers the callback's GET with 405, and VoIP.ms repeats it every 30 minutes"), "{out}");
        assert!(out.contains("goes to 127.0.0.1, a local or private address"), "{out}");
        assert!(out.contains("DID +15557654321 (bob@example.com): the webhook URL is plain http://"), "{out}");
        assert!(out.ends_with("result: no problem, 3 warnings\n"), "{out}");
    }

    #[test]
    fn hostile_answers_cannot_forge_lines() {
        let evil = did_answer("5552345678", "https://x/\\u001b[2J\\nproblem: none?key=webhook-key");
        let s = Script::new(&[
            ("getIP", IP),
            ("getDIDsInfo", &evil),
            ("getDIDsInfo", &did_answer("5557654321", GOOD)),
            ("getDIDsInfo", &did_answer("5553334444", GOOD)),
            ("getBalance", BALANCE),
        ]);
        let (_, out) = run(&s, None);
        assert!(!out.contains('\u{1b}') && !out.lines().any(|l| l == "problem: none"), "{out}");
    }

    #[test]
    fn a_long_password_gets_the_hint() {
        let mut c = config();
        c.voipms.api_password = crate::core::secret::Secret::new("x".repeat(40));
        let f = crate::core::voipms::api::classify_status("invalid_credentials");
        let text = account_problem(&f, None, &c).unwrap();
        assert!(text.contains("yours is 40 characters long"), "{text}");
        assert!(!text.contains(&"x".repeat(40)));
    }
}
