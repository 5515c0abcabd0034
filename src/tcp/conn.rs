//! One TCP connection followed through RFC 9293's states, as an observer on the wire sees it.
//!
//! The tracker sees each segment once, in capture order, at the capture point. It applies the
//! sender's transition when a segment is sent, and the receiver's transition at the same moment
//! (it assumes the segment arrives). When a later segment proves a segment was lost (a FIN
//! retransmitted after its ACK went by), the tracker corrects the state and says so.
//!
//! Sequence numbers follow RFC 9293 §3.4: SYN and FIN each take one number, comparisons are
//! modulo 2^32 ([`SeqNum`]). TIME_WAIT (RFC 9293 §3.6.1 MUST-13) is entered by the side that
//! sent the first FIN — by both sides after a simultaneous close — and its timer starts when
//! that side acknowledges the peer's FIN and restarts when it re-acknowledges a retransmitted
//! FIN (§3.10.7.4). Its length is configurable: Linux uses a fixed 60 s, the RFC 2×MSL = 240 s.

use std::net::SocketAddr;

use crate::decode::Segment;
use crate::event::{Event, EventKind};
use crate::tcp::seq::SeqNum;
use crate::tcp::state::TcpState;
use crate::time::{Duration, Timestamp};

/// Which end of the connection: the client sent the SYN (or is inferred to have).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Client = 0,
    Server = 1,
}

impl Side {
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
    fn idx(self) -> usize {
        self as usize
    }
}

/// How the client and server roles were decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roles {
    /// The capture holds the client's SYN.
    Observed,
    /// No SYN was captured: the SYN-ACK's sender is the server, otherwise the lower port.
    Inferred,
}

/// What a RST meant, judged from both sides' states when it was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetCause {
    /// A SYN answered by a RST: nothing listens on the port.
    Refused,
    /// A RST during the handshake other than a refusal (e.g. answering an unexpected SYN-ACK).
    DuringHandshake,
    /// An established connection aborted: SO_LINGER 0 close, close() with unread received
    /// data, or an application abort.
    Abort,
    /// Sent after keep-alive probes went unanswered.
    KeepaliveTimeout,
    /// Sent while one side was already closing (FIN sent or received).
    DuringClose,
    /// The sender has no socket for the segment it answers: already closed, never existed, or
    /// an orphan whose application has closed (a bare RST, without ACK).
    ClosedSocket,
}

impl ResetCause {
    pub fn name(self) -> &'static str {
        match self {
            ResetCause::Refused => "refused",
            ResetCause::DuringHandshake => "reset_during_handshake",
            ResetCause::Abort => "abort",
            ResetCause::KeepaliveTimeout => "keepalive_timeout",
            ResetCause::DuringClose => "reset_during_close",
            ResetCause::ClosedSocket => "closed_socket",
        }
    }

    /// One sentence for the timeline.
    pub fn explain(self) -> &'static str {
        match self {
            ResetCause::Refused => "connection refused: nothing listens on that port",
            ResetCause::DuringHandshake => "reset during the handshake",
            ResetCause::Abort => {
                "abort of an established connection (SO_LINGER 0 close, close() with unread data, or an application abort)"
            }
            ResetCause::KeepaliveTimeout => "keep-alive timeout: the probes went unanswered",
            ResetCause::DuringClose => "reset during the close",
            ResetCause::ClosedSocket => "answer to a segment for a socket that is closed or gone",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetInfo {
    pub ts: Timestamp,
    pub by: Side,
    pub sender_state: TcpState,
    pub receiver_state: TcpState,
    pub cause: ResetCause,
    /// Both FINs had been exchanged and acknowledged before the RST.
    pub after_close: bool,
}

/// The close sequence, decided when the second FIN is seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseKind {
    /// FIN, ACK, FIN, ACK: the passive closer acknowledged the first FIN on its own.
    FourWay,
    /// FIN, FIN+ACK, ACK: the passive closer's FIN carried the ACK of the first FIN.
    ThreeSegment,
    /// Both FINs were sent before either arrived; both sides pass through CLOSING.
    Simultaneous,
}

/// The kinds of segment a retransmission can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetransKind {
    Syn,
    SynAck,
    Data,
    Fin,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retransmissions {
    pub syn: u32,
    pub syn_ack: u32,
    pub data: u32,
    pub fin: u32,
}

impl Retransmissions {
    pub fn total(&self) -> u32 {
        self.syn + self.syn_ack + self.data + self.fin
    }
    fn count(&mut self, kind: RetransKind) {
        match kind {
            RetransKind::Syn => self.syn += 1,
            RetransKind::SynAck => self.syn_ack += 1,
            RetransKind::Data => self.data += 1,
            RetransKind::Fin => self.fin += 1,
        }
    }
    pub fn add(&self, o: &Retransmissions) -> Retransmissions {
        Retransmissions {
            syn: self.syn + o.syn,
            syn_ack: self.syn_ack + o.syn_ack,
            data: self.data + o.data,
            fin: self.fin + o.fin,
        }
    }
}

/// Send times of a control segment (SYN, SYN-ACK or FIN) and its retransmissions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sent {
    pub count: u32,
    pub first: Timestamp,
    pub last: Timestamp,
}

impl Sent {
    pub fn seen(&self) -> bool {
        self.count > 0
    }
    fn record(&mut self, ts: Timestamp) -> (Duration, Duration) {
        let gaps = (ts.since(self.last), ts.since(self.first));
        if self.count == 0 {
            self.first = ts;
        }
        self.count += 1;
        self.last = ts;
        gaps
    }
}

/// TIME_WAIT of one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWait {
    pub since: Timestamp,
    pub until: Timestamp,
    /// Started by the endpoint's ACK of the peer's FIN (false: entered on receiving the FIN,
    /// the ACK not captured yet).
    pub acked: bool,
    pub ended: Option<TimeWaitEnd>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeWaitEnd {
    Expired,
    NewSyn,
    Reset,
}

/// One endpoint as seen from the wire.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub state: TcpState,
    pub state_since: Timestamp,
    pub isn: Option<SeqNum>,
    /// Base for relative sequence numbers: the ISN, or one before the first sequence number
    /// seen when the SYN was not captured (Wireshark's convention).
    pub base: Option<SeqNum>,
    /// One past the highest sequence number this endpoint has sent.
    pub next_seq: Option<SeqNum>,
    pub syn: Sent,
    pub syn_ack: Sent,
    pub fin: Sent,
    pub fin_seq: Option<SeqNum>,
    /// The peer has acknowledged this endpoint's FIN.
    pub fin_acked: bool,
    /// This endpoint acknowledged the peer's FIN in a segment without its own FIN.
    acked_peer_fin_alone: bool,
    pub packets: u64,
    pub payload_bytes: u64,
    pub retransmissions: Retransmissions,
    pub keepalives: u32,
    unanswered_keepalives: u32,
    pub rsts: u32,
    pub time_wait: Option<TimeWait>,
    pub window_scale: Option<u8>,
    /// Largest window this endpoint advertised, in bytes (scaled when the scale is known).
    max_window: u32,
}

impl Endpoint {
    fn new(state: TcpState, ts: Timestamp) -> Endpoint {
        Endpoint {
            state,
            state_since: ts,
            isn: None,
            base: None,
            next_seq: None,
            syn: Sent::default(),
            syn_ack: Sent::default(),
            fin: Sent::default(),
            fin_seq: None,
            fin_acked: false,
            acked_peer_fin_alone: false,
            packets: 0,
            payload_bytes: 0,
            retransmissions: Retransmissions::default(),
            keepalives: 0,
            unanswered_keepalives: 0,
            rsts: 0,
            time_wait: None,
            window_scale: None,
            max_window: 0,
        }
    }

    /// `seq` relative to this endpoint's base (0 when the base is unknown).
    pub fn rel(&self, seq: SeqNum) -> u32 {
        self.base.map_or(seq.0, |b| seq.relative_to(b))
    }
}

#[derive(Clone, Copy, Debug)]
pub struct TrackerConfig {
    /// How long an endpoint stays in TIME_WAIT (`--time-wait`).
    pub time_wait: Duration,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            time_wait: Duration(60 * Timestamp::NANOS_PER_SEC),
        }
    }
}

/// What the tracker made of one segment, for the per-segment view.
#[derive(Clone, Copy, Debug)]
pub struct Observation {
    pub from: Side,
    pub retransmission: Option<RetransKind>,
    pub keepalive: bool,
    /// The receiver must drop this segment (RFC 9293 §3.10.7.4); why.
    pub ignored: Option<&'static str>,
}

/// One TCP connection: a 4-tuple and one incarnation of it.
#[derive(Clone, Debug)]
pub struct Connection {
    pub id: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub roles: Roles,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    pub ep: [Endpoint; 2],
    /// The client's ACK of the SYN-ACK was seen (or both SYN-ACKs of a simultaneous open).
    pub handshake_done: bool,
    pub handshake_rtt: Option<Duration>,
    /// SYN → SYN-ACK and SYN-ACK → ACK, as seen from the capture point.
    pub handshake_halves: Option<(Duration, Duration)>,
    pub simultaneous_open: bool,
    pub first_fin: Option<Side>,
    pub close_kind: Option<CloseKind>,
    pub close_complete: bool,
    pub half_close: bool,
    pub reset: Option<ResetInfo>,
    /// The connection this one replaced on the same 4-tuple.
    pub reused_from: Option<u64>,
    pub mid_stream: bool,
    config: TrackerConfig,
}

impl Connection {
    /// Starts a connection from its first segment, deciding the roles, and observes it.
    pub fn start(
        id: u64,
        seg: &Segment,
        config: TrackerConfig,
        reused_from: Option<u64>,
        out: &mut Vec<Event>,
    ) -> (Connection, Observation) {
        let f = seg.flags;
        let (client, server, roles) = if f.syn() && !f.ack() {
            (seg.src, seg.dst, Roles::Observed)
        } else if f.syn() && f.ack() {
            (seg.dst, seg.src, Roles::Inferred)
        } else if seg.src.port() < seg.dst.port() {
            (seg.dst, seg.src, Roles::Inferred)
        } else {
            (seg.src, seg.dst, Roles::Inferred)
        };
        // Before the first segment: a client about to send its SYN is CLOSED and the server
        // LISTENs. A capture that starts with the SYN-ACK missed the SYN, so the client is in
        // SYN_SENT; one that starts later finds both sides ESTABLISHED.
        let (c0, s0) = if f.syn() && !f.ack() {
            (TcpState::Closed, TcpState::Listen)
        } else if f.syn() {
            (TcpState::SynSent, TcpState::Listen)
        } else {
            (TcpState::Established, TcpState::Established)
        };
        let mut conn = Connection {
            id,
            client,
            server,
            roles,
            first_ts: seg.ts,
            last_ts: seg.ts,
            ep: [Endpoint::new(c0, seg.ts), Endpoint::new(s0, seg.ts)],
            handshake_done: false,
            handshake_rtt: None,
            handshake_halves: None,
            simultaneous_open: false,
            first_fin: None,
            close_kind: None,
            close_complete: false,
            half_close: false,
            reset: None,
            reused_from,
            mid_stream: !f.syn(),
            config,
        };
        let first_side = conn.side_of(seg);
        if let Some(previous) = reused_from {
            conn.emit(out, seg.ts, first_side, EventKind::PortReuse { previous });
        }
        if conn.mid_stream {
            conn.emit(out, seg.ts, first_side, EventKind::MidStream);
        }
        let obs = conn.observe(seg, out);
        (conn, obs)
    }

    pub fn side_of(&self, seg: &Segment) -> Side {
        if seg.src == self.client {
            Side::Client
        } else {
            Side::Server
        }
    }

    pub fn endpoint(&self, side: Side) -> &Endpoint {
        &self.ep[side.idx()]
    }

    pub fn addr(&self, side: Side) -> SocketAddr {
        match side {
            Side::Client => self.client,
            Side::Server => self.server,
        }
    }

    pub fn states(&self) -> [TcpState; 2] {
        [self.ep[0].state, self.ep[1].state]
    }

    /// A SYN without ACK whose sequence number differs from its sender's known ISN (or from
    /// what the sender has already sent) starts a new connection on this 4-tuple, as in
    /// Wireshark. A retransmitted SYN carries the same ISN and does not.
    pub fn is_new_incarnation(&self, seg: &Segment) -> bool {
        if !(seg.flags.syn() && !seg.flags.ack()) {
            return false;
        }
        let e = &self.ep[self.side_of(seg).idx()];
        match (e.isn, e.next_seq) {
            (Some(isn), _) => isn != seg.seq,
            (None, Some(_)) => true,
            (None, None) => false,
        }
    }

    fn emit(&self, out: &mut Vec<Event>, ts: Timestamp, from: Side, kind: EventKind) {
        out.push(Event {
            ts,
            conn: self.id,
            from,
            kind,
            states: self.states(),
        });
    }

    fn set_state(&mut self, side: Side, state: TcpState, ts: Timestamp) {
        let e = &mut self.ep[side.idx()];
        if e.state != state {
            e.state = state;
            e.state_since = ts;
        }
    }

    /// The client and server roles were guessed wrong: swap them.
    fn swap_roles(&mut self) {
        self.ep.swap(0, 1);
        std::mem::swap(&mut self.client, &mut self.server);
        if let Some(ff) = self.first_fin.as_mut() {
            *ff = ff.peer();
        }
        if let Some(r) = self.reset.as_mut() {
            r.by = r.by.peer();
        }
    }

    /// Feeds one segment of this connection to the tracker; events go to `out`.
    pub fn observe(&mut self, seg: &Segment, out: &mut Vec<Event>) -> Observation {
        let f = seg.flags;
        // Role evidence: a SYN without ACK comes from the client, a SYN-ACK from the server.
        let side = self.side_of(seg);
        if !self.simultaneous_open {
            let client_sent_syn = self.ep[0].syn.seen();
            let wrong = (f.syn() && !f.ack() && side == Side::Server && !client_sent_syn)
                || (f.syn() && f.ack() && side == Side::Client && !client_sent_syn
                    && !self.ep[1].syn.seen());
            if wrong {
                self.swap_roles();
            }
            if f.syn() && !f.ack() {
                self.roles = Roles::Observed;
            }
        }
        let x = self.side_of(seg);
        let y = x.peer();
        let ts = seg.ts;
        if ts > self.last_ts {
            self.last_ts = ts;
        }
        {
            let e = &mut self.ep[x.idx()];
            e.packets += 1;
            e.payload_bytes += u64::from(seg.payload_len);
            if e.base.is_none() {
                e.base = Some(if f.syn() { seg.seq } else { seg.seq.add(u32::MAX) });
            }
            if f.syn() {
                e.window_scale = seg.options.window_scale;
            }
        }
        if let Some(reason) = self.unacceptable(seg, x) {
            self.emit(out, ts, x, EventKind::Ignored { reason });
            return Observation {
                from: x,
                retransmission: None,
                keepalive: false,
                ignored: Some(reason),
            };
        }
        self.note_window(seg, x);
        // Anything from x answers y's keep-alive probes.
        self.ep[y.idx()].unanswered_keepalives = 0;

        if f.rst() {
            self.on_rst(seg, x, out);
            return Observation {
                from: x,
                retransmission: None,
                keepalive: false,
                ignored: None,
            };
        }

        let keepalive = self.is_keepalive(seg, x);
        let retrans = if keepalive {
            None
        } else {
            self.retransmission_kind(seg, x)
        };
        if keepalive {
            let e = &mut self.ep[x.idx()];
            e.keepalives += 1;
            e.unanswered_keepalives += 1;
        }
        if let Some(kind) = retrans {
            self.ep[x.idx()].retransmissions.count(kind);
        }

        if f.syn() && !f.ack() {
            self.on_syn(seg, x, retrans, out);
        } else if f.syn() {
            self.on_syn_ack(seg, x, retrans, out);
        } else if f.ack() {
            self.on_ack(seg, x, out);
        }
        if seg.payload_len > 0 && !keepalive {
            self.on_data(seg, x, retrans, out);
        }
        if f.fin() {
            self.on_fin(seg, x, retrans, out);
        }

        let end = seg.seq_end();
        let e = &mut self.ep[x.idx()];
        e.next_seq = Some(e.next_seq.map_or(end, |n| n.max(end)));
        Observation {
            from: x,
            retransmission: retrans,
            keepalive,
            ignored: None,
        }
    }

    /// Window scaling is in force only when both SYNs carried the option (RFC 7323 §2.2).
    fn window_scale(&self, side: Side) -> Option<u8> {
        match (self.ep[0].window_scale, self.ep[1].window_scale) {
            (Some(_), Some(_)) => self.ep[side.idx()].window_scale.map(|s| s.min(14)),
            _ if self.ep[0].syn.seen() && self.ep[1].syn_ack.seen() => Some(0),
            _ => None,
        }
    }

    fn note_window(&mut self, seg: &Segment, x: Side) {
        if seg.flags.syn() {
            return;
        }
        let bytes = match self.window_scale(x) {
            Some(s) => u32::from(seg.window) << s,
            None => u32::from(seg.window),
        };
        let e = &mut self.ep[x.idx()];
        e.max_window = e.max_window.max(bytes);
    }

    /// How far from what a sender has sent a sequence number may be and still be in the
    /// receiver's window (generously: four windows, at least 1 MiB; 512 MiB when the window
    /// scale is unknown because the SYNs were not captured).
    fn seq_allowance(&self, receiver: Side) -> i32 {
        match self.window_scale(receiver) {
            Some(_) => (u64::from(self.ep[receiver.idx()].max_window) * 4).clamp(1 << 20, 1 << 30) as i32,
            None => 1 << 29,
        }
    }

    /// Would the receiver drop this segment outright (RFC 9293 §3.10.7.4)? Such segments change
    /// no state; they are reported and otherwise only counted.
    fn unacceptable(&self, seg: &Segment, x: Side) -> Option<&'static str> {
        let y = x.peer();
        let f = seg.flags;
        let synchronized = |s: TcpState| {
            !matches!(
                s,
                TcpState::Closed | TcpState::Listen | TcpState::SynSent | TcpState::SynReceived
            )
        };
        if f.syn() && f.rst() {
            return Some("SYN and RST together are never valid");
        }
        if f.syn() {
            return None;
        }
        let allowance = self.seq_allowance(y);
        if let Some(n) = self.ep[x.idx()].next_seq {
            let d = seg.seq.diff(n);
            if d > allowance || d < -allowance {
                return Some("its sequence number is far outside the receiver's window");
            }
        }
        if f.ack()
            && let Some(n) = self.ep[y.idx()].next_seq
            && seg.ack.diff(n) > allowance
        {
            return Some("it acknowledges data never sent");
        }
        if !f.ack()
            && !f.rst()
            && synchronized(self.ep[x.idx()].state)
            && synchronized(self.ep[y.idx()].state)
        {
            return Some("it lacks the ACK flag, which every segment of a synchronized connection carries");
        }
        None
    }

    /// A keep-alive probe: no SYN/FIN, at most one (garbage) byte, one below what the sender
    /// has already sent (RFC 9293 §3.8.4). Linux's zero-window probes have the same shape.
    fn is_keepalive(&self, seg: &Segment, x: Side) -> bool {
        let f = seg.flags;
        if f.syn() || f.fin() || seg.payload_len > 1 {
            return false;
        }
        matches!(self.ep[x.idx()].next_seq, Some(n) if seg.seq.add(1) == n)
    }

    /// Does the segment carry sequence space its sender has already sent?
    fn retransmission_kind(&self, seg: &Segment, x: Side) -> Option<RetransKind> {
        let e = &self.ep[x.idx()];
        let f = seg.flags;
        if f.syn() {
            let sent = if f.ack() { &e.syn_ack } else { &e.syn };
            let kind = if f.ack() {
                RetransKind::SynAck
            } else {
                RetransKind::Syn
            };
            return (sent.seen() && e.isn == Some(seg.seq)).then_some(kind);
        }
        if f.fin() && e.fin_seq == Some(seg.seq.add(seg.payload_len)) {
            return Some(RetransKind::Fin);
        }
        match e.next_seq {
            Some(n) if seg.payload_len > 0 && seg.seq.is_before(n) => Some(RetransKind::Data),
            _ => None,
        }
    }

    // ------------------------------------------------------------------------------------
    // Opening
    // ------------------------------------------------------------------------------------

    fn on_syn(&mut self, seg: &Segment, x: Side, retrans: Option<RetransKind>, out: &mut Vec<Event>) {
        let y = x.peer();
        let ts = seg.ts;
        let (gap, since_first) = self.ep[x.idx()].syn.record(ts);
        if retrans.is_some() {
            let attempt = self.ep[x.idx()].syn.count - 1;
            self.emit(out, ts, x, EventKind::SynRetransmission { attempt, gap, since_first });
            return;
        }
        self.ep[x.idx()].isn = Some(seg.seq);
        self.ep[x.idx()].base = Some(seg.seq);
        if self.ep[y.idx()].state == TcpState::SynSent && self.ep[y.idx()].syn.seen() {
            // The peer's SYN is on its way here and ours to it: each side receives a SYN while
            // in SYN_SENT and moves to SYN_RECEIVED (RFC 9293 Figure 7).
            self.simultaneous_open = true;
            self.set_state(x, TcpState::SynReceived, ts);
            self.set_state(y, TcpState::SynReceived, ts);
            self.emit(out, ts, x, EventKind::SimultaneousOpen);
        } else {
            if matches!(self.ep[x.idx()].state, TcpState::Closed | TcpState::Listen) {
                self.set_state(x, TcpState::SynSent, ts);
            }
            if self.ep[y.idx()].state == TcpState::Closed {
                self.set_state(y, TcpState::Listen, ts);
            }
            self.emit(out, ts, x, EventKind::Syn { isn: seg.seq.0 });
        }
    }

    fn on_syn_ack(
        &mut self,
        seg: &Segment,
        x: Side,
        retrans: Option<RetransKind>,
        out: &mut Vec<Event>,
    ) {
        let y = x.peer();
        let ts = seg.ts;
        let (gap, since_first) = self.ep[x.idx()].syn_ack.record(ts);
        if retrans.is_some() {
            let attempt = self.ep[x.idx()].syn_ack.count - 1;
            self.emit(out, ts, x, EventKind::SynAckRetransmission { attempt, gap, since_first });
            return;
        }
        if self.ep[x.idx()].isn != Some(seg.seq) {
            self.ep[x.idx()].isn = Some(seg.seq);
            self.ep[x.idx()].base = Some(seg.seq);
        }
        let acks_peer_syn = self.ep[y.idx()]
            .isn
            .is_none_or(|isn| !seg.ack.is_before(isn.add(1)));
        if !self.simultaneous_open {
            self.set_state(x, TcpState::SynReceived, ts);
        }
        // The peer receives the SYN-ACK: its SYN is acknowledged.
        let peer = self.ep[y.idx()].state;
        if acks_peer_syn && matches!(peer, TcpState::SynSent | TcpState::SynReceived) {
            self.set_state(y, TcpState::Established, ts);
        }
        self.emit(out, ts, x, EventKind::SynAck { isn: seg.seq.0 });
        if self.simultaneous_open
            && self.ep[0].state == TcpState::Established
            && self.ep[1].state == TcpState::Established
        {
            self.complete_handshake(ts, x, out);
        }
    }

    fn complete_handshake(&mut self, ts: Timestamp, from: Side, out: &mut Vec<Event>) {
        if self.handshake_done {
            return;
        }
        self.handshake_done = true;
        let (c, s) = (&self.ep[0], &self.ep[1]);
        if c.syn.seen() && !self.simultaneous_open {
            // Measured from the last SYN, as Wireshark's iRTT: an earlier one went unanswered.
            self.handshake_rtt = Some(ts.since(c.syn.last));
            if s.syn_ack.seen() {
                self.handshake_halves =
                    Some((s.syn_ack.first.since(c.syn.last), ts.since(s.syn_ack.last)));
            }
        }
        let rtt = self.handshake_rtt;
        self.emit(out, ts, from, EventKind::HandshakeComplete { rtt });
    }

    // ------------------------------------------------------------------------------------
    // Acknowledgements: the end of the handshake and of each FIN
    // ------------------------------------------------------------------------------------

    fn on_ack(&mut self, seg: &Segment, x: Side, out: &mut Vec<Event>) {
        let y = x.peer();
        let ts = seg.ts;
        let ack = seg.ack;

        // The ACK that completes the handshake: it acknowledges y's SYN.
        let y_isn = self.ep[y.idx()].isn;
        if self.ep[y.idx()].state == TcpState::SynReceived
            && y_isn.is_none_or(|isn| !ack.is_before(isn.add(1)))
        {
            self.set_state(y, TcpState::Established, ts);
            if matches!(
                self.ep[x.idx()].state,
                TcpState::SynSent | TcpState::SynReceived
            ) {
                self.set_state(x, TcpState::Established, ts);
            }
            self.complete_handshake(ts, x, out);
        } else if self.ep[x.idx()].state == TcpState::SynSent {
            // x acknowledges something without a SYN: it got the SYN-ACK the capture missed.
            self.set_state(x, TcpState::Established, ts);
        }

        // The ACK of y's FIN.
        let Some(y_fin) = self.ep[y.idx()].fin_seq else {
            return;
        };
        if ack.is_before(y_fin.add(1)) {
            return;
        }
        let x_state = self.ep[x.idx()].state;
        if x_state == TcpState::TimeWait && !seg.flags.fin() {
            let tw = self.config.time_wait;
            match self.ep[x.idx()].time_wait.as_mut() {
                // x's TIME_WAIT timer starts with this ACK.
                Some(t) if !t.acked => {
                    t.since = ts;
                    t.until = ts.add(tw);
                    t.acked = true;
                }
                // A second ACK of the same FIN: x re-acknowledges a retransmitted FIN.
                Some(t) if !self.ep[y.idx()].fin_acked => {
                    t.since = ts;
                    t.until = ts.add(tw);
                    let until = t.until;
                    self.ep[y.idx()].fin_acked = true;
                    self.finish_peer_close(y, ts);
                    self.close_complete = self.ep[x.idx()].fin_acked;
                    self.emit(out, ts, x, EventKind::TimeWaitReack { until });
                    return;
                }
                _ => {}
            }
        }
        if self.ep[y.idx()].fin_acked {
            return;
        }
        self.ep[y.idx()].fin_acked = true;
        if !seg.flags.fin() {
            self.ep[x.idx()].acked_peer_fin_alone = true;
        }
        let entered_time_wait = self.finish_peer_close(y, ts);
        // A FIN that carries this ACK is reported as one event by `on_fin`.
        if !seg.flags.fin() {
            self.emit(out, ts, x, EventKind::FinAcked);
        }
        if entered_time_wait {
            self.report_time_wait(y, out);
        }
        if let Some(TimeWait { acked: true, since, until, .. }) = self.ep[x.idx()].time_wait
            && since == ts
        {
            self.emit(out, ts, x, EventKind::TimeWait { since, until });
        }
        if self.ep[x.idx()].fin_acked && self.ep[y.idx()].fin_acked && !self.close_complete {
            self.close_complete = true;
            self.emit(out, ts, x, EventKind::CloseComplete);
        }
    }

    /// `side`'s FIN has been acknowledged: FIN_WAIT_1 → FIN_WAIT_2, CLOSING → TIME_WAIT,
    /// LAST_ACK → CLOSED. Returns whether `side` entered TIME_WAIT.
    fn finish_peer_close(&mut self, side: Side, ts: Timestamp) -> bool {
        match self.ep[side.idx()].state {
            TcpState::FinWait1 => self.set_state(side, TcpState::FinWait2, ts),
            TcpState::Closing => {
                self.enter_time_wait(side, ts, true);
                return true;
            }
            TcpState::LastAck => self.set_state(side, TcpState::Closed, ts),
            _ => {}
        }
        false
    }

    fn enter_time_wait(&mut self, side: Side, ts: Timestamp, acked: bool) {
        self.set_state(side, TcpState::TimeWait, ts);
        self.ep[side.idx()].time_wait = Some(TimeWait {
            since: ts,
            until: ts.add(self.config.time_wait),
            acked,
            ended: None,
        });
    }

    fn report_time_wait(&self, side: Side, out: &mut Vec<Event>) {
        if let Some(t) = self.ep[side.idx()].time_wait {
            self.emit(
                out,
                t.since,
                side,
                EventKind::TimeWait {
                    since: t.since,
                    until: t.until,
                },
            );
        }
    }

    // ------------------------------------------------------------------------------------
    // Data
    // ------------------------------------------------------------------------------------

    fn on_data(&mut self, seg: &Segment, x: Side, retrans: Option<RetransKind>, out: &mut Vec<Event>) {
        let y = x.peer();
        if retrans == Some(RetransKind::Data) {
            let rel_seq = self.ep[x.idx()].rel(seg.seq);
            self.emit(
                out,
                seg.ts,
                x,
                EventKind::DataRetransmission {
                    rel_seq,
                    len: seg.payload_len,
                },
            );
        } else if retrans.is_none()
            && self.ep[y.idx()].fin_seq.is_some()
            && self.ep[x.idx()].fin_seq.is_none()
            && !self.half_close
        {
            // Data toward the side that has sent its FIN: it closed its sending half only.
            self.half_close = true;
            self.emit(out, seg.ts, x, EventKind::HalfClose);
        }
    }

    // ------------------------------------------------------------------------------------
    // Closing
    // ------------------------------------------------------------------------------------

    fn on_fin(&mut self, seg: &Segment, x: Side, retrans: Option<RetransKind>, out: &mut Vec<Event>) {
        let y = x.peer();
        let ts = seg.ts;
        let (gap, _) = self.ep[x.idx()].fin.record(ts);
        if retrans == Some(RetransKind::Fin) {
            let attempt = self.ep[x.idx()].fin.count - 1;
            // A FIN sent again after its ACK went by: that ACK never reached x.
            let ack_was_lost = self.ep[x.idx()].fin_acked;
            if ack_was_lost {
                self.ep[x.idx()].fin_acked = false;
                self.close_complete = false;
                let back = match self.ep[x.idx()].state {
                    TcpState::Closed => TcpState::LastAck,
                    TcpState::FinWait2 => TcpState::FinWait1,
                    TcpState::TimeWait => TcpState::Closing,
                    s => s,
                };
                self.set_state(x, back, ts);
            }
            self.emit(
                out,
                ts,
                x,
                EventKind::FinRetransmission {
                    attempt,
                    gap,
                    ack_was_lost,
                },
            );
            return;
        }
        if self.ep[x.idx()].fin_seq.is_some() {
            // A second FIN at another sequence number: nothing a real stack sends; counted only.
            return;
        }
        self.ep[x.idx()].fin_seq = Some(seg.seq.add(seg.payload_len));
        let peer_fin = self.ep[y.idx()].fin_seq;
        let acks_peer_fin =
            peer_fin.is_some_and(|f| seg.flags.ack() && !seg.ack.is_before(f.add(1)));
        let simultaneous = peer_fin.is_some() && !acks_peer_fin;
        // The first acknowledgement of the peer's FIN rides on this FIN: three-segment close.
        let carries_peer_fin_ack = acks_peer_fin && !self.ep[x.idx()].acked_peer_fin_alone;
        if peer_fin.is_none() {
            self.first_fin = Some(x);
        } else {
            self.close_kind = Some(if simultaneous {
                CloseKind::Simultaneous
            } else if self.ep[x.idx()].acked_peer_fin_alone {
                CloseKind::FourWay
            } else {
                CloseKind::ThreeSegment
            });
        }
        // The sender: its application closed.
        let sender = if simultaneous {
            // It sent its FIN before the peer's arrived, and now receives that one: CLOSING.
            TcpState::Closing
        } else if self.ep[x.idx()].state == TcpState::CloseWait {
            TcpState::LastAck
        } else {
            TcpState::FinWait1
        };
        self.set_state(x, sender, ts);
        // The receiver.
        match self.ep[y.idx()].state {
            TcpState::Established | TcpState::SynReceived | TcpState::SynSent => {
                self.set_state(y, TcpState::CloseWait, ts)
            }
            TcpState::FinWait1 if !self.ep[y.idx()].fin_acked => {
                self.set_state(y, TcpState::Closing, ts)
            }
            TcpState::FinWait1 | TcpState::FinWait2 => self.enter_time_wait(y, ts, false),
            _ => {}
        }
        self.emit(
            out,
            ts,
            x,
            EventKind::Fin {
                data_bytes: seg.payload_len,
                carries_peer_fin_ack,
                simultaneous,
            },
        );
    }

    // ------------------------------------------------------------------------------------
    // Resets
    // ------------------------------------------------------------------------------------

    fn on_rst(&mut self, seg: &Segment, x: Side, out: &mut Vec<Event>) {
        let y = x.peer();
        let ts = seg.ts;
        let sender_state = self.ep[x.idx()].state;
        let receiver_state = self.ep[y.idx()].state;
        self.ep[x.idx()].rsts += 1;
        let cause = self.reset_cause(seg, x);
        if self.reset.is_none() {
            self.reset = Some(ResetInfo {
                ts,
                by: x,
                sender_state,
                receiver_state,
                cause,
                after_close: self.close_complete,
            });
        }
        for side in [x, y] {
            if let Some(t) = self.ep[side.idx()].time_wait.as_mut()
                && t.ended.is_none()
                && self.ep[side.idx()].state == TcpState::TimeWait
            {
                t.ended = Some(TimeWaitEnd::Reset);
            }
            self.set_state(side, TcpState::Closed, ts);
        }
        self.emit(
            out,
            ts,
            x,
            EventKind::Reset {
                sender_state,
                receiver_state,
                cause,
            },
        );
    }

    fn reset_cause(&self, seg: &Segment, x: Side) -> ResetCause {
        let (sender, receiver) = (&self.ep[x.idx()], &self.ep[x.peer().idx()]);
        use TcpState::*;
        if receiver.state == SynSent && receiver.syn.seen() && !sender.syn_ack.seen() {
            ResetCause::Refused
        } else if matches!(sender.state, SynSent | SynReceived)
            || matches!(receiver.state, SynSent | SynReceived)
        {
            ResetCause::DuringHandshake
        } else if !seg.flags.ack() || matches!(sender.state, Closed | TimeWait | Listen) {
            ResetCause::ClosedSocket
        } else if sender.unanswered_keepalives > 0 {
            ResetCause::KeepaliveTimeout
        } else if sender.state.is_closing() || receiver.state.is_closing() {
            ResetCause::DuringClose
        } else {
            ResetCause::Abort
        }
    }

    // ------------------------------------------------------------------------------------
    // Time passing: TIME_WAIT expiry, a new incarnation, the end of the capture
    // ------------------------------------------------------------------------------------

    /// The earliest TIME_WAIT expiry still pending, if any.
    pub fn time_wait_deadline(&self) -> Option<Timestamp> {
        self.ep
            .iter()
            .filter(|e| e.state == TcpState::TimeWait)
            .filter_map(|e| e.time_wait.map(|t| t.until))
            .min()
    }

    /// Expires every TIME_WAIT that ends at or before `now`.
    pub fn expire_time_wait(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        for side in [Side::Client, Side::Server] {
            let e = &mut self.ep[side.idx()];
            if e.state != TcpState::TimeWait {
                continue;
            }
            if let Some(t) = e.time_wait.as_mut()
                && t.until <= now
            {
                t.ended = Some(TimeWaitEnd::Expired);
                let until = t.until;
                self.set_state(side, TcpState::Closed, until);
                self.emit(out, until, side, EventKind::TimeWaitExpired);
            }
        }
    }

    /// A new SYN at `ts` on this 4-tuple replaces this connection (by `new_conn`).
    pub fn superseded(&mut self, ts: Timestamp, new_conn: u64, out: &mut Vec<Event>) {
        self.expire_time_wait(ts, out);
        for side in [Side::Client, Side::Server] {
            if self.ep[side.idx()].state == TcpState::TimeWait {
                if let Some(t) = self.ep[side.idx()].time_wait.as_mut() {
                    t.ended = Some(TimeWaitEnd::NewSyn);
                }
                self.set_state(side, TcpState::Closed, ts);
                self.emit(out, ts, side, EventKind::TimeWaitEndedBySyn { new_conn });
            }
        }
    }

    /// Both endpoints are done: nothing more can happen on this connection but stragglers.
    pub fn is_finished(&self) -> bool {
        self.ep.iter().all(|e| e.state.is_closed() && e.state != TcpState::TimeWait)
    }

    /// The capture ended at `end`: expire what has expired and report what is still open.
    pub fn end_of_capture(&mut self, end: Timestamp, out: &mut Vec<Event>) {
        self.expire_time_wait(end, out);
        for side in [Side::Client, Side::Server] {
            let e = &self.ep[side.idx()];
            if !e.state.is_closed() {
                let kind = EventKind::StillOpen {
                    state: e.state,
                    for_: end.since(e.state_since),
                };
                self.emit(out, end, side, kind);
            }
        }
    }

    /// Packets and payload bytes of both sides.
    pub fn packets(&self) -> u64 {
        self.ep[0].packets + self.ep[1].packets
    }

    pub fn retransmissions(&self) -> Retransmissions {
        self.ep[0].retransmissions.add(&self.ep[1].retransmissions)
    }
}
