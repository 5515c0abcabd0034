//! The connection table (comfy-table) and the text summary, shared by the `text` and `table`
//! formats. A row is built when its connection is over, so only the row's strings are kept.

use std::io::{self, Write};

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};

use crate::decode::Skip;
use crate::render::Renderer;
use crate::summary::{CLOSES, HANDSHAKES, Summary};
use crate::tcp::analysis::Flags;
use crate::tcp::conn::{Connection, Side, TimeWaitEnd};
use crate::tcp::report::{self, HandshakeStatus};
use crate::time::TimeFormatter;

const HEADER: [&str; 15] = [
    "#",
    "client",
    "server",
    "start",
    "duration",
    "handshake",
    "close",
    "first FIN",
    "TIME_WAIT",
    "RST",
    "retrans",
    "packets c/s",
    "bytes c/s",
    "final states c/s",
    "analysis",
];

/// Collects one row per connection and prints the table and summary at the end.
pub struct ConnTable {
    rows: Vec<(u64, [String; 15])>,
    tf: TimeFormatter,
    /// Fit the table to the terminal's width (only when writing to a terminal).
    pub fit_terminal: bool,
}

impl ConnTable {
    pub fn new(tf: TimeFormatter) -> ConnTable {
        ConnTable {
            rows: Vec::new(),
            tf,
            fit_terminal: false,
        }
    }

    pub fn set_origin(&mut self, first: crate::time::Timestamp) {
        self.tf.origin = Some(first);
    }

    pub fn add(&mut self, c: &Connection) {
        let hs = report::handshake_status(c);
        let handshake = match (hs, c.handshake_rtt) {
            (HandshakeStatus::Complete, Some(rtt)) => format!("complete {rtt}"),
            _ if c.simultaneous_open => format!("{} (simultaneous)", hs.name()),
            _ => hs.name().to_string(),
        };
        let tw = report::time_wait(c);
        let time_wait = match (tw.side, tw.until) {
            (Some(side), Some(until)) => {
                let how = match tw.ended {
                    Some(TimeWaitEnd::Expired) => "expired",
                    Some(TimeWaitEnd::NewSyn) => "ended by SYN",
                    Some(TimeWaitEnd::Reset) => "ended by RST",
                    None => "until",
                };
                format!("{side}, {how} {}", self.tf.to_string(until))
            }
            _ => "-".into(),
        };
        let rst = c.reset.map_or("-".into(), |r| {
            format!("{} ({})", r.by.name(), r.cause.name())
        });
        let mut close = report::close(c).name().to_string();
        if c.half_close {
            close.push_str(" (half-close)");
        }
        let (cl, sv) = (c.endpoint(Side::Client), c.endpoint(Side::Server));
        let mut client = c.client.to_string();
        if c.roles == crate::tcp::conn::Roles::Inferred {
            client.push_str(" (inferred)");
        }
        let row = [
            c.id.to_string(),
            client,
            c.server.to_string(),
            self.tf.to_string(c.first_ts),
            report::duration(c).to_string(),
            handshake,
            close,
            report::first_fin(c).unwrap_or("-").into(),
            time_wait,
            rst,
            c.retransmissions().total().to_string(),
            format!("{}/{}", cl.packets, sv.packets),
            format!("{}/{}", cl.payload_bytes, sv.payload_bytes),
            format!("{}/{}", cl.state, sv.state),
            analysis_counts(c),
        ];
        self.rows.push((c.id, row));
    }

    pub fn write_table(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.rows.is_empty() {
            return writeln!(out, "No TCP connections.");
        }
        self.rows.sort_by_key(|r| r.0);
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        t.set_header(HEADER.iter().map(Cell::new));
        if self.fit_terminal {
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        for (_, row) in self.rows.drain(..) {
            t.add_row(row.into_iter().map(Cell::new));
        }
        for i in [0usize, 10] {
            if let Some(col) = t.column_mut(i) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
        writeln!(out, "{t}")
    }
}

/// Short labels for the analysis column, in the order of `Flags::NAMES`.
const SHORT: [&str; 16] = [
    "rtx",
    "fast",
    "spurious",
    "ooo",
    "lost",
    "acked-unseen",
    "dup-ack",
    "zero-win",
    "zwp",
    "zwp-ack",
    "win-full",
    "win-upd",
    "keep-alive",
    "ka-ack",
    "reused",
    "tw-reack",
];

/// Non-zero analysis counts of both directions, e.g. `3 dup-ack, 1 fast, 1 rtx`.
fn analysis_counts(c: &Connection) -> String {
    let mut parts = Vec::new();
    for (i, label) in SHORT.iter().enumerate() {
        let n = c.ep[0].analysis.counts[i] + c.ep[1].analysis.counts[i];
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// The summary in a few lines of text.
pub fn write_summary(out: &mut dyn Write, s: &Summary, tf: &TimeFormatter) -> io::Result<()> {
    write!(
        out,
        "\n{} packets, {} TCP segments",
        s.packets, s.tcp_segments
    )?;
    if s.filtered_out > 0 {
        write!(out, ", {} rejected by the filter", s.filtered_out)?;
    }
    let plural = if s.connections == 1 { "" } else { "s" };
    writeln!(out, ", {} connection{plural}", s.connections)?;
    let skipped: Vec<String> = Skip::ALL
        .iter()
        .filter(|k| s.skipped[k.index()] > 0)
        .map(|k| format!("{} {}", s.skipped[k.index()], k.name()))
        .collect();
    if !skipped.is_empty() {
        writeln!(out, "not analysed: {}", skipped.join(", "))?;
    }
    let list = |names: Vec<(&str, u64)>| {
        names
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if s.connections > 0 {
        let hs = list(
            HANDSHAKES
                .iter()
                .map(|h| h.name())
                .zip(s.handshakes)
                .collect(),
        );
        let cl = list(CLOSES.iter().map(|c| c.name()).zip(s.closes).collect());
        writeln!(out, "handshakes: {hs}")?;
        writeln!(out, "closes: {cl}")?;
        writeln!(
            out,
            "resets: {}, retransmissions: {}, port reuses: {}",
            s.resets, s.retransmissions, s.port_reuses
        )?;
        let flags: Vec<String> = Flags::NAMES
            .iter()
            .zip(s.analysis)
            .filter(|(_, n)| *n > 0)
            .map(|((_, name), n)| format!("{n} {name}"))
            .collect();
        if !flags.is_empty() {
            writeln!(out, "analysis: {}", flags.join(", "))?;
        }
    }
    if let (Some(a), Some(b)) = (s.first_ts, s.last_ts) {
        writeln!(
            out,
            "capture: {} to {} ({})",
            tf.to_string(a),
            tf.to_string(b),
            b.since(a)
        )?;
    }
    if let Some(l) = s.live {
        writeln!(
            out,
            "libpcap: {} received, {} dropped by the kernel, {} dropped by the interface",
            l.received, l.dropped, l.if_dropped
        )?;
    }
    Ok(())
}

/// `--format table`: the table and the summary, nothing per event.
pub struct TableRenderer<W: Write> {
    out: W,
    table: ConnTable,
}

impl<W: Write> TableRenderer<W> {
    pub fn new(out: W, table: ConnTable) -> Self {
        TableRenderer { out, table }
    }
}

impl<W: Write> Renderer for TableRenderer<W> {
    fn start(&mut self, first: crate::time::Timestamp) {
        self.table.set_origin(first);
    }
    fn event(&mut self, _ev: &crate::event::Event, _c: &Connection) -> io::Result<()> {
        Ok(())
    }
    fn connection(&mut self, c: &Connection) -> io::Result<()> {
        self.table.add(c);
        Ok(())
    }
    fn finish(&mut self, s: &Summary) -> io::Result<()> {
        self.table.write_table(&mut self.out)?;
        let tf = self.table.tf;
        write_summary(&mut self.out, s, &tf)?;
        self.out.flush()
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
