//! The flow table: groups segments by 4-tuple into connections and decides when a connection
//! is over.
//!
//! A 4-tuple maps to its current connection. A SYN with a new ISN on a known 4-tuple starts a
//! new incarnation (port reuse) and retires the old one. A connection whose endpoints are both
//! closed is kept a while longer (its TIME_WAIT, or `linger` of capture time after a reset) so
//! that late segments — a retransmitted FIN, a TIME_WAIT re-ACK — still land on it; then it is
//! retired and handed to the caller, so memory follows the connections alive at one moment,
//! not the length of the capture. Deadlines sit in a min-heap checked as packet time advances.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;

use rustc_hash::FxHashMap;

use crate::decode::Segment;
use crate::event::Event;
use crate::tcp::conn::{Connection, Observation, TrackerConfig};
use crate::time::{Duration, Timestamp};

/// The two endpoints in a canonical order, so both directions find the same entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    lo: SocketAddr,
    hi: SocketAddr,
}

impl FlowKey {
    pub fn of(seg: &Segment) -> FlowKey {
        if seg.src <= seg.dst {
            FlowKey {
                lo: seg.src,
                hi: seg.dst,
            }
        } else {
            FlowKey {
                lo: seg.dst,
                hi: seg.src,
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct FlowConfig {
    pub tracker: TrackerConfig,
    /// How long a connection whose endpoints are both CLOSED is kept for late segments.
    pub linger: Duration,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            tracker: TrackerConfig::default(),
            linger: Duration(60 * Timestamp::NANOS_PER_SEC),
        }
    }
}

struct Slot {
    conn: Connection,
    key: FlowKey,
    /// The deadline this slot has in the heap (the earliest one, if several).
    scheduled: Option<Timestamp>,
}

pub struct FlowTable {
    by_key: FxHashMap<FlowKey, usize>,
    by_id: FxHashMap<u64, usize>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    deadlines: BinaryHeap<Reverse<(Timestamp, usize, u64)>>,
    next_id: u64,
    config: FlowConfig,
    /// Connections retired during the current step, until the caller takes them.
    retired: Vec<Connection>,
    pub connections_seen: u64,
}

impl FlowTable {
    pub fn new(config: FlowConfig) -> FlowTable {
        FlowTable {
            by_key: FxHashMap::default(),
            by_id: FxHashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            deadlines: BinaryHeap::new(),
            next_id: 1,
            config,
            retired: Vec::new(),
            connections_seen: 0,
        }
    }

    /// Number of connections held now.
    pub fn live(&self) -> usize {
        self.by_key.len()
    }

    /// Routes one segment to its connection; events go to `out`.
    pub fn segment(&mut self, seg: &Segment, out: &mut Vec<Event>) -> (u64, Observation) {
        self.advance(seg.ts, out);
        let key = FlowKey::of(seg);
        let mut reused_from = None;
        if let Some(&slot) = self.by_key.get(&key) {
            let s = self.slots[slot].as_mut().expect("mapped slot is live");
            if !s.conn.is_new_incarnation(seg) {
                let obs = s.conn.observe(seg, out);
                let id = s.conn.id;
                self.reschedule(slot);
                return (id, obs);
            }
            s.conn.superseded(seg.ts, self.next_id, out);
            reused_from = Some(s.conn.id);
            self.retire(slot);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.connections_seen += 1;
        let (conn, obs) = Connection::start(id, seg, self.config.tracker, reused_from, out);
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.slots[slot] = Some(Slot {
            conn,
            key,
            scheduled: None,
        });
        self.by_key.insert(key, slot);
        self.by_id.insert(id, slot);
        self.reschedule(slot);
        (id, obs)
    }

    /// The connection with this id, live or retired during the current step.
    pub fn get(&self, id: u64) -> Option<&Connection> {
        match self.by_id.get(&id) {
            Some(&slot) => self.slots[slot].as_ref().map(|s| &s.conn),
            None => self.retired.iter().find(|c| c.id == id),
        }
    }

    /// Takes the connections retired since the last call.
    pub fn take_retired(&mut self) -> std::vec::Drain<'_, Connection> {
        self.retired.drain(..)
    }

    /// When this connection next needs attention: its TIME_WAIT expiry, or the end of its
    /// linger once both endpoints are closed.
    fn deadline(&self, conn: &Connection) -> Option<Timestamp> {
        conn.time_wait_deadline().or_else(|| {
            conn.is_finished()
                .then(|| conn.last_ts.plus(self.config.linger))
        })
    }

    fn reschedule(&mut self, slot: usize) {
        let Some(s) = self.slots[slot].as_ref() else {
            return;
        };
        let Some(due) = self.deadline(&s.conn) else {
            return;
        };
        let id = s.conn.id;
        let s = self.slots[slot].as_mut().expect("checked above");
        if s.scheduled.is_none_or(|t| due < t) {
            s.scheduled = Some(due);
            self.deadlines.push(Reverse((due, slot, id)));
        }
    }

    /// Handles every deadline at or before `now`.
    pub fn advance(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        while let Some(&Reverse((due, slot, id))) = self.deadlines.peek() {
            if due > now {
                break;
            }
            self.deadlines.pop();
            let live = matches!(&self.slots[slot], Some(s) if s.conn.id == id);
            if !live {
                continue;
            }
            let s = self.slots[slot].as_mut().expect("checked above");
            if s.scheduled == Some(due) {
                s.scheduled = None;
            }
            s.conn.expire_time_wait(due, out);
            match self.deadline(&self.slots[slot].as_ref().expect("live").conn) {
                Some(next) if next > due => {
                    let s = self.slots[slot].as_mut().expect("live");
                    if s.scheduled.is_none_or(|t| next < t) {
                        s.scheduled = Some(next);
                        self.deadlines.push(Reverse((next, slot, id)));
                    }
                }
                Some(_) => self.retire(slot),
                None => {}
            }
        }
    }

    fn retire(&mut self, slot: usize) {
        if let Some(s) = self.slots[slot].take() {
            self.by_key.remove(&s.key);
            self.by_id.remove(&s.conn.id);
            self.free.push(slot);
            self.retired.push(s.conn);
        }
    }

    /// The capture is over at `end`: every connection still held is closed out and retired, in
    /// order of id.
    pub fn finish(&mut self, end: Timestamp, out: &mut Vec<Event>) {
        self.advance(end, out);
        let mut slots: Vec<usize> = self.by_key.values().copied().collect();
        slots.sort_by_key(|&i| self.slots[i].as_ref().map(|s| s.conn.id));
        for slot in slots {
            if let Some(s) = self.slots[slot].as_mut() {
                s.conn.end_of_capture(end, out);
            }
            self.retire(slot);
        }
    }
}
