//! Rendering on a second thread, for `read` in the text and JSON formats: the analysis hands
//! events and finished connections over in batches and goes on, while the other core turns
//! them into words or JSON. (`--packets` and live capture render in place: a segment line
//! needs the connection as it is at that packet.)

use std::io;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use crate::event::Event;
use crate::render::{ConnHeader, Renderer};
use crate::summary::Summary;
use crate::tcp::Connection;
use crate::time::Timestamp;

enum Msg {
    Start(Timestamp),
    Event(Event, Option<ConnHeader>),
    Connection(Box<Connection>),
}

/// Messages are sent in batches of this many.
const BATCH: usize = 512;

/// What the output thread hands back once used: batches and connections are freed (or
/// reused) on the analysis thread that made them, so the two threads never contend for the
/// allocator's lock.
enum Spent {
    Batch(Vec<Msg>),
    Connection(Box<Connection>),
}

pub struct Threaded {
    batch: Vec<Msg>,
    tx: Option<SyncSender<Vec<Msg>>>,
    spent: Receiver<Spent>,
    spare_batches: Vec<Vec<Msg>>,
    worker: Option<JoinHandle<io::Result<Box<dyn Renderer + Send>>>>,
    wants_events: bool,
    event_needs_connection: bool,
}

impl Threaded {
    pub fn new(inner: Box<dyn Renderer + Send>) -> Threaded {
        let (tx, rx): (SyncSender<Vec<Msg>>, Receiver<Vec<Msg>>) = sync_channel(4);
        let (spent_tx, spent): (Sender<Spent>, Receiver<Spent>) = channel();
        let wants_events = inner.wants_events();
        let event_needs_connection = inner.event_needs_connection();
        let worker = std::thread::spawn(move || {
            let mut r = inner;
            for mut batch in rx {
                for m in batch.drain(..) {
                    match m {
                        Msg::Start(t) => r.start(t),
                        Msg::Event(ev, h) => r.event(&ev, h.as_ref())?,
                        Msg::Connection(c) => {
                            r.connection(&c)?;
                            let _ = spent_tx.send(Spent::Connection(c));
                        }
                    }
                }
                let _ = spent_tx.send(Spent::Batch(batch));
            }
            Ok(r)
        });
        Threaded {
            batch: Vec::with_capacity(BATCH),
            tx: Some(tx),
            spent,
            spare_batches: Vec::new(),
            worker: Some(worker),
            wants_events,
            event_needs_connection,
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
        let fresh = self
            .spare_batches
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BATCH));
        let batch = std::mem::replace(&mut self.batch, fresh);
        match &self.tx {
            Some(tx) if tx.send(batch).is_ok() => Ok(()),
            // The worker has stopped: its error (a closed pipe, usually) comes from `finish`.
            _ => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
        }
    }

    /// Stops the worker and returns the renderer (or the error that stopped it).
    fn join(&mut self) -> io::Result<Box<dyn Renderer + Send>> {
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
        self.push(Msg::Event(ev.clone(), conn.copied()))
    }
    fn connection(&mut self, c: &Connection) -> io::Result<()> {
        self.push(Msg::Connection(Box::new(c.clone())))
    }
    fn takes_connections(&self) -> bool {
        true
    }
    fn connection_owned(&mut self, c: Box<Connection>) -> io::Result<()> {
        self.push(Msg::Connection(c))
    }
    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        let sent = self.send();
        let mut r = self.join()?;
        sent?;
        r.finish(summary)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
    fn take_spent(&mut self, connections: &mut Vec<Box<Connection>>) {
        while let Ok(s) = self.spent.try_recv() {
            match s {
                Spent::Batch(b) if self.spare_batches.len() < 8 => self.spare_batches.push(b),
                Spent::Batch(_) => {}
                Spent::Connection(c) => connections.push(c),
            }
        }
    }
}
