#!/usr/bin/env python3
"""Writes a SYN flood from spoofed sources as a pcap, to measure what a flood costs tcpscope.

    scripts/gen_flood.py [--syns N] [--rate R] [--answered] OUT

N SYNs (1,200,000 by default) at R a second (100,000) to 10.0.0.2:80, each from a random
source address and port with a random ISN. With --answered the server answers each with a
SYN-ACK 20 us later and sends the SYN-ACK again after 1, 3 and 7 s (Linux's back-off), as
long as that falls within a second of the last SYN; nothing else is ever sent. Ethernet,
IPv4 and TCP headers only (40-byte IP packets, checksums left at 0), microsecond pcap. The
same arguments always give the same file (the PRNG is seeded).

    tcpscope read OUT --format json > /dev/null     # under /usr/bin/time -v: peak RSS
"""

import argparse
import random
import struct

SERVER = bytes([10, 0, 0, 2])
SYN, SYN_ACK = 0x02, 0x12
# Gaps after the SYN at which the server sends its SYN-ACK (the first answer, then again).
ANSWERS = [20e-6, 1.0, 3.0, 7.0]


def frame(src, sport, dst, dport, flags, seq, ack):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, 6, 0, src, dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0)
    return b"\0" * 12 + b"\x08\x00" + ip + tcp


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--syns", type=int, default=1_200_000)
    ap.add_argument("--rate", type=int, default=100_000)
    ap.add_argument("--answered", action="store_true")
    ap.add_argument("out")
    a = ap.parse_args()
    rng = random.Random(7)
    last_syn = (a.syns - 1) / a.rate
    packets = []
    for i in range(a.syns):
        t = i / a.rate
        src = bytes([rng.randrange(1, 224), rng.randrange(256), rng.randrange(256),
                     rng.randrange(1, 255)])
        sport, isn, server_isn = rng.randrange(1024, 65535), rng.getrandbits(32), rng.getrandbits(32)
        packets.append((t, i, 0, frame(src, sport, SERVER, 80, SYN, isn, 0)))
        if a.answered:
            answer = frame(SERVER, 80, src, sport, SYN_ACK, server_isn, (isn + 1) % 2**32)
            for k, gap in enumerate(ANSWERS, 1):
                if t + gap <= last_syn + 1.0:
                    packets.append((t + gap, i, k, answer))
    packets.sort(key=lambda p: p[:3])
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, _, _, fr in packets:
            usecs = round(t * 1e6)
            sec, usec = 1_700_000_000 + usecs // 1_000_000, usecs % 1_000_000
            f.write(struct.pack("<IIII", sec, usec, len(fr), len(fr)) + fr)
    print(f"{a.out}: {len(packets)} packets, {a.syns} SYNs over {last_syn:.1f} s")


if __name__ == "__main__":
    main()
