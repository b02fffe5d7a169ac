//! The HTTP side (§11.3): the accept loop on a smol executor, async-h1 connections, routing
//! (`/api/v1/rest.php`, `/_mock/…`, `/media/…`, 404 elsewhere), bounded body reading (413 over
//! 8 MiB), parameter decoding (query, urlencoded, multipart; body wins), the `www.` redirect,
//! recording every API call, and carrying out injected faults (late answers with smol timers,
//! dropped connections).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_types::{Request, Response, StatusCode};
use smol::future::FutureExt;
use smol::io::AsyncReadExt;
use smol::net::{TcpListener, TcpStream};
use smol::{Executor, Timer};

use crate::access;
use crate::api::{self, ApiRequest, Outcome};
use crate::control;
use crate::fault::FaultKind;
use crate::form::{self, ContentType};
use crate::json::Value;
use crate::store::{MediaItem, Shared};

/// Largest request body accepted.
pub(crate) const MAX_BODY: usize = 8 * 1024 * 1024;
/// The API path.
pub(crate) const API_PATH: &str = "/api/v1/rest.php";
/// Where the `www.` redirect points.
const REDIRECT_TO: &str = "https://voip.ms/api/v1/rest.php";

/// Accept connections until `stop` closes.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    ex: Arc<Executor<'static>>,
    stop: smol::channel::Receiver<()>,
) {
    let accept_loop = async {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let shared = shared.clone();
                    ex.spawn(connection(stream, peer, shared)).detach();
                }
                Err(e) => {
                    shared.log(|| format!("accept failed: {e}"));
                    // Out of descriptors or similar: do not spin.
                    Timer::after(Duration::from_millis(50)).await;
                }
            }
        }
    };
    let stopped = async {
        // Returns when the sender is dropped.
        let _ = stop.recv().await;
    };
    accept_loop.or(stopped).await;
}

async fn connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let io = stream.clone();
    let result = async_h1::accept(io, move |req| {
        let shared = shared.clone();
        let stream = stream.clone();
        async move { handle(shared, stream, peer, req).await }
    })
    .await;
    // An error here is a malformed request, a client that went away, or a deliberate
    // close_connection fault: in every case the connection is simply dropped.
    drop(result);
}

fn text(status: StatusCode, mime: &str, body: impl Into<http_types::Body>) -> Response {
    let mut res = Response::new(status);
    res.set_body(body);
    res.insert_header("Content-Type", mime);
    res
}

/// An `application/json` answer.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    text(status, "application/json", body.to_json())
}

fn not_found() -> Response {
    text(StatusCode::NotFound, "text/plain; charset=utf-8", "Not Found")
}

/// `s` with every byte outside visible ASCII percent-encoded: a client-supplied URL can then
/// be sent as a header value without splitting the response (or upsetting http-types, which
/// refuses non-ASCII values).
fn header_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (0x21..0x7f).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The body, or `None` when it is over [`MAX_BODY`].
async fn read_body(req: &mut Request) -> std::io::Result<Option<Vec<u8>>> {
    if req.len().is_some_and(|n| n > MAX_BODY) {
        return Ok(None);
    }
    let body = req.take_body();
    let mut buf = Vec::new();
    body.take(MAX_BODY as u64 + 1).read_to_end(&mut buf).await?;
    Ok((buf.len() <= MAX_BODY).then_some(buf))
}

fn too_large() -> Response {
    let mut res = text(StatusCode::PayloadTooLarge, "text/plain; charset=utf-8", "Request body over 8 MiB");
    res.insert_header("Connection", "close");
    res
}

async fn handle(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    mut req: Request,
) -> http_types::Result<Response> {
    let path = req.url().path().to_string();
    if path == API_PATH {
        return api_endpoint(shared, stream, peer, req).await;
    }
    if path == "/_mock" || path.starts_with("/_mock/") {
        let method = req.method().to_string();
        let query = req.url().query().unwrap_or("").to_string();
        let Some(body) = read_body(&mut req).await? else {
            return Ok(too_large());
        };
        let (status, value) = smol::unblock(move || control::handle(&shared, &method, &path, &query, &body)).await;
        return Ok(json(status, &value));
    }
    if path.starts_with("/media/") {
        let item = shared.lock().media.get(&path).cloned();
        return Ok(match item {
            Some(MediaItem::Data { mime, bytes }) => text(StatusCode::Ok, &mime, bytes),
            Some(MediaItem::Redirect(url)) => {
                let mut res = Response::new(StatusCode::Found);
                res.insert_header("Location", header_safe(&url).as_str());
                res
            }
            None => not_found(),
        });
    }
    Ok(not_found())
}

/// Resolves when the client has closed its side (or the socket failed). If the client sends
/// more bytes instead (pipelining), that cannot be told apart, and this never resolves.
async fn client_gone(stream: &TcpStream) {
    let mut buf = [0u8; 1];
    match stream.peek(&mut buf).await {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending::<()>().await,
    }
}

async fn api_endpoint(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    mut req: Request,
) -> http_types::Result<Response> {
    let http_method = req.method().to_string();
    let host = req.header("Host").map(|h| h.last().as_str().to_ascii_lowercase()).unwrap_or_default();
    let content_type = req.header("Content-Type").map(|h| ContentType::parse(h.last().as_str()));
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in form::parse_urlencoded(req.url().query().unwrap_or("")) {
        params.insert(k, v);
    }
    let Some(body) = read_body(&mut req).await? else {
        return Ok(too_large());
    };
    let mut encoding = "query";
    if http_method == "POST" {
        let body_params = match content_type.as_ref().map(|c| c.essence.as_str()) {
            Some("application/x-www-form-urlencoded") => {
                encoding = "urlencoded";
                form::parse_urlencoded(&String::from_utf8_lossy(&body))
            }
            Some("multipart/form-data") => {
                encoding = "multipart";
                let boundary = content_type.as_ref().and_then(|c| c.param("boundary")).unwrap_or("");
                form::parse_multipart(&body, boundary)
            }
            _ if body.is_empty() => Vec::new(),
            _ => {
                encoding = "other";
                Vec::new()
            }
        };
        for (k, v) in body_params {
            params.insert(k, v);
        }
    }
    let client_ip = access::normalise(peer.ip());
    let ip_text = client_ip.to_string();
    let record = |status: &str, response: &str| -> u64 {
        let seq = shared.lock().record_call(&http_method, encoding, &ip_text, &params, status, response);
        shared.changed.notify_all();
        shared.log(|| {
            format!(
                "{http_method} {} from {ip_text} -> {}",
                // Client-supplied text: escaped so it cannot forge log lines.
                params.get("method").map_or("(no method)".to_string(), |m| m.escape_debug().to_string()),
                status.escape_debug()
            )
        });
        seq
    };

    if shared.lock().options.www_redirect && host.starts_with("www.") {
        record("http_301", "");
        let mut res = Response::new(StatusCode::MovedPermanently);
        res.insert_header("Location", REDIRECT_TO);
        return Ok(res);
    }

    let api_req = ApiRequest { http_method: http_method.clone(), client_ip, params: params.clone() };
    let outcome = api::pipeline(&mut shared.lock(), &api_req);
    let kind = match outcome {
        Outcome::Answer(v) => {
            record(&api::status_of(&v), &v.to_json());
            return Ok(json(StatusCode::Ok, &v));
        }
        Outcome::Fault(kind) => kind,
    };
    match kind {
        FaultKind::Status(s) => {
            let v = api::status(&s);
            record(&s, &v.to_json());
            Ok(json(StatusCode::Ok, &v))
        }
        FaultKind::HttpStatus { code, body, then_succeed } => {
            if then_succeed {
                api::run_method(&mut shared.lock(), &api_req);
            }
            let body = body.unwrap_or_default();
            record(&format!("http_{code}"), &body);
            let status = StatusCode::try_from(code).unwrap_or(StatusCode::InternalServerError);
            Ok(text(status, "text/html; charset=utf-8", body))
        }
        FaultKind::NonJson(body) => {
            record("non_json", &body);
            Ok(text(StatusCode::Ok, "text/html; charset=utf-8", body))
        }
        FaultKind::NoStatus => {
            let v = Value::Object(Vec::new());
            record("no_status", &v.to_json());
            Ok(json(StatusCode::Ok, &v))
        }
        FaultKind::Delay { ms, then_succeed: true } => {
            let v = api::run_method(&mut shared.lock(), &api_req);
            record(&api::status_of(&v), &v.to_json());
            Timer::after(Duration::from_millis(ms)).await;
            Ok(json(StatusCode::Ok, &v))
        }
        FaultKind::Delay { ms, then_succeed: false } => {
            let seq = record("delayed", "");
            let gone = async {
                client_gone(&stream).await;
                true
            }
            .or(async {
                Timer::after(Duration::from_millis(ms)).await;
                false
            })
            .await;
            let update = |status: &str, response: &str| {
                shared.lock().update_call(seq, status, response);
                shared.changed.notify_all();
            };
            if gone {
                update("client_gone", "");
                return Err(http_types::Error::from_str(
                    StatusCode::RequestTimeout,
                    "client went away during an injected delay",
                ));
            }
            let v = api::run_method(&mut shared.lock(), &api_req);
            update(&api::status_of(&v), &v.to_json());
            Ok(json(StatusCode::Ok, &v))
        }
        FaultKind::CloseConnection { then_succeed } => {
            if then_succeed {
                api::run_method(&mut shared.lock(), &api_req);
            }
            record("closed", "");
            // An endpoint error makes async-h1 drop the connection without writing anything.
            Err(http_types::Error::from_str(StatusCode::InternalServerError, "injected close_connection fault"))
        }
    }
}
