#!/usr/bin/env bash
# End-to-end benchmark (issue 4): tcpscope against tcpdump, tshark and tcptrace on the same
# synthetic capture, in one run.
#
#   scripts/bench.sh [--connections N] [--keep DIR] [--runs N] [--slow-runs N] [--skip-slow]
#                    [--skip-full] [--skip-pcapng]
#
# Builds tcpscope and the generator (examples/gen_capture.rs) in release, writes a
# headers-only capture (snap length 96, as `tcpdump -s 96`), a full-size variant of the
# same traffic, and the headers-only capture as pcapng (editcap), then times every tool
# with hyperfine, in interleaved rounds, and measures its peak RSS with /usr/bin/time. 200,000 connections (the
# default) give about 4.4 million packets; the whole run takes about 2 minutes on 2 cores.
#
# --keep DIR   write the captures and the results (hyperfine's JSON of every round, the
#              final table) to DIR and leave them there; otherwise a temporary folder is
#              removed
# --runs N     rounds of the fast commands (default 3, after 1 warm-up round): each round
#              runs each of them once
# --slow-runs N  runs of tshark and of tcptrace (default 1, no warm-up; about 20 s each for
#              tshark): their median is what the ratios divide by. tshark's time on one file
#              has varied from 17.7 s to 23.9 s between runs on the same machine
# --skip-slow  leave out tshark and tcptrace
# --skip-full  leave out the full-size capture
# --skip-pcapng  leave out the pcapng capture
#
# Needs hyperfine, tcpdump, GNU time and python3; tshark, tcptrace and editcap (from tshark's
# packages) are optional (skipped, and said so, when missing). On Debian/Ubuntu:
#   apt-get install -y hyperfine tcpdump time tshark tcptrace
set -euo pipefail
cd "$(dirname "$0")/.."

connections=200000
keep=""
runs=3
slow_runs=1
skip_slow=0
skip_full=0
skip_pcapng=0
while [ $# -gt 0 ]; do
    case "$1" in
        --connections) connections="$2"; shift 2 ;;
        --keep) keep="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --slow-runs) slow_runs="$2"; shift 2 ;;
        --skip-slow) skip_slow=1; shift ;;
        --skip-full) skip_full=1; shift ;;
        --skip-pcapng) skip_pcapng=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

started=$(date +%s)
for tool in hyperfine tcpdump python3; do
    command -v "$tool" >/dev/null || { echo "bench.sh: $tool is missing (apt-get install -y $tool)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "bench.sh: /usr/bin/time is missing (apt-get install -y time)" >&2; exit 2; }

if [ -n "$keep" ]; then
    mkdir -p "$keep"
    dir=$(cd "$keep" && pwd)
else
    dir=$(mktemp -d /tmp/tcpscope-bench.XXXXXX)
    trap 'rm -rf "$dir"' EXIT
fi

echo "== machine"
echo "nproc:  $(nproc)"
echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "kernel: $(uname -srm)"
echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "tools:  $(hyperfine --version); $(tcpdump --version 2>&1 | head -1)"
have_tshark=0
have_tcptrace=0
if [ "$skip_slow" = 1 ]; then
    echo "        tshark and tcptrace: skipped (--skip-slow)"
else
    if command -v tshark >/dev/null; then
        have_tshark=1
        echo "        $(tshark --version 2>/dev/null | head -1)"
    else
        echo "        tshark: not installed, skipped (apt-get install -y tshark)"
    fi
    if command -v tcptrace >/dev/null; then
        have_tcptrace=1
        echo "        tcptrace $(tcptrace -v 2>&1 | grep -m1 -o 'version [0-9.]*' | cut -d' ' -f2)"
    else
        echo "        tcptrace: not installed, skipped (apt-get install -y tcptrace)"
    fi
fi
if [ "$skip_pcapng" = 0 ] && ! command -v editcap >/dev/null; then
    skip_pcapng=1
    echo "        editcap: not installed, pcapng skipped (apt-get install -y tshark)"
fi
echo "results: $dir"

echo
echo "== build"
cargo build --release --quiet --bin tcpscope --example gen_capture
tcpscope="$PWD/target/release/tcpscope"
gen="$PWD/target/release/examples/gen_capture"

echo
echo "== captures ($connections connections)"
headers="$dir/headers.pcap"
full="$dir/full.pcap"
"$gen" --connections "$connections" --snaplen 96 --out "$headers" | tee "$dir/gen.txt"
packets=$(grep -o '^gen_capture: [0-9]*' "$dir/gen.txt" | grep -o '[0-9]*$')
if [ "$skip_full" = 0 ]; then
    "$gen" --connections "$connections" --snaplen full --out "$full" >/dev/null
    echo "full-size variant: $(du -h "$full" | cut -f1), headers-only: $(du -h "$headers" | cut -f1)"
fi
pcapng="$dir/headers.pcapng"
if [ "$skip_pcapng" = 0 ]; then
    editcap -F pcapng "$headers" "$pcapng"
    echo "pcapng variant of the headers-only capture: $(du -h "$pcapng" | cut -f1)"
fi

# Each command runs under /usr/bin/time, which appends its peak RSS (KiB) to rss/NAME; the
# final table takes the largest. The wrapper costs a fork and a wait, well under a
# millisecond.
mkdir -p "$dir/rss" "$dir/hyperfine"
rm -f "$dir"/rss/* "$dir"/hyperfine/*
timed() { # NAME COMMAND: hyperfine's -n NAME COMMAND, NUL-separated
    local file
    file="$dir/rss/$(printf %s "$1" | tr -c 'A-Za-z0-9' _)"
    printf -- '-n\0%s\0/usr/bin/time -a -o %s -f %%M %s\0' "$1" "$file" "$2"
}
bench() { # LABEL HYPERFINE-OPTIONS... -- NAME COMMAND NAME COMMAND ...
    local label="$1"; shift
    local opts=()
    while [ "$1" != "--" ]; do opts+=("$1"); shift; done
    shift
    local args=()
    while [ $# -gt 0 ]; do
        while IFS= read -r -d '' a; do args+=("$a"); done < <(timed "$1" "$2")
        shift 2
    done
    echo
    echo "== $label"
    hyperfine --style basic "${opts[@]}" \
        --export-markdown "$dir/hyperfine/$label.md" --export-json "$dir/hyperfine/$label.json" \
        "${args[@]}"
}
# The same commands in rounds: each round runs every command once, starting one further
# along each time, after one round that is not counted (warm-up). The machine's speed drifts
# by 10% and more from one minute to the next (other tenants); hyperfine's runs of one
# command one after another then put a drift between two commands into their ratio, where
# rounds spread it over all of them.
rounds() { # LABEL -- NAME COMMAND NAME COMMAND ...
    local label="$1"; shift 2
    local names=() commands=()
    while [ $# -gt 0 ]; do names+=("$1"); commands+=("$2"); shift 2; done
    local n=${#names[@]} round i k
    echo
    echo "== $label: $runs rounds of ${names[*]}"
    for round in $(seq 0 "$runs"); do
        local args=()
        for i in $(seq 0 $((n - 1))); do
            k=$(( (i + round + n - 1) % n )) # round 1 in the order given: the table's order
            while IFS= read -r -d '' a; do args+=("$a"); done < <(timed "${names[$k]}" "${commands[$k]}")
        done
        # Round 0 warms up (its peak RSS still counts: it is the same command).
        hyperfine --style none --runs 1 --export-json "$dir/hyperfine/$label.r$round.json" "${args[@]}"
        [ "$round" = 0 ] && rm "$dir/hyperfine/$label.r$round.json"
        printf '%s' "$([ "$round" = 0 ] && echo "warm-up" || echo " $round")"
    done
    echo
}

rounds headers -- \
    "tcpdump" "tcpdump -r $headers -w /dev/null" \
    "tcpscope table" "$tcpscope read $headers --format table > /dev/null" \
    "tcpscope json" "$tcpscope read $headers --format json > /dev/null" \
    "tcpscope text" "$tcpscope read $headers --format text > /dev/null"

slow=()
[ "$have_tshark" = 1 ] && slow+=("tshark" "tshark -n -r $headers -q -z conv,tcp > /dev/null")
[ "$have_tcptrace" = 1 ] && slow+=("tcptrace" "tcptrace -n $headers > /dev/null")
if [ "${#slow[@]}" -gt 0 ]; then
    bench headers-slow --runs "$slow_runs" -- "${slow[@]}"
fi

if [ "$skip_full" = 0 ]; then
    rounds full -- \
        "tcpdump (full)" "tcpdump -r $full -w /dev/null" \
        "tcpscope table (full)" "$tcpscope read $full --format table > /dev/null" \
        "tcpscope json (full)" "$tcpscope read $full --format json > /dev/null"
fi

if [ "$skip_pcapng" = 0 ]; then
    rounds pcapng -- \
        "tcpdump (pcapng)" "tcpdump -r $pcapng -w /dev/null" \
        "tcpscope table (pcapng)" "$tcpscope read $pcapng --format table > /dev/null" \
        "tcpscope json (pcapng)" "$tcpscope read $pcapng --format json > /dev/null"
fi

echo
echo "== results: $packets packets, $connections connections"
python3 - "$dir" "$packets" <<'EOF' | tee "$dir/results.md"
import json, os, re, sys

d, packets = sys.argv[1], int(sys.argv[2])
hf = os.path.join(d, "hyperfine")
runs = {}  # command name -> [(seconds, CPU seconds)], in the order the files list them
for label in ("headers", "headers-slow", "full", "pcapng"):
    files = [label + ".json"] if os.path.exists(os.path.join(hf, label + ".json")) else sorted(
        (f for f in os.listdir(hf) if re.fullmatch(re.escape(label) + r"\.r\d+\.json", f)),
        key=lambda f: int(f.rsplit(".r", 1)[1].split(".")[0]))
    for f in files:
        for r in json.load(open(os.path.join(hf, f)))["results"]:
            users = r.get("user") or 0.0
            systems = r.get("system") or 0.0
            runs.setdefault(r["command"], []).extend((t, users + systems) for t in r["times"])

def median(xs):
    xs = sorted(xs)
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2

rows = []
for name, got in runs.items():
    times = [t for t, _ in got]
    rss = [int(x) for x in open(os.path.join(d, "rss", re.sub("[^A-Za-z0-9]", "_", name))).read().split() if x.isdigit()]
    rows.append((name, median(times), min(times), max(times), len(times), max(rss) / 1024,
                 median([c for _, c in got])))
seconds = {name: m for name, m, *_ in rows}  # medians

def ratio(t, ref):
    return f"{t / seconds[ref]:.2f}×" if ref in seconds else "-"

def variant(name):  # "full" or "pcapng" for the other captures' rows, else None
    m = re.search(r"\((\w+)\)$", name)
    return m.group(1) if m else None

def base(name):  # each capture's rows compare with tcpdump on that capture
    return f"tcpdump ({variant(name)})" if variant(name) else "tcpdump"

print("| tool | runs | seconds (median) | min – max | CPU s | packets/s | vs tcpdump | vs tshark | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, m, lo, hi, n, rss, cpu in rows:
    print(f"| {name} | {n} | {m:.3f} | {lo:.3f} – {hi:.3f} | {cpu:.2f} | {packets / m / 1e6:.2f} M | "
          f"{ratio(m, base(name))} | {'-' if variant(name) else ratio(m, 'tshark')} | {rss:.0f} |")
print()
print("Runs of the fast commands are interleaved in rounds; seconds and CPU s are medians over")
print("the rounds. vs X: this tool's median time divided by X's on the same file (below 1 is")
print("faster); tshark runs on the headers-only pcap only. CPU s: user + system time of a run,")
print("on all cores; above the seconds, the tool used more than one core. Peak RSS: the largest")
print("of the runs, from /usr/bin/time.")

# Issue 4's goals, checked on this run.
rss_of = {name: rss for name, _, _, _, _, rss, _ in rows}
goals = []
for fmt in ("table", "json"):
    name = f"tcpscope {fmt}"
    if name in seconds and "tcpdump" in seconds:
        pps, vs = packets / seconds[name] / 1e6, seconds[name] / seconds["tcpdump"]
        # "At least 8 million packets/s, i.e. within 1.5x of tcpdump": the issue's tcpdump
        # read 12 M packets/s; the ratio is what carries from one machine to another.
        goals.append((f"{fmt}: within 1.5x of tcpdump (8 M packets/s at tcpdump's 12 M)",
                      f"{vs:.2f}x, {pps:.2f} M packets/s", vs <= 1.5))
    if name in seconds and "tshark" in seconds:
        times = seconds["tshark"] / seconds[name]
        goals.append((f"{fmt}: at least 50x faster than tshark", f"{times:.1f}x", times >= 50))
if "tcpscope json" in rss_of:
    goals.append(("json: peak RSS under 64 MiB", f"{rss_of['tcpscope json']:.0f} MiB",
                  rss_of["tcpscope json"] < 64))
if "tcpscope text" in seconds:
    pps = packets / seconds["tcpscope text"] / 1e6
    goals.append(("text: at least 2 M packets/s", f"{pps:.2f} M packets/s", pps >= 2))
if goals:
    print()
    print("| goal (issue 4) | this run | met |")
    print("|---|---|---|")
    for goal, got, met in goals:
        print(f"| {goal} | {got} | {'yes' if met else 'no'} |")
EOF
echo
echo "bench.sh took $(( $(date +%s) - started )) s"
