//! The VoIP.ms API itself: the request pipeline in its documented order (§11.4) and the methods
//! (§11.6), working on [`State`]. Transport (HTTP, recording, fault delivery) is `http.rs`'s job.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::access;
use crate::clock::{self, Date};
use crate::config::DidConfig;
use crate::fault::{self, FaultKind};
use crate::json::Value;
use crate::media;
use crate::numbers;
use crate::store::{Draft, MessageKind, Row, State};

/// The methods the mock implements.
pub(crate) const METHODS: [&str; 11] = [
    "sendSMS",
    "sendMMS",
    "getSMS",
    "getMMS",
    "getMediaMMS",
    "deleteSMS",
    "deleteMMS",
    "setSMS",
    "getDIDsInfo",
    "getBalance",
    "getIP",
];

/// One API request, transport already decoded.
#[derive(Debug, Clone)]
pub(crate) struct ApiRequest {
    pub http_method: String,
    pub client_ip: IpAddr,
    pub params: BTreeMap<String, String>,
}

impl ApiRequest {
    /// A parameter as sent (possibly empty).
    fn raw(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A parameter that is present and not empty.
    fn get(&self, name: &str) -> Option<&str> {
        self.raw(name).filter(|v| !v.is_empty())
    }

    fn via_get(&self) -> bool {
        self.http_method.eq_ignore_ascii_case("GET")
    }

    pub fn method(&self) -> &str {
        self.raw("method").unwrap_or("")
    }
}

/// What the pipeline decided.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Answer this JSON.
    Answer(Value),
    /// A queued fault applies (step 8); the method has not run.
    Fault(FaultKind),
}

/// `{"status":…}`.
pub(crate) fn status(s: &str) -> Value {
    Value::object([("status", Value::from(s))])
}

/// The `status` of an answer (empty if none).
pub(crate) fn status_of(v: &Value) -> String {
    v.get("status").and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Steps 1–8 of §11.4, then the method (step 9) unless a fault applies.
pub(crate) fn pipeline(st: &mut State, req: &ApiRequest) -> Outcome {
    let method = req.method();
    if method.is_empty() {
        return Outcome::Answer(status("missing_method"));
    }
    let (Some(user), Some(pass)) = (req.get("api_username"), req.get("api_password")) else {
        return Outcome::Answer(status("missing_credentials"));
    };
    if !st.account.api_enabled {
        return Outcome::Answer(status("api_not_enabled"));
    }
    if method != "getIP" && !access::ip_allowed(&st.account.allowed_ips, req.client_ip) {
        return Outcome::Answer(status("ip_not_enabled"));
    }
    if !user.eq_ignore_ascii_case(&st.account.api_username) || pass != st.account.api_password {
        return Outcome::Answer(status("invalid_credentials"));
    }
    if !METHODS.contains(&method) {
        return Outcome::Answer(status("invalid_method"));
    }
    if let Some(limit) = st.account.rate_limit_per_minute {
        let now = st.now_ms();
        while st.rate_window.front().is_some_and(|&t| t <= now - 60_000) {
            st.rate_window.pop_front();
        }
        if st.rate_window.len() >= limit as usize {
            return Outcome::Answer(status("api_limit_exceeded"));
        }
        st.rate_window.push_back(now);
    }
    if let Some(kind) = fault::consume(&mut st.faults, method) {
        return Outcome::Fault(kind);
    }
    Outcome::Answer(run_method(st, req))
}

/// Step 9: run the method (the pipeline has admitted the request).
pub(crate) fn run_method(st: &mut State, req: &ApiRequest) -> Value {
    match req.method() {
        "sendSMS" => send_sms(st, req),
        "sendMMS" => send_mms(st, req),
        "getSMS" => get_messages(st, req, MessageKind::Sms),
        "getMMS" => get_messages(st, req, MessageKind::Mms),
        "getMediaMMS" => get_media_mms(st, req),
        "deleteSMS" => delete(st, req, MessageKind::Sms),
        "deleteMMS" => delete(st, req, MessageKind::Mms),
        "setSMS" => set_sms(st, req),
        "getDIDsInfo" => get_dids_info(st, req),
        "getBalance" => get_balance(st, req),
        "getIP" => Value::object([("status", Value::from("success")), ("ip", Value::from(req.client_ip.to_string()))]),
        _ => status("invalid_method"),
    }
}

/// The sending DID: present, well-formed, on the account, SMS enabled.
fn sending_did(st: &State, req: &ApiRequest) -> Result<String, Value> {
    let Some(raw) = req.get("did") else {
        return Err(status("missing_did"));
    };
    let did = numbers::parse_nanp(raw, false).ok_or_else(|| status("invalid_did"))?;
    match st.did(&did) {
        Some(d) if d.sms_enabled && d.sms_available => Ok(did),
        _ => Err(status("invalid_did")),
    }
}

fn destination(st: &State, req: &ApiRequest) -> Result<String, Value> {
    req.get("dst").and_then(|d| numbers::parse_nanp(d, st.options.strict_nanp)).ok_or_else(|| status("invalid_dst"))
}

fn id_value(st: &State, id: u64) -> Value {
    if st.options.ids_as_strings { Value::from(id.to_string()) } else { Value::from(id) }
}

/// The sending DID and the destination of a send, checked in that order.
fn parties(st: &State, req: &ApiRequest) -> Result<(String, String), Value> {
    Ok((sending_did(st, req)?, destination(st, req)?))
}

fn send_sms(st: &mut State, req: &ApiRequest) -> Value {
    let (did, dst) = match parties(st, req) {
        Ok(p) => p,
        Err(v) => return v,
    };
    let Some(message) = req.raw("message") else {
        return status("missing_sms");
    };
    if message.trim().is_empty() {
        return status("message_empty");
    }
    if message.len() > 160 {
        return status("sms_toolong");
    }
    if st.daily_count() >= st.account.daily_limit {
        return status("limit_reached");
    }
    let id = st.next_id(MessageKind::Sms);
    st.store(Draft { kind: MessageKind::Sms, id, r#type: 0, did: &did, contact: &dst, message, media: Vec::new() });
    st.count_send();
    Value::object([("status", Value::from("success")), ("sms", id_value(st, id))])
}

fn send_mms(st: &mut State, req: &ApiRequest) -> Value {
    let (did, dst) = match parties(st, req) {
        Ok(p) => p,
        Err(v) => return v,
    };
    let message = req.raw("message");
    if message.is_some_and(|m| m.len() > 2048) {
        return status("sms_toolong");
    }
    let mut sources = Vec::new();
    for n in 1..=3 {
        let Some(value) = req.get(&format!("media{n}")) else {
            continue;
        };
        if value.trim().is_empty() {
            continue;
        }
        match media::parse(value, req.via_get(), st.options.get_base64_limit) {
            Ok(src) => sources.push(src),
            Err(s) => return status(s),
        }
    }
    let text = message.unwrap_or("");
    if sources.is_empty() && text.trim().is_empty() {
        return status(if message.is_none() { "missing_sms" } else { "message_empty" });
    }
    if st.daily_count() >= st.account.daily_limit {
        return status("limit_reached");
    }
    let id = st.next_id(MessageKind::Mms);
    let urls = media::register(st, id, sources);
    st.store(Draft { kind: MessageKind::Mms, id, r#type: 0, did: &did, contact: &dst, message: text, media: urls });
    st.count_send();
    Value::object([("status", Value::from("success")), ("mms", id_value(st, id))])
}

fn get_messages(st: &mut State, req: &ApiRequest, method_kind: MessageKind) -> Value {
    let now = st.now_ms();
    let today = clock::eastern(now).date;
    let date_param = |name: &str| -> Result<Date, Value> {
        match req.get(name) {
            None => Ok(today),
            Some(s) => Date::parse(s).ok_or_else(|| status("invalid_date")),
        }
    };
    let (from, to) = match (date_param("from"), date_param("to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(v), _) | (_, Err(v)) => return v,
    };
    if from > to {
        return status("invalid_date_from");
    }
    if to.days() - from.days() > 92 {
        return status("invalid_daterange");
    }
    let timezone = match req.get("timezone") {
        None => None,
        Some(s) => match s.trim().parse::<i64>() {
            Ok(tz) if (-12..=13).contains(&tz) => Some(tz),
            _ => return status("invalid_timezone"),
        },
    };
    let msg_type = match req.get("type") {
        None => None,
        Some("0") => Some(0u8),
        Some("1") => Some(1u8),
        Some(_) => return status("invalid_type"),
    };
    let did = match req.get("did") {
        None => None,
        Some(s) => match numbers::parse_nanp(s, false) {
            Some(d) if st.did(&d).is_some() => Some(d),
            _ => return status("invalid_did"),
        },
    };
    let contact = match req.get("contact") {
        None => None,
        Some(s) => match numbers::parse_sender(s, st.options.strict_nanp) {
            Some(c) => Some(c),
            None => return status("invalid_contact"),
        },
    };
    let limit = req.get("limit").and_then(|l| l.trim().parse::<usize>().ok()).unwrap_or(50);
    let all = req.get("all_messages") == Some("1");
    let id_param = match method_kind {
        MessageKind::Sms => "sms",
        MessageKind::Mms => "mms",
    };
    let id = match req.get(id_param) {
        None | Some("0") => None,
        Some(s) => match s.trim().parse::<u64>() {
            Ok(0) => None,
            Ok(id) if !all => Some(id),
            _ => return status("invalid_id"),
        },
    };

    let mut rows: Vec<&Row> = st
        .rows
        .iter()
        .filter(|r| match id {
            Some(id) => r.msg.id == id && r.msg.kind == method_kind,
            None => {
                let day = clock::eastern(r.at_ms).date;
                (all || r.msg.kind == method_kind)
                    && (from..=to).contains(&day)
                    && msg_type.is_none_or(|t| r.msg.r#type == t)
                    && did.as_ref().is_none_or(|d| &r.msg.did == d)
                    && contact.as_ref().is_none_or(|c| &r.msg.contact == c)
            }
        })
        .collect();
    if rows.is_empty() {
        return status("no_sms");
    }
    rows.sort_by_key(|r| std::cmp::Reverse((r.at_ms, r.msg.id)));
    rows.truncate(limit);
    if rows.is_empty() {
        return status("no_sms");
    }

    // One fixed shift for the whole answer, from the Eastern offset *now* (the DST quirk).
    let shift_s = timezone.map(|tz| tz * 3600 - clock::eastern_offset_s(now));
    let force_e164 = st.options.e164_rows_on_did_filter && did.is_some();
    let omit_media = st.options.omit_mms_media;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            let m = &r.msg;
            let e164 = force_e164 || st.did_e164(&m.did);
            let date = match shift_s {
                None => m.date.clone(),
                Some(shift) => clock::datetime_at(r.at_ms, clock::eastern_offset_s(r.at_ms) + shift).api_format(),
            };
            let mut fields = vec![
                ("id", Value::from(m.id.to_string())),
                ("date", Value::from(date)),
                ("type", Value::from(m.r#type.to_string())),
                ("did", Value::from(numbers::format(&m.did, e164))),
                ("contact", Value::from(numbers::format(&m.contact, e164))),
                ("message", Value::from(&m.message)),
                ("carrier_status", Value::from(&m.carrier_status)),
            ];
            if method_kind == MessageKind::Mms || m.kind == MessageKind::Mms {
                let media: &[String] = if omit_media { &[] } else { &m.media };
                for (n, key) in ["col_media1", "col_media2", "col_media3"].iter().enumerate() {
                    let v = media.get(n).cloned().unwrap_or_default();
                    fields.push((key, Value::from(v)));
                }
                fields.push(("media", Value::from(media.to_vec())));
            }
            Value::object(fields)
        })
        .collect();
    Value::object([("status", Value::from("success")), ("sms", Value::Array(list))])
}

fn find_row(st: &State, req: &ApiRequest, kind: MessageKind) -> Result<usize, Value> {
    let Some(raw) = req.get("id") else {
        return Err(status("missing_id"));
    };
    let id: u64 = raw.trim().parse().map_err(|_| status("invalid_id"))?;
    st.rows.iter().position(|r| r.msg.id == id && r.msg.kind == kind).ok_or_else(|| status("invalid_id"))
}

fn get_media_mms(st: &mut State, req: &ApiRequest) -> Value {
    let i = match find_row(st, req, MessageKind::Mms) {
        Ok(i) => i,
        Err(v) => return v,
    };
    let m = &st.rows[i].msg;
    let media = if req.get("media_as_array") == Some("1") {
        Value::from(m.media.clone())
    } else {
        Value::Object(m.media.iter().enumerate().map(|(n, u)| ((n + 1).to_string(), Value::from(u))).collect())
    };
    Value::object([
        ("status", Value::from("success")),
        ("id", Value::from(m.id.to_string())),
        ("date", Value::from(&m.date)),
        ("media", media),
    ])
}

fn delete(st: &mut State, req: &ApiRequest, kind: MessageKind) -> Value {
    let i = match find_row(st, req, kind) {
        Ok(i) => i,
        Err(v) => return v,
    };
    let row = st.rows.remove(i);
    if kind == MessageKind::Mms {
        media::unregister(st, row.msg.id);
    }
    status("success")
}

/// A 0/1 flag parameter: `Ok(None)` when absent, `Err(code)` when not 0/1.
fn flag(req: &ApiRequest, names: &[&str], code: &'static str) -> Result<Option<bool>, Value> {
    let Some(v) = names.iter().find_map(|n| req.raw(n)) else {
        return Ok(None);
    };
    match v.trim() {
        "1" => Ok(Some(true)),
        "0" | "" => Ok(Some(false)),
        _ => Err(status(code)),
    }
}

fn is_http_url(s: &str) -> bool {
    let l = s.trim().to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

fn set_sms(st: &mut State, req: &ApiRequest) -> Value {
    match set_sms_inner(st, req) {
        Ok(v) | Err(v) => v,
    }
}

fn set_sms_inner(st: &mut State, req: &ApiRequest) -> Result<Value, Value> {
    let Some(raw) = req.get("did") else {
        return Err(status("missing_did"));
    };
    let did = numbers::parse_nanp(raw, false).ok_or_else(|| status("invalid_did"))?;
    let Some(current) = st.did(&did).cloned() else {
        return Err(status("invalid_did"));
    };
    let enable = match req.get("enable") {
        None => return Err(status("missing_enable")),
        Some("1") => true,
        Some("0") => false,
        // The documented status list has no code for a bad `enable`; `missing_enable` is the
        // closest.
        Some(_) => return Err(status("missing_enable")),
    };
    let email_enabled = flag(req, &["email_enabled"], "invalid_email_enable")?;
    let forward_enable = flag(req, &["sms_forward_enable"], "invalid_forward_enable")?;
    let cb_enable = flag(req, &["url_callback_enable"], "invalid_callback_enable")?;
    let cb_retry = flag(req, &["url_callback_retry"], "invalid_callback_retry")?;
    let wh_enable = flag(req, &["webhook_enable", "webhook_enabled"], "invalid_callback_enable")?;
    let smpp_enabled = flag(req, &["smpp_enabled"], "missing_params")?;
    let sip_enabled = flag(req, &["sms_sipaccount_enabled"], "missing_params")?;
    let email = req.raw("email_address");
    if email.is_some_and(|e| !e.is_empty() && !e.contains('@')) {
        return Err(status("invalid_email"));
    }
    let forward = req.raw("sms_forward");
    if forward.is_some_and(|f| !f.is_empty() && numbers::parse_nanp(f, false).is_none()) {
        return Err(status("invalid_sms_forward"));
    }
    let url_callback = req.raw("url_callback");
    let webhook = req.raw("webhook");
    for u in [url_callback, webhook].into_iter().flatten() {
        if !u.is_empty() && !is_http_url(u) {
            return Err(status("invalid_callback"));
        }
    }
    let dialmode = match req.get("dialmode") {
        None => None,
        Some("1") => Some(1),
        Some("2") => Some(2),
        Some(_) => return Err(status("missing_params")),
    };
    let now = st.now_ms();
    let toggles = enable != current.sms_enabled;
    if toggles && st.options.sms_wait && st.sms_toggled_at.get(&did).is_some_and(|&t| now - t < 60_000) {
        return Err(status("sms_wait_message"));
    }

    // Drop-unless-restated: an absent field is cleared when the switch is on, kept otherwise.
    let drop = st.options.setsms_drops_unstated;
    let b = |given: Option<bool>, old: bool| given.unwrap_or(if drop { false } else { old });
    let s = |given: Option<&str>, old: &str| {
        given.map_or_else(|| if drop { String::new() } else { old.to_string() }, |g| g.trim().to_string())
    };
    let new = DidConfig {
        sms_enabled: enable,
        email_enabled: b(email_enabled, current.email_enabled),
        email_address: s(email, &current.email_address),
        sms_forward_enable: b(forward_enable, current.sms_forward_enable),
        sms_forward: s(forward, &current.sms_forward),
        url_callback_enable: b(cb_enable, current.url_callback_enable),
        url_callback: s(url_callback, &current.url_callback),
        url_callback_retry: b(cb_retry, current.url_callback_retry),
        webhook_enabled: b(wh_enable, current.webhook_enabled),
        webhook: s(webhook, &current.webhook),
        dialmode: dialmode.unwrap_or(current.dialmode),
        smpp_enabled: b(smpp_enabled, current.smpp_enabled),
        smpp_url: s(req.raw("smpp_url"), &current.smpp_url),
        smpp_user: s(req.raw("smpp_user"), &current.smpp_user),
        smpp_pass: s(req.raw("smpp_pass"), &current.smpp_pass),
        sms_sipaccount_enabled: b(sip_enabled, current.sms_sipaccount_enabled),
        sms_sipaccount: s(req.raw("sms_sipaccount"), &current.sms_sipaccount),
        ..current
    };
    if toggles {
        st.sms_toggled_at.insert(did.clone(), now);
    }
    if let Some(slot) = st.dids.iter_mut().find(|d| d.did == did) {
        *slot = new;
    }
    Ok(status("success"))
}

fn flag_str(b: bool) -> Value {
    Value::from(if b { "1" } else { "0" })
}

fn did_info(d: &DidConfig) -> Value {
    Value::object([
        ("did", Value::from(numbers::format(&d.did, d.e164()))),
        ("description", Value::from(&d.description)),
        ("routing", Value::from(&d.routing)),
        ("billing_type", Value::from("1")),
        ("order_date", Value::from(&d.order_date)),
        ("sms_available", flag_str(d.sms_available)),
        ("sms_enabled", flag_str(d.sms_enabled)),
        ("sms_email", Value::from(&d.email_address)),
        ("sms_email_enabled", flag_str(d.email_enabled)),
        ("sms_forward", Value::from(&d.sms_forward)),
        ("sms_forward_enabled", flag_str(d.sms_forward_enable)),
        ("sms_url_callback", Value::from(&d.url_callback)),
        ("sms_url_callback_enabled", flag_str(d.url_callback_enable)),
        ("sms_url_callback_retry", flag_str(d.url_callback_retry)),
        ("webhook", Value::from(&d.webhook)),
        ("webhook_enabled", flag_str(d.webhook_enabled)),
        ("dialmode", Value::from(d.dialmode.to_string())),
        ("mms_available", flag_str(d.mms_available)),
        ("smpp_enabled", flag_str(d.smpp_enabled)),
        ("smpp_url", Value::from(&d.smpp_url)),
        ("smpp_user", Value::from(&d.smpp_user)),
        ("smpp_pass", Value::from(&d.smpp_pass)),
        ("sms_sipaccount", Value::from(&d.sms_sipaccount)),
        ("sms_sipaccount_enabled", flag_str(d.sms_sipaccount_enabled)),
    ])
}

fn get_dids_info(st: &mut State, req: &ApiRequest) -> Value {
    let selected: Vec<&DidConfig> = match req.get("did") {
        Some(raw) => match numbers::parse_nanp(raw, false).and_then(|d| st.did(&d)) {
            Some(d) => vec![d],
            None => return status("invalid_did"),
        },
        None => st.dids.iter().collect(),
    };
    if selected.is_empty() {
        return status("no_did");
    }
    Value::object([
        ("status", Value::from("success")),
        ("dids", Value::Array(selected.into_iter().map(did_info).collect())),
    ])
}

fn get_balance(st: &mut State, req: &ApiRequest) -> Value {
    let mut balance = vec![("current_balance", Value::from(&st.account.balance))];
    if matches!(req.get("advanced"), Some("1" | "true")) {
        // The mock places no calls and bills nothing: the statistics are zero.
        for (k, v) in [
            ("spent_total", "0.0000"),
            ("calls_total", "0"),
            ("time_total", "0:00"),
            ("spent_today", "0.0000"),
            ("calls_today", "0"),
            ("time_today", "0:00"),
        ] {
            balance.push((k, Value::from(v)));
        }
    }
    Value::object([("status", Value::from("success")), ("balance", Value::object(balance))])
}
