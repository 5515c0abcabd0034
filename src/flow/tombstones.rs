//! What remains of retired connections while a side of each is still in TIME_WAIT, by
//! 4-tuple (see the flow table's documentation).
//!
//! A busy capture holds a minute of closes: 60,000 on the benchmark. A `HashMap` of keys took
//! 11.7 MB for them (it had just doubled), and its lookup when a TIME_WAIT expires missed the
//! cache. Here they sit in a slab, found by the index live connections use (8 bytes an entry,
//! see `index.rs`), and an expiry names its tombstone's place in the slab, which is fetched
//! ahead like a connection's deadline.

use super::FlowKey;
use super::index::FlowIndex;
use crate::prefetch::prefetch;
use crate::tcp::seq::SeqNum;
use crate::time::Timestamp;

/// What remains of a retired connection while one of its sides is still in TIME_WAIT.
#[derive(Clone, Copy, Debug)]
pub struct Tombstone {
    pub id: u64,
    /// The client is the key's `lo` endpoint.
    pub client_is_lo: bool,
    /// Bases for relative sequence numbers of late segments, client then server.
    pub base: [Option<SeqNum>; 2],
    /// Which sides are in TIME_WAIT, and until when.
    pub time_wait: [bool; 2],
    pub until: Timestamp,
}

#[derive(Default)]
pub struct Tombstones {
    index: FlowIndex,
    slab: Vec<Option<(FlowKey, Tombstone)>>,
    /// Places of the slab left empty by removals, reused first.
    free: Vec<usize>,
}

impl Tombstones {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tombstone of `key`, whose spread is `hash`, and its place.
    pub fn get(&self, key: &FlowKey, hash: u64) -> Option<(usize, &Tombstone)> {
        self.index
            .candidates(hash)
            .find_map(|place| match &self.slab[place] {
                Some((k, t)) if k == key => Some((place, t)),
                _ => None,
            })
    }

    /// Asks the CPU for where a lookup of the spread `hash` starts.
    pub fn prefetch_lookup(&self, hash: u64) {
        self.index.prefetch_home(hash);
    }

    /// The tombstone at `place`, if one is there.
    pub fn at(&self, place: usize) -> Option<&Tombstone> {
        self.slab.get(place)?.as_ref().map(|(_, t)| t)
    }

    /// Keeps `t` for `key`, in place of any tombstone the key had; returns its place.
    pub fn insert(&mut self, key: FlowKey, t: Tombstone) -> usize {
        let hash = key.spread();
        if let Some((place, _)) = self.get(&key, hash) {
            self.slab[place] = Some((key, t));
            return place;
        }
        let place = match self.free.pop() {
            Some(place) => place,
            None => {
                self.slab.push(None);
                self.slab.len() - 1
            }
        };
        self.slab[place] = Some((key, t));
        self.index.insert(hash, place);
        place
    }

    /// Removes the tombstone at `place`, if one is there.
    pub fn remove(&mut self, place: usize) -> Option<Tombstone> {
        let (key, t) = self.slab.get_mut(place)?.take()?;
        let removed = self.index.remove(key.spread(), place);
        debug_assert!(removed, "a tombstone is in the index");
        self.free.push(place);
        Some(t)
    }

    /// Asks the CPU for the tombstone at `place` (one whose expiry comes next).
    pub fn prefetch(&self, place: usize) {
        if let Some(entry) = self.slab.get(place) {
            prefetch(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Segment;
    use crate::time::Timestamp;

    fn key(port: u16) -> FlowKey {
        let mut seg = Segment::test_between(true, 0, 1, 0, 0, Timestamp(0));
        seg.src.set_port(port);
        FlowKey::of(&seg)
    }

    fn tomb(id: u64) -> Tombstone {
        Tombstone {
            id,
            client_is_lo: true,
            base: [Some(SeqNum(id as u32)), None],
            time_wait: [true, false],
            until: Timestamp(id),
        }
    }

    /// Tombstones are found by key, replaced by a later one of the same key, removed by
    /// place, and their places reused, whatever the order.
    #[test]
    fn found_by_key_replaced_removed_and_reused() {
        let mut t = Tombstones::default();
        let places: Vec<usize> = (0..3000)
            .map(|i| t.insert(key(i), tomb(u64::from(i))))
            .collect();
        assert_eq!(t.len(), 3000);
        for i in (0..3000).step_by(7) {
            let k = key(i);
            let (place, found) = t.get(&k, k.spread()).expect("kept");
            assert_eq!((place, found.id), (places[usize::from(i)], u64::from(i)));
        }
        // A second tombstone for key 5 takes the first one's place.
        assert_eq!(t.insert(key(5), tomb(9_005)), places[5]);
        assert_eq!(t.at(places[5]).map(|x| x.id), Some(9_005));
        assert_eq!(t.len(), 3000);
        // Every other one removed: the rest are still found, the removed ones not.
        for i in (0..3000).step_by(2) {
            assert!(t.remove(places[i]).is_some());
            assert!(t.remove(places[i]).is_none(), "removed once");
        }
        for i in 0..3000u16 {
            let k = key(i);
            assert_eq!(t.get(&k, k.spread()).is_some(), i % 2 == 1, "key {i}");
        }
        // New ones fill the places left free.
        let again = t.insert(key(60_000), tomb(60_000));
        assert!(again < 3000 && again % 2 == 0);
        assert!(t.at(again).is_some_and(|x| x.id == 60_000));
        std::mem::take(&mut t);
        assert!(t.is_empty() && t.at(again).is_none());
    }
}
