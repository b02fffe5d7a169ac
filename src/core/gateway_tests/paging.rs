//! Paging (`core::mailbox`): a backlog larger than the mailbox holds waits in the spool and is
//! read back in order as deliveries are confirmed.

use super::*;
use crate::core::mailbox::{HOLD_MAX, REFILL_AT};
use std::collections::BTreeMap;

/// The spool as the shell keeps it: records by id, and pages answered from it in order.
#[derive(Default)]
struct Disk {
    records: BTreeMap<String, Record>,
    /// Pages asked for and not yet answered: (from_seq, max).
    asked: Vec<(u64, usize)>,
}

impl Disk {
    fn apply(&mut self, actions: &[Action]) {
        for a in actions {
            match a {
                Action::SpoolWrite(r) => {
                    self.records.insert(r.id.clone(), (**r).clone());
                }
                Action::SpoolRemove(id) => {
                    self.records.remove(id);
                }
                Action::SpoolPage { from_seq, max } => self.asked.push((*from_seq, *max)),
                _ => {}
            }
        }
    }

    fn page(&self, from_seq: u64, max: usize) -> Vec<Record> {
        let mut owed: Vec<Record> =
            self.records.values().filter(|r| r.seq >= from_seq && r.inbound.is_some()).cloned().collect();
        owed.sort_by_key(|r| r.seq);
        owed.truncate(max);
        owed
    }
}

/// Texts delivered in `actions`, in order.
fn texts(actions: &[Action]) -> Vec<String> {
    writes(actions)
        .iter()
        .filter_map(|w| w.split("<body>").nth(1).and_then(|b| b.split("</body>").next()).map(str::to_string))
        .collect()
}

/// Take webhooks m0..m(n-1) while the stream is down, each durable at once.
fn backlog(sim: &mut Sim, disk: &mut Disk, range: std::ops::Range<usize>) {
    for i in range {
        let a = sim.webhook(i as u64 + 1, "5552345678", &format!("m{i}"), &[]);
        disk.apply(&a);
        let a = sim.sync_all(&a);
        assert!(a.contains(&Action::WebhookReply { token: i as u64 + 1, reply: WebhookReply::Accepted }));
        disk.apply(&a);
    }
}

/// Play the server and the spool until nothing more happens: answer pings, answer pages.
/// Returns the texts delivered.
fn drain_all(sim: &mut Sim, disk: &mut Disk, first: Vec<Action>) -> Vec<String> {
    let mut delivered = texts(&first);
    disk.apply(&first);
    let mut pending = first;
    for _ in 0..10_000 {
        let mut next = sim.answer_pings(&pending);
        for (from, max) in std::mem::take(&mut disk.asked) {
            let records = disk.page(from, max);
            next.extend(sim.input(Input::SpoolPaged { records, max }));
        }
        if next.is_empty() && disk.asked.is_empty() {
            return delivered;
        }
        delivered.extend(texts(&next));
        disk.apply(&next);
        pending = next;
    }
    panic!("never settled");
}

#[test]
fn a_backlog_beyond_the_mailbox_waits_in_the_spool_and_arrives_in_order_once_each() {
    let mut sim = Sim::new();
    sim.gw.start(sim.now);
    sim.drain();
    let mut disk = Disk::default();
    let n = HOLD_MAX * 3 + 17;
    backlog(&mut sim, &mut disk, 0..n);
    assert_eq!(sim.gw.stats().to_xmpp, n, "every message is owed, held or not");
    assert!(disk.asked.is_empty(), "no page while the mailbox is full");
    let a = sim.connect();
    let first = texts(&a);
    assert_eq!(first.len(), HOLD_MAX, "only what is held goes out at once");
    let delivered = drain_all(&mut sim, &mut disk, a);
    let expected: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    assert_eq!(delivered, expected, "in order, each once");
    assert!(disk.records.is_empty(), "all confirmed and out of the spool");
    assert_eq!(sim.gw.stats().to_xmpp, 0);
}

#[test]
fn messages_arriving_while_a_page_is_read_join_the_backlog_in_order() {
    let mut sim = Sim::new();
    sim.gw.start(sim.now);
    sim.drain();
    let mut disk = Disk::default();
    backlog(&mut sim, &mut disk, 0..HOLD_MAX + 10);
    let a = sim.connect();
    disk.apply(&a);
    let a = sim.answer_pings(&a);
    disk.apply(&a);
    let (from, max) = disk.asked.pop().expect("room: the next page is asked for");
    assert!(max > HOLD_MAX - REFILL_AT, "{max}");
    // The page is read before these arrive; its answer must not end the backlog.
    let page = disk.page(from, max);
    backlog(&mut sim, &mut disk, HOLD_MAX + 10..HOLD_MAX + 20);
    let a = sim.input(Input::SpoolPaged { records: page, max });
    let mut delivered: Vec<String> = (0..HOLD_MAX).map(|i| format!("m{i}")).collect();
    delivered.extend(drain_all(&mut sim, &mut disk, a));
    let expected: Vec<String> = (0..HOLD_MAX + 20).map(|i| format!("m{i}")).collect();
    assert_eq!(delivered, expected);
    assert!(disk.records.is_empty());
}

#[test]
fn records_the_spool_did_not_hand_over_at_start_are_read_back() {
    // A first run spools a backlog; the next one gets only the first HOLD_MAX of it.
    let mut first = Sim::new();
    first.gw.start(first.now);
    first.drain();
    let mut disk = Disk::default();
    let n = HOLD_MAX + 300;
    backlog(&mut first, &mut disk, 0..n);
    let all = disk.page(0, usize::MAX);
    let mut sim = Sim::new();
    sim.gw.more_in_spool(all[HOLD_MAX].seq, n - HOLD_MAX, all[n - 1].seq);
    sim.gw.restore(all[..HOLD_MAX].to_vec(), "", sim.now);
    sim.drain();
    assert!(sim.log.iter().any(|l| l.contains(&format!("{n} to deliver over XMPP"))), "{:?}", sim.log);
    assert_eq!(sim.gw.stats().to_xmpp, n);
    let a = sim.online();
    let delivered = drain_all(&mut sim, &mut disk, a);
    let expected: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    assert_eq!(delivered, expected);
    assert!(disk.records.is_empty());
    // And what arrives now is numbered after the backlog and delivered at once, no longer paged.
    let a = sim.webhook(9999, "5552345678", "fresh", &[]);
    assert!(spooled(&a)[0].seq > all[n - 1].seq);
    assert_eq!(texts(&a), vec!["fresh".to_string()]);
}
