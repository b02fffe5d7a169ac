//! The configuration: a JSON [`Value`] validated once into [`Config`], or every problem at once.
//!
//! Unknown keys are errors that name the key; each secret is given inline or as a file
//! (`secret`/`secret_file`, `api_password`/`api_password_file`, `key`/`key_file`, exactly one of
//! each pair). Reading those files is the shell's job (`config_file.rs`): it hands their text in
//! as [`SecretFiles`], so this module does no I/O. See `docs/configuration.md` for every key.

use crate::core::json::Value;
use crate::core::phone::Nanp;
use crate::core::secret::Secret;
use crate::core::xmpp::jid::{BareJid, Jid};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// VoIP.ms's REST endpoint. Host `voip.ms`, never `www.voip.ms` (voipms.md §1).
pub const DEFAULT_API_URL: &str = "https://voip.ms/api/v1/rest.php";
/// The webhook path the seed module used, so that a switch keeps the VoIP.ms setting.
pub const DEFAULT_WEBHOOK_PATH: &str = "/voipms";
/// Liveness ping interval: well inside Prosody's 14-minute read timeout, and with the answer
/// deadline (the same minute) a dead link is noticed within two minutes.
pub const DEFAULT_KEEPALIVE_SECS: u64 = 60;
/// Whole-request timeout for a VoIP.ms call.
pub const DEFAULT_VOIPMS_TIMEOUT_SECS: u64 = 30;
/// A day of retries: a VoIP.ms outage rarely lasts longer, and a text a day late is still
/// better than a lost one; after that the sender is told.
pub const DEFAULT_RETRY_FOR_SECS: u64 = 86_400;
/// Every 10 minutes, ask VoIP.ms for received messages the webhook did not bring.
pub const DEFAULT_BACKFILL_SECS: u64 = 600;

/// The keys whose value is a path to a secret; the shell reads these before validation.
pub const SECRET_FILE_KEYS: [(&str, &str); 3] =
    [("xmpp", "secret_file"), ("voipms", "api_password_file"), ("webhook", "key_file")];

/// Secret files read by the shell: `"xmpp.secret_file"` → the file's text, or why it could not
/// be read.
pub type SecretFiles = BTreeMap<String, Result<String, String>>;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The XMPP component connection.
    pub xmpp: XmppConfig,
    /// The VoIP.ms API account.
    pub voipms: VoipmsConfig,
    /// The inbound webhook server.
    pub webhook: WebhookConfig,
    /// Who may use which DIDs, in file order.
    pub users: Vec<User>,
    /// Where the spool and set-aside messages live.
    pub state_dir: String,
    /// The optional health and metrics endpoint.
    pub metrics: Option<MetricsConfig>,
}

/// `metrics` section: `GET /healthz` and `GET /metrics` (Prometheus) on their own address,
/// never on the public webhook port.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Address and port to listen on, e.g. `127.0.0.1:9108`.
    pub listen: SocketAddr,
}

/// `xmpp` section.
#[derive(Debug, Clone)]
pub struct XmppConfig {
    /// Our component domain, e.g. `sms.example.com`.
    pub component: String,
    /// The server's component port as `host:port` (resolved by the shell).
    pub server: String,
    /// The XEP-0114 shared secret.
    pub secret: Secret,
    /// How often the liveness ping is sent; it must be answered within this (at most 60 s).
    pub keepalive: Duration,
    /// Where the liveness ping goes: the XMPP server's own domain (`xmpp.ping_to`, by default
    /// the domain the component lives under). Never a user's domain, which may be remote: its
    /// answer would cross s2s, arrive late, and the link would be declared dead over and over.
    pub ping_to: String,
}

/// `voipms` section.
#[derive(Debug, Clone)]
pub struct VoipmsConfig {
    /// The API user (the portal e-mail address).
    pub api_username: String,
    /// The API password (not the portal password).
    pub api_password: Secret,
    /// The REST endpoint; tests point it at mock-voipms.
    pub api_url: String,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// How long a send is retried through transient failures before the sender gets an error.
    pub retry_for: Duration,
    /// How often VoIP.ms is asked for received messages the webhook did not bring (`None`: never).
    pub backfill_interval: Option<Duration>,
}

/// `webhook` section.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// The URL path VoIP.ms posts to.
    pub path: String,
    /// The `?key=` secret.
    pub key: Secret,
}

/// One `jid_map` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's bare JID.
    pub jid: BareJid,
    /// The user's DIDs; the first is the default.
    pub dids: Vec<Nanp>,
}

/// One problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file is not JSON.
    NotJson(String),
    /// A key we do not know (often a typo).
    UnknownKey(String),
    /// A required key is absent.
    Missing(String),
    /// A value has the wrong JSON type.
    WrongType {
        /// Dotted key path.
        key: String,
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// Neither or both of a secret pair were given.
    ExactlyOneOf {
        /// The section.
        section: &'static str,
        /// The inline key.
        inline: &'static str,
        /// The file key.
        file: &'static str,
    },
    /// A secret file could not be read.
    SecretFile {
        /// Dotted key path.
        key: String,
        /// Why.
        reason: String,
    },
    /// A value is the right type but not acceptable.
    Invalid {
        /// Dotted key path.
        key: String,
        /// Why, naming the value where that is not a secret.
        reason: String,
    },
    /// One DID mapped to two users.
    DidTwice {
        /// The DID, `+1…`.
        did: String,
        /// The first user that lists it.
        first: String,
        /// The second.
        second: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NotJson(why) => write!(f, "not valid JSON: {why}"),
            ConfigError::UnknownKey(key) => write!(f, "unknown key \"{key}\""),
            ConfigError::Missing(key) => write!(f, "\"{key}\" is required"),
            ConfigError::WrongType { key, expected, found } => {
                write!(f, "\"{key}\": expected {expected}, found {found}")
            }
            ConfigError::ExactlyOneOf { section, inline, file } => {
                write!(f, "\"{section}\": give exactly one of \"{inline}\" and \"{file}\"")
            }
            ConfigError::SecretFile { key, reason } => write!(f, "\"{key}\": {reason}"),
            ConfigError::Invalid { key, reason } => write!(f, "\"{key}\": {reason}"),
            ConfigError::DidTwice { did, first, second } => {
                write!(f, "\"jid_map\": DID \"{did}\" is mapped to both \"{first}\" and \"{second}\"")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads one object, remembering which keys were used so the rest can be reported as unknown.
struct Section<'v, 'e> {
    path: String,
    members: &'v [(String, Value)],
    errors: &'e mut Vec<ConfigError>,
    known: Vec<&'static str>,
}

impl<'v, 'e> Section<'v, 'e> {
    fn new(path: &str, value: Option<&'v Value>, errors: &'e mut Vec<ConfigError>) -> Option<Section<'v, 'e>> {
        match value {
            None => {
                errors.push(ConfigError::Missing(path.to_string()));
                None
            }
            Some(Value::Object(members)) => {
                Some(Section { path: path.to_string(), members, errors, known: Vec::new() })
            }
            Some(other) => {
                errors.push(ConfigError::WrongType {
                    key: path.to_string(),
                    expected: "an object",
                    found: other.type_name(),
                });
                None
            }
        }
    }

    fn key(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }

    fn raw(&mut self, key: &'static str) -> Option<&'v Value> {
        self.known.push(key);
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn opt_str(&mut self, key: &'static str) -> Option<String> {
        match self.raw(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                let key = self.key(key);
                self.errors.push(ConfigError::WrongType { key, expected: "a string", found: other.type_name() });
                None
            }
        }
    }

    fn req_str(&mut self, key: &'static str) -> Option<String> {
        let present = self.members.iter().any(|(k, v)| k == key && *v != Value::Null);
        let value = self.opt_str(key);
        if !present {
            let key = self.key(key);
            self.errors.push(ConfigError::Missing(key));
        }
        value
    }

    fn opt_secs(&mut self, key: &'static str, default: u64, max: u64) -> Duration {
        self.opt_secs_from(key, default, 1, max)
    }

    fn opt_secs_from(&mut self, key: &'static str, default: u64, min: u64, max: u64) -> Duration {
        match self.raw(key) {
            None | Some(Value::Null) => Duration::from_secs(default),
            Some(Value::UInt(n)) if (min..=max).contains(n) => Duration::from_secs(*n),
            Some(Value::UInt(_)) | Some(Value::Int(_)) => {
                let key = self.key(key);
                self.errors
                    .push(ConfigError::Invalid { key, reason: format!("must be between {min} and {max} seconds") });
                Duration::from_secs(default)
            }
            Some(other) => {
                let key = self.key(key);
                self.errors.push(ConfigError::WrongType {
                    key,
                    expected: "a whole number of seconds",
                    found: other.type_name(),
                });
                Duration::from_secs(default)
            }
        }
    }

    /// Exactly one of `inline` and `file`; the file's text comes from `files`.
    fn secret(
        &mut self,
        section: &'static str,
        inline: &'static str,
        file: &'static str,
        files: &SecretFiles,
    ) -> Option<Secret> {
        let present = |k: &str| self.members.iter().any(|(key, v)| key == k && *v != Value::Null);
        let (has_inline, has_file) = (present(inline), present(file));
        let inline_value = self.opt_str(inline);
        let file_value = self.opt_str(file);
        if has_inline != has_file && inline_value.is_none() && file_value.is_none() {
            return None; // the one given has the wrong type, already reported
        }
        match (inline_value, file_value) {
            (Some(s), None) if s.is_empty() => {
                let key = self.key(inline);
                self.errors.push(ConfigError::Invalid { key, reason: "must not be empty".into() });
                None
            }
            (Some(s), None) => Some(Secret::new(s)),
            (None, Some(_)) => {
                let key = self.key(file);
                match files.get(&key) {
                    Some(Ok(text)) => {
                        let text = text.trim_end_matches(['\n', '\r']);
                        if text.is_empty() {
                            self.errors.push(ConfigError::SecretFile { key, reason: "the file is empty".into() });
                            None
                        } else {
                            Some(Secret::new(text.to_string()))
                        }
                    }
                    Some(Err(reason)) => {
                        self.errors.push(ConfigError::SecretFile { key, reason: reason.clone() });
                        None
                    }
                    None => {
                        self.errors.push(ConfigError::SecretFile { key, reason: "the file was not read".into() });
                        None
                    }
                }
            }
            _ => {
                self.errors.push(ConfigError::ExactlyOneOf { section, inline, file });
                None
            }
        }
    }

    fn finish(self) {
        for (k, _) in self.members {
            if !self.known.contains(&k.as_str()) {
                let key = if self.path.is_empty() { k.clone() } else { format!("{}.{k}", self.path) };
                self.errors.push(ConfigError::UnknownKey(key));
            }
        }
    }
}

impl Config {
    /// Parse the text of a config file. `files` holds the secret files the shell read.
    pub fn from_json(text: &str, files: &SecretFiles) -> Result<Config, Vec<ConfigError>> {
        let value = crate::core::json::parse(text).map_err(|e| vec![ConfigError::NotJson(e.to_string())])?;
        Config::from_value(&value, files)
    }

    /// Validate a parsed document, reporting every problem.
    pub fn from_value(value: &Value, files: &SecretFiles) -> Result<Config, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let config = validate(value, files, &mut errors);
        match config {
            Some(config) if errors.is_empty() => Ok(config),
            _ => Err(errors),
        }
    }

    /// The user a bare JID belongs to.
    pub fn user(&self, jid: &BareJid) -> Option<&User> {
        self.users.iter().find(|u| &u.jid == jid)
    }

    /// The user who owns a DID.
    pub fn owner_of(&self, did: &Nanp) -> Option<&User> {
        self.users.iter().find(|u| u.dids.contains(did))
    }
}

/// The `*_file` paths named in a document, as `("xmpp.secret_file", path)`, for the shell to read.
pub fn secret_file_paths(value: &Value) -> Vec<(String, String)> {
    SECRET_FILE_KEYS
        .iter()
        .filter_map(|(section, key)| {
            let path = value.get(section)?.get(key)?.as_str()?;
            Some((format!("{section}.{key}"), path.to_string()))
        })
        .collect()
}

fn validate(value: &Value, files: &SecretFiles, errors: &mut Vec<ConfigError>) -> Option<Config> {
    if !matches!(value, Value::Object(_)) {
        errors.push(ConfigError::WrongType {
            key: "(top level)".into(),
            expected: "an object",
            found: value.type_name(),
        });
        return None;
    }
    let mut top = Section::new("", Some(value), errors)?;
    let xmpp_v = top.raw("xmpp");
    let voipms_v = top.raw("voipms");
    let webhook_v = top.raw("webhook");
    let map_v = top.raw("jid_map");
    let state_v = top.raw("state_dir");
    let metrics_v = top.raw("metrics");
    top.finish();

    let xmpp = xmpp_section(xmpp_v, files, errors);
    let voipms = voipms_section(voipms_v, files, errors);
    let webhook = webhook_section(webhook_v, files, errors);
    let users = jid_map(map_v, xmpp.as_ref().map(|x| x.component.as_str()), errors);
    let state_dir = match state_v {
        None | Some(Value::Null) => {
            errors.push(ConfigError::Missing("state_dir".into()));
            None
        }
        Some(Value::String(s)) if s.is_empty() => {
            errors.push(ConfigError::Invalid { key: "state_dir".into(), reason: "must not be empty".into() });
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            errors.push(ConfigError::WrongType {
                key: "state_dir".into(),
                expected: "a string",
                found: other.type_name(),
            });
            None
        }
    };
    let metrics = match metrics_v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => metrics_section(v, webhook.as_ref(), errors).map(Some).ok_or(()),
    };
    Some(Config {
        xmpp: xmpp?,
        voipms: voipms?,
        webhook: webhook?,
        users: users?,
        state_dir: state_dir?,
        metrics: metrics.ok()?,
    })
}

fn metrics_section(
    value: &Value,
    webhook: Option<&WebhookConfig>,
    errors: &mut Vec<ConfigError>,
) -> Option<MetricsConfig> {
    let mut s = Section::new("metrics", Some(value), errors)?;
    let listen = s.req_str("listen");
    s.finish();
    let listen = listen?;
    let Ok(addr) = listen.parse::<SocketAddr>() else {
        errors.push(ConfigError::Invalid {
            key: "metrics.listen".into(),
            reason: format!("expected \"ip:port\" such as \"127.0.0.1:9108\", found \"{listen}\""),
        });
        return None;
    };
    if webhook.is_some_and(|w| w.listen.port() == addr.port() && addr.port() != 0) {
        errors.push(ConfigError::Invalid {
            key: "metrics.listen".into(),
            reason: "must not be the webhook's port: the webhook faces the internet, the metrics must not".into(),
        });
        return None;
    }
    Some(MetricsConfig { listen: addr })
}

fn xmpp_section(value: Option<&Value>, files: &SecretFiles, errors: &mut Vec<ConfigError>) -> Option<XmppConfig> {
    let mut s = Section::new("xmpp", value, errors)?;
    let component = s.req_str("component");
    let server = s.req_str("server");
    let secret = s.secret("xmpp", "secret", "secret_file", files);
    let keepalive = s.opt_secs("keepalive_secs", DEFAULT_KEEPALIVE_SECS, 3600);
    let ping_to = s.opt_str("ping_to");
    s.finish();
    let component = component.and_then(|c| match domain_name(&c) {
        Some(d) => Some(d),
        None => {
            errors.push(ConfigError::Invalid {
                key: "xmpp.component".into(),
                reason: format!("\"{c}\" is not a domain name"),
            });
            None
        }
    });
    let ping_to = match (ping_to, &component) {
        (Some(p), _) => match domain_name(&p) {
            Some(d) if Some(&d) == component.as_ref() => {
                errors.push(ConfigError::Invalid {
                    key: "xmpp.ping_to".into(),
                    reason: "must be the XMPP server's domain, not the component's own (pings would come back to it)"
                        .into(),
                });
                None
            }
            Some(d) => Some(d),
            None => {
                errors.push(ConfigError::Invalid {
                    key: "xmpp.ping_to".into(),
                    reason: format!("\"{p}\" is not a domain name"),
                });
                None
            }
        },
        // `sms.example.com` lives under `example.com`, the server that hosts it.
        (None, Some(c)) => match c.split_once('.') {
            Some((_, parent)) => Some(parent.to_string()),
            None => {
                errors.push(ConfigError::Invalid {
                    key: "xmpp.ping_to".into(),
                    reason: format!(
                        "is required when \"xmpp.component\" (\"{c}\") has a single label: name the XMPP server's own domain"
                    ),
                });
                None
            }
        },
        (None, None) => None,
    };
    let server = server.and_then(|v| match valid_host_port(&v) {
        true => Some(v),
        false => {
            errors.push(ConfigError::Invalid {
                key: "xmpp.server".into(),
                reason: format!("expected \"host:port\", found \"{v}\""),
            });
            None
        }
    });
    Some(XmppConfig { component: component?, server: server?, secret: secret?, keepalive, ping_to: ping_to? })
}

fn voipms_section(value: Option<&Value>, files: &SecretFiles, errors: &mut Vec<ConfigError>) -> Option<VoipmsConfig> {
    let mut s = Section::new("voipms", value, errors)?;
    let api_username = s.req_str("api_username");
    let api_password = s.secret("voipms", "api_password", "api_password_file", files);
    let api_url = s.opt_str("api_url").unwrap_or_else(|| DEFAULT_API_URL.to_string());
    let timeout = s.opt_secs("timeout_secs", DEFAULT_VOIPMS_TIMEOUT_SECS, 600);
    let retry_for = s.opt_secs_from("retry_for_secs", DEFAULT_RETRY_FOR_SECS, 1, 30 * 86_400);
    let backfill = s.opt_secs_from("backfill_interval_secs", DEFAULT_BACKFILL_SECS, 0, 86_400);
    s.finish();
    let api_username = api_username.and_then(|u| {
        if u.trim().is_empty() {
            errors.push(ConfigError::Invalid { key: "voipms.api_username".into(), reason: "must not be empty".into() });
            None
        } else {
            Some(u)
        }
    });
    // Never show the URL as given: it may carry credentials.
    let shown = redact_url(&api_url);
    let url_ok = match api_url.split_once("://") {
        Some(("http" | "https", rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            if host.contains('@') {
                errors.push(ConfigError::Invalid {
                    key: "voipms.api_url".into(),
                    reason: format!(
                        "\"{shown}\" has credentials in it: give them as \"voipms.api_username\" and \"voipms.api_password\""
                    ),
                });
                false
            } else if host.is_empty() {
                errors.push(ConfigError::Invalid {
                    key: "voipms.api_url".into(),
                    reason: format!("\"{shown}\" has no host"),
                });
                false
            } else if host.eq_ignore_ascii_case("www.voip.ms") {
                errors.push(ConfigError::Invalid {
                    key: "voipms.api_url".into(),
                    reason: "use host voip.ms, not www.voip.ms: its redirect drops request bodies".into(),
                });
                false
            } else {
                true
            }
        }
        _ => {
            errors.push(ConfigError::Invalid {
                key: "voipms.api_url".into(),
                reason: format!("\"{shown}\" is not an http(s) URL"),
            });
            false
        }
    };
    Some(VoipmsConfig {
        api_username: api_username?,
        api_password: api_password?,
        api_url: url_ok.then_some(api_url)?,
        timeout,
        retry_for,
        backfill_interval: (!backfill.is_zero()).then_some(backfill),
    })
}

fn webhook_section(value: Option<&Value>, files: &SecretFiles, errors: &mut Vec<ConfigError>) -> Option<WebhookConfig> {
    let mut s = Section::new("webhook", value, errors)?;
    let listen = s.req_str("listen");
    let path = s.opt_str("path").unwrap_or_else(|| DEFAULT_WEBHOOK_PATH.to_string());
    let key = s.secret("webhook", "key", "key_file", files);
    s.finish();
    let listen = listen.and_then(|l| match l.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.push(ConfigError::Invalid {
                key: "webhook.listen".into(),
                reason: format!("expected \"ip:port\" such as \"0.0.0.0:8080\" or \"[::]:8080\", found \"{l}\""),
            });
            None
        }
    });
    let path_ok = path.starts_with('/') && !path.contains(['?', '#', ' ']) && path.len() <= 256;
    if !path_ok {
        errors.push(ConfigError::Invalid {
            key: "webhook.path".into(),
            reason: format!("\"{path}\" must start with \"/\" and hold no query"),
        });
    }
    Some(WebhookConfig { listen: listen?, path: path_ok.then_some(path)?, key: key? })
}

fn jid_map(value: Option<&Value>, component: Option<&str>, errors: &mut Vec<ConfigError>) -> Option<Vec<User>> {
    let members = match value {
        None | Some(Value::Null) => {
            errors.push(ConfigError::Missing("jid_map".into()));
            return None;
        }
        Some(Value::Object(m)) => m,
        Some(other) => {
            errors.push(ConfigError::WrongType {
                key: "jid_map".into(),
                expected: "an object",
                found: other.type_name(),
            });
            return None;
        }
    };
    if members.is_empty() {
        errors.push(ConfigError::Invalid {
            key: "jid_map".into(),
            reason: "maps no user: nobody could send or receive".into(),
        });
    }
    let before = errors.len();
    let mut users: Vec<User> = Vec::new();
    let mut owners: BTreeMap<Nanp, String> = BTreeMap::new();
    for (jid_text, dids_v) in members {
        let key = format!("jid_map.{jid_text}");
        let jid = match Jid::parse(jid_text) {
            Ok(j) if j.resource().is_some() => {
                errors.push(ConfigError::Invalid {
                    key: key.clone(),
                    reason: "a bare JID is needed (no \"/resource\")".into(),
                });
                None
            }
            Ok(j) if j.local().is_none() => {
                errors.push(ConfigError::Invalid {
                    key: key.clone(),
                    reason: "a user JID is needed (\"user@domain\")".into(),
                });
                None
            }
            Ok(j) if Some(j.domain()) == component => {
                errors.push(ConfigError::Invalid {
                    key: key.clone(),
                    reason: "a user cannot live on the gateway's own domain".into(),
                });
                None
            }
            Ok(j) => Some(j.to_bare()),
            Err(e) => {
                errors.push(ConfigError::Invalid { key: key.clone(), reason: format!("not a JID: {e}") });
                None
            }
        };
        if let Some(jid) = &jid
            && users.iter().any(|u| &u.jid == jid)
        {
            errors.push(ConfigError::Invalid { key: key.clone(), reason: format!("user \"{jid}\" is listed twice") });
        }
        let items = match dids_v {
            Value::Array(items) if !items.is_empty() => items.as_slice(),
            Value::Array(_) => {
                errors.push(ConfigError::Invalid { key: key.clone(), reason: "lists no DID".into() });
                &[]
            }
            other => {
                errors.push(ConfigError::WrongType {
                    key: key.clone(),
                    expected: "an array of DIDs",
                    found: other.type_name(),
                });
                &[]
            }
        };
        let mut dids = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ikey = format!("{key}[{i}]");
            let Some(text) = item.as_str() else {
                errors.push(ConfigError::WrongType {
                    key: ikey,
                    expected: "a string such as \"+15552345678\"",
                    found: item.type_name(),
                });
                continue;
            };
            let Some(did) = Nanp::parse(text.trim()) else {
                errors.push(ConfigError::Invalid {
                    key: ikey,
                    reason: format!("\"{text}\" is not a US/Canada number (+1NXXNXXXXXX, 1NXXNXXXXXX or NXXNXXXXXX)"),
                });
                continue;
            };
            if dids.contains(&did) {
                errors.push(ConfigError::Invalid {
                    key: ikey,
                    reason: format!("DID \"{}\" is listed twice", did.e164()),
                });
                continue;
            }
            if let Some(first) = owners.get(&did) {
                errors.push(ConfigError::DidTwice { did: did.e164(), first: first.clone(), second: jid_text.clone() });
                continue;
            }
            owners.insert(did, jid_text.clone());
            dids.push(did);
        }
        if let Some(jid) = jid {
            users.push(User { jid, dids });
        }
    }
    (errors.len() == before).then_some(users)
}

/// A URL as it may be shown (config errors, logs): userinfo becomes `***@` and a query string
/// `?***`, since either may hold credentials (`https://user:password@host/`, or VoIP.ms's GET
/// form `?api_username=…&api_password=…`). Works on text that is not a valid URL too.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let tail = match tail.find(['?', '#']) {
        Some(i) if tail[i..].starts_with('?') => format!("{}?***", &tail[..i]),
        Some(i) => tail[..i].to_string(),
        None => tail.to_string(),
    };
    format!("{scheme}{host}{tail}")
}

/// A bare domain (no localpart, no resource), lower-cased, or `None`.
fn domain_name(text: &str) -> Option<String> {
    match Jid::parse(text) {
        Ok(j) if j.local().is_none() && j.resource().is_none() && is_domain_name(j.domain()) => {
            Some(j.domain().to_string())
        }
        _ => None,
    }
}

/// Letters, digits, dots and hyphens, with at least one dot (or `localhost`, for tests).
fn is_domain_name(d: &str) -> bool {
    let labels_ok = d.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    labels_ok && (d.contains('.') || d == "localhost")
}

/// `host:port` with a non-empty host and a port in 1..=65535 (IPv6 in brackets).
fn valid_host_port(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner.strip_suffix(']').is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{
      "xmpp":    { "component": "sms.example.com", "server": "127.0.0.1:5347", "secret": "s3cret" },
      "voipms":  { "api_username": "john@example.com", "api_password": "pw",
                   "api_url": "https://voip.ms/api/v1/rest.php" },
      "webhook": { "listen": "0.0.0.0:8080", "path": "/voipms", "key": "k" },
      "jid_map": { "alice@example.com": ["+15552345678"],
                   "bob@example.com":   ["+15557654321", "+15553334444"] },
      "state_dir": "/var/lib/voipms-xmpp"
    }"#;

    fn errors_of(text: &str) -> Vec<String> {
        Config::from_json(text, &SecretFiles::new()).unwrap_err().iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn the_example_is_valid() {
        let c = Config::from_json(EXAMPLE, &SecretFiles::new()).unwrap();
        assert_eq!(c.xmpp.component, "sms.example.com");
        assert_eq!(c.xmpp.secret.expose(), "s3cret");
        assert_eq!(c.webhook.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.users.len(), 2);
        assert_eq!(c.users[1].jid.as_str(), "bob@example.com");
        assert_eq!(c.users[1].dids[0].e164(), "+15557654321");
        assert_eq!(c.users[1].dids[1].e164(), "+15553334444");
        assert_eq!(c.xmpp.keepalive, Duration::from_secs(DEFAULT_KEEPALIVE_SECS));
    }

    #[test]
    fn the_metrics_section_is_optional_and_never_on_the_webhook_port() {
        assert!(Config::from_json(EXAMPLE, &SecretFiles::new()).unwrap().metrics.is_none());
        let with = |m: &str| EXAMPLE.replace(r#""state_dir""#, &format!(r#""metrics": {m}, "state_dir""#));
        let c = Config::from_json(&with(r#"{"listen": "127.0.0.1:9108"}"#), &SecretFiles::new()).unwrap();
        assert_eq!(c.metrics.unwrap().listen, "127.0.0.1:9108".parse().unwrap());
        assert_eq!(
            errors_of(&with(r#"{"listen": "127.0.0.1:8080"}"#)),
            [
                "\"metrics.listen\": must not be the webhook's port: the webhook faces the internet, the metrics must not"
            ]
        );
        assert!(errors_of(&with(r#"{"listen": "localhost"}"#))[0].starts_with("\"metrics.listen\": expected"));
        assert_eq!(errors_of(&with(r#"{"listen": "127.0.0.1:9108", "port": 1}"#)), ["unknown key \"metrics.port\""]);
        assert_eq!(errors_of(&with("{}")), ["\"metrics.listen\" is required"]);
    }

    #[test]
    fn defaults_apply() {
        let text = EXAMPLE
            .replace(
                r#",
                   "api_url": "https://voip.ms/api/v1/rest.php""#,
                "",
            )
            .replace(r#", "path": "/voipms""#, "");
        let c = Config::from_json(&text, &SecretFiles::new()).unwrap();
        assert_eq!(c.voipms.api_url, DEFAULT_API_URL);
        assert_eq!(c.webhook.path, DEFAULT_WEBHOOK_PATH);
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = Config::from_json(EXAMPLE, &SecretFiles::new()).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret") && !debug.contains("\"pw\""), "{debug}");
    }

    #[test]
    fn unknown_keys_are_named_and_all_errors_come_at_once() {
        let text = EXAMPLE
            .replace("\"api_username\"", "\"api_usr\"")
            .replace("\"state_dir\"", "\"statedir\"")
            .replace("0.0.0.0:8080", "localhost");
        let errors = errors_of(&text);
        assert!(errors.contains(&"unknown key \"voipms.api_usr\"".to_string()), "{errors:?}");
        assert!(errors.contains(&"unknown key \"statedir\"".to_string()), "{errors:?}");
        assert!(errors.contains(&"\"voipms.api_username\" is required".to_string()), "{errors:?}");
        assert!(errors.contains(&"\"state_dir\" is required".to_string()), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("\"webhook.listen\": expected \"ip:port\"")), "{errors:?}");
        assert_eq!(errors.len(), 5, "{errors:?}");
    }

    #[test]
    fn a_did_mapped_twice_is_an_error() {
        let text = EXAMPLE.replace("\"+15553334444\"", "\"5552345678\"");
        assert_eq!(
            errors_of(&text),
            vec!["\"jid_map\": DID \"+15552345678\" is mapped to both \"alice@example.com\" and \"bob@example.com\""]
        );
    }

    #[test]
    fn secret_pairs_need_exactly_one() {
        let both = EXAMPLE.replace("\"secret\": \"s3cret\"", "\"secret\": \"s3cret\", \"secret_file\": \"x\"");
        assert_eq!(errors_of(&both), vec!["\"xmpp\": give exactly one of \"secret\" and \"secret_file\""]);
        let neither = EXAMPLE.replace(", \"key\": \"k\"", "");
        assert_eq!(errors_of(&neither), vec!["\"webhook\": give exactly one of \"key\" and \"key_file\""]);
    }

    #[test]
    fn secret_files_come_from_the_shell() {
        let text = EXAMPLE.replace("\"api_password\": \"pw\"", "\"api_password_file\": \"voipms-password\"");
        let v = crate::core::json::parse(&text).unwrap();
        assert_eq!(
            secret_file_paths(&v),
            vec![("voipms.api_password_file".to_string(), "voipms-password".to_string())]
        );
        let mut files = SecretFiles::new();
        files.insert("voipms.api_password_file".into(), Ok("from-file\n".into()));
        let c = Config::from_value(&v, &files).unwrap();
        assert_eq!(c.voipms.api_password.expose(), "from-file");
        files
            .insert("voipms.api_password_file".into(), Err("cannot read \"/run/x\": No such file or directory".into()));
        let e = Config::from_value(&v, &files).unwrap_err();
        assert_eq!(e[0].to_string(), "\"voipms.api_password_file\": cannot read \"/run/x\": No such file or directory");
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            ("\"sms.example.com\"", "\"not a domain!\"", "\"xmpp.component\": \"not a domain!\" is not a domain name"),
            ("\"127.0.0.1:5347\"", "\"127.0.0.1\"", "\"xmpp.server\": expected \"host:port\", found \"127.0.0.1\""),
            ("\"/voipms\"", "\"voipms\"", "\"webhook.path\": \"voipms\" must start with \"/\" and hold no query"),
            (
                "https://voip.ms/api",
                "https://www.voip.ms/api",
                "\"voipms.api_url\": use host voip.ms, not www.voip.ms: its redirect drops request bodies",
            ),
            (
                "[\"+15552345678\"]",
                "[\"+442079460958\"]",
                "\"jid_map.alice@example.com[0]\": \"+442079460958\" is not a US/Canada number (+1NXXNXXXXXX, 1NXXNXXXXXX or NXXNXXXXXX)",
            ),
            (
                "\"alice@example.com\"",
                "\"alice@example.com/phone\"",
                "\"jid_map.alice@example.com/phone\": a bare JID is needed (no \"/resource\")",
            ),
            ("[\"+15552345678\"]", "[]", "\"jid_map.alice@example.com\": lists no DID"),
            ("\"s3cret\"", "42", "\"xmpp.secret\": expected a string, found a number"),
        ];
        for (from, to, expected) in cases {
            assert_eq!(errors_of(&EXAMPLE.replacen(from, to, 1)), vec![expected.to_string()], "{from} -> {to}");
        }
    }

    #[test]
    fn credentials_in_api_url_are_never_shown() {
        // Regression (issue 6, defect 14): the error printed the URL with its userinfo.
        for url in [
            "https://john:hunter2@voip.ms/api/v1/rest.php",
            "https://hunter2@voip.ms/api",
            "ftp://john:hunter2@voip.ms/api",
            "john:hunter2@voip.ms/api",
            "ftp://voip.ms/x?api_password=hunter2",
        ] {
            let text = EXAMPLE.replace("https://voip.ms/api/v1/rest.php", url);
            let errors = Config::from_json(&text, &SecretFiles::new()).map(|_| ()).unwrap_err();
            let shown: Vec<String> = errors.iter().map(|e| format!("{e} {e:?}")).collect();
            assert!(shown.iter().all(|e| !e.contains("hunter2") && e.contains("voipms.api_url")), "{url}: {shown:?}");
        }
        let e = errors_of(&EXAMPLE.replace("https://voip.ms/", "https://john:hunter2@voip.ms/"));
        assert_eq!(
            e,
            vec![
                "\"voipms.api_url\": \"https://***@voip.ms/api/v1/rest.php\" has credentials in it: give them as \"voipms.api_username\" and \"voipms.api_password\""
            ]
        );
        assert_eq!(redact_url("https://u:p@h:8443/a?k=v&x=y#f"), "https://***@h:8443/a?***");
        assert_eq!(redact_url("https://voip.ms/api/v1/rest.php"), "https://voip.ms/api/v1/rest.php");
        assert_eq!(redact_url("http://a/b@c"), "http://a/b@c", "an @ in the path is not userinfo");
    }

    #[test]
    fn the_keepalive_pings_the_domain_the_component_lives_under() {
        // Regression (issue 6, defect 12): pings went to the first user's domain, maybe remote.
        let c = Config::from_json(EXAMPLE, &SecretFiles::new()).unwrap();
        assert_eq!(c.xmpp.ping_to, "example.com");
        let named =
            EXAMPLE.replace("\"secret\": \"s3cret\"", "\"secret\": \"s3cret\", \"ping_to\": \"XMPP.example.net\"");
        assert_eq!(Config::from_json(&named, &SecretFiles::new()).unwrap().xmpp.ping_to, "xmpp.example.net");
        let single = EXAMPLE.replace("\"sms.example.com\"", "\"localhost\"");
        assert_eq!(
            errors_of(&single),
            vec![
                "\"xmpp.ping_to\": is required when \"xmpp.component\" (\"localhost\") has a single label: name the XMPP server's own domain"
            ]
        );
        let ours =
            EXAMPLE.replace("\"secret\": \"s3cret\"", "\"secret\": \"s3cret\", \"ping_to\": \"sms.example.com\"");
        assert_eq!(
            errors_of(&ours),
            vec![
                "\"xmpp.ping_to\": must be the XMPP server's domain, not the component's own (pings would come back to it)"
            ]
        );
        let bad = EXAMPLE.replace("\"secret\": \"s3cret\"", "\"secret\": \"s3cret\", \"ping_to\": \"a b\"");
        assert_eq!(errors_of(&bad), vec!["\"xmpp.ping_to\": \"a b\" is not a domain name"]);
    }

    #[test]
    fn not_json_and_wrong_shapes() {
        assert!(errors_of("{")[0].starts_with("not valid JSON"));
        assert_eq!(errors_of("[]"), vec!["\"(top level)\": expected an object, found an array"]);
        let missing = errors_of("{}");
        assert_eq!(missing.len(), 5, "{missing:?}");
    }

    #[test]
    fn host_port_forms() {
        for ok in ["127.0.0.1:5347", "xmpp.example.com:5347", "[::1]:5347", "localhost:1"] {
            assert!(valid_host_port(ok), "{ok}");
        }
        for bad in ["127.0.0.1", ":5347", "host:0", "host:99999", "[::1:5347", "a b:1", "::1:5347"] {
            assert!(!valid_host_port(bad), "{bad}");
        }
    }
}
