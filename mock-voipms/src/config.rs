//! The mock's configuration (§11.2, §11.11): the account, its DIDs, the behaviour switches and
//! the clock; strict JSON reading (unknown or duplicate keys are errors that name the key path),
//! validation, and the typed patches used by the control API.

use std::fmt;

use crate::access::IpRule;
use crate::clock;
use crate::json::{JsonError, Value};
use crate::numbers;

/// The whole configuration of a mock.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// The API account.
    pub account: AccountConfig,
    /// The DIDs on the account.
    pub dids: Vec<DidConfig>,
    /// Behaviour switches (§11.11).
    pub options: Options,
    /// Where mock time starts.
    pub clock: ClockSetting,
}

/// The API account (`account` in the JSON configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// `api_username`: the portal e-mail address.
    pub api_username: String,
    /// `api_password`: the API password.
    pub api_password: String,
    /// `api_enabled`: false answers `api_not_enabled`.
    pub api_enabled: bool,
    /// `allowed_ips`: exact IPs, CIDR, `a.b.c.*`, or `0.0.0.0` (any).
    pub allowed_ips: Vec<String>,
    /// `daily_limit`: sendSMS + sendMMS per Eastern day before `limit_reached`.
    pub daily_limit: u32,
    /// `rate_limit_per_minute`: API requests per sliding 60 s before `api_limit_exceeded`;
    /// `None` = no limit.
    pub rate_limit_per_minute: Option<u32>,
    /// `balance`: reported by `getBalance`, e.g. `"12.345678"`.
    pub balance: String,
}

impl Default for AccountConfig {
    fn default() -> Self {
        AccountConfig {
            api_username: "john@example.com".into(),
            api_password: "secret".into(),
            api_enabled: true,
            allowed_ips: vec!["127.0.0.1".into(), "::1".into()],
            daily_limit: 100,
            rate_limit_per_minute: None,
            balance: "12.345678".into(),
        }
    }
}

/// One DID (an entry of `dids` in the JSON configuration, or the body of `POST /_mock/dids`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DidConfig {
    /// The number, 10 digits (the `1…` and `+1…` forms are accepted and normalised).
    pub did: String,
    /// Free-text description.
    pub description: String,
    /// Whether the DID can do SMS at all.
    pub sms_available: bool,
    /// Whether SMS is enabled (else API calls naming it answer `invalid_did`).
    pub sms_enabled: bool,
    /// 1 = NANPA (10 digits), 2 = E164 (`+1` and 10 digits) in results and pushes.
    pub dialmode: u8,
    /// Legacy URL callback (GET) on.
    pub url_callback_enable: bool,
    /// Legacy URL callback template with `{FROM}`, `{TO}`, `{MESSAGE}`, `{ID}`, `{TIMESTAMP}`,
    /// `{MEDIA}`.
    pub url_callback: String,
    /// Retry the URL callback every `callback_retry_interval_s` until it answers `ok`.
    pub url_callback_retry: bool,
    /// JSON webhook (POST) on.
    pub webhook_enabled: bool,
    /// JSON webhook URL; userinfo becomes HTTP Basic credentials.
    pub webhook: String,
    /// E-mail forwarding on (stored and reported only).
    pub email_enabled: bool,
    /// E-mail forwarding address.
    pub email_address: String,
    /// SMS forwarding on (stored and reported only).
    pub sms_forward_enable: bool,
    /// SMS forwarding number.
    pub sms_forward: String,
    /// Whether MMS is available (reported only).
    pub mms_available: bool,
    /// Routing, free text (reported only).
    pub routing: String,
    /// Order date, `YYYY-MM-DD HH:MM:SS` (reported only).
    pub order_date: String,
    /// SMPP on (stored and reported only).
    pub smpp_enabled: bool,
    /// SMPP URL.
    pub smpp_url: String,
    /// SMPP user.
    pub smpp_user: String,
    /// SMPP password.
    pub smpp_pass: String,
    /// SMS to a SIP account on (stored and reported only).
    pub sms_sipaccount_enabled: bool,
    /// The SIP account.
    pub sms_sipaccount: String,
}

impl DidConfig {
    /// A DID with SMS enabled, dial mode 1, no callbacks and no webhook.
    pub fn new(did: &str) -> DidConfig {
        DidConfig {
            did: numbers::parse_nanp(did, false).unwrap_or_else(|| did.to_string()),
            description: String::new(),
            sms_available: true,
            sms_enabled: true,
            dialmode: 1,
            url_callback_enable: false,
            url_callback: String::new(),
            url_callback_retry: false,
            webhook_enabled: false,
            webhook: String::new(),
            email_enabled: false,
            email_address: String::new(),
            sms_forward_enable: false,
            sms_forward: String::new(),
            mms_available: true,
            routing: "account:100000".into(),
            order_date: "2024-01-01 00:00:00".into(),
            smpp_enabled: false,
            smpp_url: String::new(),
            smpp_user: String::new(),
            smpp_pass: String::new(),
            sms_sipaccount_enabled: false,
            sms_sipaccount: String::new(),
        }
    }

    /// Turn the JSON webhook on, pointing at `url`.
    pub fn with_webhook(mut self, url: &str) -> DidConfig {
        self.webhook_enabled = true;
        self.webhook = url.to_string();
        self
    }

    /// Turn the legacy URL callback on, with or without retry-until-`ok`.
    pub fn with_url_callback(mut self, url: &str, retry: bool) -> DidConfig {
        self.url_callback_enable = true;
        self.url_callback = url.to_string();
        self.url_callback_retry = retry;
        self
    }

    /// Set the dial mode (1 = NANPA, 2 = E164).
    pub fn with_dialmode(mut self, dialmode: u8) -> DidConfig {
        self.dialmode = dialmode;
        self
    }

    /// Whether numbers for this DID are shown with `+1`.
    pub(crate) fn e164(&self) -> bool {
        self.dialmode == 2
    }
}

/// Behaviour switches (`options`, §11.11). [`Default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `ids_as_strings` (false): sendSMS/sendMMS ids as JSON strings instead of numbers.
    pub ids_as_strings: bool,
    /// `www_redirect` (true): 301 to `https://voip.ms/api/v1/rest.php` on `Host: www.*`.
    pub www_redirect: bool,
    /// `get_base64_limit` (true): base64 media over GET longer than 512 characters →
    /// `exceeds_file_size`.
    pub get_base64_limit: bool,
    /// `omit_mms_media` (false): getSMS/getMMS rows with empty `col_media*` and `media`.
    pub omit_mms_media: bool,
    /// `e164_rows_on_did_filter` (false): `+1` numbers in getSMS/getMMS rows whenever `did` is
    /// given.
    pub e164_rows_on_did_filter: bool,
    /// `shared_id_sequence` (false): one id sequence for SMS and MMS.
    pub shared_id_sequence: bool,
    /// `setsms_drops_unstated` (true): setSMS disables every callback field it is not given.
    pub setsms_drops_unstated: bool,
    /// `sms_wait` (true): `sms_wait_message` when setSMS toggles SMS within 60 s of the last
    /// toggle.
    pub sms_wait: bool,
    /// `media_placeholder_literal` (false): leave `{MEDIA}` in the callback URL when there is no
    /// media.
    pub media_placeholder_literal: bool,
    /// `callback_retry_interval_s` (1800): URL callback retry interval.
    pub callback_retry_interval_s: u64,
    /// `callback_max_attempts` (null = unlimited): URL callback attempts in all.
    pub callback_max_attempts: Option<u32>,
    /// `webhook_minimal` (false): only the confirmed webhook keys.
    pub webhook_minimal: bool,
    /// `webhook_requires_ok` (false): a webhook is acked only when the body is `ok`.
    pub webhook_requires_ok: bool,
    /// `webhook_retry` (false): re-send unacked webhooks.
    pub webhook_retry: bool,
    /// `webhook_retry_interval_s` (1800).
    pub webhook_retry_interval_s: u64,
    /// `webhook_max_attempts` (48; null = unlimited).
    pub webhook_max_attempts: Option<u32>,
    /// `webhook_extra_to` (false): a second `to` entry that is not the DID.
    pub webhook_extra_to: bool,
    /// `webhook_telnyx_extras` (false): Telnyx-like extra keys.
    pub webhook_telnyx_extras: bool,
    /// `webhook_numbers_e164` (false): `+1` numbers in webhooks whatever the dial mode.
    pub webhook_numbers_e164: bool,
    /// `webhook_duplicate` (false): deliver every webhook twice.
    pub webhook_duplicate: bool,
    /// `strict_nanp` (false, mock-only): also require the exchange code to start with 2–9
    /// (rejects VoIP.ms's own example numbers such as `5551234567`).
    pub strict_nanp: bool,
    /// `push_timeout_ms` (10000, mock-only): timeout of one callback or webhook attempt.
    pub push_timeout_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ids_as_strings: false,
            www_redirect: true,
            get_base64_limit: true,
            omit_mms_media: false,
            e164_rows_on_did_filter: false,
            shared_id_sequence: false,
            setsms_drops_unstated: true,
            sms_wait: true,
            media_placeholder_literal: false,
            callback_retry_interval_s: 1800,
            callback_max_attempts: None,
            webhook_minimal: false,
            webhook_requires_ok: false,
            webhook_retry: false,
            webhook_retry_interval_s: 1800,
            webhook_max_attempts: Some(48),
            webhook_extra_to: false,
            webhook_telnyx_extras: false,
            webhook_numbers_e164: false,
            webhook_duplicate: false,
            strict_nanp: false,
            push_timeout_ms: 10_000,
        }
    }
}

/// Where the mock clock starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockSetting {
    /// `"real"`: system time (control API moves add an offset).
    Real,
    /// A fixed start, RFC 3339 (e.g. `"2025-07-20T12:00:00-04:00"`); time then only moves through
    /// the control API.
    Fixed(String),
}

/// A change to the account (`POST /_mock/account`, [`crate::MockVoipms::set_account`]).
/// `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountPatch {
    /// New `api_username`.
    pub api_username: Option<String>,
    /// New `api_password`.
    pub api_password: Option<String>,
    /// New `api_enabled`.
    pub api_enabled: Option<bool>,
    /// New `allowed_ips`.
    pub allowed_ips: Option<Vec<String>>,
    /// New `daily_limit`.
    pub daily_limit: Option<u32>,
    /// New `rate_limit_per_minute` (`Some(None)` turns the limiter off).
    pub rate_limit_per_minute: Option<Option<u32>>,
    /// New `balance`.
    pub balance: Option<String>,
}

impl AccountPatch {
    /// Set `api_enabled`.
    pub fn api_enabled(mut self, on: bool) -> Self {
        self.api_enabled = Some(on);
        self
    }

    /// Set `allowed_ips`.
    pub fn allowed_ips(mut self, ips: &[&str]) -> Self {
        self.allowed_ips = Some(ips.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Set `daily_limit`.
    pub fn daily_limit(mut self, n: u32) -> Self {
        self.daily_limit = Some(n);
        self
    }

    /// Set `rate_limit_per_minute`.
    pub fn rate_limit_per_minute(mut self, n: Option<u32>) -> Self {
        self.rate_limit_per_minute = Some(n);
        self
    }

    /// Set `balance`.
    pub fn balance(mut self, b: &str) -> Self {
        self.balance = Some(b.to_string());
        self
    }

    /// Set `api_password`.
    pub fn api_password(mut self, p: &str) -> Self {
        self.api_password = Some(p.to_string());
        self
    }

    /// Apply to an account and check the result.
    pub(crate) fn apply(&self, account: &AccountConfig) -> Result<AccountConfig, ConfigError> {
        let mut a = account.clone();
        if let Some(v) = &self.api_username {
            a.api_username = v.clone();
        }
        if let Some(v) = &self.api_password {
            a.api_password = v.clone();
        }
        if let Some(v) = self.api_enabled {
            a.api_enabled = v;
        }
        if let Some(v) = &self.allowed_ips {
            a.allowed_ips = v.clone();
        }
        if let Some(v) = self.daily_limit {
            a.daily_limit = v;
        }
        if let Some(v) = self.rate_limit_per_minute {
            a.rate_limit_per_minute = v;
        }
        if let Some(v) = &self.balance {
            a.balance = v.clone();
        }
        validate_account(&a, "account")?;
        Ok(a)
    }
}

/// Why a configuration (or a control API body) was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The text is not JSON.
    Json(JsonError),
    /// A key the mock does not know, e.g. `dids[0].webhok`.
    UnknownKey {
        /// Path of the key.
        path: String,
    },
    /// The same key twice in one object.
    DuplicateKey {
        /// Path of the key.
        path: String,
    },
    /// A required key is absent.
    MissingKey {
        /// Path of the key.
        path: String,
    },
    /// A value of the wrong JSON type.
    WrongType {
        /// Path of the value.
        path: String,
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// A value of the right type that is not acceptable.
    Invalid {
        /// Path of the value.
        path: String,
        /// Why.
        message: String,
    },
}

impl ConfigError {
    /// The key path the error is about (`None` for JSON syntax errors).
    pub fn path(&self) -> Option<&str> {
        match self {
            ConfigError::Json(_) => None,
            ConfigError::UnknownKey { path }
            | ConfigError::DuplicateKey { path }
            | ConfigError::MissingKey { path }
            | ConfigError::WrongType { path, .. }
            | ConfigError::Invalid { path, .. } => Some(path),
        }
    }

    fn invalid(path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { path: path.to_string(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Json(e) => write!(f, "{e}"),
            ConfigError::UnknownKey { path } => write!(f, "{path}: unknown key"),
            ConfigError::DuplicateKey { path } => write!(f, "{path}: key given twice"),
            ConfigError::MissingKey { path } => write!(f, "{path}: required key missing"),
            ConfigError::WrongType { path, expected, found } => write!(f, "{path}: expected {expected}, found {found}"),
            ConfigError::Invalid { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<JsonError> for ConfigError {
    fn from(e: JsonError) -> Self {
        ConfigError::Json(e)
    }
}

impl MockConfig {
    /// Read a JSON configuration (§11.2). Absent keys take their defaults; unknown keys are
    /// rejected and the error names the key path.
    pub fn from_json(text: &str) -> Result<MockConfig, ConfigError> {
        let v = Value::parse(text)?;
        let mut config = MockConfig {
            account: AccountConfig::default(),
            dids: Vec::new(),
            options: Options::default(),
            clock: ClockSetting::Real,
        };
        for (key, path, val) in members(&v, "")? {
            match key {
                "account" => config.account = account_from_value(val, &path, &config.account)?,
                "dids" => {
                    let items = val.as_array().ok_or_else(|| wrong(&path, "an array", val))?;
                    config.dids = items
                        .iter()
                        .enumerate()
                        .map(|(i, d)| did_from_value(d, &format!("dids[{i}]")))
                        .collect::<Result<_, _>>()?;
                }
                "options" => config.options = options_from_value(val, &path, &config.options)?,
                "clock" => {
                    let s = string(val, &path)?;
                    config.clock = if s == "real" { ClockSetting::Real } else { ClockSetting::Fixed(s) };
                }
                _ => return Err(ConfigError::UnknownKey { path }),
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// A ready config for tests: account `john@example.com` / `secret`, API enabled, allowed IPs
    /// `127.0.0.1` and `::1`, daily limit 100, real clock, default options, and one DID per entry
    /// (SMS enabled, dial mode 1, no callbacks, no webhook).
    pub fn for_tests(dids: &[&str]) -> MockConfig {
        MockConfig {
            account: AccountConfig::default(),
            dids: dids.iter().map(|d| DidConfig::new(d)).collect(),
            options: Options::default(),
            clock: ClockSetting::Real,
        }
    }

    /// Start the clock at a fixed instant (RFC 3339) instead of real time.
    pub fn with_fixed_clock(mut self, rfc3339: &str) -> MockConfig {
        self.clock = ClockSetting::Fixed(rfc3339.to_string());
        self
    }

    /// Check what [`MockConfig::from_json`] checks, for a config built in code.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_account(&self.account, "account")?;
        let mut seen = Vec::new();
        for (i, d) in self.dids.iter().enumerate() {
            let path = format!("dids[{i}]");
            validate_did(d, &path)?;
            if seen.contains(&d.did) {
                return Err(ConfigError::invalid(&format!("{path}.did"), format!("DID {} is listed twice", d.did)));
            }
            seen.push(d.did.clone());
        }
        validate_options(&self.options, "options")?;
        if let ClockSetting::Fixed(s) = &self.clock {
            clock::parse_rfc3339(s).map_err(|e| ConfigError::invalid("clock", format!("not \"real\": {e}")))?;
        }
        Ok(())
    }
}

fn wrong(path: &str, expected: &'static str, found: &Value) -> ConfigError {
    ConfigError::WrongType { path: path.to_string(), expected, found: found.type_name() }
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() { key.to_string() } else { format!("{base}.{key}") }
}

/// The members of an object as `(key, full path, value)`, rejecting duplicate keys.
pub(crate) fn members<'a>(v: &'a Value, base: &str) -> Result<Vec<(&'a str, String, &'a Value)>, ConfigError> {
    let obj = v.as_object().ok_or_else(|| wrong(if base.is_empty() { "(top)" } else { base }, "an object", v))?;
    let mut out: Vec<(&str, String, &Value)> = Vec::with_capacity(obj.len());
    for (k, val) in obj {
        let path = join(base, k);
        if out.iter().any(|(seen, _, _)| *seen == k.as_str()) {
            return Err(ConfigError::DuplicateKey { path });
        }
        out.push((k.as_str(), path, val));
    }
    Ok(out)
}

pub(crate) fn bool_(v: &Value, path: &str) -> Result<bool, ConfigError> {
    v.as_bool().ok_or_else(|| wrong(path, "true or false", v))
}

pub(crate) fn string(v: &Value, path: &str) -> Result<String, ConfigError> {
    v.as_str().map(str::to_string).ok_or_else(|| wrong(path, "a string", v))
}

pub(crate) fn u64_(v: &Value, path: &str) -> Result<u64, ConfigError> {
    v.as_u64().ok_or_else(|| wrong(path, "a non-negative integer", v))
}

fn u32_(v: &Value, path: &str) -> Result<u32, ConfigError> {
    let n = u64_(v, path)?;
    u32::try_from(n).map_err(|_| ConfigError::invalid(path, "too large"))
}

fn opt_u32(v: &Value, path: &str) -> Result<Option<u32>, ConfigError> {
    if v.is_null() { Ok(None) } else { u32_(v, path).map(Some) }
}

fn string_or_number(v: &Value, path: &str) -> Result<String, ConfigError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.clone()),
        _ => Err(wrong(path, "a string or a number", v)),
    }
}

fn string_list(v: &Value, path: &str) -> Result<Vec<String>, ConfigError> {
    let items = v.as_array().ok_or_else(|| wrong(path, "an array", v))?;
    items.iter().enumerate().map(|(i, s)| string(s, &format!("{path}[{i}]"))).collect()
}

/// Read `account` keys over `base`.
pub(crate) fn account_from_value(
    v: &Value,
    base_path: &str,
    base: &AccountConfig,
) -> Result<AccountConfig, ConfigError> {
    let mut patch = AccountPatch::default();
    for (key, path, val) in members(v, base_path)? {
        match key {
            "api_username" => patch.api_username = Some(string(val, &path)?),
            "api_password" => patch.api_password = Some(string(val, &path)?),
            "api_enabled" => patch.api_enabled = Some(bool_(val, &path)?),
            "allowed_ips" => patch.allowed_ips = Some(string_list(val, &path)?),
            "daily_limit" => patch.daily_limit = Some(u32_(val, &path)?),
            "rate_limit_per_minute" => patch.rate_limit_per_minute = Some(opt_u32(val, &path)?),
            "balance" => patch.balance = Some(string_or_number(val, &path)?),
            _ => return Err(ConfigError::UnknownKey { path }),
        }
    }
    let mut a = base.clone();
    // Same as AccountPatch::apply, with errors reported under `base_path`.
    if let Some(x) = patch.api_username {
        a.api_username = x;
    }
    if let Some(x) = patch.api_password {
        a.api_password = x;
    }
    if let Some(x) = patch.api_enabled {
        a.api_enabled = x;
    }
    if let Some(x) = patch.allowed_ips {
        a.allowed_ips = x;
    }
    if let Some(x) = patch.daily_limit {
        a.daily_limit = x;
    }
    if let Some(x) = patch.rate_limit_per_minute {
        a.rate_limit_per_minute = x;
    }
    if let Some(x) = patch.balance {
        a.balance = x;
    }
    validate_account(&a, base_path)?;
    Ok(a)
}

/// Read one DID object (`did` required; other keys default as in [`DidConfig::new`]).
pub(crate) fn did_from_value(v: &Value, base_path: &str) -> Result<DidConfig, ConfigError> {
    let mut d = DidConfig::new("");
    let mut have_did = false;
    for (key, path, val) in members(v, base_path)? {
        match key {
            "did" => {
                d.did = string(val, &path)?;
                have_did = true;
            }
            "description" => d.description = string(val, &path)?,
            "sms_available" => d.sms_available = bool_(val, &path)?,
            "sms_enabled" => d.sms_enabled = bool_(val, &path)?,
            "dialmode" => {
                d.dialmode =
                    u8::try_from(u64_(val, &path)?).map_err(|_| ConfigError::invalid(&path, "must be 1 or 2"))?
            }
            "url_callback_enable" => d.url_callback_enable = bool_(val, &path)?,
            "url_callback" => d.url_callback = string(val, &path)?,
            "url_callback_retry" => d.url_callback_retry = bool_(val, &path)?,
            "webhook_enabled" => d.webhook_enabled = bool_(val, &path)?,
            "webhook" => d.webhook = string(val, &path)?,
            "email_enabled" => d.email_enabled = bool_(val, &path)?,
            "email_address" => d.email_address = string(val, &path)?,
            "sms_forward_enable" => d.sms_forward_enable = bool_(val, &path)?,
            "sms_forward" => d.sms_forward = string(val, &path)?,
            "mms_available" => d.mms_available = bool_(val, &path)?,
            "routing" => d.routing = string(val, &path)?,
            "order_date" => d.order_date = string(val, &path)?,
            "smpp_enabled" => d.smpp_enabled = bool_(val, &path)?,
            "smpp_url" => d.smpp_url = string(val, &path)?,
            "smpp_user" => d.smpp_user = string(val, &path)?,
            "smpp_pass" => d.smpp_pass = string(val, &path)?,
            "sms_sipaccount_enabled" => d.sms_sipaccount_enabled = bool_(val, &path)?,
            "sms_sipaccount" => d.sms_sipaccount = string(val, &path)?,
            _ => return Err(ConfigError::UnknownKey { path }),
        }
    }
    if !have_did {
        return Err(ConfigError::MissingKey { path: join(base_path, "did") });
    }
    if let Some(n) = numbers::parse_nanp(&d.did, false) {
        d.did = n;
    }
    validate_did(&d, base_path)?;
    Ok(d)
}

/// A DID as JSON, in the configuration's shape.
pub(crate) fn did_to_value(d: &DidConfig) -> Value {
    Value::object([
        ("did", Value::from(&d.did)),
        ("description", Value::from(&d.description)),
        ("sms_available", Value::from(d.sms_available)),
        ("sms_enabled", Value::from(d.sms_enabled)),
        ("dialmode", Value::from(u32::from(d.dialmode))),
        ("url_callback_enable", Value::from(d.url_callback_enable)),
        ("url_callback", Value::from(&d.url_callback)),
        ("url_callback_retry", Value::from(d.url_callback_retry)),
        ("webhook_enabled", Value::from(d.webhook_enabled)),
        ("webhook", Value::from(&d.webhook)),
        ("email_enabled", Value::from(d.email_enabled)),
        ("email_address", Value::from(&d.email_address)),
        ("sms_forward_enable", Value::from(d.sms_forward_enable)),
        ("sms_forward", Value::from(&d.sms_forward)),
        ("mms_available", Value::from(d.mms_available)),
        ("routing", Value::from(&d.routing)),
        ("order_date", Value::from(&d.order_date)),
        ("smpp_enabled", Value::from(d.smpp_enabled)),
        ("smpp_url", Value::from(&d.smpp_url)),
        ("smpp_user", Value::from(&d.smpp_user)),
        ("smpp_pass", Value::from(&d.smpp_pass)),
        ("sms_sipaccount_enabled", Value::from(d.sms_sipaccount_enabled)),
        ("sms_sipaccount", Value::from(&d.sms_sipaccount)),
    ])
}

/// Read `options` keys over `base`.
pub(crate) fn options_from_value(v: &Value, base_path: &str, base: &Options) -> Result<Options, ConfigError> {
    let mut o = base.clone();
    for (key, path, val) in members(v, base_path)? {
        match key {
            "ids_as_strings" => o.ids_as_strings = bool_(val, &path)?,
            "www_redirect" => o.www_redirect = bool_(val, &path)?,
            "get_base64_limit" => o.get_base64_limit = bool_(val, &path)?,
            "omit_mms_media" => o.omit_mms_media = bool_(val, &path)?,
            "e164_rows_on_did_filter" => o.e164_rows_on_did_filter = bool_(val, &path)?,
            "shared_id_sequence" => o.shared_id_sequence = bool_(val, &path)?,
            "setsms_drops_unstated" => o.setsms_drops_unstated = bool_(val, &path)?,
            "sms_wait" => o.sms_wait = bool_(val, &path)?,
            "media_placeholder_literal" => o.media_placeholder_literal = bool_(val, &path)?,
            "callback_retry_interval_s" => o.callback_retry_interval_s = u64_(val, &path)?,
            "callback_max_attempts" => o.callback_max_attempts = opt_u32(val, &path)?,
            "webhook_minimal" => o.webhook_minimal = bool_(val, &path)?,
            "webhook_requires_ok" => o.webhook_requires_ok = bool_(val, &path)?,
            "webhook_retry" => o.webhook_retry = bool_(val, &path)?,
            "webhook_retry_interval_s" => o.webhook_retry_interval_s = u64_(val, &path)?,
            "webhook_max_attempts" => o.webhook_max_attempts = opt_u32(val, &path)?,
            "webhook_extra_to" => o.webhook_extra_to = bool_(val, &path)?,
            "webhook_telnyx_extras" => o.webhook_telnyx_extras = bool_(val, &path)?,
            "webhook_numbers_e164" => o.webhook_numbers_e164 = bool_(val, &path)?,
            "webhook_duplicate" => o.webhook_duplicate = bool_(val, &path)?,
            "strict_nanp" => o.strict_nanp = bool_(val, &path)?,
            "push_timeout_ms" => o.push_timeout_ms = u64_(val, &path)?,
            _ => return Err(ConfigError::UnknownKey { path }),
        }
    }
    validate_options(&o, base_path)?;
    Ok(o)
}

fn validate_account(a: &AccountConfig, base: &str) -> Result<(), ConfigError> {
    for (i, ip) in a.allowed_ips.iter().enumerate() {
        if IpRule::parse(ip).is_none() {
            return Err(ConfigError::invalid(
                &format!("{base}.allowed_ips[{i}]"),
                format!("{ip:?} is not an IP, a CIDR block, a.b.c.* or 0.0.0.0"),
            ));
        }
    }
    if a.rate_limit_per_minute == Some(0) {
        return Err(ConfigError::invalid(
            &join(base, "rate_limit_per_minute"),
            "must be at least 1, or null for no limit",
        ));
    }
    Ok(())
}

fn is_http_url(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    (l.starts_with("http://") && l.len() > 7) || (l.starts_with("https://") && l.len() > 8)
}

pub(crate) fn validate_did(d: &DidConfig, base: &str) -> Result<(), ConfigError> {
    if numbers::parse_nanp(&d.did, false).as_deref() != Some(d.did.as_str()) {
        return Err(ConfigError::invalid(&join(base, "did"), format!("{:?} is not a 10-digit NANP number", d.did)));
    }
    if !matches!(d.dialmode, 1 | 2) {
        return Err(ConfigError::invalid(&join(base, "dialmode"), "must be 1 or 2"));
    }
    for (key, url, on) in
        [("url_callback", &d.url_callback, d.url_callback_enable), ("webhook", &d.webhook, d.webhook_enabled)]
    {
        if (on || !url.is_empty()) && !is_http_url(url) {
            return Err(ConfigError::invalid(&join(base, key), "must be an http:// or https:// URL"));
        }
    }
    Ok(())
}

pub(crate) fn validate_options(o: &Options, base: &str) -> Result<(), ConfigError> {
    const TEN_YEARS_S: u64 = 10 * 366 * 86_400;
    for (key, v, max) in [
        ("callback_retry_interval_s", o.callback_retry_interval_s, TEN_YEARS_S),
        ("webhook_retry_interval_s", o.webhook_retry_interval_s, TEN_YEARS_S),
        ("push_timeout_ms", o.push_timeout_ms, 3_600_000),
    ] {
        if v == 0 || v > max {
            return Err(ConfigError::invalid(&join(base, key), format!("must be between 1 and {max}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"{
      "account": {
        "api_username": "john@example.com", "api_password": "secret",
        "api_enabled": true,
        "allowed_ips": ["127.0.0.1", "::1"],
        "daily_limit": 100,
        "rate_limit_per_minute": null,
        "balance": "12.345678"
      },
      "dids": [
        { "did": "5551234567", "description": "main", "sms_available": true, "sms_enabled": true,
          "dialmode": 1,
          "url_callback_enable": false, "url_callback": "", "url_callback_retry": false,
          "webhook_enabled": true, "webhook": "http://127.0.0.1:8080/voipms?key=k",
          "email_enabled": false, "email_address": "", "sms_forward_enable": false, "sms_forward": "" }
      ],
      "options": { "webhook_duplicate": true, "callback_max_attempts": 3 },
      "clock": "2025-07-20T12:00:00-04:00"
    }"#;

    #[test]
    fn spec_example_parses() {
        let c = MockConfig::from_json(FULL).unwrap();
        assert_eq!(c.account.api_username, "john@example.com");
        assert_eq!(c.dids.len(), 1);
        assert_eq!(c.dids[0].webhook, "http://127.0.0.1:8080/voipms?key=k");
        assert!(c.options.webhook_duplicate);
        assert_eq!(c.options.callback_max_attempts, Some(3));
        assert_eq!(c.options.webhook_max_attempts, Some(48));
        assert_eq!(c.clock, ClockSetting::Fixed("2025-07-20T12:00:00-04:00".into()));
        assert_eq!(MockConfig::from_json("{}").unwrap().clock, ClockSetting::Real);
    }

    #[test]
    fn unknown_keys_are_named() {
        let cases = [
            (r#"{"acount":{}}"#, "acount"),
            (r#"{"account":{"api_user":"x"}}"#, "account.api_user"),
            (r#"{"dids":[{"did":"5551234567"},{"did":"5551234568","webhok":""}]}"#, "dids[1].webhok"),
            (r#"{"options":{"…":"see 11.11"}}"#, "options.…"),
        ];
        for (text, path) in cases {
            let e = MockConfig::from_json(text).unwrap_err();
            assert_eq!(e, ConfigError::UnknownKey { path: path.into() });
            assert!(e.to_string().contains(path));
        }
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            (r#"{"account":{"daily_limit":"100"}}"#, "account.daily_limit"),
            (r#"{"account":{"allowed_ips":["nope"]}}"#, "account.allowed_ips[0]"),
            (r#"{"dids":[{"description":"x"}]}"#, "dids[0].did"),
            (r#"{"dids":[{"did":"123"}]}"#, "dids[0].did"),
            (r#"{"dids":[{"did":"5551234567","dialmode":3}]}"#, "dids[0].dialmode"),
            (r#"{"dids":[{"did":"5551234567","webhook_enabled":true,"webhook":"ftp://x"}]}"#, "dids[0].webhook"),
            (r#"{"dids":[{"did":"5551234567"},{"did":"+15551234567"}]}"#, "dids[1].did"),
            (r#"{"clock":"yesterday"}"#, "clock"),
            (r#"{"options":{"sms_wait":1}}"#, "options.sms_wait"),
            (r#"{"account":{"api_enabled":true,"api_enabled":false}}"#, "account.api_enabled"),
        ];
        for (text, path) in cases {
            let e = MockConfig::from_json(text).unwrap_err();
            assert_eq!(e.path(), Some(path), "{text}: {e}");
        }
        assert!(matches!(MockConfig::from_json("{").unwrap_err(), ConfigError::Json(_)));
    }

    #[test]
    fn for_tests_defaults() {
        let c = MockConfig::for_tests(&["5551234567", "+15145550100"]);
        c.validate().unwrap();
        assert_eq!(c.dids[1].did, "5145550100");
        assert_eq!(c.account.allowed_ips, vec!["127.0.0.1", "::1"]);
        assert_eq!(c.account.daily_limit, 100);
        assert!(!c.dids[0].webhook_enabled && c.dids[0].sms_enabled && c.dids[0].dialmode == 1);
    }
}
