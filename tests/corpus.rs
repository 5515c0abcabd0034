//! The public captures in `../shared/corpus` (none made by this project; see its README):
//! every readable one is read to the end without error, with the packet count capinfos gives
//! in MANIFEST.tsv; every broken one gets a one-line error and exit 2, and whatever was read
//! before the damage is still reported.
//!
//! The folder is taken from TCPSCOPE_CORPUS (default: ../shared/corpus beside the checkout).
//! A missing folder fails the test; set TCPSCOPE_CORPUS=skip to skip it on purpose.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn corpus() -> Option<PathBuf> {
    match std::env::var("TCPSCOPE_CORPUS") {
        Ok(v) if v == "skip" => None,
        Ok(v) => Some(PathBuf::from(v)),
        Err(_) => Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")),
    }
}

struct Entry {
    file: String,
    packets: u64,
}

fn manifest(dir: &std::path::Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv"))
        .unwrap_or_else(|e| panic!("{}: {e} (set TCPSCOPE_CORPUS)", dir.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (f, p) = (col("file"), col("packets"));
    lines
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .map(|c| Entry {
            file: c[f].to_string(),
            packets: c[p].parse().unwrap(),
        })
        .collect()
}

/// Exit status, the summary object (if any), the number of connection objects, stderr.
fn run(path: &std::path::Path) -> (Option<i32>, Option<Value>, usize, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpscope"))
        .args(["--format", "json", "read"])
        .arg(path)
        .output()
        .unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let conns = lines.iter().filter(|v| v["type"] == "connection").count();
    let summary = lines.into_iter().find(|v| v["type"] == "summary");
    (
        out.status.code(),
        summary,
        conns,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_corpus_capture_reads_or_fails_cleanly() {
    let Some(dir) = corpus() else {
        eprintln!("corpus check skipped on request (TCPSCOPE_CORPUS=skip)");
        return;
    };
    let mut problems = Vec::new();
    let entries = manifest(&dir);
    assert!(entries.len() >= 50, "the manifest lists the corpus");
    for e in &entries {
        let (code, summary, conns, stderr) = run(&dir.join(&e.file));
        let packets = summary.as_ref().map(|s| s["packets"].as_u64().unwrap());
        if e.file.starts_with("broken/") {
            if code != Some(2) || stderr.lines().count() != 1 || !stderr.starts_with("tcpscope: ") {
                problems.push(format!("{}: exit {code:?}, stderr {stderr:?}", e.file));
            }
            // What precedes the damage is still analysed and reported (the snoop file is not
            // a pcap at all, so nothing of it is read).
            let readable = if e.file.ends_with(".snoop") {
                0
            } else {
                e.packets
            };
            if readable > 0
                && (packets != Some(readable) || conns == 0 && e.file.contains("suricata"))
            {
                problems.push(format!(
                    "{}: read {packets:?} packets and {conns} connections before the damage, expected {readable}",
                    e.file
                ));
            }
        } else {
            if code != Some(0) {
                problems.push(format!("{}: exit {code:?}: {stderr}", e.file));
            }
            if packets != Some(e.packets) {
                problems.push(format!(
                    "{}: {packets:?} packets read, capinfos counts {}",
                    e.file, e.packets
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Columns of a Zeek log (a conn.log with `#fields`, or zeek-cut output with a plain header),
/// as maps from field name to value.
fn zeek_rows(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut fields: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("#fields\t") {
            fields = f.split('\t').map(str::to_string).collect();
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else if fields.is_empty() {
            fields = line.split('\t').map(str::to_string).collect();
        } else {
            rows.push(
                fields
                    .iter()
                    .cloned()
                    .zip(line.split('\t').map(str::to_string))
                    .collect(),
            );
        }
    }
    rows
}

#[test]
fn zeek_baselines_agree_on_conn_state_and_history() {
    let Some(dir) = corpus() else {
        return;
    };
    let index = std::fs::read_to_string(dir.join("baselines/INDEX.tsv")).expect("INDEX.tsv");
    let mut compared = 0;
    let mut problems = Vec::new();
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (baseline, capture) = (cols[0], cols[1]);
        if !baseline.contains("zeek-conn.log") {
            continue;
        }
        let expected =
            zeek_rows(&std::fs::read_to_string(dir.join("baselines").join(baseline)).unwrap());
        if expected.is_empty() || !expected[0].contains_key("history") {
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_tcpscope"))
            .args(["--format", "zeek", "read"])
            .arg(dir.join(capture))
            .output()
            .unwrap();
        let got = zeek_rows(&String::from_utf8_lossy(&out.stdout));
        let key = |r: &std::collections::HashMap<String, String>| {
            ["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"].map(|k| r.get(k).cloned())
        };
        for want in &expected {
            compared += 1;
            let Some(have) = got.iter().find(|g| key(g) == key(want)) else {
                problems.push(format!("{capture}: no connection {:?}", key(want)));
                continue;
            };
            for field in ["conn_state", "history"] {
                if let Some(w) = want.get(field)
                    && have.get(field) != Some(w)
                {
                    problems.push(format!(
                        "{capture} {:?}: {field} {:?}, Zeek {w}",
                        key(want),
                        have.get(field)
                    ));
                }
            }
        }
    }
    assert!(
        compared >= 10,
        "the baselines were found ({compared} compared)"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The table is made by two analysis threads merged at the end (see `app::shard_count`); on
/// every capture it must be what one flow table makes (a cap below the default keeps one),
/// with every connection of the JSON output in it once.
#[test]
fn the_sharded_table_is_the_single_table_on_every_capture() {
    let Some(dir) = corpus() else {
        eprintln!("corpus check skipped on request (TCPSCOPE_CORPUS=skip)");
        return;
    };
    let table = |path: &std::path::Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tcpscope"))
            .args(["--format", "table"])
            .args(extra)
            .arg("read")
            .arg(path)
            .output()
            .unwrap()
    };
    let mut problems = Vec::new();
    let mut connections = 0;
    for e in manifest(&dir) {
        let path = dir.join(&e.file);
        let sharded = table(&path, &[]);
        let single = table(&path, &["--max-connections", "999999"]);
        if sharded.stdout != single.stdout
            || sharded.stderr != single.stderr
            || sharded.status.code() != single.status.code()
        {
            problems.push(format!("{}: the sharded table differs", e.file));
        }
        let (_, _, conns, _) = run(&path);
        let text = String::from_utf8_lossy(&sharded.stdout);
        let counted = text
            .lines()
            .find_map(|l| l.split(", ").find_map(|p| p.strip_suffix(" connections")))
            .or_else(|| text.contains(", 1 connection\n").then_some("1"))
            .map_or(0, |n| n.parse::<usize>().unwrap());
        if counted != conns {
            problems.push(format!(
                "{}: table counts {counted}, JSON has {conns}",
                e.file
            ));
        }
        connections += conns;
    }
    assert!(
        connections > 2_000,
        "the corpus holds thousands of connections"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
