//! The seen set's table: 64-bit key hashes to [`Slot`]s, in 16 bytes a key.
//!
//! A hash table keeps a quarter to a half of its room spare and doubles at once when full (a
//! table of 200,000 keys jumps from 4.5 to 9 MB at its next insert). Most keys here are
//! written once and read rarely, so they live in a sorted vector with no spare room, searched
//! by bisection; new keys gather in a small hash table that is merged into it whenever it
//! outgrows a sixteenth of the vector. A key is in one of the two, never both.

use super::Slot;
use std::collections::HashMap;

/// The fresh table is merged at this many keys at least (a sixteenth of the sorted vector
/// beyond that).
const MERGE_AT: usize = 1024;

/// Key hash → slot.
#[derive(Debug, Default)]
pub(super) struct Table {
    /// Sorted by hash, each hash once.
    sorted: Vec<(u64, Slot)>,
    /// Keys added since the last merge.
    fresh: HashMap<u64, Slot>,
}

impl Table {
    fn find(&self, h: u64) -> Result<usize, usize> {
        self.sorted.binary_search_by_key(&h, |(k, _)| *k)
    }

    /// The slot of `h`.
    pub(super) fn get(&self, h: u64) -> Option<Slot> {
        match self.find(h) {
            Ok(i) => Some(self.sorted[i].1),
            Err(_) => self.fresh.get(&h).copied(),
        }
    }

    /// Whether `h` is held.
    pub(super) fn contains(&self, h: u64) -> bool {
        self.get(h).is_some()
    }

    /// Set the slot of `h`.
    pub(super) fn insert(&mut self, h: u64, slot: Slot) {
        self.update(h, slot, |s| *s = slot);
    }

    /// Change the slot of `h` with `f`, starting from `default` when `h` is not held.
    pub(super) fn update(&mut self, h: u64, default: Slot, f: impl FnOnce(&mut Slot)) {
        if let Ok(i) = self.find(h) {
            f(&mut self.sorted[i].1);
            return;
        }
        f(self.fresh.entry(h).or_insert(default));
        if self.fresh.len() >= MERGE_AT.max(self.sorted.len() / 16) {
            self.merge();
        }
    }

    /// Move the fresh keys into the sorted vector (allocated to its exact size).
    fn merge(&mut self) {
        let mut fresh: Vec<(u64, Slot)> = self.fresh.drain().collect();
        self.fresh.shrink_to(MERGE_AT);
        fresh.sort_unstable_by_key(|(k, _)| *k);
        let mut merged = Vec::with_capacity(self.sorted.len() + fresh.len());
        let (mut a, mut b) = (self.sorted.iter().peekable(), fresh.into_iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 < y.0 => merged.extend(a.next().copied()),
                (Some(_), Some(_)) => merged.extend(b.next()),
                (Some(_), None) => merged.extend(a.next().copied()),
                (None, Some(_)) => merged.extend(b.next()),
                (None, None) => break,
            }
        }
        self.sorted = merged;
    }

    /// Keep only the keys for which `keep` holds.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Slot) -> bool) {
        self.sorted.retain(|(_, s)| keep(s));
        self.fresh.retain(|_, s| keep(s));
        if self.sorted.len() < self.sorted.capacity() / 2 {
            self.sorted.shrink_to_fit();
        }
    }

    /// Every key and slot (sorted ones first).
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, Slot)> + '_ {
        self.sorted.iter().copied().chain(self.fresh.iter().map(|(h, s)| (*h, *s)))
    }

    /// Keys held.
    pub(super) fn len(&self) -> usize {
        self.sorted.len() + self.fresh.len()
    }

    /// Bytes held for the keys (the vector's room, and the fresh table's slots and control
    /// bytes).
    pub(super) fn bytes(&self) -> usize {
        let entry = std::mem::size_of::<(u64, Slot)>();
        self.sorted.capacity() * entry + self.fresh.capacity() * (entry + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(at: u32) -> Slot {
        Slot { at, tag: 0 }
    }

    #[test]
    fn keys_read_back_across_merges_and_updates_change_one_slot() {
        let mut t = Table::default();
        // Spread hashes, inserted out of order, through several merges.
        let hashes: Vec<u64> = (0..20_000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
        for (i, h) in hashes.iter().enumerate() {
            t.insert(*h, slot(i as u32));
        }
        assert_eq!(t.len(), hashes.len());
        assert!(t.sorted.len() > t.fresh.len(), "most keys are in the sorted vector");
        assert!(t.sorted.windows(2).all(|w| w[0].0 < w[1].0));
        for (i, h) in hashes.iter().enumerate() {
            assert_eq!(t.get(*h), Some(slot(i as u32)));
        }
        assert!(!t.contains(1));
        // Updating a key, sorted or fresh, leaves one copy.
        t.update(hashes[0], slot(0), |s| s.tag = 7);
        t.update(hashes[19_999], slot(0), |s| s.tag = 9);
        t.update(5, slot(42), |s| s.tag |= 1);
        assert_eq!((t.get(hashes[0]).unwrap().tag, t.get(hashes[19_999]).unwrap().tag), (7, 9));
        assert_eq!(t.get(5), Some(Slot { at: 42, tag: 1 }));
        assert_eq!(t.len(), hashes.len() + 1);
        assert_eq!(t.iter().count(), t.len());
    }

    #[test]
    fn retain_drops_and_gives_room_back_and_bytes_stay_near_sixteen_a_key() {
        let mut t = Table::default();
        for i in 0..100_000u64 {
            t.insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), slot((i % 10) as u32));
        }
        let per_key = t.bytes() as f64 / t.len() as f64;
        assert!(per_key < 24.0, "{per_key} bytes a key");
        t.retain(|s| s.at == 0);
        assert_eq!(t.len(), 10_000);
        assert!(t.bytes() < 400_000, "{}", t.bytes());
        assert!(t.iter().all(|(_, s)| s.at == 0));
    }
}
