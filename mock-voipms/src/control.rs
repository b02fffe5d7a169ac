//! The control surface (§11.9), mock-only and unauthenticated: the operations shared by the
//! Rust handle and the JSON endpoints under `/_mock/`, and the routing of those endpoints.

use std::sync::Arc;

use http_types::StatusCode;

use crate::clock;
use crate::config::{self, AccountPatch, ConfigError, DidConfig, Options, members, u64_};
use crate::fault::Fault;
use crate::form;
use crate::json::Value;
use crate::numbers;
use crate::push::{self, DeliveryRecord, InboundRequest};
use crate::store::Shared;

// ---- operations (used by `MockVoipms` and by the endpoints) ----

pub(crate) fn inject(shared: &Shared, fault: Fault) {
    if fault.count > 0 {
        shared.lock().faults.push(fault);
    }
}

pub(crate) fn clear_faults(shared: &Shared) {
    shared.lock().faults.clear();
}

pub(crate) fn set_did(shared: &Shared, mut did: DidConfig) -> Result<(), ConfigError> {
    if let Some(n) = numbers::parse_nanp(&did.did, false) {
        did.did = n;
    }
    config::validate_did(&did, "did")?;
    let mut st = shared.lock();
    match st.dids.iter_mut().find(|d| d.did == did.did) {
        Some(slot) => *slot = did,
        None => st.dids.push(did),
    }
    Ok(())
}

pub(crate) fn remove_did(shared: &Shared, did: &str) -> bool {
    let did = numbers::parse_nanp(did, false).unwrap_or_else(|| did.to_string());
    let mut st = shared.lock();
    let before = st.dids.len();
    st.dids.retain(|d| d.did != did);
    st.dids.len() != before
}

pub(crate) fn set_account(shared: &Shared, patch: &AccountPatch) -> Result<(), ConfigError> {
    let mut st = shared.lock();
    st.account = patch.apply(&st.account)?;
    Ok(())
}

pub(crate) fn set_options(shared: &Shared, options: Options) -> Result<(), ConfigError> {
    config::validate_options(&options, "options")?;
    shared.lock().options = options;
    Ok(())
}

/// Move the clock with `f`, then run the retries that fell due. They are taken in the same
/// critical section as the move, so the retry thread (real clock) cannot run them instead and
/// the caller gets every attempt its move caused.
fn move_clock(shared: &Arc<Shared>, f: impl FnOnce(&mut clock::MockClock)) -> Vec<DeliveryRecord> {
    let due = {
        let mut st = shared.lock();
        f(&mut st.clock);
        push::take_due(&mut st)
    };
    shared.retry_cv.notify_all();
    push::run_due(shared, due)
}

pub(crate) fn set_clock(shared: &Arc<Shared>, rfc3339: &str) -> Result<Vec<DeliveryRecord>, clock::ClockError> {
    let ms = clock::parse_rfc3339(rfc3339)?;
    Ok(move_clock(shared, |c| c.set(ms)))
}

pub(crate) fn advance_clock(shared: &Arc<Shared>, secs: u64) -> Vec<DeliveryRecord> {
    let ms = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX / 4);
    move_clock(shared, |c| c.advance(ms))
}

pub(crate) fn reset(shared: &Shared) {
    shared.lock().reset();
    shared.changed.notify_all();
    shared.retry_cv.notify_all();
}

// ---- endpoints ----

fn error(status: StatusCode, message: impl Into<String>) -> (StatusCode, Value) {
    (status, Value::object([("error", Value::from(message.into()))]))
}

fn ok() -> (StatusCode, Value) {
    (StatusCode::Ok, Value::object([("ok", Value::from(true))]))
}

fn bad(e: impl std::fmt::Display) -> (StatusCode, Value) {
    error(StatusCode::BadRequest, e.to_string())
}

fn parse_body(body: &[u8]) -> Result<Value, (StatusCode, Value)> {
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8"))?;
    Value::parse(text).map_err(bad)
}

fn clock_value(shared: &Shared) -> Value {
    let st = shared.lock();
    let now = st.now_ms();
    Value::object([
        ("now", Value::from(clock::rfc3339_utc(now))),
        ("eastern", Value::from(clock::eastern(now).api_format())),
        ("real", Value::from(st.clock.is_real())),
    ])
}

fn records(list: &[DeliveryRecord]) -> Value {
    Value::Array(list.iter().map(DeliveryRecord::to_value).collect())
}

const ROUTES: [&str; 11] = [
    "/_mock/health",
    "/_mock/inbound",
    "/_mock/calls",
    "/_mock/messages",
    "/_mock/deliveries",
    "/_mock/faults",
    "/_mock/clock",
    "/_mock/dids",
    "/_mock/account",
    "/_mock/options",
    "/_mock/reset",
];

/// Answer one control request (blocking: inbound and clock moves wait for deliveries).
pub(crate) fn handle(shared: &Arc<Shared>, method: &str, path: &str, query: &str, body: &[u8]) -> (StatusCode, Value) {
    let result = route(shared, method, path, query, body);
    match result {
        Ok(r) | Err(r) => r,
    }
}

fn route(
    shared: &Arc<Shared>,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> Result<(StatusCode, Value), (StatusCode, Value)> {
    let q = form::parse_urlencoded(query);
    let qget = |name: &str| q.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    Ok(match (method, path) {
        ("GET", "/_mock/health") => ok(),
        ("POST", "/_mock/inbound") => {
            let req = InboundRequest::from_value(&parse_body(body)?).map_err(bad)?;
            let report = push::inbound(shared, &req).map_err(bad)?;
            (StatusCode::Ok, report.to_value())
        }
        ("GET", "/_mock/calls") => {
            let since = match qget("since") {
                None | Some("") => 0,
                Some(s) => s.parse::<u64>().map_err(|_| bad("since must be a call seq number"))?,
            };
            let filter = qget("method").filter(|m| !m.is_empty());
            let st = shared.lock();
            let list = st
                .calls
                .iter()
                .filter(|c| c.seq > since && filter.is_none_or(|m| c.method == m))
                .map(|c| c.to_value())
                .collect();
            (StatusCode::Ok, Value::Array(list))
        }
        ("GET", "/_mock/messages") => {
            let st = shared.lock();
            let list = st.rows.iter().map(|r| r.msg.to_value()).collect();
            (StatusCode::Ok, Value::Array(list))
        }
        ("GET", "/_mock/deliveries") => (StatusCode::Ok, records(&shared.lock().deliveries)),
        ("GET", "/_mock/faults") => {
            let list = shared.lock().faults.iter().map(Fault::to_value).collect();
            (StatusCode::Ok, Value::Array(list))
        }
        ("POST", "/_mock/faults") => {
            let v = parse_body(body)?;
            let faults = match &v {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, f)| Fault::from_value(f, &format!("[{i}]")))
                    .collect::<Result<Vec<_>, _>>(),
                _ => Fault::from_value(&v, "").map(|f| vec![f]),
            }
            .map_err(bad)?;
            let n = faults.len();
            for f in faults {
                inject(shared, f);
            }
            (StatusCode::Ok, Value::object([("ok", Value::from(true)), ("queued", Value::from(n as u64))]))
        }
        ("DELETE", "/_mock/faults") => {
            clear_faults(shared);
            ok()
        }
        ("GET", "/_mock/clock") => (StatusCode::Ok, clock_value(shared)),
        ("POST", "/_mock/clock") => {
            let v = parse_body(body)?;
            let mut set = None;
            let mut advance = None;
            for (key, path, val) in members(&v, "").map_err(bad)? {
                match key {
                    "set" => set = Some(config::string(val, &path).map_err(bad)?),
                    "advance_s" => advance = Some(u64_(val, &path).map_err(bad)?),
                    _ => return Err(bad(ConfigError::UnknownKey { path })),
                }
            }
            let fired = match (set, advance) {
                (Some(s), None) => set_clock(shared, &s).map_err(bad)?,
                (None, Some(n)) if n <= 100 * 366 * 86_400 => advance_clock(shared, n),
                (None, Some(_)) => return Err(bad("advance_s: at most 100 years at a time")),
                _ => return Err(bad("give exactly one of \"set\" and \"advance_s\"")),
            };
            let mut v = clock_value(shared);
            if let Value::Object(m) = &mut v {
                m.insert(0, ("ok".into(), Value::from(true)));
                m.push(("deliveries".into(), records(&fired)));
            }
            (StatusCode::Ok, v)
        }
        ("GET", "/_mock/dids") => {
            let list = shared.lock().dids.iter().map(config::did_to_value).collect();
            (StatusCode::Ok, Value::Array(list))
        }
        ("POST", "/_mock/dids") => {
            let did = config::did_from_value(&parse_body(body)?, "").map_err(bad)?;
            set_did(shared, did).map_err(bad)?;
            ok()
        }
        ("DELETE", "/_mock/dids") => {
            let did = qget("did").ok_or_else(|| bad("give ?did=NUMBER"))?;
            if remove_did(shared, did) {
                ok()
            } else {
                error(StatusCode::NotFound, format!("DID {did:?} is not on the account"))
            }
        }
        ("POST", "/_mock/account") => {
            let current = shared.lock().account.clone();
            let account = config::account_from_value(&parse_body(body)?, "", &current).map_err(bad)?;
            shared.lock().account = account;
            ok()
        }
        ("POST", "/_mock/options") => {
            let current = shared.lock().options.clone();
            let options = config::options_from_value(&parse_body(body)?, "", &current).map_err(bad)?;
            set_options(shared, options).map_err(bad)?;
            ok()
        }
        ("POST", "/_mock/reset") => {
            reset(shared);
            ok()
        }
        _ if ROUTES.contains(&path) => {
            error(StatusCode::MethodNotAllowed, format!("{method} is not supported on {path}"))
        }
        _ => error(StatusCode::NotFound, format!("no control endpoint {path}")),
    })
}
