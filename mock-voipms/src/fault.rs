//! Fault injection (§11.10): the fault types, their JSON form, and the queue that API requests
//! consume after the pipeline's authentication steps.

use crate::config::{ConfigError, bool_, members, string, u64_};
use crate::json::Value;

/// A queued fault: the next `count` API requests for `method` (`"*"` = any method) that pass
/// authentication get `kind` instead of (or on top of) the normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The API method it applies to, or `"*"` for every method.
    pub method: String,
    /// How many matching requests consume it (0 = the fault is ignored).
    pub count: u32,
    /// What happens.
    pub kind: FaultKind,
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer `{"status":<status>}` with HTTP 200; the method does not run (no row stored).
    Status(String),
    /// Answer with this HTTP status and `body` (empty when `None`). The method does not run,
    /// unless `then_succeed`: then it runs first (the row is stored), as when a proxy answers
    /// 502/504 after VoIP.ms already carried the request out.
    HttpStatus {
        /// The HTTP status code (codes unknown to `http-types` are sent as 500).
        code: u16,
        /// The body, sent as `text/html`.
        body: Option<String>,
        /// Run the method before answering with the error.
        then_succeed: bool,
    },
    /// Answer HTTP 200 with this non-JSON body and `Content-Type: text/html`.
    NonJson(String),
    /// Answer `{}` (no `status`) with HTTP 200.
    NoStatus,
    /// Answer late. With `then_succeed: false` the method runs after the delay, and only if the
    /// client is still connected (a client that gave up leaves no row). With
    /// `then_succeed: true` the method runs at once (the row is stored) and the answer is sent
    /// after the delay, whether or not the client still waits.
    Delay {
        /// The delay in milliseconds.
        ms: u64,
        /// Run the method at once instead of after the delay.
        then_succeed: bool,
    },
    /// Drop the TCP connection without answering. With `then_succeed`, the method runs first
    /// (the row is stored).
    CloseConnection {
        /// Run the method before dropping the connection.
        then_succeed: bool,
    },
}

impl Fault {
    /// A fault of any kind.
    pub fn new(method: &str, count: u32, kind: FaultKind) -> Fault {
        Fault { method: method.to_string(), count, kind }
    }

    /// `{"status":status}` for the next `count` calls of `method`.
    pub fn status(method: &str, count: u32, status: &str) -> Fault {
        Fault::new(method, count, FaultKind::Status(status.to_string()))
    }

    /// An HTTP status with an empty body.
    pub fn http_status(method: &str, count: u32, code: u16) -> Fault {
        Fault::new(method, count, FaultKind::HttpStatus { code, body: None, then_succeed: false })
    }

    /// An HTTP status with an empty body, answered after the method ran (the row is stored).
    pub fn http_status_after_success(method: &str, count: u32, code: u16) -> Fault {
        Fault::new(method, count, FaultKind::HttpStatus { code, body: None, then_succeed: true })
    }

    /// HTTP 200 with a non-JSON (HTML) body.
    pub fn non_json(method: &str, count: u32, body: &str) -> Fault {
        Fault::new(method, count, FaultKind::NonJson(body.to_string()))
    }

    /// HTTP 200 with `{}`.
    pub fn no_status(method: &str, count: u32) -> Fault {
        Fault::new(method, count, FaultKind::NoStatus)
    }

    /// A late answer; see [`FaultKind::Delay`].
    pub fn delay(method: &str, count: u32, ms: u64, then_succeed: bool) -> Fault {
        Fault::new(method, count, FaultKind::Delay { ms, then_succeed })
    }

    /// A dropped connection; see [`FaultKind::CloseConnection`].
    pub fn close_connection(method: &str, count: u32, then_succeed: bool) -> Fault {
        Fault::new(method, count, FaultKind::CloseConnection { then_succeed })
    }

    /// Does this fault apply to `method`?
    pub(crate) fn matches(&self, method: &str) -> bool {
        self.method == "*" || self.method == method
    }

    /// The JSON form (as accepted by `POST /_mock/faults`).
    pub(crate) fn to_value(&self) -> Value {
        let kind = match &self.kind {
            FaultKind::Status(s) => Value::object([("status", Value::from(s))]),
            FaultKind::HttpStatus { code, body, then_succeed } => {
                let mut m = vec![("http_status", Value::from(*code))];
                if let Some(b) = body {
                    m.push(("body", Value::from(b)));
                }
                if *then_succeed {
                    m.push(("then_succeed", Value::from(true)));
                }
                Value::object(m)
            }
            FaultKind::NonJson(b) => Value::object([("non_json", Value::from(b))]),
            FaultKind::NoStatus => Value::object([("no_status", Value::from(true))]),
            FaultKind::Delay { ms, then_succeed } => {
                Value::object([("delay_ms", Value::from(*ms)), ("then_succeed", Value::from(*then_succeed))])
            }
            FaultKind::CloseConnection { then_succeed } => {
                Value::object([("close_connection", Value::from(true)), ("then_succeed", Value::from(*then_succeed))])
            }
        };
        Value::object([("method", Value::from(&self.method)), ("count", Value::from(self.count)), ("kind", kind)])
    }

    /// Read `{"method":"sendSMS","count":2,"kind":{"http_status":503}}` (`count` defaults to 1).
    pub(crate) fn from_value(v: &Value, base: &str) -> Result<Fault, ConfigError> {
        let mut method = None;
        let mut count = 1u32;
        let mut kind = None;
        for (key, path, val) in members(v, base)? {
            match key {
                "method" => method = Some(string(val, &path)?),
                "count" => {
                    count = u32::try_from(u64_(val, &path)?)
                        .map_err(|_| ConfigError::Invalid { path: path.clone(), message: "too large".into() })?;
                    if count == 0 {
                        return Err(ConfigError::Invalid { path, message: "must be at least 1".into() });
                    }
                }
                "kind" => kind = Some(kind_from_value(val, &path)?),
                _ => return Err(ConfigError::UnknownKey { path }),
            }
        }
        let missing = |k: &str| ConfigError::MissingKey {
            path: if base.is_empty() { k.to_string() } else { format!("{base}.{k}") },
        };
        let method = method.ok_or_else(|| missing("method"))?;
        if method.is_empty() {
            return Err(ConfigError::Invalid {
                path: "method".into(),
                message: "must be a method name or \"*\"".into(),
            });
        }
        Ok(Fault { method, count, kind: kind.ok_or_else(|| missing("kind"))? })
    }
}

fn kind_from_value(v: &Value, base: &str) -> Result<FaultKind, ConfigError> {
    let mut status = None;
    let mut http_status = None;
    let mut body = None;
    let mut non_json = None;
    let mut no_status = false;
    let mut delay_ms = None;
    let mut close = false;
    let mut then_succeed = false;
    for (key, path, val) in members(v, base)? {
        match key {
            "status" => status = Some(string(val, &path)?),
            "http_status" => {
                let code = u64_(val, &path)?;
                if !(100..=599).contains(&code) {
                    return Err(ConfigError::Invalid {
                        path, message: "must be an HTTP status code (100–599)".into()
                    });
                }
                http_status = Some(code as u16);
            }
            "body" => body = Some(string(val, &path)?),
            "non_json" => non_json = Some(string(val, &path)?),
            "no_status" => no_status = bool_(val, &path)?,
            "delay_ms" => delay_ms = Some(u64_(val, &path)?),
            "close_connection" => close = bool_(val, &path)?,
            "then_succeed" => then_succeed = bool_(val, &path)?,
            _ => return Err(ConfigError::UnknownKey { path }),
        }
    }
    let chosen = [status.is_some(), http_status.is_some(), non_json.is_some(), no_status, delay_ms.is_some(), close]
        .iter()
        .filter(|b| **b)
        .count();
    let invalid = |m: &str| ConfigError::Invalid { path: base.to_string(), message: m.to_string() };
    if chosen != 1 {
        return Err(invalid(
            "give exactly one of status, http_status, non_json, no_status, delay_ms, close_connection",
        ));
    }
    if body.is_some() && http_status.is_none() {
        return Err(invalid("body goes only with http_status"));
    }
    if then_succeed && delay_ms.is_none() && !close && http_status.is_none() {
        return Err(invalid("then_succeed goes only with delay_ms, close_connection or http_status"));
    }
    Ok(if let Some(s) = status {
        FaultKind::Status(s)
    } else if let Some(code) = http_status {
        FaultKind::HttpStatus { code, body, then_succeed }
    } else if let Some(b) = non_json {
        FaultKind::NonJson(b)
    } else if no_status {
        FaultKind::NoStatus
    } else if let Some(ms) = delay_ms {
        FaultKind::Delay { ms, then_succeed }
    } else {
        FaultKind::CloseConnection { then_succeed }
    })
}

/// Take one use of the first queued fault that matches `method`.
pub(crate) fn consume(queue: &mut Vec<Fault>, method: &str) -> Option<FaultKind> {
    let i = queue.iter().position(|f| f.count > 0 && f.matches(method))?;
    let kind = queue[i].kind.clone();
    queue[i].count -= 1;
    if queue[i].count == 0 {
        queue.remove(i);
    }
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Fault, ConfigError> {
        Fault::from_value(&Value::parse(s).unwrap(), "")
    }

    #[test]
    fn json_forms() {
        let cases = [
            (r#"{"method":"sendSMS","count":2,"kind":{"http_status":503}}"#, Fault::http_status("sendSMS", 2, 503)),
            (r#"{"method":"*","kind":{"status":"sms_failed"}}"#, Fault::status("*", 1, "sms_failed")),
            (r#"{"method":"getSMS","kind":{"non_json":"<html>"}}"#, Fault::non_json("getSMS", 1, "<html>")),
            (r#"{"method":"getSMS","kind":{"no_status":true}}"#, Fault::no_status("getSMS", 1)),
            (
                r#"{"method":"sendSMS","kind":{"delay_ms":50,"then_succeed":true}}"#,
                Fault::delay("sendSMS", 1, 50, true),
            ),
            (r#"{"method":"sendSMS","kind":{"close_connection":true}}"#, Fault::close_connection("sendSMS", 1, false)),
            (
                r#"{"method":"sendSMS","kind":{"http_status":502,"body":"<h1>Bad gateway</h1>"}}"#,
                Fault::new(
                    "sendSMS",
                    1,
                    FaultKind::HttpStatus { code: 502, body: Some("<h1>Bad gateway</h1>".into()), then_succeed: false },
                ),
            ),
            (
                r#"{"method":"sendSMS","kind":{"http_status":504,"then_succeed":true}}"#,
                Fault::http_status_after_success("sendSMS", 1, 504),
            ),
        ];
        for (text, want) in cases {
            let f = parse(text).unwrap();
            assert_eq!(f, want, "{text}");
            assert_eq!(Fault::from_value(&f.to_value(), "").unwrap(), want);
        }
        for bad in [
            r#"{"kind":{"no_status":true}}"#,
            r#"{"method":"x","kind":{}}"#,
            r#"{"method":"x","kind":{"status":"a","no_status":true}}"#,
            r#"{"method":"x","kind":{"http_status":42}}"#,
            r#"{"method":"x","kind":{"status":"a","then_succeed":true}}"#,
            r#"{"method":"x","count":0,"kind":{"no_status":true}}"#,
            r#"{"method":"x","kind":{"no_status":true},"extra":1}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn consumed_in_order() {
        let mut q = vec![Fault::status("sendSMS", 2, "a"), Fault::status("*", 1, "b")];
        assert_eq!(consume(&mut q, "getSMS"), Some(FaultKind::Status("b".into())));
        assert_eq!(consume(&mut q, "getSMS"), None);
        assert_eq!(consume(&mut q, "sendSMS"), Some(FaultKind::Status("a".into())));
        assert_eq!(consume(&mut q, "sendSMS"), Some(FaultKind::Status("a".into())));
        assert_eq!(consume(&mut q, "sendSMS"), None);
    }
}
