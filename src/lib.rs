//! tcpscope: reads packet captures and explains each TCP connection's life.
//!
//! Read top-down, the pipeline is: [`source`] (files, stdin, live interfaces) → [`ingest`]
//! (filter and [`decode`], bytes to [`decode::Segment`], in batches on the reading thread) → [`flow`] (4-tuple to connection) → [`tcp`] (the per-connection
//! tracker, pure) → [`event`] → [`render`] (text, table, JSON) → [`cli`] and [`app`].

pub mod app;
pub mod cli;
pub mod cores;
pub mod decode;
pub mod event;
pub mod flow;
pub mod handoff;
pub mod heap_prefault;
pub mod huge_pages;
pub mod ingest;
pub mod prefetch;
pub mod progress;
pub mod render;
pub mod source;
pub mod summary;
pub mod tcp;
pub mod time;
pub mod timer;
