#!/usr/bin/env bash
# Live-capture throughput on loopback: tcpscope captures while examples/load_lo.rs pushes
# small TCP segments through 127.0.0.1 at a paced rate; prints what tcpscope analysed and
# libpcap's drop counters. Needs root (or CAP_NET_RAW). Traffic stays on lo.
#
#   scripts/live_bench.sh [PPS] [SECONDS]      (defaults: 200000 10)
set -euo pipefail
cd "$(dirname "$0")/.."
pps=${1:-200000}
secs=${2:-10}
port=9977
cargo build --release --quiet --bin tcpscope --example load_lo
out=$(mktemp)
./target/release/tcpscope --format table live lo tcp port "$port" --duration "$((secs + 3))" >"$out" 2>/dev/null &
pid=$!
sleep 1
./target/release/examples/load_lo --port "$port" --pps "$pps" --seconds "$secs"
wait "$pid"
grep -E "packets, |libpcap:" "$out"
rm -f "$out"
