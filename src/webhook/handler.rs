//! The webhook's request handler: path, method, key, body, and the hand-off to the event loop.
//!
//! `POST {path}?key=KEY` with VoIP.ms's JSON body. Missing key → 401, wrong key → 403 (compared
//! in constant time), wrong path → 404, other methods → 405, bad JSON or numbers → 400, cannot
//! store → 503. `200 ok` only once the message is durably spooled: the handler hands the parsed
//! message to the event loop and waits for its answer. The request reaching here was framed and
//! checked by [`super::guard`]. Nothing here logs a URL (it holds the key) or a body.

use super::{MAX_BODY_BYTES, REPLY_TIMEOUT, Settings};
use crate::core::action::WebhookReply;
use crate::core::voipms::webhook::{self, WebhookEvent};
use crate::daemon::Event;
use http_types::{Request, Response, StatusCode};
use smol::Timer;
use smol::channel::Sender;
use smol::io::AsyncReadExt;

fn reply(status: StatusCode, text: &str) -> http_types::Result<Response> {
    let mut res = Response::new(status);
    res.set_body(text.to_string());
    res.insert_header("Content-Type", "text/plain; charset=utf-8");
    if status != StatusCode::Ok {
        res.insert_header("Connection", "close");
    }
    Ok(res)
}

/// Answer one request.
pub async fn handle(mut req: Request, settings: Settings, events: Sender<Event>) -> http_types::Result<Response> {
    if req.url().path() != settings.path {
        return reply(StatusCode::NotFound, "not found\n");
    }
    if req.method() != http_types::Method::Post {
        let mut res = reply(StatusCode::MethodNotAllowed, "use POST\n")?;
        res.insert_header("Allow", "POST");
        return Ok(res);
    }
    let key = req.url().query_pairs().find(|(k, _)| k == "key").map(|(_, v)| v.into_owned());
    match key {
        None => return reply(StatusCode::Unauthorized, "missing key\n"),
        Some(k) if !settings.key.matches(k.as_bytes()) => {
            return reply(StatusCode::Forbidden, "wrong key\n");
        }
        Some(_) => {}
    }
    if req.len().is_some_and(|n| n > MAX_BODY_BYTES) {
        return reply(StatusCode::PayloadTooLarge, "body too large\n");
    }
    let mut body = Vec::new();
    let read = req.take_body().take(MAX_BODY_BYTES as u64 + 1).read_to_end(&mut body).await;
    if let Err(e) = read {
        return reply(StatusCode::BadRequest, &format!("could not read the body: {e}\n"));
    }
    if body.len() > MAX_BODY_BYTES {
        return reply(StatusCode::PayloadTooLarge, "body too large\n");
    }
    let message = match webhook::parse(&body) {
        Ok(WebhookEvent::Message(m)) => m,
        Ok(WebhookEvent::Ignored(why)) => {
            let why: String = why.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(80).collect();
            crate::logger::line(
                crate::core::action::Level::Info,
                &format!("webhook: not a received message ({why}); acknowledged"),
            );
            return reply(StatusCode::Ok, "ok");
        }
        Err(e) => return reply(StatusCode::BadRequest, &format!("{e}\n")),
    };
    let (tx, rx) = smol::channel::bounded(1);
    if events.send(Event::Webhook { message, reply: tx }).await.is_err() {
        return reply(StatusCode::ServiceUnavailable, "shutting down\n");
    }
    let answer = smol::future::or(async { rx.recv().await.ok() }, async {
        Timer::after(REPLY_TIMEOUT).await;
        None
    })
    .await;
    match answer {
        Some(WebhookReply::Accepted) => reply(StatusCode::Ok, "ok"),
        Some(WebhookReply::Unavailable) | None => {
            reply(StatusCode::ServiceUnavailable, "cannot store the message now; try again later\n")
        }
    }
}
