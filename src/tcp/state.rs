//! The RFC 9293 connection states (§3.3.2), as an observer on the wire infers them for each
//! endpoint.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpState {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl TcpState {
    /// Every state, in declaration order (`state as usize` indexes it).
    pub const ALL: [TcpState; 11] = [
        TcpState::Closed,
        TcpState::Listen,
        TcpState::SynSent,
        TcpState::SynReceived,
        TcpState::Established,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::CloseWait,
        TcpState::Closing,
        TcpState::LastAck,
        TcpState::TimeWait,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynReceived => "SYN_RECEIVED",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
        }
    }

    /// States in which the endpoint has no connection left to speak of.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            TcpState::Closed | TcpState::Listen | TcpState::TimeWait
        )
    }

    /// States between the application's close() (or the peer's FIN) and CLOSED.
    pub fn is_closing(self) -> bool {
        matches!(
            self,
            TcpState::FinWait1
                | TcpState::FinWait2
                | TcpState::CloseWait
                | TcpState::Closing
                | TcpState::LastAck
        )
    }

    /// What an endpoint left in this state at the end of a capture is waiting for, in words.
    pub fn waiting_for(self) -> &'static str {
        match self {
            TcpState::SynSent => "its SYN was never answered",
            TcpState::SynReceived => "its SYN-ACK was never acknowledged",
            TcpState::Established => "the connection is open",
            TcpState::FinWait1 => "its FIN has not been acknowledged",
            TcpState::FinWait2 => "waiting for the peer's FIN",
            TcpState::CloseWait => {
                "the peer closed, but this side's application has not closed its socket"
            }
            TcpState::Closing => "both FINs crossed; waiting for the ACK of its FIN",
            TcpState::LastAck => "waiting for the ACK of its FIN",
            TcpState::TimeWait => "waiting out TIME_WAIT",
            TcpState::Closed | TcpState::Listen => "nothing",
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}
