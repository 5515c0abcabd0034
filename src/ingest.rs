//! The stage between a source and the analysis: the BPF filter and the decoder turn each
//! packet into an [`Item`], collected in batches. Reading a file and capturing live run this
//! stage on their own thread, so that reading and decoding a packet overlaps with analysing
//! earlier ones on the other core, and a batch crosses between the threads in one hand-over
//! instead of one per packet.

use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use crate::decode::{Decoder, Segment, Skip};
use crate::source::filter::PacketFilter;
use crate::source::{Flow, RawPacket};
use crate::time::Timestamp;

/// What the analysis gets for one packet.
#[derive(Clone, Copy, Debug)]
pub enum Item {
    /// The capture's first packet (filtered or not) was at this time: the origin of
    /// `--time relative`. Comes before any other item.
    Start(Timestamp),
    /// A TCP segment.
    Segment(Segment),
    /// A packet that passed the filter but holds no TCP segment to analyse: its time still
    /// brings deadlines (TIME_WAIT expiries) due, as any packet's does.
    Tick(Timestamp),
}

/// What this stage counts; the run's summary takes them over at the end.
#[derive(Clone, Debug, Default)]
pub struct IngestCounts {
    pub packets: u64,
    pub filtered_out: u64,
    pub tcp_segments: u64,
    pub skipped: [u64; Skip::ALL.len()],
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
}

/// Filter and decoder, with the counts and the frame numbering they keep.
pub struct Ingest {
    decoder: Decoder,
    filter: Option<PacketFilter>,
    pub counts: IngestCounts,
}

impl Ingest {
    pub fn new(filter: Option<PacketFilter>) -> Ingest {
        Ingest {
            decoder: Decoder::default(),
            filter,
            counts: IngestCounts::default(),
        }
    }

    /// Appends the item for packet `p` to `out` (none when the filter rejects it). A filter
    /// that libpcap cannot compile for the packet's link type is an error.
    pub fn packet(&mut self, p: &RawPacket, out: &mut Vec<Item>) -> Result<(), String> {
        let c = &mut self.counts;
        c.packets += 1;
        if c.packets == 1 {
            out.push(Item::Start(p.ts));
        }
        if c.first_ts.is_none_or(|f| p.ts < f) {
            c.first_ts = Some(p.ts);
        }
        if c.last_ts.is_none_or(|l| p.ts > l) {
            c.last_ts = Some(p.ts);
        }
        if let Some(f) = self.filter.as_mut()
            && !f.matches(p.link, p.data)?
        {
            c.filtered_out += 1;
            return Ok(());
        }
        match self.decoder.decode(p.link, p.data, p.ts, c.packets) {
            Ok(seg) => {
                c.tcp_segments += 1;
                out.push(Item::Segment(seg));
            }
            Err(skip) => {
                c.skipped[skip.index()] += 1;
                out.push(Item::Tick(p.ts));
            }
        }
        Ok(())
    }
}

/// Items per batch: large enough that handing a batch over costs little per packet, small
/// enough that a batch stays in the cache between the two threads.
pub const BATCH: usize = 1024;

/// The sending end: fills batches and hands them to the analysis thread, reusing the ones it
/// gives back.
pub struct BatchSender {
    batch: Vec<Item>,
    tx: SyncSender<Vec<Item>>,
    returned: Receiver<Vec<Item>>,
}

/// The receiving end: yields full batches and gives the emptied ones back.
pub struct BatchReceiver {
    rx: Receiver<Vec<Item>>,
    give_back: Sender<Vec<Item>>,
}

/// A bounded hand-over of batches: the sender waits when `depth` batches are in flight, so a
/// fast reader cannot run ahead of the analysis by more than that.
pub fn batch_channel(depth: usize) -> (BatchSender, BatchReceiver) {
    let (tx, rx) = sync_channel(depth);
    let (give_back, returned) = channel();
    (
        BatchSender {
            batch: Vec::with_capacity(BATCH),
            tx,
            returned,
        },
        BatchReceiver { rx, give_back },
    )
}

impl BatchSender {
    /// The batch being filled.
    pub fn batch(&mut self) -> &mut Vec<Item> {
        &mut self.batch
    }

    /// Sends the batch once it is full; `Stop` when the analysis has gone away.
    #[inline]
    pub fn send_if_full(&mut self) -> Flow {
        if self.batch.len() >= BATCH {
            self.send()
        } else {
            Flow::Continue
        }
    }

    /// Sends what the batch holds now (a live capture does this when traffic pauses).
    pub fn send(&mut self) -> Flow {
        if self.batch.is_empty() {
            return Flow::Continue;
        }
        let fresh = self
            .returned
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.batch, fresh);
        match self.tx.send(full) {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop,
        }
    }
}

impl BatchReceiver {
    /// The next batch; None once the sender is gone and every batch is taken.
    pub fn recv(&self) -> Option<Vec<Item>> {
        self.rx.recv().ok()
    }

    /// Gives an emptied batch back for reuse.
    pub fn give_back(&self, mut batch: Vec<Item>) {
        batch.clear();
        let _ = self.give_back.send(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::LinkKind;

    fn raw(ts: u64, data: &[u8]) -> RawPacket<'_> {
        RawPacket {
            ts: Timestamp(ts),
            wire_len: data.len() as u32,
            data,
            link: LinkKind::Ethernet,
        }
    }

    #[test]
    fn every_packet_yields_an_item_and_is_counted() {
        let mut ingest = Ingest::new(None);
        let mut out = Vec::new();
        // An ARP frame (not IP), then a runt: neither is a segment, both move time.
        let arp = [[0xffu8; 12].as_slice(), &[0x08, 0x06], &[0u8; 28]].concat();
        ingest.packet(&raw(2_000, &arp), &mut out).unwrap();
        ingest.packet(&raw(1_000, &[0u8; 5]), &mut out).unwrap();
        assert!(matches!(out[0], Item::Start(Timestamp(2_000))));
        assert!(matches!(out[1], Item::Tick(Timestamp(2_000))));
        assert!(matches!(out[2], Item::Tick(Timestamp(1_000))));
        let c = &ingest.counts;
        assert_eq!((c.packets, c.tcp_segments), (2, 0));
        assert_eq!(c.skipped[Skip::NotIp.index()], 1);
        assert_eq!(c.skipped[Skip::Truncated.index()], 1);
        assert_eq!(
            (c.first_ts, c.last_ts),
            (Some(Timestamp(1_000)), Some(Timestamp(2_000)))
        );
    }

    #[test]
    fn batches_arrive_in_order_and_come_back_for_reuse() {
        let (mut tx, rx) = batch_channel(2);
        let reader = std::thread::spawn(move || {
            for i in 0..(BATCH as u64 * 3 + 7) {
                tx.batch().push(Item::Tick(Timestamp(i)));
                assert_eq!(tx.send_if_full(), Flow::Continue);
            }
            tx.send()
        });
        let mut next = 0;
        while let Some(batch) = rx.recv() {
            for item in &batch {
                let Item::Tick(Timestamp(t)) = item else {
                    panic!("only ticks were sent")
                };
                assert_eq!(*t, next);
                next += 1;
            }
            rx.give_back(batch);
        }
        assert_eq!(next, BATCH as u64 * 3 + 7);
        assert_eq!(reader.join().unwrap(), Flow::Continue);
    }
}
