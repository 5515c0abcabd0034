//! Rendering on a second thread, for `read` in the text and JSON formats: the analysis hands
//! events and finished connections over in batches and goes on, while the other core turns
//! them into words or JSON. (`--packets` and live capture render in place: a segment line
//! needs the connection as it is at that packet.)

use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
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

pub struct Threaded {
    batch: Vec<Msg>,
    tx: Option<SyncSender<Vec<Msg>>>,
    worker: Option<JoinHandle<io::Result<Box<dyn Renderer + Send>>>>,
    wants_events: bool,
    event_needs_connection: bool,
}

impl Threaded {
    pub fn new(inner: Box<dyn Renderer + Send>) -> Threaded {
        let (tx, rx): (SyncSender<Vec<Msg>>, Receiver<Vec<Msg>>) = sync_channel(4);
        let wants_events = inner.wants_events();
        let event_needs_connection = inner.event_needs_connection();
        let worker = std::thread::spawn(move || {
            let mut r = inner;
            for batch in rx {
                for m in batch {
                    match m {
                        Msg::Start(t) => r.start(t),
                        Msg::Event(ev, h) => r.event(&ev, h.as_ref())?,
                        Msg::Connection(c) => r.connection(&c)?,
                    }
                }
            }
            Ok(r)
        });
        Threaded {
            batch: Vec::with_capacity(BATCH),
            tx: Some(tx),
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
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
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
}
