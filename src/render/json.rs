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
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use crate::decode::{Segment, Skip};
use crate::event::{Event, EventKind};
use crate::render::jsonw::{JsonBuf, Key, k};
use crate::render::{ConnHeader, Late, Renderer};
use crate::summary::{CLOSES, HANDSHAKES, Summary};
use crate::tcp::TcpState;
use crate::tcp::analysis::{DirAnalysis, Flags};
use crate::tcp::conn::{Connection, Observation, Side, TimeWait, TimeWaitEnd};
use crate::tcp::report;
use crate::time::Timestamp;

pub const SCHEMA: u32 = 1;

pub struct JsonRenderer<W: Write> {
    out: W,
    /// Lines not yet handed to `out`: they go in chunks of [`CHUNK`] bytes, which a
    /// `BufWriter` of that capacity passes straight through instead of copying each line
    /// (a large capture's JSON is hundreds of megabytes).
    buf: JsonBuf,
}

/// Lines are handed to the writer once they fill this many bytes (the capacity of the
/// `BufWriter` that `read` and `live` give the renderer).
const CHUNK: usize = 1 << 16;

impl<W: Write> JsonRenderer<W> {
    pub fn new(out: W) -> Self {
        JsonRenderer {
            out,
            buf: JsonBuf::default(),
        }
    }

    /// Ends the line being written, and hands the lines over once they fill a chunk.
    fn end_line(&mut self) -> io::Result<()> {
        if self.buf.finish().len() >= CHUNK {
            self.write_lines()?;
        }
        Ok(())
    }

    fn write_lines(&mut self) -> io::Result<()> {
        let written = self.out.write_all(self.buf.lines());
        self.buf.clear();
        written
    }
}

fn ts(t: Timestamp) -> String {
    t.rfc3339().to_string()
}

#[inline(always)]
fn states(j: &mut JsonBuf, k: Key, s: [TcpState; 2]) {
    j.formatted(k, &STATE_PAIRS[s[0] as usize][s[1] as usize]);
}

/// `{"client":…,"server":…}` for every pair of states, formatted once: every event and
/// every connection object has one.
static STATE_PAIRS: LazyLock<Vec<Vec<Vec<u8>>>> = LazyLock::new(|| {
    (TcpState::ALL.iter())
        .map(|client| {
            (TcpState::ALL.iter())
                .map(|server| {
                    JsonBuf::object(|j| {
                        j.plain(k!("client"), client.name())
                            .plain(k!("server"), server.name());
                    })
                })
                .collect()
        })
        .collect()
});

/// The fields particular to each kind of event.
fn event_fields(kind: &EventKind, j: &mut JsonBuf) {
    match kind {
        EventKind::PortReuse { previous } => {
            j.num(k!("previous_conn"), *previous);
        }
        EventKind::Syn { isn } | EventKind::SynAck { isn } => {
            j.num(k!("isn"), *isn);
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
            j.num(k!("attempt"), *attempt)
                .secs(k!("gap_s"), *gap)
                .secs(k!("since_first_s"), *since_first);
        }
        EventKind::HandshakeComplete { rtt } => {
            j.opt_secs(k!("rtt_s"), *rtt);
        }
        EventKind::Fin {
            data_bytes,
            carries_peer_fin_ack,
            simultaneous,
        } => {
            j.num(k!("data_bytes"), *data_bytes)
                .bool(k!("acks_peer_fin"), *carries_peer_fin_ack)
                .bool(k!("simultaneous"), *simultaneous);
        }
        EventKind::FinRetransmission {
            attempt,
            gap,
            ack_was_lost,
        } => {
            j.num(k!("attempt"), *attempt)
                .secs(k!("gap_s"), *gap)
                .bool(k!("ack_was_lost"), *ack_was_lost);
        }
        EventKind::DataRetransmission {
            rel_seq,
            len,
            kind,
            since_original,
        } => {
            j.num(k!("seq"), *rel_seq)
                .num(k!("len"), *len)
                .str(k!("retransmission_kind"), kind)
                .opt_secs(k!("since_original_s"), *since_original);
        }
        EventKind::Reset {
            sender_state,
            receiver_state,
            cause,
        } => {
            j.plain(k!("sender_state"), sender_state.name())
                .plain(k!("receiver_state"), receiver_state.name())
                .plain(k!("cause"), cause.name());
        }
        EventKind::TimeWait { since, until } => {
            j.ts(k!("since"), *since).ts(k!("until"), *until);
        }
        EventKind::TimeWaitReack { until } => {
            j.ts(k!("until"), *until);
        }
        EventKind::TimeWaitEndedBySyn { new_conn } => {
            j.num(k!("new_conn"), *new_conn);
        }
        EventKind::StillOpen { state, for_ } => {
            j.plain(k!("state_name"), state.name())
                .secs(k!("for_s"), *for_);
        }
        EventKind::Ignored { reason } => {
            j.str(k!("reason"), reason);
        }
        EventKind::IdleTimeout { idle } | EventKind::Evicted { idle } => {
            j.secs(k!("idle_s"), *idle);
        }
        EventKind::MidStream
        | EventKind::SimultaneousOpen
        | EventKind::FinAcked
        | EventKind::HalfClose
        | EventKind::TimeWaitExpired
        | EventKind::CloseComplete => {}
    }
}

/// The member names of the analysis counts, in the order of `Flags::NAMES` (a test holds
/// them to it).
const COUNT_KEYS: [Key; 16] = [
    k!("retransmission"),
    k!("fast_retransmission"),
    k!("spurious_retransmission"),
    k!("out_of_order"),
    k!("lost_segment"),
    k!("ack_lost_segment"),
    k!("duplicate_ack"),
    k!("zero_window"),
    k!("zero_window_probe"),
    k!("zero_window_probe_ack"),
    k!("window_full"),
    k!("window_update"),
    k!("keep_alive"),
    k!("keep_alive_ack"),
    k!("reused_ports"),
    k!("time_wait_reack"),
];

/// The members of `"counts"`: how many segments of a direction carried each flag.
fn count_members(j: &mut JsonBuf, counts: &[u32; 16]) {
    for (key, n) in COUNT_KEYS.into_iter().zip(*counts) {
        j.num(key, n);
    }
}

/// The counts of a direction where no segment carried a flag, as most directions are: 16
/// members that every connection object writes twice, formatted once and then copied.
static ZERO_COUNTS: LazyLock<Vec<u8>> =
    LazyLock::new(|| JsonBuf::object(|j| count_members(j, &[0; 16])));

/// Per-direction analysis: how many segments carried each flag, the round-trip samples
/// (data → its ACK, Karn's rule), and whether the window scale is known (a SYN was seen).
fn direction_analysis(j: &mut JsonBuf, k: Key, a: &DirAnalysis) {
    j.open(k);
    if a.counts.iter().all(|&n| n == 0) {
        j.formatted(k!("counts"), &ZERO_COUNTS);
    } else {
        j.open(k!("counts"));
        count_members(j, &a.counts);
        j.close();
    }
    j.open(k!("rtt"))
        .num(k!("samples"), a.rtt_count)
        .opt_secs(k!("min_s"), a.rtt_min)
        .opt_secs(k!("median_s"), a.rtt_median())
        .opt_secs(k!("max_s"), a.rtt_max)
        .close()
        .bool(k!("window_scale_known"), a.window_scale_known())
        .close();
}

fn time_wait_side(j: &mut JsonBuf, k: Key, t: Option<TimeWait>) {
    match t {
        None => {
            j.null(k);
        }
        Some(t) => {
            j.open(k)
                .ts(k!("since"), t.since)
                .ts(k!("until"), t.until)
                .plain(
                    k!("ended"),
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
#[inline(always)]
fn per_side(j: &mut JsonBuf, key: Key, client: impl Into<u64>, server: impl Into<u64>) {
    j.open(key)
        .num(k!("client"), client)
        .num(k!("server"), server)
        .close();
}

/// The `connection` object.
pub fn write_connection(j: &mut JsonBuf, c: &Connection) {
    let (cl, sv) = (c.endpoint(Side::Client), c.endpoint(Side::Server));
    let r = c.retransmissions();
    let tw = report::time_wait(c);
    j.begin();
    j.plain(k!("type"), "connection")
        .num(k!("id"), c.id)
        .addr(k!("client"), &c.client)
        .addr(k!("server"), &c.server)
        .plain(k!("roles"), report::roles_name(c.roles))
        .ts(k!("first_ts"), c.first_ts)
        .ts(k!("last_ts"), c.last_ts)
        .secs(k!("duration_s"), report::duration(c));
    j.open(k!("handshake"))
        .plain(k!("status"), report::handshake_status(c).name())
        .opt_secs(k!("rtt_s"), c.handshake_rtt)
        .opt_secs(k!("syn_to_synack_s"), c.handshake_halves.map(|h| h.0))
        .opt_secs(k!("synack_to_ack_s"), c.handshake_halves.map(|h| h.1))
        .num(k!("syn_retransmissions"), r.syn)
        .num(k!("synack_retransmissions"), r.syn_ack)
        .bool(k!("simultaneous_open"), c.simultaneous_open)
        .close();
    j.open(k!("close"))
        .plain(k!("kind"), report::close(c).name())
        .opt_plain(k!("first_fin"), report::first_fin(c))
        .bool(k!("half_close"), c.half_close)
        .num(k!("fin_retransmissions"), r.fin)
        .bool(k!("complete"), c.close_complete)
        .close();
    match c.reset {
        None => {
            j.null(k!("reset"));
        }
        Some(x) => {
            j.open(k!("reset"))
                .plain(k!("by"), x.by.name())
                .ts(k!("ts"), x.ts)
                .plain(k!("sender_state"), x.sender_state.name())
                .plain(k!("receiver_state"), x.receiver_state.name())
                .plain(k!("cause"), x.cause.name())
                .close();
        }
    }
    j.open(k!("time_wait"))
        .opt_plain(k!("side"), tw.side)
        .opt_ts(k!("since"), tw.since)
        .opt_ts(k!("until"), tw.until);
    time_wait_side(j, k!("client"), cl.time_wait);
    time_wait_side(j, k!("server"), sv.time_wait);
    j.close();
    states(j, k!("final_state"), c.states());
    j.bool(k!("port_reuse"), c.reused_from.is_some())
        .opt_num(k!("reused_from"), c.reused_from);
    per_side(j, k!("packets"), cl.packets, sv.packets);
    per_side(j, k!("payload_bytes"), cl.payload_bytes, sv.payload_bytes);
    j.open(k!("retransmissions"))
        .num(k!("total"), r.total())
        .num(k!("syn"), r.syn)
        .num(k!("syn_ack"), r.syn_ack)
        .num(k!("data"), r.data)
        .num(k!("fin"), r.fin)
        .close();
    per_side(j, k!("keepalives"), cl.keepalives, sv.keepalives);
    match &c.zeek {
        Some(z) => {
            j.open(k!("zeek"))
                .plain(k!("conn_state"), z.conn_state())
                .plain(k!("history"), z.history())
                .plain(k!("orig"), z.orig.name())
                .close();
        }
        None => {
            j.null(k!("zeek"));
        }
    }
    j.open(k!("analysis"));
    direction_analysis(j, k!("client"), &cl.analysis);
    direction_analysis(j, k!("server"), &sv.analysis);
    j.opt_secs(k!("irtt_s"), c.irtt).close();
    per_side(j, k!("rsts"), cl.rsts, sv.rsts);
    j.plain(k!("end"), c.end_reason.name());
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
        j.plain(k!("type"), "segment")
            .num(k!("frame"), seg.frame)
            .ts(k!("ts"), seg.ts)
            .num(k!("conn"), c.id)
            .plain(k!("from"), obs.from.name())
            .str(k!("flags"), seg.flags.tcpdump())
            .num(k!("seq"), from.rel(seg.seq))
            .num(k!("ack"), if seg.flags.ack() { to.rel(seg.ack) } else { 0 })
            .num(k!("len"), seg.payload_len)
            .num(k!("win"), seg.window)
            .opt_num(
                k!("win_bytes"),
                from.analysis
                    .window_bytes(seg.window, seg.flags.syn())
                    .map(u64::from),
            )
            .str_array(
                k!("analysis"),
                a.flags
                    .names()
                    .chain(obs.ignored.is_some().then_some("ignored")),
            );
        if let Some((num, frame)) = a.dup_ack {
            j.open(k!("dup_ack"))
                .num(k!("num"), num)
                .num(k!("frame"), frame)
                .close();
        }
        if let Some(d) = a.since_original {
            j.secs(k!("rto_s"), d);
        }
        if let Some(d) = a.ack_rtt {
            j.secs(k!("ack_rtt_s"), d);
        }
        states(j, k!("state"), c.states());
        self.end_line()
    }

    fn event(&mut self, ev: &Event, _c: Option<&ConnHeader>) -> io::Result<()> {
        let j = &mut self.buf;
        j.begin();
        j.plain(k!("type"), "event")
            .ts(k!("ts"), ev.ts)
            .num(k!("conn"), ev.conn)
            .plain(k!("kind"), ev.kind.name())
            .plain(k!("from"), ev.from.name());
        event_fields(&ev.kind, j);
        states(j, k!("state"), ev.states);
        self.end_line()
    }

    fn late_segment(&mut self, seg: &Segment, late: &Late) -> io::Result<()> {
        let j = &mut self.buf;
        j.begin();
        j.plain(k!("type"), "segment")
            .num(k!("frame"), seg.frame)
            .ts(k!("ts"), seg.ts)
            .num(k!("conn"), late.conn)
            .plain(k!("from"), late.from.name())
            .str(k!("flags"), seg.flags.tcpdump())
            .num(k!("seq"), late.rel_seq)
            .num(k!("ack"), if seg.flags.ack() { late.rel_ack } else { 0 })
            .num(k!("len"), seg.payload_len)
            .num(k!("win"), seg.window)
            .str_array(k!("analysis"), ["late"].into_iter());
        self.end_line()
    }

    fn connection(&mut self, c: &Connection) -> io::Result<()> {
        write_connection(&mut self.buf, c);
        self.end_line()
    }

    fn finish(&mut self, s: &Summary) -> io::Result<()> {
        self.write_lines()?;
        serde_json::to_writer(&mut self.out, &summary_value(s))?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_lines()?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the size of every write it is given.
    #[derive(Default)]
    struct Writes {
        bytes: Vec<u8>,
        sizes: Vec<usize>,
        flushes: usize,
    }

    impl Write for &mut Writes {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.bytes.extend_from_slice(b);
            self.sizes.push(b.len());
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }

    /// Lines reach the writer in chunks of at least [`CHUNK`] bytes (what lets a `BufWriter`
    /// pass them through without a copy), in order and whole, and the rest on `flush`.
    #[test]
    fn lines_go_out_in_chunks_and_the_rest_on_flush() {
        let mut writes = Writes::default();
        let mut expected = Vec::new();
        {
            let mut r = JsonRenderer::new(&mut writes);
            for n in 0..3_000u64 {
                let ev = Event {
                    ts: Timestamp::from_secs_nanos(1_767_225_600 + n / 7, n * 1_000),
                    conn: n,
                    from: Side::Client,
                    kind: EventKind::Syn { isn: n as u32 },
                    states: [TcpState::SynSent, TcpState::Listen],
                };
                r.event(&ev, None).unwrap();
                let mut one = JsonRenderer::new(Vec::new());
                one.event(&ev, None).unwrap();
                one.flush().unwrap();
                expected.extend_from_slice(&one.out);
            }
            r.flush().unwrap();
        }
        assert_eq!(writes.bytes, expected);
        let (last, chunks) = writes.sizes.split_last().unwrap();
        assert!(!chunks.is_empty() && chunks.iter().all(|&n| n >= CHUNK));
        assert!(
            *last > 0 && *last < CHUNK + 1024,
            "the rest, on flush: {last}"
        );
        assert_eq!(writes.flushes, 1);
    }

    #[test]
    fn count_keys_name_the_flags_in_order() {
        for (key, (_, name)) in COUNT_KEYS.iter().zip(Flags::NAMES) {
            assert_eq!(key.member(), format!("\"{name}\":"));
        }
    }

    /// The values formatted once are what writing them each time gives, also after another
    /// member (where a comma must come first).
    #[test]
    fn values_formatted_once_are_the_values_written() {
        let written = |f: &dyn Fn(&mut JsonBuf)| {
            let mut j = JsonBuf::default();
            j.begin();
            j.num(k!("before"), 1u8);
            f(&mut j);
            String::from_utf8(j.finish().to_vec()).unwrap()
        };
        let zero_counts = format!(
            "{{\"before\":1,\"counts\":{{{}}}}}\n",
            (COUNT_KEYS.iter().map(|k| format!("{}0", k.member())))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(
            written(&|j| {
                j.formatted(k!("counts"), &ZERO_COUNTS);
            }),
            zero_counts
        );
        for client in TcpState::ALL {
            for server in TcpState::ALL {
                let by_hand = format!(
                    "{{\"before\":1,\"state\":{{\"client\":\"{}\",\"server\":\"{}\"}}}}\n",
                    client.name(),
                    server.name()
                );
                assert_eq!(
                    written(&|j| states(j, k!("state"), [client, server])),
                    by_hand
                );
            }
        }
    }
}
