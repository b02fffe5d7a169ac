//! The health and metrics listener (`metrics.listen`, off unless configured): `GET /healthz`
//! and `GET /metrics`, with the webhook's HTTP machinery (head checks, deadlines, connection
//! table) on an address of its own, never the public webhook port.
//!
//! `/healthz` answers `200 ok` when the XMPP stream is up and the last spool write succeeded,
//! else `503` with the reasons, one per line. `/metrics` is the Prometheus text format: the
//! gateway's counters and gauges (`core::metrics`), the webhook's answers by status, and the
//! process's memory. Both ask the event loop, so an answer also proves the loop is alive.

use super::{Handler, REPLY_TIMEOUT, StatusCounts, serve_with};
use crate::core::metrics::family;
use crate::daemon::Event;
use http_types::{Method, Request, Response, StatusCode};
use smol::channel::Sender;
use smol::net::TcpListener;
use smol::{Executor, Timer};
use std::sync::Arc;

/// What `/metrics` adds to the gateway's part.
#[derive(Debug, Clone)]
pub struct Extra {
    /// The webhook's answers by status.
    pub webhook: Arc<StatusCounts>,
    /// When the process started, Unix seconds.
    pub started_secs: u64,
}

/// Serve `/healthz` and `/metrics` until the task is cancelled.
pub async fn serve(ex: Arc<Executor<'static>>, listener: TcpListener, events: Sender<Event>, extra: Extra) {
    let own = Arc::new(StatusCounts::default());
    let handle: Handler = Arc::new(move |req| Box::pin(handle(req, events.clone(), extra.clone())));
    serve_with(ex, listener, "metrics", handle, own).await;
}

fn text(status: StatusCode, body: String, content_type: &str) -> http_types::Result<Response> {
    let mut res = Response::new(status);
    res.set_body(body);
    res.insert_header("Content-Type", content_type);
    Ok(res)
}

/// Ask the event loop; `None` if it does not answer in time.
async fn ask<T>(events: &Sender<Event>, event: impl FnOnce(Sender<T>) -> Event) -> Option<T> {
    let (tx, rx) = smol::channel::bounded(1);
    events.send(event(tx)).await.ok()?;
    smol::future::or(async { rx.recv().await.ok() }, async {
        Timer::after(REPLY_TIMEOUT).await;
        None
    })
    .await
}

async fn handle(req: Request, events: Sender<Event>, extra: Extra) -> http_types::Result<Response> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.method() != Method::Get && req.method() != Method::Head {
        let mut res = text(StatusCode::MethodNotAllowed, "use GET\n".into(), PLAIN)?;
        res.insert_header("Allow", "GET, HEAD");
        return Ok(res);
    }
    match req.url().path() {
        "/healthz" => match ask(&events, |reply| Event::Health { reply }).await {
            Some(problems) if problems.is_empty() => text(StatusCode::Ok, "ok\n".into(), PLAIN),
            Some(problems) => text(StatusCode::ServiceUnavailable, format!("{}\n", problems.join("\n")), PLAIN),
            None => text(StatusCode::ServiceUnavailable, "the event loop does not answer\n".into(), PLAIN),
        },
        "/metrics" => match ask(&events, |reply| Event::Metrics { reply }).await {
            Some(mut body) => {
                process(&mut body, &extra);
                text(StatusCode::Ok, body, "text/plain; version=0.0.4; charset=utf-8")
            }
            None => text(StatusCode::ServiceUnavailable, "the event loop does not answer\n".into(), PLAIN),
        },
        _ => text(StatusCode::NotFound, "try /healthz or /metrics\n".into(), PLAIN),
    }
}

/// The shell's own figures: webhook answers, memory, start time, version.
fn process(out: &mut String, extra: &Extra) {
    let webhook: Vec<(String, u64)> =
        extra.webhook.snapshot().into_iter().map(|(status, n)| (format!("status=\"{status}\""), n)).collect();
    family(out, "webhook_requests_total", "counter", "Webhook requests answered, by HTTP status.", &webhook);
    if let Some(rss) = resident_bytes() {
        family(out, "resident_memory_bytes", "gauge", "Resident set size of the process.", &[(String::new(), rss)]);
    }
    family(
        out,
        "start_time_seconds",
        "gauge",
        "When the process started, Unix time.",
        &[(String::new(), extra.started_secs)],
    );
    let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
    family(out, "build_info", "gauge", "The running version.", &[(version, 1)]);
}

/// `VmRSS` from `/proc/self/status` (kB there), in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
