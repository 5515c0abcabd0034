//! `--format json`: JSON Lines. The field names are a contract (see README "JSON schema"):
//! fields may be added, never renamed.
//!
//! - `{"type":"event", ...}` as events happen;
//! - `{"type":"segment", ...}` per TCP segment with `--packets`;
//! - `{"type":"connection", ...}` when a connection is over (or at the end of the input);
//! - one final `{"type":"summary","schema":1, ...}`.

use std::io::{self, Write};

use serde_json::{Map, Value, json};

use crate::decode::{Segment, Skip};
use crate::event::{Event, EventKind};
use crate::render::Renderer;
use crate::summary::{CLOSES, HANDSHAKES, Summary};
use crate::tcp::analysis::{DirAnalysis, Flags};
use crate::tcp::conn::{Connection, Observation, Side, TimeWaitEnd};
use crate::tcp::report;
use crate::time::Timestamp;

pub const SCHEMA: u32 = 1;

pub struct JsonRenderer<W: Write> {
    out: W,
}

impl<W: Write> JsonRenderer<W> {
    pub fn new(out: W) -> Self {
        JsonRenderer { out }
    }

    fn line(&mut self, v: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")
    }
}

fn ts(t: Timestamp) -> String {
    t.rfc3339().to_string()
}

fn secs(d: crate::time::Duration) -> f64 {
    d.as_secs_f64()
}

fn states(s: [crate::tcp::TcpState; 2]) -> Value {
    json!({"client": s[0].name(), "server": s[1].name()})
}

/// The fields particular to each kind of event.
fn event_fields(kind: &EventKind, m: &mut Map<String, Value>) {
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    match kind {
        EventKind::PortReuse { previous } => put("previous_conn", json!(previous)),
        EventKind::Syn { isn } | EventKind::SynAck { isn } => put("isn", json!(isn)),
        EventKind::SynRetransmission {
            attempt,
            gap,
            since_first,
        }
        | EventKind::SynAckRetransmission {
            attempt,
            gap,
            since_first,
        } => {
            put("attempt", json!(attempt));
            put("gap_s", json!(secs(*gap)));
            put("since_first_s", json!(secs(*since_first)));
        }
        EventKind::HandshakeComplete { rtt } => put("rtt_s", json!(rtt.map(secs))),
        EventKind::Fin {
            data_bytes,
            carries_peer_fin_ack,
            simultaneous,
        } => {
            put("data_bytes", json!(data_bytes));
            put("acks_peer_fin", json!(carries_peer_fin_ack));
            put("simultaneous", json!(simultaneous));
        }
        EventKind::FinRetransmission {
            attempt,
            gap,
            ack_was_lost,
        } => {
            put("attempt", json!(attempt));
            put("gap_s", json!(secs(*gap)));
            put("ack_was_lost", json!(ack_was_lost));
        }
        EventKind::DataRetransmission {
            rel_seq,
            len,
            kind,
            since_original,
        } => {
            put("seq", json!(rel_seq));
            put("len", json!(len));
            put("retransmission_kind", json!(kind));
            put("since_original_s", json!(since_original.map(secs)));
        }
        EventKind::Reset {
            sender_state,
            receiver_state,
            cause,
        } => {
            put("sender_state", json!(sender_state.name()));
            put("receiver_state", json!(receiver_state.name()));
            put("cause", json!(cause.name()));
        }
        EventKind::TimeWait { since, until } => {
            put("since", json!(ts(*since)));
            put("until", json!(ts(*until)));
        }
        EventKind::TimeWaitReack { until } => put("until", json!(ts(*until))),
        EventKind::TimeWaitEndedBySyn { new_conn } => put("new_conn", json!(new_conn)),
        EventKind::StillOpen { state, for_ } => {
            put("state_name", json!(state.name()));
            put("for_s", json!(secs(*for_)));
        }
        EventKind::Ignored { reason } => put("reason", json!(reason)),
        EventKind::MidStream
        | EventKind::SimultaneousOpen
        | EventKind::FinAcked
        | EventKind::HalfClose
        | EventKind::TimeWaitExpired
        | EventKind::CloseComplete => {}
    }
}

/// Per-direction analysis: how many segments carried each flag, the round-trip samples
/// (data → its ACK, Karn's rule), and whether the window scale is known (a SYN was seen).
fn direction_analysis(a: &DirAnalysis) -> Value {
    let counts: Map<String, Value> = Flags::NAMES
        .iter()
        .zip(a.counts)
        .map(|((_, name), n)| (name.to_string(), json!(n)))
        .collect();
    json!({
        "counts": counts,
        "rtt": {
            "samples": a.rtt_count,
            "min_s": a.rtt_min.map(secs),
            "median_s": a.rtt_median().map(secs),
            "max_s": a.rtt_max.map(secs),
        },
        "window_scale_known": a.window_scale_known(),
    })
}

/// The `connection` object.
pub fn connection_value(c: &Connection) -> Value {
    let (cl, sv) = (c.endpoint(Side::Client), c.endpoint(Side::Server));
    let r = c.retransmissions();
    let tw = report::time_wait(c);
    let tw_side = |s: Side| {
        c.endpoint(s).time_wait.map(|t| {
            json!({
                "since": ts(t.since),
                "until": ts(t.until),
                "ended": match t.ended {
                    Some(TimeWaitEnd::Expired) => "expired",
                    Some(TimeWaitEnd::NewSyn) => "new_syn",
                    Some(TimeWaitEnd::Reset) => "reset",
                    None => "running",
                },
            })
        })
    };
    json!({
        "type": "connection",
        "id": c.id,
        "client": c.client.to_string(),
        "server": c.server.to_string(),
        "roles": report::roles_name(c.roles),
        "first_ts": ts(c.first_ts),
        "last_ts": ts(c.last_ts),
        "duration_s": secs(report::duration(c)),
        "handshake": {
            "status": report::handshake_status(c).name(),
            "rtt_s": c.handshake_rtt.map(secs),
            "syn_to_synack_s": c.handshake_halves.map(|h| secs(h.0)),
            "synack_to_ack_s": c.handshake_halves.map(|h| secs(h.1)),
            "syn_retransmissions": r.syn,
            "synack_retransmissions": r.syn_ack,
            "simultaneous_open": c.simultaneous_open,
        },
        "close": {
            "kind": report::close(c).name(),
            "first_fin": report::first_fin(c),
            "half_close": c.half_close,
            "fin_retransmissions": r.fin,
            "complete": c.close_complete,
        },
        "reset": c.reset.map(|x| json!({
            "by": x.by.name(),
            "ts": ts(x.ts),
            "sender_state": x.sender_state.name(),
            "receiver_state": x.receiver_state.name(),
            "cause": x.cause.name(),
        })),
        "time_wait": {
            "side": tw.side,
            "since": tw.since.map(ts),
            "until": tw.until.map(ts),
            "client": tw_side(Side::Client),
            "server": tw_side(Side::Server),
        },
        "final_state": states(c.states()),
        "port_reuse": c.reused_from.is_some(),
        "reused_from": c.reused_from,
        "packets": {"client": cl.packets, "server": sv.packets},
        "payload_bytes": {"client": cl.payload_bytes, "server": sv.payload_bytes},
        "retransmissions": {
            "total": r.total(), "syn": r.syn, "syn_ack": r.syn_ack, "data": r.data, "fin": r.fin,
        },
        "keepalives": {"client": cl.keepalives, "server": sv.keepalives},
        "zeek": {
            "conn_state": c.zeek.conn_state(),
            "history": c.zeek.history(),
            "orig": c.zeek.orig.name(),
        },
        "analysis": {
            "client": direction_analysis(&cl.analysis),
            "server": direction_analysis(&sv.analysis),
            "irtt_s": c.irtt.map(secs),
        },
        "rsts": {"client": cl.rsts, "server": sv.rsts},
    })
}

pub fn summary_value(s: &Summary) -> Value {
    let skipped: Map<String, Value> = Skip::ALL
        .iter()
        .map(|k| (k.name().to_string(), json!(s.skipped[k.index()])))
        .collect();
    let handshakes: Map<String, Value> = HANDSHAKES
        .iter()
        .zip(s.handshakes)
        .map(|(h, n)| (h.name().to_string(), json!(n)))
        .collect();
    let closes: Map<String, Value> = CLOSES
        .iter()
        .zip(s.closes)
        .map(|(c, n)| (c.name().to_string(), json!(n)))
        .collect();
    json!({
        "type": "summary",
        "schema": SCHEMA,
        "packets": s.packets,
        "filtered_out": s.filtered_out,
        "tcp_segments": s.tcp_segments,
        "undecodable": s.undecodable(),
        "skipped": skipped,
        "connections": s.connections,
        "handshakes": handshakes,
        "closes": closes,
        "resets": s.resets,
        "retransmissions": s.retransmissions,
        "port_reuses": s.port_reuses,
        "analysis": Flags::NAMES
            .iter()
            .zip(s.analysis)
            .map(|((_, name), n)| (name.to_string(), json!(n)))
            .collect::<Map<String, Value>>(),
        "first_ts": s.first_ts.map(ts),
        "last_ts": s.last_ts.map(ts),
        "live": s.live.map(|l| json!({
            "received": l.received, "dropped": l.dropped, "if_dropped": l.if_dropped,
        })),
        "error": s.read_error,
        "fail_on": s.failures.iter().map(|(id, c, sv, kinds)| json!({
            "conn": id, "client": c, "server": sv, "matched": kinds,
        })).collect::<Vec<_>>(),
    })
}

impl<W: Write> Renderer for JsonRenderer<W> {
    fn segment(&mut self, seg: &Segment, c: &Connection, obs: &Observation) -> io::Result<()> {
        let from = c.endpoint(obs.from);
        let to = c.endpoint(obs.from.peer());
        let a = &obs.analysis;
        let mut analysis: Vec<&str> = a.flags.names().collect();
        if obs.ignored.is_some() {
            analysis.push("ignored");
        }
        let mut m = Map::new();
        m.insert("type".into(), json!("segment"));
        m.insert("frame".into(), json!(seg.frame));
        m.insert("ts".into(), json!(ts(seg.ts)));
        m.insert("conn".into(), json!(c.id));
        m.insert("from".into(), json!(obs.from.name()));
        m.insert("flags".into(), json!(seg.flags.to_letters()));
        m.insert("seq".into(), json!(from.rel(seg.seq)));
        m.insert(
            "ack".into(),
            json!(if seg.flags.ack() { to.rel(seg.ack) } else { 0 }),
        );
        m.insert("len".into(), json!(seg.payload_len));
        m.insert("win".into(), json!(seg.window));
        m.insert("analysis".into(), json!(analysis));
        if let Some((num, frame)) = a.dup_ack {
            m.insert("dup_ack".into(), json!({"num": num, "frame": frame}));
        }
        if let Some(d) = a.since_original {
            m.insert("rto_s".into(), json!(secs(d)));
        }
        if let Some(d) = a.ack_rtt {
            m.insert("ack_rtt_s".into(), json!(secs(d)));
        }
        m.insert("state".into(), states(c.states()));
        self.line(&Value::Object(m))
    }

    fn event(&mut self, ev: &Event, _c: &Connection) -> io::Result<()> {
        let mut m = Map::new();
        m.insert("type".into(), json!("event"));
        m.insert("ts".into(), json!(ts(ev.ts)));
        m.insert("conn".into(), json!(ev.conn));
        m.insert("kind".into(), json!(ev.kind.name()));
        m.insert("from".into(), json!(ev.from.name()));
        event_fields(&ev.kind, &mut m);
        m.insert("state".into(), states(ev.states));
        self.line(&Value::Object(m))
    }

    fn connection(&mut self, c: &Connection) -> io::Result<()> {
        self.line(&connection_value(c))
    }

    fn finish(&mut self, s: &Summary) -> io::Result<()> {
        self.line(&summary_value(s))?;
        self.out.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
