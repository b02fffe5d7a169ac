//! Connections driven through [`memory::Pipe`]: framing, deadlines and containment without a
//! network, with short limits.

use super::guard::{Guarded, Limits};
use super::memory::Pipe;
use super::*;
use crate::core::action::WebhookReply;
use std::time::Duration;

const BODY: &str = r#"{"data":{"payload":{"id":"1","from":{"phone_number":"5559998888"},"to":[{"phone_number":"5552345678"}],"text":"hi"}}}"#;

fn limits() -> Limits {
    Limits {
        idle: Duration::from_millis(300),
        request: Duration::from_millis(300),
        handling: Duration::from_millis(300),
        write: Duration::from_millis(300),
        max_body: MAX_BODY_BYTES,
    }
}

fn settings() -> Settings {
    Settings { path: "/voipms".into(), key: Secret::new("k".into()) }
}

/// Run one connection on `pipe`, with an event loop that accepts every message; returns how it
/// ended, what was written, and how many messages reached the loop.
fn run(pipe: Pipe) -> (Ended, String, usize) {
    let (tx, rx) = smol::channel::bounded::<Event>(16);
    let ended = smol::block_on(async {
        let answering = async {
            let mut n = 0;
            while let Ok(event) = rx.recv().await {
                if let Event::Webhook { reply, .. } = event {
                    n += 1;
                    let _ = reply.send(WebhookReply::Accepted).await;
                }
            }
            n
        };
        let connection = async {
            let ended = run_connection(Guarded::new(pipe.clone(), limits()), settings(), tx).await;
            (ended, 0)
        };
        // The connection owns the only sender: the loop ends when the connection does.
        let (a, b) = smol::future::zip(connection, answering).await;
        (a.0, b)
    });
    (ended.0, String::from_utf8_lossy(&pipe.output()).into_owned(), ended.1)
}

fn post(body: &str, extra: &str) -> String {
    format!("POST /voipms?key=k HTTP/1.1\r\nHost: a\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())
}

#[test]
fn a_webhook_is_answered_and_pipelined_requests_each_get_theirs() {
    let (ended, out, n) = run(Pipe::new(post(BODY, "").as_bytes()));
    assert_eq!(ended, Ended::Closed);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("ok"), "{out}");
    assert_eq!(n, 1);
    let two = format!("{}{}", post(BODY, ""), post(BODY, "Connection: close\r\n"));
    let (_, out, n) = run(Pipe::new(two.as_bytes()));
    assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{out}");
    assert_eq!(n, 2);
}

#[test]
fn every_split_of_the_input_gives_the_same_answer() {
    let input = post(BODY, "Connection: close\r\n");
    let (_, whole, _) = run(Pipe::new(input.as_bytes()));
    for chunk in [1, 2, 3, 7, 100] {
        let (_, split, n) = run(Pipe::new(input.as_bytes()).chunked(chunk));
        let strip = |s: &str| s.lines().filter(|l| !l.starts_with("date:")).collect::<Vec<_>>().join("\n");
        assert_eq!(strip(&split), strip(&whole), "chunks of {chunk}");
        assert_eq!(n, 1);
    }
}

#[test]
fn a_refused_head_gets_its_answer_and_reaches_nobody() {
    let smuggled = format!(
        "POST /voipms?key=k HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nContent-Length: 5\r\n\r\n{BODY}",
        BODY.len()
    );
    let (ended, out, n) = run(Pipe::new(smuggled.as_bytes()));
    assert_eq!(ended, Ended::Refused(400));
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert_eq!(n, 0);
    // A refusal of the second request of a connection: the first was answered.
    let two = format!(
        "{}POST /voipms?key=k HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        post(BODY, "")
    );
    let (ended, out, n) = run(Pipe::new(two.as_bytes()));
    assert_eq!(ended, Ended::Refused(411));
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.contains("HTTP/1.1 411 Length Required\r\n"), "{out}");
    assert_eq!(n, 1);
}

#[test]
fn a_stalled_connection_is_closed_at_its_deadline_though_nothing_polls_it() {
    // The pipe never wakes its reader: only the watchdog can end this.
    for input in [&b""[..], b"POST /voipms?key=k HTTP/1.1\r\nHo", post(BODY, "").as_bytes().split_at(90).0] {
        let started = Instant::now();
        let (ended, out, n) = run(Pipe::stalling(input));
        assert_eq!(ended, Ended::TimedOut, "{input:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(out.is_empty() && n == 0, "{out}");
    }
}

#[test]
fn expect_100_continue_is_answered_here_when_the_body_is_wanted() {
    let head = format!(
        "POST /voipms?key=k HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        BODY.len()
    );
    let (ended, out, _) = run(Pipe::stalling(head.as_bytes()));
    assert_eq!(ended, Ended::TimedOut);
    assert_eq!(out, "HTTP/1.1 100 Continue\r\n\r\n");
    // A client that sends the body anyway gets no interim answer.
    let (_, out, n) = run(Pipe::new(format!("{head}{BODY}").as_bytes()));
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert_eq!(n, 1);
    // A wrong key is refused without asking for the body.
    let wrong = head.replace("key=k", "key=x");
    let (_, out, _) = run(Pipe::stalling(wrong.as_bytes()));
    assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n") && !out.contains("100 Continue"), "{out}");
}

#[test]
fn a_panic_under_a_connection_is_contained_and_flagged() {
    assert!(!panic_is_contained());
    let seen_inside = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = seen_inside.clone();
    let caught = smol::block_on(
        AssertUnwindSafe(Contain(Box::pin(async move {
            flag.store(panic_is_contained(), std::sync::atomic::Ordering::SeqCst);
            panic!("a bug in a dependency");
        })))
        .catch_unwind(),
    );
    assert!(caught.is_err());
    assert!(seen_inside.load(std::sync::atomic::Ordering::SeqCst));
    assert!(!panic_is_contained(), "restored while unwinding");
}
