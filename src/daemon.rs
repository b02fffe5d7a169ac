//! The single event loop: owns the core's [`Gateway`], feeds it one [`Event`] at a time, and
//! carries out the actions it returns.
//!
//! Event sources (the XMPP connection, webhook requests, the spool writer thread, the VoIP.ms
//! worker threads, signals) all push into one bounded channel of [`Event`]s; nothing else is
//! shared between tasks. Blocking work (fsync, ureq) runs on dedicated threads so the loop never
//! waits on a disk or a remote server.

use crate::core::action::{Action, Input, Level, WebhookReply};
use crate::core::config::Config;
use crate::core::gateway::Gateway;
use crate::core::time::Now;
use crate::core::voipms::api::{CallOutcome, Request};
use crate::core::voipms::webhook::InboundMessage;
use crate::logger::{self, wall_ms};
use crate::sd_notify::Notifier;
use crate::spool::{Op, Spool};
use crate::voipms_client::VoipmsClient;
use crate::{webhook, xmpp_conn};
use smol::channel::{Receiver, Sender};
use smol::{Executor, Timer};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// Events queued for the loop before senders wait; bounds memory under load. The queue's room
/// is allocated up front (168 bytes an event), and the loop drains it each turn: four times the
/// webhook connections is plenty.
const EVENT_QUEUE: usize = 1024;
/// A closed XMPP connection gets this long to flush its last bytes before it is cancelled.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);
/// After SIGTERM, give in-flight work this long before exiting anyway (spooled work resumes at
/// the next start).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Everything the loop reacts to.
#[derive(Debug)]
pub enum Event {
    /// Connection `conn` is up; `writer` carries bytes to it.
    XmppConnected {
        /// Connection number.
        conn: u64,
        /// Bytes to write.
        writer: xmpp_conn::Writer,
    },
    /// Connection `conn` could not be made.
    XmppConnectFailed {
        /// Connection number.
        conn: u64,
        /// Why.
        reason: String,
    },
    /// Bytes read from connection `conn`.
    XmppBytes {
        /// Connection number.
        conn: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Connection `conn` ended.
    XmppClosed {
        /// Connection number.
        conn: u64,
        /// Why.
        reason: String,
    },
    /// A webhook request waits for `reply`.
    Webhook {
        /// The parsed message.
        message: InboundMessage,
        /// Where the answer goes.
        reply: Sender<WebhookReply>,
    },
    /// The spool read back records owed to XMPP users (`Op::Page`).
    Paged {
        /// The records, in sequence order, or why they could not be read.
        result: Result<Vec<crate::core::spool_record::Record>, String>,
        /// How many were asked for.
        max: usize,
    },
    /// The spool writer finished a batch.
    Spool {
        /// Ids written.
        ids: Vec<String>,
        /// `Err` if they are not durable.
        result: Result<(), String>,
    },
    /// A VoIP.ms call finished.
    Voipms {
        /// Job number.
        job: u64,
        /// What happened.
        outcome: CallOutcome,
    },
    /// SIGTERM or SIGINT.
    Signal,
    /// `GET /healthz`: what is wrong (nothing: healthy).
    Health {
        /// Where the answer goes.
        reply: Sender<Vec<String>>,
    },
    /// `GET /metrics`: the gateway's part, Prometheus text.
    Metrics {
        /// Where the answer goes.
        reply: Sender<String>,
    },
}

/// Why the daemon could not run.
#[derive(Debug)]
pub enum RunError {
    /// The spool could not be opened.
    Spool(crate::spool::SpoolError),
    /// The webhook address could not be bound.
    Bind(String, std::io::Error),
    /// Signal handlers could not be installed.
    Signals(std::io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Spool(e) => write!(f, "cannot open the spool: {e}"),
            RunError::Bind(addr, e) => write!(f, "cannot listen for webhooks on {addr}: {e}"),
            RunError::Signals(e) => write!(f, "cannot install signal handlers: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

fn now() -> Now {
    Now { mono: Instant::now(), wall_ms: wall_ms() }
}

/// 64 random bits for ids and jitter, from the kernel (time and pid if that fails).
fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    let ok =
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes)).is_ok();
    if ok {
        u64::from_le_bytes(bytes)
    } else {
        wall_ms().wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id())
    }
}

/// Panics: one inside a webhook connection unwinds to that connection's `catch_unwind` (a bug in
/// async-h1 or http-types must not take the gateway down); any other is a bug of ours in a state
/// we cannot trust, so the process aborts (the spool keeps everything acknowledged, and the
/// service manager restarts it). The message names the place, never the payload, which could
/// hold request data.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        if webhook::panic_is_contained() {
            logger::line(
                Level::Error,
                &format!(
                    "internal error at {at} while serving a webhook; that connection was closed (please report this bug)"
                ),
            );
        } else {
            let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
            logger::line(
                Level::Error,
                &format!(
                    "internal error at {at} in thread {thread}; stopping, nothing acknowledged is lost (please report this bug)"
                ),
            );
            std::process::abort();
        }
    }));
}

/// Run the gateway until SIGTERM/SIGINT.
pub fn run(config: Config) -> Result<(), RunError> {
    install_panic_hook();
    let listener = std::net::TcpListener::bind(config.webhook.listen)
        .map_err(|e| RunError::Bind(config.webhook.listen.to_string(), e))?;
    let local = listener.local_addr().map_err(|e| RunError::Bind(config.webhook.listen.to_string(), e))?;
    let listener = smol::net::TcpListener::try_from(listener).map_err(|e| RunError::Bind(local.to_string(), e))?;
    let metrics_listener = match &config.metrics {
        None => None,
        Some(m) => {
            let l = std::net::TcpListener::bind(m.listen).map_err(|e| RunError::Bind(m.listen.to_string(), e))?;
            let addr = l.local_addr().map_err(|e| RunError::Bind(m.listen.to_string(), e))?;
            Some((smol::net::TcpListener::try_from(l).map_err(|e| RunError::Bind(addr.to_string(), e))?, addr))
        }
    };
    // After the bind, and under an exclusive lock: a second instance must never touch the
    // first one's spool.
    let opened = Spool::open(Path::new(&config.state_dir)).map_err(RunError::Spool)?;
    for w in &opened.warnings {
        logger::line(Level::Warn, w);
    }
    let signals = async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])
        .map_err(RunError::Signals)?;
    logger::line(Level::Info, &format!("voipms-xmpp {} starting", env!("CARGO_PKG_VERSION")));
    logger::line(Level::Info, &format!("webhook listening on http://{local}{}", config.webhook.path));
    if let Some((_, addr)) = &metrics_listener {
        logger::line(Level::Info, &format!("health and metrics on http://{addr}/healthz and /metrics"));
    }

    let ex = Arc::new(Executor::new());
    let (events_tx, events_rx) = smol::channel::bounded::<Event>(EVENT_QUEUE);

    // The spool writer: group commit of everything queued while the previous fsync ran; when
    // idle, it tidies batches that hold delivered records.
    let (spool_tx, spool_rx) = std::sync::mpsc::channel::<Vec<Op>>();
    let spool_thread = {
        let (mut spool, events) = (opened.spool, events_tx.clone());
        std::thread::Builder::new()
            .name("spool".into())
            .spawn(move || {
                loop {
                    // Asleep until work arrives or tidying falls due: an idle gateway's spool
                    // thread never wakes.
                    let next = match spool.tidy_due() {
                        None => spool_rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                        Some(due) => spool_rx.recv_timeout(due.saturating_duration_since(Instant::now())),
                    };
                    let mut ops = match next {
                        Ok(ops) => ops,
                        Err(RecvTimeoutError::Timeout) => {
                            for w in spool.tidy(false) {
                                logger::line(Level::Warn, &w);
                            }
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    };
                    while let Ok(more) = spool_rx.try_recv() {
                        ops.extend(more);
                    }
                    let attempted: Vec<String> = ops
                        .iter()
                        .filter_map(|op| match op {
                            Op::Write(r) => Some(r.id.clone()),
                            Op::Undeliverable(u) => Some(u.record.id.clone()),
                            _ => None,
                        })
                        .collect();
                    let pages: Vec<(u64, usize)> = ops
                        .iter()
                        .filter_map(|op| match op {
                            Op::Page { from_seq, max } => Some((*from_seq, *max)),
                            _ => None,
                        })
                        .collect();
                    let result = spool.apply(ops);
                    // Report the writes first (webhooks wait on them), then the pages read
                    // (they see every write before them), then tidy.
                    let mut reports = Vec::new();
                    match result {
                        Ok(ids) if ids.is_empty() => {}
                        Ok(ids) => reports.push(Event::Spool { ids, result: Ok(()) }),
                        Err(e) => reports.push(Event::Spool { ids: attempted, result: Err(e.to_string()) }),
                    }
                    for (from_seq, max) in pages {
                        let result = spool.page(from_seq, max).map_err(|e| e.to_string());
                        reports.push(Event::Paged { result, max });
                    }
                    if reports.into_iter().any(|event| events.send_blocking(event).is_err()) {
                        break;
                    }
                    for w in spool.tidy(false) {
                        logger::line(Level::Warn, &w);
                    }
                }
                // Shutting down: leave the spool tidy.
                for w in spool.tidy(true) {
                    logger::line(Level::Warn, &w);
                }
            })
            .map_err(|e| {
                RunError::Spool(crate::spool::SpoolError { context: "cannot start the spool thread".into(), source: e })
            })?
    };

    // VoIP.ms workers: ureq blocks, so a small fixed pool of threads.
    let client = VoipmsClient::new(
        &config.voipms.api_url,
        &config.voipms.api_username,
        config.voipms.api_password.clone(),
        config.voipms.timeout,
    );
    let (jobs_tx, jobs_rx) = smol::channel::unbounded::<(u64, Request)>();
    for i in 0..crate::core::outbound::MAX_IN_FLIGHT {
        let (client, jobs, events) = (client.clone(), jobs_rx.clone(), events_tx.clone());
        let _ = std::thread::Builder::new().name(format!("voipms-{i}")).spawn(move || {
            while let Ok((job, request)) = jobs.recv_blocking() {
                let outcome = client.call(&request);
                if events.send_blocking(Event::Voipms { job, outcome }).is_err() {
                    break;
                }
            }
        });
    }

    let seed = random_seed();
    let boot = format!("{:08x}", seed >> 32);
    let mut gateway = Gateway::new(config.clone(), &boot, seed);
    if let Some((from_seq, count, max_seq)) = opened.more {
        gateway.more_in_spool(from_seq, count, max_seq);
    }
    gateway.restore(opened.records, &opened.seen_log, now());

    let settings = webhook::Settings { path: config.webhook.path.clone(), key: config.webhook.key.clone() };
    let webhook_counts = Arc::new(webhook::StatusCounts::default());
    let webhook_task =
        ex.spawn(webhook::serve(ex.clone(), listener, settings, events_tx.clone(), webhook_counts.clone()));
    if let Some((listener, _)) = metrics_listener {
        let extra = webhook::metrics::Extra { webhook: webhook_counts, started_secs: wall_ms() / 1000 };
        ex.spawn(webhook::metrics::serve(ex.clone(), listener, events_tx.clone(), extra)).detach();
    }
    let signal_events = events_tx.clone();
    ex.spawn(async move {
        let mut signals = signals;
        while smol::stream::StreamExt::next(&mut signals).await.is_some() {
            if signal_events.send(Event::Signal).await.is_err() {
                break;
            }
        }
    })
    .detach();

    let mut shell = Shell {
        ex: ex.clone(),
        server: config.xmpp.server.clone(),
        events: events_tx,
        next_conn: 0,
        conn: None,
        conn_task: None,
        closing: Vec::new(),
        writer: None,
        replies: HashMap::new(),
        next_token: 0,
        spool: spool_tx,
        jobs: jobs_tx,
        webhook_task: Some(webhook_task),
        stopped: false,
        notifier: Notifier::from_env(),
        online: false,
        next_watchdog: None,
        hard_stop: None,
    };
    shell.run_loop(&mut gateway, &events_rx);
    smol::block_on(ex.run(async {
        // Let the last stanzas and </stream:stream> reach the server.
        if let Some(task) = shell.conn_task.take() {
            smol::future::or(task, async {
                Timer::after(CLOSE_FLUSH).await;
            })
            .await;
        }
        for task in std::mem::take(&mut shell.closing) {
            task.await;
        }
    }));
    // Let the spool writer finish what it holds: drop the last sender, then wait.
    drop(shell);
    let _ = spool_thread.join();
    logger::line(Level::Info, "stopped");
    Ok(())
}

/// The loop's state outside the core.
struct Shell {
    ex: Arc<Executor<'static>>,
    server: String,
    events: Sender<Event>,
    next_conn: u64,
    /// The current connection's number; events from others are stale.
    conn: Option<u64>,
    conn_task: Option<smol::Task<()>>,
    /// Closed connections still flushing (each bounded by `CLOSE_FLUSH`).
    closing: Vec<smol::Task<()>>,
    writer: Option<xmpp_conn::Writer>,
    replies: HashMap<u64, Sender<WebhookReply>>,
    next_token: u64,
    spool: std::sync::mpsc::Sender<Vec<Op>>,
    jobs: Sender<(u64, Request)>,
    webhook_task: Option<smol::Task<()>>,
    stopped: bool,
    /// systemd's readiness and watchdog notifications.
    notifier: Notifier,
    /// Whether the XMPP stream was up after the last event (for `STATUS=`).
    online: bool,
    /// When `WATCHDOG=1` is due.
    next_watchdog: Option<Instant>,
    /// After SIGTERM: when to stop waiting for in-flight work.
    hard_stop: Option<Instant>,
}

/// How the loop waits. Busy: inside `async_io::block_on`, which polls the sockets on this
/// thread, the fastest under load. Quiet: inside a plain `block_on`, leaving the sockets to
/// async-io's own thread; slower per event, but when this thread wakes async-io's thread does
/// not spin (in Busy it wakes about ten times after each of ours), so an idle gateway lets the
/// CPU sleep (issue 9: a few wakeups a minute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pace {
    Busy,
    Quiet,
}

/// Events this close together make the loop Busy.
const BUSY_EVENTS: u32 = 8;
const BUSY_WITHIN: Duration = Duration::from_millis(100);
/// This long without an event makes it Quiet again.
const QUIET_AFTER: Duration = Duration::from_secs(1);

/// Why [`Shell::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    /// Shutdown is complete.
    Stopped,
    /// Continue at this pace.
    Switch(Pace),
}

impl Shell {
    /// Start the gateway, then run the loop until it stops, switching pace with the load.
    fn run_loop(&mut self, gateway: &mut Gateway, events: &Receiver<Event>) {
        let ex = self.ex.clone();
        let mut pace = Pace::Busy;
        gateway.start(now());
        self.execute(gateway);
        // The spool is open and the webhook port bound (both before the loop).
        self.notifier.ready("serving webhooks; connecting to the XMPP server");
        self.next_watchdog = self.notifier.watchdog_every().map(|every| Instant::now() + every);
        loop {
            let ran = match pace {
                Pace::Busy => smol::block_on(ex.run(self.run(gateway, events, pace))),
                Pace::Quiet => smol::future::block_on(ex.run(self.run(gateway, events, pace))),
            };
            match ran {
                Ran::Stopped => return,
                Ran::Switch(p) => pace = p,
            }
        }
    }

    /// Feed the gateway events until it stops or the pace should change.
    async fn run(&mut self, gateway: &mut Gateway, events: &Receiver<Event>, pace: Pace) -> Ran {
        let watchdog_every = self.notifier.watchdog_every();
        let (mut burst, mut burst_from, mut last_event) = (0u32, Instant::now(), Instant::now());
        // One timer, moved only when the deadline comes *earlier*: each move is a message to
        // the reactor (a timerfd change, and a wakeup of its thread when it is the one
        // waiting), and under load the quiet check moves later with every event. A timer left
        // earlier than the deadline only fires once for nothing; the loop then sets it again.
        let mut timer = Timer::never();
        let mut armed: Option<Instant> = None;
        while !self.stopped {
            let quiet_check = (pace == Pace::Busy).then(|| last_event + QUIET_AFTER);
            let deadline =
                [gateway.poll_timeout(), self.hard_stop, self.next_watchdog, quiet_check].into_iter().flatten().min();
            if let Some(at) = deadline
                && armed.is_none_or(|a| at < a)
            {
                timer.set_at(at);
                armed = Some(at);
            }
            let next = match armed {
                Some(_) => {
                    smol::future::or(async { events.recv().await.ok() }, async {
                        (&mut timer).await;
                        None
                    })
                    .await
                }
                None => events.recv().await.ok(),
            };
            if next.is_none() {
                // The timer fired: it must be set again even for the same deadline.
                armed = None;
            }
            let got_event = next.is_some();
            if let Some(event) = next {
                let t = Instant::now();
                last_event = t;
                if t.duration_since(burst_from) > BUSY_WITHIN {
                    (burst, burst_from) = (0, t);
                }
                burst += 1;
                if matches!(event, Event::Signal) && self.hard_stop.is_none() {
                    self.hard_stop = Some(Instant::now() + SHUTDOWN_GRACE);
                    self.notifier.stopping();
                    // Stop intake first: no new webhook connections.
                    if let Some(task) = self.webhook_task.take() {
                        drop(task);
                    }
                }
                self.event(gateway, event);
            }
            // Checked after every event too: a steady stream of events must not starve the
            // timers (keepalive, reconnect, retries, the shutdown deadline).
            if self.hard_stop.is_some_and(|t| Instant::now() >= t) {
                logger::line(Level::Warn, "in-flight work did not finish in time; it stays spooled for the next start");
                return Ran::Stopped;
            }
            if gateway.poll_timeout().is_some_and(|t| Instant::now() >= t) {
                gateway.handle_timeout(now());
            }
            self.execute(gateway);
            // Fed from here, so that a loop that hangs stops feeding it. Fed early too when the
            // loop is awake anyway (past half the interval), so that it rarely wakes for it.
            if let (Some(at), Some(every)) = (self.next_watchdog, watchdog_every)
                && Instant::now() + every / 2 >= at
            {
                self.notifier.watchdog();
                self.next_watchdog = Some(Instant::now() + every);
            }
            let stats = gateway.stats();
            if stats.online != self.online && self.hard_stop.is_none() {
                self.online = stats.online;
                let xmpp = if stats.online { "connected to" } else { "waiting for" };
                self.notifier.status(&format!("serving webhooks; {xmpp} the XMPP server"));
            }
            match pace {
                Pace::Quiet if burst >= BUSY_EVENTS => return Ran::Switch(Pace::Busy),
                Pace::Busy if !got_event && Instant::now() >= last_event + QUIET_AFTER => {
                    return Ran::Switch(Pace::Quiet);
                }
                _ => {}
            }
        }
        Ran::Stopped
    }

    fn event(&mut self, gateway: &mut Gateway, event: Event) {
        let t = now();
        match event {
            Event::XmppConnected { conn, writer } => {
                if Some(conn) == self.conn {
                    self.writer = Some(writer);
                    gateway.handle(t, Input::XmppConnected);
                }
            }
            Event::XmppConnectFailed { conn, reason } => {
                if Some(conn) == self.conn {
                    self.conn = None;
                    gateway.handle(t, Input::XmppConnectFailed(reason));
                }
            }
            Event::XmppBytes { conn, bytes } => {
                if Some(conn) == self.conn {
                    gateway.handle(t, Input::XmppBytes(&bytes));
                }
            }
            Event::XmppClosed { conn, reason } => {
                if Some(conn) == self.conn {
                    self.conn = None;
                    self.writer = None;
                    gateway.handle(t, Input::XmppClosed(reason));
                }
            }
            Event::Webhook { message, reply } => {
                self.next_token += 1;
                self.replies.insert(self.next_token, reply);
                gateway.handle(t, Input::Webhook { token: self.next_token, message });
            }
            Event::Spool { ids, result } => match result {
                Ok(()) => gateway.handle(t, Input::SpoolSynced(ids)),
                Err(reason) => gateway.handle(t, Input::SpoolFailed { ids, reason }),
            },
            Event::Paged { result, max } => match result {
                Ok(records) => gateway.handle(t, Input::SpoolPaged { records, max }),
                Err(reason) => gateway.handle(t, Input::SpoolPageFailed(reason)),
            },
            Event::Voipms { job, outcome } => gateway.handle(t, Input::VoipmsResult { job, outcome }),
            Event::Signal => gateway.handle(t, Input::Shutdown),
            Event::Health { reply } => {
                let _ = reply.try_send(gateway.health());
            }
            Event::Metrics { reply } => {
                let _ = reply.try_send(gateway.metrics(t));
            }
        }
    }

    fn execute(&mut self, gateway: &mut Gateway) {
        let mut ops = Vec::new();
        let mut log = String::new();
        while let Some(action) = gateway.poll_action() {
            match action {
                Action::XmppConnect => {
                    self.next_conn += 1;
                    self.conn = Some(self.next_conn);
                    self.writer = None;
                    if let Some(old) = self.conn_task.take() {
                        old.detach();
                    }
                    self.conn_task =
                        Some(self.ex.spawn(xmpp_conn::run(self.next_conn, self.server.clone(), self.events.clone())));
                }
                Action::XmppWrite(xml) => {
                    if let (Some(w), Some(conn)) = (&self.writer, self.conn)
                        && w.send(xml.into_bytes()).is_err()
                    {
                        // The server stopped reading: this stream is dead. Nothing more is
                        // written to it; the loop hears it closed and reconnects, and what was
                        // not confirmed goes out again on the next stream.
                        self.writer = None;
                        if let Some(task) = self.conn_task.take() {
                            drop(task);
                        }
                        let reason = format!(
                            "the XMPP server stopped reading ({} MiB waiting to be written)",
                            xmpp_conn::MAX_QUEUED_BYTES >> 20
                        );
                        let _ = self.events.try_send(Event::XmppClosed { conn, reason });
                    }
                }
                Action::XmppClose => {
                    // Dropping the writer flushes and shuts the socket; its events are now stale.
                    // A writer stuck on a peer that stopped reading is cancelled after a moment.
                    self.writer = None;
                    self.conn = None;
                    if let Some(task) = self.conn_task.take() {
                        self.closing.retain(|t| !t.is_finished());
                        self.closing.push(self.ex.spawn(async move {
                            smol::future::or(task, async {
                                Timer::after(CLOSE_FLUSH).await;
                            })
                            .await;
                        }));
                    }
                }
                Action::WebhookReply { token, reply } => {
                    if let Some(tx) = self.replies.remove(&token) {
                        let _ = tx.try_send(reply);
                    }
                }
                Action::SpoolWrite(record) => ops.push(Op::Write(record)),
                Action::SpoolRemove(id) => ops.push(Op::Remove(id)),
                Action::SpoolPage { from_seq, max } => ops.push(Op::Page { from_seq, max }),
                Action::SpoolUndeliverable(u) => ops.push(Op::Undeliverable(u)),
                Action::SeenAppend(lines) => ops.push(Op::SeenAppend(lines)),
                Action::SeenRewrite(text) => ops.push(Op::SeenRewrite(text)),
                Action::VoipmsCall { job, request } => {
                    let _ = self.jobs.try_send((job, request));
                }
                Action::Log(level, message) => logger::format_into(&mut log, level, &message),
                Action::Stopped => self.stopped = true,
            }
        }
        if !ops.is_empty() {
            let _ = self.spool.send(ops);
        }
        logger::write(&log);
    }
}
