//! The run: source → decode → flow table → tracker → events → renderer, then the exit status.

use std::io::{self, BufWriter, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::cli::{Cli, ColorChoice, Command, Options, split_inputs};
use crate::event::Event;
use crate::flow::{FlowConfig, FlowTable, Routed};
use crate::ingest::{BatchReceiver, BatchSender, Ingest, IngestCounts, Item, batch_channel};
use crate::progress::Progress;
use crate::render::json::JsonRenderer;
use crate::render::table::{ConnTable, TableRenderer};
use crate::render::text::TextRenderer;
use crate::render::threaded::Threaded;
use crate::render::{ConnHeader, Format, Late, Renderer};
use crate::source::file::CaptureFile;
use crate::source::filter::PacketFilter;
use crate::source::live::LiveCapture;
use crate::source::{Flow, SourceError};
use crate::summary::{Failure, Summary};
use crate::tcp::Connection;
use crate::tcp::conn::TrackerConfig;
use crate::tcp::report::FailOn;
use crate::time::{Duration, TimeFormatter, Timestamp};

/// A live capture hands a batch to the analysis at this many packets, or after this long.
const LIVE_BATCH: usize = 256;
const LIVE_LATENCY: std::time::Duration = std::time::Duration::from_millis(5);

/// Exit statuses (see `--help`).
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAIL_ON: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// Everything between a decoded packet and the renderer.
struct Pipeline {
    table: FlowTable,
    renderer: Box<dyn Renderer + Send>,
    /// This pipeline analyses only the connections of its shard (see [`Shard`]).
    shard: Option<Shard>,
    summary: Summary,
    events: Vec<Event>,
    /// Connections the renderer has finished with, on their way back to the flow table (their
    /// boxes are what is reused).
    #[allow(clippy::vec_box)]
    spent: Vec<Box<Connection>>,
    /// Connections retired by the flow table in this step (a reused buffer).
    #[allow(clippy::vec_box)]
    retired: Vec<Box<Connection>>,
    /// Steps that retired connections (paces `take_spent`).
    handed_over: u64,
    packets_view: bool,
    fail_on: Vec<FailOn>,
    /// Flush after each packet that produced output (live capture).
    live: bool,
    /// Set when writing the output failed (a closed pipe ends the run quietly).
    output_error: Option<io::Error>,
    /// The renderer takes events in bulk (see `Renderer::takes_events_in_bulk`): `events`
    /// then holds every event not yet handed over, and `placed` counts the connections
    /// handed over since.
    bulk: bool,
    placed: usize,
    /// The processor has `prefetchw` (see `drain`).
    prefetch_write: bool,
}

/// In bulk, events are handed over once this many are waiting, or once this many
/// connections are placed among them: a few hundred microseconds of analysis.
const BULK: usize = 512;

impl Pipeline {
    /// Analyses one item; false once the output has failed and the run should stop.
    fn item(&mut self, item: &Item) -> bool {
        if let Err(e) = self.analyse(item) {
            self.output_error = Some(e);
            return false;
        }
        true
    }

    /// The same as `item`, but another shard's segment costs only a clock check here (a
    /// shard sees every item, and most are another shard's).
    #[inline]
    fn item_ref(&mut self, item: &Item) -> bool {
        match (item, self.shard) {
            (Item::Segment(seg, spread), Some(shard)) if !shard.owns(*spread) => {
                self.table.advance(seg.ts, &mut self.events);
                if self.events.is_empty() && !self.table.has_retired() {
                    return true;
                }
                self.item(&Item::Tick(seg.ts))
            }
            _ => self.item(item),
        }
    }

    fn analyse(&mut self, item: &Item) -> io::Result<()> {
        let (seg, spread) = match item {
            &Item::Start(first) => {
                self.renderer.start(first);
                return Ok(());
            }
            &Item::Tick(ts) => {
                self.table.advance(ts, &mut self.events);
                return self.drain();
            }
            Item::Segment(seg, spread) if self.shard.is_none_or(|s| s.owns(*spread)) => {
                (seg, *spread)
            }
            // Another shard's segment: only its time counts here, as a tick's would.
            Item::Segment(seg, _) => {
                self.table.advance(seg.ts, &mut self.events);
                return self.drain();
            }
        };
        // Deadlines due before this packet (TIME_WAIT expiries) come first in the timeline.
        self.table.advance(seg.ts, &mut self.events);
        self.drain()?;
        match self.table.segment_hashed(seg, spread, &mut self.events) {
            Routed::Live(id) => {
                if self.packets_view
                    && let Some(c) = self.table.get(id)
                {
                    self.renderer.segment(seg, c, self.table.observation())?;
                }
            }
            Routed::Late(conn, from, rel_seq, rel_ack) => {
                if self.packets_view {
                    let late = Late {
                        conn,
                        from,
                        rel_seq,
                        rel_ack,
                    };
                    self.renderer.late_segment(seg, &late)?;
                }
            }
        }
        self.drain()
    }

    /// Renders pending events, then the connections that are over. Called twice for every
    /// segment, and mostly there is nothing to do: that check is made here, inlined, and the
    /// work is a call away.
    #[inline(always)]
    fn drain(&mut self) -> io::Result<()> {
        if self.bulk {
            // The list's memory comes back from the output thread's core: the slots the next
            // events go to are asked for, to be written, before the tracker writes them.
            if self.prefetch_write {
                let ahead = self.events.as_ptr().wrapping_add(self.events.len() + 2);
                crate::prefetch::prefetch_write(ahead);
            }
            if !self.table.has_retired() && self.events.len() < BULK {
                return Ok(());
            }
            return self.drain_bulk();
        }
        if self.events.is_empty() && !self.table.has_retired() && !(self.live && self.packets_view)
        {
            return Ok(());
        }
        self.drain_pending()
    }

    /// `drain` for a renderer that takes events in bulk: the events stay where the tracker
    /// wrote them, without a copy each, until enough are waiting.
    #[inline(never)]
    fn drain_bulk(&mut self) -> io::Result<()> {
        if self.table.has_retired() {
            self.hand_over_retired()?;
        }
        if self.events.len() >= BULK || self.placed >= BULK {
            self.hand_over_events()?;
        }
        Ok(())
    }

    fn hand_over_events(&mut self) -> io::Result<()> {
        self.placed = 0;
        self.renderer.events_bulk(&mut self.events)
    }

    fn drain_pending(&mut self) -> io::Result<()> {
        let wrote = !self.events.is_empty();
        if wrote && self.renderer.wants_events() {
            let with_conn = self.renderer.event_needs_connection();
            // A segment's events are mostly about one connection: look it up once.
            let mut header: Option<(u64, Option<ConnHeader>)> = None;
            // By reference, not moved out: see `Threaded::event` on reading an event just
            // written.
            for ev in &self.events {
                let conn = match header {
                    Some((id, h)) if id == ev.conn => h,
                    _ if with_conn => {
                        let h = self.table.get(ev.conn).map(ConnHeader::from);
                        header = Some((ev.conn, h));
                        h
                    }
                    _ => None,
                };
                self.renderer.event(ev, conn.as_ref())?;
            }
            self.events.clear();
        } else {
            self.events.clear();
        }
        if self.table.has_retired() {
            self.hand_over_retired()?;
        }
        if self.live && (wrote || self.packets_view) {
            self.renderer.flush()?;
        }
        Ok(())
    }

    /// Counts and renders the connections the flow table retired, and takes back the boxes
    /// the renderer is done with.
    fn hand_over_retired(&mut self) -> io::Result<()> {
        let mut retired = std::mem::take(&mut self.retired);
        retired.extend(self.table.take_retired());
        let count = !self.renderer.counts_connections();
        for c in retired.drain(..) {
            if count {
                self.summary.count_connection(&c);
            }
            let matched: Vec<&'static str> = self
                .fail_on
                .iter()
                .filter(|k| k.matches(&c))
                .map(|k| k.name())
                .collect();
            if !matched.is_empty() {
                self.summary.failures.push(Failure {
                    id: c.id,
                    first_frame: c.first_frame,
                    client: c.client.to_string(),
                    server: c.server.to_string(),
                    kinds: matched,
                });
            }
            if self.bulk {
                self.renderer.connection_at(c, self.events.len())?;
                self.placed += 1;
            } else if self.renderer.takes_connections() {
                self.renderer.connection_owned(c)?;
            } else {
                self.renderer.connection(&c)?;
                self.spent.push(c);
            }
        }
        self.retired = retired;
        // Boxes come back from an output thread in batches; asking each time would cost a
        // channel poll per packet.
        self.handed_over += 1;
        if self.handed_over % 32 == 0 {
            self.renderer.take_spent(&mut self.spent);
        }
        for c in self.spent.drain(..) {
            self.table.recycle(c);
        }
        Ok(())
    }

    /// The input is over at `end`: every connection still held is closed out.
    fn close_out(&mut self, end: Timestamp) -> io::Result<()> {
        // A few connections at a time, each batch written out before the next is retired.
        while self.table.finish_some(end, &mut self.events, 256) {
            self.drain()?;
        }
        self.drain()?;
        if self.bulk {
            self.hand_over_events()?;
        }
        let t = &self.table;
        self.summary.late_segments = t.late_segments;
        self.summary.evicted = t.evicted;
        self.summary.idle_expired = t.idle_expired;
        self.summary.peak_connections = t.peak_live as u64;
        Ok(())
    }

    /// Closes out at `end` and writes what is written at the end (table, summary).
    fn finish(&mut self, end: Timestamp) -> io::Result<()> {
        self.close_out(end)?;
        self.write_end()
    }

    fn write_end(&mut self) -> io::Result<()> {
        self.summary.failures.sort_by_key(|f| f.id);
        self.renderer.finish(&self.summary)
    }

    /// Takes in the counts and the table rows of another shard, closed out.
    fn absorb(&mut self, other: &mut Pipeline) {
        self.summary.add_shard(&other.summary);
        if let (Some(mine), Some(theirs)) = (self.renderer.table(), other.renderer.table()) {
            mine.merge(theirs);
        }
    }

    /// After the shards are absorbed: connections numbered as one flow table would have.
    fn renumber(&mut self) {
        if let Some(table) = self.renderer.table() {
            let id_of = table.renumber();
            for f in &mut self.summary.failures {
                f.id = id_of(f.first_frame).unwrap_or(f.id);
            }
        }
    }

    /// Analyses `items` in order; false once the output has failed and the run should stop.
    ///
    /// A segment's connection is mostly out of the cache (thousands are alive, touched last
    /// thousands of segments ago), and finding it is a chain of reads: its index entry, its
    /// slot, then the connection. So the index entry of the segment `LOOKUP_AHEAD` places
    /// ahead is asked for, and then, once that entry has arrived, the connection of the one
    /// `CONNECTION_AHEAD` places ahead: the misses overlap with the work on the segments
    /// between.
    fn items(&mut self, items: &[Item]) -> bool {
        for (i, item) in items.iter().enumerate() {
            if let Some(Item::Segment(ahead, spread)) = items.get(i + LOOKUP_AHEAD)
                && self.shard.is_none_or(|s| s.owns(*spread))
            {
                let f = ahead.flags;
                self.table.prefetch_lookup(*spread, f.syn() && !f.ack());
            }
            if let Some(Item::Segment(_, spread)) = items.get(i + CONNECTION_AHEAD)
                && self.shard.is_none_or(|s| s.owns(*spread))
            {
                self.table.prefetch_connection(*spread);
            }
            if !self.item_ref(item) {
                return false;
            }
        }
        true
    }

    /// Runs the items of every batch from `rx` through the analysis, until the input ends or
    /// the output fails; `connections` counts the connections opened, for the progress line.
    fn run(&mut self, rx: BatchReceiver, connections: &AtomicU64) {
        let mut counted = 0;
        while let Some(batch) = rx.recv() {
            if !self.items(&batch) {
                break;
            }
            rx.give_back(batch);
            let seen = self.table.connections_seen;
            connections.fetch_add(seen - counted, Ordering::Relaxed);
            counted = seen;
        }
        // Dropping the receiver here stops a reader still at work (the output failed).
    }
}

/// How many segments ahead the flow table is asked to fetch a segment's index entries (the
/// few hundred nanoseconds memory takes), and then its connection (see `Pipeline::items`).
const LOOKUP_AHEAD: usize = 4;
const CONNECTION_AHEAD: usize = 1;

/// One of the analyses of a sharded run. Each reads every batch but analyses only the
/// connections whose 4-tuple hashes to it, so that they share no state; every other segment
/// only moves its clock, so that its deadlines (idle timeouts, TIME_WAIT ends) fall exactly
/// where one flow table's would. The hash's low four bits make 16 buckets; a shard owns the
/// buckets `from..to`, so that shares need not be equal.
#[derive(Clone, Copy, Debug)]
struct Shard {
    from: u64,
    to: u64,
}

impl Shard {
    /// Shard `index` of `count` equal ones (`count` at most 16).
    fn equal(index: u64, count: u64) -> Shard {
        Shard {
            from: 16 * index / count,
            to: 16 * (index + 1) / count,
        }
    }

    /// Is the connection whose 4-tuple spreads to `spread` this shard's?
    #[inline]
    fn owns(&self, spread: u64) -> bool {
        (self.from..self.to).contains(&(spread & 15))
    }
}

/// The buckets (of 16) the reading thread analyses itself when the capture is cheap to read:
/// measured on the 4.4 M-packet benchmark (headers only), the reading thread with 4 or 5 of
/// them and a second thread with the rest took 0.51 s against 0.57 s for the reader and two
/// shards of 8 (medians of alternating runs); 6 took 0.55 s. Since decoding got cheaper, 5
/// balance the two threads' instructions (callgrind, 657 k packets: 621 M and 596 M; with 4,
/// 668 M and 549 M).
const READER_BUCKETS: u64 = 5;

fn color_enabled(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

fn make_renderer(opts: &Options, nanosecond: bool) -> Box<dyn Renderer + Send> {
    let out = BufWriter::with_capacity(1 << 16, io::stdout());
    let tf = TimeFormatter::new(opts.time, nanosecond);
    let mut table = ConnTable::new(tf);
    table.fit_terminal = io::stdout().is_terminal();
    let tw = Duration::from_secs_f64(opts.time_wait);
    match opts.format {
        Format::Text => Box::new(TextRenderer::new(
            out,
            tf,
            table,
            tw,
            color_enabled(opts.color),
        )),
        Format::Table => Box::new(TableRenderer::new(out, table)),
        Format::Json => Box::new(JsonRenderer::new(out)),
        Format::Zeek => Box::new(crate::render::zeek::ZeekRenderer::new(out)),
    }
}

/// `threaded`: render on a thread of its own (reading files in the text or JSON format).
fn pipeline(opts: &Options, nanosecond: bool, threaded: bool, shard: Option<Shard>) -> Pipeline {
    // A shard holds its share of the connections: its buckets of 16.
    let buckets = shard.map_or(16, |s| (s.to - s.from) as usize);
    let tw = Duration::from_secs_f64(opts.time_wait);
    let renderer = if threaded {
        Box::new(Threaded::new(make_renderer(opts, nanosecond)))
    } else {
        make_renderer(opts, nanosecond)
    };
    let config = FlowConfig {
        tracker: TrackerConfig {
            time_wait: tw,
            zeek: matches!(opts.format, Format::Json | Format::Zeek),
        },
        idle_timeout: Duration::from_secs_f64(opts.idle_timeout),
        handshake_timeout: Duration::from_secs_f64(opts.handshake_timeout),
        max_connections: (opts.max_connections.saturating_mul(buckets) / 16).max(1),
        // What `drain_pending` and `analyse` look connections up for.
        find_by_id: opts.packets || (renderer.wants_events() && renderer.event_needs_connection()),
        ..FlowConfig::default()
    };
    let bulk = renderer.takes_events_in_bulk();
    Pipeline {
        table: FlowTable::new(config),
        shard,
        renderer,
        summary: Summary::default(),
        events: Vec::new(),
        spent: Vec::new(),
        handed_over: 0,
        retired: Vec::new(),
        packets_view: opts.packets,
        fail_on: opts.fail_on.clone(),
        live: false,
        output_error: None,
        bulk,
        placed: 0,
        prefetch_write: crate::prefetch::can_prefetch_write(),
    }
}

fn error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("tcpscope: {msg}");
    ExitCode::from(EXIT_ERROR)
}

pub fn run(cli: Cli) -> ExitCode {
    for (name, v) in [
        ("--time-wait", cli.opts.time_wait),
        ("--idle-timeout", cli.opts.idle_timeout),
        ("--handshake-timeout", cli.opts.handshake_timeout),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return error(format!("{name} must be a number of seconds, 0 or more"));
        }
    }
    match &cli.command {
        Command::Read { words } => run_read(&cli.opts, words),
        Command::Live {
            interface,
            filter,
            count,
            duration,
            write,
        } => run_live(
            &cli.opts,
            interface,
            filter,
            *count,
            *duration,
            write.as_deref(),
        ),
    }
}

/// The exit status once output is written: 2 for a read error, 1 for `--fail-on` matches.
fn conclude(p: &mut Pipeline, read_error: Option<String>) -> ExitCode {
    if let Some(e) = p.output_error.take()
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        return error(format!("cannot write the output: {e}"));
    }
    if let Some(e) = read_error {
        return error(e);
    }
    if !p.summary.failures.is_empty() {
        let list: Vec<String> = p
            .summary
            .failures
            .iter()
            .map(|f| {
                let (id, c, s) = (f.id, &f.client, &f.server);
                format!("#{id} {c} → {s} ({})", f.kinds.join(", "))
            })
            .collect();
        eprintln!(
            "tcpscope: --fail-on matched {} connection(s): {}",
            list.len(),
            list.join("; ")
        );
        return ExitCode::from(EXIT_FAIL_ON);
    }
    ExitCode::from(EXIT_OK)
}

fn run_read(opts: &Options, words: &[String]) -> ExitCode {
    let (paths, filter_words) = split_inputs(words);
    if paths.iter().filter(|p| *p == "-").count() > 1 {
        return error("stdin (-) can be read only once");
    }
    let filter_expr = filter_words.join(" ");
    // Compiled here first so that a typo is a clean one-line error before any output; the
    // reading thread compiles its own (libpcap's programs stay on the thread that made them).
    if !filter_expr.is_empty()
        && let Err(e) = PacketFilter::new(&filter_expr)
    {
        return error(e);
    }
    // Open the first file before any output, so a wrong path is a clean one-line error.
    let first = match CaptureFile::open(&paths[0]) {
        Ok(f) => f,
        Err(e) => return error(e),
    };
    let threaded = !opts.packets && matches!(opts.format, Format::Text | Format::Json);
    let nanosecond = first.nanosecond();
    let shards = shard_count(opts);
    let connections = Arc::new(AtomicU64::new(0));
    // Two shards make three threads with the reader, on two cores. When the file is cheap to
    // read (headers only, pcap or pcapng), the reading thread analyses a share itself instead
    // and one thread takes the rest: two threads, no core to share (the benchmark: 0.51 s
    // against 0.55 s in pcap, 0.52 s against 0.58 s in pcapng). Reading full-size packets
    // costs as much as analysing them, and there the reader and two equal shards are faster
    // (0.65 s against 0.79 s on the benchmark's full-size capture).
    let reader_share = shards == 2 && first.headers_only();
    let (mut local, main_shard) = if reader_share {
        let mine = Shard {
            from: 0,
            to: READER_BUCKETS,
        };
        let rest = Shard {
            from: READER_BUCKETS,
            to: 16,
        };
        (
            Some(pipeline(opts, nanosecond, false, Some(mine))),
            Some(rest),
        )
    } else {
        (None, (shards > 1).then(|| Shard::equal(0, shards)))
    };
    // One analysis thread gets a core of its own (see `cores.rs`), unless decompressing makes
    // the reader the longest thread (a gzip-compressed capture: the reader took 0.85–1.0 CPU
    // seconds on the benchmark's, the analysis 0.6, and JSON was 3% slower with the reader
    // and the output thread kept to one core). Before the output thread starts (in
    // `pipeline`), so that it keeps off this core.
    if shards == 1 && !first.compressed() {
        crate::cores::reserve_for_analysis();
    }
    // The reading thread faults in the heap this thread grows (see `heap_prefault.rs`),
    // when it has time to spare: with one analysis thread, or beside its own share. For JSON
    // and Zeek the heap is extended 32 MiB at a time: on the benchmark twice in the run
    // instead of 11 times 4 MiB (and 3 times given back 2 MiB), the analysis thread's time
    // in `clear_page_erms` from 1–44 ms to 0–2 ms (JSON), with the same peak memory (but 24
    // MiB more in the answered SYN flood, 714 → 738 MiB: freed memory up to the pad stays).
    // The others keep 2 MiB: with 32, the table's two analysing threads kept 14 MiB more (97
    // → 111 MiB), and text's peak memory was 117 MiB instead of 94–96, for no time gained.
    const PAD_LARGE: usize = 32 << 20;
    const PAD_SMALL: usize = 2 << 20;
    if shards == 1 && !first.compressed() {
        let large = matches!(opts.format, Format::Json | Format::Zeek);
        crate::heap_prefault::enable(if large { PAD_LARGE } else { PAD_SMALL });
    } else if reader_share {
        crate::heap_prefault::enable(PAD_SMALL);
    }
    let mut p = pipeline(opts, nanosecond, threaded, main_shard);
    let receivers = if reader_share { 1 } else { shards };
    // With the reader and two shards (three threads on two cores): when the scheduler parks
    // a thread for a time slice (milliseconds), the reader must be able to go on, or a core
    // idles; and the further ahead the reader may run, the sooner it is done and leaves both
    // cores to the shards. Measured on the 4.4 M-packet benchmark (medians of alternating
    // runs): 4 batches in flight 0.72 s against 0.66 s for 32; in another series 32 0.61 s,
    // 64 0.57 s, 128 0.59 s, 256 0.55 s; on the AMD EPYC, full-size packets, 8 0.74 s, 32
    // 0.70 s, 256 0.63 s. 256 batches are at most 29 MB, whatever the capture's length.
    // When the reader analyses a share itself (two threads), running ahead gives no core
    // away, and 29 MB of batches cycling through the cache slow both threads: on the AMD EPYC,
    // headers only, 2 to 16 in flight took 0.53 s against 0.58 s for 256 (0.91 against
    // 0.99 CPU seconds), and 0.57 against 0.61 s in pcapng. One shard gains nothing from
    // depth (JSON and text measured the same), and JSON's peak memory would grow, so it
    // keeps 4.
    let depth = if reader_share {
        16
    } else if shards > 1 {
        256
    } else {
        4
    };
    let (mut tx, mut rxs) = batch_channel(depth, receivers as usize);
    let reader = {
        let rest: Vec<String> = paths[1..].to_vec();
        let connections = connections.clone();
        std::thread::spawn(move || {
            crate::cores::keep_off_analysis_core();
            let mut counted = 0;
            let read = read_files(
                first,
                rest,
                &filter_expr,
                &mut tx,
                &connections,
                &mut |items: &[Item]| {
                    crate::heap_prefault::fault_in_growth();
                    let Some(q) = local.as_mut() else {
                        return true;
                    };
                    let more = q.items(items);
                    let seen = q.table.connections_seen;
                    connections.fetch_add(seen - counted, Ordering::Relaxed);
                    counted = seen;
                    more
                },
            );
            // The reading thread's own shard is closed out here, at the time the main thread
            // will close its own out at (the last packet's), while the analysis thread is
            // still on its last batches (the table's end 2 ms shorter on the benchmark).
            let end = read.0.last_ts.unwrap_or_default();
            let local = local.map(|mut q| {
                let closed = q.close_out(end);
                (q, closed)
            });
            (read, local)
        })
    };
    let helpers: Vec<_> = (1..receivers)
        .zip(rxs.drain(1..))
        .map(|(index, rx)| {
            let mut q = pipeline(opts, nanosecond, false, Some(Shard::equal(index, shards)));
            let connections = connections.clone();
            std::thread::spawn(move || {
                q.run(rx, &connections);
                q
            })
        })
        .collect();
    p.run(rxs.pop().expect("one receiver per shard"), &connections);
    crate::cores::release_analysis_core();
    let ((counts, mut read_error), local) = reader.join().unwrap_or_else(|_| {
        let failed = Some("the reading thread failed".into());
        ((IngestCounts::default(), failed), None)
    });
    p.summary.add_ingest(&counts);
    let end = p.summary.last_ts.unwrap_or_default();
    let mut closed = p.close_out(end);
    // The other shards: the reading thread's (closed out already), or the helpers'.
    let mut others: Vec<(Pipeline, Option<io::Result<()>>)> = local
        .into_iter()
        .map(|(q, closed)| (q, Some(closed)))
        .collect();
    for helper in helpers {
        match helper.join() {
            Ok(q) => others.push((q, None)),
            Err(_) => read_error = Some("an analysis thread failed".into()),
        }
    }
    for (mut q, closed_out) in others {
        if let Some(e) = q.output_error.take() {
            closed = Err(e);
        }
        closed = closed.and(closed_out.unwrap_or_else(|| q.close_out(end)));
        p.absorb(&mut q);
        // Not freed, as `p` is not below: freeing the reading thread's shard (its flow table,
        // connections and spare boxes) one allocation at a time took 3.6–4.0 ms of the
        // table's end.
        std::mem::forget(q);
    }
    if shards > 1 {
        p.renumber();
    }
    p.summary.read_error = read_error.clone();
    if p.output_error.is_none()
        && let Err(e) = closed.and_then(|()| p.write_end())
    {
        p.output_error = Some(e);
    }
    let status = conclude(&mut p, read_error);
    // Everything is written and flushed. Freeing the flow table, the spare connections and
    // the renderer's rows one allocation at a time took the analysis thread 10 ms at the end
    // of the benchmark's JSON run (2% of it); the kernel takes the memory back at exit at
    // once.
    std::mem::forget(p);
    status
}

/// How many analysis threads a run of `read` uses. Only the table is sharded: it is written
/// at the end, in connection order, so the shards' rows merge into exactly what one thread
/// would have written. Events (text, JSON) come in time order across connections, and each
/// already has an output thread beside the analysis. A `--max-connections` below the
/// default keeps one flow table, so that which connection is evicted stays exact.
fn shard_count(opts: &Options) -> u64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let table = opts.format == Format::Table && !opts.packets;
    if table && cores >= 2 && opts.max_connections >= FlowConfig::default().max_connections {
        2
    } else {
        1
    }
}

/// The reading thread: every file in turn through the filter and the decoder, in batches to
/// the analysis. Returns what it counted and why it stopped early, if it did.
/// `local`: the share of the analysis that runs on this thread, given every batch after the
/// other analyses are (false when it stops).
fn read_files(
    first: CaptureFile,
    rest: Vec<String>,
    filter_expr: &str,
    tx: &mut BatchSender,
    connections: &AtomicU64,
    local: &mut dyn FnMut(&[Item]) -> bool,
) -> (IngestCounts, Option<String>) {
    let filter = if filter_expr.is_empty() {
        None
    } else {
        match PacketFilter::new(filter_expr) {
            Ok(f) => Some(f),
            Err(e) => return (IngestCounts::default(), Some(e)),
        }
    };
    let mut ingest = Ingest::new(filter);
    let mut progress = Progress::new();
    let mut stop_reason = None;
    let mut next = Some(first);
    let mut rest = rest.iter();
    while let Some(mut file) = next.take() {
        let mut analysis_gone = false;
        let r = file.read_all(&mut |pkt| {
            if let Err(e) = ingest.packet(&pkt, tx.batch()) {
                stop_reason = Some(e);
                return Flow::Stop;
            }
            progress.tick(ingest.counts.packets, connections.load(Ordering::Relaxed));
            let flow = tx.send_if_full_with(local);
            analysis_gone = flow == Flow::Stop;
            flow
        });
        if let Err(e) = r {
            stop_reason = Some(e.to_string());
        }
        if stop_reason.is_some() || analysis_gone {
            break;
        }
        next = match rest.next().map(|path| CaptureFile::open(path)) {
            Some(Ok(f)) => Some(f),
            Some(Err(e)) => {
                stop_reason = Some(e.to_string());
                None
            }
            None => None,
        };
    }
    tx.send_with(local);
    progress.finish();
    (ingest.counts, stop_reason)
}

fn run_live(
    opts: &Options,
    iface: &str,
    filter: &[String],
    count: Option<u64>,
    duration: Option<f64>,
    write: Option<&str>,
) -> ExitCode {
    let expr = filter.join(" ");
    let mut cap = match LiveCapture::open(iface, (!expr.is_empty()).then_some(expr.as_str()), write)
    {
        Ok(c) => c,
        Err(e) => return error(e),
    };
    let stop = Arc::new(cap.stopper());
    {
        let stop = stop.clone();
        if let Err(e) = ctrlc::set_handler(move || stop()) {
            return error(format!("cannot install the Ctrl-C handler: {e}"));
        }
    }
    if let Some(secs) = duration {
        if !(secs.is_finite() && secs > 0.0) {
            return error("--duration must be a positive number of seconds");
        }
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            stop();
        });
    }
    eprintln!(
        "tcpscope: capturing on {iface}{}; Ctrl-C to stop",
        if expr.is_empty() {
            String::new()
        } else {
            format!(" ({expr})")
        }
    );
    let mut p = pipeline(opts, true, false, None);
    p.live = true;
    // The capture runs on its own thread, decoding into batches, so that the analysis and the
    // output never make the kernel wait (and drop). A batch goes over when full, and when a
    // few milliseconds have passed, so events still show as they happen.
    let (mut tx, mut rxs) = batch_channel(64, 1);
    let capture = std::thread::spawn(move || {
        let mut ingest = Ingest::new(None);
        let mut last_send = Instant::now();
        let r = cap.run(&mut |pkt| {
            if let Some(pkt) = pkt {
                // No filter here (the kernel applies it), so this cannot fail.
                let _ = ingest.packet(&pkt, tx.batch());
                if count.is_some_and(|n| ingest.counts.packets >= n) {
                    return Flow::Stop;
                }
            }
            if tx.batch().len() >= LIVE_BATCH || last_send.elapsed() >= LIVE_LATENCY {
                last_send = Instant::now();
                tx.send()
            } else {
                Flow::Continue
            }
        });
        tx.send();
        (r, cap.stats(), ingest.counts)
    });
    p.run(rxs.pop().expect("one receiver"), &AtomicU64::new(0));
    if p.output_error.is_some() {
        stop();
    }
    let (r, stats, counts) = capture.join().unwrap_or_else(|_| {
        (
            Err(SourceError::Live("the capture thread failed".into())),
            None,
            IngestCounts::default(),
        )
    });
    p.summary.add_ingest(&counts);
    let read_error = r.err().map(|e| e.to_string());
    p.summary.live = stats;
    // Live states are reported as of now, not as of the last packet.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| Timestamp(d.as_nanos() as u64))
        .unwrap_or_default();
    let end = p.summary.last_ts.map_or(now, |l| l.max(now));
    if p.output_error.is_none()
        && let Err(e) = p.finish(end)
    {
        p.output_error = Some(e);
    }
    conclude(&mut p, read_error)
}
