//! Zeek's view of a connection: `conn_state` and `history`, computed by Zeek's rules (restated
//! in `../shared/reference/analysis-rules.md` §3) so that users of Zeek logs read tcpscope's
//! connections in their own vocabulary.
//!
//! Zeek's originator is the sender of the first packet it sees, flipped when the evidence says
//! otherwise (a SYN-ACK seen before its SYN, or a history that starts with a lone SYN-ACK); its
//! endpoints go through INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED and
//! RESET. This model runs beside tcpscope's RFC 9293 tracker and does not influence it. It is
//! Zeek in bare mode: no `likely_server_ports` flip when the first packet is not a SYN.

use crate::decode::Segment;
use crate::tcp::conn::Side;
use crate::tcp::seq::SeqNum;
use crate::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeekState {
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

impl ZeekState {
    /// INACTIVE or PARTIAL: Zeek's "inactive" in `conn_state`.
    fn inactive(self) -> bool {
        matches!(self, ZeekState::Inactive | ZeekState::Partial)
    }
}

/// One Zeek endpoint.
#[derive(Clone, Debug)]
struct ZeekEndpoint {
    state: ZeekState,
    /// First sequence number (the ISN for a SYN) and one past the highest seen.
    start: Option<SeqNum>,
    max_end: Option<SeqNum>,
    /// End of the contiguous stream whose bytes the capture holds (Zeek's reassembler): a
    /// payload cut by the snap length or never captured leaves a gap here.
    have_upto: Option<SeqNum>,
    last_syn: Option<SeqNum>,
    last_fin_end: Option<SeqNum>,
    last_rst: Option<SeqNum>,
    /// Letters recorded once per side: A, D, I, Q.
    once: u8,
    retransmissions: u64,
    gaps: u64,
    zero_windows: u64,
    pkts: u64,
    ip_bytes: u64,
    missed_bytes: u64,
    syn_or_fin_octets: u32,
    closed_at: Option<Timestamp>,
}

impl ZeekEndpoint {
    fn new() -> Self {
        ZeekEndpoint {
            state: ZeekState::Inactive,
            start: None,
            max_end: None,
            have_upto: None,
            last_syn: None,
            last_fin_end: None,
            last_rst: None,
            once: 0,
            retransmissions: 0,
            gaps: 0,
            zero_windows: 0,
            pkts: 0,
            ip_bytes: 0,
            missed_bytes: 0,
            syn_or_fin_octets: 0,
            closed_at: None,
        }
    }

    /// Payload bytes by sequence numbers, as Zeek's `orig_bytes`: highest minus start, less
    /// the SYN and FIN octets.
    fn bytes(&self) -> u64 {
        match (self.start, self.max_end) {
            (Some(s), Some(e)) if e.is_after(s) => {
                u64::from(e.relative_to(s)).saturating_sub(u64::from(self.syn_or_fin_octets))
            }
            _ => 0,
        }
    }
}

const ONCE_A: u8 = 1;
const ONCE_D: u8 = 2;
const ONCE_I: u8 = 4;
const ONCE_Q: u8 = 8;

/// The Zeek model of one connection.
#[derive(Clone, Debug)]
pub struct ZeekConn {
    /// Which of tcpscope's sides Zeek calls the originator.
    pub orig: Side,
    ep: [ZeekEndpoint; 2],
    history: String,
    first_ts: Timestamp,
    last_ts: Timestamp,
    /// A SYN-ACK was the first packet: its ack, for the SYN/SYN-ACK reversal.
    synack_first_ack: Option<SeqNum>,
}

/// Appends `letter` (upper case for the originator) when a counter reaches 1, 10, 100, …
fn exponent_hit(count: u64) -> bool {
    let mut t = 1;
    while t < count {
        t *= 10;
    }
    t == count
}

impl ZeekConn {
    pub fn new(first_sender: Side, ts: Timestamp) -> ZeekConn {
        ZeekConn {
            orig: first_sender,
            ep: [ZeekEndpoint::new(), ZeekEndpoint::new()],
            history: String::new(),
            first_ts: ts,
            last_ts: ts,
            synack_first_ack: None,
        }
    }

    /// The model of a new connection, as `new` makes it, in this one's memory (its history's
    /// buffer is kept).
    pub fn restart(&mut self, first_sender: Side, ts: Timestamp) {
        let mut history = std::mem::take(&mut self.history);
        history.clear();
        if history.capacity() > 64 {
            history = String::new();
        }
        *self = ZeekConn {
            history,
            ..ZeekConn::new(first_sender, ts)
        };
    }

    fn flip(&mut self) {
        self.orig = self.orig.peer();
        self.ep.swap(0, 1);
        self.history.push('^');
    }

    /// Records a history letter for endpoint `i` (0 = originator).
    fn letter(&mut self, i: usize, upper: char) {
        let c = if i == 0 {
            upper
        } else {
            upper.to_ascii_lowercase()
        };
        self.history.push(c);
    }

    /// Feeds one segment sent by tcpscope's side `from`.
    pub fn observe(&mut self, seg: &Segment, from: Side) {
        let f = seg.flags;
        let (syn, fin, rst, ack) = (f.syn(), f.fin(), f.rst(), f.ack());
        let only_one = u8::from(syn) + u8::from(fin) + u8::from(rst) == 1;
        let i = usize::from(from != self.orig);

        // Flip 2: the SYN-ACK came first, and now its SYN arrives from the other side.
        if syn && !ack && i == 1 && self.synack_first_ack == Some(seg.seq.plus(1)) {
            self.synack_first_ack = None;
            self.flip();
            let (o, r) = (0, 1);
            self.ep[o].state = ZeekState::Established;
            self.ep[r].state = ZeekState::Established;
        }
        if self.history.is_empty() && syn && ack {
            self.synack_first_ack = Some(seg.ack);
        }
        // Flip 3: a history of a lone SYN-ACK, and now an A or D is about to be recorded.
        let about_a_or_d = !syn && !fin && !rst;
        let i = if about_a_or_d && self.history == "H" {
            self.orig = self.orig.peer();
            self.ep.swap(0, 1);
            self.history = "^h".to_string();
            usize::from(from != self.orig)
        } else {
            usize::from(from != self.orig)
        };
        let p = 1 - i;

        if seg.ts > self.last_ts {
            self.last_ts = seg.ts;
        }
        let e = &mut self.ep[i];
        e.pkts += 1;
        e.ip_bytes += u64::from(seg.ip_len);
        let end = seg.seq_end();
        if e.start.is_none() {
            e.start = Some(seg.seq);
        }
        let advances = e.max_end.is_none_or(|m| end.is_after(m));
        let retransmitted = seg.payload_len > 0 && !advances && e.state != ZeekState::Reset;
        if advances {
            e.max_end = Some(end);
        }
        let data_end = seg.seq.plus(seg.payload_len);
        if syn {
            e.have_upto = Some(seg.seq.plus(1));
        } else if e.have_upto.is_none() {
            e.have_upto = Some(seg.seq);
        }
        if let Some(h) = e.have_upto {
            if seg.payload_len > 0 && !seg.truncated && !seg.seq.is_after(h) && data_end.is_after(h)
            {
                e.have_upto = Some(data_end);
            }
            if fin && e.have_upto == Some(data_end) {
                e.have_upto = Some(data_end.plus(1));
            }
        }
        if syn || fin {
            e.syn_or_fin_octets += u32::from(syn && e.last_syn != Some(seg.seq))
                + u32::from(fin && e.last_fin_end != Some(seg.seq.plus(seg.payload_len)));
        }

        // History letters.
        if only_one && syn {
            if e.last_syn != Some(seg.seq) {
                e.last_syn = Some(seg.seq);
                self.letter(i, if ack { 'H' } else { 'S' });
            }
        } else if only_one && fin {
            let fin_end = seg.seq.plus(seg.payload_len);
            if e.last_fin_end != Some(fin_end) {
                e.last_fin_end = Some(fin_end);
                self.letter(i, 'F');
            }
        } else if only_one && rst {
            if e.last_rst != Some(seg.seq) {
                e.last_rst = Some(seg.seq);
                self.letter(i, 'R');
            }
        } else if fin && rst {
            if e.once & ONCE_I == 0 {
                e.once |= ONCE_I;
                self.letter(i, 'I');
            }
        } else if syn && (fin || rst) {
            if e.once & ONCE_Q == 0 {
                e.once |= ONCE_Q;
                self.letter(i, 'Q');
            }
        } else if seg.payload_len > 0 {
            if e.once & ONCE_D == 0 {
                e.once |= ONCE_D;
                self.letter(i, 'D');
            }
        } else if ack && e.once & ONCE_A == 0 {
            e.once |= ONCE_A;
            self.letter(i, 'A');
        }
        let e = &mut self.ep[i];
        if retransmitted {
            e.retransmissions += 1;
            if exponent_hit(e.retransmissions) {
                self.letter(i, 'T');
            }
        }
        // A zero window advertised while both are still talking.
        let peer_state = self.ep[p].state;
        let e = &mut self.ep[i];
        if seg.window == 0 && !rst && e.state != ZeekState::Reset && peer_state != ZeekState::Closed
        {
            e.zero_windows += 1;
            if exponent_hit(e.zero_windows) {
                self.letter(i, 'W');
            }
        }
        // A content gap in the peer's stream: this ACK covers bytes the capture does not hold
        // (never captured, or cut by the snap length); Zeek's reassembler skips them.
        if ack && let Some(have) = self.ep[p].have_upto {
            let peer_closing = matches!(self.ep[p].state, ZeekState::Closed | ZeekState::Reset);
            if seg.ack.is_after(have) && !peer_closing {
                let pe = &mut self.ep[p];
                pe.missed_bytes += u64::from(seg.ack.relative_to(have));
                pe.have_upto = Some(seg.ack);
                pe.gaps += 1;
                if exponent_hit(pe.gaps) {
                    self.letter(p, 'G');
                }
            }
        }

        self.transition(i, seg);
    }

    /// Zeek's endpoint transitions for a segment from endpoint `i`.
    fn transition(&mut self, i: usize, seg: &Segment) {
        use ZeekState::*;
        let f = seg.flags;
        let (syn, fin, rst, ack) = (f.syn(), f.fin(), f.rst(), f.ack());
        let p = 1 - i;
        let me = self.ep[i].state;
        let peer = self.ep[p].state;
        let closed_now = |s: &mut ZeekEndpoint, st: ZeekState, ts: Timestamp| {
            s.state = st;
            if s.closed_at.is_none() {
                s.closed_at = Some(ts);
            }
        };
        if me == Reset {
            return;
        }
        if rst {
            // A RST after one's own FIN counts only if the peer has not closed as well.
            if me == Closed && peer == Closed {
                return;
            }
            closed_now(&mut self.ep[i], Reset, seg.ts);
            return;
        }
        match me {
            Inactive => {
                if syn && !ack {
                    if i == 0 {
                        self.ep[i].state = SynSent;
                    } else {
                        self.ep[i].state = Established;
                        if peer == SynSent {
                            self.ep[p].state = Established;
                        }
                    }
                } else if syn && ack {
                    if i == 0 {
                        self.ep[i].state = SynAckSent;
                    } else {
                        self.ep[i].state = Established;
                        if peer == SynSent {
                            self.ep[p].state = Established;
                        }
                    }
                } else if fin {
                    closed_now(&mut self.ep[i], Closed, seg.ts);
                } else if ack && seg.payload_len == 0 && i == 1 && peer == SynSent {
                    // An ACK from the responder to a bare SYN is ignored.
                } else if peer == Established {
                    self.ep[i].state = Established;
                } else {
                    self.ep[i].state = Partial;
                }
            }
            SynSent | SynAckSent => {
                if fin {
                    closed_now(&mut self.ep[i], Closed, seg.ts);
                } else if !syn && ack && peer == Established {
                    self.ep[i].state = Established;
                }
            }
            Established | Partial => {
                if fin {
                    closed_now(&mut self.ep[i], Closed, seg.ts);
                }
            }
            Closed | Reset => {}
        }
    }

    pub fn history(&self) -> &str {
        &self.history
    }

    /// Zeek's `conn_state`, by its decision procedure.
    pub fn conn_state(&self) -> &'static str {
        use ZeekState::*;
        let (os, rs) = (self.ep[0].state, self.ep[1].state);
        let no_bytes = self.ep[0].bytes() == 0 && self.ep[1].bytes() == 0;
        if rs == Reset {
            if matches!(os, SynSent | SynAckSent) || (os == Reset && no_bytes) {
                "REJ"
            } else if os.inactive() {
                "RSTRH"
            } else {
                "RSTR"
            }
        } else if os == Reset {
            if rs.inactive() {
                if self.rstos0_history() {
                    "RSTOS0"
                } else {
                    "OTH"
                }
            } else {
                "RSTO"
            }
        } else if os == Closed && rs == Closed {
            "SF"
        } else if os == Closed {
            if rs.inactive() { "SH" } else { "S2" }
        } else if rs == Closed {
            if os.inactive() { "SHR" } else { "S3" }
        } else if os == SynSent && rs == Inactive {
            "S0"
        } else if os == Established && rs == Established {
            "S1"
        } else {
            "OTH"
        }
    }

    /// Zeek's pattern `^?S[^HAFGIQ]*R.*` over the whole history.
    fn rstos0_history(&self) -> bool {
        let h = self.history.strip_prefix('^').unwrap_or(&self.history);
        let Some(rest) = h.strip_prefix('S') else {
            return false;
        };
        for c in rest.chars() {
            if c == 'R' {
                return true;
            }
            if "HAFGIQ".contains(c) {
                return false;
            }
        }
        false
    }

    /// Zeek's duration stops when both endpoints have closed.
    pub fn duration(&self) -> crate::time::Duration {
        let end = match (self.ep[0].closed_at, self.ep[1].closed_at) {
            (Some(a), Some(b)) => a.max(b).min(self.last_ts),
            _ => self.last_ts,
        };
        end.since(self.first_ts)
    }

    pub fn first_ts(&self) -> Timestamp {
        self.first_ts
    }

    /// (payload bytes, packets, IP bytes, missed bytes) of the originator (0) or responder (1).
    pub fn counts(&self, i: usize) -> (u64, u64, u64, u64) {
        let e = &self.ep[i];
        (e.bytes(), e.pkts, e.ip_bytes, e.missed_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;

    fn seg(from_client: bool, flags: u16, seq: u32, ack: u32, len: u32) -> (Segment, Side) {
        let ts = Timestamp(u64::from(seq));
        let side = if from_client {
            Side::Client
        } else {
            Side::Server
        };
        (
            Segment::test_between(from_client, flags, seq, ack, len, ts),
            side,
        )
    }

    const S: u16 = TcpFlags::SYN;
    const A: u16 = TcpFlags::ACK;
    const F: u16 = TcpFlags::FIN;
    const R: u16 = TcpFlags::RST;

    fn run(segs: &[(bool, u16, u32, u32, u32)]) -> ZeekConn {
        let first = if segs[0].0 {
            Side::Client
        } else {
            Side::Server
        };
        let mut z = ZeekConn::new(first, Timestamp(0));
        for &(c, f, seq, ack, len) in segs {
            let (s, side) = seg(c, f, seq, ack, len);
            z.observe(&s, side);
        }
        z
    }

    #[test]
    fn normal_connection_is_sf() {
        let z = run(&[
            (true, S, 100, 0, 0),
            (false, S | A, 500, 101, 0),
            (true, A, 101, 501, 0),
            (true, A, 101, 501, 10),
            (false, A, 501, 111, 0),
            (false, A, 501, 111, 20),
            (true, F | A, 111, 521, 0),
            (false, F | A, 521, 112, 0),
            (true, A, 112, 522, 0),
        ]);
        assert_eq!(z.history(), "ShADadFf");
        assert_eq!(z.conn_state(), "SF");
        assert_eq!(z.counts(0).0, 10);
        assert_eq!(z.counts(1).0, 20);
    }

    #[test]
    fn refused_is_rej_and_syn_only_is_s0() {
        let z = run(&[(true, S, 100, 0, 0), (false, R | A, 0, 101, 0)]);
        assert_eq!((z.history(), z.conn_state()), ("Sr", "REJ"));
        let z = run(&[(true, S, 100, 0, 0), (true, S, 100, 0, 0)]);
        assert_eq!((z.history(), z.conn_state()), ("S", "S0"));
    }

    #[test]
    fn missing_syn_flips_on_the_first_ack() {
        // Zeek's missing-syn baseline: ^hADdFaf, SF.
        let z = run(&[
            (false, S | A, 500, 101, 0),
            (true, A, 101, 501, 0),
            (true, A, 101, 501, 10),
            (false, A, 501, 111, 30),
            (true, F | A, 111, 531, 0),
            (false, A, 531, 112, 0),
            (false, F | A, 531, 112, 0),
        ]);
        assert_eq!(z.history(), "^hADdFaf");
        assert_eq!(z.conn_state(), "SF");
        assert_eq!(z.orig, Side::Client);
    }

    #[test]
    fn syn_then_rst_is_rstos0() {
        let z = run(&[(true, S, 100, 0, 0), (true, R, 101, 0, 0)]);
        assert_eq!((z.history(), z.conn_state()), ("SR", "RSTOS0"));
    }
}
