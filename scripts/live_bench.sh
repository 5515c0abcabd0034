#!/usr/bin/env bash
# Live-capture throughput on loopback (issue 4): tcpscope captures on lo while
# examples/load_lo.rs replays a generated capture onto lo at a paced rate; prints what the
# generator sent, what tcpscope analysed and libpcap's drop counters. Needs root (or
# CAP_NET_RAW). The replayed packets are addressed to hosts that are not this one, so the
# kernel drops them after the captures have seen them: nothing answers, nothing leaves lo.
#
#   scripts/live_bench.sh [PPS] [SECONDS]      (defaults: 200000 10)
set -euo pipefail
cd "$(dirname "$0")/.."
pps=${1:-200000}
secs=${2:-10}
cargo build --release --quiet --bin tcpscope --example load_lo --example gen_capture
dir=$(mktemp -d /tmp/tcpscope-live.XXXXXX)
trap 'rm -rf "$dir"' EXIT
# Enough connections (about 22 packets each) that the file does not run out.
conns=$(( (pps * secs) / 20 + 1000 ))
./target/release/examples/gen_capture --out "$dir/load.pcap" --connections "$conns" >/dev/null
# The generated hosts: 10.0.0.0/8 clients, 172.16.0.0/12 servers.
./target/release/tcpscope live lo --format table --duration "$((secs + 4))" \
    tcp and net 172.16.0.0/12 >"$dir/out" 2>"$dir/err" &
pid=$!
sleep 2
./target/release/examples/load_lo --file "$dir/load.pcap" --pps "$pps" --seconds "$secs"
wait "$pid"
grep -E "packets, |libpcap:" "$dir/out"
