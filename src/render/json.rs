//! `--format json`: JSON Lines. The field names are a contract (see README "JSON schema"):
//! fields may be added, never renamed.
//!
//! - `{"type":"event", ...}` as events happen;
//! - `{"type":"segment", ...}` per TCP segment with `--packets`;
//! - `{"type":"connection", ...}` when a connection is over (or at the end of the input);
//! - one final `{"type":"summary","schema":1, ...}`.
//!
//! Events, segments and connections are written with [`JsonBuf`] (no allocation per field);
//! the summary, written once, goes through serde_json.

use std::io::{self, Write};

use serde_json::{Map, Value, json};

use crate::decode::{Segment, Skip};
use crate::event::{Event, EventKind};
use crate::render::jsonw::JsonBuf;
use crate::render::{ConnHeader, Late, Renderer};
use crate::summary::{CLOSES, HANDSHAKES, Summary};
use crate::tcp::analysis::{DirAnalysis, Flags};
use crate::tcp::conn::{Connection, Observation, Side, TimeWait, TimeWaitEnd};
use crate::tcp::report;
use crate::time::Timestamp;

pub const SCHEMA: u32 = 1;

pub struct JsonRenderer<W: Write> {
    out: W,
    buf: JsonBuf,
}

impl<W: Write> JsonRenderer<W> {
    pub fn new(out: W) -> Self {
        JsonRenderer {
            out,
            buf: JsonBuf::default(),
        }
    }
}

fn ts(t: Timestamp) -> String {
    t.rfc3339().to_string()
}

fn states(j: &mut JsonBuf, k: &str, s: [crate::tcp::TcpState; 2]) {
    j.open(k)
        .plain("client", s[0].name())
        .plain("server", s[1].name())
        .close();
}

/// The fields particular to each kind of event.
fn event_fields(kind: &EventKind, j: &mut JsonBuf) {
    match kind {
        EventKind::PortReuse { previous } => {
            j.num("previous_conn", *previous);
        }
        EventKind::Syn { isn } | EventKind::SynAck { isn } => {
            j.num("isn", *isn);
        }
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
            j.num("attempt", *attempt)
                .secs("gap_s", *gap)
                .secs("since_first_s", *since_first);
        }
        EventKind::HandshakeComplete { rtt } => {
            j.opt_secs("rtt_s", *rtt);
        }
        EventKind::Fin {
            data_bytes,
            carries_peer_fin_ack,
            simultaneous,
        } => {
            j.num("data_bytes", *data_bytes)
                .bool("acks_peer_fin", *carries_peer_fin_ack)
                .bool("simultaneous", *simultaneous);
        }
        EventKind::FinRetransmission {
            attempt,
            gap,
            ack_was_lost,
        } => {
            j.num("attempt", *attempt)
                .secs("gap_s", *gap)
                .bool("ack_was_lost", *ack_was_lost);
        }
        EventKind::DataRetransmission {
            rel_seq,
            len,
            kind,
            since_original,
        } => {
            j.num("seq", *rel_seq)
                .num("len", *len)
                .str("retransmission_kind", kind)
                .opt_secs("since_original_s", *since_original);
        }
        EventKind::Reset {
            sender_state,
            receiver_state,
            cause,
        } => {
            j.plain("sender_state", sender_state.name())
                .plain("receiver_state", receiver_state.name())
                .plain("cause", cause.name());
        }
        EventKind::TimeWait { since, until } => {
            j.ts("since", *since).ts("until", *until);
        }
        EventKind::TimeWaitReack { until } => {
            j.ts("until", *until);
        }
        EventKind::TimeWaitEndedBySyn { new_conn } => {
            j.num("new_conn", *new_conn);
        }
        EventKind::StillOpen { state, for_ } => {
            j.plain("state_name", state.name()).secs("for_s", *for_);
        }
        EventKind::Ignored { reason } => {
            j.str("reason", reason);
        }
        EventKind::IdleTimeout { idle } | EventKind::Evicted { idle } => {
            j.secs("idle_s", *idle);
        }
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
fn direction_analysis(j: &mut JsonBuf, k: &str, a: &DirAnalysis) {
    j.open(k).open("counts");
    for ((_, name), n) in Flags::NAMES.iter().zip(a.counts) {
        j.num(name, n);
    }
    j.close()
        .open("rtt")
        .num("samples", a.rtt_count)
        .opt_secs("min_s", a.rtt_min)
        .opt_secs("median_s", a.rtt_median())
        .opt_secs("max_s", a.rtt_max)
        .close()
        .bool("window_scale_known", a.window_scale_known())
        .close();
}

fn time_wait_side(j: &mut JsonBuf, k: &str, t: Option<TimeWait>) {
    match t {
        None => {
            j.null(k);
        }
        Some(t) => {
            j.open(k)
                .ts("since", t.since)
                .ts("until", t.until)
                .plain(
                    "ended",
                    match t.ended {
                        Some(TimeWaitEnd::Expired) => "expired",
                        Some(TimeWaitEnd::NewSyn) => "new_syn",
                        Some(TimeWaitEnd::Reset) => "reset",
                        None => "running",
                    },
                )
                .close();
        }
    }
}

/// `"key":{"client":…,"server":…}`.
fn per_side(j: &mut JsonBuf, key: &str, client: impl Into<u64>, server: impl Into<u64>) {
    j.open(key)
        .num("client", client)
        .num("server", server)
        .close();
}

/// The `connection` object.
pub fn write_connection(j: &mut JsonBuf, c: &Connection) {
    let (cl, sv) = (c.endpoint(Side::Client), c.endpoint(Side::Server));
    let r = c.retransmissions();
    let tw = report::time_wait(c);
    j.begin();
    j.plain("type", "connection")
        .num("id", c.id)
        .addr("client", &c.client)
        .addr("server", &c.server)
        .plain("roles", report::roles_name(c.roles))
        .ts("first_ts", c.first_ts)
        .ts("last_ts", c.last_ts)
        .secs("duration_s", report::duration(c));
    j.open("handshake")
        .plain("status", report::handshake_status(c).name())
        .opt_secs("rtt_s", c.handshake_rtt)
        .opt_secs("syn_to_synack_s", c.handshake_halves.map(|h| h.0))
        .opt_secs("synack_to_ack_s", c.handshake_halves.map(|h| h.1))
        .num("syn_retransmissions", r.syn)
        .num("synack_retransmissions", r.syn_ack)
        .bool("simultaneous_open", c.simultaneous_open)
        .close();
    j.open("close")
        .plain("kind", report::close(c).name())
        .opt_plain("first_fin", report::first_fin(c))
        .bool("half_close", c.half_close)
        .num("fin_retransmissions", r.fin)
        .bool("complete", c.close_complete)
        .close();
    match c.reset {
        None => {
            j.null("reset");
        }
        Some(x) => {
            j.open("reset")
                .plain("by", x.by.name())
                .ts("ts", x.ts)
                .plain("sender_state", x.sender_state.name())
                .plain("receiver_state", x.receiver_state.name())
                .plain("cause", x.cause.name())
                .close();
        }
    }
    j.open("time_wait")
        .opt_plain("side", tw.side)
        .opt_ts("since", tw.since)
        .opt_ts("until", tw.until);
    time_wait_side(j, "client", cl.time_wait);
    time_wait_side(j, "server", sv.time_wait);
    j.close();
    states(j, "final_state", c.states());
    j.bool("port_reuse", c.reused_from.is_some())
        .opt_num("reused_from", c.reused_from);
    per_side(j, "packets", cl.packets, sv.packets);
    per_side(j, "payload_bytes", cl.payload_bytes, sv.payload_bytes);
    j.open("retransmissions")
        .num("total", r.total())
        .num("syn", r.syn)
        .num("syn_ack", r.syn_ack)
        .num("data", r.data)
        .num("fin", r.fin)
        .close();
    per_side(j, "keepalives", cl.keepalives, sv.keepalives);
    j.open("zeek")
        .plain("conn_state", c.zeek.conn_state())
        .plain("history", c.zeek.history())
        .plain("orig", c.zeek.orig.name())
        .close();
    j.open("analysis");
    direction_analysis(j, "client", &cl.analysis);
    direction_analysis(j, "server", &sv.analysis);
    j.opt_secs("irtt_s", c.irtt).close();
    per_side(j, "rsts", cl.rsts, sv.rsts);
    j.plain("end", c.end_reason.name());
}

/// The `connection` object as a serde_json value (for tests and tools that want one).
pub fn connection_value(c: &Connection) -> Value {
    let mut j = JsonBuf::default();
    write_connection(&mut j, c);
    serde_json::from_slice(j.finish()).expect("the writer writes JSON")
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
        "late_segments": s.late_segments,
        "idle_expired": s.idle_expired,
        "evicted": s.evicted,
        "peak_connections": s.peak_connections,
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
        "fail_on": s.failures.iter().map(|f| json!({
            "conn": f.id, "client": f.client, "server": f.server, "matched": f.kinds,
        })).collect::<Vec<_>>(),
    })
}

impl<W: Write> Renderer for JsonRenderer<W> {
    fn event_needs_connection(&self) -> bool {
        false
    }

    fn segment(&mut self, seg: &Segment, c: &Connection, obs: &Observation) -> io::Result<()> {
        let from = c.endpoint(obs.from);
        let to = c.endpoint(obs.from.peer());
        let a = &obs.analysis;
        let j = &mut self.buf;
        j.begin();
        j.plain("type", "segment")
            .num("frame", seg.frame)
            .ts("ts", seg.ts)
            .num("conn", c.id)
            .plain("from", obs.from.name())
            .str("flags", seg.flags.tcpdump())
            .num("seq", from.rel(seg.seq))
            .num("ack", if seg.flags.ack() { to.rel(seg.ack) } else { 0 })
            .num("len", seg.payload_len)
            .num("win", seg.window)
            .opt_num(
                "win_bytes",
                from.analysis
                    .window_bytes(seg.window, seg.flags.syn())
                    .map(u64::from),
            )
            .str_array(
                "analysis",
                a.flags
                    .names()
                    .chain(obs.ignored.is_some().then_some("ignored")),
            );
        if let Some((num, frame)) = a.dup_ack {
            j.open("dup_ack")
                .num("num", num)
                .num("frame", frame)
                .close();
        }
        if let Some(d) = a.since_original {
            j.secs("rto_s", d);
        }
        if let Some(d) = a.ack_rtt {
            j.secs("ack_rtt_s", d);
        }
        states(j, "state", c.states());
        self.out.write_all(j.finish())
    }

    fn event(&mut self, ev: &Event, _c: Option<&ConnHeader>) -> io::Result<()> {
        let j = &mut self.buf;
        j.begin();
        j.plain("type", "event")
            .ts("ts", ev.ts)
            .num("conn", ev.conn)
            .plain("kind", ev.kind.name())
            .plain("from", ev.from.name());
        event_fields(&ev.kind, j);
        states(j, "state", ev.states);
        self.out.write_all(j.finish())
    }

    fn late_segment(&mut self, seg: &Segment, late: &Late) -> io::Result<()> {
        let j = &mut self.buf;
        j.begin();
        j.plain("type", "segment")
            .num("frame", seg.frame)
            .ts("ts", seg.ts)
            .num("conn", late.conn)
            .plain("from", late.from.name())
            .str("flags", seg.flags.tcpdump())
            .num("seq", late.rel_seq)
            .num("ack", if seg.flags.ack() { late.rel_ack } else { 0 })
            .num("len", seg.payload_len)
            .num("win", seg.window)
            .str_array("analysis", ["late"].into_iter());
        self.out.write_all(j.finish())
    }

    fn connection(&mut self, c: &Connection) -> io::Result<()> {
        write_connection(&mut self.buf, c);
        self.out.write_all(self.buf.finish())
    }

    fn finish(&mut self, s: &Summary) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &summary_value(s))?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
