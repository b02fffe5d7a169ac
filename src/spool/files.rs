//! Durable steps on files and directories for the spool: directories created with mode 0700 and
//! synced with their parents, and the write/fsync/rename of one whole file (maildir(5)) used for
//! `unrouted/`, `undeliverable/` and a rewritten `seen.log`. Nothing here knows about records.

use super::{SpoolError, ctx};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Create `path` and whatever of it is missing (mode 0700), durably: each new directory and the
/// directory holding its entry are synced, so that a power cut after the first messages were
/// acknowledged into `spool/journal` cannot take the directory (and them) away.
pub(super) fn mkdir(path: &Path) -> Result<(), SpoolError> {
    let created = create_dirs(path)?;
    for dir in dirs_to_sync(&created) {
        sync_dir(&dir)?;
    }
    Ok(())
}

/// Create `path` and its missing ancestors, mode 0700. Returns the directories this call
/// created, outermost first.
pub(super) fn create_dirs(path: &Path) -> Result<Vec<PathBuf>, SpoolError> {
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
pub(super) fn dirs_to_sync(created: &[PathBuf]) -> Vec<PathBuf> {
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

/// fsync a directory: makes the entries created, renamed or removed in it durable.
pub(super) fn sync_dir(path: &Path) -> Result<(), SpoolError> {
    ctx(File::open(path).and_then(|d| d.sync_all()), || format!("cannot sync directory \"{}\"", path.display()))
}

/// Write `data` to `tmp`, fsync it, and rename it to `dest` (the directory is synced by the caller).
pub(super) fn write_durably(tmp: &Path, dest: &Path, data: &[u8]) -> Result<(), SpoolError> {
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

/// Record ids are ours (`boot-seq`), but a file name must never escape its directory.
pub(super) fn safe_name(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}
