//! The operator commands of issue 7, run as the real binary against mock-voipms:
//! `check --online`, `send`, `setup-webhook` (with `--dry-run`, restating every setting, and
//! `sms_wait_message`). No gateway runs: these commands talk to VoIP.ms only.

use crate::support::harness::{ALICE_DID, BOB_DID, BOB_DID2, FRIEND, KEY, TestEnv, http_request};
use mock_voipms::{AccountPatch, DidConfig, Fault, MockConfig};
use std::process::Command;

/// The gateway's public webhook URL in these tests (never fetched: only compared).
const PUBLIC: &str = "https://sms.example.net/voipms";

fn good_url() -> String {
    format!("{PUBLIC}?key={KEY}")
}

/// A mock whose clock stands still (so the sms_wait_message minute only passes when told).
fn env(tag: &str) -> TestEnv {
    let env = TestEnv::with_mock(
        tag,
        MockConfig::for_tests(&[ALICE_DID, BOB_DID, BOB_DID2]).with_fixed_clock("2025-07-20T12:00:00-04:00"),
    );
    env.write_config();
    env
}

/// Point every DID's webhook at the gateway's public URL.
fn all_good(env: &TestEnv) {
    for did in [ALICE_DID, BOB_DID, BOB_DID2] {
        env.voipms.set_did(DidConfig::new(did).with_webhook(&good_url()));
    }
}

/// Run the binary with the test's config; (exit code, stdout, stderr).
fn cli(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_voipms-xmpp"))
        .arg(args[0])
        .arg("--config")
        .arg(env.config_path())
        .args(&args[1..])
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .output()
        .expect("run the binary");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    if std::env::var_os("E2E_VERBOSE").is_some() {
        eprintln!("voipms-xmpp {args:?}:\n{stdout}{stderr}");
    }
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

fn methods(env: &TestEnv) -> Vec<String> {
    env.voipms.calls().into_iter().map(|c| c.method).collect()
}

fn problems(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("problem: ")).collect()
}

#[test]
fn check_online_all_is_well() {
    let env = env("ops-check-ok");
    all_good(&env);
    let (code, out, err) = cli(&env, &["check", "--online"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("valid (2 users, 3 DIDs)"), "{out}");
    assert!(out.contains("ok: VoIP.ms answers; it sees this machine as 127.0.0.1"), "{out}");
    assert!(out.contains("ok: VoIP.ms accepts the API credentials and this machine's IP address"), "{out}");
    assert!(
        out.contains(
            "ok: DID …5678 (alice@example.com): SMS on; webhook on, to https://sms.example.net/voipms?key=***"
        ),
        "{out}"
    );
    assert!(out.contains("ok: VoIP.ms balance: 12.345678") && out.ends_with("result: all is well\n"), "{out}");
    assert!(!out.contains(KEY) && !out.contains("secret"), "no key, no password: {out}");
    assert_eq!(methods(&env), ["getIP", "getDIDsInfo", "getDIDsInfo", "getDIDsInfo", "getBalance"], "read-only");
    // With the public URL, scheme, host and port must match too.
    let (code, out, _) = cli(&env, &["check", "--online", "--url", PUBLIC]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(path and key match, and --url)"), "{out}");
}

#[test]
fn check_online_wrong_password() {
    let env = env("ops-check-password");
    all_good(&env);
    env.voipms.set_account(AccountPatch::default().api_password("a-different-one"));
    let (code, out, _) = cli(&env, &["check", "--online"]);
    assert_eq!(code, 1, "{out}");
    let p = problems(&out);
    assert_eq!(p.len(), 1, "{out}");
    assert!(
        p[0].contains("VoIP.ms rejects the API credentials for \"john@example.com\" (invalid_credentials)"),
        "{out}"
    );
    assert!(
        p[0].contains("the API password set at voip.ms → Main Menu → SOAP and REST/JSON API (not the portal password)")
    );
    assert!(!out.contains("secret") && !out.contains("a-different-one"), "{out}");
    assert_eq!(methods(&env), ["getIP"], "one call says it all");
}

#[test]
fn check_online_ip_not_allowed_names_the_address() {
    let env = env("ops-check-ip");
    all_good(&env);
    env.voipms.set_account(AccountPatch::default().allowed_ips(&["203.0.113.9"]));
    let (code, out, _) = cli(&env, &["check", "--online"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ok: VoIP.ms answers; it sees this machine as 127.0.0.1"), "{out}");
    let p = problems(&out);
    assert_eq!(p.len(), 1, "{out}");
    assert!(
        p[0].contains("VoIP.ms does not accept API calls from this machine's IP address, 127.0.0.1 (ip_not_enabled)"),
        "{out}"
    );
    assert!(p[0].contains("Enable IP Addresses: add 127.0.0.1"), "{out}");
    // The API switched off is said the same way.
    env.voipms.set_account(AccountPatch::default().api_enabled(false));
    let (code, out, _) = cli(&env, &["check", "--online"]);
    assert_eq!(code, 1);
    assert!(out.contains("the VoIP.ms API is not enabled for this account (api_not_enabled)"), "{out}");
}

#[test]
fn check_online_dids_without_sms_or_with_a_wrong_or_disabled_webhook() {
    let env = env("ops-check-dids");
    let mut off = DidConfig::new(ALICE_DID).with_webhook(&good_url());
    off.sms_enabled = false;
    env.voipms.set_did(off);
    let mut disabled = DidConfig::new(BOB_DID).with_webhook(&good_url());
    disabled.webhook_enabled = false;
    env.voipms.set_did(disabled);
    env.voipms.set_did(DidConfig::new(BOB_DID2).with_webhook("https://sms.example.net:5281/sms?key=stale"));
    let (code, out, _) = cli(&env, &["check", "--online", "--url", PUBLIC]);
    assert_eq!(code, 1, "{out}");
    let p = problems(&out);
    assert!(p[0].starts_with(
        "problem: DID +15552345678 (alice@example.com): SMS is disabled, so it can neither send nor receive texts. Fix: voip.ms → DID Numbers → Manage DIDs → edit the DID → Message Service (SMS/MMS): enable SMS."
    ), "{out}");
    assert!(p[1].contains("DID +15557654321 (bob@example.com): the SMS/MMS webhook is off"), "{out}");
    assert!(p[2].contains("goes to port 5281, not to 443 as --url says"), "{out}");
    assert!(p[3].contains("has the path \"/sms\", but the gateway listens at \"/voipms\""), "{out}");
    assert!(p[4].contains("is not webhook.key, so the gateway refuses VoIP.ms's posts (403)"), "{out}");
    assert_eq!(p.len(), 5, "{out}");
    assert!(out.contains("https://sms.example.net:5281/sms?key=***") && !out.contains("stale"), "{out}");
    // A DID that is not on the account.
    assert!(env.voipms.remove_did(BOB_DID2));
    let (code, out, _) = cli(&env, &["check", "--online"]);
    assert_eq!(code, 1);
    assert!(out.contains("problem: DID +15553334444 (bob@example.com) is not on this VoIP.ms account"), "{out}");
    assert!(!methods(&env).contains(&"setSMS".to_string()), "check never writes");
}

#[test]
fn check_online_usage_errors() {
    let env = env("ops-check-usage");
    let (code, _, err) = cli(&env, &["check", "--url", PUBLIC]);
    assert_eq!(code, 2);
    assert!(err.contains("--url needs --online"), "{err}");
    let (code, _, err) = cli(&env, &["check", "--online", "--url", "ftp://sms.example.net/voipms"]);
    assert_eq!(code, 2);
    assert!(err.contains("--url: not an http:// or https:// URL"), "{err}");
    assert!(methods(&env).is_empty());
}

#[test]
fn send_prints_the_voipms_ids() {
    let env = env("ops-send");
    let (code, out, err) = cli(&env, &["send", "--from", "+15553334444", "--to", FRIEND, "hello from the CLI"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "sent the message by sendSMS: VoIP.ms id 100000000\n");
    let sent = env.voipms.messages();
    assert_eq!((sent[0].did.as_str(), sent[0].contact.as_str()), (BOB_DID2, FRIEND));
    assert_eq!(sent[0].message, "hello from the CLI");
    // Media go by MMS; a long text in parts, in order.
    let (code, out, _) =
        cli(&env, &["send", "--from", ALICE_DID, "--to", FRIEND, "--media", "https://up.example.com/a.jpg", "look"]);
    assert_eq!((code, out.as_str()), (0, "sent the message by sendMMS: VoIP.ms id 200000000\n"));
    let long: String = (0..500).map(|i| format!("word{i} ")).collect();
    let (code, out, _) = cli(&env, &["send", "--from", ALICE_DID, "--to", FRIEND, &long]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "sent part 1 of 2 by sendMMS: VoIP.ms id 200000001\nsent part 2 of 2 by sendMMS: VoIP.ms id 200000002\n"
    );
    let parts: Vec<String> = env.voipms.messages().iter().skip(2).map(|m| m.message.clone()).collect();
    assert_eq!(parts.concat(), long);
}

#[test]
fn send_failures_give_the_reason() {
    let env = env("ops-send-fail");
    env.voipms.inject(Fault::status("sendSMS", 1, "invalid_dst"));
    let (code, out, err) = cli(&env, &["send", "--from", ALICE_DID, "--to", FRIEND, "hi"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err, "voipms-xmpp: the message was not sent: VoIP.ms cannot send to this number (invalid_dst)\n");
    // A proxy's error after VoIP.ms sent it: said to be maybe sent, and not resent.
    env.voipms.inject(Fault::http_status_after_success("sendSMS", 1, 502));
    let (code, _, err) = cli(&env, &["send", "--from", ALICE_DID, "--to", FRIEND, "hi"]);
    assert_eq!(code, 1);
    assert!(err.contains("the message may have been sent: VoIP.ms is unavailable (HTTP 502)"), "{err}");
    assert_eq!(methods(&env), ["sendSMS", "sendSMS"], "never resent");
    assert_eq!(env.voipms.messages().len(), 1);
    // Usage: a DID that is not the config's, a number VoIP.ms cannot text.
    let (code, _, err) = cli(&env, &["send", "--from", "5552223333", "--to", FRIEND, "hi"]);
    assert_eq!(code, 2);
    assert!(err.contains("--from +15552223333 is not one of the config's DIDs"), "{err}");
    let (code, _, err) = cli(&env, &["send", "--from", ALICE_DID, "--to", "+442079460958", "hi"]);
    assert_eq!(code, 2);
    assert!(err.contains("VoIP.ms can only text those"), "{err}");
    assert_eq!(methods(&env).len(), 2, "no call for a usage error");
}

/// Alice's DID as an operator left it: SMS off, an old webhook switched off, and other
/// deliveries on that setSMS must not lose.
fn alice_before() -> DidConfig {
    let mut d =
        DidConfig::new(ALICE_DID).with_url_callback("https://crm.example.org/sms?from={FROM}&msg={MESSAGE}", true);
    d.sms_enabled = false;
    d.webhook = "http://old.example.com:5281/voipms?key=old-key".into();
    d.webhook_enabled = false;
    d.email_enabled = true;
    d.email_address = "alice@example.com".into();
    d.sms_forward_enable = true;
    d.sms_forward = FRIEND.into();
    d.dialmode = 2;
    d
}

#[test]
fn setup_webhook_dry_run_calls_no_setsms() {
    let env = env("ops-setup-dry");
    env.voipms.set_did(alice_before());
    let (code, out, err) = cli(&env, &["setup-webhook", "--url", PUBLIC, "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("dry run, nothing is changed: would set the SMS/MMS webhook of 3 DIDs to https://sms.example.net/voipms?key=***\n"), "{out}");
    assert!(out.contains(
        "would change DID +15552345678 (alice@example.com): webhook http://old.example.com:5281/voipms?key=*** (off) → https://sms.example.net/voipms?key=*** (on); SMS off → on; keeps: e-mail copies, SMS forwarding, URL callback on"
    ), "{out}");
    assert!(out.contains("would change DID +15557654321 (bob@example.com): webhook (none) (off) →"), "{out}");
    assert!(!out.contains(KEY) && !out.contains("old-key"), "{out}");
    assert_eq!(methods(&env), ["getDIDsInfo"; 3]);
    assert_eq!(env.voipms.dids()[0], alice_before(), "nothing changed");
}

#[test]
fn setup_webhook_restates_every_other_setting() {
    let env = env("ops-setup");
    // The mock's default: setSMS clears what it is not told (voipms.md §7.1, #47).
    assert!(env.voipms.options().setsms_drops_unstated);
    env.voipms.set_did(alice_before());
    env.voipms.set_did(DidConfig::new(BOB_DID).with_webhook(&good_url()));
    let (code, out, err) = cli(&env, &["setup-webhook", "--url", PUBLIC]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok: DID …5678 (alice@example.com): webhook set; every other setting kept"), "{out}");
    assert!(out.contains("ok: DID …4321 (bob@example.com): already set; left alone"), "{out}");
    assert!(out.contains("ok: DID …4444 (bob@example.com): webhook set"), "{out}");
    assert!(!out.contains(KEY), "{out}");
    let alice = env.voipms.dids().into_iter().find(|d| d.did == ALICE_DID).unwrap();
    let mut expected = alice_before();
    expected.sms_enabled = true;
    expected.webhook_enabled = true;
    expected.webhook = good_url();
    assert_eq!(alice, expected, "the e-mail copy, the forward, the URL callback and the dial mode survive");
    let set = env.voipms.calls_for("setSMS");
    assert_eq!(set.len(), 2, "Bob's first DID was already right");
    assert_eq!(set[0].param("webhook_enable"), Some("1"), "the documented name");
    assert_eq!(set[0].param("webhook_enabled"), None);
    assert_eq!(set[0].param("email_address"), Some("alice@example.com"));
    // The gateway's own check now finds nothing wrong.
    let (code, out, _) = cli(&env, &["check", "--online", "--url", PUBLIC]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn setup_webhook_waits_out_sms_wait_message() {
    let env = env("ops-setup-wait");
    all_good(&env);
    env.voipms.set_did(alice_before());
    env.voipms.inject(Fault::status("setSMS", 1, "sms_wait_message"));
    let (code, out, err) = cli(&env, &["setup-webhook", "--url", PUBLIC, "--wait-secs", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(
        "DID +15552345678 (alice@example.com): VoIP.ms asks to wait a minute before SMS is switched on again (sms_wait_message); waiting 1 s, then try 2 of 4"
    ), "{out}");
    assert!(out.contains("ok: DID …5678 (alice@example.com): webhook set; every other setting kept"), "{out}");
    assert_eq!(env.voipms.calls_for("setSMS").len(), 2);
}

#[test]
fn setup_webhook_gives_up_on_sms_wait_message_after_a_few_tries() {
    let env = env("ops-setup-wait-bound");
    all_good(&env);
    // Switch SMS off on Alice's DID through the API, as an operator might have just done: the
    // mock's sms_wait rule refuses another switch within 60 s of its (fixed) clock.
    let off = format!(
        "/api/v1/rest.php?api_username=john@example.com&api_password=secret&method=setSMS&did={ALICE_DID}&enable=0"
    );
    let (status, body) = http_request(env.voipms.addr(), "GET", &off, b"");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"success"}"#));
    env.voipms.set_did(alice_before());
    let (code, out, _) = cli(&env, &["setup-webhook", "--url", PUBLIC, "--wait-secs", "0"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("then try 4 of 4"), "{out}");
    assert!(out.contains(
        "problem: DID +15552345678 (alice@example.com): VoIP.ms refused the change after 4 tries: VoIP.ms asks to wait a minute"
    ), "{out}");
    assert_eq!(env.voipms.calls_for("setSMS").len(), 5, "ours: four tries");
    assert_eq!(env.voipms.dids()[0], alice_before(), "nothing lost");
    // A minute later it goes through.
    env.voipms.advance_clock(60);
    let (code, out, _) = cli(&env, &["setup-webhook", "--url", PUBLIC, "--wait-secs", "0"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("sms_wait_message"), "{out}");
    assert!(env.voipms.dids()[0].email_enabled);
}

#[test]
fn setup_webhook_refuses_a_url_it_cannot_use() {
    let env = env("ops-setup-usage");
    for (url, why) in [
        ("ftp://sms.example.net/voipms", "not an http:// or https:// URL"),
        ("https://sms.example.net/sms", "its path is \"/sms\" but the gateway listens at \"/voipms\""),
        ("https://sms.example.net/voipms?key=nope", "its key= is not webhook.key"),
    ] {
        let (code, _, err) = cli(&env, &["setup-webhook", "--url", url]);
        assert_eq!(code, 2, "{url}");
        assert!(err.contains(why), "{url}: {err}");
        assert!(!err.contains(KEY));
    }
    assert!(methods(&env).is_empty());
}
