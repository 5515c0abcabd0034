#!/usr/bin/env python3
"""Compare tcpscope with tshark 4.0 (and Zeek baselines) on a folder of captures.

Usage:
  scripts/conformance.py CORPUS_DIR [--tcpscope PATH] [--differences TSV]
                         [--only FILE] [--verbose] [--dump-disagreements TSV]
                         [--jobs N]

For every readable capture of CORPUS_DIR/MANIFEST.tsv (files under broken/ are
skipped) it runs tshark (the preferences and display filter of
oracle_packets.sh) and `tcpscope --format json --packets read FILE`, joins the
two per frame number and reports:

  1. stream grouping (tshark tcp.stream vs tcpscope conn, exact frame sets),
  2. packets per direction for streams grouped alike,
  3. handshake/close facts per stream (SYN, SYN-ACK, FIN and RST per
     direction, iRTT present),
  4. per Wireshark analysis flag, agreement over the segments both tools saw,
  5. the same after the documented differences (docs/differences.tsv),
  6. Zeek conn_state/history against the Zeek conn.log baselines.

It is a report, not a test: the exit status is 0 unless the script itself
fails. See scripts/README.md.
"""

import argparse
import concurrent.futures
import csv
import datetime
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict

# Wireshark analysis flags compared (suffix of tcp.analysis.*).
WS_FLAGS = [
    "retransmission", "fast_retransmission", "spurious_retransmission",
    "out_of_order", "lost_segment", "ack_lost_segment", "duplicate_ack",
    "zero_window", "zero_window_probe", "zero_window_probe_ack",
    "window_full", "window_update", "keep_alive", "keep_alive_ack",
    "reused_ports",
]
FACTS = ["syn", "syn_ack", "fin_a2b", "fin_b2a", "rst_a2b", "rst_b2a", "irtt"]

TSHARK_PREFS = [
    "-o", "tcp.analyze_sequence_numbers:TRUE",
    "-o", "tcp.relative_sequence_numbers:TRUE",
    "-o", "tcp.calculate_timestamps:TRUE",
    "-o", "tcp.fastrt_supersedes_ooo:TRUE",
]
TSHARK_FILTER = "tcp && !icmp && !icmpv6"
TSHARK_FIELDS = [
    "frame.number", "frame.time_epoch", "tcp.stream", "frame.protocols",
    "ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport",
    "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.fin", "tcp.flags.reset",
    "tcp.len", "tcp.seq", "tcp.ack", "tcp.window_size_value",
    "tcp.analysis.initial_rtt", "ip.fragment.count", "ipv6.fragment.count",
] + ["tcp.analysis." + f for f in WS_FLAGS]

ZEEK_DEFAULT_FIELDS = [
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto",
    "service", "duration", "orig_bytes", "resp_bytes", "conn_state",
    "local_orig", "local_resp", "missed_bytes", "history", "orig_pkts",
    "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "tunnel_parents", "ip_proto",
]

TIMEOUT = 600


# --------------------------------------------------------------------------
# small helpers

def pct(n, d, places=1):
    """Percentage rounded down, so that 100% is only printed when n == d."""
    if d == 0:
        return "n/a"
    if n == d:
        return "100%"
    scale = 10 ** places
    return "%.*f%%" % (places, (100 * scale * n // d) / scale)


def pct2(n, d):
    return pct(n, d, 2)


def ratio(n, d):
    return "%d/%d (%s)" % (n, d, pct(n, d))


def norm_addr(a):
    a = a.strip().strip("[]")
    try:
        return ipaddress.ip_address(a).compressed
    except ValueError:
        return a


def split_endpoint(s):
    """'1.2.3.4:80' or '[fd00::1]:80' -> (addr, port)."""
    if s is None:
        return None
    s = str(s)
    if s.startswith("["):
        addr, _, port = s[1:].partition("]:")
    else:
        addr, _, port = s.rpartition(":")
    try:
        return (norm_addr(addr), int(port))
    except ValueError:
        return None


def fmt_ep(ep):
    if ep is None:
        return "?"
    a, p = ep
    return ("[%s]:%d" % (a, p)) if ":" in a else ("%s:%d" % (a, p))


def last_value(v):
    return v.split(",")[-1] if v else ""


def rfc3339_to_ns(ts):
    """'2009-03-03T15:55:11.960416000Z' -> integer ns since the epoch."""
    if not ts:
        return None
    try:
        t = ts.rstrip("Z")
        base, _, frac = t.partition(".")
        dt = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S")
        dt = dt.replace(tzinfo=datetime.timezone.utc)
        secs = int(dt.timestamp())
        frac = (frac + "000000000")[:9]
        return secs * 1_000_000_000 + int(frac or 0)
    except ValueError:
        return None


def epoch_to_ns(s):
    if not s:
        return None
    neg = s.startswith("-")
    s = s.lstrip("-")
    whole, _, frac = s.partition(".")
    try:
        v = int(whole or 0) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)
    except ValueError:
        return None
    return -v if neg else v


def tcpscope_flagbits(s):
    s = s or ""
    return {"S": "S" in s, "A": "." in s, "F": "F" in s, "R": "R" in s}


def bits_str(b):
    return "".join(k for k in "SAFR" if b[k]) or "-"


# --------------------------------------------------------------------------
# running the tools

def run(cmd):
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TIMEOUT)
        return (r.returncode, r.stdout.decode("utf-8", "replace"),
                r.stderr.decode("utf-8", "replace"))
    except subprocess.TimeoutExpired:
        return (-1, "", "timeout after %d s" % TIMEOUT)
    except OSError as e:
        return (-1, "", str(e))


def run_tshark(tshark, path):
    cmd = [tshark, "-n", "-r", path, "-Y", TSHARK_FILTER] + TSHARK_PREFS + [
        "-T", "fields", "-E", "header=n", "-E", "separator=/t",
        "-E", "occurrence=a", "-E", "quote=n"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    rc, out, err = run(cmd)
    rows = {}
    idx = {f: i for i, f in enumerate(TSHARK_FIELDS)}
    for line in out.splitlines():
        c = line.split("\t")
        if len(c) < len(TSHARK_FIELDS):
            c += [""] * (len(TSHARK_FIELDS) - len(c))
        g = lambda f: c[idx[f]]  # noqa: E731
        try:
            frame = int(g("frame.number"))
        except ValueError:
            continue
        stream = last_value(g("tcp.stream"))
        if stream == "":
            continue
        # The IP layer carrying the (innermost) TCP header.
        protos = g("frame.protocols").split(":")
        tcp_i = max((i for i, p in enumerate(protos) if p == "tcp"), default=len(protos))
        fam = None
        for p in protos[:tcp_i]:
            if p in ("ip", "ipv6"):
                fam = p
        if fam == "ipv6":
            src, dst = last_value(g("ipv6.src")), last_value(g("ipv6.dst"))
        else:
            src, dst = last_value(g("ip.src")), last_value(g("ip.dst"))
        try:
            sport, dport = int(last_value(g("tcp.srcport"))), int(last_value(g("tcp.dstport")))
        except ValueError:
            sport = dport = -1
        bit = lambda f: last_value(g(f)) in ("1", "True", "true")  # noqa: E731
        irtt = last_value(g("tcp.analysis.initial_rtt"))
        try:
            irtt_set = irtt != "" and float(irtt) > 0
        except ValueError:
            irtt_set = False

        def num(f):
            v = last_value(g(f))
            try:
                return int(v)
            except ValueError:
                return None
        rows[frame] = {
            "ns": epoch_to_ns(g("frame.time_epoch")),
            "stream": int(stream),
            "chain": ":".join(protos[:tcp_i + 1]),
            "src": (norm_addr(src), sport), "dst": (norm_addr(dst), dport),
            "bits": {"S": bit("tcp.flags.syn"), "A": bit("tcp.flags.ack"),
                     "F": bit("tcp.flags.fin"), "R": bit("tcp.flags.reset")},
            "len": num("tcp.len"), "seq": num("tcp.seq"), "ack": num("tcp.ack"),
            "win": num("tcp.window_size_value"),
            "irtt": irtt_set,
            "reassembled": bool(g("ip.fragment.count") or g("ipv6.fragment.count")),
            "flags": {f for f in WS_FLAGS if g("tcp.analysis." + f) != ""},
        }
    return {"rc": rc, "err": err.strip(), "rows": rows}


def run_tcpscope(tcpscope, path):
    # Wireshark never forgets a connection; tcpscope's idle timeouts are turned off here so
    # that stream grouping is compared on the same terms (README: `--idle-timeout 0`).
    rc, out, err = run([tcpscope, "--format", "json", "--packets", "--idle-timeout", "0",
                        "--handshake-timeout", "0", "read", path])
    segs, conns, summary = {}, {}, None
    dup_frames = []
    other_names = Counter()
    bad_lines = 0
    for line in out.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            o = json.loads(line)
        except ValueError:
            bad_lines += 1
            continue
        t = o.get("type")
        if t == "segment":
            fr = o.get("frame")
            if not isinstance(fr, int):
                bad_lines += 1
                continue
            if fr in segs:
                dup_frames.append(fr)
                continue
            names = set(o.get("analysis") or [])
            for n in names - set(WS_FLAGS):
                other_names[n] += 1
            segs[fr] = {
                "ns": rfc3339_to_ns(o.get("ts")), "conn": o.get("conn"),
                "from": o.get("from"), "fl": o.get("flags", ""),
                "bits": tcpscope_flagbits(o.get("flags", "")),
                "len": o.get("len"), "seq": o.get("seq"), "ack": o.get("ack"),
                "win": o.get("win"),
                "flags": names & set(WS_FLAGS),
            }
        elif t == "connection":
            conns[o.get("id")] = o
        elif t == "summary":
            summary = o
    return {"rc": rc, "err": err.strip(), "segs": segs, "conns": conns,
            "summary": summary, "dup_frames": dup_frames,
            "other_names": other_names, "bad_lines": bad_lines}


def run_tcpscope_zeek(tcpscope, path):
    rc, out, err = run([tcpscope, "--format", "zeek", "read", path])
    if rc != 0:
        return {"ok": False, "rc": rc, "err": err.strip().splitlines()[:1]}
    return {"ok": True, "rows": parse_zeek_log(out.splitlines())}


# --------------------------------------------------------------------------
# Zeek logs

def parse_zeek_log(lines, default_fields=None):
    """Rows (dicts) of a Zeek conn.log or zeek-cut output."""
    fields = None
    rows = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if fields is None and cols and cols[0] in ("ts", "uid", "id.orig_h"):
            fields = cols  # zeek-cut -m header
            continue
        f = fields or default_fields or ZEEK_DEFAULT_FIELDS
        rows.append({k: (cols[i] if i < len(cols) else "") for i, k in enumerate(f) if k})
    return rows, (fields or default_fields or ZEEK_DEFAULT_FIELDS)


def zeek_cut_columns(produced_by):
    """Column names of a `zeek-cut [-m] a b c < conn.log` command, if any."""
    for part in produced_by.split(";"):
        w = part.split()
        if "zeek-cut" in w:
            cols = []
            for x in w[w.index("zeek-cut") + 1:]:
                if x.startswith("<") or x.startswith(">"):
                    break
                if x.startswith("-"):
                    continue
                cols.append(x)
            return cols
    return None


def load_zeek_baselines(corpus):
    """{capture: {"baseline": name, "rows": [...], "cols": [...]}} for every
    conn.log baseline with a conn_state or history column; plus skipped ones."""
    out, skipped = {}, []
    bdir = os.path.join(corpus, "baselines")
    index = os.path.join(bdir, "INDEX.tsv")
    entries = []
    if os.path.exists(index):
        with open(index, newline="") as fh:
            for r in csv.DictReader(fh, delimiter="\t"):
                entries.append((r.get("baseline", ""), r.get("capture", ""), r.get("produced_by", "")))
    elif os.path.isdir(bdir):
        for n in sorted(os.listdir(bdir)):
            cap = n.split(".zeek-conn.log")[0] if ".zeek-conn.log" in n else None
            if cap:
                entries.append((n, cap, ""))
    for name, cap, prod in entries:
        if not (name.endswith(".zeek-conn.log") or name.endswith(".cut")):
            continue
        p = os.path.join(bdir, name)
        if not os.path.exists(p):
            continue
        with open(p, errors="replace") as fh:
            lines = fh.readlines()
        default = zeek_cut_columns(prod) if name.endswith(".cut") else None
        rows, cols = parse_zeek_log(lines, default)
        have = [c for c in ("conn_state", "history") if c in cols]
        if not have:
            skipped.append((name, "no conn_state/history column"))
            continue
        rows = [r for r in rows if r.get("proto", "tcp") == "tcp"]
        out.setdefault(cap, []).append({"baseline": name, "rows": rows, "cols": have})
    return out, skipped


def zeek_key(r):
    try:
        return ((norm_addr(r["id.orig_h"]), int(r["id.orig_p"])),
                (norm_addr(r["id.resp_h"]), int(r["id.resp_p"])))
    except (KeyError, ValueError):
        return None


def zeek_rows_from_json(conns):
    rows = []
    for c in conns.values():
        z = c.get("zeek")
        if not isinstance(z, dict):
            continue
        cl, sv = split_endpoint(c.get("client")), split_endpoint(c.get("server"))
        if cl is None or sv is None:
            continue
        rows.append({"id.orig_h": cl[0], "id.orig_p": str(cl[1]),
                     "id.resp_h": sv[0], "id.resp_p": str(sv[1]),
                     "conn_state": z.get("conn_state", ""),
                     "history": z.get("history", "")})
    return rows


def compare_zeek(baseline_rows, cols, ours):
    """Match baseline rows to ours by 4-tuple (either orientation)."""
    pool = defaultdict(list)
    for r in ours:
        k = zeek_key(r)
        if k:
            pool[frozenset(k)].append(r)
    res = []
    for b in baseline_rows:
        k = zeek_key(b)
        cand = pool.get(frozenset(k), []) if k else []
        m = None
        # prefer same orientation
        for i, r in enumerate(cand):
            if zeek_key(r) == k:
                m = cand.pop(i)
                break
        if m is None and cand:
            m = cand.pop(0)
        item = {"key": k, "match": m is not None,
                "flipped": m is not None and zeek_key(m) != k}
        for c in cols:
            item[c] = (b.get(c, ""), m.get(c, "") if m else None)
        res.append(item)
    return res


# --------------------------------------------------------------------------
# documented differences

class Differences:
    def __init__(self, path):
        self.path = path
        self.rows = []
        self.used = set()
        if path and os.path.exists(path):
            with open(path, newline="", errors="replace") as fh:
                header = None
                for n, line in enumerate(fh, 1):
                    line = line.rstrip("\r\n")
                    if not line.strip() or line.lstrip().startswith("#"):
                        continue
                    c = line.split("\t")
                    if header is None and c[0].strip().lower() == "file":
                        header = c
                        continue
                    if len(c) < 3:
                        continue
                    self.rows.append((os.path.basename(c[0].strip()), c[1].strip(),
                                      c[2].strip(), c[3].strip() if len(c) > 3 else "", n))

    def match(self, file, frames, name):
        """Reason if a row covers (file, any of frames, name), else None."""
        base = os.path.basename(file)
        for i, (f, fr, fl, reason, _) in enumerate(self.rows):
            if f != base and f != file:
                continue
            if fl != "*" and fl != name:
                continue
            if fr != "*":
                try:
                    if int(fr) not in frames:
                        continue
                except ValueError:
                    continue
            self.used.add(i)
            return reason or "documented"
        return None

    def unused(self):
        return [r for i, r in enumerate(self.rows) if i not in self.used]


# --------------------------------------------------------------------------
# per-file analysis

def conn_endpoints(conn):
    if not conn:
        return None, None
    return split_endpoint(conn.get("client")), split_endpoint(conn.get("server"))


def seg_src(seg, conns):
    cl, sv = conn_endpoints(conns.get(seg["conn"]))
    if seg["from"] == "client":
        return cl
    if seg["from"] == "server":
        return sv
    return None


def missing_cause(row):
    if row["reassembled"]:
        return "IP fragments (tshark reassembled)"
    return "not decoded: " + row["chain"]


def analyse_file(name, ts, tc, diffs, want_details):
    R = {"file": name}
    trows, segs, conns = ts["rows"], tc["segs"], tc["conns"]
    tframes, cframes = set(trows), set(segs)
    joined = tframes & cframes
    R.update(t_segs=len(tframes), c_segs=len(cframes), joined=len(joined))
    R["t_only"] = sorted(tframes - cframes)
    R["c_only"] = sorted(cframes - tframes)
    R["t_only_causes"] = Counter(missing_cause(trows[f]) for f in R["t_only"])
    R["tc_rc"], R["tc_err"], R["ts_rc"] = tc["rc"], tc["err"], ts["rc"]
    R["dup_frames"] = tc["dup_frames"]
    R["other_names"] = tc["other_names"]
    R["conn_missing"] = sorted({s["conn"] for s in segs.values() if s["conn"] not in conns})

    # ---- per-segment sanity (not part of the score, but suspicious) ----
    sanity = Counter()
    sanity_ex = defaultdict(list)

    def note(kind, fr, text):
        sanity[kind] += 1
        if len(sanity_ex[kind]) < 5:
            sanity_ex[kind].append("frame %d: %s" % (fr, text))
    for fr in sorted(joined):
        t, s = trows[fr], segs[fr]
        if t["ns"] is not None and s["ns"] is not None and abs(t["ns"] - s["ns"]) > 1000:
            note("timestamp", fr, "tshark %d ns, tcpscope %d ns" % (t["ns"], s["ns"]))
        if t["bits"] != s["bits"]:
            note("tcp flags", fr, "tshark %s, tcpscope %r" % (bits_str(t["bits"]), s["fl"]))
        if t["len"] is not None and s["len"] is not None and t["len"] != s["len"]:
            note("len", fr, "tshark %d, tcpscope %d" % (t["len"], s["len"]))
        if t["win"] is not None and s["win"] is not None and t["win"] != s["win"]:
            note("win", fr, "tshark %d, tcpscope %d" % (t["win"], s["win"]))
        if t["seq"] is not None and s["seq"] is not None and t["seq"] != s["seq"]:
            note("relative seq", fr, "tshark %d, tcpscope %d" % (t["seq"], s["seq"]))
        if t["bits"]["A"] and t["ack"] is not None and s["ack"] is not None and t["ack"] != s["ack"]:
            note("relative ack", fr, "tshark %d, tcpscope %d" % (t["ack"], s["ack"]))
        src = seg_src(s, conns)
        if src is None:
            note("direction", fr, "tcpscope from=%r, conn %r has no such endpoint" % (s["from"], s["conn"]))
        elif src != t["src"]:
            note("direction", fr, "tshark src %s, tcpscope %s (%s of conn %s)"
                 % (fmt_ep(t["src"]), fmt_ep(src), s["from"], s["conn"]))
    R["sanity"], R["sanity_ex"] = sanity, sanity_ex

    # ---- 1. stream grouping ----
    streams = defaultdict(set)
    for fr, t in trows.items():
        streams[t["stream"]].add(fr)
    cset = defaultdict(set)
    for fr, s in segs.items():
        cset[s["conn"]].add(fr)
    conn_of_set = {frozenset(v): k for k, v in cset.items()}
    agree = {}
    stream_dis = []
    for sid in sorted(streams):
        F = streams[sid]
        cid = conn_of_set.get(frozenset(F))
        if cid is not None:
            agree[sid] = cid
            continue
        causes = []
        miss = F - cframes
        if miss:
            mc = Counter(missing_cause(trows[f]) for f in miss)
            causes.append("%d frame(s) not in tcpscope (%s)" % (
                len(miss), ", ".join("%s" % k for k in mc)))
        cs = sorted({segs[f]["conn"] for f in F & cframes}, key=lambda x: (str(type(x)), x))
        if len(cs) > 1:
            causes.append("split across %d conns" % len(cs))
        extra_streams = set()
        extra_untracked = 0
        for c in cs:
            for f in cset[c] - F:
                if f in trows:
                    extra_streams.add(trows[f]["stream"])
                else:
                    extra_untracked += 1
        if extra_streams:
            causes.append("conn also holds %d other tshark stream(s)" % len(extra_streams))
        if extra_untracked:
            causes.append("conn holds %d frame(s) tshark has no TCP for" % extra_untracked)
        ep = trows[min(F)]
        stream_dis.append({"stream": sid, "frames": len(F), "conns": cs, "causes": causes,
                           "tuple": "%s <-> %s" % (fmt_ep(ep["src"]), fmt_ep(ep["dst"])),
                           "first": min(F)})
    R["streams"], R["streams_agree"], R["stream_dis"] = len(streams), len(agree), stream_dis
    # documented stream differences
    R["streams_doc"] = 0
    for d in stream_dis:
        why = diffs.match(name, streams[d["stream"]], "stream")
        if why:
            d["documented"] = why
            R["streams_doc"] += 1
    matched_conns = set(agree.values())
    R["conns"] = len(cset)
    R["conns_unmatched"] = len([c for c in cset if c not in matched_conns])

    # ---- 2 and 3. per direction packets and facts, on agreeing streams ----
    dir_ok = dir_total = 0
    dir_dis = []
    fact_ok = Counter()
    fact_tot = Counter()
    fact_dis = []
    for sid, cid in agree.items():
        F = sorted(streams[sid])
        a = trows[F[0]]["src"]
        b = trows[F[0]]["dst"]
        t_cnt = Counter("a2b" if trows[f]["src"] == a else "b2a" for f in F)
        conn = conns.get(cid)
        cl, sv = conn_endpoints(conn)
        pk = (conn or {}).get("packets") or {}
        c_cnt = Counter()
        if cl == a and sv == b:
            c_cnt["a2b"], c_cnt["b2a"] = pk.get("client", -1), pk.get("server", -1)
        elif cl == b and sv == a:
            c_cnt["a2b"], c_cnt["b2a"] = pk.get("server", -1), pk.get("client", -1)
        else:
            c_cnt["a2b"] = c_cnt["b2a"] = -1
        dir_total += 1
        if c_cnt["a2b"] == t_cnt["a2b"] and c_cnt["b2a"] == t_cnt["b2a"]:
            dir_ok += 1
        else:
            why = diffs.match(name, set(F), "packets")
            dir_dis.append({"stream": sid, "conn": cid,
                            "tshark": (t_cnt["a2b"], t_cnt["b2a"]),
                            "tcpscope": (c_cnt["a2b"], c_cnt["b2a"]),
                            "a": fmt_ep(a), "b": fmt_ep(b),
                            "client": fmt_ep(cl), "documented": why})
        # facts
        tf = dict.fromkeys(FACTS, False)
        cf = dict.fromkeys(FACTS, False)
        for f in F:
            t = trows[f]
            d = "a2b" if t["src"] == a else "b2a"
            if t["bits"]["S"] and not t["bits"]["A"]:
                tf["syn"] = True
            if t["bits"]["S"] and t["bits"]["A"]:
                tf["syn_ack"] = True
            if t["bits"]["F"]:
                tf["fin_" + d] = True
            if t["bits"]["R"]:
                tf["rst_" + d] = True
            if t["irtt"]:
                tf["irtt"] = True
            s = segs[f]
            src = seg_src(s, conns)
            sd = "a2b" if src == a else ("b2a" if src == b else None)
            if s["bits"]["S"] and not s["bits"]["A"]:
                cf["syn"] = True
            if s["bits"]["S"] and s["bits"]["A"]:
                cf["syn_ack"] = True
            if s["bits"]["F"] and sd:
                cf["fin_" + sd] = True
            if s["bits"]["R"] and sd:
                cf["rst_" + sd] = True
        # Wireshark's iRTT (last SYN to the first ACK-bearing non-SYN segment, refusals
        # included) is analysis.irtt_s; handshake.rtt_s is only for completed handshakes.
        an = (conn or {}).get("analysis") or {}
        if "irtt_s" in an:
            cf["irtt"] = an.get("irtt_s") is not None
        else:
            hs = (conn or {}).get("handshake") or {}
            cf["irtt"] = hs.get("rtt_s") is not None
        for k in FACTS:
            fact_tot[k] += 1
            if tf[k] == cf[k]:
                fact_ok[k] += 1
            else:
                fact_dis.append({"stream": sid, "conn": cid, "fact": k, "tshark": tf[k],
                                 "tcpscope": cf[k], "first": F[0],
                                 "documented": diffs.match(name, set(F), k)})
    R.update(dir_ok=dir_ok, dir_total=dir_total, dir_dis=dir_dis,
             fact_ok=fact_ok, fact_tot=fact_tot, fact_dis=fact_dis)

    # ---- 4 and 5. per flag ----
    fl = {f: Counter() for f in WS_FLAGS}
    flag_dis = []
    for fr in sorted(joined):
        tset, cs_ = trows[fr]["flags"], segs[fr]["flags"]
        for f in WS_FLAGS:
            ti, ci = f in tset, f in cs_
            c = fl[f]
            c["total"] += 1
            if ti and ci:
                c["both"] += 1
            elif ti:
                c["tshark_only"] += 1
            elif ci:
                c["tcpscope_only"] += 1
            if ti != ci:
                why = diffs.match(name, {fr}, f)
                if why:
                    c["documented"] += 1
                flag_dis.append({"frame": fr, "stream": trows[fr]["stream"],
                                 "conn": segs[fr]["conn"], "flag": f, "tshark": ti,
                                 "tcpscope": ci, "documented": why,
                                 "t_all": sorted(tset), "c_all": sorted(cs_)})
    # flags tshark raised on frames tcpscope never reported
    unjoined = Counter()
    for fr in R["t_only"]:
        for f in trows[fr]["flags"]:
            unjoined[f] += 1
    R["flags"], R["flag_dis"], R["flags_unjoined"] = fl, flag_dis, unjoined
    return R


# --------------------------------------------------------------------------
# output

def print_flag_table(fl, unjoined=None, indent="  ", skip_empty=False):
    hdr = ("flag", "tshark", "tcpscope", "both", "tsh-only", "tcs-only", "doc",
           "raw", "after-doc", "flagged-match")
    w = (24, 8, 9, 7, 9, 9, 6, 9, 10, 14)
    print(indent + "".join(h.ljust(x) if i == 0 else h.rjust(x) for i, (h, x) in enumerate(zip(hdr, w))))
    for f in WS_FLAGS:
        c = fl[f]
        tot = c["total"]
        dis = c["tshark_only"] + c["tcpscope_only"]
        union = c["both"] + dis
        if skip_empty and not union and not (unjoined and unjoined.get(f)):
            continue
        vals = (f, c["both"] + c["tshark_only"], c["both"] + c["tcpscope_only"], c["both"],
                c["tshark_only"], c["tcpscope_only"], c["documented"],
                pct2(tot - dis, tot), pct2(tot - dis + c["documented"], tot),
                pct(c["both"], union) if union else "-")
        line = "".join(str(v).ljust(x) if i == 0 else str(v).rjust(x) for i, (v, x) in enumerate(zip(vals, w)))
        if unjoined and unjoined.get(f):
            line += "   (+%d on frames tcpscope did not report)" % unjoined[f]
        print(indent + line)


def yn(b):
    return "yes" if b else "no"


def git_rev(root):
    try:
        r = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10)
        rev = r.stdout.decode().strip()
        d = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "src"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10)
        return rev + ("+dirty" if d.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("--tcpscope", default=None,
                    help="tcpscope binary (default: target/release/tcpscope, else PATH)")
    ap.add_argument("--tshark", default=os.environ.get("TSHARK", "tshark"))
    ap.add_argument("--differences", default=None,
                    help="documented differences TSV (default: docs/differences.tsv if it exists)")
    ap.add_argument("--only", action="append", default=[],
                    help="only this capture (manifest name, basename or substring); repeatable")
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--dump-disagreements", metavar="TSV", default=None,
                    help="write every disagreement (streams, packets, facts, flags, zeek) to TSV")
    ap.add_argument("--jobs", "-j", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    ap.add_argument("--limit", type=int, default=20,
                    help="max disagreements listed per file and kind with --verbose (0 = all)")
    args = ap.parse_args()

    tcpscope = args.tcpscope
    if tcpscope is None:
        cand = os.path.join(root, "target", "release", "tcpscope")
        tcpscope = cand if os.path.exists(cand) else (shutil.which("tcpscope") or cand)
    if not (os.path.exists(tcpscope) or shutil.which(tcpscope)):
        print("conformance: tcpscope binary not found: %s (cargo build --release)" % tcpscope)
        return 0
    if not shutil.which(args.tshark):
        print("conformance: tshark not found (%s)" % args.tshark)
        return 0
    dpath = args.differences
    if dpath is None:
        dflt = os.path.join(root, "docs", "differences.tsv")
        dpath = dflt if os.path.exists(dflt) else None
    elif not os.path.exists(dpath):
        print("conformance: note: differences file %s does not exist" % dpath)
    diffs = Differences(dpath)

    corpus = args.corpus
    manifest = os.path.join(corpus, "MANIFEST.tsv")
    files = []
    with open(manifest, newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            f = (r.get("file") or "").strip()
            if not f or f.startswith("broken/") or f.startswith("#"):
                continue
            if not os.path.exists(os.path.join(corpus, f)):
                print("conformance: note: %s listed in the manifest but missing" % f)
                continue
            files.append(f)
    if args.only:
        sel = []
        for f in files:
            for o in args.only:
                o = os.path.basename(o)
                if f == o or os.path.basename(f) == o:
                    sel.append(f)
                    break
        if not sel:
            sel = [f for f in files if any(os.path.basename(o) in f for o in args.only)]
        files = sel
    zbase, zskipped = load_zeek_baselines(corpus)

    tshark_ver = [v.split(" (Git")[0].rstrip(".") for v in
                  run([args.tshark, "--version"])[1].splitlines()[:1]]
    print("tcpscope conformance: %s (git %s) vs %s; corpus %s, %d capture(s)%s"
          % (tcpscope, git_rev(root), tshark_ver[0] if tshark_ver else "tshark",
             corpus, len(files),
             "; differences: %s (%d rows)" % (dpath, len(diffs.rows)) if dpath else "; no differences file"))

    def work(f):
        p = os.path.join(corpus, f)
        ts = run_tshark(args.tshark, p)
        tc = run_tcpscope(tcpscope, p)
        z = run_tcpscope_zeek(tcpscope, p) if f in zbase else None
        return f, ts, tc, z

    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        for f, ts, tc, z in ex.map(work, files):
            results[f] = (ts, tc, z)

    dump = []
    tot = Counter()
    flags_all = {f: Counter() for f in WS_FLAGS}
    unjoined_all = Counter()
    fact_ok, fact_tot = Counter(), Counter()
    cause_streams = defaultdict(lambda: Counter())  # cause -> file -> streams
    missing_causes = defaultdict(Counter)           # cause -> file -> frames
    sanity_all = defaultdict(Counter)               # kind -> file -> count
    other_names = Counter()
    zeek_res = []
    lim = args.limit if args.limit > 0 else None

    print()
    print("%-52s %7s %7s %7s %11s %9s %9s %6s %3s" % (
        "file", "tshark", "tcpscp", "joined", "streams", "pkts/dir", "facts", "flagΔ", "rc"))
    for f in files:
        ts, tc, z = results[f]
        R = analyse_file(f, ts, tc, diffs, args.verbose)
        for k in ("t_segs", "c_segs", "joined", "streams", "streams_agree", "streams_doc",
                  "dir_ok", "dir_total", "conns", "conns_unmatched"):
            tot[k] += R[k]
        tot["t_only"] += len(R["t_only"])
        tot["dir_doc"] += sum(1 for d in R["dir_dis"] if d["documented"])
        tot["fact_doc"] += sum(1 for d in R["fact_dis"] if d["documented"])
        tot["c_only"] += len(R["c_only"])
        for fl_ in WS_FLAGS:
            flags_all[fl_].update(R["flags"][fl_])
        unjoined_all.update(R["flags_unjoined"])
        fact_ok.update(R["fact_ok"])
        fact_tot.update(R["fact_tot"])
        other_names.update(R["other_names"])
        for d in R["stream_dis"]:
            for c in d["causes"] or ["?"]:
                cause_streams[normalise_cause(c)][f] += 1
        for c, n in R["t_only_causes"].items():
            missing_causes[c][f] += n
        for k, n in R["sanity"].items():
            sanity_all[k][f] += n
        if R["dup_frames"]:
            sanity_all["duplicate segment objects"][f] += len(R["dup_frames"])
        if R["conn_missing"]:
            sanity_all["segments whose conn has no connection object"][f] += len(R["conn_missing"])
        nflagdis = len(R["flag_dis"])
        facts_ok_n = sum(R["fact_ok"].values())
        facts_n = sum(R["fact_tot"].values())
        print("%-52s %7d %7d %7d %11s %9s %9s %6d %3s" % (
            f[:52], R["t_segs"], R["c_segs"], R["joined"],
            "%d/%d" % (R["streams_agree"], R["streams"]),
            "%d/%d" % (R["dir_ok"], R["dir_total"]),
            "%d/%d" % (facts_ok_n, facts_n), nflagdis, R["tc_rc"]))

        # ---- dump rows ----
        for d in R["stream_dis"]:
            dump.append((f, d["first"], "stream", "tshark stream %d (%d frames, %s)" % (d["stream"], d["frames"], d["tuple"]),
                         "conns %s" % ",".join(map(str, d["conns"])), "; ".join(d["causes"]), d.get("documented") or ""))
        for d in R["dir_dis"]:
            dump.append((f, "", "packets", "stream %d %s->%s %d / %s->%s %d" % (d["stream"], d["a"], d["b"], d["tshark"][0], d["b"], d["a"], d["tshark"][1]),
                         "conn %s %d / %d (client %s)" % (d["conn"], d["tcpscope"][0], d["tcpscope"][1], d["client"]), "", d["documented"] or ""))
        for d in R["fact_dis"]:
            dump.append((f, d["first"], d["fact"], "stream %d: %s" % (d["stream"], yn(d["tshark"])),
                         "conn %s: %s" % (d["conn"], yn(d["tcpscope"])), "", d["documented"] or ""))
        for d in R["flag_dis"]:
            dump.append((f, d["frame"], d["flag"], yn(d["tshark"]), yn(d["tcpscope"]),
                         "stream %d conn %s; tshark %s; tcpscope %s" % (
                             d["stream"], d["conn"], ",".join(d["t_all"]) or "-", ",".join(d["c_all"]) or "-"),
                         d["documented"] or ""))

        if args.verbose:
            print_verbose(R, lim)

        # ---- zeek ----
        if f in zbase:
            for b in zbase[f]:
                entry = {"file": f, "baseline": b["baseline"], "cols": b["cols"], "n": len(b["rows"])}
                ours = None
                if z and z["ok"]:
                    ours, entry["source"] = z["rows"][0], "--format zeek"
                else:
                    entry["zeek_err"] = "rc %s%s" % (z["rc"] if z else "?",
                                                     (": " + z["err"][0]) if z and z["err"] else "")
                    jr = zeek_rows_from_json(tc["conns"])
                    if jr:
                        ours, entry["source"] = jr, "json connection.zeek"
                if ours is None:
                    entry["status"] = "not implemented"
                else:
                    entry["status"] = "ok"
                    entry["cmp"] = compare_zeek(b["rows"], b["cols"], ours)
                    for it in entry["cmp"]:
                        for c in b["cols"]:
                            exp, got = it[c]
                            if exp != got:
                                dump.append((f, "", "zeek:" + c, "zeek %s %s" % (
                                    "->".join(fmt_ep(x) for x in it["key"]) if it["key"] else "?", exp),
                                    "tcpscope %s%s" % (got if got is not None else "(no conn)",
                                                       " (flipped)" if it["flipped"] else ""),
                                    b["baseline"], diffs.match(f, set(), "zeek:" + c) or ""))
                zeek_res.append(entry)

    # ---------------- overall ----------------
    print()
    print("== stream grouping: %s tshark streams have a tcpscope conn with exactly the same frames"
          % ratio(tot["streams_agree"], tot["streams"]))
    print("   tcpscope conns: %d, of which %d match no tshark stream" % (tot["conns"], tot["conns_unmatched"]))
    if cause_streams:
        print("   disagreeing streams by cause (a stream can have several):")
        for c, byfile in sorted(cause_streams.items(), key=lambda kv: -sum(kv[1].values())):
            print("     %5d  %s: %s" % (sum(byfile.values()), c, files_list(byfile)))
    print("== segments: tshark %d, tcpscope %d, joined %d; tshark-only %d, tcpscope-only %d"
          % (tot["t_segs"], tot["c_segs"], tot["joined"], tot["t_only"], tot["c_only"]))
    for c, byfile in sorted(missing_causes.items(), key=lambda kv: -sum(kv[1].values())):
        print("     %5d frames tshark-only, %s: %s" % (sum(byfile.values()), c, files_list(byfile)))
    if sanity_all:
        print("   per-segment field mismatches on joined frames (not scored):")
        for k, byfile in sorted(sanity_all.items(), key=lambda kv: -sum(kv[1].values())):
            print("     %5d  %s: %s" % (sum(byfile.values()), k, files_list(byfile)))
    if other_names:
        print("   tcpscope-only analysis names (ignored): %s"
              % ", ".join("%s %d" % kv for kv in other_names.most_common()))
    print("== packets per direction (streams grouped alike): %s" % ratio(tot["dir_ok"], tot["dir_total"]))
    print("== handshake/close facts (streams grouped alike):")
    for k in FACTS:
        print("     %-8s %s" % (k, ratio(fact_ok[k], fact_tot[k])))
    print("== per-flag agreement over %d joined segments (raw = segments where presence is equal / all;"
          " after-doc adds documented differences; flagged-match = both / either):" % tot["joined"])
    print_flag_table(flags_all, unjoined_all)
    print("== Zeek conn_state/history vs baselines:")
    zsum = Counter()
    for e in zeek_res:
        if e["status"] != "ok":
            print("     %-45s %s (%s); %d baseline conn(s) not compared"
                  % (e["baseline"], e["status"], e.get("zeek_err", ""), e["n"]))
            zsum["not_impl"] += e["n"]
            continue
        parts = []
        for c in e["cols"]:
            ok = sum(1 for it in e["cmp"] if it[c][0] == it[c][1])
            zsum[c + "_ok"] += ok
            zsum[c + "_n"] += len(e["cmp"])
            parts.append("%s %d/%d" % (c, ok, len(e["cmp"])))
        unmatched = sum(1 for it in e["cmp"] if not it["match"])
        flipped = sum(1 for it in e["cmp"] if it["flipped"])
        print("     %-45s via %s: %s%s%s" % (e["baseline"], e["source"], ", ".join(parts),
                                            "; %d unmatched" % unmatched if unmatched else "",
                                            "; %d orig/resp flipped" % flipped if flipped else ""))
        if args.verbose:
            for it in e["cmp"]:
                for c in e["cols"]:
                    if it[c][0] != it[c][1]:
                        print("         %s %s: zeek %s, tcpscope %s%s" % (
                            " -> ".join(fmt_ep(x) for x in it["key"]) if it["key"] else "?", c,
                            it[c][0], it[c][1] if it[c][1] is not None else "(no conn)",
                            " (flipped)" if it["flipped"] else ""))
    for n, why in zskipped:
        print("     %-45s skipped: %s" % (n, why))
    unused = diffs.unused()
    if unused:
        print("== documented differences matching no disagreement (stale?): %d" % len(unused))
        for (fi, fr, fl_, reason, ln) in unused[:20]:
            print("     line %d: %s %s %s %s" % (ln, fi, fr, fl_, reason))

    if args.dump_disagreements:
        with open(args.dump_disagreements, "w", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(["file", "frame", "what", "tshark", "tcpscope", "detail", "documented"])
            for row in dump:
                w.writerow(row)
        print("== %d disagreement rows written to %s" % (len(dump), args.dump_disagreements))

    # ---------------- summary block ----------------
    print()
    print("---- conformance summary (tcpscope git %s, %s, %d captures) ----"
          % (git_rev(root), tshark_ver[0] if tshark_ver else "tshark", len(files)))
    print("streams grouped as tshark:     %s" % ratio(tot["streams_agree"], tot["streams"])
          + ("  (+%d documented)" % tot["streams_doc"] if tot["streams_doc"] else ""))
    print("segments joined:               %d of %d tshark / %d tcpscope" % (tot["joined"], tot["t_segs"], tot["c_segs"]))
    print("packets per direction:         %s" % ratio(tot["dir_ok"], tot["dir_total"])
          + ("  (+%d documented)" % tot["dir_doc"] if tot["dir_doc"] else ""))
    print("handshake/close facts:         %s%s  [%s]" % (
        ratio(sum(fact_ok.values()), sum(fact_tot.values())),
        "  (+%d documented)" % tot["fact_doc"] if tot["fact_doc"] else "",
        ", ".join("%s %s" % (k, pct(fact_ok[k], fact_tot[k])) for k in FACTS)))
    print("per flag over %d joined segments: raw -> after documented differences"
          " [both/tshark-only/tcpscope-only, flagged-match = both/either]:" % tot["joined"])
    for fl_ in WS_FLAGS:
        c = flags_all[fl_]
        t = c["total"]
        dis = c["tshark_only"] + c["tcpscope_only"]
        union = c["both"] + dis
        print("  %-24s %8s -> %8s   [%d/%d/%d, %s]" % (
            fl_, pct2(t - dis, t), pct2(t - dis + c["documented"], t),
            c["both"], c["tshark_only"], c["tcpscope_only"],
            pct(c["both"], union) if union else "-"))
    allt = sum(flags_all[f]["total"] for f in WS_FLAGS)
    alld = sum(flags_all[f]["tshark_only"] + flags_all[f]["tcpscope_only"] for f in WS_FLAGS)
    alldoc = sum(flags_all[f]["documented"] for f in WS_FLAGS)
    seg_exact = count_exact_segments(results, files)
    print("  %-24s %8s -> %8s   (all segment x flag pairs)" % ("ALL FLAGS", pct2(allt - alld, allt), pct2(allt - alld + alldoc, allt)))
    print("  segments with identical flag sets: %s" % ratio(seg_exact[0], seg_exact[1]))
    zparts = []
    for c in ("conn_state", "history"):
        if zsum[c + "_n"]:
            zparts.append("%s %s" % (c, ratio(zsum[c + "_ok"], zsum[c + "_n"])))
    if zsum["not_impl"]:
        zparts.append("%d baseline conn(s) not compared (--format zeek not implemented)" % zsum["not_impl"])
    print("zeek:                          %s" % ("; ".join(zparts) or "no baselines"))
    print("---- end of summary ----")
    return 0


def normalise_cause(c):
    # "3 frame(s) not in tcpscope (x, y)" -> "frames not in tcpscope (x, y)"
    w = c.split(" ", 1)
    if w[0].isdigit():
        return w[1].replace("frame(s) ", "frames ").replace("stream(s)", "streams")
    return c


def files_list(byfile, n=6):
    items = sorted(byfile.items(), key=lambda kv: -kv[1])
    s = ", ".join("%s (%d)" % (short(f), k) for f, k in items[:n])
    if len(items) > n:
        s += ", +%d more" % (len(items) - n)
    return s


def short(f):
    for ext in (".pcap.gz", ".pcapng", ".pcap"):
        if f.endswith(ext):
            return f[: -len(ext)]
    return f


def count_exact_segments(results, files):
    ok = n = 0
    for f in files:
        ts, tc, _ = results[f]
        for fr, t in ts["rows"].items():
            s = tc["segs"].get(fr)
            if s is None:
                continue
            n += 1
            if t["flags"] == s["flags"]:
                ok += 1
    return ok, n


def print_verbose(R, lim):
    def cut(xs):
        return xs if lim is None else xs[:lim]
    out = []
    if R["tc_rc"] != 0:
        out.append("tcpscope exit %s: %s" % (R["tc_rc"], (R["tc_err"].splitlines() or [""])[0]))
    if R["t_only"]:
        out.append("frames only tshark has: %d %s; causes: %s" % (
            len(R["t_only"]), abbrev(R["t_only"]),
            ", ".join("%s %d" % kv for kv in R["t_only_causes"].items())))
    if R["c_only"]:
        out.append("frames only tcpscope has: %d %s" % (len(R["c_only"]), abbrev(R["c_only"])))
    if R["dup_frames"]:
        out.append("frames reported twice by tcpscope: %s" % abbrev(R["dup_frames"]))
    if R["conn_missing"]:
        out.append("conn ids with segments but no connection object: %s" % abbrev(R["conn_missing"]))
    for k, n in R["sanity"].items():
        out.append("%s mismatch on %d joined frame(s), e.g. %s" % (k, n, "; ".join(R["sanity_ex"][k][:3])))
    for d in cut(R["stream_dis"]):
        out.append("stream %d (%s, %d frames, first #%d) -> conns %s: %s%s" % (
            d["stream"], d["tuple"], d["frames"], d["first"], ",".join(map(str, d["conns"])) or "none",
            "; ".join(d["causes"]), "  [documented: %s]" % d["documented"] if d.get("documented") else ""))
    if lim is not None and len(R["stream_dis"]) > lim:
        out.append("... %d more stream disagreements" % (len(R["stream_dis"]) - lim))
    for d in cut(R["dir_dis"]):
        out.append("stream %d packets %s->%s %d, %s->%s %d; tcpscope conn %s gives %d, %d (client %s)" % (
            d["stream"], d["a"], d["b"], d["tshark"][0], d["b"], d["a"], d["tshark"][1],
            d["conn"], d["tcpscope"][0], d["tcpscope"][1], d["client"]))
    for d in cut(R["fact_dis"]):
        out.append("stream %d fact %s: tshark %s, tcpscope %s (conn %s)%s" % (
            d["stream"], d["fact"], yn(d["tshark"]), yn(d["tcpscope"]), d["conn"],
            "  [documented]" if d["documented"] else ""))
    if R["flag_dis"]:
        out.append("per-flag table for this file:")
    for line in out:
        print("    " + line)
    if R["flag_dis"]:
        print_flag_table(R["flags"], R["flags_unjoined"], indent="      ", skip_empty=True)
        print("    flag disagreements (frame flag tshark tcpscope):")
        for d in cut(R["flag_dis"]):
            print("      #%-6d %-24s tshark %-3s tcpscope %-3s  (stream %d, conn %s; tshark %s; tcpscope %s)%s" % (
                d["frame"], d["flag"], yn(d["tshark"]), yn(d["tcpscope"]), d["stream"], d["conn"],
                ",".join(d["t_all"]) or "-", ",".join(d["c_all"]) or "-",
                "  [documented: %s]" % d["documented"] if d["documented"] else ""))
        if lim is not None and len(R["flag_dis"]) > lim:
            print("      ... %d more (use --limit 0 or --dump-disagreements)" % (len(R["flag_dis"]) - lim))


def abbrev(xs, n=12):
    xs = list(xs)
    s = ",".join(map(str, xs[:n]))
    return "[%s%s]" % (s, ",..." if len(xs) > n else "")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(0)
