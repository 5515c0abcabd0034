//! `--format text`: a timeline with one line per event (and, with `--packets`, one line per
//! segment in tcpdump's style), then the connection table and the summary.

use std::io::{self, Write};
use std::net::SocketAddr;

use rustc_hash::FxHashSet;

use crate::decode::Segment;
use crate::event::{Event, EventKind};
use crate::render::table::{ConnTable, write_summary};
use crate::render::{ConnHeader, Late, Renderer, push, words};
use crate::summary::Summary;
use crate::tcp::Connection;
use crate::tcp::analysis::Flags;
use crate::tcp::conn::Observation;
use crate::time::{Duration, TimeFormatter};

pub struct TextRenderer<W: Write> {
    out: W,
    tf: TimeFormatter,
    table: ConnTable,
    time_wait: Duration,
    color: bool,
    /// Connections whose header line has been printed (dropped when they are over).
    announced: FxHashSet<u64>,
    /// Reused for each event: its sentence, and the whole line being assembled.
    line: String,
    assembled: Vec<u8>,
    /// The calendar part of the last timestamp printed.
    seconds: crate::time::SecondCache,
}

const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

impl<W: Write> TextRenderer<W> {
    pub fn new(
        out: W,
        tf: TimeFormatter,
        table: ConnTable,
        time_wait: Duration,
        color: bool,
    ) -> Self {
        TextRenderer {
            out,
            tf,
            table,
            time_wait,
            color,
            announced: FxHashSet::default(),
            line: String::with_capacity(160),
            assembled: Vec::with_capacity(160),
            seconds: Default::default(),
        }
    }

    fn announce(&mut self, c: &ConnHeader) -> io::Result<()> {
        if self.announced.insert(c.id) {
            let (b, r) = if self.color { (BOLD, RESET) } else { ("", "") };
            let inferred = if c.roles_inferred {
                " (roles inferred)"
            } else {
                ""
            };
            let mut l = String::with_capacity(64);
            l.push_str(b);
            l.push('#');
            push::uint(&mut l, c.id);
            l.push(' ');
            push::socket_addr(&mut l, &c.client);
            l.push_str(" → ");
            push::socket_addr(&mut l, &c.server);
            for piece in [inferred, r, "\n"] {
                l.push_str(piece);
            }
            self.out.write_all(l.as_bytes())?;
        }
        Ok(())
    }
}

/// tcpdump's address form: `10.0.0.1.40000`, `fd00::1.8899`.
fn tcpdump_addr(a: &SocketAddr) -> String {
    format!("{}.{}", a.ip(), a.port())
}

impl<W: Write> Renderer for TextRenderer<W> {
    fn start(&mut self, first: crate::time::Timestamp) {
        self.tf.origin = Some(first);
        self.table.set_origin(first);
    }

    fn segment(&mut self, seg: &Segment, c: &Connection, obs: &Observation) -> io::Result<()> {
        self.announce(&ConnHeader::from(c))?;
        let from = c.endpoint(obs.from);
        let to = c.endpoint(obs.from.peer());
        let f = seg.flags;
        self.tf.write(&mut self.out, seg.ts)?;
        let ipv = if seg.src.is_ipv4() { "IP" } else { "IP6" };
        write!(
            self.out,
            "  #{} {ipv} {} > {}: Flags [{}]",
            c.id,
            tcpdump_addr(&seg.src),
            tcpdump_addr(&seg.dst),
            f.tcpdump()
        )?;
        // As tcpdump: absolute numbers on SYNs, relative to each side's ISN afterwards.
        let (seq, ack) = if f.syn() {
            (seg.seq.0, seg.ack.0)
        } else {
            (from.rel(seg.seq), to.rel(seg.ack))
        };
        if seg.payload_len > 0 {
            write!(
                self.out,
                ", seq {seq}:{}",
                seq.wrapping_add(seg.payload_len)
            )?;
        } else if f.syn() || f.fin() || f.rst() {
            write!(self.out, ", seq {seq}")?;
        }
        if f.ack() {
            write!(self.out, ", ack {ack}")?;
        }
        write!(self.out, ", win {}, length {}", seg.window, seg.payload_len)?;
        // Wireshark's Info-column tags, then tcpscope's own.
        let a = &obs.analysis;
        let mut tag = String::new();
        for (bit, name) in Flags::TAGS {
            if a.flags.has(bit) && !(bit == Flags::RETRANSMISSION && tag.contains("Retransmission"))
            {
                tag.push_str(" [");
                tag.push_str(name);
                tag.push(']');
            }
        }
        if let Some((num, frame)) = a.dup_ack {
            tag.push_str(&format!(" [TCP Dup ACK {frame}#{num}]"));
        }
        if a.flags.has(Flags::TIME_WAIT_REACK) {
            tag.push_str(" [TIME_WAIT re-ACK]");
        }
        if obs.ignored.is_some() {
            tag.push_str(" [ignored by the receiver]");
        }
        let st = c.states();
        writeln!(self.out, "{tag}  (client {}, server {})", st[0], st[1])
    }

    fn event(&mut self, ev: &Event, c: Option<&ConnHeader>) -> io::Result<()> {
        if let Some(c) = c {
            self.announce(c)?;
        }
        let (pre, post) = match (&ev.kind, self.color) {
            (EventKind::Reset { .. }, true) => (RED, RESET),
            (
                EventKind::SynRetransmission { .. }
                | EventKind::SynAckRetransmission { .. }
                | EventKind::DataRetransmission { .. }
                | EventKind::FinRetransmission { .. },
                true,
            ) => (YELLOW, RESET),
            _ => ("", ""),
        };
        self.line.clear();
        words::write_sentence(&mut self.line, ev, &self.tf, self.time_wait);
        // The line is assembled in one buffer and written at once: one timeline line per
        // event makes `write!` and its padding machinery a real share of the run.
        let l = &mut self.assembled;
        l.clear();
        self.tf.push_cached(l, ev.ts, &mut self.seconds);
        l.extend_from_slice(b"  #");
        l.extend_from_slice(itoa::Buffer::new().format(ev.conn).as_bytes());
        for piece in [
            " ",
            pre,
            &self.line,
            post,
            "  → client ",
            ev.states[0].name(),
        ] {
            l.extend_from_slice(piece.as_bytes());
        }
        for piece in [", server ", ev.states[1].name(), "\n"] {
            l.extend_from_slice(piece.as_bytes());
        }
        self.out.write_all(l)
    }

    fn late_segment(&mut self, seg: &Segment, late: &Late) -> io::Result<()> {
        self.tf.write(&mut self.out, seg.ts)?;
        writeln!(
            self.out,
            "  #{} {} > {}: Flags [{}], seq {}, ack {}, length {} [late: #{} was already reported; its {} is in TIME_WAIT]",
            late.conn,
            tcpdump_addr(&seg.src),
            tcpdump_addr(&seg.dst),
            seg.flags.tcpdump(),
            late.rel_seq,
            late.rel_ack,
            seg.payload_len,
            late.conn,
            late.from.peer().name(),
        )
    }

    fn connection(&mut self, c: &Connection) -> io::Result<()> {
        self.announced.remove(&c.id);
        self.table.add(c);
        Ok(())
    }

    fn finish(&mut self, s: &Summary) -> io::Result<()> {
        writeln!(self.out)?;
        self.table.write_table(&mut self.out)?;
        write_summary(&mut self.out, s, &self.tf)?;
        self.out.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
