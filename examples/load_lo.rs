//! The load generator of the live-capture benchmark (`scripts/live_bench.sh`): replays a
//! capture's packets onto the loopback interface through libpcap, paced to `--pps` packets a
//! second, for `--seconds` (starting the file again if it runs out).
//!
//! The capture is one written by `examples/gen_capture.rs`: Ethernet frames between 10.x and
//! 172.16.x addresses, so thousands of connections opening, talking and closing. Injected on
//! `lo`, each frame reaches every capture on `lo` and then the IP layer, which drops it (the
//! addresses are not the host's, and the host does not forward): nothing answers, nothing
//! leaves the machine. A generator on real sockets could not reach 200,000 packets a second
//! on two cores beside the capture, since each of its writes runs the whole TCP stack twice.
//!
//! cargo run --release --example load_lo -- --file bench.pcap --pps 200000 --seconds 10

use std::time::{Duration, Instant};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn num(name: &str, default: f64) -> f64 {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The file's frames, read once (a few hundred MB at most for a benchmark).
fn load(path: &str) -> Vec<Vec<u8>> {
    let mut cap = pcap::Capture::from_file(path).unwrap_or_else(|e| {
        eprintln!("load_lo: cannot read {path}: {e}");
        std::process::exit(2)
    });
    let mut frames = Vec::new();
    while let Ok(p) = cap.next_packet() {
        frames.push(p.data.to_vec());
    }
    frames
}

fn main() {
    let Some(file) = arg("--file") else {
        eprintln!("usage: load_lo --file CAPTURE [--pps N (200000)] [--seconds S (10)]");
        std::process::exit(2)
    };
    let pps = num("--pps", 200_000.0);
    let seconds = num("--seconds", 10.0);
    let frames = load(&file);
    if frames.is_empty() {
        eprintln!("load_lo: {file} holds no packets");
        std::process::exit(2)
    }
    // A capture handle used only to send: it takes as little as libpcap allows and lets
    // nothing through its own filter.
    let mut out = pcap::Capture::from_device("lo")
        .and_then(|c| c.snaplen(64).buffer_size(1 << 16).open())
        .unwrap_or_else(|e| {
            eprintln!("load_lo: cannot open lo (root or CAP_NET_RAW is needed): {e}");
            std::process::exit(2)
        });
    let _ = out.filter("less 1", true);

    let total = (pps * seconds) as u64;
    let mut sent = 0u64;
    let mut failed = 0u64;
    let start = Instant::now();
    // Paced in steps of half a millisecond: each step sends what the rate allows so far.
    while sent < total {
        let due = ((start.elapsed().as_secs_f64() * pps) as u64).min(total);
        while sent < due {
            if out
                .sendpacket(&frames[(sent % frames.len() as u64) as usize][..])
                .is_err()
            {
                failed += 1;
            }
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let took = start.elapsed().as_secs_f64();
    println!(
        "load_lo: {sent} packets in {took:.2} s ({:.0}/s), {failed} failed to send",
        sent as f64 / took
    );
}
