//! The run: source → decode → flow table → tracker → events → renderer, then the exit status.

use std::io::{self, BufWriter, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::{Cli, ColorChoice, Command, Options, split_inputs};
use crate::decode::Decoder;
use crate::event::Event;
use crate::flow::{FlowConfig, FlowTable, Routed};
use crate::progress::Progress;
use crate::render::json::JsonRenderer;
use crate::render::table::{ConnTable, TableRenderer};
use crate::render::text::TextRenderer;
use crate::render::threaded::Threaded;
use crate::render::{ConnHeader, Format, Late, Renderer};
use crate::source::file::CaptureFile;
use crate::source::filter::PacketFilter;
use crate::source::live::LiveCapture;
use crate::source::{Flow, RawPacket, SourceError};
use crate::summary::Summary;
use crate::tcp::Connection;
use crate::tcp::conn::TrackerConfig;
use crate::tcp::report::FailOn;
use crate::time::{Duration, TimeFormatter, Timestamp};

/// A live packet copied out of libpcap's buffer, on its way to the analysis thread.
struct CopiedPacket {
    ts: Timestamp,
    wire_len: u32,
    link: crate::decode::LinkKind,
    data: Vec<u8>,
}

/// Exit statuses (see `--help`).
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAIL_ON: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// Everything between a packet and the renderer.
struct Pipeline {
    decoder: Decoder,
    table: FlowTable,
    renderer: Box<dyn Renderer>,
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
    filter: Option<PacketFilter>,
    frame: u64,
    /// Flush after each packet that produced output (live capture).
    live: bool,
    /// Set when writing the output failed (a closed pipe ends the run quietly).
    output_error: Option<io::Error>,
    filter_error: Option<String>,
}

impl Pipeline {
    fn packet(&mut self, p: RawPacket) -> Flow {
        self.frame += 1;
        self.summary.packets += 1;
        if self.frame == 1 {
            self.renderer.start(p.ts);
        }
        self.summary.count_packet_time(p.ts);
        let r = self.analyse(&p);
        if let Err(e) = r {
            self.output_error = Some(e);
            return Flow::Stop;
        }
        if self.filter_error.is_some() {
            return Flow::Stop;
        }
        Flow::Continue
    }

    fn analyse(&mut self, p: &RawPacket) -> io::Result<()> {
        if let Some(f) = self.filter.as_mut() {
            match f.matches(p.link, p.data) {
                Ok(true) => {}
                Ok(false) => {
                    self.summary.filtered_out += 1;
                    return Ok(());
                }
                Err(e) => {
                    self.filter_error = Some(e);
                    return Ok(());
                }
            }
        }
        // Deadlines due before this packet (TIME_WAIT expiries) come first in the timeline.
        self.table.advance(p.ts, &mut self.events);
        self.drain()?;
        match self.decoder.decode(p.link, p.data, p.ts, self.frame) {
            Err(skip) => self.summary.count_skip(skip),
            Ok(seg) => {
                self.summary.tcp_segments += 1;
                match self.table.segment(&seg, &mut self.events) {
                    Routed::Live(id, obs) => {
                        if self.packets_view
                            && let Some(c) = self.table.get(id)
                        {
                            self.renderer.segment(&seg, c, &obs)?;
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
                            self.renderer.late_segment(&seg, &late)?;
                        }
                    }
                }
                self.drain()?;
            }
        }
        Ok(())
    }

    /// Renders pending events, then the connections that are over.
    fn drain(&mut self) -> io::Result<()> {
        let wrote = !self.events.is_empty();
        if self.renderer.wants_events() {
            let with_conn = self.renderer.event_needs_connection();
            for ev in self.events.drain(..) {
                let conn = if with_conn {
                    self.table.get(ev.conn).map(ConnHeader::from)
                } else {
                    None
                };
                self.renderer.event(&ev, conn.as_ref())?;
            }
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
        for c in retired.drain(..) {
            self.summary.count_connection(&c);
            let matched: Vec<&'static str> = self
                .fail_on
                .iter()
                .filter(|k| k.matches(&c))
                .map(|k| k.name())
                .collect();
            if !matched.is_empty() {
                self.summary.failures.push((
                    c.id,
                    c.client.to_string(),
                    c.server.to_string(),
                    matched,
                ));
            }
            if self.renderer.takes_connections() {
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

    /// The input is over at `end`.
    fn finish(&mut self, end: Timestamp) -> io::Result<()> {
        // A few connections at a time, each batch written out before the next is retired.
        while self.table.finish_some(end, &mut self.events, 256) {
            self.drain()?;
        }
        self.drain()?;
        let t = &self.table;
        self.summary.late_segments = t.late_segments;
        self.summary.evicted = t.evicted;
        self.summary.idle_expired = t.idle_expired;
        self.summary.peak_connections = t.peak_live as u64;
        self.renderer.finish(&self.summary)
    }
}

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

/// `threaded`: render on a second thread (reading files in the text or JSON format).
fn pipeline(
    opts: &Options,
    nanosecond: bool,
    filter: Option<PacketFilter>,
    threaded: bool,
) -> Pipeline {
    let tw = Duration::from_secs_f64(opts.time_wait);
    let config = FlowConfig {
        tracker: TrackerConfig { time_wait: tw },
        idle_timeout: Duration::from_secs_f64(opts.idle_timeout),
        handshake_timeout: Duration::from_secs_f64(opts.handshake_timeout),
        max_connections: opts.max_connections.max(1),
        ..FlowConfig::default()
    };
    Pipeline {
        decoder: Decoder::default(),
        table: FlowTable::new(config),
        renderer: if threaded {
            Box::new(Threaded::new(make_renderer(opts, nanosecond)))
        } else {
            make_renderer(opts, nanosecond)
        },
        summary: Summary::default(),
        events: Vec::new(),
        spent: Vec::new(),
        handed_over: 0,
        retired: Vec::new(),
        packets_view: opts.packets,
        fail_on: opts.fail_on.clone(),
        filter,
        frame: 0,
        live: false,
        output_error: None,
        filter_error: None,
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
            .map(|(id, c, s, kinds)| format!("#{id} {c} → {s} ({})", kinds.join(", ")))
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
    let filter = if filter_words.is_empty() {
        None
    } else {
        match PacketFilter::new(&filter_words.join(" ")) {
            Ok(f) => Some(f),
            Err(e) => return error(e),
        }
    };
    // Open the first file before any output, so a wrong path is a clean one-line error.
    let first = match CaptureFile::open(&paths[0]) {
        Ok(f) => f,
        Err(e) => return error(e),
    };
    let threaded = !opts.packets && matches!(opts.format, Format::Text | Format::Json);
    let mut p = pipeline(opts, first.nanosecond(), filter, threaded);
    let mut progress = Progress::new();
    let mut read_error = None;
    let mut next = Some(first);
    let mut rest = paths[1..].iter();
    while let Some(mut file) = next.take() {
        let r = file.read_all(&mut |pkt| {
            let flow = p.packet(pkt);
            progress.tick(p.summary.packets, p.table.connections_seen);
            flow
        });
        if let Err(e) = r {
            read_error = Some(e.to_string());
            break;
        }
        if let Some(e) = p.filter_error.take() {
            read_error = Some(e);
            break;
        }
        if p.output_error.is_some() {
            break;
        }
        next = match rest.next().map(|path| CaptureFile::open(path)) {
            Some(Ok(f)) => Some(f),
            Some(Err(e)) => {
                read_error = Some(e.to_string());
                None
            }
            None => None,
        };
    }
    progress.finish();
    p.summary.read_error = read_error.clone();
    let end = p.summary.last_ts.unwrap_or_default();
    if p.output_error.is_none()
        && let Err(e) = p.finish(end)
    {
        p.output_error = Some(e);
    }
    conclude(&mut p, read_error)
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
    let mut p = pipeline(opts, true, None, false);
    p.live = true;
    // The capture runs on its own thread and only copies packets out of libpcap's ring, so
    // the analysis and the output never make the kernel wait (and drop).
    let (tx, rx) = std::sync::mpsc::sync_channel::<CopiedPacket>(1 << 16);
    let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let capture = std::thread::spawn(move || {
        let mut captured = 0u64;
        let r = cap.run(&mut |pkt| {
            let mut data = recycle_rx.try_recv().unwrap_or_default();
            data.clear();
            data.extend_from_slice(pkt.data);
            let copied = CopiedPacket {
                ts: pkt.ts,
                wire_len: pkt.wire_len,
                link: pkt.link,
                data,
            };
            captured += 1;
            match tx.send(copied) {
                Ok(()) if count.is_none_or(|n| captured < n) => Flow::Continue,
                _ => Flow::Stop,
            }
        });
        (r, cap.stats())
    });
    for c in rx.iter() {
        let flow = p.packet(RawPacket {
            ts: c.ts,
            wire_len: c.wire_len,
            data: &c.data,
            link: c.link,
        });
        let _ = recycle_tx.send(c.data);
        if flow == Flow::Stop {
            stop();
            break;
        }
    }
    let (r, stats) = capture.join().unwrap_or_else(|_| {
        (
            Err(SourceError::Live("the capture thread failed".into())),
            None,
        )
    });
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
