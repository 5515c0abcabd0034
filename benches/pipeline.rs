//! Micro-benchmark of the per-packet work (issue 4): decoding a frame, and decoding it then
//! routing it through the flow table and the tracker.
//!
//! `cargo bench --bench pipeline`. The frames are built in memory: 4,096 Ethernet/IPv4/TCP
//! frames of 64 connections open at once (handshake with options, a request, a response
//! with ACKs, a four-way close), one frame every 50 ms, so the first connections' TIME_WAIT
//! (60 s) expires and they are retired during the run, as in a long capture. divan reports
//! the time per packet (its item counter).

use std::sync::LazyLock;

use divan::Bencher;
use divan::counter::ItemsCount;
use tcpscope::decode::{LinkKind, decode};
use tcpscope::event::Event;
use tcpscope::flow::{FlowConfig, FlowTable};
use tcpscope::time::Timestamp;

fn main() {
    divan::main();
}

const FRAMES: usize = 4096;
const OPEN_AT_ONCE: usize = 64;
const GAP_NS: u64 = 50_000_000;
const START_NS: u64 = 1_767_225_600 * 1_000_000_000;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// One segment of a connection's script: direction, flags, payload length.
type Step = (bool, u8, u16);

/// The packets of connection `n`: handshake, a request, a response of 2–9 segments with an
/// ACK for every second one, and a four-way close started by the client.
fn script(n: usize) -> Vec<Step> {
    let mut s = vec![(true, SYN, 0), (false, SYN | ACK, 0), (true, ACK, 0)];
    s.push((true, PSH | ACK, 200 + (n % 7) as u16 * 100));
    s.push((false, ACK, 0));
    let segs = 2 + n % 8;
    for i in 0..segs {
        let last = i + 1 == segs;
        s.push((
            false,
            if last { PSH | ACK } else { ACK },
            if last { 700 } else { 1448 },
        ));
        if i % 2 == 1 || last {
            s.push((true, ACK, 0));
        }
    }
    s.extend([
        (true, FIN | ACK, 0),
        (false, ACK, 0),
        (false, FIN | ACK, 0),
        (true, ACK, 0),
    ]);
    s
}

/// A connection being written out: its script and both sides' next sequence numbers.
struct Writer {
    n: usize,
    steps: Vec<Step>,
    next: usize,
    seq: [u32; 2],
}

impl Writer {
    fn new(n: usize) -> Writer {
        let isn = (n as u32).wrapping_mul(2_654_435_761);
        Writer {
            n,
            steps: script(n),
            next: 0,
            seq: [isn, !isn],
        }
    }

    /// The next frame (headers only, as `tcpdump -s 96`: the IP length counts the payload).
    fn frame(&mut self, ts_ms: u32) -> Vec<u8> {
        let (from_client, flags, len) = self.steps[self.next];
        self.next += 1;
        let me = usize::from(!from_client);
        let client = [10, 1, (self.n >> 8) as u8, self.n as u8];
        let server = [172, 16, 0, 10 + (self.n % 4) as u8];
        let cport = 32768 + (self.n % 28000) as u16;
        let sport = [80u16, 443, 8080][self.n % 3];
        let (src, dst, sp, dp) = if from_client {
            (client, server, cport, sport)
        } else {
            (server, client, sport, cport)
        };
        let syn = flags & SYN != 0;
        let opts: &[u8] = if syn {
            &[
                2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 7,
            ]
        } else {
            &[1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0]
        };
        let tcp_len = 20 + opts.len();
        let total = (20 + tcp_len + usize::from(len)) as u16;

        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        let mut sum: u32 = f[14..34]
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());

        let seq = self.seq[me];
        let ack = if flags & ACK != 0 {
            self.seq[1 - me]
        } else {
            0
        };
        f.extend_from_slice(&sp.to_be_bytes());
        f.extend_from_slice(&dp.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&ack.to_be_bytes());
        f.extend_from_slice(&[((tcp_len / 4) as u8) << 4, flags]);
        f.extend_from_slice(&(if syn { 64240u16 } else { 502 }).to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0]);
        let opt_at = f.len();
        f.extend_from_slice(opts);
        let ts_at = opt_at + if syn { 8 } else { 4 };
        f[ts_at..ts_at + 4].copy_from_slice(&ts_ms.to_be_bytes());
        // Headers-only: up to 96 bytes of the frame, zeros for the payload that was captured.
        let captured = (f.len() + usize::from(len)).min(96);
        f.resize(captured, 0);

        let used = u32::from(len) + u32::from(flags & (SYN | FIN) != 0);
        self.seq[me] = seq.wrapping_add(used);
        f
    }

    fn done(&self) -> bool {
        self.next == self.steps.len()
    }
}

/// The frames and their timestamps: `OPEN_AT_ONCE` connections take turns, and a finished one
/// is replaced by the next.
static TRAFFIC: LazyLock<Vec<(Vec<u8>, Timestamp)>> = LazyLock::new(|| {
    let mut open: Vec<Writer> = (0..OPEN_AT_ONCE).map(Writer::new).collect();
    let mut started = OPEN_AT_ONCE;
    let mut out = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES {
        let ts = START_NS + i as u64 * GAP_NS;
        let slot = i % OPEN_AT_ONCE;
        out.push((open[slot].frame((ts / 1_000_000) as u32), Timestamp(ts)));
        if open[slot].done() {
            open[slot] = Writer::new(started);
            started += 1;
        }
    }
    out
});

#[divan::bench]
fn decode_only(bencher: Bencher) {
    let traffic = &*TRAFFIC;
    bencher.counter(ItemsCount::new(traffic.len())).bench(|| {
        for (n, (frame, ts)) in traffic.iter().enumerate() {
            let seg = decode(
                LinkKind::Ethernet,
                divan::black_box(frame),
                *ts,
                n as u64 + 1,
            );
            divan::black_box(seg.ok());
        }
    });
}

#[divan::bench]
fn decode_and_track(bencher: Bencher) {
    let traffic = &*TRAFFIC;
    bencher
        .counter(ItemsCount::new(traffic.len()))
        .with_inputs(|| FlowTable::new(FlowConfig::default()))
        .bench_local_values(|mut table| {
            let mut events: Vec<Event> = Vec::with_capacity(16);
            let mut retired = 0usize;
            for (n, (frame, ts)) in traffic.iter().enumerate() {
                let Ok(seg) = decode(
                    LinkKind::Ethernet,
                    divan::black_box(frame),
                    *ts,
                    n as u64 + 1,
                ) else {
                    continue;
                };
                events.clear();
                divan::black_box(table.segment(&seg, &mut events));
                divan::black_box(&events);
                if n % 256 == 255 {
                    retired += table.take_retired().count();
                }
            }
            divan::black_box(retired);
            table // dropped outside the timed section
        });
}
