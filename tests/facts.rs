//! Every fixture against what really happened on the wire.
//!
//! Each fixture folder has a `FACTS.tsv` written with the scenario that made the capture (see
//! the folder's README.md for the packet-by-packet account): one row per connection with its
//! roles, handshake, close kind, first FIN, TIME_WAIT side, RST sender, retransmissions by kind,
//! packets and payload bytes each way, and each side's final state. This test runs
//! `tcpscope --format json read FILE` on each capture and compares every column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Runs tcpscope on `file` and returns its JSON connection objects in id order.
fn connections(file: &Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpscope"))
        .args(["--format", "json", "read"])
        .arg(file)
        .output()
        .expect("run tcpscope");
    assert!(
        out.status.code() == Some(0),
        "{}: exit {:?}: {}",
        file.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut conns: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "connection")
        .collect();
    conns.sort_by_key(|c| c["id"].as_u64());
    conns
}

/// The value tcpscope reported for a FACTS column.
fn reported(c: &Value, column: &str) -> String {
    let s = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match column {
        "client" | "server" => s(&c[column]),
        "handshake" => s(&c["handshake"]["status"]),
        "close" => s(&c["close"]["kind"]),
        "first_fin" => s(&c["close"]["first_fin"]),
        "time_wait_side" => s(&c["time_wait"]["side"]),
        "rst_by" => s(&c["reset"]["by"]),
        "retrans_syn" => s(&c["retransmissions"]["syn"]),
        "retrans_synack" => s(&c["retransmissions"]["syn_ack"]),
        "retrans_data" => s(&c["retransmissions"]["data"]),
        "retrans_fin" => s(&c["retransmissions"]["fin"]),
        "pkts_client" => s(&c["packets"]["client"]),
        "pkts_server" => s(&c["packets"]["server"]),
        "bytes_client" => s(&c["payload_bytes"]["client"]),
        "bytes_server" => s(&c["payload_bytes"]["server"]),
        "final_client" => s(&c["final_state"]["client"]),
        "final_server" => s(&c["final_state"]["server"]),
        other => panic!("unknown FACTS column {other}"),
    }
}

fn check_folder(folder: &str) {
    let dir = fixtures().join(folder);
    let facts = std::fs::read_to_string(dir.join("FACTS.tsv")).expect("FACTS.tsv");
    let mut lines = facts.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let mut by_file: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let row: Vec<String> = line.split('\t').map(str::to_string).collect();
        by_file.entry(row[0].clone()).or_default().push(row);
    }
    let mut failures = Vec::new();
    for (file, rows) in &by_file {
        let conns = connections(&dir.join(file));
        if conns.len() != rows.len() {
            failures.push(format!(
                "{file}: {} connections reported, {} happened",
                conns.len(),
                rows.len()
            ));
            continue;
        }
        for (row, conn) in rows.iter().zip(&conns) {
            for (i, col) in header.iter().enumerate().skip(2) {
                // State names are written with RFC 9293's hyphens in some notes.
                let want = if col.starts_with("final_") {
                    row[i].replace('-', "_")
                } else {
                    row[i].clone()
                };
                let got = reported(conn, col);
                if got != want {
                    failures.push(format!(
                        "{file} conn {}: {col}: reported {got}, happened {want}",
                        row[1]
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn handmade_captures_match_their_scenarios() {
    check_folder("handmade");
}

#[test]
fn linux_captures_match_their_scenarios() {
    check_folder("linux");
}
