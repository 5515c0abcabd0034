//! Deterministic synthetic capture generator for benchmarks (issue 4).
//!
//! ```text
//! cargo run --release --example gen_capture -- --connections N --out FILE
//!     [--seed S] [--snaplen 96|full] [--packets-per-conn AVG] [--rate CONN_PER_S]
//! ```
//!
//! Writes a classic microsecond pcap (LINKTYPE_ETHERNET) of interleaved Ethernet/IPv4/TCP
//! traffic: new connections arrive at a steady rate (`--rate`, 1000/s by default), so a few
//! thousand are open at any moment and 200,000 connections span a few minutes of capture time.
//! The capture point sits next to the servers: a server answers within tens of microseconds,
//! a client after one round trip.
//!
//! Each connection does a three-way handshake (MSS, SACK-permitted, timestamps and window
//! scale on both SYNs), a request, a response sent in slow-start flights with delayed ACKs,
//! an idle keep-alive period, and a close. The mix, drawn by the PRNG:
//!
//! | share | what |
//! |---|---|
//! | 80 % | clean close: four-way or three-segment, client or server first |
//! |  5 % | refused: SYN answered by RST/ACK |
//! |  3 % | unanswered SYN, retransmitted 1–3 times after 1 s, 2 s, 4 s |
//! |  5 % | one response segment retransmitted 200 ms later, then a clean close |
//! |  5 % | RST abort (client or server) in the middle of the response |
//! |  2 % | still open when the capture ends |
//!
//! `--snaplen 96` (the default) writes headers-only records as `tcpdump -s 96` would: the
//! record's original length and the IP total length are the full ones. `--snaplen full` writes
//! every payload byte (zeros). IPv4 and TCP checksums are correct. Only std is used; the PRNG
//! is a xorshift64*, so the same arguments always give the same file.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

/// 2026-01-01T00:00:00Z: the capture's first second.
const EPOCH_SECS: u64 = 1_767_225_600;
const MSS: u32 = 1448; // 1460 minus the 12 bytes of the timestamp option
const SERVERS: [[u8; 4]; 5] = [
    [172, 16, 0, 10],
    [172, 16, 0, 11],
    [172, 16, 0, 12],
    [172, 16, 1, 20],
    [172, 16, 1, 21],
];
const SERVER_PORTS: [u16; 3] = [80, 443, 8080];
const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x20, 0x00, 0x02];

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// xorshift64* (Vigna): small, fast, good enough for traffic shapes.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so that seeds 0, 1, 2 … give unrelated streams.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + ((self.next() >> 11) % (hi - lo + 1))
    }
    /// Uniform in `0..100`.
    fn percent(&mut self) -> u64 {
        self.range(0, 99)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Opts {
    /// NOP, NOP, timestamps (12 bytes).
    Ts,
    /// MSS, SACK-permitted, timestamps, NOP, window scale (20 bytes), as Linux sends them.
    Syn,
}

/// One packet of a connection's schedule, before it becomes bytes.
#[derive(Clone, Copy)]
struct Pkt {
    /// Microseconds since the start of the capture.
    t: u64,
    from_client: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u16,
    win: u16,
    opts: Opts,
    /// Absent on a RST, as Linux sends them.
    with_ts: bool,
    tsval: u32,
    tsecr: u32,
}

/// What the generator put in the capture, to check a reader's totals against.
#[derive(Default)]
struct Mix {
    clean: u64,
    refused: u64,
    unanswered: u64,
    retrans: u64,
    reset: u64,
    open: u64,
    four_way: u64,
    three_segment: u64,
}

struct Conn {
    client: [u8; 4],
    server: [u8; 4],
    cport: u16,
    sport: u16,
    ip_id: [u16; 2],
    pkts: Vec<Pkt>,
    next: usize,
}

/// Builds one connection's packets, in time order.
struct Builder<'a> {
    rng: &'a mut Rng,
    pkts: Vec<Pkt>,
    /// Client→capture→client round trip (µs); the server answers within `srv` µs.
    rtt: u64,
    srv: u64,
    /// Next sequence number each side will send.
    c_next: u32,
    s_next: u32,
}

impl Builder<'_> {
    fn push(&mut self, t: u64, from_client: bool, flags: u8, seq: u32, ack: u32, len: u32) {
        let win = match (flags & SYN != 0, from_client) {
            (true, true) => 64240,
            (true, false) => 65160,
            (false, true) => 2000, // × 128 = 256000 bytes
            (false, false) => 509, // × 128 = 65152 bytes
        };
        let opts = if flags & SYN != 0 {
            Opts::Syn
        } else {
            Opts::Ts
        };
        self.pkts.push(Pkt {
            t,
            from_client,
            flags,
            seq,
            ack: if flags & ACK != 0 { ack } else { 0 },
            len: len as u16,
            win: if flags & RST != 0 { 0 } else { win },
            opts,
            with_ts: flags & RST == 0,
            tsval: 0,
            tsecr: 0,
        });
    }

    /// A client packet with the current sequence numbers; advances `c_next`.
    fn client(&mut self, t: u64, flags: u8, len: u32) {
        let (seq, ack) = (self.c_next, self.s_next);
        self.push(t, true, flags, seq, ack, len);
        self.c_next = seq.wrapping_add(len + u32::from(flags & (SYN | FIN) != 0));
    }

    fn server(&mut self, t: u64, flags: u8, len: u32) {
        let (seq, ack) = (self.s_next, self.c_next);
        self.push(t, false, flags, seq, ack, len);
        self.s_next = seq.wrapping_add(len + u32::from(flags & (SYN | FIN) != 0));
    }

    /// A server reply delay: tens of microseconds.
    fn srv_delay(&mut self) -> u64 {
        self.srv + self.rng.range(0, 30)
    }

    /// A client reply delay: one round trip plus a little jitter.
    fn cli_delay(&mut self) -> u64 {
        self.rtt + self.rng.range(0, self.rtt / 16 + 5)
    }
}

struct Gen {
    rng: Rng,
    /// Mean response size in segments, from `--packets-per-conn`.
    resp_mean: u64,
    mix: Mix,
}

impl Gen {
    /// Creates connection `i`, starting at `start` µs. Its packets are sorted by time.
    fn connection(&mut self, start: u64) -> Conn {
        let rng = &mut self.rng;
        let client = [
            10,
            rng.range(0, 63) as u8,
            rng.range(0, 255) as u8,
            rng.range(1, 254) as u8,
        ];
        let server = SERVERS[rng.range(0, SERVERS.len() as u64 - 1) as usize];
        let sport = SERVER_PORTS[rng.range(0, SERVER_PORTS.len() as u64 - 1) as usize];
        let cport = rng.range(32768, 60999) as u16;
        let ip_id = [rng.next() as u16, rng.next() as u16];
        // Round trips from a LAN's 200 µs to an intercontinental 120 ms, mostly short.
        let rtt = match rng.percent() {
            0..=39 => rng.range(200, 2_000),
            40..=79 => rng.range(2_000, 30_000),
            _ => rng.range(30_000, 120_000),
        };
        let srv = rng.range(15, 80);
        let scenario = rng.percent();
        let (c_isn, s_isn) = (rng.u32(), rng.u32());
        let resp_mean = self.resp_mean;
        let mut b = Builder {
            rng,
            pkts: Vec::with_capacity(resp_mean as usize * 2 + 16),
            rtt,
            srv,
            c_next: c_isn,
            s_next: s_isn,
        };

        let mut t = start;
        b.client(t, SYN, 0);
        match scenario {
            // Refused: RST/ACK with sequence 0 from the server's kernel.
            80..=84 => {
                self.mix.refused += 1;
                let t = t + b.srv_delay();
                b.push(t, false, RST | ACK, 0, c_isn.wrapping_add(1), 0);
            }
            // Unanswered: 1–3 retransmissions with exponential back-off.
            85..=87 => {
                self.mix.unanswered += 1;
                let tries = b.rng.range(1, 3);
                let mut gap = 1_000_000;
                for _ in 0..tries {
                    t += gap + b.rng.range(0, 2_000);
                    gap *= 2;
                    b.push(t, true, SYN, c_isn, 0, 0);
                }
            }
            _ => {
                // Handshake.
                t += b.srv_delay();
                b.server(t, SYN | ACK, 0);
                t += b.cli_delay();
                b.client(t, ACK, 0);
                // Request: one segment, sometimes two or three (a POST body).
                let req_segs = match b.rng.percent() {
                    0..=79 => 1,
                    80..=94 => 2,
                    _ => 3,
                };
                t += b.rng.range(10, 200);
                for i in 0..req_segs {
                    let len = if i + 1 < req_segs {
                        MSS
                    } else {
                        b.rng.range(80, 1200) as u32
                    };
                    b.client(t, PSH | ACK, len);
                    t += b.rng.range(2, 20);
                }
                // The server ACKs the request; the application then thinks.
                t += b.srv_delay();
                b.server(t, ACK, 0);
                t += match b.rng.percent() {
                    0..=69 => b.rng.range(100, 20_000),
                    70..=94 => b.rng.range(20_000, 300_000),
                    _ => b.rng.range(300_000, 1_500_000),
                };
                let segs = b.rng.range(1, 2 * resp_mean - 1) as u32;
                let lose = (40..=44)
                    .contains(&scenario)
                    .then(|| b.rng.range(0, segs as u64 - 1));
                let abort = (45..=49).contains(&scenario);
                t = response(&mut b, t, segs, lose.map(|l| l as u32));
                if lose.is_some() {
                    self.mix.retrans += 1;
                }
                if abort {
                    self.mix.reset += 1;
                    abort_midway(&mut b, start);
                } else if scenario >= 98 {
                    self.mix.open += 1;
                } else {
                    if lose.is_none() {
                        self.mix.clean += 1;
                    }
                    // Keep-alive idle time, then the close.
                    t += b.rng.range(10_000, 5_000_000);
                    let three = close(&mut b, t);
                    if three {
                        self.mix.three_segment += 1;
                    } else {
                        self.mix.four_way += 1;
                    }
                }
            }
        }
        let mut pkts = b.pkts;
        pkts.sort_by_key(|p| p.t); // stable: causes were pushed before their effects
        timestamps(&mut pkts, &mut self.rng);
        Conn {
            client,
            server,
            cport,
            sport,
            ip_id,
            pkts,
            next: 0,
        }
    }
}

/// The response: `segs` segments in slow-start flights (10, 20, 40 … per round trip), the
/// client ACKing every second segment one round trip after it was sent. With `lose`, that
/// segment never reaches the client: its ACKs stop at the hole (duplicate ACKs) until the
/// server resends it 200 ms later. Returns the time the last packet of the exchange was seen.
fn response(b: &mut Builder, t0: u64, segs: u32, lose: Option<u32>) -> u64 {
    let total_len = (segs - 1) * MSS + b.rng.range(1, u64::from(MSS)) as u32;
    let base = b.s_next;
    let ack_req = b.c_next;
    let mut sent = Vec::with_capacity(segs as usize); // (time, end sequence offset)
    let (mut flight, mut in_flight, mut t) = (10u32, 0u32, t0);
    for i in 0..segs {
        if in_flight == flight {
            t += b.rtt + 30;
            flight *= 2;
            in_flight = 0;
        } else if i > 0 {
            t += 12; // a full-size frame at 1 Gbit/s
        }
        in_flight += 1;
        let off = i * MSS;
        let len = (total_len - off).min(MSS);
        let flags = if i + 1 == segs { PSH | ACK } else { ACK };
        b.push(t, false, flags, base.wrapping_add(off), ack_req, len);
        sent.push((t, off + len));
    }
    b.s_next = base.wrapping_add(total_len);
    let mut end = t;
    let hole = lose.map(|l| (l * MSS, sent[l as usize].0 + 200_000));
    if let Some((off, rto)) = hole {
        let len = (total_len - off).min(MSS);
        let flags = if off + len == total_len {
            PSH | ACK
        } else {
            ACK
        };
        b.push(rto, false, flags, base.wrapping_add(off), ack_req, len);
        end = end.max(rto);
    }
    // Delayed ACKs: every second segment, and the last one. One delay for the whole response
    // keeps the client's ACKs in order.
    let ack_delay = b.cli_delay();
    for i in (0..segs).filter(|i| i % 2 == 1 || i + 1 == segs) {
        let (ts, acked) = sent[i as usize];
        let at = ts + ack_delay;
        let ack_off = match hole {
            Some((off, rto)) if ts < rto => acked.min(off),
            _ => acked,
        };
        b.push(at, true, ACK, ack_req, base.wrapping_add(ack_off), 0);
        end = end.max(at);
    }
    if let Some((_, rto)) = hole {
        // The cumulative ACK for everything sent by the time the hole was filled.
        let acked = sent
            .iter()
            .filter(|s| s.0 <= rto)
            .map(|s| s.1)
            .max()
            .unwrap_or(0);
        let at = rto + ack_delay;
        b.push(at, true, ACK, ack_req, base.wrapping_add(acked), 0);
        end = end.max(at);
    }
    end
}

/// Ends the connection with a RST in the middle of its response: everything after the abort
/// point is dropped. The client (unread data, or the user gave up) or the server (application
/// abort) sends it, with the ACK of what it had seen.
fn abort_midway(b: &mut Builder, start: u64) {
    b.pkts.sort_by_key(|p| p.t);
    // Keep the handshake and request, then a part of the response.
    let first_resp = b.pkts.iter().position(|p| !p.from_client && p.len > 0);
    let n = b.pkts.len();
    let cut = match first_resp {
        Some(f) => b.rng.range(f as u64 + 1, n as u64) as usize,
        None => n,
    };
    b.pkts.truncate(cut);
    let last_t = b.pkts.last().map_or(start, |p| p.t);
    let end_of = |p: &Pkt| {
        p.seq
            .wrapping_add(u32::from(p.len) + u32::from(p.flags & (SYN | FIN) != 0))
    };
    // Highest sequence each side has sent (sequence numbers only grow here, barring wrap).
    let (mut c_sent, mut s_sent) = (None::<u32>, None::<u32>);
    for p in &b.pkts {
        let slot = if p.from_client {
            &mut c_sent
        } else {
            &mut s_sent
        };
        let e = end_of(p);
        *slot = Some(match *slot {
            Some(s) if (e.wrapping_sub(s) as i32) < 0 => s,
            _ => e,
        });
    }
    let (c, s) = (c_sent.unwrap_or(b.c_next), s_sent.unwrap_or(b.s_next));
    let from_client = b.rng.percent() < 60;
    let t = last_t + b.rng.range(20, 2_000);
    if from_client {
        b.push(t, true, RST | ACK, c, s, 0);
    } else {
        b.push(t, false, RST | ACK, s, c, 0);
    }
}

/// A clean close starting at `t`, client or server first, four-way or three-segment. Returns
/// whether it was three-segment.
fn close(b: &mut Builder, mut t: u64) -> bool {
    let client_first = b.rng.percent() < 50;
    let three = b.rng.percent() < 40;
    if client_first {
        b.client(t, FIN | ACK, 0);
        t += b.srv_delay();
        if three {
            b.server(t, FIN | ACK, 0);
        } else {
            b.server(t, ACK, 0);
            t += b.rng.range(50, 5_000); // the server application closes
            b.server(t, FIN | ACK, 0);
        }
        t += b.cli_delay();
        b.client(t, ACK, 0);
    } else {
        b.server(t, FIN | ACK, 0);
        t += b.cli_delay();
        if three {
            b.client(t, FIN | ACK, 0);
        } else {
            b.client(t, ACK, 0);
            t += b.rng.range(50, 5_000);
            b.client(t, FIN | ACK, 0);
        }
        t += b.srv_delay();
        b.server(t, ACK, 0);
    }
    three
}

/// Fills in the timestamp option: each side's clock ticks in milliseconds from a random base;
/// TSecr echoes the latest TSval seen from the peer.
fn timestamps(pkts: &mut [Pkt], rng: &mut Rng) {
    let base = [rng.u32(), rng.u32()];
    let mut last = [0u32; 2];
    for p in pkts {
        let me = usize::from(!p.from_client);
        p.tsval = base[me].wrapping_add((p.t / 1000) as u32);
        p.tsecr = if p.flags & ACK != 0 { last[1 - me] } else { 0 };
        if p.with_ts {
            last[me] = p.tsval;
        }
    }
}

fn checksum_add(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn checksum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes the Ethernet, IPv4 and TCP headers of `p` into `f` (cleared first). The payload is
/// zeros, so the TCP checksum needs only the pseudo-header and the TCP header.
fn headers(f: &mut Vec<u8>, c: &mut Conn, p: &Pkt) -> usize {
    f.clear();
    let (src, dst, sport, dport) = if p.from_client {
        (c.client, c.server, c.cport, c.sport)
    } else {
        (c.server, c.client, c.sport, c.cport)
    };
    let (smac, dmac) = if p.from_client {
        (CLIENT_MAC, SERVER_MAC)
    } else {
        (SERVER_MAC, CLIENT_MAC)
    };
    f.extend_from_slice(&dmac);
    f.extend_from_slice(&smac);
    f.extend_from_slice(&[0x08, 0x00]);
    let opt_len = match (p.opts, p.with_ts) {
        (Opts::Syn, _) => 20,
        (Opts::Ts, true) => 12,
        (Opts::Ts, false) => 0,
    };
    let tcp_hdr = 20 + opt_len;
    let total = 20 + tcp_hdr + usize::from(p.len);
    let side = usize::from(!p.from_client);
    let id = c.ip_id[side];
    c.ip_id[side] = id.wrapping_add(1);
    let ttl = if p.from_client { 57 } else { 64 };
    let ip_start = f.len();
    f.extend_from_slice(&[0x45, 0x00]);
    f.extend_from_slice(&(total as u16).to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&[0x40, 0x00, ttl, 6, 0, 0]); // DF, TTL, TCP, checksum
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    let ip_sum = checksum_fold(checksum_add(0, &f[ip_start..]));
    f[ip_start + 10..ip_start + 12].copy_from_slice(&ip_sum.to_be_bytes());

    let tcp_start = f.len();
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&p.seq.to_be_bytes());
    f.extend_from_slice(&p.ack.to_be_bytes());
    f.extend_from_slice(&[((tcp_hdr / 4) as u8) << 4, p.flags]);
    f.extend_from_slice(&p.win.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    match (p.opts, p.with_ts) {
        (Opts::Syn, _) => {
            f.extend_from_slice(&[2, 4, 0x05, 0xb4, 4, 2, 8, 10]);
            f.extend_from_slice(&p.tsval.to_be_bytes());
            f.extend_from_slice(&p.tsecr.to_be_bytes());
            f.extend_from_slice(&[1, 3, 3, 7]);
        }
        (Opts::Ts, true) => {
            f.extend_from_slice(&[1, 1, 8, 10]);
            f.extend_from_slice(&p.tsval.to_be_bytes());
            f.extend_from_slice(&p.tsecr.to_be_bytes());
        }
        (Opts::Ts, false) => {}
    }
    let tcp_len = (tcp_hdr + usize::from(p.len)) as u32;
    let mut sum = checksum_add(0, &src);
    sum = checksum_add(sum, &dst);
    sum += 6 + tcp_len;
    sum = checksum_add(sum, &f[tcp_start..]);
    let tcp_sum = checksum_fold(sum);
    f[tcp_start + 16..tcp_start + 18].copy_from_slice(&tcp_sum.to_be_bytes());
    14 + 20 + tcp_hdr
}

struct Args {
    connections: u64,
    out: String,
    seed: u64,
    /// None: full packets.
    snaplen: Option<u32>,
    packets_per_conn: u64,
    rate: u64,
}

fn usage() -> &'static str {
    "usage: gen_capture --out FILE [--connections N (200000)] [--seed S (1)] \
     [--snaplen 96|full (96)] [--packets-per-conn AVG (22)] [--rate CONN_PER_S (1000)]"
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        connections: 200_000,
        out: String::new(),
        seed: 1,
        snaplen: Some(96),
        packets_per_conn: 22,
        rate: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let val = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--connections" => a.connections = num(&val)?,
            "--out" => a.out = val,
            "--seed" => a.seed = num(&val)?,
            "--snaplen" if val == "full" => a.snaplen = None,
            "--snaplen" => a.snaplen = Some(num(&val)?.clamp(64, 262_144) as u32),
            "--packets-per-conn" => a.packets_per_conn = num(&val)?.max(12),
            "--rate" => a.rate = num(&val)?.max(1),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.out.is_empty() {
        return Err("--out FILE is required".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("gen_capture: {e}");
            }
            eprintln!("{}", usage());
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_capture: {}: {e}", args.out);
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let started = Instant::now();
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&args.out)?);
    // Global header: microsecond pcap, version 2.4, LINKTYPE_ETHERNET.
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&[0; 8])?;
    out.write_all(&args.snaplen.unwrap_or(262_144).to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())?;

    // Averaged over the mix, a connection carries about 8 packets besides its response, and
    // 1.35 per response segment (the segment and half an ACK; refused and unanswered
    // connections have none): 22 packets on average give responses of 10 segments.
    let resp_mean = (args.packets_per_conn.saturating_sub(8) * 3 / 4).max(1);
    let mut g = Gen {
        rng: Rng::new(args.seed),
        resp_mean,
        mix: Mix::default(),
    };
    let interval = 1_000_000 / args.rate; // µs between arrivals
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::new();
    let mut created = 0u64;
    let mut next_arrival = 0u64;
    let (mut packets, mut captured, mut wire, mut last_t) = (0u64, 0u64, 0u64, 0u64);
    let mut order = 0u64; // tie-break: earlier-created connections first
    let mut frame = Vec::with_capacity(128);
    let zeros = vec![0u8; 2048];
    let snap = args.snaplen.map_or(usize::MAX, |s| s as usize);
    let mut peak = 0usize;
    loop {
        // Admit every connection that starts before the earliest pending packet.
        while created < args.connections
            && heap
                .peek()
                .is_none_or(|Reverse((t, _, _))| next_arrival <= *t)
        {
            let c = g.connection(next_arrival);
            let t = c.pkts[0].t;
            let slot = match free.pop() {
                Some(s) => {
                    conns[s] = Some(c);
                    s
                }
                None => {
                    conns.push(Some(c));
                    conns.len() - 1
                }
            };
            heap.push(Reverse((t, order, slot)));
            order += 1;
            created += 1;
            next_arrival = created * interval + g.rng.range(0, interval.saturating_sub(1));
        }
        peak = peak.max(heap.len());
        let Some(Reverse((t, ord, slot))) = heap.pop() else {
            break;
        };
        let c = conns[slot].as_mut().expect("scheduled connection is live");
        let p = c.pkts[c.next];
        c.next += 1;
        let hdr_len = headers(&mut frame, c, &p);
        let orig = hdr_len + usize::from(p.len);
        let caplen = orig.min(snap);
        let secs = EPOCH_SECS + t / 1_000_000;
        out.write_all(&(secs as u32).to_le_bytes())?;
        out.write_all(&((t % 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&(caplen as u32).to_le_bytes())?;
        out.write_all(&(orig as u32).to_le_bytes())?;
        if caplen <= hdr_len {
            out.write_all(&frame[..caplen])?;
        } else {
            out.write_all(&frame)?;
            out.write_all(&zeros[..caplen - hdr_len])?;
        }
        packets += 1;
        captured += 16 + caplen as u64;
        wire += orig as u64;
        last_t = t;
        if c.next < c.pkts.len() {
            heap.push(Reverse((c.pkts[c.next].t, ord, slot)));
        } else {
            conns[slot] = None;
            free.push(slot);
        }
    }
    out.flush()?;
    let m = &g.mix;
    println!(
        "gen_capture: {} packets, {} connections, {:.1} MB written ({:.1} MB on the wire), \
         span {:.1} s, up to {} connections at once; mix: clean {}, data_retrans {}, refused {}, \
         unanswered {}, reset {}, open {} (closes: four_way {}, three_segment {}); {:.2} s",
        packets,
        created,
        (24 + captured) as f64 / 1e6,
        wire as f64 / 1e6,
        last_t as f64 / 1e6,
        peak,
        m.clean,
        m.retrans,
        m.refused,
        m.unanswered,
        m.reset,
        m.open,
        m.four_way,
        m.three_segment,
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}
