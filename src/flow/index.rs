//! Which slot of the flow table holds the connection of a 4-tuple.
//!
//! Every segment starts with this lookup, so the index is made for it:
//!
//! - The hash is the 4-tuple's [`FlowKey::spread`](super::FlowKey::spread), computed once on
//!   the reading thread and carried with the segment (the analysis does not hash the 48-byte
//!   key again).
//! - An entry is 8 bytes (32 bits of the hash, and the slot): 16 to 32 bytes a connection
//!   where a map of keys took 64 to 112, which counts when a SYN flood fills the table.
//! - Open addressing with linear probing, at most half full; a removal shifts the entries
//!   after it back (no tombstones), so probes stay short however long the capture runs.
//!
//! The index does not hold the keys: two 4-tuples whose hashes share 32 bits are told apart by
//! the caller, which compares the slot's key.

/// An entry: the hash's high 32 bits (its tag), then the slot plus one; 0 is an empty place.
type Entry = u64;

const EMPTY: Entry = 0;
const MIN_CAPACITY: usize = 1024;

pub struct FlowIndex {
    entries: Vec<Entry>,
    /// Capacity minus one (the capacity is a power of two).
    mask: usize,
    len: usize,
}

/// The part of the hash an entry keeps; its low bits choose the entry's home place. (The low
/// bits of the hash itself choose the shard of a sharded run, so within one shard they are
/// all equal.)
fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

fn entry(tag: u32, slot: usize) -> Entry {
    (u64::from(tag) << 32) | (slot as u64 + 1)
}

fn entry_tag(e: Entry) -> u32 {
    (e >> 32) as u32
}

fn entry_slot(e: Entry) -> usize {
    (e as u32 - 1) as usize
}

impl Default for FlowIndex {
    fn default() -> Self {
        FlowIndex {
            entries: vec![EMPTY; MIN_CAPACITY],
            mask: MIN_CAPACITY - 1,
            len: 0,
        }
    }
}

impl FlowIndex {
    pub fn len(&self) -> usize {
        self.len
    }

    fn home(&self, tag: u32) -> usize {
        tag as usize & self.mask
    }

    /// Asks the CPU for the place where a lookup of `hash` starts (see
    /// [`FlowTable::prefetch_lookup`](super::FlowTable::prefetch_lookup)).
    pub fn prefetch_home(&self, hash: u64) {
        crate::prefetch::prefetch(&self.entries[self.home(tag(hash))]);
    }

    /// The slots whose hash shares `hash`'s tag, in probe order: the caller checks the key.
    pub fn candidates(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let tag = tag(hash);
        let mut at = self.home(tag);
        std::iter::from_fn(move || {
            loop {
                let e = self.entries[at];
                if e == EMPTY {
                    return None;
                }
                at = (at + 1) & self.mask;
                if entry_tag(e) == tag {
                    return Some(entry_slot(e));
                }
            }
        })
    }

    /// Adds `slot` under `hash` (a slot is added once, and removed before it is reused).
    pub fn insert(&mut self, hash: u64, slot: usize) {
        // `slot + 1` must fit the entry's 32 bits: more than 4 billion connections at once
        // cannot be held in memory anyway.
        assert!(
            slot < u32::MAX as usize,
            "flow index: slot {slot} out of range"
        );
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
        }
        self.place(entry(tag(hash), slot));
        self.len += 1;
    }

    fn place(&mut self, e: Entry) {
        let mut at = self.home(entry_tag(e));
        while self.entries[at] != EMPTY {
            at = (at + 1) & self.mask;
        }
        self.entries[at] = e;
    }

    fn grow(&mut self) {
        let capacity = self.entries.len() * 2;
        let old = std::mem::replace(&mut self.entries, vec![EMPTY; capacity]);
        self.mask = self.entries.len() - 1;
        for e in old.into_iter().filter(|&e| e != EMPTY) {
            self.place(e);
        }
    }

    /// Removes `slot`, which was inserted under `hash`; false if it is not there.
    pub fn remove(&mut self, hash: u64, slot: usize) -> bool {
        let wanted = entry(tag(hash), slot);
        let mut hole = self.home(tag(hash));
        loop {
            match self.entries[hole] {
                EMPTY => return false,
                e if e == wanted => break,
                _ => hole = (hole + 1) & self.mask,
            }
        }
        // Backward-shift deletion: an entry after the hole moves into it if its home is not
        // between the hole and itself (it would not be found past an empty place otherwise).
        let mut at = (hole + 1) & self.mask;
        loop {
            let e = self.entries[at];
            if e == EMPTY {
                break;
            }
            let home = self.home(entry_tag(e));
            let from_home = at.wrapping_sub(home) & self.mask;
            let from_hole = at.wrapping_sub(hole) & self.mask;
            if from_home >= from_hole {
                self.entries[hole] = e;
                hole = at;
            }
            at = (at + 1) & self.mask;
        }
        self.entries[hole] = EMPTY;
        self.len -= 1;
        true
    }

    /// Every slot in the index, in no particular order.
    pub fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.entries
            .iter()
            .filter(|&&e| e != EMPTY)
            .map(|&e| entry_slot(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(index: &FlowIndex, keys: &[u64], key: u64) -> Option<usize> {
        index.candidates(key).find(|&slot| keys[slot] == key)
    }

    /// A hash whose home places all collide (equal low tag bits) unless `spread` is set.
    fn hash(i: u64, spread: bool) -> u64 {
        let tag = if spread {
            i.wrapping_mul(0x9e37_79b9) as u32
        } else {
            (i as u32) << 20
        };
        (u64::from(tag) << 32) | i
    }

    #[test]
    fn finds_what_was_inserted_and_forgets_what_was_removed() {
        for spread in [true, false] {
            let mut index = FlowIndex::default();
            let keys: Vec<u64> = (0..5000).map(|i| hash(i, spread)).collect();
            for (slot, &k) in keys.iter().enumerate() {
                index.insert(k, slot);
            }
            assert_eq!(index.len(), 5000);
            assert!(index.entries.len() >= 10_000, "grew to stay half empty");
            // Remove every third; the others must still be found, the removed not.
            for (slot, &k) in keys.iter().enumerate().filter(|(s, _)| s % 3 == 0) {
                assert!(index.remove(k, slot));
                assert!(!index.remove(k, slot), "removed twice");
            }
            for (slot, &k) in keys.iter().enumerate() {
                let want = (slot % 3 != 0).then_some(slot);
                assert_eq!(
                    lookup(&index, &keys, k),
                    want,
                    "slot {slot}, spread {spread}"
                );
            }
            let mut slots: Vec<usize> = index.slots().collect();
            slots.sort_unstable();
            let want: Vec<usize> = (0..5000).filter(|s| s % 3 != 0).collect();
            assert_eq!(slots, want);
        }
    }

    /// Churn like a capture's: connections come and go for a long time, probes stay short and
    /// every lookup agrees with a `HashMap` doing the same.
    #[test]
    fn agrees_with_a_hash_map_under_churn() {
        let mut index = FlowIndex::default();
        let mut model: HashMap<u64, usize> = HashMap::new();
        let mut keys = vec![0u64; 4096];
        let mut free: Vec<usize> = (0..4096).rev().collect();
        let mut x: u64 = 0x1234_5678;
        for step in 0..200_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let open = model.len();
            if open < 3000 && (x >> 60) < 9 || open == 0 {
                let k = hash(step, step % 7 != 0); // some in long collision runs
                let slot = free.pop().unwrap();
                keys[slot] = k;
                index.insert(k, slot);
                model.insert(k, slot);
            } else {
                let (&k, &slot) = model.iter().nth((x >> 33) as usize % open).unwrap();
                assert!(index.remove(k, slot));
                model.remove(&k);
                free.push(slot);
            }
            if step % 997 == 0 {
                for (&k, &slot) in &model {
                    assert_eq!(lookup(&index, &keys, k), Some(slot));
                }
                assert_eq!(index.len(), model.len());
            }
        }
        assert!(
            index.entries.len() <= 8192,
            "capacity follows the peak, not the churn"
        );
    }
}
