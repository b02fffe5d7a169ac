//! `setup-webhook`: points the SMS/MMS webhook of every mapped DID at the gateway, keeping every
//! other setting.
//!
//! setSMS sets a DID's whole SMS configuration and switches off whatever it is not told
//! (voipms.md §7.1, #47), so for each DID: read it (`getDIDsInfo`), leave it alone when it is
//! already right, refuse when the answer lacks a setting that would have to be restated
//! (`SmsSettings::from_info`), else call setSMS with every setting as read plus `enable=1`,
//! `webhook_enable=1` and the URL, then read it back to see that VoIP.ms took all of it.
//! `sms_wait_message` (SMS switched on or off less than a minute ago, #282) is waited out a
//! bounded number of times; the wait is a parameter, so tests need not sleep. `--dry-run` prints
//! each change and calls no setSMS.

use super::check::account_problem;
use super::{Api, PORTAL_DID, Report, Verdict};
use crate::core::config::{Config, User};
use crate::core::phone::Nanp;
use crate::core::voipms::api::{FailureClass, Request};
use crate::core::voipms::did_info::{self, DidInfo, HttpUrl, SMS_WAIT, SmsSettings};
use std::io::Write;
use std::time::Duration;

/// What VoIP.ms asks for after `sms_wait_message`: "please wait a minute".
pub const SMS_WAIT_TIME: Duration = Duration::from_secs(60);

/// At most this many waits per DID (four setSMS calls, about three minutes): a minute is what
/// VoIP.ms asks for, and three in a row mean something else is going on.
pub const MAX_WAITS: u32 = 3;

/// What to do.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// The webhook URL, validated by [`super::webhook_target`] (it holds the key).
    pub target: &'a str,
    /// Print the changes, change nothing.
    pub dry_run: bool,
    /// How long to wait after `sms_wait_message` ([`SMS_WAIT_TIME`]; tests use less).
    pub wait: Duration,
}

/// Set up every mapped DID; `sleep` waits (`std::thread::sleep` outside tests).
pub fn run(
    config: &Config,
    opts: &Options<'_>,
    api: &dyn Api,
    out: &mut dyn Write,
    sleep: &mut dyn FnMut(Duration),
) -> Verdict {
    let mut r = Report::new(out);
    let count: usize = config.users.iter().map(|u| u.dids.len()).sum();
    r.note(&format!(
        "{} the SMS/MMS webhook of {count} DID{} to {}",
        if opts.dry_run { "dry run, nothing is changed: would set" } else { "setting" },
        if count == 1 { "" } else { "s" },
        did_info::mask(opts.target)
    ));
    for user in &config.users {
        for did in &user.dids {
            if let Err(stop) = one_did(&mut r, config, opts, api, sleep, user, did) {
                r.problem(&stop);
                return r.finish();
            }
        }
    }
    r.finish()
}

/// Set up one DID. `Err`: an account-wide failure, after which nothing else can work.
fn one_did(
    r: &mut Report<'_>,
    config: &Config,
    opts: &Options<'_>,
    api: &dyn Api,
    sleep: &mut dyn FnMut(Duration),
    user: &User,
    did: &Nanp,
) -> Result<(), String> {
    let name = format!("DID {} ({})", did.e164(), user.jid);
    let info = match read(config, api, did)? {
        Ok(Some(info)) => info,
        Ok(None) => {
            r.problem(&format!(
                "{name} is not on this VoIP.ms account. Fix: compare jid_map with voip.ms → DID Numbers → Manage DIDs."
            ));
            return Ok(());
        }
        Err(why) => {
            r.problem(&format!("{name}: could not read its settings: {why}. Fix: run setup-webhook again later."));
            return Ok(());
        }
    };
    let expected = HttpUrl::parse(opts.target);
    let webhook = info.webhook.as_deref().unwrap_or("").trim();
    let right = |info: &DidInfo, webhook: &str| {
        info.sms_enabled == Some(true)
            && info.webhook_enabled == Some(true)
            && did_info::judge_webhook(webhook, &config.webhook.path, &config.webhook.key, expected.as_ref()).is_empty()
    };
    if right(&info, webhook) {
        r.ok(&format!("DID {did} ({}): already set; left alone", user.jid));
        return Ok(());
    }
    let before = match SmsSettings::from_info(*did, &info) {
        Ok(s) => s,
        Err(missing) => {
            r.problem(&format!(
                "{name}: VoIP.ms did not report {}, and setSMS would clear whatever it is not told; left alone. Fix: at {PORTAL_DID}, set SMS/MMS Webhook URL to {} (key= is webhook.key) and enable it.",
                missing.join(", "),
                did_info::mask(opts.target)
            ));
            return Ok(());
        }
    };
    let mut wanted = before.clone();
    wanted.enable = true;
    wanted.webhook_enable = true;
    wanted.webhook = opts.target.to_string();
    r.note(&format!(
        "{}{name}: {}",
        if opts.dry_run { "would change " } else { "changing " },
        change(&info, &before, opts.target)
    ));
    if opts.dry_run {
        return Ok(());
    }
    let mut waits = 0;
    loop {
        match did_info::set_sms(&api.call(&Request::SetSms(Box::new(wanted.clone())))) {
            Ok(()) => break,
            Err(f) if f.status == SMS_WAIT && waits < MAX_WAITS => {
                waits += 1;
                r.note(&format!(
                    "{name}: VoIP.ms asks to wait a minute before SMS is switched on again (sms_wait_message); waiting {} s, then try {} of {}",
                    opts.wait.as_secs(),
                    waits + 1,
                    MAX_WAITS + 1
                ));
                sleep(opts.wait);
            }
            Err(f) if f.class == FailureClass::Ambiguous => {
                r.note(&format!("{name}: no clear answer to setSMS ({}); reading the DID back", f.text));
                break;
            }
            Err(f) => {
                // sms_wait_message is about this DID only, however often it came.
                if f.status != SMS_WAIT
                    && let Some(stop) = account_problem(&f, None, config)
                {
                    return Err(stop);
                }
                let tries = if waits > 0 { format!(" after {} tries", waits + 1) } else { String::new() };
                r.problem(&format!("{name}: VoIP.ms refused the change{tries}: {}. Nothing was changed.", f.text));
                return Ok(());
            }
        }
    }
    // Read it back: did VoIP.ms take the webhook (its flag went only under the documented name,
    // webhook_enable) and keep every restated setting?
    let after = match read(config, api, did)? {
        Ok(Some(info)) => info,
        Ok(None) => {
            r.problem(&format!(
                "{name}: after setSMS, VoIP.ms no longer lists the DID. Fix: look at it at {PORTAL_DID}."
            ));
            return Ok(());
        }
        Err(why) => {
            r.problem(&format!(
                "{name}: the change was sent, but reading it back failed ({why}). Fix: run `voipms-xmpp check --online` to see where it stands."
            ));
            return Ok(());
        }
    };
    let mut wrong = Vec::new();
    if after.sms_enabled != Some(true) {
        wrong.push("SMS is off".to_string());
    }
    if after.webhook_enabled != Some(true) {
        wrong.push("the webhook is off".to_string());
    }
    let new_url = after.webhook.as_deref().unwrap_or("").trim();
    if !did_info::judge_webhook(new_url, &config.webhook.path, &config.webhook.key, expected.as_ref()).is_empty() {
        wrong.push(format!("the webhook URL is \"{}\"", did_info::mask(new_url)));
    }
    match SmsSettings::from_info(*did, &after) {
        Ok(now) => {
            let lost = before.differences(&now);
            if !lost.is_empty() {
                wrong.push(format!("these settings changed: {}", lost.join(", ")));
            }
        }
        Err(missing) => wrong.push(format!("it no longer reports {}", missing.join(", "))),
    }
    if wrong.is_empty() {
        r.ok(&format!("DID {did} ({}): webhook set; every other setting kept", user.jid));
    } else {
        r.problem(&format!(
            "{name}: after setSMS, VoIP.ms reports that {}. Fix: set it right at {PORTAL_DID} (and please report this: VoIP.ms may not take setSMS the way its documentation says).",
            wrong.join("; ")
        ));
    }
    Ok(())
}

/// getDIDsInfo for `did`: `Err` for an account-wide failure, `Ok(Err(why))` for another one.
fn read(config: &Config, api: &dyn Api, did: &Nanp) -> Result<Result<Option<DidInfo>, String>, String> {
    match did_info::did_info(&api.call(&Request::DidInfo { did: *did }), did) {
        Ok(info) => Ok(Ok(info)),
        Err(f) => {
            // For the allow-list, getIP names the address to add.
            let ip = if f.status == "ip_not_enabled" { did_info::ip(&api.call(&Request::Ip)).ok() } else { None };
            match account_problem(&f, ip.as_deref(), config) {
                Some(stop) => Err(stop),
                None => Ok(Err(f.text)),
            }
        }
    }
}

/// "webhook OLD (off) → NEW (on); SMS off → on; keeps: …", keys masked.
fn change(info: &DidInfo, before: &SmsSettings, target: &str) -> String {
    let state = |b: Option<bool>| match b {
        Some(true) => "on",
        Some(false) => "off",
        None => "not reported",
    };
    let old = match info.webhook.as_deref().map(str::trim) {
        None => "not reported".to_string(),
        Some("") => "(none)".to_string(),
        Some(url) => did_info::mask(url),
    };
    let mut parts = vec![format!("webhook {old} ({}) → {} (on)", state(info.webhook_enabled), did_info::mask(target))];
    if info.sms_enabled != Some(true) {
        parts.push(format!("SMS {} → on", state(info.sms_enabled)));
    }
    let kept: Vec<&str> = [
        (before.email_enabled, "e-mail copies"),
        (before.sms_forward_enable, "SMS forwarding"),
        (before.url_callback_enable, "URL callback"),
        (before.smpp_enabled, "SMPP"),
        (before.sms_sipaccount_enabled, "SIP account delivery"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| name)
    .collect();
    let kept = if kept.is_empty() { "no other delivery is on".to_string() } else { format!("{} on", kept.join(", ")) };
    parts.push(format!("keeps: {kept}"));
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{Script, config, did_answer};

    const TARGET: &str = "https://sms.example.net/voipms?key=webhook-key";
    const OK: &str = r#"{"status":"success"}"#;
    const WAIT: &str = r#"{"status":"sms_wait_message"}"#;

    fn run_with(script: &Script, dry_run: bool) -> (Verdict, String, Vec<Duration>) {
        let mut out = Vec::new();
        let mut slept = Vec::new();
        let opts = Options { target: TARGET, dry_run, wait: SMS_WAIT_TIME };
        let v = run(&config(), &opts, script, &mut out, &mut |d| slept.push(d));
        (v, String::from_utf8(out).unwrap(), slept)
    }

    /// A DID with SMS off, an e-mail copy on, and an old webhook.
    fn old(did: &str) -> String {
        did_answer(did, "http://old.example.com:5281/voipms?key=old-key")
            .replace(r#""sms_enabled":"1""#, r#""sms_enabled":"0""#)
            .replace(r#""webhook_enabled":"1""#, r#""webhook_enabled":"0""#)
            .replace(r#""sms_email":"""#, r#""sms_email":"me@example.com""#)
            .replace(r#""sms_email_enabled":"0""#, r#""sms_email_enabled":"1""#)
    }

    /// The same DID after a setSMS that kept everything.
    fn new(did: &str) -> String {
        did_answer(did, TARGET)
            .replace(r#""sms_email":"""#, r#""sms_email":"me@example.com""#)
            .replace(r#""sms_email_enabled":"0""#, r#""sms_email_enabled":"1""#)
    }

    #[test]
    fn dry_run_reads_and_changes_nothing() {
        let s = Script::new(&[
            ("getDIDsInfo", &old("5552345678")),
            ("getDIDsInfo", &did_answer("5557654321", TARGET)),
            ("getDIDsInfo", &old("5553334444")),
        ]);
        let (v, out, slept) = run_with(&s, true);
        assert_eq!(v, Verdict::Ok, "{out}");
        assert_eq!(s.methods(), vec!["getDIDsInfo"; 3], "no setSMS");
        assert!(slept.is_empty());
        assert!(out.contains(
            "would change DID +15552345678 (alice@example.com): webhook http://old.example.com:5281/voipms?key=*** (off) → https://sms.example.net/voipms?key=*** (on); SMS off → on; keeps: e-mail copies on"
        ), "{out}");
        assert!(out.contains("ok: DID …4321 (bob@example.com): already set; left alone"), "{out}");
        assert!(!out.contains("webhook-key") && !out.contains("old-key"), "{out}");
    }

    #[test]
    fn restates_everything_and_reads_it_back() {
        let s = Script::new(&[
            ("getDIDsInfo", &old("5552345678")),
            ("setSMS", OK),
            ("getDIDsInfo", &new("5552345678")),
            ("getDIDsInfo", &did_answer("5557654321", TARGET)),
            ("getDIDsInfo", &did_answer("5553334444", TARGET)),
        ]);
        let (v, out, _) = run_with(&s, false);
        assert_eq!(v, Verdict::Ok, "{out}");
        assert!(out.contains("ok: DID …5678 (alice@example.com): webhook set; every other setting kept"), "{out}");
        let calls = s.calls.borrow();
        let Request::SetSms(set) = &calls[1] else { panic!("{:?}", calls[1]) };
        let p = set.params();
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!((get("enable"), get("webhook_enable"), get("webhook")), (Some("1"), Some("1"), Some(TARGET)));
        assert_eq!((get("email_enabled"), get("email_address")), (Some("1"), Some("me@example.com")));
        assert_eq!(get("dialmode"), Some("1"));
    }

    #[test]
    fn a_setting_lost_in_the_write_is_reported() {
        let s = Script::new(&[
            ("getDIDsInfo", &old("5552345678")),
            ("setSMS", OK),
            (
                "getDIDsInfo",
                &did_answer("5552345678", TARGET).replace(r#""webhook_enabled":"1""#, r#""webhook_enabled":"0""#),
            ),
            ("getDIDsInfo", &did_answer("5557654321", TARGET)),
            ("getDIDsInfo", &did_answer("5553334444", TARGET)),
        ]);
        let (v, out, _) = run_with(&s, false);
        assert_eq!(v, Verdict::Problem);
        assert!(out.contains(
            "problem: DID +15552345678 (alice@example.com): after setSMS, VoIP.ms reports that the webhook is off; these settings changed: sms_email_enabled, sms_email."
        ), "{out}");
    }

    #[test]
    fn sms_wait_message_is_waited_out_a_bounded_number_of_times() {
        let s = Script::new(&[
            ("getDIDsInfo", &old("5552345678")),
            ("setSMS", WAIT),
            ("setSMS", OK),
            ("getDIDsInfo", &new("5552345678")),
            ("getDIDsInfo", &old("5557654321")),
            ("setSMS", WAIT),
            ("setSMS", WAIT),
            ("setSMS", WAIT),
            ("setSMS", WAIT),
            ("getDIDsInfo", &did_answer("5553334444", TARGET)),
        ]);
        let (v, out, slept) = run_with(&s, false);
        assert_eq!(v, Verdict::Problem, "{out}");
        assert_eq!(slept, vec![SMS_WAIT_TIME; 4], "one wait for alice's DID, three for bob's first");
        assert!(out.contains("(sms_wait_message); waiting 60 s, then try 2 of 4"), "{out}");
        assert!(out.contains("ok: DID …5678 (alice@example.com): webhook set"), "{out}");
        assert!(out.contains("problem: DID +15557654321 (bob@example.com): VoIP.ms refused the change after 4 tries: VoIP.ms asks to wait a minute"), "{out}");
        assert!(out.contains("ok: DID …4444 (bob@example.com): already set"), "the next DID is still done: {out}");
    }

    #[test]
    fn refuses_when_a_setting_to_restate_is_not_reported() {
        let partial = old("5552345678").replace(r#""sms_sipaccount":"","sms_sipaccount_enabled":"0""#, r#""x":"""#);
        let s = Script::new(&[
            ("getDIDsInfo", &partial),
            ("getDIDsInfo", &did_answer("5557654321", TARGET)),
            ("getDIDsInfo", r#"{"status":"invalid_did"}"#),
        ]);
        let (v, out, _) = run_with(&s, false);
        assert_eq!(v, Verdict::Problem);
        assert!(out.contains("VoIP.ms did not report sms_sipaccount_enabled, sms_sipaccount, and setSMS would clear whatever it is not told; left alone"), "{out}");
        assert!(out.contains("problem: DID +15553334444 (bob@example.com) is not on this VoIP.ms account"), "{out}");
        assert!(!s.methods().contains(&"setSMS"));
    }

    #[test]
    fn account_wide_failures_stop_and_name_the_ip() {
        let s = Script::new(&[
            ("getDIDsInfo", r#"{"status":"ip_not_enabled"}"#),
            ("getIP", r#"{"status":"success","ip":"198.51.100.4"}"#),
        ]);
        let (v, out, _) = run_with(&s, false);
        assert_eq!(v, Verdict::Problem);
        assert!(out.contains("this machine's IP address, 198.51.100.4"), "{out}");
        assert!(out.ends_with("result: 1 problem\n"), "{out}");
    }

    #[test]
    fn an_unclear_answer_is_settled_by_reading_back() {
        let s = Script::new(&[
            ("getDIDsInfo", &old("5552345678")),
            ("setSMS", "<html>502</html>"),
            ("getDIDsInfo", &new("5552345678")),
            ("getDIDsInfo", &did_answer("5557654321", TARGET)),
            ("getDIDsInfo", &did_answer("5553334444", TARGET)),
        ]);
        let (v, out, _) = run_with(&s, false);
        assert_eq!(v, Verdict::Ok, "{out}");
        assert!(out.contains("no clear answer to setSMS (VoIP.ms sent an unreadable answer"), "{out}");
    }
}
