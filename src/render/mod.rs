//! Renderers: events, connections and the summary turned into text, a table or JSON Lines.
//!
//! The pipeline calls a [`Renderer`] as things happen: `segment` for every TCP segment (only
//! with `--packets`), `event` for every tracker event, `connection` when a connection is over,
//! and `finish` once at the end. Each renderer writes into any `io::Write`, so tests capture the
//! output in a `Vec<u8>`.

pub mod json;
pub mod table;
pub mod text;
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
    fn event(&mut self, ev: &Event, conn: &Connection) -> io::Result<()>;
    fn connection(&mut self, conn: &Connection) -> io::Result<()>;
    fn finish(&mut self, summary: &Summary) -> io::Result<()>;
    /// Push buffered output out now (live capture shows events as they happen).
    fn flush(&mut self) -> io::Result<()>;
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
