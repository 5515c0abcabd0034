//! The flow table: groups segments by 4-tuple into connections and decides when a connection
//! is over, so that memory follows the connections alive at one moment, not the length of the
//! capture.
//!
//! - A 4-tuple maps to its current connection. A SYN with a new ISN on a known 4-tuple starts a
//!   new incarnation (port reuse) and retires the old one.
//! - A connection whose endpoints are both closed (or in TIME_WAIT) is kept `linger` of capture
//!   time after its last segment, so late segments (a retransmitted FIN, a TIME_WAIT re-ACK)
//!   still land on it. Then it is retired and handed to the caller. If one side is still in
//!   TIME_WAIT, a small tombstone stays until TIME_WAIT expires: like the kernel's own
//!   time-wait sockets, it is enough to say when TIME_WAIT ends, to tell a new SYN on the
//!   4-tuple that it reuses that connection, and to count any straggler.
//! - A connection that stays silent longer than its idle timeout (shorter while it is still in
//!   the handshake) is retired as idle, and `max_connections` caps the table against floods by
//!   retiring the connection whose deadline comes first.
//! - In a table of more than `compact_above` connections, a connection that has seen only its
//!   first segment is kept as that segment, a tenth of its size: a flood of spoofed SYNs
//!   holds a million of those. Its next segment, or its deadline, makes it a connection
//!   again by observing the first segment anew.
//!
//! Deadlines sit in a calendar queue (`timer.rs`) checked as packet time advances; an entry is
//! checked against the connection's current deadline when it comes due, so a busy connection
//! is rescheduled only then, never per packet.

mod index;
mod tombstones;

use std::net::SocketAddr;

use rustc_hash::FxHashMap;

use index::FlowIndex;
use tombstones::{Tombstone, Tombstones};

use crate::decode::Segment;
use crate::event::{Event, EventKind};
use crate::prefetch::prefetch;
use crate::tcp::TcpState;
use crate::tcp::conn::{Connection, EndReason, Observation, Side, TrackerConfig};
use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Timestamp};
use crate::timer::TimerWheel;

/// The two endpoints in a canonical order, so both directions find the same entry. An address
/// is kept as two 64-bit words of its IPv6 form (IPv4 as IPv4-mapped), high word first: the key
/// hashes in a few word operations, which matters since every packet looks it up, and takes 48
/// bytes (a `u128` would pad it to 64), which matters for the tens of thousands of TIME_WAIT
/// tombstones a busy capture holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    lo: Endpoint,
    hi: Endpoint,
}

type Endpoint = ([u64; 2], u16);

fn endpoint(a: &SocketAddr) -> Endpoint {
    let ip = match a {
        SocketAddr::V4(v4) => u128::from(v4.ip().to_ipv6_mapped()),
        SocketAddr::V6(v6) => u128::from(*v6.ip()),
    };
    ([(ip >> 64) as u64, ip as u64], a.port())
}

impl FlowKey {
    pub fn of(seg: &Segment) -> FlowKey {
        let (a, b) = (endpoint(&seg.src), endpoint(&seg.dst));
        if a <= b {
            FlowKey { lo: a, hi: b }
        } else {
            FlowKey { lo: b, hi: a }
        }
    }

    /// A well-mixed number from the key, the same for both directions (the key is ordered):
    /// the flow index's hash, and what spreads connections over the shards of a sharded run.
    pub fn spread(&self) -> u64 {
        let fold = |([high, low], port): Endpoint| high ^ low ^ u64::from(port);
        let mut h = fold(self.lo) ^ fold(self.hi).rotate_left(29);
        // MurmurHash3's 64-bit finaliser: every input bit reaches every output bit.
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// The soonest the next check of an open connection can come after its last segment: the
/// shorter of `CHECK_EVERY` and its timeouts (0 is none).
fn open_step(config: &FlowConfig) -> Duration {
    [config.idle_timeout, config.handshake_timeout]
        .into_iter()
        .filter(|t| t.0 != 0)
        .fold(CHECK_EVERY, Duration::min)
}

/// A busy connection's deadline is checked at least this often. Most connections close long
/// before their idle timeout, and the entry of a deadline that has moved stays in the queue
/// until its time comes: entries at most this far ahead keep the queue to the connections of
/// the last few seconds, not the last five minutes. A connection found silent for this long
/// is checked next at its deadline (see `FlowTable::due`).
const CHECK_EVERY: Duration = Duration(10 * Timestamp::NANOS_PER_SEC);

#[derive(Clone, Copy, Debug)]
pub struct FlowConfig {
    pub tracker: TrackerConfig,
    /// How long a closed connection is kept after its last segment for late segments.
    pub linger: Duration,
    /// Silence after which an open connection is forgotten.
    pub idle_timeout: Duration,
    /// The same while the connection is still in its handshake (a SYN flood's half-open
    /// connections must not stay for the full idle timeout).
    pub handshake_timeout: Duration,
    /// At most this many connections are held; beyond it the one due first is retired.
    pub max_connections: usize,
    /// A connection that opens while at least this many others are held is kept as its
    /// segments while they are only SYNs and SYN-ACKs (see `Held::Opening`): a SYN flood's
    /// way. Below it (ordinary captures) nothing is kept so, and no connection is ever made
    /// twice.
    pub compact_above: usize,
    /// Keep what [`FlowTable::get`] needs: an index of the connections by id. The text
    /// timeline and the per-segment view ask for connections by id; JSON and the table do
    /// not, and keeping it cost a cache miss for every connection retired.
    pub find_by_id: bool,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            tracker: TrackerConfig::default(),
            linger: Duration(5 * Timestamp::NANOS_PER_SEC),
            idle_timeout: Duration(300 * Timestamp::NANOS_PER_SEC),
            handshake_timeout: Duration(150 * Timestamp::NANOS_PER_SEC),
            max_connections: 1_000_000,
            compact_above: 65_536,
            find_by_id: true,
        }
    }
}

/// What a slot holds of its connection.
enum Held {
    /// Boxed: the slot table then holds pointers, a connection is moved by pointer when it
    /// is retired, and memory is taken only for connections that exist.
    Full(Box<Connection>),
    /// A connection that has seen only SYNs and SYN-ACKs (at most `OPENING_SEGMENTS`), kept
    /// as those segments: the half-open connections of a SYN flood from spoofed sources each
    /// take this (under 200 bytes a segment) instead of a connection (about 1.5 KB with its
    /// lists). The tracker is pure, so observing the segments again in a new connection of
    /// the same id gives back the same connection: that is done before anything else looks
    /// at it.
    Opening(Box<Opening>),
}

struct Opening {
    /// The connection's first segment, and the others in order: most openings (a flood's
    /// unanswered SYNs) have one, which then takes no allocation of its own.
    first: Segment,
    more: Vec<Segment>,
    reused_from: Option<u64>,
    /// The connection's deadline when it was kept so (nothing changes it while it is).
    deadline: Timestamp,
}

/// An opening holds at most this many segments: a SYN and its retransmissions, or a SYN-ACK
/// and its (Linux sends 5 by default).
const OPENING_SEGMENTS: usize = 8;

/// Can a connection whose segments so far are `segs` be kept as them?
fn is_opening(segs: &[Segment]) -> bool {
    let handshake_only =
        |s: &Segment| s.flags.syn() && !s.flags.rst() && !s.flags.fin() && s.payload_len == 0;
    segs.len() <= OPENING_SEGMENTS && segs.iter().all(handshake_only)
}

struct Slot {
    held: Held,
    /// The connection's id, kept beside the pointer: a deadline that comes due is checked
    /// against it, and most are stale (rescheduled since), so reading it must not fetch the
    /// connection itself from memory.
    id: u64,
    key: FlowKey,
    /// The deadline this slot has in the heap (the earliest one, if several).
    scheduled: Option<Timestamp>,
}

/// Where a segment went.
pub enum Routed {
    /// To a live connection, by id; what the tracker made of the segment is
    /// [`FlowTable::observation`].
    Live(u64),
    /// To a connection already retired and reported, whose TIME_WAIT is still running: a
    /// straggler. (connection id, sender side, relative seq, relative ack)
    Late(u64, Side, u32, u32),
}

pub struct FlowTable {
    /// The slot of each live connection, by its key's `spread`.
    by_key: FlowIndex,
    by_id: FxHashMap<u64, usize>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// (connection id, slot) by deadline, equal deadlines in id order; an entry whose slot now
    /// holds another connection, or whose connection has a later deadline by now, is stale and
    /// skipped.
    deadlines: TimerWheel<(u64, usize)>,
    tombstones: Tombstones,
    /// Each tombstone's expiry, with its connection's id and its place among the tombstones.
    tombstone_deadlines: TimerWheel<(u64, usize)>,
    next_id: u64,
    config: FlowConfig,
    /// Connections retired during the current step, until the caller takes them, and where
    /// each id sits in that list (events of the same step still refer to them).
    // Boxed on purpose: retiring a connection moves a pointer, not 1.4 KB.
    #[allow(clippy::vec_box)]
    retired: Vec<Box<Connection>>,
    retired_index: FxHashMap<u64, usize>,
    /// Slots still to close out at the end of the input, latest id first.
    finishing: Option<Vec<usize>>,
    /// The TIME_WAIT tombstones and their deadlines, set aside once the input is closed out.
    spent_tombstones: Option<(Tombstones, TimerWheel<(u64, usize)>)>,
    /// The connection the last segment went to, if it may be kept as an opening (see
    /// [`Held::Opening`]): its slot, its id and all its segments. It is kept so at the next
    /// step, once the events of its segment are written (they look the connection up).
    pending_opening: Option<(usize, u64, Vec<Segment>)>,
    /// What the tracker made of the last segment routed to a live connection.
    observation: Observation,
    /// The soonest an open connection's next check can come after its last segment.
    open_step: Duration,
    /// Boxes of finished connections, reused for new ones.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Connection>>,
    /// The processor has `prefetchw` (see `boxed`).
    prefetch_write: bool,
    pub connections_seen: u64,
    /// Segments of connections already retired (stragglers in TIME_WAIT).
    pub late_segments: u64,
    /// Connections retired because the table was full.
    pub evicted: u64,
    /// Connections retired because they were silent too long.
    pub idle_expired: u64,
    /// Most connections held at once.
    pub peak_live: usize,
}

impl FlowTable {
    pub fn new(config: FlowConfig) -> FlowTable {
        FlowTable {
            by_key: FlowIndex::default(),
            by_id: FxHashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            deadlines: TimerWheel::default(),
            tombstones: Tombstones::default(),
            tombstone_deadlines: TimerWheel::default(),
            next_id: 1,
            config,
            retired: Vec::new(),
            retired_index: FxHashMap::default(),
            finishing: None,
            spent_tombstones: None,
            pending_opening: None,
            observation: Observation::NONE,
            spare: Vec::new(),
            prefetch_write: crate::prefetch::can_prefetch_write(),
            connections_seen: 0,
            late_segments: 0,
            evicted: 0,
            idle_expired: 0,
            peak_live: 0,
            open_step: open_step(&config),
        }
    }

    /// Number of connections held now.
    pub fn live(&self) -> usize {
        self.by_key.len()
    }

    /// Asks the CPU for what routing a segment of the spread `hash` reads first, a few
    /// segments ahead: its place in the index of live connections (64 KB and more, read at
    /// random) and, for a segment that opens a connection, in the index of tombstones (a
    /// minute of closes, a megabyte on the benchmark), which its lookup otherwise waits for.
    #[inline]
    pub fn prefetch_lookup(&self, hash: u64, opens: bool) {
        self.by_key.prefetch_home(hash);
        if opens {
            self.tombstones.prefetch_lookup(hash);
        }
    }

    /// Asks the CPU for the connection that a segment whose 4-tuple spreads to `hash` will
    /// reach: its index entry was asked for a few segments before.
    #[inline]
    pub fn prefetch_connection(&self, hash: u64) {
        if let Some(slot) = self.by_key.candidates(hash).next()
            && let Some(Some(Slot {
                held: Held::Full(conn),
                ..
            })) = self.slots.get(slot)
        {
            prefetch(&**conn);
        }
    }

    /// Routes one segment to its connection; events go to `out`.
    pub fn segment(&mut self, seg: &Segment, out: &mut Vec<Event>) -> Routed {
        self.segment_hashed(seg, FlowKey::of(seg).spread(), out)
    }

    /// The slot of the live connection of `key`, whose spread is `hash`.
    fn find(&self, key: &FlowKey, hash: u64) -> Option<usize> {
        self.by_key
            .candidates(hash)
            .find(|&slot| self.slots[slot].as_ref().is_some_and(|s| s.key == *key))
    }

    /// [`FlowTable::segment`] for a segment whose 4-tuple's spread is known already: `hash`
    /// must be `FlowKey::of(seg).spread()` (the reading thread computes it once per packet).
    pub fn segment_hashed(&mut self, seg: &Segment, hash: u64, out: &mut Vec<Event>) -> Routed {
        if self.pending_opening.is_some() {
            self.keep_pending_opening();
        }
        self.advance(seg.ts, out);
        let key = FlowKey::of(seg);
        debug_assert_eq!(hash, key.spread(), "segment_hashed needs the key's spread");
        let mut reused_from = None;
        if let Some(slot) = self.find(&key, hash) {
            let next_id = self.next_id;
            // An opening's segments, made whole again: the segment may keep it one.
            let segs = self.make_whole(slot);
            let Some(Slot {
                held: Held::Full(conn),
                ..
            }) = &mut self.slots[slot]
            else {
                unreachable!("a live slot, made whole above");
            };
            if !conn.is_new_incarnation(seg) {
                observe(conn, seg, out, &mut self.observation);
                let id = conn.id;
                if let Some(mut segs) = segs {
                    segs.push(*seg);
                    if is_opening(&segs) {
                        self.pending_opening = Some((slot, id, segs));
                    }
                }
                // Closing brings the deadline forward (idle timeout → linger).
                self.reschedule(slot);
                return Routed::Live(id);
            }
            conn.superseded(seg.ts, next_id, out);
            reused_from = Some(conn.id);
            self.retire(slot, EndReason::Replaced);
        } else if let Some((place, &t)) = self.tombstones.get(&key, hash) {
            if !seg.flags.syn() || seg.flags.ack() {
                self.late_segments += 1;
                let src_is_lo = endpoint(&seg.src) == key.lo;
                let side = if src_is_lo == t.client_is_lo {
                    Side::Client
                } else {
                    Side::Server
                };
                let rel = |s: SeqNum, base: Option<SeqNum>| base.map_or(s.0, |b| s.relative_to(b));
                let i = side as usize;
                return Routed::Late(
                    t.id,
                    side,
                    rel(seg.seq, t.base[i]),
                    rel(seg.ack, t.base[1 - i]),
                );
            }
            // A new SYN on a 4-tuple still in TIME_WAIT: the kernel reopens it.
            self.tombstones.remove(place);
            reused_from = Some(t.id);
            for (i, side) in [Side::Client, Side::Server].into_iter().enumerate() {
                if t.time_wait[i] && seg.ts < t.until {
                    out.push(Event {
                        ts: seg.ts,
                        conn: t.id,
                        from: side,
                        kind: EventKind::TimeWaitEndedBySyn {
                            new_conn: self.next_id,
                        },
                        states: [TcpState::Closed, TcpState::Closed],
                    });
                }
            }
        }
        if self.live() >= self.config.max_connections {
            self.evict_one(seg.ts, out);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.connections_seen += 1;
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let mut conn = self.boxed(Connection::new(id, seg, self.config.tracker, reused_from));
        self.observation = conn.begin(seg, out);
        self.slots[slot] = Some(Slot {
            held: Held::Full(conn),
            id,
            key,
            scheduled: None,
        });
        if self.live() >= self.config.compact_above && is_opening(std::slice::from_ref(seg)) {
            self.pending_opening = Some((slot, id, vec![*seg]));
        }
        self.by_key.insert(hash, slot);
        if self.config.find_by_id {
            self.by_id.insert(id, slot);
        }
        self.peak_live = self.peak_live.max(self.by_key.len());
        self.reschedule(slot);
        Routed::Live(id)
    }

    /// What the tracker made of the last segment routed to a live connection.
    pub fn observation(&self) -> &Observation {
        &self.observation
    }

    /// `conn` in a box, a reused one if there is one (with its lists' buffers).
    fn boxed(&mut self, conn: Connection) -> Box<Connection> {
        match self.spare.pop() {
            Some(mut b) => {
                let mut old = std::mem::replace(&mut *b, conn);
                b.adopt_buffers(&mut old);
                // Spare boxes come back from the output thread, which read them last on the
                // other core: the next one is asked for now, to be written, a few dozen
                // packets before a new connection needs it.
                if self.prefetch_write {
                    // In two steps, so that no pointer is read from a line still coming: the
                    // box after next, and the parts of the next box (its line with their
                    // pointers was asked for by the call before).
                    let n = self.spare.len();
                    if n >= 2 {
                        crate::prefetch::prefetch_write_all(&*self.spare[n - 2]);
                    }
                    if let Some(next) = self.spare.last() {
                        for e in &next.ep {
                            e.analysis.prefetch_buffers_write();
                        }
                        if let Some(z) = &next.zeek {
                            crate::prefetch::prefetch_write_all(&**z);
                        }
                    }
                }
                b
            }
            None => {
                let fresh = Box::new(conn);
                // The heap grows here: the reading thread faults in what comes next.
                crate::heap_prefault::note_fresh(&*fresh);
                fresh
            }
        }
    }

    /// The connection of a live slot, made whole again first if it was kept as an opening.
    #[inline]
    fn conn_mut(&mut self, slot: usize) -> &mut Connection {
        self.make_whole(slot);
        match &mut self.slots[slot] {
            Some(Slot {
                held: Held::Full(conn),
                ..
            }) => conn,
            _ => unreachable!("a live slot, made whole above"),
        }
    }

    /// Makes an opening whole again (see [`FlowTable::rebuild`]) and returns its segments; None
    /// if the slot held a connection already.
    #[inline]
    fn make_whole(&mut self, slot: usize) -> Option<Vec<Segment>> {
        match self.slots[slot] {
            Some(Slot {
                held: Held::Opening(_),
                ..
            }) => Some(self.rebuild(slot)),
            _ => None,
        }
    }

    /// Observes an opening's segments anew in a connection of the same id, which is then the
    /// same connection; returns the segments.
    #[cold]
    fn rebuild(&mut self, slot: usize) -> Vec<Segment> {
        let Some(Slot {
            held: Held::Opening(opening),
            id,
            key,
            scheduled,
        }) = self.slots[slot].take()
        else {
            unreachable!("an opening");
        };
        let Opening {
            first,
            more,
            reused_from,
            ..
        } = *opening;
        let mut segs = Vec::with_capacity(1 + more.len());
        segs.push(first);
        segs.extend(more);
        let mut conn = self.boxed(Connection::new(
            id,
            &segs[0],
            self.config.tracker,
            reused_from,
        ));
        // Their events were written when the segments came.
        let mut events = Vec::new();
        conn.begin(&segs[0], &mut events);
        let mut unused = Observation::NONE;
        for seg in &segs[1..] {
            observe(&mut conn, seg, &mut events, &mut unused);
        }
        self.slots[slot] = Some(Slot {
            held: Held::Full(conn),
            id,
            key,
            scheduled,
        });
        segs
    }

    /// Keeps the connection the previous segment went to as its segments, if it may still be
    /// (see [`Held::Opening`]).
    fn keep_pending_opening(&mut self) {
        let Some((slot, id, segs)) = self.pending_opening.take() else {
            return;
        };
        let Some(Slot {
            held: Held::Full(conn),
            id: slot_id,
            ..
        }) = self.slots[slot].as_ref()
        else {
            return;
        };
        if *slot_id != id || conn.packets() != segs.len() as u64 {
            return;
        }
        let (first, more) = segs.split_first().expect("an opening has a segment");
        let opening = Opening {
            first: *first,
            // Exactly as long as needed (held for seconds, perhaps a million of them), and
            // no allocation when empty.
            more: more.to_vec(),
            reused_from: conn.reused_from,
            deadline: self.deadline(conn),
        };
        let s = self.slots[slot].as_mut().expect("checked above");
        if let Held::Full(conn) = std::mem::replace(&mut s.held, Held::Opening(Box::new(opening))) {
            self.recycle(conn);
        }
    }

    /// How many connections are kept as openings now, and the most segments one holds.
    #[cfg(test)]
    fn openings(&self) -> (usize, usize) {
        let segments = |s: &Slot| match &s.held {
            Held::Opening(o) => Some(1 + o.more.len()),
            Held::Full(_) => None,
        };
        let kept: Vec<usize> = self.slots.iter().flatten().filter_map(segments).collect();
        (kept.len(), kept.iter().copied().max().unwrap_or(0))
    }

    /// Takes back the box of a connection the caller is done with, to reuse it. Once the
    /// input is being closed out, every box is kept, none freed: nothing will reuse them,
    /// and the run ends right after (freeing them is left to whoever drops the table).
    pub fn recycle(&mut self, conn: Box<Connection>) {
        if self.spare.len() < 4096 || self.finishing.is_some() {
            self.spare.push(conn);
        }
    }

    /// The connection with this id, live or retired during the current step.
    pub fn get(&self, id: u64) -> Option<&Connection> {
        debug_assert!(self.config.find_by_id, "get needs FlowConfig::find_by_id");
        match self.by_id.get(&id) {
            // An opening's events are all written: nobody asks for it.
            Some(&slot) => match &self.slots[slot].as_ref()?.held {
                Held::Full(conn) => Some(&**conn),
                Held::Opening(_) => None,
            },
            None => self.retired_index.get(&id).map(|&i| &*self.retired[i]),
        }
    }

    /// Whether connections were retired since the last `take_retired`.
    pub fn has_retired(&self) -> bool {
        !self.retired.is_empty()
    }

    /// Takes the connections retired since the last call.
    pub fn take_retired(&mut self) -> std::vec::Drain<'_, Box<Connection>> {
        self.retired_index.clear();
        self.retired.drain(..)
    }

    /// When this connection next needs attention (the next check of it is at the earliest of
    /// this and `CHECK_EVERY` after its last segment).
    fn deadline(&self, conn: &Connection) -> Timestamp {
        if conn.is_closed_or_time_wait() {
            let linger_end = conn.last_ts.plus(self.config.linger);
            conn.time_wait_deadline()
                .map_or(linger_end, |tw| tw.min(linger_end))
        } else {
            let timeout = if conn.in_handshake() {
                self.config.handshake_timeout
            } else {
                self.config.idle_timeout
            };
            // 0 means never, as in Wireshark, which has no timeouts at all.
            if timeout.0 == 0 {
                Timestamp(u64::MAX)
            } else {
                conn.last_ts.plus(timeout)
            }
        }
    }

    /// Inlined into every segment's path: most calls end at its first check.
    #[inline(always)]
    fn reschedule(&mut self, slot: usize) {
        // An opening keeps the deadline it had as a connection: nothing has changed it.
        let Some(Slot {
            held: Held::Full(conn),
            scheduled,
            ..
        }) = self.slots[slot].as_ref()
        else {
            return;
        };
        // Most segments come here from an open connection that has a check scheduled within
        // `open_step` of its last segment, which nothing below could bring forward: that is
        // known without working out the deadline.
        if scheduled.is_some_and(|t| t <= conn.last_ts.plus(self.open_step))
            && !conn.is_closed_or_time_wait()
        {
            return;
        }
        self.reschedule_from_deadline(slot);
    }

    /// The rest of `reschedule`: works the deadline out and queues a check when the one
    /// queued would come after it.
    #[inline(never)]
    fn reschedule_from_deadline(&mut self, slot: usize) {
        let Some(Slot {
            held: Held::Full(conn),
            ..
        }) = self.slots[slot].as_ref()
        else {
            return;
        };
        let due = self.deadline(conn);
        if due == Timestamp(u64::MAX) {
            return; // never
        }
        let at = due.min(conn.last_ts.plus(CHECK_EVERY));
        let id = conn.id;
        let s = self.slots[slot].as_mut().expect("checked above");
        // A check queued at or before the deadline still comes in time, and a new one would
        // leave it in the queue as a stale entry. That is the case of a connection that
        // speaks again after its check was put off to its deadline (it was silent, or a
        // full table's eviction looked at it): its segments come here until that check.
        if s.scheduled.is_none_or(|t| t > due) {
            s.scheduled = Some(at);
            self.deadlines.push(at, (id, slot));
        }
    }

    /// Handles every deadline at or before `now`.
    #[inline]
    pub fn advance(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        // Called several times for every segment, and almost always nothing is due: that
        // check is two comparisons here, without a call.
        if now >= self.deadlines.bound() || now >= self.tombstone_deadlines.bound() {
            self.advance_due(now, out);
        }
    }

    fn advance_due(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        let mut fired = false;
        while let Some((due, (id, slot))) = self.deadlines.pop_due(now) {
            fired = true;
            let live = matches!(&self.slots[slot], Some(s) if s.id == id);
            if !live {
                continue;
            }
            self.slots[slot].as_mut().expect("live").scheduled = None;
            self.due(slot, due, now, out);
        }
        if fired {
            self.prefetch_upcoming();
        }
        let mut expired = false;
        while let Some((due, (id, place))) = self.tombstone_deadlines.pop_due(now) {
            expired = true;
            if let Some(t) = self.tombstones.at(place)
                && t.id == id
            {
                for (i, side) in [Side::Client, Side::Server].into_iter().enumerate() {
                    if t.time_wait[i] {
                        out.push(Event {
                            ts: due,
                            conn: id,
                            from: side,
                            kind: EventKind::TimeWaitExpired,
                            states: [TcpState::Closed, TcpState::Closed],
                        });
                    }
                }
                self.tombstones.remove(place);
            }
        }
        // The next expiry's tombstone, out of the cache since its connection retired a
        // minute of packet time ago, is fetched meanwhile (as the deadlines' connections).
        if expired && let [Some(&(_, (_, place))), _] = self.tombstone_deadlines.upcoming() {
            self.tombstones.prefetch(place);
        }
    }

    /// A connection's deadline `due` has come: act on it, or schedule the next one.
    fn due(&mut self, slot: usize, due: Timestamp, now: Timestamp, out: &mut Vec<Event>) {
        let (next, silent) = match &self.slots[slot].as_ref().expect("live").held {
            // Nothing has changed an opening since it was kept: no TIME_WAIT to end, and the
            // deadline it had then. It is made whole only if that has come.
            Held::Opening(o) => (o.deadline, true),
            Held::Full(_) => {
                self.conn_mut(slot).expire_time_wait(due, out);
                match &self.slots[slot].as_ref().expect("live").held {
                    Held::Full(conn) => {
                        (self.deadline(conn), conn.last_ts.plus(CHECK_EVERY) <= due)
                    }
                    Held::Opening(_) => unreachable!("a connection"),
                }
            }
        };
        if next > due {
            if next != Timestamp(u64::MAX) {
                // A connection silent since its check was set (an open one left idle, an
                // unanswered SYN) is checked next at its deadline: stepping every
                // `CHECK_EVERY` read each of them out of the cache every ten seconds (97,000
                // checks on the benchmark). A busy one is checked again within
                // `CHECK_EVERY` of the packet that brought this check, not of the check's
                // own time: after a jump in the capture's time, stepping from the old time
                // would take one step per ten seconds of the jump.
                let at = if next <= now || silent {
                    next
                } else {
                    next.min(now.plus(CHECK_EVERY))
                };
                let s = self.slots[slot].as_mut().expect("live");
                s.scheduled = Some(at);
                self.deadlines.push(at, (s.id, slot));
            }
            return;
        }
        let conn = self.conn_mut(slot);
        if conn.is_closed_or_time_wait() {
            self.retire(slot, EndReason::Closed);
        } else {
            let idle = due.since(conn.last_ts);
            conn.forget(due, EventKind::IdleTimeout { idle }, out);
            self.idle_expired += 1;
            self.retire(slot, EndReason::IdleTimeout);
        }
    }

    /// Asks the CPU for what the next deadlines will read: the connection of the next one,
    /// whose slot was asked for when the deadline before it came due, and the slot of the one
    /// after. A deadline finds its slot and its connection untouched for seconds of packet
    /// time, out of the cache; deadlines come due some tens of packets apart, time enough for
    /// memory to answer. If the next one retires its connection, that takes its entry out
    /// of the index and puts one in the tombstones' index: both are asked for too.
    fn prefetch_upcoming(&self) {
        let [next, after] = self.deadlines.upcoming();
        if let Some(&(_, (id, slot))) = next
            && let Some(Some(Slot {
                held: Held::Full(conn),
                id: held_id,
                key,
                ..
            })) = self.slots.get(slot)
            && *held_id == id
        {
            prefetch(&**conn);
            let hash = key.spread();
            self.by_key.prefetch_home(hash);
            self.tombstones.prefetch_lookup(hash);
        }
        if let Some(&(_, (_, slot))) = after
            && let Some(s) = self.slots.get(slot)
        {
            prefetch(s);
        }
    }

    /// Asks the CPU for what closing out the next connections reads: they were mostly
    /// touched last long before the end (open connections silent for minutes), in no order
    /// in memory. In steps, each reading only what the step before asked for: the slot four
    /// places on, the connection two places on, and the next one's Zeek model.
    fn prefetch_finishing(&self) {
        let Some(f) = &self.finishing else { return };
        let conn_at = |back: usize| match f.len().checked_sub(back).map(|i| self.slots.get(f[i])) {
            Some(Some(Some(Slot {
                held: Held::Full(conn),
                ..
            }))) => Some(conn),
            _ => None,
        };
        if let Some(z) = conn_at(1).and_then(|conn| conn.zeek.as_ref()) {
            prefetch(&**z);
        }
        if let Some(conn) = conn_at(2) {
            prefetch(&**conn);
        }
        if let Some(s) = f.len().checked_sub(4).and_then(|i| self.slots.get(f[i])) {
            prefetch(s);
        }
    }

    /// The table is full: retire the connection whose deadline comes first (of equal ones,
    /// the oldest connection's).
    ///
    /// Every live connection with a deadline has its check queued (`Slot::scheduled`), at or
    /// before its deadline: a busy one's comes within `CHECK_EVERY`, a silent one's at the
    /// deadline. So checks are taken in order, each that comes before its connection's
    /// deadline is queued again at the deadline, and the first check that is its
    /// connection's deadline is the earliest deadline of all.
    fn evict_one(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        let mut victim = None;
        while let Some((at, (id, slot))) = self.deadlines.pop_first() {
            // A stale entry: the connection is gone, or its check was set elsewhere since.
            let Some(s) = self.slots[slot].as_ref() else {
                continue;
            };
            if s.id != id || s.scheduled != Some(at) {
                continue;
            }
            let deadline = match &s.held {
                Held::Opening(o) => o.deadline,
                Held::Full(conn) => self.deadline(conn),
            };
            if deadline > at {
                self.slots[slot].as_mut().expect("live").scheduled = Some(deadline);
                self.deadlines.push(deadline, (id, slot));
                continue;
            }
            victim = Some(slot);
            break;
        }
        // With the timeouts off nothing is scheduled: take any connection.
        let Some(slot) = victim.or_else(|| self.by_key.slots().next()) else {
            return;
        };
        let conn = self.conn_mut(slot);
        let idle = now.since(conn.last_ts);
        conn.forget(now, EventKind::Evicted { idle }, out);
        self.evicted += 1;
        self.retire(slot, EndReason::Evicted);
    }

    fn retire(&mut self, slot: usize, reason: EndReason) {
        if self.slots[slot].is_none() {
            return;
        }
        self.conn_mut(slot);
        let Some(Slot {
            held: Held::Full(mut conn),
            key,
            ..
        }) = self.slots[slot].take()
        else {
            unreachable!("made whole above");
        };
        let removed = self.by_key.remove(key.spread(), slot);
        debug_assert!(removed, "a live slot is in the index");
        if self.config.find_by_id {
            self.by_id.remove(&conn.id);
        }
        self.free.push(slot);
        conn.end_reason = reason;
        // A side still in TIME_WAIT leaves a tombstone until it expires.
        if reason == EndReason::Closed
            && let Some(until) = conn.time_wait_deadline()
        {
            let c = &conn;
            let tw = |side: Side| c.endpoint(side).state == TcpState::TimeWait;
            let place = self.tombstones.insert(
                key,
                Tombstone {
                    id: c.id,
                    client_is_lo: endpoint(&c.client) == key.lo,
                    base: [c.endpoint(Side::Client).base, c.endpoint(Side::Server).base],
                    time_wait: [tw(Side::Client), tw(Side::Server)],
                    until,
                },
            );
            self.tombstone_deadlines.push(until, (c.id, place));
        }
        if self.config.find_by_id {
            self.retired_index.insert(conn.id, self.retired.len());
        }
        self.retired.push(conn);
    }

    /// The capture is over at `end`: TIME_WAITs due by then expire, and every connection still
    /// held is closed out and retired, in order of id.
    pub fn finish(&mut self, end: Timestamp, out: &mut Vec<Event>) {
        while self.finish_some(end, out, usize::MAX) {}
    }

    /// The same, `n` connections at a time, so that the caller can write each batch out before
    /// the next is retired; returns whether connections remain.
    pub fn finish_some(&mut self, end: Timestamp, out: &mut Vec<Event>, n: usize) -> bool {
        if self.finishing.is_none() {
            self.advance(end, out);
            let mut slots: Vec<usize> = self.by_key.slots().collect();
            slots.sort_by_key(|&i| std::cmp::Reverse(self.slots[i].as_ref().map(|s| s.id)));
            self.finishing = Some(slots);
        }
        for _ in 0..n {
            let Some(slot) = self.finishing.as_mut().and_then(|f| f.pop()) else {
                break;
            };
            self.prefetch_finishing();
            if self.slots[slot].is_some() {
                self.conn_mut(slot).end_of_capture(end, out);
            }
            self.retire(slot, EndReason::CaptureEnd);
        }
        let more = self.finishing.as_ref().is_some_and(|f| !f.is_empty());
        if !more {
            // Emptied but not freed: their memory goes with the table, at the end of a run with
            // the process. Freeing it here, at the very end, took 1.4 ms on the benchmark.
            self.spent_tombstones = Some((
                std::mem::take(&mut self.tombstones),
                std::mem::take(&mut self.tombstone_deadlines),
            ));
        }
        more
    }
}

/// Feeds a segment to its connection, and frees what only an open connection needs once it
/// closes. The one way a segment reaches a live connection, also when an opening is made
/// whole again, so that both give the same connection.
fn observe(conn: &mut Connection, seg: &Segment, out: &mut Vec<Event>, obs: &mut Observation) {
    let was_closed = conn.is_closed_or_time_wait();
    conn.observe_into(seg, out, obs);
    if !was_closed && conn.is_closed_or_time_wait() {
        conn.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;

    fn seg(from_client: bool, flags: u16, seq: u32, ack: u32, secs: f64) -> Segment {
        Segment::test_between(
            from_client,
            flags,
            seq,
            ack,
            0,
            Timestamp((secs * 1e9) as u64),
        )
    }

    const S: u16 = TcpFlags::SYN;
    const A: u16 = TcpFlags::ACK;
    const F: u16 = TcpFlags::FIN;

    /// Handshake and a client-first close ending at `t0 + 0.5` s.
    fn closed_connection(t: &mut FlowTable, out: &mut Vec<Event>, t0: f64, isn: u32) {
        for s in [
            seg(true, S, isn, 0, t0),
            seg(false, S | A, 5000, isn + 1, t0 + 0.1),
            seg(true, A, isn + 1, 5001, t0 + 0.2),
            seg(true, F | A, isn + 1, 5001, t0 + 0.3),
            seg(false, F | A, 5001, isn + 2, t0 + 0.4),
            seg(true, A, isn + 2, 5002, t0 + 0.5),
        ] {
            t.segment(&s, out);
        }
    }

    /// A handshake ending at 0.2 s, its events cleared.
    fn established_connection(t: &mut FlowTable, out: &mut Vec<Event>) {
        for s in [
            seg(true, S, 1000, 0, 0.0),
            seg(false, S | A, 5000, 1001, 0.1),
            seg(true, A, 1001, 5001, 0.2),
        ] {
            t.segment(&s, out);
        }
        out.clear();
    }

    fn kinds(out: &[Event]) -> Vec<&'static str> {
        out.iter().map(|e| e.kind.name()).collect()
    }

    /// Without the index by id (JSON, the table), the same segments give the same events
    /// and the same connections retired, in the same order; only `get` is not there.
    #[test]
    fn the_index_by_id_changes_nothing_but_get() {
        let run = |find_by_id: bool| {
            let mut t = FlowTable::new(FlowConfig {
                find_by_id,
                ..FlowConfig::default()
            });
            let mut out = Vec::new();
            let mut retired = Vec::new();
            for (i, t0) in [0.0, 2.0, 70.0, 200.0].into_iter().enumerate() {
                closed_connection(&mut t, &mut out, t0, 1000 * (i as u32 + 1));
                retired.extend(t.take_retired().map(|c| (c.id, c.end_reason)));
            }
            t.finish(Timestamp::from_secs_nanos(300, 0), &mut out);
            retired.extend(t.take_retired().map(|c| (c.id, c.end_reason)));
            let events: Vec<_> = out.iter().map(|e| (e.ts, e.conn, e.kind.name())).collect();
            (events, retired)
        };
        let (with, without) = (run(true), run(false));
        assert_eq!(with, without);
        // The second SYN came while the first connection lingered (port reuse); the others
        // came after the previous TIME_WAIT, and each retired at its linger's end.
        let reasons: Vec<_> = with.1.iter().map(|&(_, r)| r).collect();
        use EndReason::{Closed, Replaced};
        assert_eq!(reasons, [Replaced, Closed, Closed, Closed]);
    }

    #[test]
    fn closed_connection_retires_after_linger_and_its_time_wait_outlives_it() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut out = Vec::new();
        closed_connection(&mut t, &mut out, 0.0, 1000);
        out.clear();
        t.advance(Timestamp(5_000_000_000), &mut out);
        assert_eq!(t.live(), 1, "kept for late segments");
        t.advance(Timestamp(11_000_000_000), &mut out);
        assert_eq!(t.live(), 0);
        let retired: Vec<Box<Connection>> = t.take_retired().collect();
        assert_eq!(retired.len(), 1);
        assert_eq!(retired[0].end_reason, EndReason::Closed);
        // A straggler 20 s later belongs to #1, already reported.
        match t.segment(&seg(false, F | A, 5001, 1002, 20.0), &mut out) {
            Routed::Late(id, side, rel_seq, rel_ack) => {
                assert_eq!((id, side, rel_seq, rel_ack), (1, Side::Server, 1, 2));
            }
            Routed::Live(..) => panic!("a straggler must not open a connection"),
        }
        assert_eq!(t.late_segments, 1);
        // TIME_WAIT (60 s from the client's last ACK at 0.5 s) expires on time.
        t.advance(Timestamp(61_000_000_000), &mut out);
        assert_eq!(kinds(&out), ["time_wait_expired"]);
        assert_eq!((out[0].conn, out[0].from), (1, Side::Client));
        assert_eq!(out[0].ts, Timestamp(60_500_000_000));
    }

    #[test]
    fn a_new_syn_ends_a_tombstoned_time_wait_and_reuses_the_tuple() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut out = Vec::new();
        closed_connection(&mut t, &mut out, 0.0, 1000);
        t.advance(Timestamp(15_000_000_000), &mut out);
        t.take_retired().for_each(drop);
        out.clear();
        let Routed::Live(id) = t.segment(&seg(true, S, 90_000, 0, 30.0), &mut out) else {
            panic!("a SYN opens a connection")
        };
        assert_eq!(id, 2);
        assert_eq!(kinds(&out), ["time_wait_ended_by_syn", "port_reuse", "syn"]);
        assert_eq!(t.get(2).unwrap().reused_from, Some(1));
    }

    #[test]
    fn silent_connections_are_forgotten_after_the_idle_timeout() {
        let (mut t, mut out) = (FlowTable::new(FlowConfig::default()), Vec::new());
        established_connection(&mut t, &mut out);
        t.advance(Timestamp(299_000_000_000), &mut out);
        assert_eq!(t.live(), 1);
        t.advance(Timestamp(301_000_000_000), &mut out);
        assert_eq!(t.live(), 0);
        assert_eq!(kinds(&out), ["idle_timeout"]);
        assert_eq!(t.idle_expired, 1);
        let c: Vec<Box<Connection>> = t.take_retired().collect();
        assert_eq!(c[0].end_reason, EndReason::IdleTimeout);
        assert_eq!(
            c[0].states(),
            [TcpState::Established, TcpState::Established]
        );
    }

    /// The table's one connection is still held a millisecond before `nanos`, and gone at it.
    fn forgotten_at(t: &mut FlowTable, out: &mut Vec<Event>, nanos: u64) {
        t.advance(Timestamp(nanos - 1_000_000), out);
        assert_eq!(t.live(), 1, "held until {nanos} ns");
        t.advance(Timestamp(nanos), out);
        assert_eq!(t.live(), 0, "forgotten at {nanos} ns");
    }

    /// Timeouts shorter than `CHECK_EVERY` still end a connection on time, whatever segments
    /// came before (each of them may leave the check scheduled as it was).
    #[test]
    fn short_timeouts_end_connections_on_time() {
        let config = FlowConfig {
            handshake_timeout: Duration(1_000_000_000),
            ..FlowConfig::default()
        };
        assert_eq!(open_step(&config), Duration(1_000_000_000));
        // A SYN, its retransmission half a second later, then nothing: forgotten one second
        // after the retransmission.
        let (mut t, mut out) = (FlowTable::new(config), Vec::new());
        t.segment(&seg(true, S, 1000, 0, 0.0), &mut out);
        t.segment(&seg(true, S, 1000, 0, 0.5), &mut out);
        forgotten_at(&mut t, &mut out, 1_500_000_000);
        // An idle timeout shorter than the handshake's: the check scheduled during the
        // handshake is too late once it is done. Established at 0.2 s, then data at 0.6 and
        // 1.0 s: forgotten at 2.0 s.
        let config = FlowConfig {
            idle_timeout: Duration(1_000_000_000),
            ..FlowConfig::default()
        };
        let (mut t, mut out) = (FlowTable::new(config), Vec::new());
        established_connection(&mut t, &mut out);
        t.segment(&seg(true, A, 1001, 5001, 0.6), &mut out);
        t.segment(&seg(false, A, 5001, 1001, 1.0), &mut out);
        forgotten_at(&mut t, &mut out, 2_000_000_000);
        assert_eq!(kinds(&out), ["idle_timeout"]);
        // Timeouts off: only `CHECK_EVERY` is left, and nothing is ever forgotten.
        let never = FlowConfig {
            handshake_timeout: Duration(0),
            idle_timeout: Duration(0),
            ..FlowConfig::default()
        };
        assert_eq!(open_step(&never), CHECK_EVERY);
        let (mut t, mut out) = (FlowTable::new(never), Vec::new());
        established_connection(&mut t, &mut out);
        t.advance(Timestamp(u64::MAX / 2), &mut out);
        assert_eq!(t.live(), 1);
    }

    /// A thousand connections, each closed within a second: the deadline queue holds the
    /// entries of the last few seconds, not one per connection until its idle timeout.
    #[test]
    fn deadlines_of_closed_connections_do_not_pile_up_until_the_idle_timeout() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut out = Vec::new();
        for i in 0..1000u32 {
            let mut c = |from_client, flags, seq, ack, secs| {
                let mut s = seg(from_client, flags, seq, ack, secs);
                let port = 20_000 + i as u16;
                if from_client {
                    s.src.set_port(port)
                } else {
                    s.dst.set_port(port)
                }
                t.segment(&s, &mut out);
            };
            let t0 = f64::from(i) * 0.1;
            c(true, S, 1000, 0, t0);
            c(false, S | A, 5000, 1001, t0 + 0.01);
            c(true, A, 1001, 5001, t0 + 0.02);
            c(true, F | A, 1001, 5001, t0 + 0.03);
            c(false, F | A, 5001, 1002, t0 + 0.04);
            c(true, A, 1002, 5002, t0 + 0.05);
        }
        // 100 s of traffic; idle timeouts of 300 s would leave an entry for every connection.
        assert!(
            t.deadlines.len() < 300,
            "{} deadlines queued",
            t.deadlines.len()
        );
        assert!(t.live() < 100, "{} connections held", t.live());
    }

    /// Capture time that jumps by centuries (a damaged or stitched file) costs one check per
    /// connection, not one per `CHECK_EVERY` of the jump (that was 10^9 steps here).
    #[test]
    fn a_jump_in_capture_time_is_crossed_in_one_step() {
        let (mut t, mut out) = (FlowTable::new(FlowConfig::default()), Vec::new());
        established_connection(&mut t, &mut out);
        t.advance(
            Timestamp(10_000_000_000 * Timestamp::NANOS_PER_SEC),
            &mut out,
        );
        assert_eq!(kinds(&out), ["idle_timeout"]);
        assert_eq!(t.live(), 0);
        assert!(t.deadlines.is_empty());
    }

    #[test]
    fn shards_split_connections_evenly_and_both_directions_alike() {
        let mut odd = 0;
        for port in 40_000u16..42_000 {
            let mut out = seg(true, S, 1, 0, 0.0);
            out.src.set_port(port);
            let mut back = seg(false, S | A, 1, 2, 0.0);
            back.dst.set_port(port);
            let spread = FlowKey::of(&out).spread();
            assert_eq!(spread, FlowKey::of(&back).spread());
            odd += spread % 2;
        }
        assert!((900..1100).contains(&odd), "{odd} of 2000 in one shard");
    }

    #[test]
    fn a_full_table_evicts_the_connection_due_first() {
        let config = FlowConfig {
            max_connections: 2,
            ..FlowConfig::default()
        };
        let mut t = FlowTable::new(config);
        let mut out = Vec::new();
        for (i, port) in [40001u16, 40002, 40003].into_iter().enumerate() {
            let mut s = seg(true, S, 1000, 0, i as f64);
            s.src.set_port(port);
            t.segment(&s, &mut out);
        }
        assert_eq!(t.live(), 2);
        assert_eq!(t.evicted, 1);
        let gone: Vec<Box<Connection>> = t.take_retired().collect();
        assert_eq!(gone[0].client.port(), 40001);
        assert_eq!(gone[0].end_reason, EndReason::Evicted);
    }

    /// The connections a table of `cap` evicts while it takes `segs` in.
    fn evicted_ports(cap: usize, segs: &[Segment]) -> Vec<(u16, EventKind)> {
        let mut t = FlowTable::new(FlowConfig {
            max_connections: cap,
            ..FlowConfig::default()
        });
        let mut out = Vec::new();
        let mut evicted = Vec::new();
        for s in segs {
            t.segment(s, &mut out);
            let kinds: Vec<EventKind> = out.drain(..).map(|e| e.kind).collect();
            for c in t.take_retired() {
                assert_eq!(c.end_reason, EndReason::Evicted);
                let kind = kinds
                    .iter()
                    .find(|k| matches!(k, EventKind::Evicted { .. }));
                evicted.push((c.client.port(), kind.expect("an event").clone()));
            }
        }
        evicted
    }

    /// The oldest of connections with the same timeout goes first, also when its check has
    /// just been made: the packet that fills the table, at 10 s, made the first connection's
    /// 10-second check before the eviction, which used to queue its next check after the
    /// second connection's first and evict the second.
    #[test]
    fn a_full_table_evicts_the_oldest_also_just_after_its_check() {
        let syns = [(40001, 0.0), (40002, 0.5), (40003, 10.0)]
            .map(|(port, secs)| seg_at(port, true, S, 1000, 0, secs));
        let idle = Duration(10 * Timestamp::NANOS_PER_SEC);
        assert_eq!(
            evicted_ports(2, &syns),
            vec![(40001, EventKind::Evicted { idle })]
        );
    }

    /// Due first across timeouts: an open connection silent since 1 s (its idle timeout of
    /// 300 s ends at 301 s) goes before an older connection still in its handshake, whose
    /// SYN was sent again at 140 and 280 s (its handshake timeout of 150 s ends at 430 s).
    /// Both were last checked by the same packets, so that their next checks came at the
    /// same times, the older connection's first: that one used to be evicted.
    #[test]
    fn a_full_table_evicts_the_connection_due_first_across_timeouts() {
        let segs = [
            seg_at(40002, true, S, 7000, 0, 0.0),
            seg_at(40001, true, S, 1000, 0, 1.0),
            seg_at(40001, false, S | A, 5000, 1001, 1.001),
            seg_at(40001, true, A, 1001, 5001, 1.002),
            seg_at(40002, true, S, 7000, 0, 140.0),
            seg_at(40002, true, S, 7000, 0, 280.0),
            seg_at(40003, true, S, 9000, 0, 290.0),
        ];
        let idle = Duration(288_998 * Timestamp::NANOS_PER_SEC / 1000);
        assert_eq!(
            evicted_ports(2, &segs),
            vec![(40001, EventKind::Evicted { idle })]
        );
    }

    /// A segment of a connection from client port `port` (the tests' client otherwise).
    fn seg_at(port: u16, from_client: bool, flags: u16, seq: u32, ack: u32, secs: f64) -> Segment {
        let mut s = seg(from_client, flags, seq, ack, secs);
        let client = if from_client { &mut s.src } else { &mut s.dst };
        client.set_port(port);
        s
    }

    /// Runs `segs` (then the end of the capture at `end` s) through a table with `config`, and
    /// returns everything it said: the events and the retired connections, in order.
    fn transcript(config: FlowConfig, segs: &[Segment], end: f64) -> (String, (usize, usize)) {
        let mut t = FlowTable::new(config);
        let (mut out, mut said, mut most_openings) = (Vec::new(), String::new(), (0, 0));
        let mut step = |t: &mut FlowTable, out: &mut Vec<Event>| {
            for e in out.drain(..) {
                said += &format!("{e:?}\n");
            }
            for c in t.take_retired() {
                said += &format!("{c:?}\n");
            }
        };
        for s in segs {
            t.segment(s, &mut out);
            step(&mut t, &mut out);
            let (n, longest) = t.openings();
            most_openings = (most_openings.0.max(n), most_openings.1.max(longest));
        }
        t.finish(Timestamp((end * 1e9) as u64), &mut out);
        step(&mut t, &mut out);
        (said, most_openings)
    }

    /// Connections kept as their segments (as in a SYN flood) end exactly as they would have
    /// as connections: answered, superseded by a new SYN, reset, timed out in the handshake,
    /// evicted from a full table, or still open at the end of the capture.
    #[test]
    fn a_connection_kept_as_its_first_segment_ends_as_it_would_have() {
        let segs = [
            seg_at(1000, true, S, 100, 0, 0.0),
            // Each new SYN turns the previous one-segment connection into an opening.
            seg_at(1001, true, S, 200, 0, 0.1),
            seg_at(1002, true, S, 300, 0, 0.2),
            // 1000 is answered, completes and closes.
            seg_at(1000, false, S | A, 7000, 101, 0.3),
            seg_at(1000, true, A, 101, 7001, 0.4),
            seg_at(1000, true, F | A, 101, 7001, 0.5),
            seg_at(1000, false, F | A, 7001, 102, 0.6),
            seg_at(1000, true, A, 102, 7002, 0.7),
            // A lone RST opens a connection that is not kept as an opening.
            seg_at(1003, false, TcpFlags::RST | A, 0, 1, 1.0),
            seg_at(1004, true, S, 400, 0, 2.0),
            // 1004 again with another ISN: a new connection replaces the opening.
            seg_at(1005, true, S, 500, 0, 2.1),
            seg_at(1004, true, S, 9400, 0, 3.0),
            // Answered SYNs whose SYN-ACK is sent again and again (a flood the server
            // answers): kept as up to eight segments, then as a connection; 1008 ends reset.
            seg_at(1008, true, S, 800, 0, 5.0),
            seg_at(1008, false, S | A, 8800, 801, 5.001),
            seg_at(1008, false, S | A, 8800, 801, 6.0),
            seg_at(1008, false, S | A, 8800, 801, 8.0),
            seg_at(1008, true, TcpFlags::RST, 801, 0, 9.0),
            seg_at(1009, true, S, 900, 0, 5.5),
            // A simultaneous open: SYNs both ways, then SYN-ACKs both ways.
            seg_at(1010, true, S, 1000, 0, 150.0),
            seg_at(1010, false, S, 2000, 0, 150.01),
            seg_at(1010, true, S | A, 1000, 2001, 150.02),
            seg_at(1010, false, S | A, 2000, 1001, 150.03),
            seg_at(1010, true, A, 1001, 2001, 150.04),
            seg_at(1006, true, S, 600, 0, 199.0),
            seg_at(1007, true, S, 700, 0, 199.5),
        ];
        let mut segs = segs.to_vec();
        // 1009's SYN-ACK, sent eight times; and between them, a client that keeps sending
        // its SYN again (1011).
        let synacks = [5.501, 6.5, 8.5, 12.5, 20.5, 36.5, 68.5, 132.5];
        segs.extend(synacks.map(|t| seg_at(1009, false, S | A, 9900, 901, t)));
        let syns = [13.0, 21.0, 37.0, 69.0, 133.0, 140.0];
        segs.extend(syns.map(|t| seg_at(1011, true, S, 1100, 0, t)));
        // In time order, so that the connections' segments interleave as on a wire.
        segs.sort_by_key(|s| s.ts);
        let always = FlowConfig {
            compact_above: 0,
            ..FlowConfig::default()
        };
        let never = FlowConfig {
            compact_above: usize::MAX,
            ..FlowConfig::default()
        };
        let (kept, most) = transcript(always, &segs, 200.0);
        let (whole, none) = transcript(never, &segs, 200.0);
        assert_eq!(none, (0, 0));
        assert!(most.0 >= 2, "openings at once: {most:?}");
        assert_eq!(most.1, OPENING_SEGMENTS, "the longest opening: {most:?}");
        assert_eq!(kept, whole);
        // 1001, 1002, 1005 and the second 1004 were never answered: each timed out in the
        // handshake (150 s). 1000 closed, 1003 and 1008 were reset. 1006, 1007, 1010, and
        // 1009 and 1011 (whose last SYN-ACK and SYN came less than 150 s before), were open
        // at the end.
        assert_eq!(whole.matches("end_reason: IdleTimeout").count(), 4);
        assert_eq!(whole.matches("end_reason: Replaced").count(), 1);
        assert_eq!(whole.matches("end_reason: Closed").count(), 3);
        assert_eq!(whole.matches("end_reason: CaptureEnd").count(), 5);
        assert!(whole.contains("simultaneous_open: true"));
        // A full table evicts an opening as it would the connection.
        for max_connections in [1, 2] {
            let (kept, _) = transcript(
                FlowConfig {
                    max_connections,
                    ..always
                },
                &segs,
                200.0,
            );
            let (whole, _) = transcript(
                FlowConfig {
                    max_connections,
                    ..never
                },
                &segs,
                200.0,
            );
            assert_eq!(kept, whole);
            assert!(kept.contains("end_reason: Evicted"));
        }
    }

    /// A flood of SYNs from spoofed sources: past `compact_above` connections, each new
    /// half-open connection is kept as its SYN, and all are still counted and retired.
    #[test]
    fn a_syn_flood_past_the_threshold_is_kept_as_openings() {
        let config = FlowConfig {
            compact_above: 1_000,
            ..FlowConfig::default()
        };
        let mut t = FlowTable::new(config);
        let mut out = Vec::new();
        for i in 0..5_000u32 {
            let mut s = seg_at(
                1024 + (i % 60_000) as u16,
                true,
                S,
                i,
                0,
                f64::from(i) * 1e-4,
            );
            // A source address per SYN, as spoofed floods have.
            s.src = std::net::SocketAddr::new([10, 1, (i >> 8) as u8, i as u8].into(), 40_000);
            t.segment(&s, &mut out);
            out.clear();
        }
        assert_eq!(t.live(), 5_000);
        // All but the first thousand and the newest one (kept whole until the next step).
        assert_eq!(t.openings(), (3_999, 1));
        // A minute on, their first checks (at 10 s) have been made and none of their
        // deadlines has come: they are still openings.
        t.advance(Timestamp(60_000_000_000), &mut out);
        assert_eq!(t.openings(), (3_999, 1));
        assert_eq!(t.live(), 5_000);
        t.finish(Timestamp(1_000_000_000), &mut out);
        let retired: Vec<Box<Connection>> = t.take_retired().collect();
        assert_eq!(retired.len(), 5_000);
        assert!(retired.iter().all(|c| c.packets() == 1 && c.in_handshake()));
    }
}
