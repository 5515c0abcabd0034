//! Hostile input never makes tcpscope panic: random and mutated packets through the decoder and
//! the tracker, and damaged capture files through the binary (exit 0 or 2, never a crash).

use std::path::Path;
use std::process::Command;

use tcpscope::decode::{Decoder, LinkKind};
use tcpscope::event::Event;
use tcpscope::flow::{FlowConfig, FlowTable};
use tcpscope::source::Flow;
use tcpscope::source::file::CaptureFile;
use tcpscope::time::Timestamp;

/// xorshift64*: a small deterministic generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every packet of every fixture capture, with its link type.
fn fixture_packets() -> Vec<(LinkKind, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut packets = Vec::new();
    for dir in ["linux", "handmade", "analysis"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.to_string_lossy().to_string();
            if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
                continue;
            }
            let Ok(mut file) = CaptureFile::open(&name) else {
                continue;
            };
            let _ = file.read_all(&mut |p| {
                packets.push((p.link, p.data.to_vec()));
                Flow::Continue
            });
        }
    }
    packets
}

const KINDS: [LinkKind; 10] = [
    LinkKind::Ethernet,
    LinkKind::LinuxSll,
    LinkKind::LinuxSll2,
    LinkKind::Null,
    LinkKind::Loop,
    LinkKind::RawIp,
    LinkKind::Ipv4,
    LinkKind::Ipv6,
    LinkKind::CiscoHdlc,
    LinkKind::IpOverIb,
];

#[test]
fn mutated_and_random_packets_never_panic() {
    let packets = fixture_packets();
    assert!(packets.len() > 500, "the fixtures were read");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut decoder = Decoder::default();
    let mut table = FlowTable::new(FlowConfig::default());
    let mut events: Vec<Event> = Vec::new();
    let mut decoded = 0;
    for i in 0..200_000u64 {
        let (mut link, mut bytes) = packets[rng.below(packets.len())].clone();
        match rng.below(4) {
            // Flip a few bytes anywhere.
            0 | 1 => {
                for _ in 0..1 + rng.below(4) {
                    if !bytes.is_empty() {
                        let at = rng.below(bytes.len());
                        bytes[at] = rng.next() as u8;
                    }
                }
            }
            // Cut the packet short.
            2 => bytes.truncate(rng.below(bytes.len() + 1)),
            // Pure noise under any link type.
            _ => {
                link = KINDS[rng.below(KINDS.len())];
                bytes = (0..rng.below(120)).map(|_| rng.next() as u8).collect();
            }
        }
        let ts = Timestamp(1_000_000_000 * i / 1000 + rng.below(1000) as u64);
        if let Ok(seg) = decoder.decode(link, &bytes, ts, i + 1) {
            decoded += 1;
            table.segment(&seg, &mut events);
        }
        events.clear();
        table.take_retired().for_each(drop);
    }
    table.finish(Timestamp(u64::MAX / 2), &mut events);
    assert!(
        decoded > 50_000,
        "most mutated packets still decode ({decoded})"
    );
}

#[test]
fn damaged_files_give_an_error_not_a_crash() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/linux");
    let originals = [
        "close_client_first.pcap",
        "pcapng.pcapng",
        "nanosecond.pcap",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(42);
    for name in originals {
        let good = std::fs::read(root.join(name)).unwrap();
        for round in 0..40 {
            let mut bytes = good.clone();
            if round % 2 == 0 {
                bytes.truncate(rng.below(bytes.len()));
            }
            for _ in 0..rng.below(6) {
                let at = rng.below(bytes.len().max(1));
                if at < bytes.len() {
                    bytes[at] = rng.next() as u8;
                }
            }
            let path = dir.path().join(format!("{round}-{name}"));
            std::fs::write(&path, &bytes).unwrap();
            for format in ["text", "json", "zeek"] {
                let out = Command::new(env!("CARGO_BIN_EXE_tcpscope"))
                    .args(["--format", format, "--packets", "read"])
                    .arg(&path)
                    .output()
                    .unwrap();
                let code = out.status.code();
                assert!(
                    code == Some(0) || code == Some(2),
                    "{name} round {round} --format {format}: exit {code:?}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                if code == Some(2) {
                    let err = String::from_utf8_lossy(&out.stderr);
                    assert_eq!(err.lines().count(), 1, "one line: {err}");
                    assert!(err.starts_with("tcpscope: "), "{err}");
                }
            }
        }
    }
}

/// Capture time that jumps by decades, forwards and back (a damaged or stitched file): the
/// deadline queue keeps one bucket per second that has deadlines, not one per second of the
/// span, which for these jumps would be billions of buckets (gigabytes, then an abort).
#[test]
fn timestamps_that_jump_by_decades_keep_memory_small() {
    let packets = fixture_packets();
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut decoder = Decoder::default();
    let mut table = FlowTable::new(FlowConfig::default());
    let mut events: Vec<Event> = Vec::new();
    let mut analysed = 0;
    // Epochs 1970, 2001, 2033, 2128 and 2554 (the largest a pcap can hold).
    let epochs = [0u64, 1 << 30, 1 << 31, 1 << 32, (1 << 34) - 1];
    for i in 0..20_000u64 {
        let (link, bytes) = &packets[rng.below(packets.len())];
        // The first packets come from one second of the latest epoch, so the first jump is
        // backwards and comes before any deadline is due.
        let secs = match i {
            0..100 => epochs[epochs.len() - 1],
            100..200 => epochs[0] + rng.below(600) as u64,
            _ => epochs[rng.below(epochs.len())] + rng.below(600) as u64,
        };
        let ts = Timestamp::from_secs_nanos(secs, rng.below(1_000_000_000) as u64);
        if let Ok(seg) = decoder.decode(*link, bytes, ts, i + 1) {
            analysed += 1;
            table.segment(&seg, &mut events);
        }
        events.clear();
        table.take_retired().for_each(drop);
    }
    table.finish(Timestamp::from_secs_nanos(1 << 34, 0), &mut events);
    assert_eq!(table.live(), 0);
    assert!(
        analysed > 10_000,
        "most fixture packets are TCP ({analysed})"
    );
}
