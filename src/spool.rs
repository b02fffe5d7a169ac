//! The durable spool on disk: the only module that writes message state to files.
//!
//! Layout under `state_dir` (created with mode 0700, each new directory synced with its parent):
//! - `spool/journal/NNNNNNNNNNNNNNNN.log`: the journal, append-only segments of record lines
//!   (`core::spool_record::encode_line`) and tombstones (`line`), read in number order at start
//!   (`journal`, `replay`);
//! - `spool/tmp/`: a side file being written (below); never read back;
//! - `unrouted/ID.json`: messages for DIDs nobody maps, one file each, for the operator;
//! - `undeliverable/ID.json`: received messages the XMPP server refused to deliver, likewise;
//! - `corrupt/`: files set aside at start because they were damaged or half-written;
//! - `seen.log`: the keys of received messages (`core::seen`), appended to, synced lazily;
//! - `lock`: held (exclusive) for the process's life.
//!
//! Group commit: every record written since the last commit is appended to the active segment in
//! one `write`, made durable by one `fdatasync`; only then are the records reported synced and the
//! webhooks answered. A segment is created, and its directory fsynced, before anything in it is
//! acknowledged. A removal appends a tombstone, made durable by the next commit's `fdatasync` or
//! by `tidy` within [`TIDY_AFTER`]; a tombstone lost in a crash only brings its record back, to be
//! delivered again, never loses one. `tidy` unlinks old segments with nothing live and compacts
//! those with little live (copy forward, `fdatasync`, then unlink). When two copies of a record
//! exist after a crash, the higher `rev` wins.
//!
//! Side files (`unrouted/`, `undeliverable/`, a rewritten `seen.log`) are written whole in
//! `spool/tmp/`, fsynced, renamed into place and their directory fsynced (maildir(5)).
//!
//! The layout before the journal kept batches in `spool/new/*.batch`: `open` reads them, appends
//! their live records to the journal durably, and only then removes them.

mod files;
mod journal;
mod line;
mod replay;
#[cfg(test)]
mod tests;

use crate::core::mailbox::HOLD_MAX;
use crate::core::spool_record::{Kind, Record, Undeliverable};
use files::{mkdir, safe_name, sync_dir, write_durably};
use journal::Journal;
use replay::{LEGACY, Replay, numbered, read_batches};
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A spool operation, in the order the core asked for them.
#[derive(Debug, Clone)]
pub enum Op {
    /// Store a record (new, or a newer revision).
    Write(Box<Record>),
    /// Forget a record.
    Remove(String),
    /// Keep a message the XMPP server refused, in `undeliverable/`.
    Undeliverable(Box<Undeliverable>),
    /// Append lines to the seen log.
    SeenAppend(String),
    /// Replace the seen log.
    SeenRewrite(String),
    /// Read back records owed to XMPP users ([`Spool::page`]), after the rest of the group;
    /// `apply` leaves it to the caller.
    Page {
        /// The lowest sequence number wanted.
        from_seq: u64,
        /// How many at most.
        max: usize,
    },
}

/// A failure to store.
#[derive(Debug)]
pub struct SpoolError {
    /// What we were doing, with the path.
    pub context: String,
    /// The OS error.
    pub source: io::Error,
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for SpoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn ctx<T>(r: io::Result<T>, what: impl FnOnce() -> String) -> Result<T, SpoolError> {
    r.map_err(|source| SpoolError { context: what(), source })
}

/// What was found at start.
#[derive(Debug)]
pub struct Opened {
    /// The spool.
    pub spool: Spool,
    /// Live records, in acceptance order: every one to send to VoIP.ms, and the first
    /// [`HOLD_MAX`] owed to XMPP users.
    pub records: Vec<Record>,
    /// The records owed to XMPP users that `records` leaves out, if any: the sequence number of
    /// the first, how many, and the highest sequence number in the spool (new records must come
    /// after it). They are read back with [`Op::Page`] as the mailbox makes room.
    pub more: Option<(u64, usize, u64)>,
    /// Problems found and handled (files set aside), for the log.
    pub warnings: Vec<String>,
    /// The seen log's text (`core::seen`).
    pub seen_log: String,
}

/// The spool.
#[derive(Debug)]
pub struct Spool {
    journal: Journal,
    tmp_dir: PathBuf,
    unrouted_dir: PathBuf,
    undeliverable_dir: PathBuf,
    /// `state_dir/seen.log`: keys of received messages (see `core::seen`).
    seen_path: PathBuf,
    seen_file: Option<File>,
    /// Appended to since the last fdatasync, since when.
    seen_unsynced: Option<Instant>,
    /// Held for the process's life: an exclusive lock on `state_dir/lock`.
    _lock: File,
    /// Problems that lost nothing, for the next `tidy` to report.
    warnings: Vec<String>,
}

/// How long removals and seen-log lines may wait for a sync, and an old segment holding dead
/// records for a look (unlink or compaction). Delivery is confirmed in acceptance order, so a
/// segment's records usually all die close together; waiting saves copying them one by one. A
/// power cut within this window can deliver those records once more, never lose one.
pub const TIDY_AFTER: Duration = Duration::from_secs(1);

const LEFT_BEHIND: &str =
    "could not remove delivered messages from the spool (they may be delivered again after a restart)";

/// The directories of a spool.
struct Dirs {
    spool: PathBuf,
    journal: PathBuf,
    tmp: PathBuf,
    legacy: PathBuf,
}

impl Dirs {
    fn of(state_dir: &Path) -> Dirs {
        let spool = state_dir.join("spool");
        Dirs { journal: spool.join("journal"), tmp: spool.join("tmp"), legacy: spool.join("new"), spool }
    }
}

impl Spool {
    /// Open (creating) the spool under `state_dir` and read what it holds.
    pub fn open(state_dir: &Path) -> Result<Opened, SpoolError> {
        mkdir(state_dir)?;
        // One gateway per state_dir: two would append to each other's segments.
        let lock_path = state_dir.join("lock");
        let lock =
            ctx(OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(&lock_path), || {
                format!("cannot open \"{}\"", lock_path.display())
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(SpoolError {
                    context: format!("another voipms-xmpp is already using \"{}\"", state_dir.display()),
                    source: io::Error::from(io::ErrorKind::WouldBlock),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(SpoolError { context: format!("cannot lock \"{}\"", lock_path.display()), source: e });
            }
        }
        let dirs = Dirs::of(state_dir);
        let unrouted_dir = state_dir.join("unrouted");
        let undeliverable_dir = state_dir.join("undeliverable");
        let corrupt_dir = state_dir.join("corrupt");
        for d in [&dirs.spool, &dirs.journal, &dirs.tmp, &unrouted_dir, &undeliverable_dir] {
            mkdir(d)?;
        }
        let mut warnings = Vec::new();
        let set_aside = |path: &Path, why: &str, warnings: &mut Vec<String>| -> Result<(), SpoolError> {
            mkdir(&corrupt_dir)?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let dest = corrupt_dir.join(format!("{}-{name}", std::process::id()));
            ctx(fs::rename(path, &dest), || format!("cannot move \"{}\" aside", path.display()))?;
            warnings.push(format!("{why}: \"{}\" was set aside as \"{}\"", path.display(), dest.display()));
            Ok(())
        };
        // A copy of a damaged file for the operator; its good lines are live.
        let copy_aside = |path: &Path, warnings: &mut Vec<String>| -> Result<(), SpoolError> {
            mkdir(&corrupt_dir)?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let copy = corrupt_dir.join(format!("{}-{name}", std::process::id()));
            ctx(fs::copy(path, &copy), || format!("cannot copy \"{}\" aside", path.display()))?;
            warnings.push(format!(
                "a damaged spool file was found: its readable messages were kept and a copy is in \"{}\"",
                copy.display()
            ));
            Ok(())
        };

        // A file in tmp/ was never renamed into place, so it was never acknowledged.
        for entry in ctx(fs::read_dir(&dirs.tmp), || format!("cannot list \"{}\"", dirs.tmp.display()))? {
            let path = ctx(entry, || "cannot list the spool".into())?.path();
            set_aside(&path, "a half-written spool file was found", &mut warnings)?;
        }

        let mut replay = Replay { page_owed: true, ..Replay::default() };
        // The old layout's batches, older than any segment.
        let mut batches = Vec::new();
        let mut legacy_bytes = Vec::new();
        if dirs.legacy.is_dir() {
            let (names, others) = numbered(&dirs.legacy, ".batch")?;
            for path in others {
                set_aside(&path, "an unknown file was in the spool", &mut warnings)?;
            }
            let (bytes, damaged) = read_batches(&mut replay, &names)?;
            for path in damaged {
                copy_aside(&path, &mut warnings)?;
            }
            legacy_bytes = bytes;
            batches = names.into_iter().map(|(_, p)| p).collect();
        }
        let (segments, others) = numbered(&dirs.journal, ".log")?;
        for path in others {
            set_aside(&path, "an unknown file was in the spool", &mut warnings)?;
        }
        let mut ours = Vec::with_capacity(segments.len());
        for (n, path) in segments {
            if n == LEGACY {
                // Never a name of ours (segments start at 1).
                set_aside(&path, "an unknown file was in the spool", &mut warnings)?;
            } else {
                ours.push((n, path));
            }
        }
        let damaged = replay.read_segments(&ours)?;
        for (_, path) in ours.iter().filter(|(n, _)| damaged.contains(n)) {
            copy_aside(path, &mut warnings)?;
        }

        let (mut journal, mut records) = Journal::new(dirs.journal, (batches, dirs.legacy), replay);
        // Nothing is ever appended after damage: a fresh segment, and the damaged ones (and the
        // old layout) copied into it and removed.
        journal.start(&legacy_bytes, &damaged)?;
        drop(legacy_bytes);
        // What is owed to XMPP users is read back from disk, the first page now.
        let (owed, total) = journal.page(0, HOLD_MAX)?;
        let max_seq = journal.max_seq().unwrap_or(0);
        let more = owed.last().filter(|_| total > owed.len()).map(|last| (last.seq + 1, total - owed.len(), max_seq));
        records.extend(owed);
        records.sort_by_key(|r| r.seq);
        let seen_path = state_dir.join("seen.log");
        let seen_log = match fs::read(&seen_path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(SpoolError { context: format!("cannot read \"{}\"", seen_path.display()), source: e });
            }
        };
        let spool = Spool {
            journal,
            tmp_dir: dirs.tmp,
            unrouted_dir,
            undeliverable_dir,
            seen_path,
            seen_file: None,
            seen_unsynced: None,
            _lock: lock,
            warnings: Vec::new(),
        };
        Ok(Opened { seen_log, spool, records, more, warnings })
    }

    /// Read back up to `max` records owed to XMPP users, in sequence order from `from_seq`
    /// (what the mailbox asked for with `Action::SpoolPage`).
    pub fn page(&mut self, from_seq: u64, max: usize) -> Result<Vec<Record>, SpoolError> {
        self.journal.page(from_seq, max).map(|(records, _)| records)
    }

    /// Apply a group of operations. Returns the ids written, all of which are durably on disk
    /// when this returns `Ok`. Removals are appended as tombstones, durable with the next commit
    /// or [`Spool::tidy`].
    pub fn apply(&mut self, ops: Vec<Op>) -> Result<Vec<String>, SpoolError> {
        // Last operation per id wins; keep first-appearance order for the journal.
        let mut last: HashMap<String, usize> = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            let id = match op {
                Op::Write(r) => &r.id,
                Op::Remove(id) => id,
                Op::Undeliverable(_) | Op::SeenAppend(_) | Op::SeenRewrite(_) | Op::Page { .. } => continue,
            };
            last.insert(id.clone(), i);
        }
        let mut written_ids = Vec::new();
        // Messages set aside first, each durable before anything else in the group happens: the
        // core removes such a record from the spool only once its file is reported written.
        let mut set_aside = false;
        for op in &ops {
            if let Op::Undeliverable(u) = op {
                let name = format!("{}.json", safe_name(&u.record.id));
                write_durably(&self.tmp_dir.join(&name), &self.undeliverable_dir.join(&name), u.to_json().as_bytes())?;
                written_ids.push(u.record.id.clone());
                set_aside = true;
            }
        }
        if set_aside {
            sync_dir(&self.undeliverable_dir)?;
        }
        let mut seen_lines = String::new();
        let mut writes: Vec<&Record> = Vec::new();
        let mut removes: Vec<String> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Write(r) => {
                    written_ids.push(r.id.clone());
                    if last.get(&r.id) == Some(&i) {
                        writes.push(r);
                    }
                }
                Op::Remove(id) if last.get(id) == Some(&i) => removes.push(id.clone()),
                Op::Remove(_) | Op::Undeliverable(_) | Op::Page { .. } => {}
                // Seen lines go last: they describe the records about to be committed.
                Op::SeenAppend(lines) => seen_lines.push_str(lines),
                Op::SeenRewrite(text) => self.seen_rewrite(text)?,
            }
        }

        let mut unrouted = false;
        let mut journal_writes = Vec::with_capacity(writes.len());
        for r in writes {
            if r.kind() == Kind::Unrouted {
                let name = format!("{}.json", safe_name(&r.id));
                let tmp = self.tmp_dir.join(&name);
                write_durably(&tmp, &self.unrouted_dir.join(&name), r.to_json().as_bytes())?;
                unrouted = true;
            } else {
                journal_writes.push(r);
            }
        }
        if unrouted {
            sync_dir(&self.unrouted_dir)?;
        }
        let committed = self.journal.commit(&removes, &journal_writes);
        match committed {
            Ok(()) => {}
            Err(e) if journal_writes.is_empty() => self.warnings.push(format!("{LEFT_BEHIND}: {e}")),
            Err(e) => return Err(e),
        }
        // Seen lines last: a cursor or key never reaches the log before what it describes. The
        // records are durable by now, so a failure here is reported, not returned.
        if !seen_lines.is_empty()
            && let Err(e) = self.seen_append(&seen_lines)
        {
            self.warnings
                .push(format!("could not note received messages as seen (a repeat may be delivered again): {e}"));
        }
        Ok(written_ids)
    }

    /// Append to the seen log. Not synced here: a record's own copy of its id covers a crash
    /// until the record is gone, and `tidy` syncs the log within a second.
    fn seen_append(&mut self, lines: &str) -> Result<(), SpoolError> {
        if self.seen_file.is_none() {
            let file = OpenOptions::new().create(true).append(true).mode(0o600).open(&self.seen_path);
            self.seen_file = Some(ctx(file, || format!("cannot open \"{}\"", self.seen_path.display()))?);
        }
        if let Some(f) = self.seen_file.as_mut() {
            ctx(f.write_all(lines.as_bytes()), || format!("cannot write \"{}\"", self.seen_path.display()))?;
            self.seen_unsynced = self.seen_unsynced.or(Some(Instant::now()));
        }
        Ok(())
    }

    fn seen_rewrite(&mut self, text: &str) -> Result<(), SpoolError> {
        self.seen_file = None;
        write_durably(&self.tmp_dir.join("seen.log"), &self.seen_path, text.as_bytes())?;
        sync_dir(self.seen_path.parent().unwrap_or(Path::new(".")))?;
        self.seen_unsynced = None;
        Ok(())
    }

    /// Do the background work `apply` left: sync the seen log and the tombstones appended more
    /// than [`TIDY_AFTER`] ago, rotate a full segment, unlink old segments with nothing live,
    /// and look at those that have held dead records for longer than [`TIDY_AFTER`] (all of them
    /// with `force`): unlinked when nothing in them counts, compacted when little does. Returns
    /// warnings; an error here can only cause a redelivery after a restart, never a loss.
    pub fn tidy(&mut self, force: bool) -> Vec<String> {
        let mut warnings = std::mem::take(&mut self.warnings);
        // The seen log is synced at most once per TIDY_AFTER: not on the webhook's path (a record
        // carries its own id until it is gone, and losing a line only risks a repeat).
        if self.seen_unsynced.is_some_and(|since| force || since.elapsed() >= TIDY_AFTER) {
            if let Some(f) = &self.seen_file
                && let Err(e) = f.sync_data()
            {
                warnings.push(format!("cannot sync \"{}\": {e}", self.seen_path.display()));
            }
            self.seen_unsynced = None;
        }
        warnings.extend(self.journal.tidy(force));
        warnings
    }

    /// When `tidy(false)` next has work to do: the earliest of the sync of the seen log or of
    /// tombstones, a look at a dirty segment, a rotation, an unlink or a warning to report (the
    /// last three are due at once, so the instant may have passed). `None` when nothing is
    /// pending: an idle spool needs no wake-up.
    pub fn tidy_due(&self) -> Option<Instant> {
        let seen = self.seen_unsynced.map(|since| since + TIDY_AFTER);
        let warned = if self.warnings.is_empty() { None } else { Some(Instant::now()) };
        [self.journal.tidy_due(), seen, warned].into_iter().flatten().min()
    }

    /// Rotate the journal at `bytes` instead of 4 MiB.
    #[cfg(test)]
    fn set_segment_bytes(&mut self, bytes: u64) {
        self.journal.set_segment_bytes(bytes);
    }

    /// Live records.
    pub fn len(&self) -> usize {
        self.journal.len()
    }

    /// Whether the spool holds nothing.
    pub fn is_empty(&self) -> bool {
        self.journal.len() == 0
    }
}

/// The records a start would find in `state_dir`, read without locking or changing anything
/// (for tests and inspection).
pub fn peek(state_dir: &Path) -> Result<Vec<Record>, SpoolError> {
    let dirs = Dirs::of(state_dir);
    let mut replay = Replay::default();
    if dirs.legacy.is_dir() {
        read_batches(&mut replay, &numbered(&dirs.legacy, ".batch")?.0)?;
    }
    if dirs.journal.is_dir() {
        let segments: Vec<(u64, PathBuf)> =
            numbered(&dirs.journal, ".log")?.0.into_iter().filter(|(n, _)| *n != LEGACY).collect();
        replay.read_segments(&segments)?;
    }
    let records = Replay::live(replay.records);
    Ok(records)
}
