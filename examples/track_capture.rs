//! Times the analysis alone (flow table and tracker, one thread, no reading, no output) over
//! a capture held decoded in memory: what one segment costs the analysis thread, apart from
//! the rest of the pipeline. Two captures of the same mix with different numbers of
//! connections open at once show how much of that cost is waiting for memory.
//!
//!   cargo run --release --example track_capture -- FILE [ROUNDS] [shards]
//!
//! Each round runs both variants once, in turn (the machine's noise then hits both alike):
//! without Zeek's model (the table and text outputs) and with it (JSON, zeek). The report is
//! each variant's fastest and median nanoseconds per segment. With `shards`, each runs as
//! shard 0 of 2 (half the connections, every segment's time), as the table's threads do.

use std::time::Instant;

use tcpscope::event::Event;
use tcpscope::flow::{FlowConfig, FlowTable};
use tcpscope::ingest::{Ingest, Item};
use tcpscope::source::Flow;
use tcpscope::source::file::CaptureFile;

fn load(path: &str) -> Vec<(tcpscope::decode::Segment, u64)> {
    let mut file = CaptureFile::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut ingest = Ingest::new(None);
    let mut items = Vec::new();
    file.read_all(&mut |p| {
        ingest.packet(&p, &mut items).expect("no filter");
        Flow::Continue
    })
    .expect("readable capture");
    items
        .into_iter()
        .filter_map(|i| match i {
            Item::Segment(seg, spread) => Some((seg, spread)),
            _ => None,
        })
        .collect()
}

fn run(segs: &[(tcpscope::decode::Segment, u64)], zeek: bool, shards: u64) -> f64 {
    let mut config = FlowConfig::default();
    config.tracker.zeek = zeek;
    let mut table = FlowTable::new(config);
    let mut events: Vec<Event> = Vec::with_capacity(64);
    let mine = |spread: u64| spread % shards == 0;
    let mut owned = 0u64;
    let started = Instant::now();
    for (seg, spread) in segs {
        if mine(*spread) {
            owned += 1;
            std::hint::black_box(table.segment_hashed(seg, *spread, &mut events));
        } else {
            table.advance(seg.ts, &mut events);
        }
        events.clear();
        if table.has_retired() {
            let done: Vec<_> = table.take_retired().collect();
            for conn in done {
                table.recycle(conn);
            }
        }
    }
    let elapsed = started.elapsed();
    std::hint::black_box(owned);
    elapsed.as_nanos() as f64 / segs.len() as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .expect("usage: track_capture FILE [ROUNDS] [shards]");
    let rounds: usize = args.get(1).map_or(5, |r| r.parse().expect("rounds"));
    let shards = if args.iter().any(|a| a == "shards") {
        2
    } else {
        1
    };
    let segs = load(path);
    eprintln!("{} segments loaded", segs.len());
    let variants = [("without Zeek", false), ("with Zeek", true)];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (v, &(_, zeek)) in variants.iter().enumerate() {
            times[v].push(run(&segs, zeek, shards));
        }
    }
    for (v, (name, ..)) in variants.iter().enumerate() {
        let t = &mut times[v];
        t.sort_by(f64::total_cmp);
        println!(
            "{name:>14}: min {:.1} ns, median {:.1} ns per segment",
            t[0],
            t[t.len() / 2]
        );
    }
}
