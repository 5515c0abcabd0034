//! The analysis: a pure per-connection tracker. No I/O and no clock: time comes from the
//! segments, so every rule is tested with hand-made segments (see `conn.rs`'s tests).

pub mod analysis;
pub mod conn;
pub mod report;
pub mod seq;
pub mod state;
pub mod zeek;

pub use conn::{Connection, Side, TrackerConfig};
pub use state::TcpState;
