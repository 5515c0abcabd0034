//! Where packets come from: capture files (pcap, pcapng, gzip-compressed, stdin) and live
//! interfaces. A source hands each packet to a callback with its link type, so one pipeline
//! serves both; a BPF filter, compiled by libpcap, is applied the same way to both.

pub mod file;
pub mod filter;
pub mod live;

use crate::decode::LinkKind;
use crate::time::Timestamp;

/// One captured packet, borrowed from the source's buffer for the duration of the callback.
pub struct RawPacket<'a> {
    pub ts: Timestamp,
    /// Length on the wire (the capture may hold fewer bytes: `data.len()`).
    pub wire_len: u32,
    pub data: &'a [u8],
    pub link: LinkKind,
}

/// What the callback wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Errors that stop reading. Each prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a capture file (no pcap or pcapng magic number)")]
    NotACapture { path: String },
    #[error("{path}: unsupported capture format: {what}")]
    Unsupported { path: String, what: String },
    #[error("{path}: {what}")]
    Corrupt { path: String, what: String },
    #[error(
        "{path}: truncated: the file ends in the middle of a packet record (after {packets} complete packets)"
    )]
    Truncated { path: String, packets: u64 },
    #[error("{path}: {source}")]
    LinkType {
        path: String,
        source: crate::decode::UnknownLinkType,
    },
    #[error("{0}")]
    Live(String),
}
