//! What the tracker reports: one [`Event`] for each thing worth a line in a walkthrough.
//!
//! Events carry facts only (who, when, which numbers, the states after); the renderers turn
//! them into words or JSON.

use crate::tcp::conn::{ResetCause, Side};
use crate::tcp::state::TcpState;
use crate::time::{Duration, Timestamp};

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub ts: Timestamp,
    /// Connection id (1-based, in order of first appearance).
    pub conn: u64,
    /// The side whose action or state the event is about.
    pub from: Side,
    pub kind: EventKind,
    /// Both endpoints' states after the event: `[client, server]`.
    pub states: [TcpState; 2],
}

#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// The first segment of the connection was not a SYN: the capture began mid-connection.
    MidStream,
    /// The 4-tuple was used before by connection `previous`; this SYN starts a new incarnation.
    PortReuse {
        previous: u64,
    },
    Syn {
        isn: u32,
    },
    SynRetransmission {
        attempt: u32,
        gap: Duration,
        since_first: Duration,
    },
    SynAck {
        isn: u32,
    },
    SynAckRetransmission {
        attempt: u32,
        gap: Duration,
        since_first: Duration,
    },
    /// Both sides sent a SYN without ACK before seeing the other's (RFC 9293 Figure 7).
    SimultaneousOpen,
    /// The ACK of the SYN-ACK (or of the crossing SYN-ACKs).
    HandshakeComplete {
        rtt: Option<Duration>,
    },
    /// A FIN. `carries_peer_fin_ack`: it also acknowledges the peer's FIN (three-segment close).
    /// `simultaneous`: it was sent before the peer's FIN arrived.
    Fin {
        data_bytes: u32,
        carries_peer_fin_ack: bool,
        simultaneous: bool,
    },
    FinRetransmission {
        attempt: u32,
        gap: Duration,
        ack_was_lost: bool,
    },
    /// `from` acknowledges the peer's FIN.
    FinAcked,
    /// `from` sends data after the peer's FIN: a half-closed connection.
    HalfClose,
    /// `kind`: retransmission, fast_retransmission or spurious_retransmission (Wireshark's
    /// names); `since_original`: time since the oldest unacknowledged segment was sent.
    DataRetransmission {
        rel_seq: u32,
        len: u32,
        kind: &'static str,
        since_original: Option<Duration>,
    },
    Reset {
        sender_state: TcpState,
        receiver_state: TcpState,
        cause: ResetCause,
    },
    /// `from` is in TIME_WAIT from `since` until `until` (its ACK of the peer's FIN).
    TimeWait {
        since: Timestamp,
        until: Timestamp,
    },
    /// `from`, in TIME_WAIT, acknowledges a retransmitted FIN again; its timer restarts.
    TimeWaitReack {
        until: Timestamp,
    },
    TimeWaitExpired,
    /// A new SYN on the same 4-tuple ended `from`'s TIME_WAIT before it expired.
    TimeWaitEndedBySyn {
        new_conn: u64,
    },
    /// Both FINs are acknowledged: the close is over.
    CloseComplete,
    /// Silent for `idle`: the flow table forgets the connection (`--idle-timeout`).
    IdleTimeout {
        idle: Duration,
    },
    /// Retired to make room in a full table (`--max-connections`), silent for `idle`.
    Evicted {
        idle: Duration,
    },
    /// A segment the receiver must drop (out of window, acking unsent data, no ACK flag…).
    Ignored {
        reason: &'static str,
    },
    /// The capture ended with `from` still in a live state, entered `for_` ago.
    StillOpen {
        state: TcpState,
        for_: Duration,
    },
}

impl EventKind {
    /// Stable snake_case name used as `"kind"` in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::MidStream => "mid_stream",
            EventKind::PortReuse { .. } => "port_reuse",
            EventKind::Syn { .. } => "syn",
            EventKind::SynRetransmission { .. } => "syn_retransmission",
            EventKind::SynAck { .. } => "syn_ack",
            EventKind::SynAckRetransmission { .. } => "syn_ack_retransmission",
            EventKind::SimultaneousOpen => "simultaneous_open",
            EventKind::HandshakeComplete { .. } => "handshake_complete",
            EventKind::Fin { .. } => "fin",
            EventKind::FinRetransmission { .. } => "fin_retransmission",
            EventKind::FinAcked => "fin_acked",
            EventKind::HalfClose => "half_close",
            EventKind::DataRetransmission { .. } => "data_retransmission",
            EventKind::Reset { .. } => "reset",
            EventKind::TimeWait { .. } => "time_wait",
            EventKind::TimeWaitReack { .. } => "time_wait_reack",
            EventKind::TimeWaitExpired => "time_wait_expired",
            EventKind::TimeWaitEndedBySyn { .. } => "time_wait_ended_by_syn",
            EventKind::CloseComplete => "close_complete",
            EventKind::StillOpen { .. } => "still_open",
            EventKind::Ignored { .. } => "ignored_segment",
            EventKind::IdleTimeout { .. } => "idle_timeout",
            EventKind::Evicted { .. } => "evicted",
        }
    }
}
