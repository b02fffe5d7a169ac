//! The journal: append-only segment files `spool/journal/NNNNNNNNNNNNNNNN.log` holding record
//! lines and tombstones (`line`), the index of where each live record's copy is, and the
//! background work that keeps the segments few (rotation, unlinking, compaction).
//!
//! - One active segment is appended to. A group commit is one `write` of all its lines and one
//!   `fdatasync`; a segment is created (and its directory fsynced) before anything is written
//!   to it, at open and when the active one passes [`SEGMENT_BYTES`].
//! - Tombstones are appended without a sync of their own: the next commit's `fdatasync` (or
//!   `tidy`, within [`TIDY_AFTER`]) makes them durable. A lost tombstone brings its record back
//!   after a crash: a redelivery, never a loss.
//! - An old segment with no live record (and no tombstone still needed) is unlinked; one with
//!   few live bytes is compacted: its live lines (and the tombstones still needed) are appended
//!   to the active segment, `fdatasync`ed, and only then is the old segment unlinked. A crash in
//!   between leaves two copies of the same revision, which replay reads as one.
//! - A tombstone is needed while an older segment may hold a copy of its record (each segment
//!   keeps a set of hashes of the ids it holds copies of; a collision only keeps a tombstone
//!   longer). A tombstone whose record was written again later is not carried: the later copy
//!   has a higher `rev` than every earlier one (the core bumps `rev` on every rewrite), and the
//!   higher `rev` wins.

use super::files::sync_dir;
use super::line::encode_tombstone;
use super::replay::{LEGACY, Replay};
use super::{LEFT_BEHIND, SpoolError, TIDY_AFTER, ctx};
use crate::core::spool_record::{Record, decode_line, encode_line};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The active segment is rotated once it passes this size: small enough that compacting an
/// old segment is a short write, large enough that creating segments (a directory fsync each)
/// is rare: about 10,000 received messages.
pub(super) const SEGMENT_BYTES: u64 = 4 << 20;

/// An old segment is compacted once its live lines are at most this fraction (1/N) of its
/// size: copying them is then cheap against the space given back.
const COMPACT_BELOW: u64 = 4;

/// A segment's file name.
pub(super) fn segment_name(n: u64) -> String {
    format!("{n:016}.log")
}

/// A hash of a record id, for the sets of ids a segment holds copies of.
pub(super) fn hash_id(id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// What is known of one segment.
#[derive(Debug, Default)]
pub(super) struct Seg {
    /// Bytes in the file (those written whole).
    pub(super) size: u64,
    /// Live records whose copy is here.
    pub(super) live: usize,
    /// Bytes of their lines.
    pub(super) live_bytes: u64,
    /// Hashes of the ids of every record line here, live or dead.
    pub(super) held: HashSet<u64>,
    /// Ids of the tombstones here.
    pub(super) tombs: Vec<String>,
}

/// Where a live record's copy is.
#[derive(Debug, Clone, Copy)]
struct Live {
    seg: u64,
    off: u64,
    len: u32,
    /// The record's sequence number, and whether it is owed to an XMPP user: what
    /// [`Journal::page`] reads back.
    seq: u64,
    owed: bool,
}

/// The segment being appended to.
#[derive(Debug)]
struct Active {
    n: u64,
    file: File,
    path: PathBuf,
    /// (device, inode) at creation: the file must still be the one at `path`, or the next start
    /// would not read what was acknowledged.
    id: (u64, u64),
}

/// The journal.
#[derive(Debug)]
pub(super) struct Journal {
    dir: PathBuf,
    /// The old layout's batch files and their directory, while they still hold records.
    legacy: Vec<PathBuf>,
    legacy_dir: PathBuf,
    index: HashMap<String, Live>,
    segs: BTreeMap<u64, Seg>,
    active: Option<Active>,
    next: u64,
    /// Old segments that lost records, since when: looked at [`TIDY_AFTER`] later.
    dirty: BTreeMap<u64, Instant>,
    /// Old segments with nothing in them that counts, since when: unlinked at the next tidy.
    dead: BTreeMap<u64, Instant>,
    /// Tombstones appended since the last `fdatasync`, since when.
    unsynced: Option<Instant>,
    /// When the active segment is to be rotated (it passed `segment_bytes`).
    rotate_at: Option<Instant>,
    /// [`SEGMENT_BYTES`], smaller in tests.
    segment_bytes: u64,
    /// Problems that lost nothing, for the next tidy.
    pub(super) warnings: Vec<String>,
}

impl Journal {
    /// The journal that `replay` describes, with no active segment yet ([`Journal::start`]),
    /// and the live records in acceptance order.
    pub(super) fn new(dir: PathBuf, legacy: (Vec<PathBuf>, PathBuf), replay: Replay) -> (Journal, Vec<Record>) {
        let now = Instant::now();
        let mut segs = replay.segs;
        let mut index = HashMap::with_capacity(replay.best.len());
        for (id, b) in replay.best {
            let seg = segs.entry(b.seg).or_default();
            seg.live += 1;
            seg.live_bytes += u64::from(b.len);
            index.insert(id, Live { seg: b.seg, off: b.off, len: b.len, seq: b.seq, owed: b.owed });
        }
        let records = Replay::live(replay.records);
        let next = segs.keys().next_back().map_or(1, |n| n + 1).max(1);
        let mut journal = Journal {
            dir,
            legacy: legacy.0,
            legacy_dir: legacy.1,
            index,
            segs,
            active: None,
            next,
            dirty: BTreeMap::new(),
            dead: BTreeMap::new(),
            unsynced: None,
            rotate_at: None,
            segment_bytes: SEGMENT_BYTES,
            warnings: Vec::new(),
        };
        // Every old segment is looked at once: most of what the last run left is dead.
        let old: Vec<u64> = journal.segs.keys().copied().filter(|&n| n != LEGACY).collect();
        for n in old {
            journal.classify(n, now);
        }
        (journal, records)
    }

    /// Create the active segment, then take the records of `moving` (the old layout's batches,
    /// whose bytes are given, and damaged segments) into it durably, and only then remove them.
    pub(super) fn start(&mut self, legacy_bytes: &[u8], damaged: &[u64]) -> Result<(), SpoolError> {
        self.create()?;
        if self.segs.contains_key(&LEGACY) || self.legacy_dir.exists() {
            self.segs.entry(LEGACY).or_default();
            self.compact(LEGACY, Some(legacy_bytes))?;
        }
        for &n in damaged {
            self.compact(n, None)?;
        }
        Ok(())
    }

    /// Rotate at `bytes` instead of [`SEGMENT_BYTES`].
    #[cfg(test)]
    pub(super) fn set_segment_bytes(&mut self, bytes: u64) {
        self.segment_bytes = bytes;
        if self.active.as_ref().and_then(|a| self.segs.get(&a.n)).is_some_and(|s| s.size >= bytes) {
            self.rotate_at.get_or_insert(Instant::now());
        }
    }

    /// Live records.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// The highest sequence number of a live record.
    pub(super) fn max_seq(&self) -> Option<u64> {
        self.index.values().map(|l| l.seq).max()
    }

    /// The live records owed to XMPP users from sequence number `from_seq` on, in order:
    /// (sequence number, where the line is), at most `max`, and how many there are in all.
    fn owed_from(&self, from_seq: u64, max: usize) -> (Vec<(u64, Live)>, usize) {
        let mut owed: Vec<(u64, Live)> =
            self.index.values().filter(|l| l.owed && l.seq >= from_seq).map(|l| (l.seq, *l)).collect();
        let total = owed.len();
        if owed.len() > max {
            owed.select_nth_unstable_by_key(max, |(seq, _)| *seq);
            owed.truncate(max);
        }
        owed.sort_unstable_by_key(|(seq, _)| *seq);
        (owed, total)
    }

    /// Read back up to `max` live records owed to XMPP users, in sequence order from
    /// `from_seq`, and how many such records there are from there (read or not). A line that
    /// no longer decodes (the disk changed under us) is reported, not returned.
    pub(super) fn page(&mut self, from_seq: u64, max: usize) -> Result<(Vec<Record>, usize), SpoolError> {
        let (wanted, total) = self.owed_from(from_seq, max);
        let mut files: HashMap<u64, File> = HashMap::new();
        let mut records = Vec::with_capacity(wanted.len());
        for (_, live) in wanted {
            let path = self.dir.join(segment_name(live.seg));
            let file = match files.entry(live.seg) {
                std::collections::hash_map::Entry::Occupied(f) => f.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(ctx(File::open(&path), || format!("cannot read \"{}\"", path.display()))?)
                }
            };
            let mut line = vec![0u8; live.len as usize];
            ctx(file.read_exact_at(&mut line, live.off), || format!("cannot read \"{}\"", path.display()))?;
            let text = String::from_utf8_lossy(&line);
            match decode_line(text.trim_end_matches('\n')) {
                Ok(record) => records.push(record),
                Err(e) => self.warnings.push(format!(
                    "a spooled message in \"{}\" no longer reads back ({e}); it stays in the spool",
                    path.display()
                )),
            }
        }
        Ok((records, total))
    }

    /// Forget `id`; whether it had a copy on disk (and so needs a tombstone).
    fn remove(&mut self, id: &str, now: Instant) -> bool {
        match self.index.remove(id) {
            Some(live) => {
                self.lose(live, now);
                true
            }
            None => false,
        }
    }

    /// A record's copy in `live.seg` is no longer live.
    fn lose(&mut self, live: Live, now: Instant) {
        if let Some(seg) = self.segs.get_mut(&live.seg) {
            seg.live = seg.live.saturating_sub(1);
            seg.live_bytes = seg.live_bytes.saturating_sub(u64::from(live.len));
        }
        if self.active.as_ref().is_none_or(|a| a.n != live.seg) {
            self.classify(live.seg, now);
        }
    }

    /// Note an old segment that holds something dead: to unlink now, or to look at later.
    fn classify(&mut self, n: u64, now: Instant) {
        let Some(seg) = self.segs.get(&n) else { return };
        // Once per segment (when its last record goes): are its tombstones still needed?
        if seg.live == 0 && (seg.tombs.is_empty() || self.needed_tombstones(n).is_empty()) {
            self.dirty.remove(&n);
            self.dead.entry(n).or_insert(now);
        } else if seg.live_bytes < seg.size {
            self.dirty.entry(n).or_insert(now);
        }
    }

    /// One group commit: tombstones for `removed`, and the lines of `writes`, in one write;
    /// `fdatasync`ed when there are writes. The removals hold in memory even if the write fails.
    pub(super) fn commit(&mut self, removed: &[String], writes: &[&Record]) -> Result<(), SpoolError> {
        let now = Instant::now();
        let mut buf = String::new();
        let mut tombs = Vec::new();
        for id in removed {
            if self.remove(id, now) {
                buf.push_str(&encode_tombstone(id));
                tombs.push(id.clone());
            }
        }
        let mut placed = Vec::with_capacity(writes.len());
        for r in writes {
            let off = buf.len();
            buf.push_str(&encode_line(r));
            placed.push((off as u64, u32::try_from(buf.len() - off).unwrap_or(u32::MAX)));
        }
        if buf.is_empty() {
            return Ok(());
        }
        let (n, base) = self.append(buf.as_bytes(), !writes.is_empty(), now)?;
        let mut superseded = Vec::new();
        if let Some(seg) = self.segs.get_mut(&n) {
            seg.tombs.extend(tombs);
            for (r, (off, len)) in writes.iter().zip(placed) {
                seg.live += 1;
                seg.live_bytes += u64::from(len);
                seg.held.insert(hash_id(&r.id));
                let live = Live { seg: n, off: base + off, len, seq: r.seq, owed: r.owed_to_xmpp() };
                superseded.extend(self.index.insert(r.id.clone(), live));
            }
        }
        for old in superseded {
            self.lose(old, now);
        }
        Ok(())
    }

    /// Append `bytes` to the active segment (creating one if there is none), with an
    /// `fdatasync` when `sync`. Returns the segment and the offset the bytes start at. After a
    /// failure the segment is retired: nothing is ever appended after a failed write.
    fn append(&mut self, bytes: &[u8], sync: bool, now: Instant) -> Result<(u64, u64), SpoolError> {
        if self.active.is_none() {
            self.create()?;
        }
        let Some(active) = self.active.as_mut() else {
            return Err(SpoolError {
                context: format!("no journal segment to write in \"{}\"", self.dir.display()),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        };
        let n = active.n;
        let base = self.segs.get(&n).map_or(0, |s| s.size);
        let result = (|| -> io::Result<()> {
            active.file.write_all(bytes)?;
            if sync {
                active.file.sync_data()?;
            }
            still_there(&active.path, active.id)
        })();
        if let Err(e) = result {
            let path = active.path.clone();
            if let Some(old) = self.active.take() {
                self.retire(old, now);
            }
            return Err(SpoolError { context: format!("cannot write \"{}\"", path.display()), source: e });
        }
        let seg = self.segs.entry(n).or_default();
        seg.size += bytes.len() as u64;
        if seg.size >= self.segment_bytes {
            self.rotate_at.get_or_insert(now);
        }
        if sync {
            self.unsynced = None;
        } else {
            self.unsynced.get_or_insert(now);
        }
        Ok((n, base))
    }

    /// Create a new active segment, durably (its directory is fsynced before anything is
    /// written to it); the one before becomes an old segment.
    fn create(&mut self) -> Result<(), SpoolError> {
        let n = self.next;
        let path = self.dir.join(segment_name(n));
        let file = ctx(OpenOptions::new().append(true).create_new(true).mode(0o600).open(&path), || {
            format!("cannot create \"{}\"", path.display())
        })?;
        self.next += 1;
        let made = sync_dir(&self.dir).and_then(|()| {
            let meta = ctx(file.metadata(), || format!("cannot read \"{}\"", path.display()))?;
            Ok((meta.dev(), meta.ino()))
        });
        let id = match made {
            Ok(id) => id,
            Err(e) => {
                let _ = fs::remove_file(&path);
                return Err(e);
            }
        };
        self.segs.insert(n, Seg::default());
        if let Some(old) = self.active.take() {
            self.retire(old, Instant::now());
        }
        self.active = Some(Active { n, file, path, id });
        self.rotate_at = None;
        Ok(())
    }

    /// The active segment becomes an old one: its tombstones are synced (they could otherwise
    /// wait for a sync that never comes to this file), and it is looked at like any other.
    fn retire(&mut self, old: Active, now: Instant) {
        if self.unsynced.take().is_some()
            && let Err(e) = old.file.sync_data()
        {
            self.warnings.push(format!("cannot sync \"{}\": {e}", old.path.display()));
        }
        self.classify(old.n, now);
    }

    /// Background work, as [`super::Spool::tidy`] describes.
    pub(super) fn tidy(&mut self, force: bool) -> Vec<String> {
        let now = Instant::now();
        if self.unsynced.is_some_and(|since| force || since + TIDY_AFTER <= now) {
            if let Some(active) = &self.active
                && let Err(e) = active.file.sync_data()
            {
                self.warnings.push(format!("cannot sync \"{}\": {e}", active.path.display()));
            }
            self.unsynced = None;
        }
        if self.rotate_at.is_some_and(|at| at <= now)
            && let Err(e) = self.create()
        {
            self.warnings.push(format!("cannot start a new journal segment (the current one grows on): {e}"));
            self.rotate_at = Some(now + TIDY_AFTER);
        }
        for n in std::mem::take(&mut self.dead).into_keys() {
            if let Err(e) = self.unlink(n) {
                self.warnings.push(format!("{LEFT_BEHIND}: {e}"));
            }
        }
        let due: Vec<u64> =
            self.dirty.iter().filter(|(_, since)| force || **since + TIDY_AFTER <= now).map(|(n, _)| *n).collect();
        for n in due {
            self.dirty.remove(&n);
            if self.active.as_ref().is_some_and(|a| a.n == n) || !self.segs.contains_key(&n) {
                continue;
            }
            if let Err(e) = self.look_at(n) {
                self.warnings.push(format!("{LEFT_BEHIND}: {e}"));
            }
        }
        // A delivered backlog leaves the index's table at its largest: give the room back.
        if self.index.capacity() > 1024 && self.index.len() < self.index.capacity() / 4 {
            self.index.shrink_to_fit();
        }
        std::mem::take(&mut self.warnings)
    }

    /// When [`Journal::tidy`] next has something to do.
    pub(super) fn tidy_due(&self) -> Option<Instant> {
        let dirty = self.dirty.values().min().map(|since| *since + TIDY_AFTER);
        let unsynced = self.unsynced.map(|since| since + TIDY_AFTER);
        [self.dead.values().min().copied(), dirty, unsynced, self.rotate_at].into_iter().flatten().min()
    }

    /// An old segment that lost records: unlink it if nothing in it counts any more, compact it
    /// if little does, else leave it.
    fn look_at(&mut self, n: u64) -> Result<(), SpoolError> {
        let Some(seg) = self.segs.get(&n) else { return Ok(()) };
        if seg.live > 0 && seg.live_bytes * COMPACT_BELOW > seg.size {
            return Ok(());
        }
        if seg.live == 0 && self.needed_tombstones(n).is_empty() {
            return self.unlink(n);
        }
        self.compact(n, None)
    }

    /// The tombstones of segment `n` that an older segment still needs: their record is not
    /// live, and an older segment may hold a copy of it.
    fn needed_tombstones(&self, n: u64) -> Vec<String> {
        let Some(seg) = self.segs.get(&n) else { return Vec::new() };
        let older: Vec<&Seg> = self.segs.range(..n).map(|(_, s)| s).collect();
        if older.is_empty() {
            return Vec::new();
        }
        let mut seen = HashSet::new();
        seg.tombs
            .iter()
            .filter(|id| {
                !self.index.contains_key(*id) && {
                    let h = hash_id(id);
                    older.iter().any(|s| s.held.contains(&h)) && seen.insert(h)
                }
            })
            .cloned()
            .collect()
    }

    /// Copy segment `n`'s live lines and needed tombstones to the active segment, `fdatasync`,
    /// and only then unlink `n`. `source` holds `n`'s bytes when they are not its file's (the
    /// old layout's batches).
    fn compact(&mut self, n: u64, source: Option<&[u8]>) -> Result<(), SpoolError> {
        let needed = self.needed_tombstones(n);
        let mut moving: Vec<(String, Live)> =
            self.index.iter().filter(|(_, l)| l.seg == n).map(|(id, l)| (id.clone(), *l)).collect();
        moving.sort_by_key(|(_, l)| l.off);
        let path = self.dir.join(segment_name(n));
        let owned;
        let bytes = match source {
            Some(bytes) => bytes,
            None if moving.is_empty() => &[][..],
            None => {
                owned = ctx(fs::read(&path), || format!("cannot read \"{}\"", path.display()))?;
                &owned[..]
            }
        };
        let mut buf = Vec::new();
        let mut placed = Vec::with_capacity(moving.len());
        for (id, live) in moving {
            let range = live.off as usize..live.off as usize + live.len as usize;
            let Some(line) = bytes.get(range) else {
                return Err(SpoolError {
                    context: format!("cannot compact \"{}\": it is shorter than its records", path.display()),
                    source: io::Error::from(io::ErrorKind::UnexpectedEof),
                });
            };
            let off = buf.len() as u64;
            buf.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                buf.push(b'\n');
            }
            placed.push((id, off, u32::try_from(buf.len() as u64 - off).unwrap_or(u32::MAX), live));
        }
        for id in &needed {
            buf.extend_from_slice(encode_tombstone(id).as_bytes());
        }
        if !buf.is_empty() {
            let (dest, base) = self.append(&buf, true, Instant::now())?;
            if let Some(seg) = self.segs.get_mut(&dest) {
                for (id, off, len, old) in placed {
                    seg.live += 1;
                    seg.live_bytes += u64::from(len);
                    seg.held.insert(hash_id(&id));
                    self.index.insert(id, Live { seg: dest, off: base + off, len, ..old });
                }
                seg.tombs.extend(needed);
            }
        }
        // The copies are durable: the originals can go.
        self.unlink(n)
    }

    /// Remove old segment `n` (for [`LEGACY`], the old layout's files and directory).
    fn unlink(&mut self, n: u64) -> Result<(), SpoolError> {
        self.segs.remove(&n);
        self.dirty.remove(&n);
        self.dead.remove(&n);
        if n != LEGACY {
            return remove(&self.dir.join(segment_name(n)));
        }
        for path in std::mem::take(&mut self.legacy) {
            remove(&path)?;
        }
        match fs::remove_dir(&self.legacy_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(SpoolError {
                    context: format!("cannot remove \"{}\"", self.legacy_dir.display()),
                    source: e,
                });
            }
        }
        sync_dir(self.legacy_dir.parent().unwrap_or(Path::new(".")))
    }
}

/// Remove a file that may already be gone.
fn remove(path: &Path) -> Result<(), SpoolError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SpoolError { context: format!("cannot remove \"{}\"", path.display()), source: e }),
    }
}

/// Whether `path` is still the file `id` (device, inode): a segment moved or deleted under the
/// gateway would take acknowledged records with it.
fn still_there(path: &Path, id: (u64, u64)) -> io::Result<()> {
    let meta = fs::metadata(path)?;
    if (meta.dev(), meta.ino()) == id {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::NotFound, "the journal segment was replaced"))
    }
}
