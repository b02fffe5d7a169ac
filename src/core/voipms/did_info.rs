//! A DID's SMS settings at VoIP.ms and where its webhook points: reading them (`getDIDsInfo`),
//! writing them back whole (`setSMS`), and the account probes `getIP` and `getBalance`
//! (voipms.md §2, §7). The operator commands use this; the gateway never does.
//!
//! `setSMS` disables and empties every callback it is not told about (voipms.md §7.1, #47), so
//! a write restates every setting read: [`SmsSettings::from_info`] refuses an answer that lacks
//! one, and [`SmsSettings::params`] names each the way setSMS does, which is not how getDIDsInfo
//! does (`sms_email` → `email_address`, `sms_forward_enabled` → `sms_forward_enable`,
//! `sms_url_callback_enabled` → `url_callback_enable`, `webhook_enabled` → `webhook_enable`;
//! §7.1, §11.6).
//!
//! A webhook URL is judged the way the webhook server reads a request ([`judge_webhook`]): the
//! path as written, the first `key` query parameter form-decoded and compared in constant time.
//! Keys are never shown: [`mask`] writes `key=***`.

use crate::core::json::Value;
use crate::core::phone::Nanp;
use crate::core::secret::Secret;
use crate::core::voipms::api::{self, CallOutcome, Failure, FailureClass};
use std::fmt;

/// setSMS's answer when SMS was switched on or off on the DID less than a minute ago (#282).
pub const SMS_WAIT: &str = "sms_wait_message";

/// The getDIDsInfo fields a setSMS call must restate, in getDIDsInfo's words. Each belongs to a
/// delivery that setSMS would otherwise switch off (e-mail, SMS forward, URL callback, SMPP,
/// SIP account) or empty.
pub const RESTATED: [&str; 13] = [
    "sms_email_enabled",
    "sms_email",
    "sms_forward_enabled",
    "sms_forward",
    "sms_url_callback_enabled",
    "sms_url_callback",
    "sms_url_callback_retry",
    "smpp_enabled",
    "smpp_url",
    "smpp_user",
    "smpp_pass",
    "sms_sipaccount_enabled",
    "sms_sipaccount",
];

/// One DID as getDIDsInfo reports it. `None`: the answer did not have the field (some are known
/// only from client code, voipms.md §7.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DidInfo {
    /// The number as reported: 10 digits, or `+1` and 10 digits in E164 dial mode.
    pub did: String,
    /// VoIP.ms offers SMS on this number at all.
    pub sms_available: Option<bool>,
    /// SMS is enabled on it (the portal's Message Service switch).
    pub sms_enabled: Option<bool>,
    /// Received texts are also e-mailed.
    pub sms_email_enabled: Option<bool>,
    /// To this address.
    pub sms_email: Option<String>,
    /// Received texts are forwarded to another number.
    pub sms_forward_enabled: Option<bool>,
    /// That number.
    pub sms_forward: Option<String>,
    /// The legacy URL callback (GET) is on.
    pub sms_url_callback_enabled: Option<bool>,
    /// Its URL template.
    pub sms_url_callback: Option<String>,
    /// VoIP.ms repeats it every 30 minutes until it gets `ok`.
    pub sms_url_callback_retry: Option<bool>,
    /// The JSON SMS/MMS webhook (POST) is on: how the gateway receives.
    pub webhook_enabled: Option<bool>,
    /// Its URL.
    pub webhook: Option<String>,
    /// `1` NANPA (10 digits) or `2` E164 (`+1…`).
    pub dialmode: Option<String>,
    /// Delivery over SMPP is on.
    pub smpp_enabled: Option<bool>,
    /// The SMPP server.
    pub smpp_url: Option<String>,
    /// The SMPP user.
    pub smpp_user: Option<String>,
    /// The SMPP password (never shown).
    pub smpp_pass: Option<Secret>,
    /// Delivery to a SIP account is on.
    pub sms_sipaccount_enabled: Option<bool>,
    /// That SIP account.
    pub sms_sipaccount: Option<String>,
}

impl DidInfo {
    /// Read one entry of getDIDsInfo's `dids` list. Flags are `"1"`/`"0"` (numbers and booleans
    /// are accepted too, voipms.md §3); a flag with another value counts as not reported.
    pub fn from_value(item: &Value) -> DidInfo {
        let text = |k: &str| match item.get(k) {
            Some(Value::Null) => Some(String::new()),
            Some(v) => v.as_text(),
            None => None,
        };
        let flag = |k: &str| match item.get(k)? {
            Value::Bool(b) => Some(*b),
            Value::Null => Some(false),
            v => match v.as_text()?.trim() {
                "1" => Some(true),
                "0" | "" => Some(false),
                _ => None,
            },
        };
        DidInfo {
            did: text("did").unwrap_or_default(),
            sms_available: flag("sms_available"),
            sms_enabled: flag("sms_enabled"),
            sms_email_enabled: flag("sms_email_enabled"),
            sms_email: text("sms_email"),
            sms_forward_enabled: flag("sms_forward_enabled"),
            sms_forward: text("sms_forward"),
            sms_url_callback_enabled: flag("sms_url_callback_enabled"),
            sms_url_callback: text("sms_url_callback"),
            sms_url_callback_retry: flag("sms_url_callback_retry"),
            webhook_enabled: flag("webhook_enabled"),
            webhook: text("webhook"),
            dialmode: text("dialmode").map(|d| d.trim().to_string()).filter(|d| d == "1" || d == "2"),
            smpp_enabled: flag("smpp_enabled"),
            smpp_url: text("smpp_url"),
            smpp_user: text("smpp_user"),
            smpp_pass: text("smpp_pass").map(Secret::new),
            sms_sipaccount_enabled: flag("sms_sipaccount_enabled"),
            sms_sipaccount: text("sms_sipaccount"),
        }
    }
}

/// Read a getDIDsInfo answer for `did`: its entry, `None` when it is not on the account
/// (`invalid_did`, `no_did`, or a list without it), or the failure.
pub fn did_info(outcome: &CallOutcome, did: &Nanp) -> Result<Option<DidInfo>, Failure> {
    let value = match api::answer(outcome)? {
        (status, value) if status == "success" => value,
        (status, _) if status == "invalid_did" || status == "no_did" => return Ok(None),
        (status, _) => return Err(api::classify_status(&status)),
    };
    let items = value.get("dids").and_then(Value::as_array).unwrap_or(&[]);
    Ok(items
        .iter()
        .find(|item| item.get("did").and_then(Value::as_text).is_some_and(|d| same_number(&d, did)))
        .map(DidInfo::from_value))
}

/// A number as VoIP.ms shows it (10 digits, `1…` or `+1…`, per dial mode) is `did`.
fn same_number(shown: &str, did: &Nanp) -> bool {
    let digits: String = shown.chars().filter(char::is_ascii_digit).collect();
    let ten = if digits.len() == 11 { digits.strip_prefix('1').unwrap_or(&digits) } else { &digits };
    ten == did.ten_digits()
}

/// Read a getIP answer: the caller's address.
pub fn ip(outcome: &CallOutcome) -> Result<String, Failure> {
    match api::answer(outcome)? {
        (status, value) if status == "success" => {
            let ip = value.get("ip").and_then(Value::as_text).unwrap_or_default();
            match ip.trim().parse::<std::net::IpAddr>() {
                Ok(addr) => Ok(addr.to_string()),
                Err(_) => Err(api::failure(
                    FailureClass::Unknown,
                    "no ip",
                    "VoIP.ms's getIP answer holds no IP address".into(),
                )),
            }
        }
        (status, _) => Err(api::classify_status(&status)),
    }
}

/// Read a getBalance answer: `current_balance` (digits, `.` and `-` only) and its amount.
pub fn balance(outcome: &CallOutcome) -> Result<(String, Option<f64>), Failure> {
    match api::answer(outcome)? {
        (status, value) if status == "success" => {
            let raw = match value.get("balance").and_then(|b| b.get("current_balance")) {
                Some(Value::Float(f)) => f.to_string(),
                Some(v) => v.as_text().unwrap_or_default(),
                None => String::new(),
            };
            let text: String =
                raw.trim().chars().filter(|c| c.is_ascii_digit() || matches!(c, '.' | '-')).take(32).collect();
            if text.is_empty() {
                return Err(api::failure(
                    FailureClass::Unknown,
                    "no balance",
                    "VoIP.ms's getBalance answer holds no balance".into(),
                ));
            }
            let amount = text.parse::<f64>().ok().filter(|a| a.is_finite());
            Ok((text, amount))
        }
        (status, _) => Err(api::classify_status(&status)),
    }
}

/// Read a setSMS answer.
pub fn set_sms(outcome: &CallOutcome) -> Result<(), Failure> {
    match api::answer(outcome)? {
        (status, _) if status == "success" => Ok(()),
        (status, _) => Err(set_sms_failure(&status)),
    }
}

/// setSMS's own statuses (voipms.md §4.1), in plain words; the rest as for any call.
fn set_sms_failure(status: &str) -> Failure {
    use FailureClass::*;
    let (class, text) = match status {
        SMS_WAIT => (Transient, "VoIP.ms asks to wait a minute before SMS is switched on or off again on this DID"),
        "sms_apply_regulations" => {
            (Operator, "VoIP.ms did not update the number because of SMS regulations; contact VoIP.ms customer service")
        }
        "invalid_callback" => (Operator, "VoIP.ms refused the URL (it must start with http:// or https://)"),
        "missing_enable"
        | "missing_params"
        | "invalid_callback_enable"
        | "invalid_callback_retry"
        | "invalid_email_enable"
        | "invalid_email"
        | "invalid_sms_forward"
        | "invalid_forward_enable" => {
            (Bug, "VoIP.ms refused a setting that was restated as getDIDsInfo reported it: please report this")
        }
        _ => return api::classify_status(status),
    };
    api::failure(class, status, text.to_string())
}

/// Everything one setSMS call sets on a DID, named as setSMS names its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsSettings {
    /// The DID.
    pub did: Nanp,
    /// SMS on the DID (`enable`).
    pub enable: bool,
    /// E-mail copies on.
    pub email_enabled: bool,
    /// Their address.
    pub email_address: String,
    /// Forwarding to a number on.
    pub sms_forward_enable: bool,
    /// That number.
    pub sms_forward: String,
    /// The URL callback on.
    pub url_callback_enable: bool,
    /// Its URL template.
    pub url_callback: String,
    /// Its retries on.
    pub url_callback_retry: bool,
    /// The JSON webhook on.
    pub webhook_enable: bool,
    /// Its URL.
    pub webhook: String,
    /// `1` or `2`; left out (unchanged) when getDIDsInfo did not say.
    pub dialmode: Option<String>,
    /// SMPP on.
    pub smpp_enabled: bool,
    /// SMPP server.
    pub smpp_url: String,
    /// SMPP user.
    pub smpp_user: String,
    /// SMPP password.
    pub smpp_pass: Secret,
    /// SIP-account delivery on.
    pub sms_sipaccount_enabled: bool,
    /// That SIP account.
    pub sms_sipaccount: String,
}

impl SmsSettings {
    /// The settings `info` reports, ready to be written back, or the [`RESTATED`] fields it
    /// lacks (a write would wipe whatever they hold). SMS and the webhook are taken as they
    /// are (`false`/empty when not reported): the caller sets those.
    pub fn from_info(did: Nanp, info: &DidInfo) -> Result<SmsSettings, Vec<&'static str>> {
        let mut missing = Vec::new();
        let mut flag = |v: Option<bool>, name: &'static str| {
            v.unwrap_or_else(|| {
                missing.push(name);
                false
            })
        };
        let email_enabled = flag(info.sms_email_enabled, "sms_email_enabled");
        let sms_forward_enable = flag(info.sms_forward_enabled, "sms_forward_enabled");
        let url_callback_enable = flag(info.sms_url_callback_enabled, "sms_url_callback_enabled");
        let url_callback_retry = flag(info.sms_url_callback_retry, "sms_url_callback_retry");
        let smpp_enabled = flag(info.smpp_enabled, "smpp_enabled");
        let sms_sipaccount_enabled = flag(info.sms_sipaccount_enabled, "sms_sipaccount_enabled");
        let mut text = |v: &Option<String>, name: &'static str| {
            v.clone().unwrap_or_else(|| {
                missing.push(name);
                String::new()
            })
        };
        let email_address = text(&info.sms_email, "sms_email");
        let sms_forward = text(&info.sms_forward, "sms_forward");
        let url_callback = text(&info.sms_url_callback, "sms_url_callback");
        let smpp_url = text(&info.smpp_url, "smpp_url");
        let smpp_user = text(&info.smpp_user, "smpp_user");
        let sms_sipaccount = text(&info.sms_sipaccount, "sms_sipaccount");
        let smpp_pass = info.smpp_pass.clone().unwrap_or_else(|| {
            missing.push("smpp_pass");
            Secret::new(String::new())
        });
        if !missing.is_empty() {
            missing.sort_by_key(|m| RESTATED.iter().position(|r| r == m));
            return Err(missing);
        }
        Ok(SmsSettings {
            did,
            enable: info.sms_enabled.unwrap_or(false),
            email_enabled,
            email_address,
            sms_forward_enable,
            sms_forward,
            url_callback_enable,
            url_callback,
            url_callback_retry,
            webhook_enable: info.webhook_enabled.unwrap_or(false),
            webhook: info.webhook.clone().unwrap_or_default(),
            dialmode: info.dialmode.clone(),
            smpp_enabled,
            smpp_url,
            smpp_user,
            smpp_pass,
            sms_sipaccount_enabled,
            sms_sipaccount,
        })
    }

    /// setSMS's parameters. Every flag is sent; a text only when it is not empty (absent and
    /// empty mean the same to setSMS, and an empty `email_address` or `sms_forward` might be
    /// refused as invalid). The webhook flag goes as `webhook_enable`, the name VoIP.ms's setSMS
    /// documentation uses (voipms.md §7.1); `webhook_enabled` is getDIDsInfo's name, seen sent
    /// only in unattributed client code. The caller reads the DID back to see that it took.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let bit = |b: bool| if b { "1" } else { "0" }.to_string();
        let mut p = vec![
            ("did", self.did.ten_digits().to_string()),
            ("enable", bit(self.enable)),
            ("email_enabled", bit(self.email_enabled)),
            ("email_address", self.email_address.clone()),
            ("sms_forward_enable", bit(self.sms_forward_enable)),
            ("sms_forward", self.sms_forward.clone()),
            ("url_callback_enable", bit(self.url_callback_enable)),
            ("url_callback", self.url_callback.clone()),
            ("url_callback_retry", bit(self.url_callback_retry)),
            ("webhook_enable", bit(self.webhook_enable)),
            ("webhook", self.webhook.clone()),
        ];
        if let Some(mode) = &self.dialmode {
            p.push(("dialmode", mode.clone()));
        }
        p.extend([
            ("smpp_enabled", bit(self.smpp_enabled)),
            ("smpp_url", self.smpp_url.clone()),
            ("smpp_user", self.smpp_user.clone()),
            ("smpp_pass", self.smpp_pass.expose().to_string()),
            ("sms_sipaccount_enabled", bit(self.sms_sipaccount_enabled)),
            ("sms_sipaccount", self.sms_sipaccount.clone()),
        ]);
        p.retain(|(_, v)| !v.is_empty());
        p
    }

    /// The restated settings (all but SMS and the webhook) that differ in `other`, in
    /// getDIDsInfo's words: after a write, what VoIP.ms did not keep.
    pub fn differences(&self, other: &SmsSettings) -> Vec<&'static str> {
        let pairs = [
            (self.email_enabled == other.email_enabled, "sms_email_enabled"),
            (self.email_address == other.email_address, "sms_email"),
            (self.sms_forward_enable == other.sms_forward_enable, "sms_forward_enabled"),
            (self.sms_forward == other.sms_forward, "sms_forward"),
            (self.url_callback_enable == other.url_callback_enable, "sms_url_callback_enabled"),
            (self.url_callback == other.url_callback, "sms_url_callback"),
            (self.url_callback_retry == other.url_callback_retry, "sms_url_callback_retry"),
            (self.smpp_enabled == other.smpp_enabled, "smpp_enabled"),
            (self.smpp_url == other.smpp_url, "smpp_url"),
            (self.smpp_user == other.smpp_user, "smpp_user"),
            (self.smpp_pass == other.smpp_pass, "smpp_pass"),
            (self.sms_sipaccount_enabled == other.sms_sipaccount_enabled, "sms_sipaccount_enabled"),
            (self.sms_sipaccount == other.sms_sipaccount, "sms_sipaccount"),
            (self.dialmode.is_none() || other.dialmode.is_none() || self.dialmode == other.dialmode, "dialmode"),
        ];
        pairs.into_iter().filter(|(same, _)| !same).map(|(_, name)| name).collect()
    }
}

/// An `http(s)` URL taken apart as far as a webhook needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https` rather than `http`.
    pub https: bool,
    /// It has `user:password@` (VoIP.ms would send it as HTTP Basic; the gateway uses `key=`).
    pub userinfo: bool,
    /// The host, lower-cased; IPv6 in brackets.
    pub host: String,
    /// The port, written or the scheme's default.
    pub port: u16,
    /// The path as written (`""` when there is none).
    pub path: String,
    /// The query, without `?`.
    pub query: Option<String>,
    /// It has a `#fragment`.
    pub fragment: bool,
}

impl HttpUrl {
    /// Parse `http://` or `https://` URLs with a host; `None` for anything else, or for text
    /// with whitespace or control characters.
    pub fn parse(s: &str) -> Option<HttpUrl> {
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let (scheme, rest) = s.split_once("://")?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((_, h)) => (true, h),
            None => (false, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (inside, after) = v6.split_once(']')?;
            inside.parse::<std::net::Ipv6Addr>().ok()?;
            let port = if after.is_empty() { None } else { Some(after.strip_prefix(':')?) };
            (format!("[{}]", inside.to_ascii_lowercase()), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
                None => (hostport.to_ascii_lowercase(), None),
            }
        };
        let host_ok = host.starts_with('[')
            || (!host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
        if !host_ok {
            return None;
        }
        let port = match port {
            None => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0)?,
        };
        let (before_fragment, fragment) = match tail.split_once('#') {
            Some((b, _)) => (b, true),
            None => (tail, false),
        };
        let (path, query) = match before_fragment.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (before_fragment.to_string(), None),
        };
        Some(HttpUrl { https, userinfo, host, port, path, query, fragment })
    }

    /// The first `key` query parameter, form-decoded as the webhook server decodes it.
    pub fn key(&self) -> Option<String> {
        query_param(self.query.as_deref()?, "key")
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// The host is this machine or a private network, which VoIP.ms cannot reach.
    pub fn is_private(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        if host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => {
                ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
            }
            Ok(std::net::IpAddr::V6(ip)) => {
                let first = ip.segments()[0];
                ip.is_loopback() || ip.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
            }
            Err(_) => false,
        }
    }
}

/// The first parameter `name` of a query string, form-decoded (`+` is a space, `%XX` a byte),
/// as the webhook server's URL parser reads it.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(k) == name).then(|| form_decode(v))
    })
}

/// `application/x-www-form-urlencoded` decoding; a bad `%` escape stays as written.
pub fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-encode everything but letters, digits and `-._~` (RFC 3986 unreserved), so that a
/// key with `&`, `+`, `#` or `%` in it survives the URL and the server's decoding.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A URL as it may be shown: userinfo as `***@`, every `key` parameter as `key=***`, at most
/// 200 characters. Works on text that is not a URL too.
pub fn mask(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (tail, None),
    };
    let tail = match before_fragment.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| {
                    let k = pair.split_once('=').map_or(pair, |(k, _)| k);
                    if form_decode(k) == "key" { format!("{k}=***") } else { pair.to_string() }
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => before_fragment.to_string(),
    };
    let mut shown = format!("{scheme}{authority}{tail}");
    if let Some(f) = fragment {
        shown.push('#');
        shown.push_str(f);
    }
    if shown.chars().count() > 200 {
        shown = shown.chars().take(199).collect::<String>() + "…";
    }
    shown
}

/// What is wrong with a DID's webhook URL, seen from the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookFault {
    /// No URL is set.
    Empty,
    /// Not an `http(s)` URL.
    NotHttp,
    /// The path is not `webhook.path`: the gateway answers 404.
    Path {
        /// The URL's path.
        found: String,
    },
    /// No `key` parameter: the gateway answers 401.
    NoKey,
    /// The `key` is not `webhook.key`: the gateway answers 403.
    WrongKey,
    /// The scheme, host or port is not the expected URL's.
    Elsewhere {
        /// `scheme`, `host` or `port`.
        what: &'static str,
        /// The webhook's.
        found: String,
        /// The expected URL's.
        expected: String,
    },
}

/// Judge `url` as the webhook of a gateway listening at `path` with `key`; with `expected`
/// (the public URL the operator gave), its scheme, host and port must be the same. No faults:
/// VoIP.ms's posts reach the gateway and are accepted.
pub fn judge_webhook(url: &str, path: &str, key: &Secret, expected: Option<&HttpUrl>) -> Vec<WebhookFault> {
    if url.trim().is_empty() {
        return vec![WebhookFault::Empty];
    }
    let Some(u) = HttpUrl::parse(url.trim()) else {
        return vec![WebhookFault::NotHttp];
    };
    let mut faults = Vec::new();
    if let Some(e) = expected {
        if u.https != e.https {
            faults.push(WebhookFault::Elsewhere {
                what: "scheme",
                found: u.scheme().into(),
                expected: e.scheme().into(),
            });
        }
        if u.host != e.host {
            faults.push(WebhookFault::Elsewhere { what: "host", found: u.host.clone(), expected: e.host.clone() });
        }
        if u.port != e.port {
            faults.push(WebhookFault::Elsewhere {
                what: "port",
                found: u.port.to_string(),
                expected: e.port.to_string(),
            });
        }
    }
    if u.path != path {
        faults.push(WebhookFault::Path { found: u.path.clone() });
    }
    match u.key() {
        None => faults.push(WebhookFault::NoKey),
        Some(k) if !key.matches(k.as_bytes()) => faults.push(WebhookFault::WrongKey),
        Some(_) => {}
    }
    faults
}

/// Why a URL given for the webhook cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// Not an `http(s)` URL with a host.
    NotHttp,
    /// It has `user:password@`; the gateway authenticates VoIP.ms by `key=`.
    Userinfo,
    /// It has a `#fragment`, which is never sent.
    Fragment,
    /// Its path is not `webhook.path`.
    Path {
        /// The URL's path.
        found: String,
        /// `webhook.path`.
        expected: String,
    },
    /// It has a `key` that is not `webhook.key`.
    WrongKey,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::NotHttp => write!(f, "not an http:// or https:// URL with a host"),
            TargetError::Userinfo => {
                write!(f, "it has user:password@ in it; the gateway takes its key as ?key=, which is added for you")
            }
            TargetError::Fragment => write!(f, "it has a #fragment, which is never sent to the gateway"),
            TargetError::Path { found, expected } => write!(
                f,
                "its path is \"{found}\" but the gateway listens at \"{expected}\" (webhook.path); give the URL with that path, or with none"
            ),
            TargetError::WrongKey => write!(f, "its key= is not webhook.key; leave key= out and it is added for you"),
        }
    }
}

impl std::error::Error for TargetError {}

/// The URL VoIP.ms should post to: `url` (the gateway's public address, e.g. through a reverse
/// proxy), with `path` when it has none, and `key=KEY` appended unless it has the key already.
pub fn webhook_target(url: &str, path: &str, key: &Secret) -> Result<String, TargetError> {
    let url = url.trim();
    let parsed = HttpUrl::parse(url).ok_or(TargetError::NotHttp)?;
    if parsed.userinfo {
        return Err(TargetError::Userinfo);
    }
    if parsed.fragment {
        return Err(TargetError::Fragment);
    }
    let url_path = if parsed.path.is_empty() || parsed.path == "/" { path.to_string() } else { parsed.path.clone() };
    if url_path != path {
        return Err(TargetError::Path { found: parsed.path, expected: path.to_string() });
    }
    let query = match (parsed.key(), parsed.query.as_deref()) {
        (Some(k), _) if key.matches(k.as_bytes()) => parsed.query.clone(),
        (Some(_), _) => return Err(TargetError::WrongKey),
        (None, None | Some("")) => Some(format!("key={}", form_encode(key.expose()))),
        (None, Some(q)) => Some(format!("{q}&key={}", form_encode(key.expose()))),
    };
    let (scheme, rest) = url.split_once("://").ok_or(TargetError::NotHttp)?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let mut target = format!("{}://{authority}{url_path}", scheme.to_ascii_lowercase());
    if let Some(q) = query {
        target.push('?');
        target.push_str(&q);
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> CallOutcome {
        CallOutcome::Response { status: 200, body: body.to_string() }
    }

    fn did() -> Nanp {
        Nanp::parse("5552345678").unwrap()
    }

    const INFO: &str = r#"{"status":"success","dids":[{"did":"+15552345678","description":"main",
        "sms_available":"1","sms_enabled":"1","sms_email":"me@example.com","sms_email_enabled":"1",
        "sms_forward":"","sms_forward_enabled":"0","sms_url_callback":"https://cb.example.com/?m={MESSAGE}",
        "sms_url_callback_enabled":"1","sms_url_callback_retry":1,"webhook":"https://gw.example.com/voipms?key=k",
        "webhook_enabled":"1","dialmode":"2","mms_available":"1","smpp_enabled":"0","smpp_url":"",
        "smpp_user":"","smpp_pass":"pw","sms_sipaccount":"","sms_sipaccount_enabled":"0"}]}"#;

    #[test]
    fn reads_a_did_in_either_dial_mode_with_flags_as_strings_or_numbers() {
        let info = did_info(&ok(INFO), &did()).unwrap().unwrap();
        assert_eq!(info.did, "+15552345678");
        assert_eq!(
            (info.sms_enabled, info.sms_email_enabled, info.sms_forward_enabled),
            (Some(true), Some(true), Some(false))
        );
        assert_eq!(info.sms_url_callback_retry, Some(true), "a bare number");
        assert_eq!(info.webhook.as_deref(), Some("https://gw.example.com/voipms?key=k"));
        assert_eq!(info.dialmode.as_deref(), Some("2"));
        assert!(!format!("{info:?}").contains("\"pw\""), "the SMPP password stays out of Debug");
        let ten = INFO.replace("+15552345678", "5552345678");
        assert!(did_info(&ok(&ten), &did()).unwrap().is_some());
        // Another DID's entry, invalid_did and no_did: not on the account.
        let other = INFO.replace("+15552345678", "5557654321");
        assert_eq!(did_info(&ok(&other), &did()), Ok(None));
        assert_eq!(did_info(&ok(r#"{"status":"invalid_did"}"#), &did()), Ok(None));
        assert_eq!(did_info(&ok(r#"{"status":"no_did"}"#), &did()), Ok(None));
        let f = did_info(&ok(r#"{"status":"ip_not_enabled"}"#), &did()).unwrap_err();
        assert_eq!((f.class, f.status.as_str()), (FailureClass::Operator, "ip_not_enabled"));
        let f = did_info(&CallOutcome::NotSent("refused".into()), &did()).unwrap_err();
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn restates_every_setting_in_setsms_words() {
        let info = did_info(&ok(INFO), &did()).unwrap().unwrap();
        let mut s = SmsSettings::from_info(did(), &info).unwrap();
        s.webhook = "https://new.example.com/voipms?key=k".into();
        let p = s.params();
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("did"), Some("5552345678"));
        assert_eq!(get("enable"), Some("1"));
        assert_eq!((get("email_enabled"), get("email_address")), (Some("1"), Some("me@example.com")));
        assert_eq!((get("sms_forward_enable"), get("sms_forward")), (Some("0"), None), "empty texts are left out");
        assert_eq!(get("url_callback_enable"), Some("1"));
        assert_eq!(get("url_callback"), Some("https://cb.example.com/?m={MESSAGE}"));
        assert_eq!(get("url_callback_retry"), Some("1"));
        assert_eq!((get("webhook_enable"), get("webhook_enabled")), (Some("1"), None), "the documented name");
        assert_eq!(get("webhook"), Some("https://new.example.com/voipms?key=k"));
        assert_eq!(get("dialmode"), Some("2"));
        assert_eq!((get("smpp_enabled"), get("smpp_pass")), (Some("0"), Some("pw")));
        assert_eq!(get("sms_sipaccount_enabled"), Some("0"));
        assert!(p.iter().all(|(n, _)| !n.starts_with("sms_email")), "getDIDsInfo names are not setSMS names");
        let r = crate::core::voipms::api::Request::SetSms(Box::new(s.clone()));
        assert_eq!((r.method(), r.params()), ("setSMS", p.clone()));
        assert!(!format!("{r:?}").contains("\"pw\""));
    }

    #[test]
    fn refuses_to_restate_what_was_not_reported() {
        let mut info = did_info(&ok(INFO), &did()).unwrap().unwrap();
        info.sms_sipaccount = None;
        info.sms_email_enabled = None;
        info.smpp_pass = None;
        assert_eq!(SmsSettings::from_info(did(), &info), Err(vec!["sms_email_enabled", "smpp_pass", "sms_sipaccount"]));
        // SMS, the webhook and the dial mode are not needed (the caller sets the first two).
        let mut info = did_info(&ok(INFO), &did()).unwrap().unwrap();
        (info.sms_enabled, info.webhook, info.webhook_enabled, info.dialmode) = (None, None, None, None);
        let s = SmsSettings::from_info(did(), &info).unwrap();
        assert!(!s.enable && !s.webhook_enable && s.dialmode.is_none());
        assert!(s.params().iter().all(|(n, _)| *n != "dialmode"));
    }

    #[test]
    fn differences_name_what_a_write_lost() {
        let info = did_info(&ok(INFO), &did()).unwrap().unwrap();
        let before = SmsSettings::from_info(did(), &info).unwrap();
        let mut after = before.clone();
        assert!(before.differences(&after).is_empty());
        after.email_enabled = false;
        after.email_address.clear();
        after.smpp_pass = Secret::new(String::new());
        after.webhook = "elsewhere".into();
        after.enable = false;
        assert_eq!(before.differences(&after), vec!["sms_email_enabled", "sms_email", "smpp_pass"]);
        after = before.clone();
        after.dialmode = Some("1".into());
        assert_eq!(before.differences(&after), vec!["dialmode"]);
        after.dialmode = None;
        assert!(before.differences(&after).is_empty(), "not reported: not compared");
    }

    #[test]
    fn account_probes() {
        assert_eq!(ip(&ok(r#"{"status":"success","ip":"203.0.113.7"}"#)), Ok("203.0.113.7".into()));
        assert_eq!(ip(&ok(r#"{"status":"success","ip":"2001:db8::1"}"#)), Ok("2001:db8::1".into()));
        assert_eq!(ip(&ok(r#"{"status":"success","ip":"<b>x</b>"}"#)).unwrap_err().status, "no ip");
        assert_eq!(ip(&ok(r#"{"status":"invalid_credentials"}"#)).unwrap_err().class, FailureClass::Operator);
        let b = r#"{"status":"success","balance":{"current_balance":"112.192790"}}"#;
        assert_eq!(balance(&ok(b)), Ok(("112.192790".into(), Some(112.19279))));
        let b = r#"{"status":"success","balance":{"current_balance":-1.5}}"#;
        assert_eq!(balance(&ok(b)), Ok(("-1.5".into(), Some(-1.5))));
        assert_eq!(balance(&ok(r#"{"status":"success"}"#)).unwrap_err().status, "no balance");
        assert_eq!(crate::core::voipms::api::Request::Ip.method(), "getIP");
        assert!(crate::core::voipms::api::Request::Balance.params().is_empty());
        let r = crate::core::voipms::api::Request::DidInfo { did: did() };
        assert_eq!((r.method(), r.params()), ("getDIDsInfo", vec![("did", "5552345678".to_string())]));
    }

    #[test]
    fn setsms_statuses() {
        assert_eq!(set_sms(&ok(r#"{"status":"success","sipuri":"6199"}"#)), Ok(()));
        let wait = set_sms(&ok(r#"{"status":"sms_wait_message"}"#)).unwrap_err();
        assert_eq!((wait.class, wait.status.as_str()), (FailureClass::Transient, SMS_WAIT));
        assert!(wait.text.contains("wait a minute"), "{}", wait.text);
        let r = set_sms(&ok(r#"{"status":"sms_apply_regulations"}"#)).unwrap_err();
        assert!(r.text.contains("customer service") && r.class == FailureClass::Operator);
        assert_eq!(set_sms(&ok(r#"{"status":"invalid_email"}"#)).unwrap_err().class, FailureClass::Bug);
        assert_eq!(set_sms(&ok(r#"{"status":"invalid_credentials"}"#)).unwrap_err().class, FailureClass::Operator);
        assert_eq!(set_sms(&CallOutcome::NoAnswer("timeout".into())).unwrap_err().class, FailureClass::Ambiguous);
    }

    #[test]
    fn urls_taken_apart() {
        let u = HttpUrl::parse("HTTPS://User:pw@GW.Example.com:8443/voipms?a=1&key=k%26y+z#frag").unwrap();
        assert!(u.https && u.userinfo && u.fragment);
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("gw.example.com", 8443, "/voipms"));
        assert_eq!(u.key().as_deref(), Some("k&y z"));
        let u = HttpUrl::parse("http://[::1]/x").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.key()), ("[::1]", 80, None));
        assert!(u.is_private());
        assert_eq!(HttpUrl::parse("https://h").unwrap().path, "");
        for bad in [
            "",
            "ftp://h/x",
            "https://",
            "https:///x",
            "https://h:0/",
            "https://h:x/",
            "https://h /x",
            "//h/x",
            "https://[zz]/",
        ] {
            assert_eq!(HttpUrl::parse(bad), None, "{bad}");
        }
        for (host, private) in [
            ("127.0.0.1", true),
            ("10.1.2.3", true),
            ("192.168.0.1", true),
            ("localhost", true),
            ("[fd00::1]", true),
            ("203.0.113.7", false),
            ("sms.example.com", false),
            ("[2001:db8::1]", false),
        ] {
            assert_eq!(HttpUrl::parse(&format!("https://{host}/")).unwrap().is_private(), private, "{host}");
        }
        assert_eq!(query_param("a=1&key=&key=x", "key").as_deref(), Some(""), "the first one counts");
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert_eq!(form_decode(&form_encode("a b&c+d%e#f/é")), "a b&c+d%e#f/é");
    }

    #[test]
    fn masks_keys_and_userinfo() {
        assert_eq!(
            mask("https://u:p@h:8443/voipms?a=1&key=secret&b=2#f"),
            "https://***@h:8443/voipms?a=1&key=***&b=2#f"
        );
        assert_eq!(mask("https://h/voipms?k%65y=secret"), "https://h/voipms?k%65y=***");
        assert_eq!(mask("not a url key=x"), "not a url key=x");
        assert_eq!(mask("x?key=secret"), "x?key=***");
        assert_eq!(mask(&format!("https://h/{}", "a".repeat(300))).chars().count(), 200);
    }

    #[test]
    fn judges_webhook_urls_like_the_webhook_server() {
        let key = Secret::new("k y&z".into());
        let good = "https://gw.example.com/voipms?key=k+y%26z";
        assert_eq!(judge_webhook(good, "/voipms", &key, None), vec![]);
        assert_eq!(judge_webhook("", "/voipms", &key, None), vec![WebhookFault::Empty]);
        assert_eq!(judge_webhook("gw.example.com/voipms", "/voipms", &key, None), vec![WebhookFault::NotHttp]);
        assert_eq!(
            judge_webhook("https://gw.example.com/sms", "/voipms", &key, None),
            vec![WebhookFault::Path { found: "/sms".into() }, WebhookFault::NoKey]
        );
        assert_eq!(
            judge_webhook("https://gw.example.com/voipms?key=k", "/voipms", &key, None),
            vec![WebhookFault::WrongKey]
        );
        let expected = HttpUrl::parse("https://gw.example.com:443/voipms").unwrap();
        assert_eq!(judge_webhook(good, "/voipms", &key, Some(&expected)), vec![]);
        let moved = "http://GW.example.com:8080/voipms?key=k%20y%26z";
        assert_eq!(
            judge_webhook(moved, "/voipms", &key, Some(&expected)),
            vec![
                WebhookFault::Elsewhere { what: "scheme", found: "http".into(), expected: "https".into() },
                WebhookFault::Elsewhere { what: "port", found: "8080".into(), expected: "443".into() },
            ]
        );
    }

    #[test]
    fn webhook_targets() {
        let key = Secret::new("k&1".into());
        let t = |u: &str| webhook_target(u, "/voipms", &key);
        assert_eq!(t("https://gw.example.com/voipms"), Ok("https://gw.example.com/voipms?key=k%261".into()));
        assert_eq!(t("HTTPS://gw.example.com:8443"), Ok("https://gw.example.com:8443/voipms?key=k%261".into()));
        assert_eq!(t("https://gw.example.com/"), Ok("https://gw.example.com/voipms?key=k%261".into()));
        assert_eq!(t("https://gw.example.com/voipms?x=1"), Ok("https://gw.example.com/voipms?x=1&key=k%261".into()));
        assert_eq!(t("https://gw.example.com/voipms?"), Ok("https://gw.example.com/voipms?key=k%261".into()));
        assert_eq!(t("https://gw.example.com/voipms?key=k%261"), Ok("https://gw.example.com/voipms?key=k%261".into()));
        assert_eq!(t("https://gw.example.com/voipms?key=other"), Err(TargetError::WrongKey));
        assert_eq!(t("ftp://gw.example.com/voipms"), Err(TargetError::NotHttp));
        assert_eq!(t("gw.example.com"), Err(TargetError::NotHttp));
        assert_eq!(t("https://u:p@gw.example.com/voipms"), Err(TargetError::Userinfo));
        assert_eq!(t("https://gw.example.com/voipms#x"), Err(TargetError::Fragment));
        assert_eq!(
            t("https://gw.example.com/sms"),
            Err(TargetError::Path { found: "/sms".into(), expected: "/voipms".into() })
        );
        // What it builds passes the judge.
        let target = t("http://127.0.0.1:8080").unwrap();
        assert_eq!(judge_webhook(&target, "/voipms", &key, HttpUrl::parse(&target).as_ref()), vec![]);
        assert!(!TargetError::WrongKey.to_string().contains("k&1"));
    }
}
