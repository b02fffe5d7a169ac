//! Tests of the spool on a real file system: commits, reopen, tombstones, damage, rotation,
//! compaction (with a crash between its append and its unlink), the old layout's migration and
//! `tidy_due`.

use super::journal::segment_name;
use super::line::encode_tombstone;
use super::*;
use crate::core::spool_record::{FORMAT_VERSION, Inbound, Unrouted, encode_line};
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

fn write(records: &[Record]) -> Vec<Op> {
    records.iter().map(|r| Op::Write(Box::new(r.clone()))).collect()
}

/// The journal's segment numbers, in order.
fn segments(dir: &Path) -> Vec<u64> {
    numbered(&dir.join("spool/journal"), ".log").unwrap().0.into_iter().map(|(n, _)| n).collect()
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join("spool/journal").join(segment_name(n))
}

fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

#[test]
fn writes_survive_reopen_in_order() {
    let dir = temp_dir("reopen");
    let mut s = Spool::open(&dir).unwrap().spool;
    let ids = s.apply(vec![Op::Write(Box::new(inbound(2, 0))), Op::Write(Box::new(inbound(1, 0)))]).unwrap();
    assert_eq!(ids, vec!["b-2".to_string(), "b-1".to_string()]);
    s.apply(vec![Op::Write(Box::new(inbound(3, 0)))]).unwrap();
    // One segment, one line a record, appended in commit order.
    assert_eq!(segments(&dir), vec![1]);
    let text = fs::read_to_string(segment_path(&dir, 1)).unwrap();
    assert_eq!(text, [inbound(2, 0), inbound(1, 0), inbound(3, 0)].iter().map(encode_line).collect::<String>());
    drop(s); // a restart
    let opened = Spool::open(&dir).unwrap();
    assert!(opened.warnings.is_empty(), "{:?}", opened.warnings);
    assert_eq!(seqs(&opened.records), vec![1, 2, 3]);
    assert_eq!(opened.spool.len(), 3);
    assert_eq!(segments(&dir), vec![1, 2], "a start always appends to a fresh segment");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn tombstones_are_honoured_across_reopen() {
    let dir = temp_dir("tombstones");
    let mut s = Spool::open(&dir).unwrap().spool;
    s.apply(write(&[inbound(1, 0), inbound(2, 0), inbound(3, 0)])).unwrap();
    s.apply(vec![Op::Remove("b-2".into())]).unwrap();
    assert_eq!(s.len(), 2);
    let text = fs::read_to_string(segment_path(&dir, 1)).unwrap();
    assert!(text.ends_with(&encode_tombstone("b-2")), "a removal appends a tombstone: {text}");
    // Removed, then written again (a redelivery after a refusal): the later copy lives.
    s.apply(vec![Op::Remove("b-3".into())]).unwrap();
    s.apply(write(&[inbound(3, 1)])).unwrap();
    // Removing what is not there appends nothing.
    let before = fs::metadata(segment_path(&dir, 1)).unwrap().len();
    s.apply(vec![Op::Remove("b-9".into())]).unwrap();
    assert_eq!(fs::metadata(segment_path(&dir, 1)).unwrap().len(), before);
    // A crash: no tidy.
    drop(s);
    let opened = Spool::open(&dir).unwrap();
    assert!(opened.warnings.is_empty(), "{:?}", opened.warnings);
    assert_eq!(opened.records, vec![inbound(1, 0), inbound(3, 1)]);
    let mut s = opened.spool;
    // Through compaction (tidy) and another start, still the same.
    s.apply(vec![Op::Remove("b-1".into())]).unwrap();
    assert!(s.tidy(true).is_empty());
    drop(s);
    assert_eq!(Spool::open(&dir).unwrap().records, vec![inbound(3, 1)]);
    assert_eq!(peek(&dir).unwrap(), vec![inbound(3, 1)]);
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
    assert_eq!(s.len(), 2);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn after_a_crash_between_write_and_cleanup_the_higher_rev_wins() {
    let dir = temp_dir("crash");
    let mut s = Spool::open(&dir).unwrap().spool;
    s.apply(vec![Op::Write(Box::new(inbound(1, 0)))]).unwrap();
    // Simulate: a later segment holds a newer revision; the old copy is still there.
    fs::write(segment_path(&dir, 99), encode_line(&inbound(1, 3))).unwrap();
    drop(s);
    let opened = Spool::open(&dir).unwrap();
    assert_eq!(opened.records, vec![inbound(1, 3)]);
    // And the other way round: a lower revision later does not win.
    fs::write(segment_path(&dir, 120), encode_line(&inbound(1, 2))).unwrap();
    let mut s = opened.spool;
    assert!(s.tidy(false).is_empty());
    assert_eq!(segments(&dir), vec![99, 100, 120], "the superseded segment 1 is unlinked at once");
    drop(s);
    assert_eq!(Spool::open(&dir).unwrap().records, vec![inbound(1, 3)]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn half_written_and_damaged_files_are_set_aside_not_fatal() {
    let dir = temp_dir("damage");
    let mut s = Spool::open(&dir).unwrap().spool;
    s.apply(vec![Op::Write(Box::new(inbound(1, 0))), Op::Write(Box::new(inbound(2, 0)))]).unwrap();
    s.apply(write(&[inbound(3, 0)])).unwrap();
    fs::write(dir.join("spool/tmp/b-7.json"), "{\"v\":1,\"id\":\"half").unwrap();
    // A flipped line in the middle of the segment: the lines around it are good.
    let path = segment_path(&dir, 1);
    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    fs::write(&path, format!("{}garbage line\n{}", lines[0], lines[2])).unwrap();
    drop(s);
    let opened = Spool::open(&dir).unwrap();
    assert_eq!(opened.records, vec![inbound(1, 0), inbound(3, 0)]);
    assert_eq!(opened.warnings.len(), 2, "{:?}", opened.warnings);
    assert_eq!(fs::read_dir(dir.join("corrupt")).unwrap().count(), 2);
    assert_eq!(fs::read_dir(dir.join("spool/tmp")).unwrap().count(), 0);
    // The damaged segment's good lines were copied into the fresh one, and it is gone.
    assert_eq!(segments(&dir), vec![2]);
    drop(opened);
    let again = Spool::open(&dir).unwrap();
    assert!(again.warnings.is_empty(), "damage is reported once: {:?}", again.warnings);
    assert_eq!(again.records, vec![inbound(1, 0), inbound(3, 0)]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_torn_tail_is_set_aside_with_the_good_lines_kept() {
    let dir = temp_dir("torn");
    let mut s = Spool::open(&dir).unwrap().spool;
    s.apply(write(&[inbound(1, 0)])).unwrap();
    s.apply(write(&[inbound(2, 0)])).unwrap();
    drop(s);
    // A commit cut short: its line lacks the end (and its newline), or only the newline.
    for (cut, name) in [(40, "mid-line"), (1, "newline only")] {
        let path = segment_path(&dir, *segments(&dir).last().unwrap());
        let mut bytes = fs::read(&path).unwrap();
        let line = encode_line(&inbound(3, 0));
        bytes.extend_from_slice(&line.as_bytes()[..line.len() - cut]);
        fs::write(&path, &bytes).unwrap();
        let corrupt_before = fs::read_dir(dir.join("corrupt")).map_or(0, |d| d.count());
        let opened = Spool::open(&dir).unwrap();
        assert_eq!(opened.records, vec![inbound(1, 0), inbound(2, 0)], "{name}");
        assert_eq!(opened.warnings.len(), 1, "{name}: {:?}", opened.warnings);
        assert!(opened.warnings[0].starts_with("a damaged spool file was found"), "{:?}", opened.warnings);
        assert_eq!(fs::read_dir(dir.join("corrupt")).unwrap().count(), corrupt_before + 1, "{name}");
        assert!(!path.exists(), "{name}: nothing is appended after the damage; the segment is replaced");
        let mut s = opened.spool;
        s.apply(write(&[inbound(4, 0)])).unwrap();
        s.apply(vec![Op::Remove("b-4".into())]).unwrap();
        s.tidy(true);
    }
    let opened = Spool::open(&dir).unwrap();
    assert!(opened.warnings.is_empty(), "{:?}", opened.warnings);
    assert_eq!(opened.records, vec![inbound(1, 0), inbound(2, 0)]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_active_segment_rotates_when_full() {
    let dir = temp_dir("rotate");
    let mut s = Spool::open(&dir).unwrap().spool;
    let line = encode_line(&inbound(1, 0)).len() as u64;
    s.set_segment_bytes(3 * line);
    for seq in 1..=10 {
        s.apply(write(&[inbound(seq, 0)])).unwrap();
        // A full segment is due for rotation at once, off the commit's path.
        if seq % 3 == 0 {
            assert!(s.tidy_due().is_some_and(|due| due <= Instant::now()));
        }
        assert!(s.tidy(false).is_empty());
    }
    assert_eq!(segments(&dir), vec![1, 2, 3, 4]);
    for n in 1..=3 {
        assert_eq!(fs::metadata(segment_path(&dir, n)).unwrap().len(), 3 * line);
    }
    // Full segments of live records are left alone, even when forced.
    assert!(s.tidy(true).is_empty());
    assert_eq!(segments(&dir), vec![1, 2, 3, 4]);
    drop(s);
    assert_eq!(seqs(&Spool::open(&dir).unwrap().records), (1..=10).collect::<Vec<_>>());
    let _ = fs::remove_dir_all(&dir);
}

/// Records 1–8 in segment 1, 9–10 in segment 2; the active segment is 3.
fn two_old_segments(name: &str) -> (PathBuf, Spool) {
    let dir = temp_dir(name);
    let mut s = Spool::open(&dir).unwrap().spool;
    s.apply(write(&(1..=8).map(|n| inbound(n, 0)).collect::<Vec<_>>())).unwrap();
    s.set_segment_bytes(2 * encode_line(&inbound(9, 0)).len() as u64);
    assert!(s.tidy(false).is_empty());
    s.apply(write(&[inbound(9, 0), inbound(10, 0)])).unwrap();
    assert!(s.tidy(false).is_empty());
    assert_eq!(segments(&dir), vec![1, 2, 3]);
    (dir, s)
}

#[test]
fn compaction_moves_the_few_live_records_and_unlinks_the_old_segment() {
    let (dir, mut s) = two_old_segments("compact");
    // Segment 1 keeps 1 of 8 records: compacted once due; segment 2 keeps both: left.
    s.apply((2..=8).map(|n| Op::Remove(format!("b-{n}"))).collect()).unwrap();
    assert!(s.tidy(false).is_empty());
    assert_eq!(segments(&dir), vec![1, 2, 3], "not due yet");
    assert!(s.tidy(true).is_empty());
    assert_eq!(segments(&dir), vec![2, 3]);
    assert_eq!(seqs(&peek(&dir).unwrap()), vec![1, 9, 10]);
    // Segment 2 loses everything: unlinked at the next tidy, due or not.
    s.apply(vec![Op::Remove("b-9".into()), Op::Remove("b-10".into())]).unwrap();
    assert!(s.tidy(false).is_empty());
    assert_eq!(segments(&dir), vec![3]);
    drop(s);
    let opened = Spool::open(&dir).unwrap();
    assert!(opened.warnings.is_empty(), "{:?}", opened.warnings);
    assert_eq!(opened.records, vec![inbound(1, 0)]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_crash_between_compactions_append_and_unlink_leaves_one_record_each() {
    let (dir, mut s) = two_old_segments("compact-crash");
    s.apply((2..=8).map(|n| Op::Remove(format!("b-{n}"))).collect()).unwrap();
    let old = fs::read(segment_path(&dir, 1)).unwrap();
    assert!(s.tidy(true).is_empty());
    assert!(!segment_path(&dir, 1).exists(), "compacted");
    // Simulate the crash: the unlink never happened.
    fs::write(segment_path(&dir, 1), &old).unwrap();
    drop(s);
    let opened = Spool::open(&dir).unwrap();
    assert!(opened.warnings.is_empty(), "{:?}", opened.warnings);
    assert_eq!(opened.records, vec![inbound(1, 0), inbound(9, 0), inbound(10, 0)], "both copies read as one");
    assert_eq!(opened.spool.len(), 3);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_tombstone_is_carried_while_an_older_segment_holds_its_record() {
    let (dir, mut s) = two_old_segments("carry");
    // Record 1's tombstone lands in segment 3, which then rotates and loses everything else.
    s.apply(vec![Op::Remove("b-1".into())]).unwrap();
    s.set_segment_bytes(1);
    s.apply(write(&[inbound(11, 0)])).unwrap();
    assert!(s.tidy(false).is_empty());
    s.apply(vec![Op::Remove("b-11".into())]).unwrap();
    // Segment 1 still holds record 1 (7 live of 8: not compacted); segment 3's tombstone must
    // outlive it, so segment 3 is compacted (the tombstone copied forward), not just unlinked.
    assert!(s.tidy(true).is_empty());
    assert!(!segments(&dir).contains(&3));
    assert!(segments(&dir).contains(&1));
    drop(s);
    let records = Spool::open(&dir).unwrap().records;
    assert_eq!(seqs(&records), (2..=10).collect::<Vec<_>>(), "record 1 stays removed");
    let _ = fs::remove_dir_all(&dir);
}

/// A state_dir as the gateway wrote it before the journal: batches in `spool/new`, `spool/tmp`.
fn old_layout(dir: &Path, batches: &[(u64, Vec<Record>)]) {
    for d in ["spool/new", "spool/tmp", "unrouted", "undeliverable"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    for (n, records) in batches {
        let text: String = records.iter().map(encode_line).collect();
        fs::write(dir.join("spool/new").join(format!("{n:016}.batch")), text).unwrap();
    }
}

#[test]
fn an_old_layout_spool_opens_with_nothing_lost() {
    let dir = temp_dir("migrate");
    old_layout(
        &dir,
        &[(1, vec![inbound(1, 0), inbound(2, 0)]), (2, vec![inbound(3, 0), inbound(1, 2)]), (3, vec![inbound(4, 0)])],
    );
    let expected = vec![inbound(1, 2), inbound(2, 0), inbound(3, 0), inbound(4, 0)];
    assert_eq!(peek(&dir).unwrap(), expected, "peek reads the old layout too");
    let opened = Spool::open(&dir).unwrap();
    assert!(opened.warnings.is_empty(), "{:?}", opened.warnings);
    assert_eq!(opened.records, expected);
    assert!(!dir.join("spool/new").exists(), "the batches are gone once their records are in the journal");
    assert!(dir.join("spool/tmp").is_dir());
    assert_eq!(segments(&dir), vec![1]);
    let text = fs::read_to_string(segment_path(&dir, 1)).unwrap();
    assert_eq!(text.lines().count(), 4, "only live records are taken: {text}");
    let mut s = opened.spool;
    s.apply(vec![Op::Remove("b-2".into())]).unwrap();
    drop(s);
    let opened = Spool::open(&dir).unwrap();
    assert!(opened.warnings.is_empty(), "{:?}", opened.warnings);
    assert_eq!(opened.records, vec![inbound(1, 2), inbound(3, 0), inbound(4, 0)]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_migration_cut_short_reads_each_record_once() {
    let dir = temp_dir("migrate-crash");
    old_layout(&dir, &[(1, vec![inbound(1, 0), inbound(2, 0)])]);
    // A crash after the journal got the batch's records but before the batch was removed.
    fs::create_dir_all(dir.join("spool/journal")).unwrap();
    let lines: String = [inbound(1, 0), inbound(2, 0)].iter().map(encode_line).collect();
    fs::write(segment_path(&dir, 1), lines).unwrap();
    let opened = Spool::open(&dir).unwrap();
    assert!(opened.warnings.is_empty(), "{:?}", opened.warnings);
    assert_eq!(opened.records, vec![inbound(1, 0), inbound(2, 0)]);
    assert_eq!(opened.spool.len(), 2);
    assert!(!dir.join("spool/new").exists());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn tidy_due_says_when_there_is_work_and_none_when_idle() {
    let dir = temp_dir("due");
    let mut s = Spool::open(&dir).unwrap().spool;
    assert_eq!(s.tidy_due(), None, "a fresh spool has nothing to do");
    s.apply(write(&[inbound(1, 0), inbound(2, 0)])).unwrap();
    assert_eq!(s.tidy_due(), None, "a commit is synced: nothing left to do");
    // A tombstone waits for a sync, TIDY_AFTER at most.
    let before = Instant::now();
    s.apply(vec![Op::Remove("b-1".into())]).unwrap();
    let due = s.tidy_due().expect("a tombstone to sync");
    assert!(due >= before + TIDY_AFTER && due <= Instant::now() + TIDY_AFTER, "{due:?}");
    assert!(s.tidy(false).is_empty());
    assert_eq!(s.tidy_due(), Some(due), "not done before it is due");
    // A commit's fdatasync covers the tombstone too.
    s.apply(write(&[inbound(3, 0)])).unwrap();
    assert_eq!(s.tidy_due(), None);
    // Seen-log lines wait for a sync too.
    let before = Instant::now();
    s.apply(vec![Op::SeenAppend("id x\n".into())]).unwrap();
    let due = s.tidy_due().expect("the seen log to sync");
    assert!(due >= before + TIDY_AFTER && due <= Instant::now() + TIDY_AFTER);
    assert!(s.tidy(true).is_empty());
    assert_eq!(s.tidy_due(), None, "forced: everything done");
    drop(s);
    // After a restart, the old segment is looked at once, TIDY_AFTER later; a dead one is due at once.
    let before = Instant::now();
    let mut s = Spool::open(&dir).unwrap().spool;
    let due = s.tidy_due().expect("the last run's segment to look at");
    assert!(due >= before + TIDY_AFTER && due <= Instant::now() + TIDY_AFTER);
    s.apply(vec![Op::Remove("b-2".into()), Op::Remove("b-3".into())]).unwrap();
    assert!(s.tidy_due().is_some_and(|due| due <= Instant::now()), "a dead segment is unlinked at once");
    assert!(s.tidy(false).is_empty());
    assert!(s.tidy_due().is_some_and(|due| due > Instant::now()), "only the tombstones' sync remains");
    assert!(s.tidy(true).is_empty());
    assert_eq!(s.tidy_due(), None);
    assert_eq!(segments(&dir), vec![2]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_journal_moved_away_fails_the_commit_and_a_fresh_segment_recovers() {
    let dir = temp_dir("moved");
    let mut s = Spool::open(&dir).unwrap().spool;
    s.apply(write(&[inbound(1, 0)])).unwrap();
    let journal = dir.join("spool/journal");
    let away = dir.join("spool/journal.away");
    fs::rename(&journal, &away).unwrap();
    fs::write(&journal, "not a directory").unwrap();
    let e = s.apply(write(&[inbound(2, 0)])).unwrap_err();
    assert!(e.to_string().starts_with("cannot write"), "{e}");
    let e = s.apply(write(&[inbound(2, 0)])).unwrap_err();
    assert!(e.to_string().starts_with("cannot create"), "{e}");
    fs::remove_file(&journal).unwrap();
    fs::rename(&away, &journal).unwrap();
    s.apply(write(&[inbound(2, 0)])).unwrap();
    drop(s);
    assert_eq!(seqs(&Spool::open(&dir).unwrap().records), vec![1, 2]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn many_records_open_correctly() {
    let dir = temp_dir("many");
    let mut s = Spool::open(&dir).unwrap().spool;
    s.set_segment_bytes(64 << 10);
    for chunk in (1..=3000).collect::<Vec<u64>>().chunks(100) {
        s.apply(write(&chunk.iter().map(|&n| inbound(n, 0)).collect::<Vec<_>>())).unwrap();
        s.apply(chunk.iter().filter(|n| *n % 3 == 0).map(|n| Op::Remove(format!("b-{n}"))).collect()).unwrap();
        s.tidy(false);
    }
    s.tidy(true);
    drop(s);
    let mut opened = Spool::open(&dir).unwrap();
    assert!(opened.warnings.is_empty(), "{:?}", opened.warnings);
    // The first HOLD_MAX are handed over; the rest are said to wait, and read back in pages.
    let live: Vec<u64> = (1..=3000).filter(|n| n % 3 != 0).collect();
    assert_eq!(seqs(&opened.records), live[..HOLD_MAX]);
    assert_eq!(opened.more, Some((live[HOLD_MAX - 1] + 1, live.len() - HOLD_MAX, 2999)));
    let mut read = Vec::new();
    let mut from = live[HOLD_MAX - 1] + 1;
    loop {
        let page = opened.spool.page(from, 500).unwrap();
        read.extend(seqs(&page));
        match page.last() {
            Some(last) if page.len() == 500 => from = last.seq + 1,
            _ => break,
        }
    }
    assert_eq!(read, live[HOLD_MAX..]);
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
    use super::files::{create_dirs, dirs_to_sync};
    // Regression (issue 6, defect 13): a directory created on first start was never synced,
    // so a power cut could lose the spool directory after messages were acknowledged into it.
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
    // A first start creates the whole tree, and its first segment.
    let state = root.join("state");
    Spool::open(&state).unwrap();
    for d in ["spool/journal", "spool/tmp", "unrouted", "undeliverable"] {
        assert!(state.join(d).is_dir(), "{d}");
    }
    assert!(!state.join("spool/new").exists());
    assert_eq!(segments(&state), vec![1]);
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
