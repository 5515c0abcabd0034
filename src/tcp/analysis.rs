//! Per-segment analysis in Wireshark's vocabulary: retransmission, fast and spurious
//! retransmission, out-of-order, lost segment, ACKed unseen segment, duplicate ACK, zero window,
//! zero-window probe (and its ACK), window full, window update, keep-alive (and its ACK).
//!
//! The rules are Wireshark 4.0's `tcp_analyze_sequence_number`, restated in
//! `../shared/reference/analysis-rules.md` §2.4 and applied in the same order, with the same
//! per-direction state, so that on ordinary traffic both tools flag the same segments. Where
//! Wireshark's rule guesses and the capture holds the evidence, tcpscope decides from the
//! evidence instead (each case is marked `Correction` below and listed in
//! docs/differences-from-wireshark.md):
//!
//! 1. A Linux zero-window probe carries no byte at snd.una − 1, the shape of a keep-alive;
//!    when the peer's last advertised window is zero it is a zero-window probe.
//! 2. A segment whose bytes were all seen before is a retransmission, never out-of-order, however
//!    soon it follows; a segment that fills a gap is out-of-order only when it arrives within one
//!    round trip of the gap being seen, otherwise it is the retransmission of a segment lost
//!    before the capture point.
//! 5. An ACK is "of an unseen segment" only when it acknowledges unseen bytes no earlier ACK
//!    acknowledged. (3 and 4 live in the tracker, which knows the handshake and the close.)
//!
//! Like the tracker, the analyzer is pure: the segments carry the time.

use crate::decode::Segment;
use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Timestamp};

/// Analysis flags of one segment, as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(pub u32);

impl Flags {
    pub const RETRANSMISSION: u32 = 1 << 0;
    pub const FAST_RETRANSMISSION: u32 = 1 << 1;
    pub const SPURIOUS_RETRANSMISSION: u32 = 1 << 2;
    pub const OUT_OF_ORDER: u32 = 1 << 3;
    pub const LOST_SEGMENT: u32 = 1 << 4;
    pub const ACK_LOST_SEGMENT: u32 = 1 << 5;
    pub const DUPLICATE_ACK: u32 = 1 << 6;
    pub const ZERO_WINDOW: u32 = 1 << 7;
    pub const ZERO_WINDOW_PROBE: u32 = 1 << 8;
    pub const ZERO_WINDOW_PROBE_ACK: u32 = 1 << 9;
    pub const WINDOW_FULL: u32 = 1 << 10;
    pub const WINDOW_UPDATE: u32 = 1 << 11;
    pub const KEEP_ALIVE: u32 = 1 << 12;
    pub const KEEP_ALIVE_ACK: u32 = 1 << 13;
    pub const REUSED_PORTS: u32 = 1 << 14;
    /// tcpscope's own: the TIME_WAIT side acknowledging a retransmitted FIN again.
    pub const TIME_WAIT_REACK: u32 = 1 << 15;

    /// Names in Wireshark's spelling (the suffix of `tcp.analysis.*`), then tcpscope's own.
    pub const NAMES: [(u32, &'static str); 16] = [
        (Self::RETRANSMISSION, "retransmission"),
        (Self::FAST_RETRANSMISSION, "fast_retransmission"),
        (Self::SPURIOUS_RETRANSMISSION, "spurious_retransmission"),
        (Self::OUT_OF_ORDER, "out_of_order"),
        (Self::LOST_SEGMENT, "lost_segment"),
        (Self::ACK_LOST_SEGMENT, "ack_lost_segment"),
        (Self::DUPLICATE_ACK, "duplicate_ack"),
        (Self::ZERO_WINDOW, "zero_window"),
        (Self::ZERO_WINDOW_PROBE, "zero_window_probe"),
        (Self::ZERO_WINDOW_PROBE_ACK, "zero_window_probe_ack"),
        (Self::WINDOW_FULL, "window_full"),
        (Self::WINDOW_UPDATE, "window_update"),
        (Self::KEEP_ALIVE, "keep_alive"),
        (Self::KEEP_ALIVE_ACK, "keep_alive_ack"),
        (Self::REUSED_PORTS, "reused_ports"),
        (Self::TIME_WAIT_REACK, "time_wait_reack"),
    ];

    /// Wireshark's Info-column tags, in the order Wireshark prints them.
    pub const TAGS: [(u32, &'static str); 14] = [
        (Self::REUSED_PORTS, "TCP Port numbers reused"),
        (Self::FAST_RETRANSMISSION, "TCP Fast Retransmission"),
        (Self::SPURIOUS_RETRANSMISSION, "TCP Spurious Retransmission"),
        (Self::RETRANSMISSION, "TCP Retransmission"),
        (Self::OUT_OF_ORDER, "TCP Out-Of-Order"),
        (Self::LOST_SEGMENT, "TCP Previous segment not captured"),
        (Self::ACK_LOST_SEGMENT, "TCP ACKed unseen segment"),
        (Self::WINDOW_UPDATE, "TCP Window Update"),
        (Self::WINDOW_FULL, "TCP Window Full"),
        (Self::KEEP_ALIVE, "TCP Keep-Alive"),
        (Self::KEEP_ALIVE_ACK, "TCP Keep-Alive ACK"),
        (Self::ZERO_WINDOW_PROBE, "TCP ZeroWindowProbe"),
        (Self::ZERO_WINDOW_PROBE_ACK, "TCP ZeroWindowProbeAck"),
        (Self::ZERO_WINDOW, "TCP ZeroWindow"),
    ];

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
    pub fn set(&mut self, bit: u32) {
        self.0 |= bit;
    }
    pub fn clear(&mut self, bit: u32) {
        self.0 &= !bit;
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Any kind of retransmission.
    pub fn retransmission(self) -> bool {
        self.has(Self::RETRANSMISSION)
    }
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(b, _)| self.has(*b))
            .map(|(_, n)| n)
    }
}

/// Wireshark's window-scale states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WinScale {
    /// No SYN of this direction seen.
    Unknown,
    /// A SYN lacked the option: no scaling.
    None,
    Shift(u8),
}

/// One unacknowledged segment (data, SYN or FIN) of a direction.
#[derive(Clone, Copy, Debug)]
struct Unacked {
    end: SeqNum,
    sent: Timestamp,
    /// Sent again since: no RTT sample may be taken from it (Karn's rule).
    resent: bool,
}

/// A gap in what the capture saw of a direction: bytes `[start, end)` were never captured.
#[derive(Clone, Copy, Debug)]
struct Hole {
    start: SeqNum,
    end: SeqNum,
    /// When the capture first saw data beyond the gap.
    seen: Timestamp,
}

/// Bounds that keep the per-connection state small whatever the connection does.
const MAX_UNACKED: usize = 64;
const MAX_HOLES: usize = 8;
const MAX_RTT_SAMPLES: usize = 256;

/// A closed connection keeps its lists (emptied) up to this capacity for the next one in its
/// box; larger ones are freed.
const KEEP_CAPACITY: usize = 32;

/// A list's first allocation: room for this many, so that most connections grow it once, not
/// from 4 to 8 (a reallocation and a copy each time).
const FIRST_CAPACITY: usize = 8;

fn clear_or_free<T>(v: &mut Vec<T>) {
    if v.capacity() > KEEP_CAPACITY {
        *v = Vec::new();
    } else {
        v.clear();
    }
}

/// Puts `new`'s items into `old`'s buffer when it has room, and takes that buffer.
fn adopt<T: Copy>(new: &mut Vec<T>, old: &mut Vec<T>) {
    if old.capacity() >= new.len().max(1) && old.capacity() <= KEEP_CAPACITY.max(MAX_RTT_SAMPLES) {
        old.clear();
        old.extend_from_slice(new);
        std::mem::swap(new, old);
    }
}

/// What the analysis keeps for one direction (Wireshark's `tcp_analyze_seq_info`).
#[derive(Clone, Debug)]
// In this order, which C's layout keeps: what every segment reads first, the gaps and the
// flag counts, which few segments touch, last (see `Endpoint`).
#[repr(C)]
pub struct DirAnalysis {
    /// One past the highest sequence number sent (None: unknown yet).
    nextseq: Option<SeqNum>,
    /// The highest contiguous end: raised only by a segment starting exactly at it.
    maxseqtobeacked: Option<SeqNum>,
    /// Ack field and time of the last packet of this direction (whatever its flags).
    lastack: Option<SeqNum>,
    /// Highest ACK of this direction's data already reported as acknowledging unseen bytes.
    acked_unseen_upto: Option<SeqNum>,
    nextseq_time: Timestamp,
    lastack_time: Timestamp,
    lastnondupack: u64,
    dupacknum: i32,
    /// Last raw window field (None before the first packet: never a window update).
    window: Option<u16>,
    last_was_syn: bool,
    win_scale: WinScale,
    last_flags: Flags,
    unacked: Vec<Unacked>,
    /// Round-trip samples (data sent → its exact ACK), microseconds; at most
    /// `MAX_RTT_SAMPLES` are kept, min and max are exact.
    rtt_samples: Vec<u32>,
    pub rtt_count: u64,
    pub rtt_min: Option<Duration>,
    pub rtt_max: Option<Duration>,
    holes: Vec<Hole>,
    /// Count of each flag, in the order of [`Flags::NAMES`].
    pub counts: [u32; 16],
}

impl Default for DirAnalysis {
    fn default() -> Self {
        DirAnalysis {
            nextseq: None,
            nextseq_time: Timestamp(0),
            maxseqtobeacked: None,
            lastack: None,
            lastack_time: Timestamp(0),
            lastnondupack: 0,
            dupacknum: 0,
            window: None,
            last_was_syn: false,
            win_scale: WinScale::Unknown,
            last_flags: Flags::default(),
            unacked: Vec::new(),
            holes: Vec::new(),
            acked_unseen_upto: None,
            counts: [0; 16],
            rtt_samples: Vec::new(),
            rtt_count: 0,
            rtt_min: None,
            rtt_max: None,
        }
    }
}

impl DirAnalysis {
    /// Median of the kept RTT samples.
    pub fn rtt_median(&self) -> Option<Duration> {
        if self.rtt_samples.is_empty() {
            return None;
        }
        // On a copy on the stack: the JSON output asks this of both directions of every
        // connection, and a clone was an allocation each time. Most directions have a few
        // samples: a small copy spares zeroing the largest one's kilobyte first.
        const SMALL: usize = 16;
        let (mut small, mut large);
        let n = self.rtt_samples.len();
        let v: &mut [u32] = if n <= SMALL {
            small = [0u32; SMALL];
            &mut small[..n]
        } else {
            large = [0u32; MAX_RTT_SAMPLES];
            &mut large[..n]
        };
        v.copy_from_slice(&self.rtt_samples);
        let mid = v.len() / 2;
        let (_, median, _) = v.select_nth_unstable(mid);
        Some(Duration(u64::from(*median) * 1000))
    }

    /// Asks the CPU for the kept RTT samples, which [`DirAnalysis::rtt_median`] reads.
    pub fn prefetch_rtt_samples(&self) {
        crate::prefetch::prefetch_slice(&self.rtt_samples);
    }

    /// Asks the CPU for the first line of the unacknowledged segments and of the RTT samples,
    /// to be written: the buffers of a spare connection, which the output thread read last.
    pub fn prefetch_buffers_write(&self) {
        if self.unacked.capacity() > 0 {
            crate::prefetch::prefetch_write(self.unacked.as_ptr());
        }
        if self.rtt_samples.capacity() > 0 {
            crate::prefetch::prefetch_write(self.rtt_samples.as_ptr());
        }
    }

    /// Frees what only an open connection needs (the unacknowledged segments, the gaps): the
    /// connection is closed and only stragglers can follow.
    pub fn release(&mut self) {
        clear_or_free(&mut self.unacked);
        clear_or_free(&mut self.holes);
    }

    /// Moves this direction's state into the buffers of a finished connection's direction
    /// (`old`), so that a connection starting in a reused box asks nothing of the allocator:
    /// at a thousand connections a second, allocating and freeing these was a tenth of the
    /// analysis.
    pub fn adopt_buffers(&mut self, old: &mut DirAnalysis) {
        adopt(&mut self.unacked, &mut old.unacked);
        adopt(&mut self.holes, &mut old.holes);
        adopt(&mut self.rtt_samples, &mut old.rtt_samples);
    }

    /// Counts the flags of one segment of this direction (after the tracker's corrections).
    pub fn count(&mut self, flags: Flags) {
        // `Flags::NAMES[i]` is bit i (a test holds it to that): visit only the bits set, which
        // for most segments is none.
        let mut bits = flags.0 & 0xffff;
        while bits != 0 {
            self.counts[bits.trailing_zeros() as usize] += 1;
            bits &= bits - 1;
        }
    }

    /// A window field of this direction in bytes: shifted by the scale negotiated in the
    /// handshake, None while the scale is unknown (the SYNs were not captured). SYNs carry
    /// unscaled windows.
    pub fn window_bytes(&self, raw: u16, syn: bool) -> Option<u32> {
        match self.win_scale {
            WinScale::Unknown => None,
            WinScale::None => Some(u32::from(raw)),
            WinScale::Shift(_) if syn => Some(u32::from(raw)),
            WinScale::Shift(s) => Some(u32::from(raw) << s),
        }
    }

    /// Is the window scale known (a SYN of this direction was seen)?
    pub fn window_scale_known(&self) -> bool {
        self.win_scale != WinScale::Unknown
    }

    fn add_rtt_sample(&mut self, d: Duration) {
        self.rtt_count += 1;
        self.rtt_min = Some(self.rtt_min.map_or(d, |m| m.min(d)));
        self.rtt_max = Some(self.rtt_max.map_or(d, |m| m.max(d)));
        let us = (d.0 / 1000).min(u64::from(u32::MAX)) as u32;
        if self.rtt_samples.len() < MAX_RTT_SAMPLES {
            if self.rtt_samples.capacity() == 0 {
                self.rtt_samples.reserve_exact(FIRST_CAPACITY);
            }
            self.rtt_samples.push(us);
        } else {
            // Keep a spread over the whole connection: replace a slot chosen by the count.
            let slot =
                (self.rtt_count.wrapping_mul(2_654_435_761) % MAX_RTT_SAMPLES as u64) as usize;
            self.rtt_samples[slot] = us;
        }
    }
}

/// The result for one segment.
#[derive(Clone, Copy, Debug, Default)]
pub struct SegmentAnalysis {
    pub flags: Flags,
    /// For a duplicate ACK: its number (#1, #2 …) and the frame of the ACK it repeats.
    pub dup_ack: Option<(u32, u64)>,
    /// For a retransmission: time since the oldest unacknowledged segment was sent (Wireshark's
    /// `tcp.analysis.rto`), i.e. the sender's timeout or fast-retransmit delay.
    pub since_original: Option<Duration>,
    /// The acknowledgement in this segment completed a round-trip sample.
    pub ack_rtt: Option<Duration>,
}

/// What the analysis needs to know of the connection as a whole.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnContext {
    /// Wireshark's iRTT: from the last SYN to the first ACK-bearing non-SYN segment.
    pub irtt: Option<Duration>,
}

/// Analyses one segment sent in the direction `fwd` (the reverse direction is `rev`).
#[cfg(test)]
pub fn analyze(
    fwd: &mut DirAnalysis,
    rev: &mut DirAnalysis,
    seg: &Segment,
    ctx: ConnContext,
) -> SegmentAnalysis {
    let mut out = SegmentAnalysis::default();
    analyze_into(fwd, rev, seg, ctx, &mut out);
    out
}

/// [`analyze`], writing the result to `out` (the tracker's observation of the segment, in
/// place: see [`crate::tcp::Connection::observe_into`]).
pub fn analyze_into(
    fwd: &mut DirAnalysis,
    rev: &mut DirAnalysis,
    seg: &Segment,
    ctx: ConnContext,
    out: &mut SegmentAnalysis,
) {
    let now = seg.ts;
    let f = seg.flags;
    let (syn, fin, rst) = (f.syn(), f.fin(), f.rst());
    let no_sfr = !syn && !fin && !rst;
    let seq = seg.seq;
    let ack = seg.ack;
    let seglen = seg.payload_len;
    let window = seg.window;
    *out = SegmentAnalysis::default();
    let mut flags = Flags::default();

    // The window scale comes from the SYNs (RFC 7323: in force only if both carried it).
    if syn {
        fwd.win_scale = match seg.options.window_scale {
            Some(s) => WinScale::Shift(s.min(14)),
            None => WinScale::None,
        };
        if f.ack() && (fwd.win_scale == WinScale::None || rev.win_scale == WinScale::None) {
            fwd.win_scale = WinScale::None;
            rev.win_scale = WinScale::None;
        }
    }

    let at_next = fwd.nextseq == Some(seq);
    let one_below_next = fwd.nextseq == Some(seq.plus(1));
    let rev_window_zero = rev.window == Some(0);

    'checks: {
        // 1. Zero-window probe: one byte of new data while the peer's window is zero.
        if seglen == 1 && at_next && rev_window_zero {
            flags.set(Flags::ZERO_WINDOW_PROBE);
            break 'checks;
        }
        // Correction 1: Linux probes with no new byte at snd.una - 1 (a keep-alive's shape);
        // with the peer's window at zero that is a zero-window probe, not a keep-alive.
        if seglen <= 1 && one_below_next && rev_window_zero && no_sfr {
            flags.set(Flags::ZERO_WINDOW_PROBE);
            break 'checks;
        }
        // 2. Zero window advertised.
        if window == 0 && no_sfr {
            flags.set(Flags::ZERO_WINDOW);
        }
        // 3. Previous segment not captured: data beyond what this direction has sent.
        if let Some(n) = fwd.nextseq
            && seq.is_after(n)
            && !rst
        {
            flags.set(Flags::LOST_SEGMENT);
            if fwd.holes.len() < MAX_HOLES {
                fwd.holes.push(Hole {
                    start: n,
                    end: seq,
                    seen: now,
                });
            }
        }
        // 4. Keep-alive: at most one byte, one below the next sequence number.
        if seglen <= 1 && one_below_next && no_sfr {
            flags.set(Flags::KEEP_ALIVE);
        }
        let same_ack = fwd.lastack == Some(ack);
        // 5. Window update: the window changed, nothing else did.
        if seglen == 0
            && window != 0
            && fwd.window.is_some_and(|w| w != window)
            && at_next
            && same_ack
            && no_sfr
        {
            flags.set(Flags::WINDOW_UPDATE);
        }
        // 6. Window full: this segment fills the receiver's window exactly.
        if seglen > 0 && rev.win_scale != WinScale::Unknown && no_sfr {
            let shift = match rev.win_scale {
                WinScale::Shift(s) if !rev.last_was_syn => s,
                _ => 0,
            };
            if let (Some(la), Some(w)) = (rev.lastack, rev.window) {
                let edge = la.plus(((u64::from(w)) << shift).min(u64::from(u32::MAX)) as u32);
                if seq.plus(seglen) == edge {
                    flags.set(Flags::WINDOW_FULL);
                }
            }
        }
        let window_same = fwd.window == Some(window);
        // 7. Keep-alive ACK: repeats the last ACK exactly, answering a keep-alive.
        if seglen == 0
            && window != 0
            && window_same
            && at_next
            && same_ack
            && rev.last_flags.has(Flags::KEEP_ALIVE)
            && no_sfr
        {
            flags.set(Flags::KEEP_ALIVE_ACK);
            break 'checks;
        }
        // 8. Zero-window-probe ACK: the window stays zero.
        if seglen == 0
            && window == 0
            && window_same
            && at_next
            && same_ack
            && rev.last_flags.has(Flags::ZERO_WINDOW_PROBE)
            && no_sfr
        {
            flags.set(Flags::ZERO_WINDOW_PROBE_ACK);
            break 'checks;
        }
        // 9. Duplicate ACK: nothing changed at all.
        if seglen == 0 && window != 0 && window_same && at_next && same_ack && no_sfr {
            fwd.dupacknum = if fwd.dupacknum == -1 {
                1
            } else {
                fwd.dupacknum + 1
            };
            flags.set(Flags::DUPLICATE_ACK);
            out.dup_ack = Some((fwd.dupacknum as u32, fwd.lastnondupack));
        }
    }

    // 10. A new ack value starts a new dup-ACK count.
    if fwd.lastack != Some(ack) {
        fwd.lastnondupack = seg.frame;
        fwd.dupacknum = 0;
    }

    // 11. ACKed unseen segment: the ACK covers bytes the capture never saw.
    if f.ack()
        && let Some(m) = rev.maxseqtobeacked
        && ack.is_after(m)
    {
        let wireshark_flags = match rev.nextseq {
            Some(n) if m.is_before(n) => {
                rev.maxseqtobeacked = Some(n);
                true
            }
            _ => {
                let first = rev.dupacknum == 0;
                rev.dupacknum = -1;
                first
            }
        };
        // Correction 5: only bytes not acknowledged before make an ACK "of unseen data";
        // Wireshark flags again the next ACK after any new data while an old gap stays open.
        let beyond_all = rev.nextseq.is_none_or(|n| ack.is_after(n));
        let reported = rev.acked_unseen_upto;
        let new_gap = rev.holes.iter().any(|h| {
            let lo = reported.map_or(h.start, |r| r.max(h.start));
            let hi = if h.end.is_before(ack) { h.end } else { ack };
            lo.is_before(hi)
        });
        if wireshark_flags && (beyond_all || new_gap) {
            flags.set(Flags::ACK_LOST_SEGMENT);
            rev.acked_unseen_upto = Some(reported.map_or(ack, |r| r.max(ack)));
        }
    }

    // 12. The retransmission family.
    if (seglen > 0 || syn || fin) && !flags.has(Flags::KEEP_ALIVE) {
        let end_with_flags = seq.plus(seglen + u32::from(syn) + u32::from(fin));
        let mut not_advanced = fwd.nextseq.is_some_and(|n| seq.is_before(n));
        // Data following a dropped one-byte probe starts one below nextseq.
        if seglen > 1 && one_below_next {
            not_advanced = false;
        }
        let spurious = seglen > 0 && rev.lastack.is_some_and(|la| !seq.plus(seglen).is_after(la));
        let fast = not_advanced
            && rev.dupacknum >= 2
            && rev.lastack == Some(seq)
            && now.since(rev.lastack_time) < Duration(20_000_000);
        if spurious {
            flags.set(Flags::SPURIOUS_RETRANSMISSION | Flags::RETRANSMISSION);
        } else if fast {
            flags.set(Flags::FAST_RETRANSMISSION | Flags::RETRANSMISSION);
        } else if not_advanced {
            // Correction 2: out-of-order only for a segment that fills a gap, and only when it
            // comes within one round trip of the gap being seen (Wireshark: within iRTT of the
            // newest segment, bytes seen before or not).
            let rtt = ctx.irtt.unwrap_or(Duration(3_000_000));
            let fills = fwd
                .holes
                .iter()
                .find(|h| seq.is_before(h.end) && end_with_flags.is_after(h.start));
            match fills {
                Some(h) if now.since(h.seen) < rtt => flags.set(Flags::OUT_OF_ORDER),
                _ => flags.set(Flags::RETRANSMISSION),
            }
        }
        if flags.retransmission() {
            out.since_original = Some(
                fwd.unacked
                    .first()
                    .map_or(now.since(fwd.nextseq_time), |u| now.since(u.sent)),
            );
            for u in fwd.unacked.iter_mut().filter(|u| seq.is_before(u.end)) {
                u.resent = true;
            }
        }
        // Bytes now seen close (part of) any gap they fall in.
        if flags.has(Flags::OUT_OF_ORDER) || flags.retransmission() {
            fwd.holes.retain_mut(|h| {
                if !seq.is_after(h.start) && !end_with_flags.is_before(h.end) {
                    return false;
                }
                if !seq.is_after(h.start) && end_with_flags.is_after(h.start) {
                    h.start = end_with_flags;
                } else if seq.is_before(h.end) && !end_with_flags.is_before(h.end) {
                    h.end = seq;
                }
                true
            });
        }
    }

    // 13. Bookkeeping.
    let end = seq.plus(seglen + u32::from(syn) + u32::from(fin));
    if (seglen > 0 || syn || fin) && !flags.retransmission() && fwd.unacked.len() < MAX_UNACKED {
        if fwd.unacked.capacity() == 0 {
            fwd.unacked.reserve_exact(FIRST_CAPACITY);
        }
        fwd.unacked.push(Unacked {
            end,
            sent: now,
            resent: false,
        });
    }
    if !flags.has(Flags::ZERO_WINDOW_PROBE) {
        if fwd.nextseq.is_none_or(|n| end.is_after(n)) {
            fwd.nextseq = Some(end);
            fwd.nextseq_time = now;
        }
        // The highest contiguous end moves only with a segment starting right at it.
        if fwd.maxseqtobeacked.is_none_or(|m| m == seq) {
            fwd.maxseqtobeacked = fwd.nextseq;
        }
    }
    fwd.window = Some(window);
    fwd.last_was_syn = syn;
    fwd.lastack = Some(ack);
    fwd.lastack_time = now;
    fwd.last_flags = flags;
    if f.ack() {
        // Segments this ACK covers are acknowledged; one ending exactly here, never resent,
        // gives a round-trip sample (Karn's rule).
        let mut sample = None;
        rev.unacked.retain(|u| {
            if ack.is_before(u.end) {
                return true;
            }
            if u.end == ack && !u.resent {
                sample = Some(now.since(u.sent));
            }
            false
        });
        if let Some(d) = sample {
            rev.add_rtt_sample(d);
            out.ack_rtt = Some(d);
        }
    }
    out.flags = flags;
}

#[cfg(test)]
mod tests {
    //! Each test is a short exchange written as it appears on the wire; `w.c(...)` is a segment
    //! from the client, `w.s(...)` from the server: flags, seq, ack, length, window, time (ms).

    use super::*;
    use crate::decode::{TcpFlags, TcpOptions};

    struct Wire {
        dirs: [DirAnalysis; 2],
        frame: u64,
        irtt: Option<Duration>,
    }

    fn flags(s: &str) -> TcpFlags {
        TcpFlags(s.chars().fold(0, |f, ch| {
            f | match ch {
                'S' => TcpFlags::SYN,
                'F' => TcpFlags::FIN,
                'R' => TcpFlags::RST,
                'P' => TcpFlags::PSH,
                '.' => TcpFlags::ACK,
                other => panic!("flag {other}"),
            }
        }))
    }

    impl Wire {
        fn new() -> Wire {
            Wire {
                dirs: [DirAnalysis::default(), DirAnalysis::default()],
                frame: 0,
                irtt: None,
            }
        }
        #[allow(clippy::too_many_arguments)]
        fn send(
            &mut self,
            i: usize,
            f: &str,
            seq: u32,
            ack: u32,
            len: u32,
            win: u16,
            t: f64,
        ) -> SegmentAnalysis {
            self.frame += 1;
            let seg = Segment {
                ts: Timestamp((t * 1e6) as u64),
                frame: self.frame,
                src: "10.0.0.1:1".parse().unwrap(),
                dst: "10.0.0.2:2".parse().unwrap(),
                seq: SeqNum(seq),
                ack: SeqNum(ack),
                flags: flags(f),
                window: win,
                payload_len: len,
                options: TcpOptions::default(),
                truncated: false,
                ip_len: 40 + len,
            };
            let [a, b] = &mut self.dirs;
            let (fwd, rev) = if i == 0 { (a, b) } else { (b, a) };
            analyze(fwd, rev, &seg, ConnContext { irtt: self.irtt })
        }
        fn c(
            &mut self,
            f: &str,
            seq: u32,
            ack: u32,
            len: u32,
            win: u16,
            t: f64,
        ) -> SegmentAnalysis {
            self.send(0, f, seq, ack, len, win, t)
        }
        fn s(
            &mut self,
            f: &str,
            seq: u32,
            ack: u32,
            len: u32,
            win: u16,
            t: f64,
        ) -> SegmentAnalysis {
            self.send(1, f, seq, ack, len, win, t)
        }
        /// Handshake at 0, 10, 20 ms: iRTT 20 ms; client ISN 0, server ISN 1000.
        fn open(&mut self) {
            self.c("S", 0, 0, 0, 1000, 0.0);
            self.s("S.", 1000, 1, 0, 1000, 10.0);
            self.c(".", 1, 1001, 0, 1000, 20.0);
            self.irtt = Some(Duration(20_000_000));
        }
    }

    fn names(a: SegmentAnalysis) -> Vec<&'static str> {
        a.flags.names().collect()
    }

    /// The median is the middle of the kept samples in order (the upper middle of an even
    /// count), and the samples are left as they were.
    #[test]
    fn rtt_median_is_the_middle_sample() {
        let mut d = DirAnalysis::default();
        assert_eq!(d.rtt_median(), None);
        for us in [50, 10, 40, 20, 30, 60] {
            d.add_rtt_sample(Duration(us * 1000));
        }
        assert_eq!(d.rtt_median(), Some(Duration(40_000)));
        d.add_rtt_sample(Duration(1_000));
        assert_eq!(d.rtt_median(), Some(Duration(30_000)));
        assert_eq!(d.rtt_samples, [50, 10, 40, 20, 30, 60, 1]);
        assert_eq!(
            (d.rtt_min, d.rtt_max),
            (Some(Duration(1_000)), Some(Duration(60_000)))
        );
    }

    #[test]
    fn three_duplicate_acks_then_a_fast_retransmission() {
        let mut w = Wire::new();
        w.open();
        w.c("P.", 1, 1001, 100, 1000, 30.0);
        // The segment at 101 is lost before the capture point; 201 arrives.
        assert_eq!(
            names(w.c("P.", 201, 1001, 100, 1000, 31.0)),
            ["lost_segment"]
        );
        w.s(".", 1001, 101, 0, 1000, 32.0);
        let d1 = w.s(".", 1001, 101, 0, 1000, 33.0);
        assert_eq!(names(d1), ["duplicate_ack"]);
        assert_eq!(d1.dup_ack, Some((1, 6))); // repeats frame 6
        assert_eq!(w.s(".", 1001, 101, 0, 1000, 34.0).dup_ack, Some((2, 6)));
        let fast = w.c("P.", 101, 1001, 100, 1000, 35.0);
        assert_eq!(names(fast), ["retransmission", "fast_retransmission"]);
    }

    #[test]
    fn resending_bytes_already_seen_is_a_retransmission_however_soon() {
        let mut w = Wire::new();
        w.open();
        w.c("P.", 1, 1001, 100, 1000, 30.0);
        // 8 µs later, far below iRTT: Wireshark would say out-of-order.
        let again = w.c("P.", 1, 1001, 100, 1000, 30.008);
        assert_eq!(names(again), ["retransmission"]);
        assert!(again.since_original.is_some());
    }

    #[test]
    fn a_gap_filled_within_a_round_trip_is_reordering_later_a_retransmission() {
        let mut w = Wire::new();
        w.open();
        w.c("P.", 1, 1001, 100, 1000, 30.0);
        w.c("P.", 201, 1001, 100, 1000, 31.0);
        // 101 was sent before 201 and overtaken: arrives 5 ms after the gap was seen.
        assert_eq!(
            names(w.c("P.", 101, 1001, 100, 1000, 36.0)),
            ["out_of_order"]
        );
        w.c("P.", 401, 1001, 100, 1000, 40.0);
        // 301 shows up 300 ms after its gap: its original was lost before the capture.
        assert_eq!(
            names(w.c("P.", 301, 1001, 100, 1000, 340.0)),
            ["retransmission"]
        );
    }

    #[test]
    fn data_already_acknowledged_is_a_spurious_retransmission() {
        let mut w = Wire::new();
        w.open();
        w.c("P.", 1, 1001, 100, 1000, 30.0);
        w.s(".", 1001, 101, 0, 1000, 40.0);
        let r = w.c("P.", 1, 1001, 100, 1000, 250.0);
        assert_eq!(names(r), ["retransmission", "spurious_retransmission"]);
    }

    #[test]
    fn linux_zero_window_probes_are_probes_not_keep_alives() {
        let mut w = Wire::new();
        w.open();
        w.c("P.", 1, 1001, 100, 1000, 30.0);
        assert_eq!(names(w.s(".", 1001, 101, 0, 0, 31.0)), ["zero_window"]);
        // No byte, at snd.una - 1, while the window is zero.
        assert_eq!(
            names(w.c(".", 100, 1001, 0, 1000, 231.0)),
            ["zero_window_probe"]
        );
        assert_eq!(
            names(w.s(".", 1001, 101, 0, 0, 231.1)),
            ["zero_window", "zero_window_probe_ack"]
        );
        assert_eq!(
            names(w.s(".", 1001, 101, 0, 1000, 500.0)),
            ["window_update"]
        );
    }

    #[test]
    fn keep_alive_and_its_answer() {
        let mut w = Wire::new();
        w.open();
        w.c("P.", 1, 1001, 100, 1000, 30.0);
        w.s(".", 1001, 101, 0, 1000, 31.0);
        assert_eq!(
            names(w.c(".", 100, 1001, 0, 1000, 7_200_000.0)),
            ["keep_alive"]
        );
        assert_eq!(
            names(w.s(".", 1001, 101, 0, 1000, 7_200_000.1)),
            ["keep_alive_ack"]
        );
    }

    #[test]
    fn a_segment_filling_the_peers_window_and_an_ack_of_unseen_data() {
        let mut w = Wire::new();
        w.open();
        w.s(".", 1001, 1, 0, 300, 25.0);
        // 1 + 300 = the edge of the server's 300-byte window (no scaling negotiated).
        assert_eq!(names(w.c("P.", 1, 1001, 300, 1000, 30.0)), ["window_full"]);
        // The server acknowledges 500 bytes the capture never saw.
        assert!(names(w.s(".", 1001, 501, 0, 1000, 40.0)).contains(&"ack_lost_segment"));
    }

    #[test]
    fn each_flag_is_counted_at_its_place_in_names() {
        for (i, (bit, _)) in Flags::NAMES.iter().enumerate() {
            assert_eq!(*bit, 1 << i);
            let mut d = DirAnalysis::default();
            d.count(Flags(*bit | Flags::RETRANSMISSION));
            assert_eq!(d.counts[i], 1);
            assert_eq!(d.counts.iter().sum::<u32>(), if i == 0 { 1 } else { 2 });
        }
    }

    #[test]
    fn rtt_samples_follow_karns_rule() {
        let mut w = Wire::new();
        w.open();
        w.c("P.", 1, 1001, 100, 1000, 30.0);
        assert_eq!(
            w.s(".", 1001, 101, 0, 1000, 35.0).ack_rtt,
            Some(Duration(5_000_000))
        );
        w.c("P.", 101, 1001, 100, 1000, 40.0);
        w.c("P.", 101, 1001, 100, 1000, 240.0); // resent: no sample from it
        assert_eq!(w.s(".", 1001, 201, 0, 1000, 245.0).ack_rtt, None);
        let a = &w.dirs[0];
        assert_eq!(a.rtt_count, 2); // the SYN's sample and the first data segment's
        assert_eq!(a.rtt_min, Some(Duration(5_000_000)));
        assert_eq!(a.rtt_max, Some(Duration(10_000_000)));
    }
}
