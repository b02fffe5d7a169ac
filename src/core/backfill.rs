//! Backfill: asking VoIP.ms for received messages that never arrived through the webhook.
//!
//! At start and then every `voipms.backfill_interval_secs`, for each mapped DID, one
//! `getMMS all_messages=1 type=1` (every SMS and MMS received) from the cursor's day to today
//! (voipms.md §6). Rows newer than the cursor (minus a little slack) and older than a grace
//! period (the webhook's own time to arrive) are handed to the gateway, which drops the ones it
//! has seen; rows seen by id are reported first, so that each claims its own webhook message's
//! fingerprint before an unseen identical row is matched. An MMS row without media gets a `getMediaMMS` first (§6.2: lists often omit it).
//! The cursor moves only when every DID answered, so a failed run is simply redone.

use crate::core::action::{Action, Outbox};
use crate::core::phone::Nanp;
use crate::core::time::{Now, eastern_date, parse_eastern};
use crate::core::voipms::api::{self, CallOutcome, Request, Row};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Rows this recent are left for the next run: the webhook may still be on its way.
pub const GRACE_MS: u64 = 2 * 60 * 1000;
/// Rows this much older than the cursor are looked at again (clock skew, rows dated late).
pub const SLACK_MS: u64 = 10 * 60 * 1000;
/// Never further back than this: VoIP.ms refuses ranges over 92 days (`invalid_daterange`), and
/// the seen set ([`crate::core::seen::KEEP_MS`], 35 days) must remember everything looked at.
const MAX_RANGE_DAYS: i64 = 30;
/// A failed run is retried sooner than the interval, but not in a tight loop.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// The text delivered for an MMS that has neither text nor media once VoIP.ms was asked for
/// its media: delivering a note beats both alternatives, dropping it (the user never learns a
/// message came) and holding the run open (VoIP.ms may never provide the media, and the cursor
/// would never move again).
pub const MMS_WITHOUT_CONTENT: &str =
    "[an MMS arrived, but VoIP.ms did not provide its content; ask the sender to send it again]";

/// Whether two VoIP.ms dates name the same time (as text when they do not parse).
fn same_time(a: &str, b: &str) -> bool {
    match (parse_eastern(a.trim()), parse_eastern(b.trim())) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}

/// A received message found by backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The DID it was sent to.
    pub did: Nanp,
    /// The row, with its media.
    pub row: Row,
    /// The row's date as Unix milliseconds.
    pub at_ms: u64,
}

/// What a finished call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A row already delivered (seen by id): it claims its own fingerprint, nothing more.
    Seen {
        /// The DID it was sent to.
        did: Nanp,
        /// The row.
        row: Row,
    },
    /// A message to deliver (if not seen).
    Found(Found),
    /// The run is over; with `complete`, the cursor may move to `until_ms`.
    Done {
        /// Every DID answered.
        complete: bool,
        /// The newest time covered.
        until_ms: u64,
    },
    /// A call failed (for the log).
    Failed(String),
    /// Rows were not used (for the log).
    Skipped(String),
}

#[derive(Debug)]
enum Job {
    List { did: Nanp },
    Media { did: Nanp, row: Row, at_ms: u64 },
}

#[derive(Debug)]
struct Run {
    from_ms: u64,
    until_ms: u64,
    calls_left: usize,
    failed: bool,
}

/// The backfill scheduler.
#[derive(Debug)]
pub struct Backfill {
    interval: Option<Duration>,
    next: Option<Instant>,
    run: Option<Run>,
    jobs: HashMap<u64, Job>,
}

impl Backfill {
    /// A scheduler; `None` turns backfill off.
    pub fn new(interval: Option<Duration>) -> Backfill {
        Backfill { interval, next: None, run: None, jobs: HashMap::new() }
    }

    /// Run as soon as possible (at start).
    pub fn start(&mut self, now: Instant) {
        if self.interval.is_some() {
            self.next = Some(now);
        }
    }

    /// When the next run is due (none while one runs).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.run.is_some() { None } else { self.next }
    }

    /// Whether a run should start now.
    pub fn due(&self, now: Instant) -> bool {
        self.run.is_none() && self.next.is_some_and(|t| now >= t)
    }

    /// Whether `job` is one of ours.
    pub fn owns(&self, job: u64) -> bool {
        self.jobs.contains_key(&job)
    }

    /// Start a run if one is due: one list call per DID, from `cursor_ms`.
    pub fn poll(&mut self, now: Now, dids: &[Nanp], cursor_ms: u64, next_job: &mut u64, out: &mut Outbox) {
        if !self.due(now.mono) || dids.is_empty() {
            return;
        }
        let now_secs = (now.wall_ms / 1000) as i64;
        let oldest = (now_secs - MAX_RANGE_DAYS * 86_400).max(0) as u64 * 1000;
        let from_ms = cursor_ms.saturating_sub(SLACK_MS).max(oldest);
        let until_ms = now.wall_ms.saturating_sub(GRACE_MS);
        let (from, to) = (eastern_date((from_ms / 1000) as i64), eastern_date(now_secs));
        for did in dids {
            *next_job += 1;
            self.jobs.insert(*next_job, Job::List { did: *did });
            out.push_back(Action::VoipmsCall {
                job: *next_job,
                request: Request::Received { did: *did, from: from.clone(), to: to.clone() },
            });
        }
        self.run = Some(Run { from_ms, until_ms, calls_left: dids.len(), failed: false });
    }

    /// A call of ours finished.
    /// `seen` tells rows already delivered, which need no further call.
    pub fn result(
        &mut self,
        job: u64,
        outcome: &CallOutcome,
        now: Now,
        next_job: &mut u64,
        out: &mut Outbox,
        seen: &dyn Fn(&Row) -> bool,
    ) -> Vec<Progress> {
        let Some(job) = self.jobs.remove(&job) else {
            return Vec::new();
        };
        let mut progress = Vec::new();
        let Some(run) = self.run.as_mut() else {
            return progress;
        };
        run.calls_left = run.calls_left.saturating_sub(1);
        match job {
            Job::List { did } => match api::rows(outcome) {
                Ok(rows) if rows.len() >= api::LIST_LIMIT as usize => {
                    // The oldest rows of the range were cut: do not move the cursor past them.
                    run.failed = true;
                    progress.push(Progress::Failed(format!(
                        "backfill for DID {did}: VoIP.ms listed {} messages, its page limit; the oldest may be missing, the run is not counted",
                        rows.len()
                    )));
                }
                Ok(rows) => {
                    let (safe, unsafe_ids): (Vec<Row>, Vec<Row>) =
                        rows.into_iter().partition(|row| api::is_safe_id(&row.id));
                    if !unsafe_ids.is_empty() {
                        progress.push(Progress::Skipped(format!(
                            "backfill for DID {did}: skipped {} message(s) whose VoIP.ms id is not a plain id",
                            unsafe_ids.len()
                        )));
                    }
                    // Rows seen by id come first, whatever their date (the list is newest first):
                    // each claims its own webhook message's fingerprint before any unseen row
                    // could take it for an identical text.
                    let (known, new): (Vec<Row>, Vec<Row>) = safe.into_iter().partition(|row| seen(row));
                    progress.extend(known.into_iter().map(|row| Progress::Seen { did, row }));
                    for row in new {
                        let Some(at) = parse_eastern(&row.date) else {
                            continue;
                        };
                        let at_ms = (at.max(0) as u64) * 1000;
                        if at_ms < run.from_ms || at_ms > run.until_ms {
                            continue;
                        }
                        if row.mms && row.media.is_empty() {
                            *next_job += 1;
                            let request = Request::Media { id: row.id.clone() };
                            self.jobs.insert(*next_job, Job::Media { did, row, at_ms });
                            run.calls_left += 1;
                            out.push_back(Action::VoipmsCall { job: *next_job, request });
                        } else {
                            progress.push(Progress::Found(Found { did, row, at_ms }));
                        }
                    }
                }
                Err(f) => {
                    run.failed = true;
                    progress.push(Progress::Failed(format!("backfill for DID {did} failed: {}", f.status)));
                }
            },
            Job::Media { did, mut row, at_ms } => match api::media(outcome) {
                // An answer dated otherwise is another message (ids may be separate sequences
                // for SMS and MMS): its media are not this row's.
                Ok(media) if media.date.as_deref().is_some_and(|d| !same_time(d, &row.date)) => {
                    progress.push(Progress::Skipped(format!(
                        "backfill for DID {did}: getMediaMMS described another message (its date differs); its media were not used"
                    )));
                    progress.push(Progress::Found(Found { did, row, at_ms }));
                }
                Ok(media) => {
                    row.media = media.urls;
                    progress.push(Progress::Found(Found { did, row, at_ms }));
                }
                // Not an MMS id: an SMS listed with (empty) media columns by `all_messages=1`.
                Err(f) if f.status == "invalid_id" => {
                    row.mms = false;
                    progress.push(Progress::Found(Found { did, row, at_ms }));
                }
                Err(f) => {
                    run.failed = true;
                    progress.push(Progress::Failed(format!("backfill could not fetch an MMS's media: {}", f.status)));
                }
            },
        }
        if run.calls_left == 0 {
            let complete = !run.failed;
            progress.push(Progress::Done { complete, until_ms: run.until_ms });
            self.run = None;
            let wait = match (complete, self.interval) {
                (true, Some(i)) => i,
                (false, Some(i)) => i.min(RETRY_AFTER),
                (_, None) => Duration::MAX,
            };
            self.next = now.mono.checked_add(wait);
        }
        progress
    }
}
