//! The load generator of the `--prosody` mode: the loads (closed loop over C connections, open
//! loop at R messages/s), the `Target` a load is sent to, and the driving threads.
//!
//! Closed loop: each connection sends its next message when the previous one was answered, until
//! N messages went out in all. Open loop: message i is due at start + i/R whatever the answers; a
//! pool of connections takes the next due message as soon as it is free, and latency is measured
//! from the due time, so a slow answer is not hidden by the sends it delays (no coordinated
//! omission). Messages that went out more than 1 ms after their due time are counted: when there
//! are many, the schedule did not hold.

use crate::c2s::{Inbox, Marker};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    Closed { connections: usize, messages: usize },
    Open { rate: u32, duration: Duration },
}

impl Load {
    /// `closed:C` or `open:R` (messages/s), with the closed loop's N and the open loop's duration.
    pub fn parse(spec: &str, messages: usize, duration: Duration) -> Result<Load, String> {
        let bad = || format!("--load {spec:?}: expected closed:CONNECTIONS or open:RATE");
        let (kind, n) = spec.split_once(':').ok_or_else(bad)?;
        let n: usize = n.parse().map_err(|_| bad())?;
        match kind {
            _ if n == 0 => Err(bad()),
            "closed" => Ok(Load::Closed { connections: n, messages: messages.max(n) }),
            "open" => Ok(Load::Open { rate: n as u32, duration }),
            _ => Err(bad()),
        }
    }

    pub fn total(&self) -> usize {
        match *self {
            Load::Closed { messages, .. } => messages,
            Load::Open { rate, duration } => (rate as f64 * duration.as_secs_f64()).round() as usize,
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Load::Closed { connections, messages } => {
                format!("closed loop, {connections} connections, {messages} messages")
            }
            Load::Open { rate, duration } => {
                format!("open loop, {rate} messages/s for {:.0} s ({} messages)", duration.as_secs_f64(), self.total())
            }
        }
    }

    /// A short name for the summary table.
    pub fn short(&self) -> String {
        match *self {
            Load::Closed { connections, .. } => format!("closed {connections}"),
            Load::Open { rate, .. } => format!("open {rate}/s"),
        }
    }
}

/// Something a load is sent to: the gateway's webhook, mod_voipms's, or the do-nothing
/// component's stream.
pub trait Target: Sync {
    /// A sending connection for lane `lane`. `closed`: the lane waits for each answer (for the
    /// component stream, which has none, for the message's arrival at the client).
    fn connect(&self, lane: u32, closed: bool, inbox: &Arc<Inbox>) -> Result<Box<dyn Conn>, String>;

    /// How many connections an open loop at `rate` messages/s uses.
    fn open_connections(&self, rate: u32) -> usize {
        // Enough for answers of up to 50 ms to keep the schedule.
        (rate as usize / 20).clamp(4, 128)
    }

    /// Whether the answers are HTTP answers (the component stream's are not).
    fn http(&self) -> bool {
        true
    }
}

pub trait Conn: Send {
    /// Send one message and wait for its answer.
    fn send(&mut self, marker: &Marker) -> Result<(), String>;
}

/// What the sending side saw.
#[derive(Default)]
pub struct Sent {
    pub start: Option<Instant>,
    /// Messages answered as accepted.
    pub accepted: usize,
    /// Each accepted message's answer latency (from its send, or its due time in an open loop).
    pub answers: Vec<Duration>,
    pub last_answer: Option<Instant>,
    /// Open loop: messages sent more than 1 ms after their due time, and the largest lag.
    pub late: usize,
    pub max_lag: Duration,
    /// Failed requests (each stops its connection), with the first few reasons.
    pub failed: usize,
    pub errors: Vec<String>,
}

impl Sent {
    fn merge(&mut self, other: Sent) {
        self.accepted += other.accepted;
        self.answers.extend(other.answers);
        self.last_answer = self.last_answer.max(other.last_answer);
        self.late += other.late;
        self.max_lag = self.max_lag.max(other.max_lag);
        self.failed += other.failed;
        for e in other.errors {
            if self.errors.len() < 3 {
                self.errors.push(e);
            }
        }
    }

    pub fn elapsed(&self) -> Duration {
        match (self.start, self.last_answer) {
            (Some(s), Some(l)) => l.saturating_duration_since(s),
            _ => Duration::ZERO,
        }
    }
}

/// Drive `load` (numbered `id`, which every marker carries) at `target`.
pub fn drive(load: &Load, id: u32, target: &dyn Target, inbox: &Arc<Inbox>) -> Result<Sent, String> {
    let (lanes, closed, rate) = match *load {
        Load::Closed { connections, .. } => (connections, true, 0.0),
        Load::Open { rate, .. } => (target.open_connections(rate), false, rate as f64),
    };
    let conns = (0..lanes as u32).map(|lane| target.connect(lane, closed, inbox)).collect::<Result<Vec<_>, _>>()?;
    let total = load.total();
    let next = AtomicUsize::new(0);
    // A short lead, so that every thread is waiting when the first message is due.
    let start = Instant::now() + Duration::from_millis(20);
    let mut sent = Sent { start: Some(start), ..Sent::default() };
    std::thread::scope(|s| {
        let handles: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(lane, mut conn)| {
                let next = &next;
                s.spawn(move || {
                    let mut mine = Sent::default();
                    sleep_until(start);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            break;
                        }
                        let due = if closed {
                            Instant::now()
                        } else {
                            let due = start + Duration::from_secs_f64(i as f64 / rate);
                            sleep_until(due);
                            let lag = Instant::now().saturating_duration_since(due);
                            mine.max_lag = mine.max_lag.max(lag);
                            mine.late += usize::from(lag > Duration::from_millis(1));
                            due
                        };
                        let marker = Marker { load: id, seq: i as u32, lane: lane as u32, sent_us: inbox.micros(due) };
                        match conn.send(&marker) {
                            Ok(()) => {
                                let now = Instant::now();
                                mine.accepted += 1;
                                mine.answers.push(now.saturating_duration_since(due));
                                mine.last_answer = Some(now);
                            }
                            Err(e) => {
                                mine.failed += 1;
                                mine.errors.push(format!("message {i}: {e}"));
                                break;
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        for h in handles {
            sent.merge(h.join().expect("a load thread panicked"));
        }
    });
    sent.answers.sort();
    Ok(sent)
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}
