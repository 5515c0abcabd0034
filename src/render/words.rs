//! Events in words, as a walkthrough of a capture would tell them.

use std::fmt::Write;

use crate::event::{Event, EventKind};
use crate::time::{Duration, TimeFormatter};

/// One sentence describing `ev` (without the states, which the timeline adds), appended to
/// `s`: the timeline reuses one buffer for every line.
pub fn write_sentence(s: &mut String, ev: &Event, tf: &TimeFormatter, time_wait: Duration) {
    let who = ev.from.name();
    let peer = ev.from.peer().name();
    let _ = match &ev.kind {
        EventKind::MidStream => write!(
            s,
            "capture starts mid-connection (no SYN seen): roles inferred, both sides taken as ESTABLISHED"
        ),
        EventKind::PortReuse { previous } => write!(
            s,
            "new connection on the same 4-tuple as #{previous} (port reuse)"
        ),
        EventKind::Syn { isn } => write!(s, "{who} sends SYN (ISN {isn})"),
        EventKind::SynRetransmission {
            attempt,
            gap,
            since_first,
        } => write!(
            s,
            "{who} retransmits SYN (retry {attempt}, {gap} after the previous, {since_first} after the first)"
        ),
        EventKind::SynAck { isn } => write!(s, "{who} answers SYN-ACK (ISN {isn})"),
        EventKind::SynAckRetransmission {
            attempt,
            gap,
            since_first,
        } => write!(
            s,
            "{who} retransmits SYN-ACK (retry {attempt}, {gap} after the previous, {since_first} after the first)"
        ),
        EventKind::SimultaneousOpen => write!(
            s,
            "{who} sends its own SYN before receiving the {peer}'s: simultaneous open"
        ),
        EventKind::HandshakeComplete { rtt } => match rtt {
            Some(rtt) => write!(
                s,
                "{who} ACKs: handshake complete, RTT {rtt} at the capture point"
            ),
            None => write!(s, "{who} ACKs: handshake complete"),
        },
        EventKind::Fin {
            data_bytes,
            carries_peer_fin_ack,
            simultaneous,
        } => {
            let _ = write!(s, "{who} sends FIN");
            if *data_bytes > 0 {
                let _ = write!(s, " with its last {data_bytes} bytes of data");
            }
            if *simultaneous {
                write!(s, " before receiving the {peer}'s FIN: simultaneous close")
            } else if *carries_peer_fin_ack {
                write!(
                    s,
                    ", acknowledging the {peer}'s FIN in the same segment (three-segment close)"
                )
            } else {
                Ok(())
            }
        }
        EventKind::FinRetransmission {
            attempt,
            gap,
            ack_was_lost,
        } => {
            let _ = write!(
                s,
                "{who} retransmits FIN (retry {attempt}, {gap} after the previous)"
            );
            if *ack_was_lost {
                write!(s, ": the {peer}'s ACK of it never arrived")
            } else {
                Ok(())
            }
        }
        EventKind::FinAcked => write!(s, "{who} ACKs the {peer}'s FIN"),
        EventKind::HalfClose => write!(
            s,
            "{who} sends data after the {peer}'s FIN: half-close, the {peer} still receives"
        ),
        EventKind::DataRetransmission {
            rel_seq,
            len,
            kind,
            since_original,
        } => {
            let what = match *kind {
                "fast_retransmission" => "fast-retransmits",
                "spurious_retransmission" => "needlessly retransmits (already acknowledged)",
                _ => "retransmits",
            };
            let _ = write!(
                s,
                "{who} {what} data seq {rel_seq}:{} ({len} bytes)",
                rel_seq.wrapping_add(*len)
            );
            match since_original {
                Some(d) => write!(s, ", {d} after the oldest unacknowledged segment was sent"),
                None => Ok(()),
            }
        }
        EventKind::Reset {
            sender_state,
            receiver_state,
            cause,
        } => write!(
            s,
            "{who} sends RST in {sender_state} ({peer} in {receiver_state}): {}",
            cause.explain()
        ),
        EventKind::TimeWait { until, .. } => {
            let _ = write!(s, "{who} enters TIME_WAIT until ");
            tf.push_str(s, *until);
            write!(s, " ({time_wait})")
        }
        EventKind::TimeWaitReack { until } => {
            let _ = write!(
                s,
                "{who}, in TIME_WAIT, ACKs the retransmitted FIN again: TIME_WAIT restarts, until "
            );
            tf.push_str(s, *until);
            Ok(())
        }
        EventKind::TimeWaitExpired => write!(s, "{who}'s TIME_WAIT expires"),
        EventKind::TimeWaitEndedBySyn { new_conn } => write!(
            s,
            "a new SYN on this 4-tuple (#{new_conn}) ends the {who}'s TIME_WAIT early"
        ),
        EventKind::CloseComplete => write!(s, "close complete: both FINs acknowledged"),
        EventKind::Ignored { reason } => {
            write!(s, "{who} sends a segment the {peer} must drop: {reason}")
        }
        EventKind::IdleTimeout { idle } => write!(
            s,
            "silent for {idle}: forgotten (idle timeout); its states are as last seen"
        ),
        EventKind::Evicted { idle } => write!(
            s,
            "forgotten to make room (--max-connections), silent for {idle}; its states are as last seen"
        ),
        EventKind::StillOpen { state, for_ } => write!(
            s,
            "end of capture: {who} still in {state} for {for_} ({})",
            state.waiting_for()
        ),
    };
}
