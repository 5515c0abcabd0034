//! Deadlines by capture time, in one-second buckets (a calendar queue).
//!
//! The flow table sets a deadline for every connection (its idle timeout, its linger after the
//! close, its TIME_WAIT) and moves it often. A binary heap paid a logarithmic cost in all the
//! deadlines for each of those; here a deadline goes into the bucket of its second (a lookup
//! among the few hundred seconds that have deadlines), and a bucket is sorted once, when its
//! second comes, so deadlines still come out in exact time order, and equal deadlines in the
//! order of their values (the flow table's come out by connection id, whatever order they
//! were set in).

use std::collections::BTreeMap;

use crate::time::Timestamp;

/// Deadlines carrying a value `T` (the flow table's connection id and slot).
pub struct TimerWheel<T> {
    /// Deadlines by their second, for the seconds after `current_sec`. A map rather than an
    /// array indexed from the earliest second: capture time can jump by years, forwards or
    /// back (damaged or stitched files), and an array would need a bucket for every second in
    /// between (gigabytes).
    buckets: BTreeMap<u64, Vec<(Timestamp, T)>>,
    /// The bucket being drained, sorted latest first so the earliest pops off the end.
    current: Vec<(Timestamp, T)>,
    /// `current` holds the deadlines of seconds up to this one.
    current_sec: Option<u64>,
    len: usize,
    /// Emptied buckets, kept with their room for the seconds to come. A bucket grows to
    /// thousands of deadlines a second and is dropped when drained; growing each new one from
    /// nothing had malloc extend its heap and the kernel clear fresh (huge) pages for it, over
    /// and over: 3% of a JSON run's time.
    spare: Vec<Vec<(Timestamp, T)>>,
    /// No deadline is earlier than this: `pop_due` before it returns at once (it is called for
    /// every packet, and almost always finds nothing due).
    bound: Timestamp,
}

impl<T: Copy> Default for TimerWheel<T> {
    fn default() -> Self {
        TimerWheel {
            buckets: BTreeMap::new(),
            current: Vec::new(),
            current_sec: None,
            len: 0,
            spare: Vec::new(),
            bound: Timestamp(u64::MAX),
        }
    }
}

impl<T: Copy + Ord> TimerWheel<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, due: Timestamp, value: T) {
        self.len += 1;
        self.bound = self.bound.min(due);
        let sec = due.secs();
        if self.current_sec.is_some_and(|c| sec <= c) {
            // Its second is being drained (or is earlier: time went back): insert in order.
            let at = self.current.partition_point(|&e| e > (due, value));
            self.current.insert(at, (due, value));
            return;
        }
        self.buckets
            .entry(sec)
            .or_insert_with(|| self.spare.pop().unwrap_or_default())
            .push((due, value));
    }

    /// No deadline is due before this time (a cheap check before `pop_due`).
    #[inline]
    pub fn bound(&self) -> Timestamp {
        self.bound
    }

    /// The earliest deadline at or before `now`, removed; None when none is due.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, T)> {
        if now < self.bound {
            return None;
        }
        loop {
            if let Some(&(due, v)) = self.current.last() {
                if due > now {
                    self.bound = due;
                    return None;
                }
                self.current.pop();
                self.len -= 1;
                return Some((due, v));
            }
            // The current second is drained: take the next bucket, if its second has come.
            let Some(&sec) = self.buckets.keys().next() else {
                self.bound = Timestamp(u64::MAX);
                return None;
            };
            if sec > now.secs() {
                self.bound = Timestamp::from_secs_nanos(sec, 0);
                return None;
            }
            let (sec, mut next) = self.buckets.pop_first().expect("checked");
            // A bucket is a few runs already in order: each kind of deadline (the next check,
            // a linger's end, a TIME_WAIT's) lies a fixed time after the packet that set it,
            // and packets come in time order. The stable sort finds the runs and merges
            // them; the unstable one sorted from scratch, 2.4% of the analysis thread's
            // instructions on the benchmark. (Equal entries are equal values: the order is
            // the same.)
            next.sort_by(|a, b| b.cmp(a));
            let drained = std::mem::replace(&mut self.current, next);
            if drained.capacity() > 0 {
                self.spare.push(drained);
            }
            self.current_sec = Some(sec);
        }
    }

    /// The earliest deadline and its value, removed, whatever its time (to make room).
    /// The next two deadlines due, soonest first, as far as the current second holds them
    /// (None past its end).
    pub fn upcoming(&self) -> [Option<&(Timestamp, T)>; 2] {
        let n = self.current.len();
        [
            n.checked_sub(1).map(|i| &self.current[i]),
            n.checked_sub(2).map(|i| &self.current[i]),
        ]
    }

    pub fn pop_first(&mut self) -> Option<(Timestamp, T)> {
        self.pop_due(Timestamp(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: f64) -> Timestamp {
        Timestamp((s * 1e9) as u64)
    }

    #[test]
    fn deadlines_come_out_in_time_order_and_only_when_due() {
        let mut w = TimerWheel::default();
        for (t, v) in [(5.5, 'a'), (3.2, 'b'), (5.1, 'c'), (3.9, 'd'), (300.0, 'e')] {
            w.push(ts(t), v);
        }
        assert_eq!(w.pop_due(ts(3.0)), None);
        assert_eq!(w.pop_due(ts(3.5)), Some((ts(3.2), 'b')));
        assert_eq!(w.pop_due(ts(3.5)), None);
        // Pushed while its second is being drained: still in order.
        w.push(ts(3.6), 'f');
        assert_eq!(w.pop_due(ts(10.0)), Some((ts(3.6), 'f')));
        assert_eq!(w.pop_due(ts(10.0)), Some((ts(3.9), 'd')));
        assert_eq!(w.pop_due(ts(10.0)), Some((ts(5.1), 'c')));
        assert_eq!(w.pop_due(ts(10.0)), Some((ts(5.5), 'a')));
        assert_eq!(w.pop_due(ts(10.0)), None);
        assert_eq!(w.len(), 1);
        // A deadline earlier than the buckets (captures are not always in time order).
        w.push(ts(2.0), 'g');
        assert_eq!(w.pop_first(), Some((ts(2.0), 'g')));
        assert_eq!(w.pop_first(), Some((ts(300.0), 'e')));
        assert!(w.is_empty());
    }

    #[test]
    fn upcoming_names_the_next_two_deadlines_of_the_current_second() {
        let mut w = TimerWheel::default();
        for (t, v) in [(5.5, 'a'), (5.1, 'c'), (5.3, 'd'), (6.2, 'e')] {
            w.push(ts(t), v);
        }
        // Nothing has come due yet: no second is current.
        assert_eq!(w.upcoming(), [None, None]);
        assert_eq!(w.pop_due(ts(5.2)), Some((ts(5.1), 'c')));
        assert_eq!(w.upcoming(), [Some(&(ts(5.3), 'd')), Some(&(ts(5.5), 'a'))]);
        assert_eq!(w.pop_due(ts(5.4)), Some((ts(5.3), 'd')));
        // 'e' is in the next second's bucket.
        assert_eq!(w.upcoming(), [Some(&(ts(5.5), 'a')), None]);
    }

    #[test]
    fn a_drained_bucket_is_kept_for_a_later_second() {
        let mut w = TimerWheel::default();
        for i in 0..100 {
            w.push(ts(1.0 + f64::from(i) / 1000.0), i);
        }
        w.push(ts(2.5), 100);
        // Second 1 becomes current, then second 2: second 1's bucket is drained and kept.
        assert_eq!(w.pop_due(ts(2.0)).map(|(_, v)| v), Some(0));
        assert!(w.spare.is_empty());
        while w.pop_due(ts(3.0)).is_some() {}
        assert_eq!(w.spare.len(), 1);
        assert!(w.spare[0].is_empty() && w.spare[0].capacity() >= 100);
        // A new second takes it, room and all.
        w.push(ts(9.0), 7);
        assert!(w.spare.is_empty());
        assert_eq!(w.pop_first(), Some((ts(9.0), 7)));
    }

    #[test]
    fn equal_deadlines_come_out_in_the_order_of_their_values() {
        let mut w = TimerWheel::default();
        for v in [7u64, 3, 9, 1] {
            w.push(ts(4.25), v);
        }
        assert_eq!(w.pop_due(ts(4.25)), Some((ts(4.25), 1)));
        // One more while its second is being drained: still in value order.
        w.push(ts(4.25), 5);
        let rest: Vec<u64> = std::iter::from_fn(|| w.pop_due(ts(5.0)).map(|(_, v)| v)).collect();
        assert_eq!(rest, [3, 5, 7, 9]);
    }

    #[test]
    fn deadlines_decades_apart_in_either_order() {
        let mut w = TimerWheel::default();
        let year = 31_557_600.0;
        w.push(ts(80.0 * year), 'a');
        w.push(ts(50.0 * year), 'b'); // time went back 30 years
        w.push(ts(110.0 * year), 'c');
        assert_eq!(w.pop_due(ts(49.0 * year)), None);
        assert_eq!(w.pop_due(ts(200.0 * year)), Some((ts(50.0 * year), 'b')));
        assert_eq!(w.pop_due(ts(200.0 * year)), Some((ts(80.0 * year), 'a')));
        assert_eq!(w.pop_due(ts(200.0 * year)), Some((ts(110.0 * year), 'c')));
        assert!(w.is_empty());
    }
}
