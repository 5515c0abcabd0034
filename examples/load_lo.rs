//! A loopback load generator for the live-capture benchmark (`scripts/live_bench.sh`): opens
//! `--connections` TCP connections to a local sink on 127.0.0.1:`--port` and writes small
//! messages with TCP_NODELAY, paced to about `--pps` data segments per second, for
//! `--seconds`; then closes every connection. Traffic never leaves the loopback interface.
//!
//! cargo run --release --example load_lo -- --port 9977 --pps 100000 --seconds 10

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let port = arg("--port", 9977.0) as u16;
    let pps = arg("--pps", 100_000.0);
    let seconds = arg("--seconds", 10.0);
    let conns = arg("--connections", 16.0) as usize;

    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the sink");
    let sink = thread::spawn(move || {
        let mut readers = Vec::new();
        for _ in 0..conns {
            let (mut s, _) = listener.accept().expect("accept");
            readers.push(thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
            }));
        }
        for r in readers {
            let _ = r.join();
        }
    });

    let mut streams: Vec<TcpStream> = (0..conns)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.set_nodelay(true).expect("TCP_NODELAY");
            s
        })
        .collect();
    let msg = [0x5au8; 64];
    let start = Instant::now();
    let total = (pps * seconds) as u64;
    let mut sent = 0u64;
    // Pace in 1 ms steps: each step sends what the rate allows so far.
    while sent < total {
        let due = ((start.elapsed().as_secs_f64() * pps) as u64).min(total);
        while sent < due {
            let s = &mut streams[(sent % conns as u64) as usize];
            if s.write_all(&msg).is_err() {
                break;
            }
            sent += 1;
        }
        thread::sleep(Duration::from_micros(500));
    }
    let took = start.elapsed().as_secs_f64();
    drop(streams);
    let _ = sink.join();
    println!(
        "load_lo: {sent} writes in {took:.2} s ({:.0}/s) over {conns} connections",
        sent as f64 / took
    );
}
