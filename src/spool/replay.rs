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

/// The segment number given to the batch files of the old layout.
pub(super) const LEGACY: u64 = 0;

/// The winning copy of a record.
#[derive(Debug)]
pub(super) struct Best {
    /// Segment holding it.
    pub(super) seg: u64,
    /// Offset of its line in the segment.
    pub(super) off: u64,
    /// Length of its line (with its newline, when it has one).
    pub(super) len: u32,
    /// The record.
    pub(super) record: Record,
}

/// What the lines read so far say.
#[derive(Debug, Default)]
pub(super) struct Replay {
    /// Live records by id.
    pub(super) best: HashMap<String, Best>,
    /// The segments read (their live counts are filled in by the journal).
    pub(super) segs: BTreeMap<u64, Seg>,
}

impl Replay {
    /// Take in the bytes of segment `n`, which start at offset `base` of it. Returns whether a
    /// line was damaged (or, with `newline_required`, the last line was torn).
    pub(super) fn read(&mut self, n: u64, base: u64, bytes: &[u8], newline_required: bool) -> bool {
        let Replay { best, segs } = self;
        let seg = segs.entry(n).or_default();
        seg.size = seg.size.max(base + bytes.len() as u64);
        scan(bytes, newline_required, |off, len, line| match line {
            Line::Record(record) => {
                seg.held.insert(hash_id(&record.id));
                if best.get(&record.id).is_none_or(|b| record.rev >= b.record.rev) {
                    best.insert(record.id.clone(), Best { seg: n, off: base + off, len, record: *record });
                }
            }
            Line::Tombstone(id) => {
                best.remove(&id);
                seg.tombs.push(id);
            }
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
