//! The connection table (comfy-table) and the text summary, shared by the `text` and `table`
//! formats. A compact row is kept when a connection is over; cells are formatted at the end.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::ops::Range;

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};

use crate::decode::Skip;
use crate::render::{ConnHeader, Renderer, push};
use crate::summary::{CLOSES, HANDSHAKES, Summary};
use crate::tcp::analysis::Flags;
use crate::tcp::conn::{Connection, ResetCause, Side, TimeWaitEnd};
use crate::tcp::report::{self, HandshakeStatus};
use crate::tcp::state::TcpState;
use crate::time::{Duration, SecondCache, TimeFormatter, Timestamp};

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

/// What the table keeps of a finished connection: numbers and small enums, formatted only when
/// the table is printed (a few hundred bytes per connection, not its strings).
struct Row {
    id: u64,
    client: std::net::SocketAddr,
    server: std::net::SocketAddr,
    inferred: bool,
    first_ts: Timestamp,
    duration: Duration,
    handshake: HandshakeStatus,
    rtt: Option<Duration>,
    simultaneous_open: bool,
    close: report::Close,
    half_close: bool,
    first_fin: Option<SideName>,
    tw_side: Option<SideName>,
    tw_until: Option<Timestamp>,
    tw_ended: Option<TimeWaitEnd>,
    rst: Option<(Side, ResetCause)>,
    retrans: u32,
    packets: [u64; 2],
    bytes: [u64; 2],
    states: [TcpState; 2],
    /// Counts of the analysis flags (both directions), in the order of `Flags::NAMES`; None
    /// when all are zero, as for most connections (56 bytes a row saved).
    analysis: Option<Box<[u32; 16]>>,
}

/// Which side(s) a column names ("client", "server", "both"), in a byte instead of a
/// 16-byte `&str`: rows are kept for every connection of the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SideName(u8);

impl SideName {
    const NAMES: [&'static str; 3] = ["client", "server", "both"];

    fn of(name: &'static str) -> SideName {
        let i = Self::NAMES.iter().position(|n| *n == name);
        SideName(i.expect("a side's name") as u8)
    }

    fn name(self) -> &'static str {
        Self::NAMES[usize::from(self.0)]
    }
}

/// In [`ConnTable::frames`]: no row at this slot (yet).
const NO_ROW: u64 = u64::MAX;

/// Above this many rows the table is printed as plain aligned columns: comfy-table builds every
/// cell in memory first, which costs more than the analysis on large captures.
const COMFY_MAX_ROWS: usize = 5_000;

/// Collects one row per connection and prints the table and summary at the end.
pub struct ConnTable {
    /// The row of connection `id` at `id - 1`, empty until the connection ends. Connections
    /// end in any order; kept this way, the rows are in id order without a sort (sorting 200,000
    /// rows moved 37 MB, at the end of the run when nothing else is left to do).
    rows: Vec<Option<Row>>,
    /// The first frame of the row at each slot of `rows` ([`NO_ROW`] until there is one): what
    /// [`ConnTable::renumber`] merges the shards by, 8 bytes a row instead of the rows' 184.
    frames: Vec<u64>,
    /// The rows of the run's other shards, as [`ConnTable::merge`] took them, and their
    /// frames.
    shards: Vec<Vec<Option<Row>>>,
    shard_frames: Vec<Vec<u64>>,
    /// After [`ConnTable::renumber`]: all shards' rows in id order, as (shard, slot), shard 0
    /// being `rows`. The rows stay where they are (moving them would take as much memory again).
    order: Option<Vec<(usize, usize)>>,
    tf: TimeFormatter,
    /// Fit the table to the terminal's width (only when writing to a terminal).
    pub fit_terminal: bool,
}

impl ConnTable {
    pub fn new(tf: TimeFormatter) -> ConnTable {
        ConnTable {
            rows: Vec::new(),
            frames: Vec::new(),
            shards: Vec::new(),
            shard_frames: Vec::new(),
            order: None,
            tf,
            fit_terminal: false,
        }
    }

    pub fn set_origin(&mut self, first: Timestamp) {
        self.tf.origin = Some(first);
    }

    pub fn add(&mut self, c: &Connection) {
        let tw = report::time_wait(c);
        let (cl, sv) = (c.endpoint(Side::Client), c.endpoint(Side::Server));
        let mut analysis = [0u32; 16];
        for (i, a) in analysis.iter_mut().enumerate() {
            *a = cl.analysis.counts[i] + sv.analysis.counts[i];
        }
        let analysis = analysis.iter().any(|&n| n > 0).then(|| Box::new(analysis));
        // Ids are a flow table's count of connections, from 1: each comes once.
        let slot = c.id.saturating_sub(1) as usize;
        if slot >= self.rows.len() {
            self.rows.resize_with(slot + 1, || None);
            self.frames.resize(slot + 1, NO_ROW);
        }
        self.frames[slot] = c.first_frame;
        debug_assert!(self.rows[slot].is_none(), "connection {} ended twice", c.id);
        self.rows[slot] = Some(Row {
            id: c.id,
            client: c.client,
            server: c.server,
            inferred: c.roles == crate::tcp::conn::Roles::Inferred,
            first_ts: c.first_ts,
            duration: report::duration(c),
            handshake: report::handshake_status(c),
            rtt: c.handshake_rtt,
            simultaneous_open: c.simultaneous_open,
            close: report::close(c),
            half_close: c.half_close,
            first_fin: report::first_fin(c).map(SideName::of),
            tw_side: tw.side.map(SideName::of),
            tw_until: tw.until,
            tw_ended: tw.ended,
            rst: c.reset.map(|r| (r.by, r.cause)),
            retrans: c.retransmissions().total(),
            packets: [cl.packets, sv.packets],
            bytes: [cl.payload_bytes, sv.payload_bytes],
            states: [cl.state, sv.state],
            analysis,
        });
    }

    /// Takes the rows of another shard of the same run; their ids are the shard's own until
    /// [`ConnTable::renumber`].
    pub fn merge(&mut self, other: &mut ConnTable) {
        self.shards.push(std::mem::take(&mut other.rows));
        self.shards.append(&mut other.shards);
        self.shard_frames.push(std::mem::take(&mut other.frames));
        self.shard_frames.append(&mut other.shard_frames);
    }

    /// The rows of shard `s` (0 is this table's own), at their shard's ids.
    fn shard(&self, s: usize) -> &[Option<Row>] {
        if s == 0 {
            &self.rows
        } else {
            &self.shards[s - 1]
        }
    }

    /// After [`ConnTable::merge`]: numbers the connections 1, 2, … in the order of the frames
    /// that opened them, as one flow table would have, and returns a lookup from that frame
    /// to the id. Each shard's rows are in that order already (its ids count its connections
    /// as they open), so the shards are merged, not sorted; by their frames alone, without
    /// reading the rows (200,000 rows are 37 MB, and the merge took 6–10 ms through them).
    /// A row's id is then its place in that order (see [`ConnTable::ordered`]).
    pub fn renumber(&mut self) -> impl Fn(u64) -> Option<u64> + use<> {
        let shards: Vec<&[u64]> = std::iter::once(&self.frames[..])
            .chain(self.shard_frames.iter().map(|frames| &frames[..]))
            .collect();
        let mut next = vec![0usize; shards.len()];
        // Sized once: grown by doubling, these lists (5 MB for 200,000 rows) had the kernel
        // clear twice their size in fresh pages at the table's end.
        let most = shards.iter().map(|shard| shard.len()).sum();
        let (mut order, mut frames) = (Vec::with_capacity(most), Vec::with_capacity(most));
        loop {
            // The shard whose next row opened first.
            let mut first: Option<(u64, usize)> = None;
            for (s, shard) in shards.iter().enumerate() {
                let at = &mut next[s];
                while shard.get(*at) == Some(&NO_ROW) {
                    *at += 1;
                }
                if let Some(&frame) = shard.get(*at)
                    && first.is_none_or(|(earliest, _)| frame < earliest)
                {
                    first = Some((frame, s));
                }
            }
            let Some((frame, s)) = first else { break };
            order.push((s, next[s]));
            frames.push(frame);
            next[s] += 1;
        }
        self.order = Some(order);
        move |frame| frames.binary_search(&frame).ok().map(|i| i as u64 + 1)
    }

    /// The rows in id order, each with its id: its place in the merged order once shards are
    /// merged and renumbered, its own otherwise.
    fn ordered(&self) -> Vec<(u64, &Row)> {
        let mut rows = Vec::with_capacity(self.order.as_ref().map_or(self.rows.len(), Vec::len));
        match &self.order {
            Some(order) => rows.extend(
                (order.iter().zip(1..))
                    .filter_map(|(&(s, slot), id)| Some((id, self.shard(s)[slot].as_ref()?))),
            ),
            None => rows.extend(self.rows.iter().flatten().map(|r| (r.id, r))),
        }
        rows
    }

    /// The row's cells, in the order of `HEADER`.
    fn cells(&self, id: u64, r: &Row) -> [String; 15] {
        let mut buf = CellBuf::default();
        self.format_row(id, r, &mut buf);
        buf.cells
    }

    /// Writes the row's cells into `buf`, reusing its buffers.
    fn format_row(&self, id: u64, r: &Row, buf: &mut CellBuf) {
        let CellBuf {
            cells,
            scratch,
            seconds,
        } = buf;
        self.cells_into(id, r, cells, |t, out: &mut String| {
            scratch.clear();
            self.tf.push_cached(scratch, t, seconds);
            out.push_str(std::str::from_utf8(scratch).unwrap_or("?"));
        });
    }

    /// The widths of the row's cells, without formatting them: the first pass over a large
    /// table, which only measures. Every timestamp counts as `ts_width`, the width all of
    /// them print in at most.
    fn widths_of(&self, id: u64, r: &Row, ts_width: usize) -> [Width; 15] {
        let mut widths = [Width(0); 15];
        self.cells_into(id, r, &mut widths, |_, w: &mut Width| w.0 += ts_width);
        widths
    }

    /// Appends the row's cells to `cells` (empty on entry), in the order of `HEADER`; `ts`
    /// appends a timestamp. One routine for printing into strings and for measuring widths,
    /// so that what is measured is what is printed.
    fn cells_into<C: TableCell>(
        &self,
        id: u64,
        r: &Row,
        cells: &mut [C; 15],
        mut ts: impl FnMut(Timestamp, &mut C),
    ) {
        let pair = |out: &mut C, [a, b]: [u64; 2]| {
            out.put_uint(a);
            out.put_char('/');
            out.put_uint(b);
        };
        for c in cells.iter_mut() {
            c.clear();
        }
        cells[0].put_uint(id);
        cells[1].put_addr(&r.client);
        if r.inferred {
            cells[1].put(" (inferred)");
        }
        cells[2].put_addr(&r.server);
        ts(r.first_ts, &mut cells[3]);
        let _ = r.duration.write_human(&mut cells[4]);
        cells[5].put(r.handshake.name());
        match (r.handshake, r.rtt) {
            (HandshakeStatus::Complete, Some(rtt)) => {
                cells[5].put_char(' ');
                let _ = rtt.write_human(&mut cells[5]);
            }
            _ if r.simultaneous_open => cells[5].put(" (simultaneous)"),
            _ => {}
        }
        cells[6].put(r.close.name());
        if r.half_close {
            cells[6].put(" (half-close)");
        }
        cells[7].put(r.first_fin.map_or("-", SideName::name));
        match (r.tw_side, r.tw_until) {
            (Some(side), Some(until)) => {
                let how = match r.tw_ended {
                    Some(TimeWaitEnd::Expired) => "expired",
                    Some(TimeWaitEnd::NewSyn) => "ended by SYN",
                    Some(TimeWaitEnd::Reset) => "ended by RST",
                    None => "until",
                };
                for piece in [side.name(), ", ", how, " "] {
                    cells[8].put(piece);
                }
                ts(until, &mut cells[8]);
            }
            _ => cells[8].put_char('-'),
        }
        match r.rst {
            Some((by, cause)) => {
                for piece in [by.name(), " (", cause.name(), ")"] {
                    cells[9].put(piece);
                }
            }
            None => cells[9].put_char('-'),
        }
        cells[10].put_uint(u64::from(r.retrans));
        pair(&mut cells[11], r.packets);
        pair(&mut cells[12], r.bytes);
        for piece in [r.states[0].name(), "/", r.states[1].name()] {
            cells[13].put(piece);
        }
        let counts = r.analysis.as_deref().unwrap_or(&[0; 16]);
        for (label, n) in SHORT.iter().zip(counts).filter(|(_, n)| **n > 0) {
            if !cells[14].is_empty() {
                cells[14].put(", ");
            }
            cells[14].put_uint(u64::from(*n));
            cells[14].put_char(' ');
            cells[14].put(label);
        }
        if cells[14].is_empty() {
            cells[14].put_char('-');
        }
    }

    pub fn write_table(&mut self, out: &mut dyn Write) -> io::Result<()> {
        // The rows are not freed here: this is the run's end, and `run_read` exits without
        // freeing what it holds (200,000 rows took 2.8 ms to free).
        if let Some(order) = &self.order
            && order.len() > COMFY_MAX_ROWS
        {
            // Merged shards' rows are found through their order as they are printed, not
            // listed first (a list of 200,000 took 3.5–4.3 ms, most of it in fresh pages).
            let row = |i: usize| {
                let (s, slot) = order[i];
                Some((i as u64 + 1, self.shard(s)[slot].as_ref()?))
            };
            return self.write_plain(order.len(), row, out);
        }
        let rows = self.ordered();
        if rows.is_empty() {
            return writeln!(out, "No TCP connections.");
        }
        if rows.len() > COMFY_MAX_ROWS {
            return self.write_plain(rows.len(), |i| Some(rows[i]), out);
        }
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        t.set_header(HEADER.iter().map(Cell::new));
        if self.fit_terminal {
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        for (id, r) in rows {
            t.add_row(self.cells(id, r).into_iter().map(Cell::new));
        }
        for i in [0usize, 10] {
            if let Some(col) = t.column_mut(i) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
        self.clear();
        writeln!(out, "{t}")
    }

    fn clear(&mut self) {
        self.rows.clear();
        self.frames.clear();
        self.shards.clear();
        self.shard_frames.clear();
        self.order = None;
    }

    /// Plain columns separated by two spaces, widths measured over all rows first. Both
    /// passes run on two threads, each taking half of every chunk of rows: at the end of a
    /// large capture this is the only work left, and it is as much as the analysis of a few
    /// hundred thousand packets. `row(i)` is the `i`th of `n` rows in id order, with its id
    /// (None for a place without a row).
    fn write_plain<'a>(
        &'a self,
        n: usize,
        row: impl Fn(usize) -> Option<(u64, &'a Row)> + Sync,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        // Timestamps of one capture print in one width, the latest the widest.
        let latest = ((0..n).filter_map(&row))
            .map(|(_, r)| r.tw_until.unwrap_or(r.first_ts).max(r.first_ts))
            .max()
            .unwrap_or_default();
        let ts_width = self.tf.to_string(latest).chars().count();
        let measure = |rows: Range<usize>| {
            let mut widths = [0usize; 15];
            for (id, r) in rows.filter_map(&row) {
                for (w, cell) in widths.iter_mut().zip(self.widths_of(id, r, ts_width)) {
                    *w = (*w).max(cell.0);
                }
            }
            widths
        };
        let (a, b) = on_two_threads(|| measure(0..n / 2), || measure(n / 2..n));
        let mut widths = HEADER.map(|h| h.chars().count());
        for (w, (a, b)) in widths.iter_mut().zip(a.into_iter().zip(b)) {
            *w = (*w).max(a).max(b);
        }
        let print = |rows: Range<usize>, text: &mut Vec<u8>| {
            let mut buf = CellBuf::default();
            for (id, r) in rows.filter_map(&row) {
                self.format_row(id, r, &mut buf);
                push_line(text, &buf.cells, &widths);
            }
        };
        let mut header = Vec::new();
        push_line(&mut header, &HEADER.map(String::from), &widths);
        out.write_all(&header)?;
        let (mut text_a, mut text_b) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(PRINT_CHUNK) {
            let end = (start + PRINT_CHUNK).min(n);
            let middle = start + (end - start) / 2;
            text_a.clear();
            text_b.clear();
            on_two_threads(
                || print(start..middle, &mut text_a),
                || print(middle..end, &mut text_b),
            );
            out.write_all(&text_a)?;
            out.write_all(&text_b)?;
        }
        Ok(())
    }
}

/// Rows printed per round of the two threads (about 2 MB of text).
const PRINT_CHUNK: usize = 8192;

/// Runs `a` here and `b` on a second thread, and returns both results.
fn on_two_threads<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    std::thread::scope(|s| {
        let other = s.spawn(b);
        let mine = a();
        (mine, other.join().expect("a table thread panicked"))
    })
}

/// What a row's cells are appended to: a `String`, or a [`Width`] that only counts.
trait TableCell: std::fmt::Write + Sized {
    fn clear(&mut self);
    fn is_empty(&self) -> bool;
    fn put(&mut self, s: &str) {
        let _ = self.write_str(s);
    }
    fn put_char(&mut self, c: char) {
        let _ = self.write_char(c);
    }
    fn put_uint(&mut self, n: u64) {
        push::uint(self, n);
    }
    /// An address and port as `Display` writes it.
    fn put_addr(&mut self, a: &SocketAddr) {
        push::socket_addr(self, a);
    }
}

impl TableCell for String {
    fn clear(&mut self) {
        String::clear(self);
    }
    fn is_empty(&self) -> bool {
        str::is_empty(self)
    }
}

/// The width in characters of what was written to it (measuring a cell without keeping it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Width(usize);

impl std::fmt::Write for Width {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += width_of(s);
        Ok(())
    }
    fn write_char(&mut self, _: char) -> std::fmt::Result {
        self.0 += 1;
        Ok(())
    }
}

/// Measuring counts digits instead of writing them: a large table is measured in full before
/// the first line is printed.
impl TableCell for Width {
    fn clear(&mut self) {
        self.0 = 0;
    }
    fn is_empty(&self) -> bool {
        self.0 == 0
    }
    fn put_uint(&mut self, n: u64) {
        self.0 += decimal_digits(n);
    }
    fn put_addr(&mut self, a: &SocketAddr) {
        match a {
            // Three dots and a colon between the numbers.
            SocketAddr::V4(v4) => {
                let octets = v4.ip().octets().map(|o| decimal_digits(u64::from(o)));
                self.0 += 4 + octets.iter().sum::<usize>() + decimal_digits(u64::from(a.port()));
            }
            SocketAddr::V6(_) => push::socket_addr(self, a),
        }
    }
}

/// How many digits `n` has in decimal.
fn decimal_digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// A thread's buffers for formatting rows: the cells, reused from row to row, and the
/// calendar part of the last timestamp.
#[derive(Default)]
struct CellBuf {
    cells: [String; 15],
    scratch: Vec<u8>,
    seconds: SecondCache,
}

/// Appends one line of cells padded to `widths` (the counts and `#` right-aligned).
fn push_line(buf: &mut Vec<u8>, cells: &[String; 15], widths: &[usize; 15]) {
    let last = cells.len() - 1;
    // Nearly every line is ASCII, where a cell's width is its length: the line is laid out
    // in spaces at once and each cell copied to its place.
    let fits = |(cell, w): (&String, &usize)| cell.is_ascii() && cell.len() <= *w;
    if cells[..last].iter().zip(widths).all(fits) && cells[last].is_ascii() {
        let start = buf.len();
        let columns: usize = widths[..last].iter().map(|w| w + 2).sum();
        buf.resize(start + columns + cells[last].len() + 1, b' ');
        let mut at = start;
        for (i, (cell, w)) in cells[..last].iter().zip(widths).enumerate() {
            let from = if i == 0 || i == 10 {
                at + w - cell.len()
            } else {
                at
            };
            buf[from..from + cell.len()].copy_from_slice(cell.as_bytes());
            at += w + 2;
        }
        buf[at..at + cells[last].len()].copy_from_slice(cells[last].as_bytes());
        *buf.last_mut().expect("the line's end") = b'\n';
        return;
    }
    let pad = |buf: &mut Vec<u8>, n: usize| buf.resize(buf.len() + n, b' ');
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        let spaces = w.saturating_sub(width_of(cell));
        if i == 0 || i == 10 {
            pad(buf, spaces);
            buf.extend_from_slice(cell.as_bytes());
        } else {
            buf.extend_from_slice(cell.as_bytes());
            if i != last {
                pad(buf, spaces);
            }
        }
        if i != last {
            buf.extend_from_slice(b"  ");
        }
    }
    buf.push(b'\n');
}

/// Characters in a cell (cells are mostly ASCII, where that is their length).
fn width_of(cell: &str) -> usize {
    if cell.is_ascii() {
        cell.len()
    } else {
        cell.chars().count()
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
        if s.idle_expired + s.evicted + s.late_segments > 0 {
            writeln!(
                out,
                "forgotten: {} idle, {} evicted to make room; {} late segments of connections already reported",
                s.idle_expired, s.evicted, s.late_segments
            )?;
        }
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
    fn wants_events(&self) -> bool {
        false
    }

    fn start(&mut self, first: Timestamp) {
        self.table.set_origin(first);
    }
    fn event(&mut self, _ev: &crate::event::Event, _c: Option<&ConnHeader>) -> io::Result<()> {
        Ok(())
    }
    fn connection(&mut self, c: &Connection) -> io::Result<()> {
        self.table.add(c);
        Ok(())
    }
    fn table(&mut self) -> Option<&mut ConnTable> {
        Some(&mut self.table)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Segment, TcpFlags, TcpOptions};
    use crate::tcp::conn::TrackerConfig;
    use crate::tcp::seq::SeqNum;
    use crate::time::TimeFormat;

    /// A connection seen only by its SYN, from port `port`, `ms` after the epoch.
    fn syn_only(id: u64, port: u16, ms: u64) -> Connection {
        syn_only_at(id, id, port, ms)
    }

    /// The same, opened by frame `frame` (a shard's ids count only its own connections).
    fn syn_only_at(id: u64, frame: u64, port: u16, ms: u64) -> Connection {
        let seg = Segment {
            ts: Timestamp(ms * 1_000_000),
            frame,
            src: format!("10.0.0.1:{port}").parse().unwrap(),
            dst: "10.0.0.2:80".parse().unwrap(),
            seq: SeqNum(1),
            ack: SeqNum(0),
            flags: TcpFlags(TcpFlags::SYN),
            window: 1000,
            payload_len: 0,
            options: TcpOptions::default(),
            truncated: false,
            ip_len: 40,
        };
        Connection::start(id, &seg, TrackerConfig::default(), None, &mut Vec::new()).0
    }

    /// Two shards' rows, each added as its connections ended (not in id order), merge into
    /// frame order and are numbered as one flow table would have numbered them.
    #[test]
    fn shards_rows_merge_in_frame_order_and_are_renumbered() {
        let tf = TimeFormatter::new(TimeFormat::Utc, false);
        let (mut a, mut b) = (ConnTable::new(tf), ConnTable::new(tf));
        // Shard a opened frames 1, 4 and 6 (its ids 1, 2, 3), shard b frames 2 and 5.
        for (id, frame) in [(3, 6), (1, 1), (2, 4)] {
            a.add(&syn_only_at(id, frame, 1000 + frame as u16, frame));
        }
        for (id, frame) in [(2, 5), (1, 2)] {
            b.add(&syn_only_at(id, frame, 1000 + frame as u16, frame));
        }
        a.merge(&mut b);
        let id_of = a.renumber();
        let found: Vec<_> = [1, 2, 3, 4, 5, 6].map(id_of).into();
        assert_eq!(found, [Some(1), Some(2), None, Some(3), Some(4), Some(5)]);
        // Each connection opened at its frame's millisecond (`syn_only_at`).
        let rows: Vec<_> = (a.ordered().iter())
            .map(|(id, r)| (*id, r.first_ts.0 / 1_000_000))
            .collect();
        assert_eq!(rows, [(1, 1), (2, 2), (3, 4), (4, 5), (5, 6)]);
        let mut out = Vec::new();
        a.write_table(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let ports: Vec<usize> = [1001, 1002, 1004, 1005, 1006]
            .map(|p| text.find(&format!("10.0.0.1:{p}")).unwrap())
            .into();
        assert!(ports.is_sorted(), "{text}");
    }

    /// Above `COMFY_MAX_ROWS` the table is printed as plain columns by two threads: every row
    /// once, in id order, each column starting at the same place on every line.
    #[test]
    fn a_large_table_prints_every_row_once_in_order_and_aligned() {
        let n = 3 * PRINT_CHUNK as u64 + 5;
        assert!(n as usize > COMFY_MAX_ROWS);
        let mut t = ConnTable::new(TimeFormatter::new(TimeFormat::Utc, false));
        // Added out of order (as shards merge them); the table sorts by id.
        for id in (1..=n).rev() {
            t.add(&syn_only(id, 1024 + (id % 60_000) as u16, id));
        }
        let mut out = Vec::new();
        t.write_table(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, n + 1);
        assert!(lines[0].trim_start().starts_with("#  client"));
        let client_at = lines[0].find("client").unwrap();
        for (i, line) in lines[1..].iter().enumerate() {
            let id = i as u64 + 1;
            let (num, rest) = line.split_at(client_at);
            assert_eq!(num.trim().parse::<u64>().unwrap(), id, "{line}");
            let port = 1024 + (id % 60_000);
            assert!(rest.starts_with(&format!("10.0.0.1:{port} ")), "{line}");
            assert!(line.contains("unanswered"), "{line}");
        }
    }

    /// The measuring pass counts exactly the characters the printing pass writes, cell by
    /// cell, for rows of every shape (IPv6, non-ASCII units, every optional part).
    #[test]
    fn measured_widths_are_the_printed_widths() {
        let t = ConnTable::new(TimeFormatter::new(TimeFormat::Utc, false));
        let base = || Row {
            id: 7,
            client: "10.0.0.1:40000".parse().unwrap(),
            server: "[2001:db8::1]:443".parse().unwrap(),
            inferred: false,
            first_ts: Timestamp(1_700_000_000_123_456_789),
            duration: Duration(999),
            handshake: HandshakeStatus::Complete,
            rtt: Some(Duration(1_234)),
            simultaneous_open: false,
            close: report::Close::FourWay,
            half_close: false,
            first_fin: Some(SideName::of("both")),
            tw_side: Some(SideName::of("client")),
            tw_until: Some(Timestamp(1_700_000_060_000_000_000)),
            tw_ended: None,
            rst: None,
            retrans: 0,
            packets: [12, 0],
            bytes: [0, 123_456_789],
            states: [TcpState::TimeWait, TcpState::Closed],
            analysis: None,
        };
        let mut rows = vec![];
        for (i, ns) in [999u64, 45_000, 2_500_000, 61_000_000_000, 7_300_000_000_000]
            .into_iter()
            .enumerate()
        {
            let mut r = Row {
                duration: Duration(ns),
                rtt: Some(Duration(ns / 3)),
                ..base()
            };
            r.inferred = i % 2 == 0;
            r.half_close = i % 2 == 1;
            r.tw_ended = [None, Some(TimeWaitEnd::Expired), Some(TimeWaitEnd::NewSyn)][i % 3];
            let mut counts = [0; 16];
            counts[i] = 10u32.pow(i as u32);
            counts[15 - i] = 3;
            r.analysis = Some(Box::new(counts));
            rows.push(r);
        }
        rows.push(Row {
            handshake: HandshakeStatus::Refused,
            rtt: None,
            simultaneous_open: true,
            close: report::Close::Refused,
            first_fin: None,
            tw_side: None,
            tw_until: None,
            rst: Some((Side::Server, ResetCause::Refused)),
            retrans: 4_000_000_000,
            client: "[::1]:1".parse().unwrap(),
            ..base()
        });
        // Addresses and numbers of every length: measuring counts their digits.
        for (i, (client, n)) in [
            ("0.0.0.0:0", 0u64),
            ("9.10.99.100:9", 9),
            ("255.255.255.255:65535", 10),
            ("1.22.103.9:1000", 99_999),
            ("100.10.1.0:10000", u64::from(u32::MAX)),
        ]
        .into_iter()
        .enumerate()
        {
            rows.push(Row {
                id: n.max(1),
                client: client.parse().unwrap(),
                retrans: n.min(u64::from(u32::MAX)) as u32,
                packets: [n, u64::MAX - n],
                bytes: [n * 7, 10u64.pow(i as u32)],
                ..base()
            });
        }
        for r in &rows {
            let printed = t.cells(r.id, r);
            let ts_width = width_of(&t.tf.to_string(r.first_ts));
            let measured = t.widths_of(r.id, r, ts_width);
            for (i, (cell, w)) in printed.iter().zip(measured).enumerate() {
                assert_eq!(w.0, width_of(cell), "column {} ({cell:?})", HEADER[i]);
            }
        }
    }

    /// Every name the report gives a side (or both) is one a row can keep.
    #[test]
    fn every_side_name_fits_in_a_row() {
        let names = [(true, true), (true, false), (false, true)]
            .map(|(c, s)| report::sides_name(c, s).unwrap())
            .into_iter()
            .chain([Side::Client.name(), Side::Server.name()]);
        for name in names {
            assert_eq!(SideName::of(name).name(), name);
        }
    }
}
