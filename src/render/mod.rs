//! Renderers: events, connections and the summary turned into text, a table or JSON Lines.
//!
//! The pipeline calls a [`Renderer`] as things happen: `segment` for every TCP segment (only
//! with `--packets`), `event` for every tracker event, `connection` when a connection is over,
//! and `finish` once at the end. Each renderer writes into any `io::Write`, so tests capture the
//! output in a `Vec<u8>`.

pub mod json;
pub mod jsonw;
pub mod push;
pub mod table;
pub mod text;
pub mod threaded;
pub mod words;
pub mod zeek;

use std::io;

use crate::decode::Segment;
use crate::event::Event;
use crate::summary::Summary;
use crate::tcp::Connection;
use crate::tcp::conn::Observation;

pub trait Renderer {
    /// The first packet's time: the origin of `--time relative`.
    fn start(&mut self, _first: crate::time::Timestamp) {}
    fn segment(
        &mut self,
        _seg: &Segment,
        _conn: &Connection,
        _obs: &Observation,
    ) -> io::Result<()> {
        Ok(())
    }
    /// Does this renderer print events at all, and does it need their connection? (Looking
    /// the connection up costs a hash lookup per event, which the table and JSON can skip.)
    fn wants_events(&self) -> bool {
        true
    }
    fn event_needs_connection(&self) -> bool {
        true
    }
    /// `conn` is None for events about a connection already retired (its TIME_WAIT ending).
    fn event(&mut self, ev: &Event, conn: Option<&ConnHeader>) -> io::Result<()>;
    /// A segment of a connection already retired and reported (a straggler), with `--packets`.
    fn late_segment(&mut self, _seg: &Segment, _late: &Late) -> io::Result<()> {
        Ok(())
    }
    fn connection(&mut self, conn: &Connection) -> io::Result<()>;
    /// Does this renderer keep the connections it is given (it renders them later, on another
    /// thread)? Then they are handed over with `connection_owned`.
    fn takes_connections(&self) -> bool {
        false
    }
    fn connection_owned(&mut self, conn: Box<Connection>) -> io::Result<()> {
        self.connection(&conn)
    }
    /// Does this renderer take events in bulk (JSON's output thread)? Then the analysis keeps
    /// them in its own list instead of handing each over: a finished connection is given
    /// with its place in that list (`connection_at`), and the whole list every few hundred
    /// events (`events_bulk`), which leaves an empty one in its place.
    fn takes_events_in_bulk(&self) -> bool {
        false
    }
    /// `conn` comes after the first `place` events of the list `events_bulk` hands over next.
    /// (These two are called only when `takes_events_in_bulk`.)
    fn connection_at(&mut self, _conn: Box<Connection>, _place: usize) -> io::Result<()> {
        unreachable!("only a renderer that takes events in bulk is given them so")
    }
    fn events_bulk(&mut self, _events: &mut Vec<Event>) -> io::Result<()> {
        unreachable!("only a renderer that takes events in bulk is given them so")
    }
    /// Does this renderer count the connections it is given into the summary itself (with
    /// [`Summary::count_connection`], before `finish`)? Then the analysis does not.
    fn counts_connections(&self) -> bool {
        false
    }
    fn finish(&mut self, summary: &Summary) -> io::Result<()>;
    /// Connections a renderer on another thread is done with, handed back to be reused.
    fn take_spent(&mut self, _connections: &mut Vec<Box<Connection>>) {}
    /// The connection table, for a renderer that keeps one and prints it at the end (a
    /// sharded run merges the shards' tables into one).
    fn table(&mut self) -> Option<&mut table::ConnTable> {
        None
    }
    /// Push buffered output out now (live capture shows events as they happen).
    fn flush(&mut self) -> io::Result<()>;
}

/// Who a connection is, as an event's line needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnHeader {
    pub id: u64,
    pub client: std::net::SocketAddr,
    pub server: std::net::SocketAddr,
    pub roles_inferred: bool,
}

impl From<&Connection> for ConnHeader {
    fn from(c: &Connection) -> Self {
        ConnHeader {
            id: c.id,
            client: c.client,
            server: c.server,
            roles_inferred: c.roles == crate::tcp::conn::Roles::Inferred,
        }
    }
}

/// A straggler's place: the retired connection it belongs to, its sender, and its relative
/// sequence and acknowledgement numbers.
pub struct Late {
    pub conn: u64,
    pub from: crate::tcp::conn::Side,
    pub rel_seq: u32,
    pub rel_ack: u32,
}

/// The output format (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// timeline of events, then the connection table and a summary
    Text,
    /// the connection table and the summary only
    Table,
    /// JSON Lines: events, one object per connection, a summary (a stable schema)
    Json,
    /// a Zeek conn.log (TSV), one line per connection, for zeek-cut and Zeek tooling
    Zeek,
}
