//! Per-segment analysis against what really happened on the wire.
//!
//! `fixtures/analysis/` holds real Linux captures made by `make_analysis_fixtures.sh`: a SACK
//! fast retransmit, one loss seen from both sides, zero-window probes, keep-alives answered and
//! unanswered, a spurious retransmission, real reordering, and a segment the capture missed.
//! `SEGMENTS.tsv` gives, for every frame, what the segment really was (`truth`, worked out from
//! the scenario: which packet was dropped, which was delayed, what the kernel's counters said)
//! next to what tshark 4.0 says. This test checks tcpscope's `analysis` against `truth` for every
//! frame.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const WIRESHARK_NAMES: [&str; 15] = [
    "retransmission",
    "fast_retransmission",
    "spurious_retransmission",
    "out_of_order",
    "lost_segment",
    "ack_lost_segment",
    "duplicate_ack",
    "zero_window",
    "zero_window_probe",
    "zero_window_probe_ack",
    "window_full",
    "window_update",
    "keep_alive",
    "keep_alive_ack",
    "reused_ports",
];

/// Frames where tcpscope, reading the capture once from start to end, cannot know the truth
/// when it prints the segment: (file, frame, what tcpscope says, why).
const KNOWN: &[(&str, u64, &str, &str)] = &[(
    "zero_window_probes.pcap",
    8,
    "retransmission,window_full",
    "spurious only by a D-SACK that arrives after it; when it is sent, no ACK of its bytes has been seen",
)];

fn flags_of(v: &Value) -> BTreeSet<String> {
    v["analysis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .filter(|a| WIRESHARK_NAMES.contains(&a.as_str()))
        .collect()
}

fn set(list: &str) -> BTreeSet<String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_frame_of_the_analysis_captures_matches_the_truth() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/analysis");
    let tsv = std::fs::read_to_string(dir.join("SEGMENTS.tsv")).unwrap();
    let mut lines = tsv.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (c_file, c_frame, c_from, c_truth) = (col("file"), col("frame"), col("from"), col("truth"));
    let mut by_file: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let row: Vec<String> = l.split('\t').map(str::to_string).collect();
        by_file.entry(row[c_file].clone()).or_default().push(row);
    }
    assert!(by_file.len() >= 8, "all analysis captures are listed");
    let mut problems = Vec::new();
    let mut frames = 0;
    for (file, rows) in &by_file {
        let out = Command::new(env!("CARGO_BIN_EXE_tcpscope"))
            .args(["--format", "json", "--packets", "read"])
            .arg(dir.join(file))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{file}");
        let segs: BTreeMap<u64, Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["type"] == "segment")
            .map(|v| (v["frame"].as_u64().unwrap(), v))
            .collect();
        assert_eq!(
            segs.len(),
            rows.len(),
            "{file}: every frame is a TCP segment"
        );
        for row in rows {
            frames += 1;
            let frame: u64 = row[c_frame].parse().unwrap();
            let seg = &segs[&frame];
            if seg["from"] != row[c_from].as_str() {
                problems.push(format!("{file} frame {frame}: from {}", seg["from"]));
            }
            let got = flags_of(seg);
            let want = match KNOWN.iter().find(|k| k.0 == file && k.1 == frame) {
                Some(k) => set(k.2),
                None => set(&row[c_truth]),
            };
            if got != want {
                problems.push(format!(
                    "{file} frame {frame}: tcpscope {got:?}, truth {want:?}"
                ));
            }
        }
    }
    assert!(frames >= 200);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
