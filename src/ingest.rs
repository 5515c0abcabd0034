//! The stage between a source and the analysis: the BPF filter and the decoder turn each
//! packet into an [`Item`], collected in batches. Reading a file and capturing live run this
//! stage on their own thread, so that reading and decoding a packet overlaps with analysing
//! earlier ones on the other core, and a batch crosses between the threads in one hand-over
//! instead of one per packet.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use crate::decode::{Decoder, Segment, Skip};
use crate::flow::FlowKey;
use crate::source::filter::PacketFilter;
use crate::source::{Flow, RawPacket};
use crate::time::Timestamp;

/// What the analysis gets for one packet.
#[derive(Clone, Copy, Debug)]
pub enum Item {
    /// The capture's first packet (filtered or not) was at this time: the origin of
    /// `--time relative`. Comes before any other item.
    Start(Timestamp),
    /// A TCP segment, and [`FlowKey::spread`] of its 4-tuple (computed here, once, since
    /// every shard of a sharded analysis asks whether the segment is its own).
    Segment(Segment, u64),
    /// A packet that passed the filter but holds no TCP segment to analyse: its time still
    /// brings deadlines (TIME_WAIT expiries) due, as any packet's does.
    Tick(Timestamp),
}

/// How many items ahead the reading thread asks for its batch's memory.
const WRITE_AHEAD: usize = 8;

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
    /// See `packet`.
    prefetch_write: bool,
}

impl Ingest {
    pub fn new(filter: Option<PacketFilter>) -> Ingest {
        Ingest {
            decoder: Decoder::default(),
            filter,
            counts: IngestCounts::default(),
            prefetch_write: crate::prefetch::can_prefetch_write(),
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
        // The batch's memory was last read on the analysis thread's core: its lines are
        // asked for a few items ahead, to be written, so that the writes below need not wait
        // for the other core to let go of them.
        if self.prefetch_write {
            crate::prefetch::prefetch_write(out.as_ptr().wrapping_add(out.len() + WRITE_AHEAD));
        }
        // The segment is decoded in its place in the batch (see `Decoder::decode_into`).
        out.push(Item::Segment(Segment::PLACEHOLDER, 0));
        let Some(Item::Segment(seg, spread)) = out.last_mut() else {
            unreachable!("pushed above");
        };
        match self
            .decoder
            .decode_into(p.link, p.data, p.ts, c.packets, seg)
        {
            Ok(()) => {
                c.tcp_segments += 1;
                *spread = FlowKey::of(seg).spread();
            }
            Err(skip) => {
                c.skipped[skip.index()] += 1;
                *out.last_mut().expect("pushed above") = Item::Tick(p.ts);
            }
        }
        Ok(())
    }
}

/// Items per batch: large enough that handing a batch over costs little per packet, small
/// enough that a batch stays in the cache between the two threads.
pub const BATCH: usize = 1024;

/// The sending end: fills batches and hands each to every receiver (one analysis thread, or
/// each shard of a sharded one), reusing the batches they give back.
pub struct BatchSender {
    batch: Vec<Item>,
    txs: Vec<SyncSender<Arc<Vec<Item>>>>,
    returned: Receiver<Vec<Item>>,
}

/// A receiving end: yields batches, shared with the other receivers, and gives them back.
pub struct BatchReceiver {
    rx: Receiver<Arc<Vec<Item>>>,
    give_back: Sender<Vec<Item>>,
}

/// A bounded hand-over of batches to `receivers` threads that each see every batch: the
/// sender waits when `depth` batches are in flight to one of them, so a fast reader cannot
/// run ahead of the analysis by more than that.
pub fn batch_channel(depth: usize, receivers: usize) -> (BatchSender, Vec<BatchReceiver>) {
    let (give_back, returned) = channel();
    let (txs, rxs) = (0..receivers.max(1))
        .map(|_| {
            let (tx, rx) = sync_channel(depth);
            let receiver = BatchReceiver {
                rx,
                give_back: give_back.clone(),
            };
            (tx, receiver)
        })
        .unzip();
    let sender = BatchSender {
        batch: Vec::with_capacity(BATCH),
        txs,
        returned,
    };
    (sender, rxs)
}

impl BatchSender {
    /// The batch being filled.
    pub fn batch(&mut self) -> &mut Vec<Item> {
        &mut self.batch
    }

    /// Sends the batch once it is full; `Stop` when the analysis has gone away.
    #[inline]
    pub fn send_if_full(&mut self) -> Flow {
        self.send_if_full_with(&mut |_| true)
    }

    /// Sends what the batch holds now (a live capture does this when traffic pauses).
    pub fn send(&mut self) -> Flow {
        self.send_with(&mut |_| true)
    }

    /// [`BatchSender::send_if_full`], and the full batch also goes through `local`: the share
    /// of the analysis that runs on the sending thread. `Stop` when either analysis stops.
    #[inline]
    pub fn send_if_full_with(&mut self, local: &mut dyn FnMut(&[Item]) -> bool) -> Flow {
        if self.batch.len() >= BATCH {
            self.send_with(local)
        } else {
            Flow::Continue
        }
    }

    /// [`BatchSender::send`], then `local` on the same batch (the receivers start on it first).
    pub fn send_with(&mut self, local: &mut dyn FnMut(&[Item]) -> bool) -> Flow {
        if self.batch.is_empty() {
            return Flow::Continue;
        }
        let fresh = self
            .returned
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = Arc::new(std::mem::replace(&mut self.batch, fresh));
        for tx in &self.txs {
            // Waits by polling, so that the analysis's `recv` need not wake this thread.
            if crate::handoff::send(tx, full.clone()).is_err() {
                return Flow::Stop;
            }
        }
        if local(&full) {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }
}

impl BatchReceiver {
    /// The next batch; None once the sender is gone and every batch is taken.
    pub fn recv(&self) -> Option<Arc<Vec<Item>>> {
        self.rx.recv().ok()
    }

    /// Done with a batch: the last receiver to say so gives it back for reuse.
    pub fn give_back(&self, batch: Arc<Vec<Item>>) {
        if let Some(mut batch) = Arc::into_inner(batch) {
            batch.clear();
            let _ = self.give_back.send(batch);
        }
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
    fn every_receiver_sees_every_batch_in_order_and_batches_come_back() {
        let (mut tx, rxs) = batch_channel(2, 2);
        let total = BATCH as u64 * 3 + 7;
        let reader = std::thread::spawn(move || {
            for i in 0..total {
                tx.batch().push(Item::Tick(Timestamp(i)));
                assert_eq!(tx.send_if_full(), Flow::Continue);
            }
            tx.send()
        });
        let consumers: Vec<_> = rxs
            .into_iter()
            .map(|rx| {
                std::thread::spawn(move || {
                    let mut next = 0;
                    while let Some(batch) = rx.recv() {
                        for item in batch.iter() {
                            let Item::Tick(Timestamp(t)) = item else {
                                panic!("only ticks were sent")
                            };
                            assert_eq!(*t, next);
                            next += 1;
                        }
                        rx.give_back(batch);
                    }
                    next
                })
            })
            .collect();
        for c in consumers {
            assert_eq!(c.join().unwrap(), total);
        }
        assert_eq!(reader.join().unwrap(), Flow::Continue);
    }
}
