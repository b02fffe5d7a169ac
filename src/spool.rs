//! The durable spool on disk: the only module that writes message state to files.
//!
//! Layout under `state_dir` (created with mode 0700, each new directory synced with its parent):
//! - `spool/new/NNNNNNNNNNNNNNNN.batch`: committed batches, one record per line
//!   (`core::spool_record::encode_line`);
//! - `spool/tmp/`: a batch being written; never read back;
//! - `unrouted/ID.json`: messages for DIDs nobody maps, one file each, for the operator;
//! - `undeliverable/ID.json`: received messages the XMPP server refused to deliver, likewise;
//! - `corrupt/`: files set aside at start because they were damaged or half-written.
//!
//! Group commit: a batch holds every record written since the last commit, and is made durable
//! with one write, one `fsync`, one `rename` and one `fsync` of the directory (maildir(5)
//! discipline, applied to many records at once). Only then are the records reported synced and
//! the webhooks answered. A record leaves by rewriting its batch without it (same
//! write/fsync/rename) or unlinking the batch when nothing in it is live. When two copies of a
//! record exist after a crash, the higher `rev` wins.

use crate::core::spool_record::{Kind, Record, Undeliverable, decode_line, encode_line};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
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
    /// Live records, in acceptance order.
    pub records: Vec<Record>,
    /// Problems found and handled (files set aside), for the log.
    pub warnings: Vec<String>,
    /// The seen log's text (`core::seen`).
    pub seen_log: String,
}

/// The spool.
#[derive(Debug)]
pub struct Spool {
    new_dir: PathBuf,
    tmp_dir: PathBuf,
    unrouted_dir: PathBuf,
    undeliverable_dir: PathBuf,
    /// Record id → (batch number, rev) of its live copy.
    index: HashMap<String, (u64, u32)>,
    /// Batch number → ids whose live copy it holds.
    batches: BTreeMap<u64, HashSet<String>>,
    next_batch: u64,
    /// Batches holding dead records, since when.
    dirty: BTreeMap<u64, Instant>,
    /// Batches with nothing live, to unlink.
    dead: BTreeSet<u64>,
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

/// How long a batch may keep dead records before it is rewritten. Delivery is confirmed in
/// acceptance order, so a batch's records usually all die within milliseconds of each other and
/// the batch is unlinked whole; waiting saves rewriting it for each of them. A crash within this
/// window can deliver those records once more, never lose one.
pub const TIDY_AFTER: Duration = Duration::from_secs(1);

const LEFT_BEHIND: &str =
    "could not remove delivered messages from the spool (they may be delivered again after a restart)";

/// Create `path` and whatever of it is missing (mode 0700), durably: each new directory and the
/// directory holding its entry are synced, so that a power cut after the first messages were
/// acknowledged into `spool/new` cannot take the directory (and them) away.
fn mkdir(path: &Path) -> Result<(), SpoolError> {
    let created = create_dirs(path)?;
    for dir in dirs_to_sync(&created) {
        sync_dir(&dir)?;
    }
    Ok(())
}

/// Create `path` and its missing ancestors, mode 0700. Returns the directories this call
/// created, outermost first.
fn create_dirs(path: &Path) -> Result<Vec<PathBuf>, SpoolError> {
    let mut missing = Vec::new();
    let mut p = path;
    while !p.exists() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => break,
        }
    }
    missing.reverse();
    let mut created = Vec::with_capacity(missing.len());
    for dir in missing {
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => created.push(dir),
            // Made meanwhile by someone else, who is responsible for syncing it.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(SpoolError { context: format!("cannot create \"{}\"", dir.display()), source: e }),
        }
    }
    Ok(created)
}

/// The directories to fsync after creating `created` (outermost first): each new directory, and
/// the one holding its entry, innermost first and each once (the parent of a new directory is
/// the previous new one, or the directory that already existed).
fn dirs_to_sync(created: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = created.iter().rev().cloned().collect();
    if let Some(outermost) = created.first() {
        let parent = match outermost.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        dirs.push(parent);
    }
    dirs
}

fn sync_dir(path: &Path) -> Result<(), SpoolError> {
    ctx(File::open(path).and_then(|d| d.sync_all()), || format!("cannot sync directory \"{}\"", path.display()))
}

/// Write `data` to `tmp`, fsync it, and rename it to `dest` (the directory is synced by the caller).
fn write_durably(tmp: &Path, dest: &Path, data: &[u8]) -> Result<(), SpoolError> {
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(tmp, dest)
    };
    let result = ctx(write(), || format!("cannot write \"{}\"", dest.display()));
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

fn batch_name(n: u64) -> String {
    format!("{n:016}.batch")
}

impl Spool {
    /// Open (creating) the spool under `state_dir` and read what it holds.
    pub fn open(state_dir: &Path) -> Result<Opened, SpoolError> {
        mkdir(state_dir)?;
        // One gateway per state_dir: two would overwrite each other's batches.
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
        let spool_dir = state_dir.join("spool");
        let new_dir = spool_dir.join("new");
        let tmp_dir = spool_dir.join("tmp");
        let unrouted_dir = state_dir.join("unrouted");
        let undeliverable_dir = state_dir.join("undeliverable");
        let corrupt_dir = state_dir.join("corrupt");
        for d in [&spool_dir, &new_dir, &tmp_dir, &unrouted_dir, &undeliverable_dir] {
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

        // A batch in tmp/ was never renamed into new/, so it was never acknowledged.
        for entry in ctx(fs::read_dir(&tmp_dir), || format!("cannot list \"{}\"", tmp_dir.display()))? {
            let path = ctx(entry, || "cannot list the spool".into())?.path();
            set_aside(&path, "a half-written spool file was found", &mut warnings)?;
        }

        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        for entry in ctx(fs::read_dir(&new_dir), || format!("cannot list \"{}\"", new_dir.display()))? {
            let path = ctx(entry, || "cannot list the spool".into())?.path();
            let number = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".batch"))
                .and_then(|n| n.parse::<u64>().ok());
            match number {
                Some(n) => names.push((n, path)),
                None => set_aside(&path, "an unknown file was in the spool", &mut warnings)?,
            }
        }
        names.sort();

        let (best, damaged) = read_batches(&names)?;
        for n in damaged {
            // Keep a copy of the damaged file for the operator; its good lines are live.
            let path = new_dir.join(batch_name(n));
            let copy = corrupt_dir.join(format!("{}-{}", std::process::id(), batch_name(n)));
            mkdir(&corrupt_dir)?;
            ctx(fs::copy(&path, &copy), || format!("cannot copy \"{}\" aside", path.display()))?;
            warnings.push(format!(
                "a damaged spool file was found: its readable messages were kept and a copy is in \"{}\"",
                copy.display()
            ));
        }

        let mut spool = Spool {
            next_batch: names.last().map_or(1, |(n, _)| n + 1),
            new_dir,
            tmp_dir,
            unrouted_dir,
            undeliverable_dir,
            index: HashMap::new(),
            batches: names.iter().map(|(n, _)| (*n, HashSet::new())).collect(),
            dirty: BTreeMap::new(),
            dead: BTreeSet::new(),
            seen_path: state_dir.join("seen.log"),
            seen_file: None,
            seen_unsynced: None,
            _lock: lock,
            warnings: Vec::new(),
        };
        let mut records = Vec::with_capacity(best.len());
        for (id, (n, record)) in best {
            spool.index.insert(id.clone(), (n, record.rev));
            spool.batches.entry(n).or_default().insert(id);
            records.push(record);
        }
        records.sort_by_key(|r| r.seq);
        // Batches holding no live record (all superseded or damaged) can go; so can duplicates.
        let touched: Vec<u64> = spool.batches.keys().copied().collect();
        if let Err(e) = spool.compact(&touched) {
            warnings.push(format!("could not tidy the spool: {e}"));
        }
        let seen_log = match fs::read(&spool.seen_path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(SpoolError {
                    context: format!("cannot read \"{}\"", spool.seen_path.display()),
                    source: e,
                });
            }
        };
        Ok(Opened { seen_log, spool, records, warnings })
    }

    /// Apply a group of operations. Returns the ids written, all of which are durably on disk
    /// when this returns `Ok`. Removals take effect on disk in [`Spool::tidy`].
    pub fn apply(&mut self, ops: Vec<Op>) -> Result<Vec<String>, SpoolError> {
        // Last operation per id wins; keep first-appearance order for the batch file.
        let mut last: HashMap<String, usize> = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            let id = match op {
                Op::Write(r) => &r.id,
                Op::Remove(id) => id,
                Op::Undeliverable(_) | Op::SeenAppend(_) | Op::SeenRewrite(_) => continue,
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
                Op::Remove(_) | Op::Undeliverable(_) => {}
                // Seen lines go first: they describe the records about to be committed.
                Op::SeenAppend(lines) => seen_lines.push_str(lines),
                Op::SeenRewrite(text) => self.seen_rewrite(text)?,
            }
        }

        // Removals first: they hold whatever happens to the writes below.
        let mut touched: Vec<u64> = Vec::new();
        for id in removes {
            if let Some((old, _)) = self.index.remove(&id) {
                if let Some(set) = self.batches.get_mut(&old) {
                    set.remove(&id);
                }
                touched.push(old);
            }
        }
        self.note_touched(std::mem::take(&mut touched));
        let mut unrouted = false;
        let mut batch = String::new();
        for r in &writes {
            if r.kind() == Kind::Unrouted {
                let name = format!("{}.json", safe_name(&r.id));
                let tmp = self.tmp_dir.join(&name);
                write_durably(&tmp, &self.unrouted_dir.join(&name), r.to_json().as_bytes())?;
                unrouted = true;
            } else {
                batch.push_str(&encode_line(r));
            }
        }
        if unrouted {
            sync_dir(&self.unrouted_dir)?;
        }

        if !batch.is_empty() {
            let n = self.next_batch;
            self.next_batch += 1;
            let name = batch_name(n);
            write_durably(&self.tmp_dir.join(&name), &self.new_dir.join(&name), batch.as_bytes())?;
            // The new batch is durable before any older copy of its records can be deleted.
            sync_dir(&self.new_dir)?;
            for r in writes.iter().filter(|r| r.kind() != Kind::Unrouted) {
                self.batches.entry(n).or_default().insert(r.id.clone());
                if let Some((old, _)) = self.index.insert(r.id.clone(), (n, r.rev)) {
                    if let Some(set) = self.batches.get_mut(&old) {
                        set.remove(&r.id);
                    }
                    touched.push(old);
                }
            }
        }
        self.note_touched(touched);
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

    /// Batches that lost records: one with nothing live is unlinked by `tidy` right after the
    /// writer has reported the writes (an unlink is cheap, and the next batch's directory sync
    /// makes it durable); one still partly live is rewritten a little later, once its other
    /// records have usually gone too.
    fn note_touched(&mut self, touched: Vec<u64>) {
        for n in touched {
            if self.batches.get(&n).is_none_or(HashSet::is_empty) {
                self.dead.insert(n);
                self.dirty.remove(&n);
            } else {
                self.dirty.entry(n).or_insert_with(Instant::now);
            }
        }
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

    fn unlink(&mut self, n: u64) -> Result<(), SpoolError> {
        let path = self.new_dir.join(batch_name(n));
        self.batches.remove(&n);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SpoolError { context: format!("cannot remove \"{}\"", path.display()), source: e }),
        }
    }

    /// Remove what `apply` left behind: unlink batches with nothing live, and rewrite those that
    /// have held dead records for longer than [`TIDY_AFTER`] (all of them with `force`). Returns
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
        for n in std::mem::take(&mut self.dead) {
            if let Err(e) = self.unlink(n) {
                warnings.push(format!("{LEFT_BEHIND}: {e}"));
            }
        }
        let due: Vec<u64> =
            self.dirty.iter().filter(|(_, since)| force || since.elapsed() >= TIDY_AFTER).map(|(n, _)| *n).collect();
        for n in &due {
            self.dirty.remove(n);
        }
        if (force || !due.is_empty())
            && let Err(e) = self.compact(&due)
        {
            warnings.push(format!("{LEFT_BEHIND}: {e}"));
        }
        warnings
    }

    /// Rewrite or unlink the given batches so that they hold only their live records.
    fn compact(&mut self, touched: &[u64]) -> Result<(), SpoolError> {
        let mut seen = HashSet::new();
        let mut changed = false;
        for &n in touched {
            if !seen.insert(n) {
                continue;
            }
            let path = self.new_dir.join(batch_name(n));
            let live = self.batches.get(&n).cloned().unwrap_or_default();
            if live.is_empty() {
                self.unlink(n)?;
                changed = true;
                continue;
            }
            let text = ctx(fs::read(&path), || format!("cannot read \"{}\"", path.display()))?;
            let text = String::from_utf8_lossy(&text);
            let mut kept = String::new();
            let mut dropped = false;
            for line in text.lines().filter(|l| !l.is_empty()) {
                let keep =
                    decode_line(line).is_ok_and(|r| live.contains(&r.id) && self.index.get(&r.id) == Some(&(n, r.rev)));
                if keep {
                    kept.push_str(line);
                    kept.push('\n');
                } else {
                    dropped = true;
                }
            }
            if dropped {
                write_durably(&self.tmp_dir.join(batch_name(n)), &path, kept.as_bytes())?;
                changed = true;
            }
        }
        if changed {
            sync_dir(&self.new_dir)?;
        }
        Ok(())
    }

    /// Live records.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the spool holds nothing.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// Read the batch files (in order): the newest revision of each record with the batch that
/// holds it, and the batches with damaged lines.
#[allow(clippy::type_complexity)]
fn read_batches(names: &[(u64, PathBuf)]) -> Result<(HashMap<String, (u64, Record)>, Vec<u64>), SpoolError> {
    let mut best: HashMap<String, (u64, Record)> = HashMap::new();
    let mut damaged = Vec::new();
    for (n, path) in names {
        let bytes = ctx(fs::read(path), || format!("cannot read \"{}\"", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut bad = false;
        for line in text.lines().filter(|l| !l.is_empty()) {
            match decode_line(line) {
                Ok(record) => {
                    if best.get(&record.id).is_none_or(|(_, r)| record.rev >= r.rev) {
                        best.insert(record.id.clone(), (*n, record));
                    }
                }
                Err(_) => bad = true,
            }
        }
        if bad {
            damaged.push(*n);
        }
    }
    Ok((best, damaged))
}

/// The records a start would find in `state_dir`, read without locking or changing anything
/// (for tests and inspection).
pub fn peek(state_dir: &Path) -> Result<Vec<Record>, SpoolError> {
    let new_dir = state_dir.join("spool").join("new");
    let mut names: Vec<(u64, PathBuf)> = Vec::new();
    for entry in ctx(fs::read_dir(&new_dir), || format!("cannot list \"{}\"", new_dir.display()))? {
        let path = ctx(entry, || "cannot list the spool".into())?.path();
        let number = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".batch"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = number {
            names.push((n, path));
        }
    }
    names.sort();
    let mut records: Vec<Record> = read_batches(&names)?.0.into_values().map(|(_, r)| r).collect();
    records.sort_by_key(|r| r.seq);
    Ok(records)
}

/// Record ids are ours (`boot-seq`), but a file name must never escape its directory.
fn safe_name(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::spool_record::{FORMAT_VERSION, Inbound, Unrouted};
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("voipms-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn inbound(seq: u64, rev: u32) -> Record {
        Record {
            v: FORMAT_VERSION,
            id: format!("b-{seq}"),
            seq,
            rev,
            accepted_ms: 1,
            inbound: Some(Inbound {
                user: "alice@example.com".into(),
                contact: "+15557654321".into(),
                did: "5552345678".into(),
                text: format!("text {seq} rev {rev}"),
                media: vec![],
                voipms_id: None,
                mms: false,
                voipms_ms: None,
                group: Vec::new(),
            }),
            outbound: None,
            unrouted: None,
        }
    }

    fn batch_files(dir: &Path) -> usize {
        fs::read_dir(dir.join("spool/new")).unwrap().count()
    }

    #[test]
    fn writes_survive_reopen_in_order() {
        let dir = temp_dir("reopen");
        let mut s = Spool::open(&dir).unwrap().spool;
        let ids = s.apply(vec![Op::Write(Box::new(inbound(2, 0))), Op::Write(Box::new(inbound(1, 0)))]).unwrap();
        assert_eq!(ids, vec!["b-2".to_string(), "b-1".to_string()]);
        s.apply(vec![Op::Write(Box::new(inbound(3, 0)))]).unwrap();
        drop(s); // a restart
        let opened = Spool::open(&dir).unwrap();
        assert!(opened.warnings.is_empty(), "{:?}", opened.warnings);
        assert_eq!(opened.records.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn removal_unlinks_dead_batches_and_rewrites_partly_dead_ones_when_tidying() {
        let dir = temp_dir("remove");
        let mut s = Spool::open(&dir).unwrap().spool;
        s.apply(vec![Op::Write(Box::new(inbound(1, 0))), Op::Write(Box::new(inbound(2, 0)))]).unwrap();
        s.apply(vec![Op::Write(Box::new(inbound(3, 0)))]).unwrap();
        s.apply(vec![Op::Remove("b-1".into())]).unwrap();
        assert_eq!(s.len(), 2);
        // Not yet rewritten: a crash now would bring b-1 back (a duplicate, never a loss).
        assert_eq!(peek(&dir).unwrap().len(), 3);
        assert!(s.tidy(false).is_empty());
        assert_eq!(peek(&dir).unwrap().len(), 3, "not due yet");
        assert!(s.tidy(true).is_empty());
        assert_eq!(peek(&dir).unwrap(), vec![inbound(2, 0), inbound(3, 0)]);
        assert_eq!(batch_files(&dir), 2);
        // A batch whose records are all gone is unlinked at the next tidy, due or not.
        s.apply(vec![Op::Remove("b-3".into())]).unwrap();
        assert!(s.tidy(false).is_empty());
        assert_eq!(batch_files(&dir), 1);
        s.apply(vec![Op::Remove("b-2".into())]).unwrap();
        assert!(s.tidy(false).is_empty());
        assert_eq!(batch_files(&dir), 0);
        assert!(peek(&dir).unwrap().is_empty());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_new_revision_replaces_the_old_one() {
        let dir = temp_dir("rev");
        let mut s = Spool::open(&dir).unwrap().spool;
        s.apply(vec![Op::Write(Box::new(inbound(1, 0))), Op::Write(Box::new(inbound(2, 0)))]).unwrap();
        s.apply(vec![Op::Write(Box::new(inbound(1, 1)))]).unwrap();
        let records = peek(&dir).unwrap();
        assert_eq!(records, vec![inbound(1, 1), inbound(2, 0)]);
        // Write then remove in one group: gone.
        s.apply(vec![Op::Write(Box::new(inbound(3, 0))), Op::Remove("b-3".into())]).unwrap();
        assert_eq!(peek(&dir).unwrap().len(), 2);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn after_a_crash_between_write_and_cleanup_the_higher_rev_wins() {
        let dir = temp_dir("crash");
        let mut s = Spool::open(&dir).unwrap().spool;
        s.apply(vec![Op::Write(Box::new(inbound(1, 0)))]).unwrap();
        // Simulate: the new revision's batch landed but the old batch was not rewritten.
        let line = encode_line(&inbound(1, 3));
        fs::write(dir.join("spool/new").join(batch_name(99)), line).unwrap();
        drop(s);
        let opened = Spool::open(&dir).unwrap();
        assert_eq!(opened.records, vec![inbound(1, 3)]);
        assert_eq!(batch_files(&dir), 1, "the superseded batch is tidied away");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn half_written_and_damaged_files_are_set_aside_not_fatal() {
        let dir = temp_dir("damage");
        let mut s = Spool::open(&dir).unwrap().spool;
        s.apply(vec![Op::Write(Box::new(inbound(1, 0))), Op::Write(Box::new(inbound(2, 0)))]).unwrap();
        fs::write(dir.join("spool/tmp/0000000000000042.batch"), "{\"v\":1,\"id\":\"half").unwrap();
        let path = dir.join("spool/new").join(batch_name(1));
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, format!("{}garbage line\n", text.lines().next().unwrap().to_owned() + "\n")).unwrap();
        drop(s);
        let opened = Spool::open(&dir).unwrap();
        assert_eq!(opened.records, vec![inbound(1, 0)]);
        assert_eq!(opened.warnings.len(), 2, "{:?}", opened.warnings);
        assert_eq!(fs::read_dir(dir.join("corrupt")).unwrap().count(), 2);
        assert_eq!(fs::read_dir(dir.join("spool/tmp")).unwrap().count(), 0);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn unrouted_messages_get_their_own_files() {
        let dir = temp_dir("unrouted");
        let mut s = Spool::open(&dir).unwrap().spool;
        let mut r = inbound(5, 0);
        r.inbound = None;
        r.unrouted = Some(Unrouted {
            from: "+15145551234".into(),
            to: vec!["4385556789".into()],
            text: "hi".into(),
            media: vec![],
            voipms_id: None,
        });
        let ids = s.apply(vec![Op::Write(Box::new(r.clone()))]).unwrap();
        assert_eq!(ids, vec!["b-5".to_string()]);
        let text = fs::read_to_string(dir.join("unrouted/b-5.json")).unwrap();
        assert_eq!(Record::from_json(&text).unwrap(), r);
        assert!(peek(&dir).unwrap().is_empty());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn undeliverable_messages_get_their_own_files() {
        let dir = temp_dir("undeliverable");
        let mut s = Spool::open(&dir).unwrap().spool;
        s.apply(vec![Op::Write(Box::new(inbound(4, 0)))]).unwrap();
        let u = Undeliverable {
            v: FORMAT_VERSION,
            condition: "service-unavailable".into(),
            error_type: "cancel".into(),
            failed_ms: 9,
            record: inbound(4, 0),
        };
        let ids = s.apply(vec![Op::Undeliverable(Box::new(u.clone()))]).unwrap();
        assert_eq!(ids, vec!["b-4".to_string()]);
        assert_eq!(fs::read_to_string(dir.join("undeliverable/b-4.json")).unwrap(), u.to_json());
        assert_eq!(peek(&dir).unwrap().len(), 1, "the spool's copy goes only when the core says so");
        s.apply(vec![Op::Remove("b-4".into())]).unwrap();
        s.tidy(true);
        assert!(peek(&dir).unwrap().is_empty());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_second_spool_on_the_same_state_dir_is_refused() {
        let dir = temp_dir("lock");
        let first = Spool::open(&dir).unwrap();
        let e = Spool::open(&dir).unwrap_err();
        assert!(e.to_string().starts_with("another voipms-xmpp is already using"), "{e}");
        drop(first);
        assert!(Spool::open(&dir).is_ok(), "the lock goes with the process");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn created_directories_and_their_parents_are_synced() {
        // Regression (issue 6, defect 13): a directory created on first start was never synced,
        // so a power cut could lose spool/new after messages were acknowledged into it.
        let root = temp_dir("mkdir");
        fs::create_dir_all(&root).unwrap();
        let deep = root.join("a").join("b").join("c");
        let created = create_dirs(&deep).unwrap();
        assert_eq!(created, vec![root.join("a"), root.join("a/b"), deep.clone()]);
        for d in &created {
            assert_eq!(fs::metadata(d).unwrap().permissions().mode() & 0o777, 0o700, "{}", d.display());
        }
        // Each new directory, then the directory holding its entry, up to the one that existed.
        assert_eq!(dirs_to_sync(&created), vec![deep.clone(), root.join("a/b"), root.join("a"), root.clone()]);
        assert!(create_dirs(&deep).unwrap().is_empty(), "nothing new: nothing to sync");
        assert!(dirs_to_sync(&[]).is_empty());
        assert_eq!(dirs_to_sync(&[PathBuf::from("state")]), vec![PathBuf::from("state"), PathBuf::from(".")]);
        // A first start creates the whole tree.
        let state = root.join("state");
        Spool::open(&state).unwrap();
        for d in ["spool/new", "spool/tmp", "unrouted", "undeliverable"] {
            assert!(state.join(d).is_dir(), "{d}");
        }
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_read_only_state_dir_is_an_error_not_a_panic() {
        let dir = temp_dir("ro");
        let mut s = Spool::open(&dir).unwrap().spool;
        fs::remove_dir_all(&dir).unwrap();
        let e = s.apply(vec![Op::Write(Box::new(inbound(1, 0)))]).unwrap_err();
        assert!(e.to_string().starts_with("cannot write"), "{e}");
    }
}
