//! IPv4 reassembly, for the rare TCP segment split by IP (Wireshark reassembles these too, so a
//! fragmented SYN is still a SYN). Memory is bounded: few datagrams are pending at once, and one
//! that does not complete within 30 s of capture time is dropped.

use std::net::Ipv4Addr;

use rustc_hash::FxHashMap;

use crate::time::{Duration, Timestamp};

const MAX_PENDING: usize = 64;
const MAX_DATAGRAM: u32 = 65_535;
const TIMEOUT: Duration = Duration(30 * Timestamp::NANOS_PER_SEC);

/// One fragment as the decoder sees it.
pub struct Fragment<'a> {
    /// The fragment's IPv4 header (options included).
    pub header: &'a [u8],
    pub id: u16,
    /// Offset of `data` in the datagram's payload, in bytes.
    pub offset: u32,
    pub more: bool,
    pub data: &'a [u8],
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    proto: u8,
}

struct Pending {
    /// The first fragment's header (offset 0), once it has arrived.
    header: Option<Vec<u8>>,
    pieces: Vec<(u32, Vec<u8>)>,
    /// Payload length, known once the last fragment (MF clear) has arrived.
    total: Option<u32>,
    started: Timestamp,
}

#[derive(Default)]
pub struct Defrag {
    pending: FxHashMap<Key, Pending>,
    /// The datagram most recently completed.
    out: Vec<u8>,
}

impl Defrag {
    /// Adds a fragment; returns the whole datagram (header and payload) when this fragment
    /// completes it.
    pub fn add(&mut self, f: Fragment<'_>, now: Timestamp) -> Option<&[u8]> {
        if f.header.len() < 20 {
            return None;
        }
        let h = f.header;
        let key = Key {
            src: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
            dst: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
            id: f.id,
            proto: h[9],
        };
        self.pending.retain(|_, p| now.since(p.started) < TIMEOUT);
        if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING {
            return None;
        }
        let p = self.pending.entry(key).or_insert_with(|| Pending {
            header: None,
            pieces: Vec::new(),
            total: None,
            started: now,
        });
        if f.offset.saturating_add(f.data.len() as u32) > MAX_DATAGRAM {
            self.pending.remove(&key);
            return None;
        }
        if f.offset == 0 {
            p.header = Some(h.to_vec());
        }
        if !f.more {
            p.total = Some(f.offset + f.data.len() as u32);
        }
        p.pieces.push((f.offset, f.data.to_vec()));
        let total = p.total?;
        p.header.as_ref()?;
        // Complete when the pieces, in order of offset, cover [0, total) without a gap.
        p.pieces.sort_by_key(|(o, _)| *o);
        let mut covered = 0u32;
        for (o, d) in &p.pieces {
            if *o > covered {
                return None;
            }
            covered = covered.max(o + d.len() as u32);
        }
        if covered < total {
            return None;
        }
        let p = self.pending.remove(&key)?;
        let header = p.header?;
        let mut payload = vec![0u8; total as usize];
        for (o, d) in &p.pieces {
            let end = ((*o as usize) + d.len()).min(payload.len());
            payload[*o as usize..end].copy_from_slice(&d[..end - *o as usize]);
        }
        self.out.clear();
        self.out.extend_from_slice(&header);
        let total_len = (header.len() + payload.len()) as u16;
        self.out[2..4].copy_from_slice(&total_len.to_be_bytes());
        // Clear MF and the offset: this is now a whole datagram.
        self.out[6] = 0;
        self.out[7] = 0;
        self.out.extend_from_slice(&payload);
        Some(&self.out)
    }
}
