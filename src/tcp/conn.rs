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
use crate::tcp::analysis::{self, ConnContext, DirAnalysis, Flags, SegmentAnalysis};
use crate::tcp::seq::SeqNum;
use crate::tcp::state::TcpState;
use crate::tcp::zeek::ZeekConn;
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

/// Why a connection left the flow table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Still held (not retired yet).
    Open,
    /// Both sides closed and quiet for the linger time.
    Closed,
    /// A new SYN on its 4-tuple started a new connection.
    Replaced,
    /// Silent longer than the idle timeout.
    IdleTimeout,
    /// Retired to make room (`--max-connections`).
    Evicted,
    /// The input ended.
    CaptureEnd,
}

impl EndReason {
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Open => "open",
            EndReason::Closed => "closed",
            EndReason::Replaced => "replaced",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::Evicted => "evicted",
            EndReason::CaptureEnd => "capture_end",
        }
    }
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
// In this order, which C's layout keeps: the fields most segments read or write first, so
// that the part of a connection in use takes fewer cache lines. The analysis thread's time
// follows the connections alive at once more than the packets: thousands of connections are
// more than the core's cache, and a segment waits for every line of its connection that is
// not there. (The same 4.38 M packets with 276, 2,515 and 24,252 connections alive at once
// took the analysis thread 0.37-0.42, 0.54-0.60 and 1.2-1.3 CPU s.)
#[repr(C)]
pub struct Endpoint {
    pub state: TcpState,
    pub window_scale: Option<u8>,
    /// The peer has acknowledged this endpoint's FIN.
    pub fin_acked: bool,
    unanswered_keepalives: u32,
    /// Base for relative sequence numbers: the ISN, or one before the first sequence number
    /// seen when the SYN was not captured (Wireshark's convention).
    pub base: Option<SeqNum>,
    /// One past the highest sequence number this endpoint has sent.
    pub next_seq: Option<SeqNum>,
    pub isn: Option<SeqNum>,
    pub fin_seq: Option<SeqNum>,
    /// Largest window this endpoint advertised, in bytes (scaled when the scale is known).
    max_window: u32,
    pub keepalives: u32,
    pub packets: u64,
    pub payload_bytes: u64,
    pub syn: Sent,
    /// Wireshark-style analysis of the segments this endpoint sent.
    pub analysis: DirAnalysis,
    /// This endpoint sent its FIN again after the peer's ACK of it went by: that ACK was lost.
    fin_ack_lost: bool,
    /// This endpoint acknowledged the peer's FIN in a segment without its own FIN.
    acked_peer_fin_alone: bool,
    pub rsts: u32,
    pub retransmissions: Retransmissions,
    pub state_since: Timestamp,
    pub syn_ack: Sent,
    pub fin: Sent,
    pub time_wait: Option<TimeWait>,
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
            fin_ack_lost: false,
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
            analysis: DirAnalysis::default(),
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
    /// Keep Zeek's model of the connection (conn_state, history): only the JSON and Zeek
    /// outputs show it, and the others save its work on every segment.
    pub zeek: bool,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            time_wait: Duration(60 * Timestamp::NANOS_PER_SEC),
            zeek: true,
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
    /// The per-segment analysis (Wireshark's flags, with tcpscope's corrections).
    pub analysis: SegmentAnalysis,
}

impl Observation {
    /// Nothing made of any segment yet.
    pub const NONE: Observation = Observation {
        from: Side::Client,
        retransmission: None,
        keepalive: false,
        ignored: None,
        analysis: SegmentAnalysis {
            flags: Flags(0),
            dup_ack: None,
            since_original: None,
            ack_rtt: None,
        },
    };
}

/// One TCP connection: a 4-tuple and one incarnation of it.
#[derive(Clone, Debug)]
// In this order, which C's layout keeps: what every segment reads first, the endpoints (each
// with its busy part first), then what only the opening and the close touch (see
// `Endpoint`).
#[repr(C)]
pub struct Connection {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub last_ts: Timestamp,
    /// The same connection as Zeek models it (conn_state, history), when the output shows it
    /// (`TrackerConfig::zeek`): boxed, so the other outputs carry 8 bytes for it, not 300.
    pub zeek: Option<Box<ZeekConn>>,
    pub id: u64,
    pub irtt: Option<Duration>,
    /// The connection this one replaced on the same 4-tuple.
    pub reused_from: Option<u64>,
    config: TrackerConfig,
    pub roles: Roles,
    pub simultaneous_open: bool,
    /// Set by `on_ack` when the segment re-acknowledged a retransmitted FIN from TIME_WAIT.
    reacked: bool,
    /// The client has sent an ACK-bearing non-SYN segment after its SYN.
    client_acked: bool,
    /// The client's ACK of the SYN-ACK was seen (or both SYN-ACKs of a simultaneous open).
    pub handshake_done: bool,
    pub ep: [Endpoint; 2],
    /// The frame of the segment that opened it: ids follow this order, and a sharded run
    /// numbers its connections by it.
    pub first_frame: u64,
    pub first_ts: Timestamp,
    /// Time of the last SYN without ACK, and Wireshark's initial RTT measured from it.
    last_syn: Option<Timestamp>,
    pub handshake_rtt: Option<Duration>,
    /// SYN → SYN-ACK and SYN-ACK → ACK, as seen from the capture point.
    pub handshake_halves: Option<(Duration, Duration)>,
    pub reset: Option<ResetInfo>,
    pub first_fin: Option<Side>,
    pub close_kind: Option<CloseKind>,
    pub close_complete: bool,
    pub half_close: bool,
    pub mid_stream: bool,
    /// Why the flow table let go of it.
    pub end_reason: EndReason,
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
        let mut conn = Connection::new(id, seg, config, reused_from);
        let obs = conn.begin(seg, out);
        (conn, obs)
    }

    /// A connection about to see its first segment `seg`, with the roles decided from it
    /// (nothing observed yet: see [`Connection::begin`]).
    pub fn new(
        id: u64,
        seg: &Segment,
        config: TrackerConfig,
        reused_from: Option<u64>,
    ) -> Connection {
        let f = seg.flags;
        // The SYN's sender is the client; a SYN-ACK's sender, or else the lower port, the server.
        let server_sent_first =
            (f.syn() && f.ack()) || (!f.syn() && seg.src.port() < seg.dst.port());
        let (client, server, roles) = if f.syn() && !f.ack() {
            (seg.src, seg.dst, Roles::Observed)
        } else if server_sent_first {
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
        Connection {
            id,
            first_frame: seg.frame,
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
            last_syn: None,
            irtt: None,
            reacked: false,
            client_acked: false,
            // Made by `begin`, in the box of a finished connection if `adopt_buffers` gave one.
            zeek: None,
            end_reason: EndReason::Open,
            config,
        }
    }

    /// Observes the first segment of a connection made by [`Connection::new`].
    pub fn begin(&mut self, seg: &Segment, out: &mut Vec<Event>) -> Observation {
        let first_side = self.side_of(seg);
        // Zeek's originator is the sender of the first packet.
        self.zeek = match self.zeek.take() {
            Some(mut z) if self.config.zeek => {
                z.restart(first_side, seg.ts);
                Some(z)
            }
            _ if self.config.zeek => Some(Box::new(ZeekConn::new(first_side, seg.ts))),
            _ => None,
        };
        if let Some(previous) = self.reused_from {
            self.emit(out, seg.ts, first_side, EventKind::PortReuse { previous });
        }
        if self.mid_stream {
            self.emit(out, seg.ts, first_side, EventKind::MidStream);
        }
        self.observe(seg, out)
    }

    pub fn side_of(&self, seg: &Segment) -> Side {
        // The segment is this connection's: its source is the client or the server. Unless
        // both ends use the same port, the source port alone tells which, without comparing
        // addresses (twice a segment).
        debug_assert!(seg.src == self.client || seg.src == self.server);
        let (port, other) = (seg.src.port(), seg.dst.port());
        let from_client = if port != other {
            port == self.client.port()
        } else {
            seg.src == self.client
        };
        if from_client {
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
        if !seg.flags.syn() || seg.flags.ack() {
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
        // Zeek's originator is an address, not a role: it stays where it was.
        if let Some(z) = self.zeek.as_mut() {
            z.orig = z.orig.peer();
        }
    }

    /// Feeds one segment of this connection to the tracker; events go to `out`.
    pub fn observe(&mut self, seg: &Segment, out: &mut Vec<Event>) -> Observation {
        let mut obs = Observation::NONE;
        self.observe_into(seg, out, &mut obs);
        obs
    }

    /// [`Connection::observe`], writing what it made of the segment to `obs`. The flow table
    /// keeps one observation in place, read only by the per-segment view: returned by value,
    /// it was copied out after every segment, and the copy's wide loads waited on the narrow
    /// stores that had just written it (a failed store-to-load forward, about a twentieth
    /// of the analysis thread's time).
    pub fn observe_into(&mut self, seg: &Segment, out: &mut Vec<Event>, obs: &mut Observation) {
        if let Some(z) = &self.zeek {
            crate::prefetch::prefetch(&**z);
        }
        self.track(seg, out, obs);
        // Zeek's model reads nothing the tracker writes, only the sender (`obs.from`, after
        // any swap of roles): it runs last, so that its box, asked for above, has come in
        // from memory meanwhile.
        if let Some(z) = self.zeek.as_mut() {
            z.observe(seg, obs.from);
        }
    }

    /// The tracker's share of [`Connection::observe_into`].
    fn track(&mut self, seg: &Segment, out: &mut Vec<Event>, obs: &mut Observation) {
        let f = seg.flags;
        // Role evidence: a SYN without ACK comes from the client, a SYN-ACK from the server.
        let side = self.side_of(seg);
        if !self.simultaneous_open {
            let client_sent_syn = self.ep[0].syn.seen();
            let wrong = (f.syn() && !f.ack() && side == Side::Server && !client_sent_syn)
                || (f.syn()
                    && f.ack()
                    && side == Side::Client
                    && !client_sent_syn
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
                e.base = Some(if f.syn() {
                    seg.seq
                } else {
                    seg.seq.plus(u32::MAX)
                });
            }
            if f.syn() {
                e.window_scale = seg.options.window_scale;
            }
        }
        // Without the peer's SYN, its relative numbers start from the first ACK of it seen
        // (as Wireshark and tcpdump do): that ACK shows 1.
        if f.ack() && self.ep[y.idx()].base.is_none() {
            self.ep[y.idx()].base = Some(seg.ack.plus(u32::MAX));
        }
        if let Some(reason) = self.unacceptable(seg, x) {
            self.emit(out, ts, x, EventKind::Ignored { reason });
            *obs = Observation {
                from: x,
                retransmission: None,
                keepalive: false,
                ignored: Some(reason),
                analysis: SegmentAnalysis::default(),
            };
            return;
        }
        self.note_window(seg, x);
        // Written in place, field by field, and never copied whole: see `observe_into`.
        obs.from = x;
        obs.retransmission = None;
        obs.keepalive = false;
        obs.ignored = None;
        self.analyze(seg, x, &mut obs.analysis);
        let sa = &mut obs.analysis;
        // Anything from x answers y's keep-alive probes.
        self.ep[y.idx()].unanswered_keepalives = 0;

        if f.rst() {
            self.on_rst(seg, x, out);
            self.ep[x.idx()].analysis.count(sa.flags);
            return;
        }

        if x == Side::Client && f.ack() && !f.syn() && self.ep[0].syn.seen() {
            self.client_acked = true;
        }
        let keepalive = sa.flags.has(Flags::KEEP_ALIVE);
        let retrans = if keepalive {
            None
        } else {
            self.retransmission_kind(seg, x, sa)
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
            self.on_data(seg, x, retrans, sa, out);
        }
        if f.fin() {
            self.on_fin(seg, x, retrans, out);
        }

        let end = seg.seq_end();
        let e = &mut self.ep[x.idx()];
        e.next_seq = Some(e.next_seq.map_or(end, |n| n.max(end)));
        // The tracker knows more than the flags: SYN-ACKs of a simultaneous open are not
        // retransmissions (correction 3), and an ACK from TIME_WAIT for a retransmitted FIN is
        // its re-ACK, not a duplicate ACK (correction 4).
        if f.syn() && retrans.is_none() {
            sa.flags.clear(
                Flags::RETRANSMISSION | Flags::FAST_RETRANSMISSION | Flags::SPURIOUS_RETRANSMISSION,
            );
        }
        if std::mem::take(&mut self.reacked) {
            sa.flags.clear(Flags::DUPLICATE_ACK);
            sa.flags.set(Flags::TIME_WAIT_REACK);
            sa.dup_ack = None;
        }
        if self.reused_from.is_some() && self.packets() == 1 && f.syn() && !f.ack() {
            sa.flags.set(Flags::REUSED_PORTS);
        }
        self.ep[x.idx()].analysis.count(sa.flags);
        obs.retransmission = retrans;
        obs.keepalive = keepalive;
    }

    /// Runs the per-segment analysis for a segment from `x`.
    fn analyze(&mut self, seg: &Segment, x: Side, sa: &mut SegmentAnalysis) {
        let f = seg.flags;
        // Wireshark's iRTT: from the most recent SYN to the first ACK-bearing non-SYN segment.
        if f.syn() && !f.ack() {
            self.last_syn = Some(seg.ts);
        } else if f.ack()
            && !f.syn()
            && self.irtt.is_none()
            && let Some(t) = self.last_syn
            && seg.ts > t
        {
            self.irtt = Some(seg.ts.since(t));
        }
        let ctx = ConnContext { irtt: self.irtt };
        let [c, s] = &mut self.ep;
        let (fwd, rev) = match x {
            Side::Client => (&mut c.analysis, &mut s.analysis),
            Side::Server => (&mut s.analysis, &mut c.analysis),
        };
        analysis::analyze_into(fwd, rev, seg, ctx, sa);
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
            Some(_) => {
                (u64::from(self.ep[receiver.idx()].max_window) * 4).clamp(1 << 20, 1 << 30) as i32
            }
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
        // In SYN_SENT a RST counts only if it acknowledges the SYN (RFC 9293 §3.10.7.3); a
        // forged one (an injection) usually does not.
        let receiver = &self.ep[y.idx()];
        if f.rst()
            && receiver.state == TcpState::SynSent
            && receiver
                .isn
                .is_some_and(|isn| !f.ack() || seg.ack != isn.plus(1))
        {
            return Some("a RST in SYN_SENT must acknowledge the SYN, and this one does not");
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
            return Some(
                "it lacks the ACK flag, which every segment of a synchronized connection carries",
            );
        }
        None
    }

    /// Does the segment carry sequence space its sender has already sent? SYNs, SYN-ACKs and
    /// FINs are judged by the tracker (it knows each side's ISN and FIN); data by the analysis.
    fn retransmission_kind(
        &self,
        seg: &Segment,
        x: Side,
        sa: &SegmentAnalysis,
    ) -> Option<RetransKind> {
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
        if f.fin() && e.fin_seq == Some(seg.seq.plus(seg.payload_len)) {
            return Some(RetransKind::Fin);
        }
        (seg.payload_len > 0 && sa.flags.retransmission()).then_some(RetransKind::Data)
    }

    // ------------------------------------------------------------------------------------
    // Opening
    // ------------------------------------------------------------------------------------

    /// Records the sending of a SYN (or SYN-ACK) by `x`. A retransmission is reported with its
    /// back-off (the gap since the previous one and since the first); returns whether it was one.
    fn record_opening(
        &mut self,
        x: Side,
        syn_ack: bool,
        ts: Timestamp,
        retransmission: bool,
        out: &mut Vec<Event>,
    ) -> bool {
        let e = &mut self.ep[x.idx()];
        let sent = if syn_ack { &mut e.syn_ack } else { &mut e.syn };
        let (gap, since_first) = sent.record(ts);
        if !retransmission {
            return false;
        }
        let attempt = sent.count - 1;
        let kind = if syn_ack {
            EventKind::SynAckRetransmission {
                attempt,
                gap,
                since_first,
            }
        } else {
            EventKind::SynRetransmission {
                attempt,
                gap,
                since_first,
            }
        };
        self.emit(out, ts, x, kind);
        true
    }

    fn on_syn(
        &mut self,
        seg: &Segment,
        x: Side,
        retrans: Option<RetransKind>,
        out: &mut Vec<Event>,
    ) {
        let y = x.peer();
        let ts = seg.ts;
        if self.record_opening(x, false, ts, retrans.is_some(), out) {
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
        if self.record_opening(x, true, ts, retrans.is_some(), out) {
            return;
        }
        if self.ep[x.idx()].isn != Some(seg.seq) {
            self.ep[x.idx()].isn = Some(seg.seq);
            self.ep[x.idx()].base = Some(seg.seq);
        }
        let acks_peer_syn = self.ep[y.idx()]
            .isn
            .is_none_or(|isn| !seg.ack.is_before(isn.plus(1)));
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
            && y_isn.is_none_or(|isn| !ack.is_before(isn.plus(1)))
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
        if ack.is_before(y_fin.plus(1)) {
            return;
        }
        let x_state = self.ep[x.idx()].state;
        if x_state == TcpState::TimeWait && !seg.flags.fin() {
            let tw = self.config.time_wait;
            match self.ep[x.idx()].time_wait.as_mut() {
                // x's TIME_WAIT timer starts with this ACK.
                Some(t) if !t.acked => {
                    t.since = ts;
                    t.until = ts.plus(tw);
                    t.acked = true;
                }
                // x acknowledges again a FIN it had acknowledged before: the FIN was sent
                // again because the first ACK was lost.
                Some(t) if !self.ep[y.idx()].fin_acked && self.ep[y.idx()].fin_ack_lost => {
                    self.ep[y.idx()].fin_ack_lost = false;
                    t.since = ts;
                    t.until = ts.plus(tw);
                    let until = t.until;
                    self.ep[y.idx()].fin_acked = true;
                    self.finish_peer_close(y, ts);
                    self.close_complete = self.ep[x.idx()].fin_acked;
                    self.reacked = true;
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
        if let Some(TimeWait {
            acked: true,
            since,
            until,
            ..
        }) = self.ep[x.idx()].time_wait
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
            until: ts.plus(self.config.time_wait),
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

    fn on_data(
        &mut self,
        seg: &Segment,
        x: Side,
        retrans: Option<RetransKind>,
        sa: &SegmentAnalysis,
        out: &mut Vec<Event>,
    ) {
        let y = x.peer();
        if retrans == Some(RetransKind::Data) {
            let rel_seq = self.ep[x.idx()].rel(seg.seq);
            let kind = if sa.flags.has(Flags::FAST_RETRANSMISSION) {
                "fast_retransmission"
            } else if sa.flags.has(Flags::SPURIOUS_RETRANSMISSION) {
                "spurious_retransmission"
            } else {
                "retransmission"
            };
            self.emit(
                out,
                seg.ts,
                x,
                EventKind::DataRetransmission {
                    rel_seq,
                    len: seg.payload_len,
                    kind,
                    since_original: sa.since_original,
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

    fn on_fin(
        &mut self,
        seg: &Segment,
        x: Side,
        retrans: Option<RetransKind>,
        out: &mut Vec<Event>,
    ) {
        let y = x.peer();
        let ts = seg.ts;
        let (gap, _) = self.ep[x.idx()].fin.record(ts);
        if retrans == Some(RetransKind::Fin) {
            let attempt = self.ep[x.idx()].fin.count - 1;
            // A FIN sent again after its ACK went by: that ACK never reached x.
            let ack_was_lost = self.ep[x.idx()].fin_acked;
            if ack_was_lost {
                self.ep[x.idx()].fin_acked = false;
                self.ep[x.idx()].fin_ack_lost = true;
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
        self.ep[x.idx()].fin_seq = Some(seg.seq.plus(seg.payload_len));
        let peer_fin = self.ep[y.idx()].fin_seq;
        let acks_peer_fin =
            peer_fin.is_some_and(|f| seg.flags.ack() && !seg.ack.is_before(f.plus(1)));
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
        let receiver_state = self.ep[y.idx()].state;
        self.ep[x.idx()].rsts += 1;
        let cause = self.reset_cause(seg, x);
        // A refusal comes from a port with no socket at all (RFC 9293 §3.5.2: CLOSED).
        let sender_state = match cause {
            ResetCause::Refused => TcpState::Closed,
            _ => self.ep[x.idx()].state,
        };
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

    /// LISTEN describes the server's listening socket while a SYN is on its way. A server that
    /// never answered never created a connection for this 4-tuple: for it, the connection is
    /// CLOSED.
    fn unanswered_listener_is_closed(&mut self, ts: Timestamp) {
        for side in [Side::Client, Side::Server] {
            if self.ep[side.idx()].state == TcpState::Listen {
                self.set_state(side, TcpState::Closed, ts);
            }
        }
    }

    /// A new SYN at `ts` on this 4-tuple replaces this connection (by `new_conn`).
    pub fn superseded(&mut self, ts: Timestamp, new_conn: u64, out: &mut Vec<Event>) {
        self.expire_time_wait(ts, out);
        self.unanswered_listener_is_closed(ts);
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

    /// Both endpoints are done (CLOSED, or waiting out TIME_WAIT): nothing more can happen on
    /// this connection but stragglers.
    pub fn is_closed_or_time_wait(&self) -> bool {
        self.ep.iter().all(|e| e.state.is_closed())
    }

    /// Takes over the buffers of a finished connection whose box this one now uses.
    pub fn adopt_buffers(&mut self, old: &mut Connection) {
        for (e, o) in self.ep.iter_mut().zip(&mut old.ep) {
            e.analysis.adopt_buffers(&mut o.analysis);
        }
        // The Zeek model's box too (`begin` starts it afresh): two allocations fewer for
        // every connection of a JSON or Zeek run.
        self.zeek = old.zeek.take();
    }

    /// Gives back the memory an open connection needs once both sides are closed (the flow
    /// table keeps closed connections a while, for stragglers).
    pub fn release(&mut self) {
        for e in &mut self.ep {
            e.analysis.release();
        }
    }

    /// Still opening: neither side has reached ESTABLISHED (or anything after it).
    pub fn in_handshake(&self) -> bool {
        !self.handshake_done
            && self.ep.iter().all(|e| {
                matches!(
                    e.state,
                    TcpState::Closed | TcpState::Listen | TcpState::SynSent | TcpState::SynReceived
                )
            })
    }

    /// The flow table lets go of this open connection at `ts` (idle timeout or eviction),
    /// reporting each side's state as it was last seen.
    pub fn forget(&mut self, ts: Timestamp, kind: EventKind, out: &mut Vec<Event>) {
        self.unanswered_listener_is_closed(ts);
        self.emit(out, ts, Side::Client, kind);
    }

    /// The capture ended at `end`: expire what has expired and report what is still open.
    pub fn end_of_capture(&mut self, end: Timestamp, out: &mut Vec<Event>) {
        self.expire_time_wait(end, out);
        self.unanswered_listener_is_closed(end);
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

    /// The client sent an ACK-bearing segment (not a SYN) after its SYN, without a refusal in
    /// between: it received a SYN-ACK, captured or not.
    pub fn client_acked_after_syn(&self) -> bool {
        self.client_acked && !self.reset.is_some_and(|r| r.cause == ResetCause::Refused)
    }

    /// Packets and payload bytes of both sides.
    pub fn packets(&self) -> u64 {
        self.ep[0].packets + self.ep[1].packets
    }

    pub fn retransmissions(&self) -> Retransmissions {
        self.ep[0].retransmissions.add(&self.ep[1].retransmissions)
    }
}

#[cfg(test)]
mod tests {
    //! The tracker on hand-made segments. Each test is a scenario written the way it appears
    //! on the wire: `w.c("S", seq, ack, len, t_ms)` is a segment from the client, `w.s(...)`
    //! one from the server, with tcpdump's flag letters.

    use super::*;
    use crate::decode::{TcpFlags, TcpOptions};
    use crate::tcp::report::{self, Close, HandshakeStatus};

    const C_ISN: u32 = 1000;
    const S_ISN: u32 = 5000;

    struct Wire {
        conn: Option<Connection>,
        events: Vec<Event>,
        client: SocketAddr,
        server: SocketAddr,
    }

    fn flags(s: &str) -> TcpFlags {
        let mut f = 0;
        for ch in s.chars() {
            f |= match ch {
                'S' => TcpFlags::SYN,
                'F' => TcpFlags::FIN,
                'R' => TcpFlags::RST,
                'P' => TcpFlags::PSH,
                '.' => TcpFlags::ACK,
                other => panic!("flag {other}"),
            };
        }
        TcpFlags(f)
    }

    fn ms(t: f64) -> Timestamp {
        Timestamp((t * 1e6) as u64)
    }

    impl Wire {
        fn new() -> Wire {
            Wire {
                conn: None,
                events: Vec::new(),
                client: "10.0.0.1:40000".parse().unwrap(),
                server: "10.0.0.2:80".parse().unwrap(),
            }
        }

        fn send(
            &mut self,
            from_client: bool,
            f: &str,
            seq: u32,
            ack: u32,
            len: u32,
            t: f64,
        ) -> Observation {
            let (src, dst) = if from_client {
                (self.client, self.server)
            } else {
                (self.server, self.client)
            };
            let seg = Segment {
                ts: ms(t),
                frame: 0,
                src,
                dst,
                seq: SeqNum(seq),
                ack: SeqNum(ack),
                flags: flags(f),
                window: 1000,
                payload_len: len,
                options: TcpOptions::default(),
                truncated: false,
                ip_len: 40 + len,
            };
            match self.conn.as_mut() {
                Some(c) => c.observe(&seg, &mut self.events),
                None => {
                    let (c, obs) = Connection::start(
                        1,
                        &seg,
                        TrackerConfig::default(),
                        None,
                        &mut self.events,
                    );
                    self.conn = Some(c);
                    obs
                }
            }
        }
        fn c(&mut self, f: &str, seq: u32, ack: u32, len: u32, t: f64) -> Observation {
            self.send(true, f, seq, ack, len, t)
        }
        fn s(&mut self, f: &str, seq: u32, ack: u32, len: u32, t: f64) -> Observation {
            self.send(false, f, seq, ack, len, t)
        }
        fn conn(&self) -> &Connection {
            self.conn.as_ref().unwrap()
        }
        fn states(&self) -> [TcpState; 2] {
            self.conn().states()
        }
        fn kinds(&self) -> Vec<&'static str> {
            self.events.iter().map(|e| e.kind.name()).collect()
        }
        /// SYN, SYN-ACK, ACK at 0, 1 and 2 ms.
        fn handshake(&mut self) {
            self.c("S", C_ISN, 0, 0, 0.0);
            self.s("S.", S_ISN, C_ISN + 1, 0, 1.0);
            self.c(".", C_ISN + 1, S_ISN + 1, 0, 2.0);
        }
    }

    use TcpState::*;

    // --- Opening -------------------------------------------------------------------------

    /// A connection started in the box of a finished one (as the flow table reuses boxes)
    /// takes over its Zeek model's memory, not its history: it is Zeek's view of a new
    /// connection, the same as in a box of its own.
    #[test]
    fn a_reused_box_starts_a_fresh_zeek_model() {
        let mut w = Wire::new();
        w.handshake();
        w.c(".P", C_ISN + 1, S_ISN + 1, 100, 10.0);
        w.s("F.", S_ISN + 1, C_ISN + 101, 0, 20.0);
        let mut finished = w.conn.take().unwrap();
        assert_eq!(finished.zeek.as_ref().unwrap().history(), "ShADf");
        // The next connection's first packet is a SYN-ACK: Zeek's originator is its sender.
        let first = Segment::test_between(false, TcpFlags::SYN | TcpFlags::ACK, 7, 1, 0, ms(30.0));
        let config = TrackerConfig::default();
        let mut reused = Connection::new(2, &first, config, None);
        reused.adopt_buffers(&mut finished);
        reused.begin(&first, &mut Vec::new());
        let (fresh, _) = Connection::start(2, &first, config, None, &mut Vec::new());
        let (a, b) = (reused.zeek.unwrap(), fresh.zeek.unwrap());
        assert_eq!(a.history(), "H");
        assert_eq!(
            (a.history(), a.conn_state(), a.orig),
            (b.history(), b.conn_state(), b.orig)
        );
    }

    /// Both ends on one port (a peer-to-peer protocol's fixed port): the sender is told by
    /// its address, not its port, and each side counts its own segments.
    #[test]
    fn both_ends_on_one_port_are_told_apart_by_address() {
        let mut w = Wire::new();
        w.client = "10.0.0.1:7000".parse().unwrap();
        w.server = "10.0.0.2:7000".parse().unwrap();
        w.handshake();
        w.c(".P", C_ISN + 1, S_ISN + 1, 100, 10.0);
        let c = w.conn.as_ref().unwrap();
        assert_eq!(c.states(), [TcpState::Established, TcpState::Established]);
        let (cl, sv) = (c.endpoint(Side::Client), c.endpoint(Side::Server));
        assert_eq!((cl.packets, sv.packets), (3, 1));
        assert_eq!((cl.payload_bytes, sv.payload_bytes), (100, 0));
    }

    #[test]
    fn three_way_handshake_walks_both_sides_to_established() {
        let mut w = Wire::new();
        w.c("S", C_ISN, 0, 0, 0.0);
        assert_eq!(w.states(), [SynSent, Listen]);
        w.s("S.", S_ISN, C_ISN + 1, 0, 1.0);
        assert_eq!(w.states(), [Established, SynReceived]);
        w.c(".", C_ISN + 1, S_ISN + 1, 0, 2.0);
        assert_eq!(w.states(), [Established, Established]);
        assert_eq!(w.kinds(), ["syn", "syn_ack", "handshake_complete"]);
        let c = w.conn();
        assert_eq!(c.handshake_rtt, Some(Duration(2_000_000)));
        assert_eq!(
            c.handshake_halves,
            Some((Duration(1_000_000), Duration(1_000_000)))
        );
        assert_eq!(report::handshake_status(c), HandshakeStatus::Complete);
        assert_eq!(c.roles, Roles::Observed);
    }

    #[test]
    fn syn_retransmissions_report_their_backoff() {
        let mut w = Wire::new();
        w.c("S", C_ISN, 0, 0, 0.0);
        w.c("S", C_ISN, 0, 0, 1000.0);
        w.c("S", C_ISN, 0, 0, 3000.0);
        let gaps: Vec<(u32, Duration, Duration)> = w
            .events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::SynRetransmission {
                    attempt,
                    gap,
                    since_first,
                } => Some((attempt, gap, since_first)),
                _ => None,
            })
            .collect();
        assert_eq!(
            gaps,
            [
                (1, Duration(1_000_000_000), Duration(1_000_000_000)),
                (2, Duration(2_000_000_000), Duration(3_000_000_000)),
            ]
        );
        assert_eq!(w.conn().retransmissions().syn, 2);
        assert_eq!(
            report::handshake_status(w.conn()),
            HandshakeStatus::Unanswered
        );
        assert_eq!(w.states(), [SynSent, Listen]);
    }

    #[test]
    fn rtt_is_measured_from_the_last_syn() {
        let mut w = Wire::new();
        w.c("S", C_ISN, 0, 0, 0.0);
        w.c("S", C_ISN, 0, 0, 1000.0);
        w.s("S.", S_ISN, C_ISN + 1, 0, 1000.5);
        w.c(".", C_ISN + 1, S_ISN + 1, 0, 1001.0);
        assert_eq!(w.conn().handshake_rtt, Some(Duration(1_000_000)));
    }

    #[test]
    fn syn_answered_by_rst_is_refused() {
        let mut w = Wire::new();
        w.c("S", C_ISN, 0, 0, 0.0);
        w.s("R.", 0, C_ISN + 1, 0, 0.1);
        let c = w.conn();
        assert_eq!(report::handshake_status(c), HandshakeStatus::Refused);
        assert_eq!(report::close(c), Close::Refused);
        let r = c.reset.unwrap();
        assert_eq!((r.by, r.cause), (Side::Server, ResetCause::Refused));
        assert_eq!(w.states(), [Closed, Closed]);
    }

    #[test]
    fn syn_ack_never_acknowledged_is_incomplete() {
        let mut w = Wire::new();
        w.c("S", C_ISN, 0, 0, 0.0);
        w.s("S.", S_ISN, C_ISN + 1, 0, 1.0);
        w.s("S.", S_ISN, C_ISN + 1, 0, 1001.0);
        let c = w.conn();
        assert_eq!(report::handshake_status(c), HandshakeStatus::Incomplete);
        assert_eq!(c.retransmissions().syn_ack, 1);
        assert_eq!(w.states(), [Established, SynReceived]);
    }

    #[test]
    fn crossing_syns_are_a_simultaneous_open() {
        let mut w = Wire::new();
        w.c("S", C_ISN, 0, 0, 0.0);
        w.s("S", S_ISN, 0, 0, 0.1);
        assert_eq!(w.states(), [SynReceived, SynReceived]);
        w.c("S.", C_ISN, S_ISN + 1, 0, 1.0);
        w.s("S.", S_ISN, C_ISN + 1, 0, 1.1);
        assert_eq!(w.states(), [Established, Established]);
        let c = w.conn();
        assert!(c.simultaneous_open);
        // The SYN-ACKs repeat the ISNs, but they are not retransmissions.
        assert_eq!(c.retransmissions().total(), 0);
        assert_eq!(report::handshake_status(c), HandshakeStatus::Complete);
    }

    // --- Closing -------------------------------------------------------------------------

    #[test]
    fn four_way_close_puts_the_first_fin_sender_in_time_wait() {
        let mut w = Wire::new();
        w.handshake();
        w.c("F.", C_ISN + 1, S_ISN + 1, 0, 10.0);
        assert_eq!(w.states(), [FinWait1, CloseWait]);
        w.s(".", S_ISN + 1, C_ISN + 2, 0, 10.1);
        assert_eq!(w.states(), [FinWait2, CloseWait]);
        w.s("F.", S_ISN + 1, C_ISN + 2, 0, 20.0);
        assert_eq!(w.states(), [TimeWait, LastAck]);
        w.c(".", C_ISN + 2, S_ISN + 2, 0, 20.1);
        assert_eq!(w.states(), [TimeWait, Closed]);
        let c = w.conn();
        assert_eq!(report::close(c), Close::FourWay);
        assert_eq!(report::first_fin(c), Some("client"));
        let tw = c.endpoint(Side::Client).time_wait.unwrap();
        // The timer starts with the client's ACK of the server's FIN.
        assert_eq!(tw.since, ms(20.1));
        assert_eq!(tw.until, ms(20.1 + 60_000.0));
        assert!(c.close_complete);
        assert!(c.endpoint(Side::Server).time_wait.is_none());
    }

    #[test]
    fn fin_carrying_the_ack_of_the_first_fin_is_a_three_segment_close() {
        let mut w = Wire::new();
        w.handshake();
        w.s("F.", S_ISN + 1, C_ISN + 1, 0, 10.0);
        w.c("F.", C_ISN + 1, S_ISN + 2, 0, 10.1);
        assert_eq!(w.states(), [LastAck, TimeWait]);
        w.s(".", S_ISN + 2, C_ISN + 2, 0, 10.2);
        let c = w.conn();
        assert_eq!(report::close(c), Close::ThreeSegment);
        assert_eq!(report::first_fin(c), Some("server"));
        assert_eq!(report::time_wait(c).side, Some("server"));
        assert_eq!(w.states(), [Closed, TimeWait]);
    }

    #[test]
    fn fins_sent_before_either_arrived_are_a_simultaneous_close() {
        let mut w = Wire::new();
        w.handshake();
        w.c("F.", C_ISN + 1, S_ISN + 1, 0, 10.0);
        w.s("F.", S_ISN + 1, C_ISN + 1, 0, 10.01);
        assert_eq!(w.states(), [Closing, Closing]);
        w.c(".", C_ISN + 2, S_ISN + 2, 0, 10.1);
        assert_eq!(w.states(), [Closing, TimeWait]);
        w.s(".", S_ISN + 2, C_ISN + 2, 0, 10.11);
        assert_eq!(w.states(), [TimeWait, TimeWait]);
        let c = w.conn();
        assert_eq!(report::close(c), Close::Simultaneous);
        assert_eq!(report::first_fin(c), Some("both"));
        assert_eq!(report::time_wait(c).side, Some("both"));
    }

    #[test]
    fn data_after_a_fin_toward_its_sender_is_a_half_close() {
        let mut w = Wire::new();
        w.handshake();
        w.c("F.", C_ISN + 1, S_ISN + 1, 0, 10.0);
        w.s(".", S_ISN + 1, C_ISN + 2, 0, 10.1);
        w.s("P.", S_ISN + 1, C_ISN + 2, 100, 11.0);
        w.c(".", C_ISN + 2, S_ISN + 101, 0, 11.1);
        w.s("F.", S_ISN + 101, C_ISN + 2, 0, 12.0);
        w.c(".", C_ISN + 2, S_ISN + 102, 0, 12.1);
        let c = w.conn();
        assert!(c.half_close);
        assert_eq!(report::close(c), Close::FourWay);
        assert!(w.kinds().contains(&"half_close"));
    }

    #[test]
    fn a_fin_resent_after_its_ack_means_the_ack_was_lost_and_time_wait_restarts() {
        let mut w = Wire::new();
        w.handshake();
        w.c("F.", C_ISN + 1, S_ISN + 1, 0, 10.0);
        w.s(".", S_ISN + 1, C_ISN + 2, 0, 10.1);
        w.s("F.", S_ISN + 1, C_ISN + 2, 0, 20.0);
        w.c(".", C_ISN + 2, S_ISN + 2, 0, 20.1);
        assert_eq!(w.states(), [TimeWait, Closed]);
        w.s("F.", S_ISN + 1, C_ISN + 2, 0, 220.0);
        assert_eq!(w.states(), [TimeWait, LastAck]);
        w.c(".", C_ISN + 2, S_ISN + 2, 0, 220.1);
        assert_eq!(w.states(), [TimeWait, Closed]);
        let c = w.conn();
        assert_eq!(c.retransmissions().fin, 1);
        assert_eq!(
            c.endpoint(Side::Client).time_wait.unwrap().until,
            ms(220.1 + 60_000.0)
        );
        assert!(w.kinds().contains(&"time_wait_reack"));
        assert!(c.close_complete);
    }

    #[test]
    fn time_wait_expires_after_the_configured_time() {
        let mut w = Wire::new();
        w.handshake();
        w.c("F.", C_ISN + 1, S_ISN + 1, 0, 10.0);
        w.s("F.", S_ISN + 1, C_ISN + 2, 0, 10.1);
        w.c(".", C_ISN + 2, S_ISN + 2, 0, 10.2);
        let c = w.conn.as_mut().unwrap();
        assert_eq!(c.time_wait_deadline(), Some(ms(10.2 + 60_000.0)));
        c.expire_time_wait(ms(30_000.0), &mut w.events);
        assert_eq!(c.states(), [TimeWait, Closed]);
        c.expire_time_wait(ms(70_000.0), &mut w.events);
        assert_eq!(c.states(), [Closed, Closed]);
        assert_eq!(w.events.last().unwrap().kind, EventKind::TimeWaitExpired);
        assert_eq!(w.events.last().unwrap().ts, ms(10.2 + 60_000.0));
    }

    // --- Resets --------------------------------------------------------------------------

    #[test]
    fn rst_of_an_established_connection_is_an_abort() {
        let mut w = Wire::new();
        w.handshake();
        w.c("P.", C_ISN + 1, S_ISN + 1, 10, 5.0);
        w.c("R.", C_ISN + 11, S_ISN + 1, 0, 6.0);
        let c = w.conn();
        let r = c.reset.unwrap();
        assert_eq!(
            (r.by, r.cause, r.sender_state),
            (Side::Client, ResetCause::Abort, Established)
        );
        assert_eq!(report::close(c), Close::Reset);
        assert_eq!(report::time_wait(c).side, None);
        assert_eq!(w.states(), [Closed, Closed]);
    }

    #[test]
    fn bare_rst_answering_data_for_a_closed_socket() {
        let mut w = Wire::new();
        w.handshake();
        w.s("F.", S_ISN + 1, C_ISN + 1, 0, 5.0);
        w.c(".", C_ISN + 1, S_ISN + 2, 0, 5.1);
        w.c("P.", C_ISN + 1, S_ISN + 2, 10, 50.0);
        w.s("R", S_ISN + 2, 0, 0, 50.1);
        let r = w.conn().reset.unwrap();
        assert_eq!(
            (r.by, r.cause, r.sender_state),
            (Side::Server, ResetCause::ClosedSocket, FinWait2)
        );
    }

    #[test]
    fn rst_after_unanswered_keepalives_is_a_keepalive_timeout() {
        let mut w = Wire::new();
        w.handshake();
        let probe = w.c(".", C_ISN, S_ISN + 1, 0, 1000.0);
        assert!(probe.keepalive);
        w.c(".", C_ISN, S_ISN + 1, 0, 2000.0);
        w.c("R.", C_ISN + 1, S_ISN + 1, 0, 3000.0);
        let c = w.conn();
        assert_eq!(c.reset.unwrap().cause, ResetCause::KeepaliveTimeout);
        assert_eq!(c.endpoint(Side::Client).keepalives, 2);
        assert_eq!(c.retransmissions().total(), 0);
    }

    #[test]
    fn rst_while_one_side_is_closing() {
        let mut w = Wire::new();
        w.handshake();
        w.c("F.", C_ISN + 1, S_ISN + 1, 0, 10.0);
        w.s(".", S_ISN + 1, C_ISN + 2, 0, 10.1);
        w.s("R.", S_ISN + 1, C_ISN + 2, 0, 11.0);
        let r = w.conn().reset.unwrap();
        assert_eq!(
            (r.cause, r.sender_state),
            (ResetCause::DuringClose, CloseWait)
        );
    }

    // --- Data and sequence space --------------------------------------------------------

    #[test]
    fn data_below_the_highest_sequence_sent_is_a_retransmission() {
        let mut w = Wire::new();
        w.handshake();
        w.c("P.", C_ISN + 1, S_ISN + 1, 100, 5.0);
        w.c("P.", C_ISN + 101, S_ISN + 1, 100, 5.1);
        let obs = w.c("P.", C_ISN + 1, S_ISN + 1, 100, 205.0);
        assert_eq!(obs.retransmission, Some(RetransKind::Data));
        assert_eq!(w.conn().retransmissions().data, 1);
    }

    #[test]
    fn sequence_numbers_wrap_around_zero() {
        let mut w = Wire::new();
        let isn = u32::MAX - 5;
        w.c("S", isn, 0, 0, 0.0);
        w.s("S.", S_ISN, isn.wrapping_add(1), 0, 1.0);
        w.c(".", isn.wrapping_add(1), S_ISN + 1, 0, 2.0);
        w.c("P.", isn.wrapping_add(1), S_ISN + 1, 10, 3.0); // spans the wrap
        let obs = w.c("P.", isn.wrapping_add(11), S_ISN + 1, 10, 4.0);
        assert_eq!(obs.retransmission, None);
        w.c("F.", isn.wrapping_add(21), S_ISN + 1, 0, 5.0);
        w.s("F.", S_ISN + 1, isn.wrapping_add(22), 0, 6.0);
        w.c(".", isn.wrapping_add(22), S_ISN + 2, 0, 7.0);
        let c = w.conn();
        assert_eq!(c.retransmissions().total(), 0);
        assert_eq!(report::close(c), Close::ThreeSegment);
        assert_eq!(
            c.endpoint(Side::Client).rel(SeqNum(isn.wrapping_add(21))),
            21
        );
    }

    #[test]
    fn segments_a_receiver_must_drop_change_nothing() {
        let mut w = Wire::new();
        w.handshake();
        let far = w.c("P.", C_ISN + (1 << 30), S_ISN + 1, 5, 3.0);
        assert!(far.ignored.is_some());
        let unsent = w.c(".", C_ISN + 1, S_ISN + (1 << 31), 0, 4.0);
        assert!(unsent.ignored.is_some());
        let no_ack = w.c("F", C_ISN + 1, 0, 0, 5.0);
        assert!(no_ack.ignored.is_some());
        let all = w.c("FSRP.", C_ISN + (1 << 31), S_ISN + 1, 0, 6.0);
        assert!(all.ignored.is_some());
        assert_eq!(w.states(), [Established, Established]);
        assert!(w.conn().reset.is_none());
        // A later real FIN is the first one, not a retransmission.
        let fin = w.c("F.", C_ISN + 1, S_ISN + 1, 0, 7.0);
        assert_eq!(fin.retransmission, None);
        assert_eq!(w.states(), [FinWait1, CloseWait]);
    }

    // --- Roles ---------------------------------------------------------------------------

    #[test]
    fn mid_stream_capture_infers_the_server_from_the_lower_port() {
        let mut w = Wire::new();
        w.c("P.", 7000, 9000, 10, 0.0);
        let c = w.conn();
        assert_eq!(c.roles, Roles::Inferred);
        assert_eq!(c.server, "10.0.0.2:80".parse().unwrap());
        assert_eq!(report::handshake_status(c), HandshakeStatus::NotSeen);
        assert_eq!(w.states(), [Established, Established]);
        assert_eq!(w.kinds(), ["mid_stream"]);
    }

    #[test]
    fn syn_ack_sender_is_the_server_when_the_syn_was_missed() {
        let mut w = Wire::new();
        w.s("S.", S_ISN, C_ISN + 1, 0, 0.0);
        w.c(".", C_ISN + 1, S_ISN + 1, 0, 1.0);
        let c = w.conn();
        assert_eq!(c.server, "10.0.0.2:80".parse().unwrap());
        assert_eq!(c.roles, Roles::Inferred);
        assert_eq!(w.states(), [Established, Established]);
        assert_eq!(report::handshake_status(c), HandshakeStatus::NotSeen);
    }

    #[test]
    fn a_syn_with_a_new_isn_is_a_new_incarnation() {
        let mut w = Wire::new();
        w.handshake();
        let again = |isn: u32| Segment {
            ts: ms(100.0),
            frame: 0,
            src: w.client,
            dst: w.server,
            seq: SeqNum(isn),
            ack: SeqNum(0),
            flags: flags("S"),
            window: 1000,
            payload_len: 0,
            options: TcpOptions::default(),
            truncated: false,
            ip_len: 40,
        };
        assert!(!w.conn().is_new_incarnation(&again(C_ISN)));
        assert!(w.conn().is_new_incarnation(&again(C_ISN + 100_000)));
    }

    #[test]
    fn end_of_capture_reports_how_long_a_side_has_waited() {
        let mut w = Wire::new();
        w.handshake();
        w.c("F.", C_ISN + 1, S_ISN + 1, 0, 10.0);
        w.s(".", S_ISN + 1, C_ISN + 2, 0, 10.1);
        let c = w.conn.as_mut().unwrap();
        c.end_of_capture(ms(40_010.0), &mut w.events);
        let open: Vec<(Side, TcpState, Duration)> = w
            .events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::StillOpen { state, for_ } => Some((e.from, state, for_)),
                _ => None,
            })
            .collect();
        assert_eq!(
            open,
            [
                (Side::Client, FinWait2, Duration(40_000_000_000 - 100_000)),
                (Side::Server, CloseWait, Duration(40_000_000_000)),
            ]
        );
    }
}
