//! Reading what the spool holds: the journal's segments in order, and the batch files of the
//! layout before the journal (`spool/new/*.batch`), which count as segment 0, older than every
//! segment. Later lines win: a tombstone kills the copies of its record before it, and of two
//! copies of a record the higher `rev` wins (the later one when equal). Used by `Spool::open`
//! and `spool::peek`; nothing here writes.

use super::journal::{Seg, hash_id};
use super::line::{Line, scan};
use super::{SpoolError, ctx};
use crate::core::spool_record::Record;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// The segment number given to the batch files of the old layout.
pub(super) const LEGACY: u64 = 0;

/// Where the winning copy of a record is.
#[derive(Debug)]
pub(super) struct Best {
    /// Its place in [`Replay::records`].
    pub(super) slot: usize,
    /// Segment holding it.
    pub(super) seg: u64,
    /// Offset of its line in the segment.
    pub(super) off: u64,
    /// Length of its line (with its newline, when it has one).
    pub(super) len: u32,
    /// Its revision.
    pub(super) rev: u32,
    /// Its sequence number.
    pub(super) seq: u64,
    /// Whether it is owed to an XMPP user ([`Record::owed_to_xmpp`]).
    pub(super) owed: bool,
}

/// What the lines read so far say.
#[derive(Debug, Default)]
pub(super) struct Replay {
    /// Records, each in the slot its first copy took; `None` once removed. Kept apart from the
    /// index (rather than in it) so that opening a large spool holds each record once.
    pub(super) records: Vec<Option<Box<Record>>>,
    /// Live records by id.
    pub(super) best: HashMap<String, Best>,
    /// The segments read (their live counts are filled in by the journal).
    pub(super) segs: BTreeMap<u64, Seg>,
    /// Keep only the records not owed to XMPP users in [`Replay::records`]: those are read
    /// back from disk a page at a time (`Journal::page`), so that opening a large backlog does
    /// not hold it in memory.
    pub(super) page_owed: bool,
}

/// The good lines of a file, decoded (the costly part of reading, done in parallel).
struct Decoded {
    size: u64,
    lines: Vec<(u64, u32, Entry)>,
    damaged: bool,
}

/// A decoded line, as replay needs it.
enum Entry {
    /// A record kept whole.
    Record(Box<Record>),
    /// A record owed to an XMPP user, with [`Replay::page_owed`]: only what the index needs,
    /// so that a segment of a large backlog is never held decoded.
    Owed {
        id: String,
        rev: u32,
        seq: u64,
    },
    Tombstone(String),
}

fn decode(bytes: &[u8], newline_required: bool, page_owed: bool) -> Decoded {
    let mut lines = Vec::new();
    let damaged = scan(bytes, newline_required, |off, len, line| {
        let entry = match line {
            Line::Record(r) if page_owed && r.owed_to_xmpp() => Entry::Owed { id: r.id, rev: r.rev, seq: r.seq },
            Line::Record(r) => Entry::Record(r),
            Line::Tombstone(id) => Entry::Tombstone(id),
        };
        lines.push((off, len, entry));
    });
    Decoded { size: bytes.len() as u64, lines, damaged }
}

impl Replay {
    /// Take in the bytes of segment `n`, which start at offset `base` of it. Returns whether a
    /// line was damaged (or, with `newline_required`, the last line was torn).
    pub(super) fn read(&mut self, n: u64, base: u64, bytes: &[u8], newline_required: bool) -> bool {
        let decoded = decode(bytes, newline_required, self.page_owed);
        self.take(n, base, decoded)
    }

    fn take(&mut self, n: u64, base: u64, decoded: Decoded) -> bool {
        let Replay { records, best, segs, .. } = self;
        let seg = segs.entry(n).or_default();
        seg.size = seg.size.max(base + decoded.size);
        for (off, len, line) in decoded.lines {
            let (id, rev, seq, owed, kept) = match line {
                Entry::Record(r) => (r.id.clone(), r.rev, r.seq, r.owed_to_xmpp(), Some(r)),
                Entry::Owed { id, rev, seq } => (id, rev, seq, true, None),
                Entry::Tombstone(id) => {
                    if let Some(b) = best.remove(&id) {
                        records[b.slot] = None;
                    }
                    seg.tombs.push(id);
                    continue;
                }
            };
            seg.held.insert(hash_id(&id));
            let off = base + off;
            match best.get_mut(&id) {
                Some(b) if rev < b.rev => {}
                Some(b) => {
                    *b = Best { slot: b.slot, seg: n, off, len, rev, seq, owed };
                    records[b.slot] = kept;
                }
                None => {
                    best.insert(id, Best { slot: records.len(), seg: n, off, len, rev, seq, owed });
                    records.push(kept);
                }
            }
        }
        decoded.damaged
    }

    /// The live records, in acceptance order.
    pub(super) fn live(records: Vec<Option<Box<Record>>>) -> Vec<Record> {
        let mut live: Vec<Record> = records.into_iter().flatten().map(|r| *r).collect();
        live.sort_by_key(|r| r.seq);
        live
    }

    /// Read the journal's segments (in number order): files are read and decoded by a few
    /// threads, their lines taken in order here. Returns the damaged segments.
    pub(super) fn read_segments(&mut self, segments: &[(u64, PathBuf)]) -> Result<Vec<u64>, SpoolError> {
        let page_owed = self.page_owed;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4).min(segments.len());
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            // Bounded: a few decoded segments wait at most (each up to ~4 MiB of records).
            let (tx, rx) = mpsc::sync_channel::<(usize, Result<Decoded, SpoolError>)>(workers);
            for _ in 0..workers {
                let (tx, next) = (tx.clone(), &next);
                scope.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((_, path)) = segments.get(i) else { break };
                        let read = ctx(fs::read(path), || format!("cannot read \"{}\"", path.display()));
                        if tx.send((i, read.map(|bytes| decode(&bytes, true, page_owed)))).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            let mut waiting = BTreeMap::new();
            let mut damaged = Vec::new();
            let mut want = 0;
            for (i, decoded) in rx {
                waiting.insert(i, decoded);
                while let Some(decoded) = waiting.remove(&want) {
                    let n = segments[want].0;
                    if self.take(n, 0, decoded?) {
                        damaged.push(n);
                    }
                    want += 1;
                }
            }
            Ok(damaged)
        })
    }
}

/// Numbered files, in number order.
pub(super) type Numbered = Vec<(u64, PathBuf)>;

/// `dir`'s files named `NNN<suffix>` in number order, and the other files in it.
pub(super) fn numbered(dir: &Path, suffix: &str) -> Result<(Numbered, Vec<PathBuf>), SpoolError> {
    let mut names = Vec::new();
    let mut others = Vec::new();
    for entry in ctx(fs::read_dir(dir), || format!("cannot list \"{}\"", dir.display()))? {
        let path = ctx(entry, || format!("cannot list \"{}\"", dir.display()))?.path();
        let number = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(suffix))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok());
        match number {
            Some(n) => names.push((n, path)),
            None => others.push(path),
        }
    }
    names.sort();
    Ok((names, others))
}

/// Read the old layout's batch files into `replay` as segment [`LEGACY`]. Returns their bytes
/// one after the other (each ending with a newline: the offsets of segment 0 point into them)
/// and the batch files that had damaged lines.
pub(super) fn read_batches(
    replay: &mut Replay,
    batches: &[(u64, PathBuf)],
) -> Result<(Vec<u8>, Vec<PathBuf>), SpoolError> {
    let mut all = Vec::new();
    let mut damaged = Vec::new();
    for (_, path) in batches {
        let bytes = ctx(fs::read(path), || format!("cannot read \"{}\"", path.display()))?;
        // A batch was renamed into place whole, so a last line without a newline is complete.
        if replay.read(LEGACY, all.len() as u64, &bytes, false) {
            damaged.push(path.clone());
        }
        all.extend_from_slice(&bytes);
        if !all.ends_with(b"\n") {
            all.push(b'\n');
        }
    }
    if let Some(seg) = replay.segs.get_mut(&LEGACY) {
        seg.size = all.len() as u64;
    }
    Ok((all, damaged))
}
