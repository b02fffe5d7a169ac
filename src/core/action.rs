//! The core's vocabulary with the shell: the [`Input`]s it is fed and the [`Action`]s it asks for.
//!
//! The shell (`daemon.rs`) turns every event (socket bytes, a webhook, a VoIP.ms answer, a spool
//! commit, a timer) into one `Input`, calls the gateway once, then drains and executes the
//! actions in order. Nothing else crosses the boundary.

use crate::core::spool_record::{Record, Undeliverable};
use crate::core::voipms::api::{CallOutcome, Request};
use crate::core::voipms::webhook::InboundMessage;
use std::collections::VecDeque;
use std::fmt;

/// Something that happened.
#[derive(Debug)]
pub enum Input<'a> {
    /// The TCP connection asked for by [`Action::XmppConnect`] is up.
    XmppConnected,
    /// It could not be made.
    XmppConnectFailed(String),
    /// Bytes read from the XMPP server.
    XmppBytes(&'a [u8]),
    /// The connection closed or failed.
    XmppClosed(String),
    /// A webhook brought a message; answer it with [`Action::WebhookReply`] carrying `token`.
    Webhook {
        /// Identifies the waiting HTTP request.
        token: u64,
        /// The parsed message.
        message: InboundMessage,
    },
    /// These records are durably on disk.
    SpoolSynced(Vec<String>),
    /// The answer to [`Action::SpoolPage`]: the records, in sequence order.
    SpoolPaged {
        /// The records read back.
        records: Vec<Record>,
        /// The `max` asked for (fewer means nothing more waits).
        max: usize,
    },
    /// An [`Action::SpoolPage`] could not be read (why, for the log); it is asked for again
    /// at the next delivery.
    SpoolPageFailed(String),
    /// These records could not be written.
    SpoolFailed {
        /// Record ids.
        ids: Vec<String>,
        /// Why, for the log.
        reason: String,
    },
    /// A VoIP.ms call finished.
    VoipmsResult {
        /// The job of [`Action::VoipmsCall`].
        job: u64,
        /// What happened.
        outcome: CallOutcome,
    },
    /// SIGTERM or SIGINT: finish in-flight work and stop.
    Shutdown,
}

/// Something to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the configured XMPP server.
    XmppConnect,
    /// Write this XML to the XMPP connection.
    XmppWrite(String),
    /// Close the XMPP connection (after writing what is queued).
    XmppClose,
    /// Answer a waiting webhook.
    WebhookReply {
        /// The token from [`Input::Webhook`].
        token: u64,
        /// The answer.
        reply: WebhookReply,
    },
    /// Write (or replace) a record durably; answer with [`Input::SpoolSynced`] or
    /// [`Input::SpoolFailed`].
    SpoolWrite(Box<Record>),
    /// Delete a record.
    SpoolRemove(String),
    /// Read back up to `max` records owed to XMPP users (received messages, bounces and
    /// receipts), in sequence order from `from_seq`; answer with [`Input::SpoolPaged`].
    SpoolPage {
        /// The lowest sequence number wanted.
        from_seq: u64,
        /// How many at most.
        max: usize,
    },
    /// Keep a message the XMPP server refused for the operator (`state_dir/undeliverable/`),
    /// durably; answered like [`Action::SpoolWrite`], with the record's id.
    SpoolUndeliverable(Box<Undeliverable>),
    /// Append these lines to the seen log (`state_dir/seen.log`), before the records written
    /// after this action.
    SeenAppend(String),
    /// Replace the seen log with this text (compaction).
    SeenRewrite(String),
    /// Call VoIP.ms; answer with [`Input::VoipmsResult`].
    VoipmsCall {
        /// Identifies the call.
        job: u64,
        /// What to call.
        request: Request,
    },
    /// Write a log line.
    Log(Level, String),
    /// Shutdown is complete: the process may exit.
    Stopped,
}

/// The answer to a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookReply {
    /// `200 ok`: the message is durably ours.
    Accepted,
    /// `503`: we could not store it; VoIP.ms should keep it.
    Unavailable,
}

/// Log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Needs the operator.
    Error,
    /// Unusual but handled.
    Warn,
    /// Normal events.
    Info,
    /// Details.
    Debug,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        })
    }
}

/// The queue of actions the gateway has produced and the shell has not yet drained.
pub type Outbox = VecDeque<Action>;

/// Queue a log line.
pub fn log(out: &mut Outbox, level: Level, message: impl Into<String>) {
    out.push_back(Action::Log(level, message.into()));
}
