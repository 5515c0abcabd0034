//! Rendering on a second thread, for `read` in the text and JSON formats: the analysis hands
//! events and finished connections over in batches and goes on, while the other core turns
//! them into words or JSON. JSON's events need no connection header, and go over in bulk:
//! the list the tracker wrote them into is handed over whole every few hundred events, with
//! the finished connections placed among them, instead of each event being copied into a
//! message (the analysis thread 3.6% fewer instructions, 8% less CPU time). (`--packets`
//! and live capture render in place: a segment line needs the connection as it is at that
//! packet.)

use std::io;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use crate::event::Event;
use crate::prefetch::prefetch;
use crate::render::{ConnHeader, Renderer};
use crate::summary::Summary;
use crate::tcp::Connection;
use crate::time::Timestamp;

/// What the analysis hands the output thread. An event's connection header travels apart,
/// once for a run of events with the same one: beside every event it doubled a message
/// (144 bytes, where 88 do), and batches are written on one core and read on the other.
enum Msg {
    Start(Timestamp),
    /// The header of the events that follow with `true`.
    Header(ConnHeader),
    /// An event, and whether it comes with the last header.
    Event(Event, bool),
    Connection(Box<Connection>),
    /// Events without headers (JSON), taken whole from the analysis, and the finished
    /// connections among them: each after the events before its place.
    Bulk(Vec<Event>, Placed),
}

/// Finished connections, each with its place among the events of the same [`Msg::Bulk`].
type Placed = Vec<(usize, Box<Connection>)>;

/// Messages are sent in batches of this many.
const BATCH: usize = 512;

/// What the output thread hands back once used: batches and connections are freed (or
/// reused) on the analysis thread that made them, so the two threads never contend for the
/// allocator's lock.
enum Spent {
    Batch(Vec<Msg>),
    Connection(Box<Connection>),
    /// A bulk's lists, emptied.
    Bulk(Vec<Event>, Placed),
}

/// Calls `f` on every connection of a batch.
fn each_connection(batch: &[Msg], mut f: impl FnMut(&Connection)) {
    for m in batch {
        match m {
            Msg::Connection(c) => f(c),
            Msg::Bulk(_, placed) => placed.iter().for_each(|(_, c)| f(c)),
            _ => {}
        }
    }
}

/// What the output thread returns: the renderer, and its count of the connections.
type Rendered = (Box<dyn Renderer + Send>, Summary);

pub struct Threaded {
    batch: Vec<Msg>,
    tx: Option<SyncSender<Vec<Msg>>>,
    spent: Receiver<Spent>,
    spare_batches: Vec<Vec<Msg>>,
    /// Connections the output thread is done with, until the analysis asks for them.
    #[allow(clippy::vec_box)]
    returned: Vec<Box<Connection>>,
    worker: Option<JoinHandle<io::Result<Rendered>>>,
    /// Batches allocated so far (beyond the first).
    #[cfg(test)]
    batches_made: usize,
    wants_events: bool,
    event_needs_connection: bool,
    /// The header last handed over (see [`Msg`]).
    last_header: Option<ConnHeader>,
    /// Events go over in bulk (see [`Renderer::takes_events_in_bulk`]): the connections
    /// placed among the events not yet handed over, and emptied lists to reuse.
    bulk: bool,
    placed: Placed,
    spare_events: Vec<Vec<Event>>,
    spare_placed: Vec<Placed>,
}

impl Threaded {
    pub fn new(inner: Box<dyn Renderer + Send>) -> Threaded {
        let (tx, rx): (SyncSender<Vec<Msg>>, Receiver<Vec<Msg>>) = sync_channel(4);
        let (spent_tx, spent): (Sender<Spent>, Receiver<Spent>) = channel();
        let wants_events = inner.wants_events();
        let event_needs_connection = inner.event_needs_connection();
        let worker = std::thread::spawn(move || {
            crate::cores::keep_off_analysis_core();
            let mut r = inner;
            // Counting a finished connection reads most of it. The analysis thread would read
            // it for that alone, from memory, after seconds of packet time (its retirement);
            // here it has just been read to render it.
            let mut counted = Summary::default();
            let mut header = None;
            // A finished connection: written, counted, and its box given back.
            let mut finished = |r: &mut Box<dyn Renderer + Send>, c: Box<Connection>| {
                r.connection(&c)?;
                counted.count_connection(&c);
                let _ = spent_tx.send(Spent::Connection(c));
                io::Result::Ok(())
            };
            // Waits by polling, so that the analysis's `send` need not wake this thread.
            while let Some(mut batch) = crate::handoff::recv(&rx) {
                // The batch's connections were last written on the other core: asked for
                // all at once (a few dozen, tens of kilobytes), they come in while the
                // events before them are written.
                each_connection(&batch, |c| {
                    prefetch(c);
                    if let Some(z) = &c.zeek {
                        prefetch(&**z);
                    }
                });
                // Then the RTT samples they point to (for the median). Finding them waits for
                // the first connection to come in, by when the others are on their way.
                each_connection(&batch, |c| {
                    c.ep.iter().for_each(|e| e.analysis.prefetch_rtt_samples())
                });
                for m in batch.drain(..) {
                    match m {
                        Msg::Start(t) => r.start(t),
                        Msg::Header(h) => header = Some(h),
                        Msg::Event(ev, with_header) => {
                            r.event(&ev, header.as_ref().filter(|_| with_header))?
                        }
                        Msg::Connection(c) => finished(&mut r, c)?,
                        Msg::Bulk(mut events, mut placed) => {
                            let mut placed_iter = placed.drain(..).peekable();
                            for (i, ev) in events.iter().enumerate() {
                                while let Some((_, c)) = placed_iter.next_if(|(at, _)| *at == i) {
                                    finished(&mut r, c)?;
                                }
                                r.event(ev, None)?;
                            }
                            for (_, c) in placed_iter {
                                finished(&mut r, c)?;
                            }
                            events.clear();
                            let _ = spent_tx.send(Spent::Bulk(events, placed));
                        }
                    }
                }
                let _ = spent_tx.send(Spent::Batch(batch));
            }
            Ok((r, counted))
        });
        Threaded {
            batch: Vec::with_capacity(BATCH),
            tx: Some(tx),
            spent,
            spare_batches: Vec::new(),
            returned: Vec::new(),
            worker: Some(worker),
            #[cfg(test)]
            batches_made: 0,
            wants_events,
            event_needs_connection,
            last_header: None,
            bulk: wants_events && !event_needs_connection,
            placed: Vec::new(),
            spare_events: Vec::new(),
            spare_placed: Vec::new(),
        }
    }

    fn push(&mut self, m: Msg) -> io::Result<()> {
        self.batch.push(m);
        if self.batch.len() >= BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        // Take back the batches the output thread has written before making a new one: the
        // analysis asks for spent connections only when it retires some, and a stretch of
        // events without retirements (a flood's retransmissions) would otherwise pile
        // written batches up in the channel back, without bound.
        if self.spare_batches.is_empty() {
            self.collect_spent();
        }
        let fresh = self.spare_batches.pop().unwrap_or_else(|| {
            #[cfg(test)]
            {
                self.batches_made += 1;
            }
            Vec::with_capacity(BATCH)
        });
        let batch = std::mem::replace(&mut self.batch, fresh);
        match &self.tx {
            Some(tx) if tx.send(batch).is_ok() => Ok(()),
            // The worker has stopped: its error (a closed pipe, usually) comes from `finish`.
            _ => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
        }
    }

    /// Receives what the output thread is done with: batches to reuse (a few; the rest are
    /// freed), and connections for the analysis to take.
    fn collect_spent(&mut self) {
        while let Ok(s) = self.spent.try_recv() {
            match s {
                Spent::Batch(b) if self.spare_batches.len() < 8 => self.spare_batches.push(b),
                Spent::Batch(_) => {}
                Spent::Connection(c) => self.returned.push(c),
                Spent::Bulk(events, placed) if self.spare_events.len() < 8 => {
                    self.spare_events.push(events);
                    self.spare_placed.push(placed);
                }
                Spent::Bulk(..) => {}
            }
        }
    }

    /// Stops the worker and returns the renderer and its count of the connections (or the
    /// error that stopped it).
    fn join(&mut self) -> io::Result<Rendered> {
        self.tx = None;
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(r)) => r,
            _ => Err(io::Error::other("the output thread failed")),
        }
    }
}

impl Renderer for Threaded {
    fn start(&mut self, first: Timestamp) {
        let _ = self.push(Msg::Start(first));
    }
    fn wants_events(&self) -> bool {
        self.wants_events
    }
    fn event_needs_connection(&self) -> bool {
        self.event_needs_connection
    }
    fn event(&mut self, ev: &Event, conn: Option<&ConnHeader>) -> io::Result<()> {
        if let Some(h) = conn
            && self.last_header != Some(*h)
        {
            self.last_header = Some(*h);
            self.push(Msg::Header(*h))?;
        }
        // The tracker wrote the event field by field a moment ago. A copy of it whole read
        // its time and connection id with one 16-byte load, which waited for the two 8-byte
        // stores to land (a failed store-to-load forward); read one by one, each comes
        // straight from its store. `black_box` keeps the compiler from merging the two loads.
        let ev = Event {
            ts: *std::hint::black_box(&ev.ts),
            conn: *std::hint::black_box(&ev.conn),
            from: ev.from,
            kind: ev.kind.clone(),
            states: ev.states,
        };
        self.push(Msg::Event(ev, conn.is_some()))
    }
    fn connection(&mut self, c: &Connection) -> io::Result<()> {
        self.push(Msg::Connection(Box::new(c.clone())))
    }
    fn takes_connections(&self) -> bool {
        true
    }
    fn counts_connections(&self) -> bool {
        true
    }
    fn connection_owned(&mut self, c: Box<Connection>) -> io::Result<()> {
        self.push(Msg::Connection(c))
    }
    fn takes_events_in_bulk(&self) -> bool {
        self.bulk
    }
    fn connection_at(&mut self, c: Box<Connection>, place: usize) -> io::Result<()> {
        self.placed.push((place, c));
        Ok(())
    }
    fn events_bulk(&mut self, events: &mut Vec<Event>) -> io::Result<()> {
        if self.spare_events.is_empty() {
            self.collect_spent();
        }
        let fresh = (self.spare_events.pop()).unwrap_or_else(|| Vec::with_capacity(events.len()));
        let placed = std::mem::replace(
            &mut self.placed,
            self.spare_placed.pop().unwrap_or_default(),
        );
        self.batch
            .push(Msg::Bulk(std::mem::replace(events, fresh), placed));
        self.send()
    }
    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        debug_assert!(
            self.placed.is_empty(),
            "the last events were handed over after them"
        );
        let sent = self.send();
        let (mut r, counted) = self.join()?;
        sent?;
        let mut summary = summary.clone();
        summary.add_connection_counts(&counted);
        r.finish(&summary)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
    fn take_spent(&mut self, connections: &mut Vec<Box<Connection>>) {
        self.collect_spent();
        connections.append(&mut self.returned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Segment, TcpFlags};
    use crate::event::EventKind;
    use crate::tcp::conn::Side;
    use crate::tcp::conn::TrackerConfig;
    use crate::tcp::state::TcpState;

    /// Checks that each event arrives with the header it was given: `expected` holds, in
    /// order, each event's connection and the header's id and client port (None: no
    /// header).
    struct HeaderCheck(Vec<(u64, Option<(u64, u16)>)>);

    impl Renderer for HeaderCheck {
        fn event(&mut self, ev: &Event, h: Option<&ConnHeader>) -> io::Result<()> {
            let want = self.0.remove(0);
            assert_eq!((ev.conn, h.map(|h| (h.id, h.client.port()))), want);
            Ok(())
        }
        fn connection(&mut self, _: &Connection) -> io::Result<()> {
            Ok(())
        }
        fn finish(&mut self, _: &Summary) -> io::Result<()> {
            assert!(self.0.is_empty(), "every event arrived");
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Headers travel apart from their events, once for a run of events with the same
    /// one: interleaved connections, a header that changes (roles swapped) and events
    /// without one each get what they were sent with.
    #[test]
    fn each_event_arrives_with_its_header() {
        let header = |id: u64, port: u16| ConnHeader {
            id,
            client: format!("10.0.0.1:{port}").parse().unwrap(),
            server: "10.0.0.2:80".parse().unwrap(),
            roles_inferred: false,
        };
        let (a, b, b_swapped) = (header(1, 1000), header(2, 2000), header(2, 80));
        let sent = [
            (1, Some(a)),
            (1, Some(a)),
            (2, Some(b)),
            (2, Some(b_swapped)),
            (7, None),
            (1, Some(a)),
            (2, Some(b_swapped)),
            (9, None),
        ];
        let expected = (sent.iter())
            .map(|(c, h)| (*c, h.map(|h| (h.id, h.client.port()))))
            .collect();
        let mut t = Threaded::new(Box::new(HeaderCheck(expected)));
        for (conn, h) in sent {
            let ev = Event {
                ts: Timestamp(0),
                conn,
                from: Side::Client,
                kind: EventKind::TimeWaitExpired,
                states: [TcpState::Closed, TcpState::Closed],
            };
            t.event(&ev, h.as_ref()).unwrap();
        }
        t.finish(&Summary::default()).unwrap();
        assert_eq!(t.last_header, Some(b_swapped));
    }

    /// Writes down what it is given, in order: `s` for the start, `e<conn>` for an event,
    /// `c<id>` for a connection; checks the list at the end. It takes no connection headers,
    /// so events reach it in bulk.
    struct Order(Vec<String>, Vec<&'static str>);

    impl Renderer for Order {
        fn start(&mut self, _: Timestamp) {
            self.0.push("s".into());
        }
        fn event_needs_connection(&self) -> bool {
            false
        }
        fn event(&mut self, ev: &Event, _: Option<&ConnHeader>) -> io::Result<()> {
            self.0.push(format!("e{}", ev.conn));
            Ok(())
        }
        fn connection(&mut self, c: &Connection) -> io::Result<()> {
            self.0.push(format!("c{}", c.id));
            Ok(())
        }
        fn finish(&mut self, _: &Summary) -> io::Result<()> {
            assert_eq!(self.0, self.1);
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Events in bulk, with finished connections placed among them (first, between two
    /// events, last, two at one place, one in a bulk without events) come out in that order.
    #[test]
    fn connections_placed_among_bulk_events_come_out_in_place() {
        let want = [
            "s", "c10", "e1", "e2", "c11", "c12", "e3", "c13", "c14", "e4", "c15",
        ];
        let mut t = Threaded::new(Box::new(Order(Vec::new(), want.to_vec())));
        assert!(t.takes_events_in_bulk());
        let event = |conn| Event {
            ts: Timestamp(0),
            conn,
            from: Side::Client,
            kind: EventKind::TimeWaitExpired,
            states: [TcpState::Closed, TcpState::Closed],
        };
        let syn = Segment::test_between(true, TcpFlags::SYN, 0, 0, 0, Timestamp(0));
        let conn = |id| Box::new(Connection::new(id, &syn, TrackerConfig::default(), None));
        t.start(Timestamp(0));
        let mut events = vec![event(1), event(2)];
        t.connection_at(conn(10), 0).unwrap();
        t.connection_at(conn(11), 2).unwrap();
        t.connection_at(conn(12), 2).unwrap();
        t.events_bulk(&mut events).unwrap();
        assert!(events.is_empty(), "the list is taken, an empty one left");
        events.push(event(3));
        t.connection_at(conn(13), 1).unwrap();
        t.events_bulk(&mut events).unwrap();
        t.connection_at(conn(14), 0).unwrap();
        t.events_bulk(&mut events).unwrap();
        events.push(event(4));
        t.connection_at(conn(15), 1).unwrap();
        t.events_bulk(&mut events).unwrap();
        t.finish(&Summary::default()).unwrap();
    }

    /// Counts what it is given, slowly enough that the analysis runs ahead of it.
    struct Counter(u64);

    impl Renderer for Counter {
        fn event(&mut self, _: &Event, _: Option<&ConnHeader>) -> io::Result<()> {
            self.0 += 1;
            if self.0 % 4096 == 0 {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            Ok(())
        }
        fn connection(&mut self, _: &Connection) -> io::Result<()> {
            Ok(())
        }
        fn finish(&mut self, _: &Summary) -> io::Result<()> {
            assert_eq!(self.0, 2_000_000, "every event reached the output thread");
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Two million events and no finished connection (a flood's retransmissions): the batches
    /// the output thread has written come back and are used again, instead of new ones
    /// being made for every batch while the written ones wait in the channel back.
    #[test]
    fn written_batches_are_reused_without_finished_connections() {
        let mut t = Threaded::new(Box::new(Counter(0)));
        let ev = Event {
            ts: Timestamp(0),
            conn: 1,
            from: Side::Server,
            kind: EventKind::TimeWaitExpired,
            states: [TcpState::Closed, TcpState::Closed],
        };
        for _ in 0..2_000_000 {
            t.event(&ev, None).unwrap();
        }
        // At most the batches in flight (4 queued, 1 being written, 1 filling) and the few
        // kept for reuse, out of the 3,906 sent.
        assert!(t.batches_made <= 16, "{} batches made", t.batches_made);
        t.finish(&Summary::default()).unwrap();
    }
}
