//! The verdict on a connection, derived from the tracker's state: handshake status, how it
//! closed, who reset it, who sits in TIME_WAIT. This is what the table and the JSON
//! `connection` objects show, and what `--fail-on` tests.

use crate::tcp::conn::{
    CloseKind, Connection, ResetCause, Retransmissions, Roles, Side, TimeWaitEnd,
};
use crate::tcp::state::TcpState;
use crate::time::{Duration, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeStatus {
    /// SYN, SYN-ACK and the final ACK were all seen.
    Complete,
    /// The SYN was answered by a RST.
    Refused,
    /// Only SYNs: no answer at all.
    Unanswered,
    /// SYN and SYN-ACK seen, the final ACK never.
    Incomplete,
    /// The capture began after the SYN.
    NotSeen,
}

impl HandshakeStatus {
    pub fn name(self) -> &'static str {
        match self {
            HandshakeStatus::Complete => "complete",
            HandshakeStatus::Refused => "refused",
            HandshakeStatus::Unanswered => "unanswered",
            HandshakeStatus::Incomplete => "incomplete",
            HandshakeStatus::NotSeen => "not_seen",
        }
    }
}

/// The close as reported: the FIN pattern, or what ended the connection instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    FourWay,
    ThreeSegment,
    Simultaneous,
    Reset,
    Refused,
    None,
}

impl Close {
    pub fn name(self) -> &'static str {
        match self {
            Close::FourWay => "four_way",
            Close::ThreeSegment => "three_segment",
            Close::Simultaneous => "simultaneous",
            Close::Reset => "reset",
            Close::Refused => "refused",
            Close::None => "none",
        }
    }
}

/// `client`, `server` or `both`.
pub fn sides_name(client: bool, server: bool) -> Option<&'static str> {
    match (client, server) {
        (true, true) => Some("both"),
        (true, false) => Some("client"),
        (false, true) => Some("server"),
        (false, false) => None,
    }
}

pub fn handshake_status(c: &Connection) -> HandshakeStatus {
    let (client, server) = (c.endpoint(Side::Client), c.endpoint(Side::Server));
    if !client.syn.seen() && !c.simultaneous_open {
        HandshakeStatus::NotSeen
    } else if c.handshake_done || c.client_acked_after_syn() {
        // The client's ACK proves the handshake completed, even when a one-sided capture
        // holds no SYN-ACK.
        HandshakeStatus::Complete
    } else if c.reset.is_some_and(|r| r.cause == ResetCause::Refused) {
        HandshakeStatus::Refused
    } else if server.syn_ack.seen() || c.simultaneous_open {
        HandshakeStatus::Incomplete
    } else {
        HandshakeStatus::Unanswered
    }
}

pub fn close(c: &Connection) -> Close {
    if let Some(r) = c.reset {
        if r.cause == ResetCause::Refused {
            return Close::Refused;
        }
        if !r.after_close {
            return Close::Reset;
        }
    }
    match c.close_kind {
        Some(CloseKind::FourWay) => Close::FourWay,
        Some(CloseKind::ThreeSegment) => Close::ThreeSegment,
        Some(CloseKind::Simultaneous) => Close::Simultaneous,
        None => Close::None,
    }
}

/// The TIME_WAIT of the connection: which sides entered it, the earliest start and the latest
/// end.
pub struct TimeWaitReport {
    pub side: Option<&'static str>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// How it ended, for the side that ended last: expired, cut short by a new SYN or a RST,
    /// or still running when the capture ended (None).
    pub ended: Option<TimeWaitEnd>,
}

pub fn time_wait(c: &Connection) -> TimeWaitReport {
    let tw = |s: Side| c.endpoint(s).time_wait;
    let (ct, st) = (tw(Side::Client), tw(Side::Server));
    let both = [ct, st];
    let present = both.iter().flatten();
    TimeWaitReport {
        side: sides_name(ct.is_some(), st.is_some()),
        since: present.clone().map(|t| t.since).min(),
        until: present.clone().map(|t| t.until).max(),
        ended: present.max_by_key(|t| t.until).and_then(|t| t.ended),
    }
}

pub fn first_fin(c: &Connection) -> Option<&'static str> {
    match (c.first_fin, c.close_kind) {
        (_, Some(CloseKind::Simultaneous)) => Some("both"),
        (Some(s), _) => Some(s.name()),
        (None, _) => None,
    }
}

pub fn duration(c: &Connection) -> Duration {
    c.last_ts.since(c.first_ts)
}

pub fn roles_name(r: Roles) -> &'static str {
    match r {
        Roles::Observed => "observed",
        Roles::Inferred => "inferred",
    }
}

/// What `--fail-on` can match on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum FailOn {
    /// a SYN answered by RST
    Refused,
    /// any RST other than a refusal
    Reset,
    /// SYNs that got no answer
    Unanswered,
    /// SYN-ACK never acknowledged (half-open)
    Incomplete,
    /// any retransmission
    Retransmission,
    /// a side still not closed at the end of the capture
    Open,
    /// a side left in CLOSE_WAIT at the end of the capture
    CloseWait,
    /// a 4-tuple reused by a new SYN
    PortReuse,
}

impl FailOn {
    pub fn name(self) -> &'static str {
        match self {
            FailOn::Refused => "refused",
            FailOn::Reset => "reset",
            FailOn::Unanswered => "unanswered",
            FailOn::Incomplete => "incomplete",
            FailOn::Retransmission => "retransmission",
            FailOn::Open => "open",
            FailOn::CloseWait => "close_wait",
            FailOn::PortReuse => "port_reuse",
        }
    }

    /// Does this connection (already closed out) match?
    pub fn matches(self, c: &Connection) -> bool {
        let states = c.states();
        match self {
            FailOn::Refused => handshake_status(c) == HandshakeStatus::Refused,
            FailOn::Reset => c.reset.is_some_and(|r| r.cause != ResetCause::Refused),
            FailOn::Unanswered => handshake_status(c) == HandshakeStatus::Unanswered,
            FailOn::Incomplete => handshake_status(c) == HandshakeStatus::Incomplete,
            FailOn::Retransmission => c.retransmissions().total() > 0,
            FailOn::Open => states.iter().any(|s| !s.is_closed()),
            FailOn::CloseWait => states.contains(&TcpState::CloseWait),
            FailOn::PortReuse => c.reused_from.is_some(),
        }
    }
}

/// Retransmissions of both sides.
pub fn retransmissions(c: &Connection) -> Retransmissions {
    c.retransmissions()
}
