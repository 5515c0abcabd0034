//! Run-wide counts: packets read, what was skipped and why, connections by outcome.

use crate::decode::Skip;
use crate::ingest::IngestCounts;
use crate::tcp::Connection;
use crate::tcp::report::{self, Close, HandshakeStatus};
use crate::time::Timestamp;

/// libpcap's counters for a live capture.
#[derive(Clone, Copy, Debug, Default)]
pub struct CaptureStats {
    pub received: u64,
    pub dropped: u64,
    pub if_dropped: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub packets: u64,
    /// Packets the BPF filter rejected (files only; live filtering happens in the kernel).
    pub filtered_out: u64,
    pub tcp_segments: u64,
    pub skipped: [u64; Skip::ALL.len()],
    pub connections: u64,
    pub handshakes: [u64; 5],
    pub closes: [u64; 6],
    pub resets: u64,
    pub retransmissions: u64,
    pub port_reuses: u64,
    /// Segments of connections already retired (stragglers during TIME_WAIT).
    pub late_segments: u64,
    /// Connections forgotten to make room (`--max-connections`) or after `--idle-timeout`.
    pub evicted: u64,
    pub idle_expired: u64,
    /// Most connections held at once: what the memory follows.
    pub peak_connections: u64,
    /// Segments carrying each analysis flag, in the order of `Flags::NAMES`.
    pub analysis: [u64; 16],
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    pub live: Option<CaptureStats>,
    /// The reason reading stopped early, if it did.
    pub read_error: Option<String>,
    /// `--fail-on` matches, in order of connection id.
    pub failures: Vec<Failure>,
}

/// A connection that matched `--fail-on`.
#[derive(Clone, Debug)]
pub struct Failure {
    pub id: u64,
    /// The frame that opened the connection (what orders connections across shards).
    pub first_frame: u64,
    pub client: String,
    pub server: String,
    pub kinds: Vec<&'static str>,
}

pub const HANDSHAKES: [HandshakeStatus; 5] = [
    HandshakeStatus::Complete,
    HandshakeStatus::Refused,
    HandshakeStatus::Unanswered,
    HandshakeStatus::Incomplete,
    HandshakeStatus::NotSeen,
];

pub const CLOSES: [Close; 6] = [
    Close::FourWay,
    Close::ThreeSegment,
    Close::Simultaneous,
    Close::Reset,
    Close::Refused,
    Close::None,
];

impl Summary {
    /// Takes over the counts of the reading stage.
    pub fn add_ingest(&mut self, c: &IngestCounts) {
        self.packets += c.packets;
        self.filtered_out += c.filtered_out;
        self.tcp_segments += c.tcp_segments;
        for (total, n) in self.skipped.iter_mut().zip(c.skipped) {
            *total += n;
        }
        for ts in [c.first_ts, c.last_ts].into_iter().flatten() {
            self.count_packet_time(ts);
        }
    }

    pub fn count_packet_time(&mut self, ts: Timestamp) {
        if self.first_ts.is_none_or(|f| ts < f) {
            self.first_ts = Some(ts);
        }
        if self.last_ts.is_none_or(|l| ts > l) {
            self.last_ts = Some(ts);
        }
    }

    pub fn count_skip(&mut self, s: Skip) {
        self.skipped[s.index()] += 1;
    }

    pub fn undecodable(&self) -> u64 {
        self.skipped.iter().sum()
    }

    /// Adds the connection counts of another shard of the same run (the packet counts come
    /// from the reading stage, once). The peak becomes the sum of the shards' peaks: an upper
    /// bound, since they need not peak at once. Failures keep their shard's ids until the
    /// caller renumbers them.
    pub fn add_shard(&mut self, other: &Summary) {
        self.add_connection_counts(other);
        self.late_segments += other.late_segments;
        self.evicted += other.evicted;
        self.idle_expired += other.idle_expired;
        self.peak_connections += other.peak_connections;
        self.failures.extend(other.failures.iter().cloned());
    }

    /// Adds what `other` counted with [`Summary::count_connection`].
    pub fn add_connection_counts(&mut self, other: &Summary) {
        self.connections += other.connections;
        for (a, b) in self.handshakes.iter_mut().zip(other.handshakes) {
            *a += b;
        }
        for (a, b) in self.closes.iter_mut().zip(other.closes) {
            *a += b;
        }
        for (a, b) in self.analysis.iter_mut().zip(other.analysis) {
            *a += b;
        }
        self.resets += other.resets;
        self.retransmissions += other.retransmissions;
        self.port_reuses += other.port_reuses;
    }

    /// Adds a connection that has been closed out.
    pub fn count_connection(&mut self, c: &Connection) {
        self.connections += 1;
        let h = report::handshake_status(c);
        if let Some(i) = HANDSHAKES.iter().position(|&x| x == h) {
            self.handshakes[i] += 1;
        }
        let k = report::close(c);
        if let Some(i) = CLOSES.iter().position(|&x| x == k) {
            self.closes[i] += 1;
        }
        if c.reset.is_some() {
            self.resets += 1;
        }
        if c.reused_from.is_some() {
            self.port_reuses += 1;
        }
        self.retransmissions += u64::from(c.retransmissions().total());
        for e in &c.ep {
            for (total, n) in self.analysis.iter_mut().zip(e.analysis.counts) {
                *total += u64::from(n);
            }
        }
    }
}
