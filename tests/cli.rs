//! The binary as a user meets it: exit codes, one-line error texts, the input forms (files,
//! stdin, a rotated set, a filter) and the output formats. The captures are the hand-built ones
//! in fixtures/handmade, whose packets are listed in that folder's README.md.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/handmade")
        .join(name)
}

fn tcpscope() -> Command {
    Command::cargo_bin("tcpscope").unwrap()
}

/// JSON lines of a run (whatever its exit status).
fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

/// What `tcpscope ARGS FIXTURE` prints, after checking that it exits 0.
fn stdout_of(args: &[&str], name: &str) -> Vec<u8> {
    tcpscope()
        .args(args)
        .arg(fixture(name))
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone()
}

fn of_type<'a>(lines: &'a [Value], t: &str) -> Vec<&'a Value> {
    lines.iter().filter(|v| v["type"] == t).collect()
}

// --- Errors: one line on stderr, exit 2 ------------------------------------------------------

#[test]
fn missing_file() {
    tcpscope()
        .args(["read", "no/such/file.pcap"])
        .assert()
        .code(2)
        .stdout("")
        .stderr("tcpscope: no/such/file.pcap: No such file or directory (os error 2)\n");
}

#[test]
fn not_a_capture() {
    tcpscope()
        .arg("read")
        .arg(fixture("not_a_capture.pcap"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a capture file").and(predicate::str::ends_with("\n")))
        .stderr(predicate::function(|s: &str| s.lines().count() == 1));
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.pcap");
    std::fs::write(&p, b"").unwrap();
    tcpscope()
        .arg("read")
        .arg(&p)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("empty file"));
}

#[test]
fn truncated_file_reports_what_was_read_then_fails() {
    // 10 of 11 records are whole: the handshake, data both ways, FIN, ACK, FIN; the client's
    // final ACK is cut.
    let out = tcpscope()
        .args(["--format", "json", "read"])
        .arg(fixture("truncated_record.pcap"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "truncated: the file ends in the middle of a packet record (after 10 complete packets)",
        ))
        .get_output()
        .stdout
        .clone();
    let lines = json_lines(&out);
    let conns = of_type(&lines, "connection");
    assert_eq!(conns.len(), 1);
    let c = conns[0];
    assert_eq!(c["handshake"]["status"], "complete");
    assert_eq!(c["close"]["first_fin"], "client");
    assert_eq!(c["packets"]["client"], 5);
    assert_eq!(c["packets"]["server"], 5);
    assert_eq!(c["final_state"]["client"], "TIME_WAIT");
    assert_eq!(c["final_state"]["server"], "LAST_ACK");
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["packets"], 10);
    assert!(summary["error"].as_str().unwrap().contains("truncated"));
}

#[test]
fn unknown_link_type_names_the_number() {
    tcpscope()
        .arg("read")
        .arg(fixture("link_unknown_147.pcap"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unsupported link type 147"));
}

#[test]
fn bad_filter_quotes_the_expression_and_libpcap() {
    tcpscope()
        .arg("read")
        .arg(fixture("link_ethernet_vlan.pcap"))
        .args(["port", "88999"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "tcpscope: bad filter 'port 88999': ",
        ))
        .stderr(predicate::str::contains("88999 > 65535"));
}

#[test]
fn unknown_interface_lists_the_real_ones() {
    tcpscope()
        .args(["live", "nosuchif0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "unknown interface 'nosuchif0' (available: ",
        ))
        .stderr(predicate::str::contains("lo"));
}

#[test]
fn wrong_command_line_exits_2() {
    tcpscope().args(["read"]).assert().code(2);
    tcpscope()
        .args(["--format", "xml", "read", "x.pcap"])
        .assert()
        .code(2);
    tcpscope()
        .args(["--fail-on", "nonsense", "read", "x.pcap"])
        .assert()
        .code(2);
}

// --- Inputs ------------------------------------------------------------------------------------

fn connections_of(args: &[&str], stdin: Option<Vec<u8>>) -> Vec<Value> {
    let mut cmd = tcpscope();
    cmd.args(["--format", "json"]).args(args);
    if let Some(bytes) = stdin {
        cmd.write_stdin(bytes);
    }
    let out = cmd.assert().code(0).get_output().stdout.clone();
    json_lines(&out)
        .into_iter()
        .filter(|v| v["type"] == "connection")
        .collect()
}

#[test]
fn stdin_reads_like_the_file() {
    let path = fixture("link_ethernet_vlan.pcap");
    let from_file = connections_of(&["read", path.to_str().unwrap()], None);
    let from_pipe = connections_of(&["read", "-"], Some(std::fs::read(&path).unwrap()));
    assert_eq!(from_file.len(), 1);
    assert_eq!(from_file, from_pipe);
}

/// Splits a classic pcap after `n` records into two files with the same header, as
/// `tcpdump -C` rotation does.
fn split_pcap(src: &Path, n: usize, a: &Path, b: &Path) {
    let bytes = std::fs::read(src).unwrap();
    let (header, mut rest) = bytes.split_at(24);
    let mut first = header.to_vec();
    for _ in 0..n {
        let caplen = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        first.extend_from_slice(&rest[..16 + caplen]);
        rest = &rest[16 + caplen..];
    }
    let mut second = header.to_vec();
    second.extend_from_slice(rest);
    std::fs::write(a, first).unwrap();
    std::fs::write(b, second).unwrap();
}

#[test]
fn a_rotated_set_reads_as_one_capture() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("rot0.pcap"), dir.path().join("rot1.pcap"));
    let whole = fixture("link_ethernet_vlan.pcap");
    split_pcap(&whole, 5, &a, &b);
    let joined = connections_of(&["read", a.to_str().unwrap(), b.to_str().unwrap()], None);
    let original = connections_of(&["read", whole.to_str().unwrap()], None);
    assert_eq!(joined, original);
    assert_eq!(joined[0]["close"]["kind"], "four_way");
}

#[test]
fn trailing_words_are_a_bpf_filter() {
    // link_null.pcap holds an IPv4 connection (port 40000) and an IPv6 one (port 40001).
    let path = fixture("link_null.pcap");
    let p = path.to_str().unwrap();
    assert_eq!(connections_of(&["read", p], None).len(), 2);
    let v6 = connections_of(&["read", p, "ip6"], None);
    assert_eq!(v6.len(), 1);
    assert_eq!(v6[0]["client"], "[fd00::1]:40001");
    // Options may come after the filter, as with tcpdump.
    let out = tcpscope()
        .arg("read")
        .arg(&path)
        .args(["tcp", "port", "40000", "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let lines = json_lines(&out);
    assert_eq!(of_type(&lines, "connection").len(), 1);
    assert_eq!(of_type(&lines, "summary")[0]["filtered_out"], 11);
}

// --- --fail-on and exit 1 ---------------------------------------------------------------------

#[test]
fn fail_on_names_the_matching_connections() {
    // port_reuse_after_rst.pcap: #1 is reset by the client, #2 reuses its 4-tuple and closes
    // cleanly.
    tcpscope()
        .args(["--format", "table", "--fail-on", "reset,refused"])
        .arg("read")
        .arg(fixture("port_reuse_after_rst.pcap"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("closes:"))
        .stderr("tcpscope: --fail-on matched 1 connection(s): #1 10.0.0.1:40000 → 10.0.0.2:80 (reset)\n");
    tcpscope()
        .args(["--fail-on", "refused,unanswered,incomplete"])
        .arg("read")
        .arg(fixture("port_reuse_after_rst.pcap"))
        .assert()
        .code(0);
}

// --- Formats -----------------------------------------------------------------------------------

#[test]
fn json_lines_follow_the_schema() {
    let out = stdout_of(&["--format", "json", "read"], "link_ethernet_vlan.pcap");
    let lines = json_lines(&out);
    let kinds: Vec<&str> = of_type(&lines, "event")
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "syn",
            "syn_ack",
            "handshake_complete",
            "fin",
            "fin_acked",
            "fin",
            "fin_acked",
            "time_wait",
            "close_complete"
        ]
    );
    let first = of_type(&lines, "event")[0];
    assert_eq!(first["ts"], "2026-01-01T00:00:00.000000000Z");
    assert_eq!(first["conn"], 1);
    assert_eq!(first["from"], "client");
    let c = of_type(&lines, "connection")[0];
    assert_eq!(c["id"], 1);
    assert_eq!(c["client"], "10.0.0.1:40000");
    assert_eq!(c["server"], "10.0.0.2:80");
    assert_eq!(c["roles"], "observed");
    assert_eq!(c["handshake"]["status"], "complete");
    assert_eq!(c["handshake"]["rtt_s"], 0.0002);
    assert_eq!(c["close"]["kind"], "four_way");
    assert_eq!(c["time_wait"]["side"], "client");
    assert_eq!(c["time_wait"]["since"], "2026-01-01T00:00:00.004080000Z");
    assert_eq!(c["time_wait"]["until"], "2026-01-01T00:01:00.004080000Z");
    assert_eq!(c["reset"], Value::Null);
    assert_eq!(c["port_reuse"], false);
    assert_eq!(c["retransmissions"]["total"], 0);
    let s = of_type(&lines, "summary")[0];
    assert_eq!(s["schema"], 1);
    assert_eq!(s["packets"], 11);
    assert_eq!(s["connections"], 1);
    assert_eq!(lines.last().unwrap()["type"], "summary");
}

#[test]
fn time_wait_length_is_an_option() {
    let out = stdout_of(
        &["--format", "json", "--time-wait", "240", "read"],
        "link_ethernet_vlan.pcap",
    );
    let lines = json_lines(&out);
    assert_eq!(
        of_type(&lines, "connection")[0]["time_wait"]["until"],
        "2026-01-01T00:04:00.004080000Z"
    );
}

#[test]
fn text_timeline_tells_the_walkthrough() {
    let out = stdout_of(&["read"], "link_ethernet_vlan.pcap");
    let text = String::from_utf8(out).unwrap();
    let timeline: Vec<&str> = text.lines().take(11).collect();
    assert_eq!(
        timeline,
        [
            "#1 10.0.0.1:40000 → 10.0.0.2:80",
            "2026-01-01 00:00:00.000000  #1 client sends SYN (ISN 1000000000)  → client SYN_SENT, server LISTEN",
            "2026-01-01 00:00:00.000120  #1 server answers SYN-ACK (ISN 2000000000)  → client ESTABLISHED, server SYN_RECEIVED",
            "2026-01-01 00:00:00.000200  #1 client ACKs: handshake complete, RTT 200 µs at the capture point  → client ESTABLISHED, server ESTABLISHED",
            "2026-01-01 00:00:00.003000  #1 client sends FIN  → client FIN_WAIT_1, server CLOSE_WAIT",
            "2026-01-01 00:00:00.003120  #1 server ACKs the client's FIN  → client FIN_WAIT_2, server CLOSE_WAIT",
            "2026-01-01 00:00:00.004000  #1 server sends FIN  → client TIME_WAIT, server LAST_ACK",
            "2026-01-01 00:00:00.004080  #1 client ACKs the server's FIN  → client TIME_WAIT, server CLOSED",
            "2026-01-01 00:00:00.004080  #1 client enters TIME_WAIT until 2026-01-01 00:01:00.004080 (60.000 s)  → client TIME_WAIT, server CLOSED",
            "2026-01-01 00:00:00.004080  #1 close complete: both FINs acknowledged  → client TIME_WAIT, server CLOSED",
            "",
        ]
    );
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    assert!(text.contains("11 packets, 11 TCP segments, 1 connection\n"));
}

#[test]
fn packets_view_prints_segments_like_tcpdump() {
    let out = stdout_of(
        &["--packets", "--format", "text", "read"],
        "link_ethernet_vlan.pcap",
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [S], seq 1000000000, win "));
    assert!(text.contains("Flags [S.], seq 2000000000, ack 1000000001, win "));
    assert!(text.contains("Flags [P.], seq 1:6, ack 1, win "));
    assert!(text.contains("Flags [F.], seq 6, ack 6, win "));
    assert!(text.contains("(client FIN_WAIT_1, server CLOSE_WAIT)"));
}

#[test]
fn colour_only_when_asked_and_not_with_no_color() {
    let run = |args: &[&str], no_color: bool| {
        let mut cmd = tcpscope();
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let out = cmd
            .args(args)
            .arg("read")
            .arg(fixture("port_reuse_after_rst.pcap"))
            .assert()
            .code(0)
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    };
    assert!(run(&["--color", "always"], false).contains("\x1b[31m"));
    assert!(!run(&["--color", "never"], false).contains('\x1b'));
    assert!(!run(&[], true).contains('\x1b'));
}

#[test]
fn time_styles() {
    let first_line = |style: &str| {
        let out = stdout_of(&["--time", style, "read"], "link_ethernet_vlan.pcap");
        String::from_utf8(out)
            .unwrap()
            .lines()
            .nth(2)
            .unwrap()
            .to_string()
    };
    assert!(first_line("epoch").starts_with("1767225600.000120  #1 server answers SYN-ACK"));
    assert!(first_line("relative").starts_with("   0.000120  #1 server answers SYN-ACK"));
    assert!(first_line("utc").starts_with("2026-01-01 00:00:00.000120  #1"));
}

#[test]
fn nanosecond_captures_print_nanoseconds() {
    let out = stdout_of(&["read"], "nanosecond_handmade.pcap");
    let text = String::from_utf8(out).unwrap();
    let line = text.lines().nth(1).unwrap();
    assert_eq!(&line[..29], "2026-01-01 00:00:00.123456789");
}

#[test]
fn an_empty_capture_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("none.pcap");
    let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    std::fs::write(&p, header).unwrap();
    tcpscope()
        .args(["--format", "table", "read"])
        .arg(&p)
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("No TCP connections.\n"));
}

#[test]
fn capture_without_permission_says_what_to_do() {
    // As root, drop to nobody for this one command (setpriv, from util-linux); as anyone
    // else, the command already lacks the right.
    let bin = assert_cmd::cargo::cargo_bin("tcpscope");
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut cmd = if is_root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    cmd.args(["live", "lo"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "tcpscope: no permission to capture on lo",
        ))
        .stderr(predicate::str::contains(
            "setcap cap_net_raw,cap_net_admin=eip",
        ));
}

// --- Analysis and Zeek ------------------------------------------------------------------------

fn segments_of(name: &str) -> Vec<Value> {
    let out = tcpscope()
        .args(["--format", "json", "--packets", "read"])
        .arg(fixture(name))
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    json_lines(&out)
        .into_iter()
        .filter(|v| v["type"] == "segment")
        .collect()
}

fn analysis_of(seg: &Value) -> Vec<&str> {
    seg["analysis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

#[test]
fn segments_carry_frame_numbers_and_wireshark_flags() {
    // fin_retrans_timewait_reack.pcap: the server's FIN (frame 10) is acknowledged by frame 11,
    // whose ACK is lost after the capture point; the server resends its FIN (frame 12) and the
    // client, in TIME_WAIT, acknowledges it again (frame 13).
    let segs = segments_of("fin_retrans_timewait_reack.pcap");
    assert_eq!(segs.len(), 13);
    let frames: Vec<u64> = segs.iter().map(|s| s["frame"].as_u64().unwrap()).collect();
    assert_eq!(frames, (1..=13).collect::<Vec<u64>>());
    assert_eq!(segs[0]["flags"], "S");
    assert_eq!(segs[0]["seq"], 0);
    assert_eq!(segs[3]["flags"], "P.");
    assert_eq!(
        (segs[3]["seq"].as_u64(), segs[3]["len"].as_u64()),
        (Some(1), Some(5))
    );
    for s in &segs[..11] {
        assert!(
            analysis_of(s).is_empty(),
            "frame {}: {:?}",
            s["frame"],
            s["analysis"]
        );
    }
    assert_eq!(analysis_of(&segs[11]), ["retransmission"]);
    assert_eq!(segs[11]["from"], "server");
    // Wireshark calls this a duplicate ACK; it is the TIME_WAIT re-ACK.
    assert_eq!(analysis_of(&segs[12]), ["time_wait_reack"]);
    assert_eq!(segs[12]["state"]["client"], "TIME_WAIT");
}

#[test]
fn simultaneous_open_syn_acks_are_not_retransmissions() {
    let segs = segments_of("simultaneous_open.pcap");
    assert_eq!(segs[2]["flags"], "S.");
    assert_eq!(segs[3]["flags"], "S.");
    assert!(analysis_of(&segs[2]).is_empty());
    assert!(analysis_of(&segs[3]).is_empty());
}

#[test]
fn packets_view_shows_wireshark_info_tags() {
    let out = stdout_of(&["--packets", "read"], "fin_retrans_timewait_reack.pcap");
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("Flags [F.], seq 6, ack 7, win 502, length 0 [TCP Retransmission]"));
    assert!(text.contains("[TIME_WAIT re-ACK]"));
}

#[test]
fn zeek_conn_log() {
    let out = stdout_of(&["--format", "zeek", "read"], "link_ethernet_vlan.pcap");
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "#separator \\x09");
    assert_eq!(lines[4], "#path\tconn");
    let fields: Vec<&str> = lines[6].split('\t').collect();
    assert_eq!(fields[0], "#fields");
    let row: Vec<&str> = lines[8].split('\t').collect();
    assert_eq!(row.len(), fields.len() - 1);
    let col = |name: &str| row[fields.iter().position(|f| *f == name).unwrap() - 1];
    // Handshake, 5 bytes each way, client-first four-way close: Zeek's SF, ShADadFf.
    assert_eq!(col("id.orig_h"), "10.0.0.1");
    assert_eq!(col("id.resp_p"), "80");
    assert_eq!(col("conn_state"), "SF");
    assert_eq!(col("history"), "ShADadFf");
    assert_eq!(col("orig_bytes"), "5");
    assert_eq!(col("resp_bytes"), "5");
    assert_eq!(col("orig_pkts"), "6");
    assert_eq!(col("resp_pkts"), "5");
    assert_eq!(col("ts"), "1767225600.000000");
    assert!(lines.last().unwrap().starts_with("#close\t"));
}

#[test]
fn json_connections_carry_analysis_and_zeek() {
    let out = stdout_of(&["--format", "json", "read"], "link_ethernet_vlan.pcap");
    let lines = json_lines(&out);
    let c = of_type(&lines, "connection")[0];
    assert_eq!(c["zeek"]["conn_state"], "SF");
    assert_eq!(c["zeek"]["history"], "ShADadFf");
    assert_eq!(c["analysis"]["client"]["counts"]["retransmission"], 0);
    assert_eq!(c["analysis"]["client"]["window_scale_known"], true);
    // Each data segment is acknowledged exactly once: one RTT sample per side, plus the SYNs'.
    assert_eq!(c["analysis"]["client"]["rtt"]["samples"], 3);
    assert_eq!(c["analysis"]["irtt_s"], 0.0002);
}

#[test]
fn connection_counts_follow_the_corrected_flags() {
    // fin_retrans_timewait_reack.pcap: one FIN retransmission by the server, one TIME_WAIT
    // re-ACK by the client, and no duplicate ACK at all.
    let out = stdout_of(
        &["--format", "json", "read"],
        "fin_retrans_timewait_reack.pcap",
    );
    let lines = json_lines(&out);
    let c = of_type(&lines, "connection")[0];
    let counts = |side: &str, flag: &str| c["analysis"][side]["counts"][flag].as_u64().unwrap();
    assert_eq!(counts("server", "retransmission"), 1);
    assert_eq!(counts("client", "time_wait_reack"), 1);
    assert_eq!(counts("client", "duplicate_ack"), 0);
    assert_eq!(counts("server", "duplicate_ack"), 0);
    let s = of_type(&lines, "summary")[0];
    assert_eq!(s["analysis"]["time_wait_reack"], 1);
    assert_eq!(s["analysis"]["duplicate_ack"], 0);
}

#[test]
fn scaled_window_is_known_only_with_the_handshake() {
    // link_ethernet_vlan.pcap: both SYNs offer window scale 7; midstream.pcap has no SYN.
    let segs = segments_of("link_ethernet_vlan.pcap");
    let ack = &segs[2];
    assert_eq!(ack["flags"], ".");
    assert_eq!(
        ack["win_bytes"].as_u64(),
        Some(ack["win"].as_u64().unwrap() << 7)
    );
    assert_eq!(
        segs[0]["win_bytes"], segs[0]["win"],
        "a SYN's window is not scaled"
    );
    let mid = segments_of("midstream.pcap");
    assert_eq!(mid[0]["win_bytes"], Value::Null);
}

#[test]
fn table_format_has_one_row_per_connection() {
    let out = stdout_of(&["--format", "table", "read"], "port_reuse_after_rst.pcap");
    let text = String::from_utf8(out).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("│ ")).collect();
    // Header, then #1 (reset by the client) and #2 (the same 4-tuple, closed cleanly).
    assert_eq!(rows.len(), 3);
    assert!(rows[1].contains("reset") && rows[1].contains("client (abort)"));
    assert!(rows[2].contains("four_way") && rows[2].contains("client, until"));
    assert!(text.contains("closes: 1 four_way, 1 reset"));
    assert!(
        !text.contains("#1 client sends SYN"),
        "no timeline in the table format"
    );
}

// --- The sharded table ------------------------------------------------------------------------

/// A classic pcap file's byte order and time unit, (big-endian, nanoseconds), from its magic
/// number; None for anything else (pcapng).
fn pcap_kind(bytes: &[u8]) -> Option<(bool, bool)> {
    match bytes[..4] {
        [0xa1, 0xb2, 0xc3, 0xd4] => Some((true, false)),
        [0xa1, 0xb2, 0x3c, 0x4d] => Some((true, true)),
        [0xd4, 0xc3, 0xb2, 0xa1] => Some((false, false)),
        [0x4d, 0x3c, 0xb2, 0xa1] => Some((false, true)),
        _ => None,
    }
}

/// The 32-bit field at `i` of a pcap file of that byte order.
fn pcap_u32(bytes: &[u8], i: usize, big_endian: bool) -> u32 {
    let b: [u8; 4] = bytes[i..i + 4].try_into().unwrap();
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// The same capture with every packet cut to its first 96 bytes and a snap length of 96, as
/// `tcpdump -s 96` writes it (classic pcap, either byte order; pcapng is copied as it is).
fn cut_to_headers(from: &Path, to: &Path) {
    let bytes = std::fs::read(from).unwrap();
    let Some((big_endian, _)) = pcap_kind(&bytes) else {
        return std::fs::write(to, bytes).unwrap();
    };
    let u32_at = |i: usize| pcap_u32(&bytes, i, big_endian);
    let put = |out: &mut Vec<u8>, n: u32| {
        out.extend(if big_endian {
            n.to_be_bytes()
        } else {
            n.to_le_bytes()
        })
    };
    let mut out = bytes[..16].to_vec();
    put(&mut out, 96);
    out.extend(&bytes[20..24]);
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32_at(at + 8) as usize;
        let kept = caplen.min(96);
        out.extend(&bytes[at..at + 8]);
        put(&mut out, kept as u32);
        out.extend(&bytes[at + 12..at + 16]);
        out.extend(&bytes[at + 16..at + 16 + kept]);
        at += 16 + caplen;
    }
    std::fs::write(to, out).unwrap();
}

/// A classic pcap capture written as pcapng: one section, one interface with the pcap's link
/// type and snap length, microsecond times; a pcapng capture is copied as it is.
fn as_pcapng(from: &Path, to: &Path) {
    let bytes = std::fs::read(from).unwrap();
    let Some((big_endian, nanos)) = pcap_kind(&bytes) else {
        return std::fs::write(to, bytes).unwrap();
    };
    let u32_at = |i: usize| pcap_u32(&bytes, i, big_endian);
    let block = |out: &mut Vec<u8>, kind: u32, body: &[u8]| {
        let len = (12 + body.len().div_ceil(4) * 4) as u32;
        out.extend(kind.to_le_bytes());
        out.extend(len.to_le_bytes());
        out.extend(body);
        out.resize(out.len() + (4 - body.len() % 4) % 4, 0);
        out.extend(len.to_le_bytes());
    };
    let mut out = Vec::new();
    let mut shb = 0x1a2b_3c4d_u32.to_le_bytes().to_vec();
    shb.extend([1, 0, 0, 0]);
    shb.extend((-1_i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    let mut idb = (u32_at(20) as u16).to_le_bytes().to_vec();
    idb.extend([0, 0]);
    idb.extend(u32_at(16).to_le_bytes());
    block(&mut out, 1, &idb);
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32_at(at + 8) as usize;
        let micros = u64::from(u32_at(at + 4)) / if nanos { 1000 } else { 1 };
        let units = u64::from(u32_at(at)) * 1_000_000 + micros;
        let mut epb = 0_u32.to_le_bytes().to_vec();
        epb.extend(((units >> 32) as u32).to_le_bytes());
        epb.extend((units as u32).to_le_bytes());
        epb.extend((caplen as u32).to_le_bytes());
        epb.extend(u32_at(at + 12).to_le_bytes());
        epb.extend(&bytes[at + 16..at + 16 + caplen]);
        block(&mut out, 6, &epb);
        at += 16 + caplen;
    }
    std::fs::write(to, out).unwrap();
}

/// The table of a run is made by two analyses, each holding the connections whose 4-tuple
/// hashes to it, and merged at the end: two threads beside the reading one, or, when the
/// capture keeps only headers, the reading thread itself with a quarter of them and one thread
/// with the rest. Read the 20 real Linux connections of fixtures/linux as one capture, as
/// captured and cut to 96 bytes a packet (in pcap, and in pcapng): the table lists each once, numbered in the order
/// they opened (file by file, as FACTS.tsv lists them), exactly as one flow table does (a cap
/// below the default keeps one).
#[test]
fn the_sharded_table_is_the_single_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/linux");
    let facts = std::fs::read_to_string(dir.join("FACTS.tsv")).unwrap();
    let mut files: Vec<&str> = facts
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    files.dedup();
    // The FACTS lines in reading order: file by file, each file's connections in order.
    let in_order: Vec<Vec<&str>> = files
        .iter()
        .flat_map(|f| {
            facts
                .lines()
                .skip(1)
                .filter(move |l| l.starts_with(&format!("{f}\t")))
                .map(|l| l.split('\t').collect())
        })
        .collect();
    let expected: Vec<(String, String)> = in_order
        .iter()
        .map(|cols| (cols[2].to_string(), cols[3].to_string()))
        .collect();
    assert_eq!(expected.len(), 20);
    let cut = tempfile::tempdir().unwrap();
    let as_captured: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
    let headers_only: Vec<PathBuf> = files.iter().map(|f| cut.path().join(f)).collect();
    let headers_only_ng: Vec<PathBuf> = files
        .iter()
        .map(|f| cut.path().join(format!("{f}.pcapng")))
        .collect();
    for ((from, to), ng) in as_captured.iter().zip(&headers_only).zip(&headers_only_ng) {
        cut_to_headers(from, to);
        as_pcapng(to, ng);
    }
    for paths in [&as_captured, &headers_only, &headers_only_ng] {
        check_sharded_table(paths, &expected, &in_order);
    }
}

fn check_sharded_table(paths: &[PathBuf], expected: &[(String, String)], in_order: &[Vec<&str>]) {
    let run = |extra: &[&str]| {
        let out = tcpscope()
            .args(["--format", "table", "--fail-on", "reset,refused"])
            .args(extra)
            .arg("read")
            .args(paths)
            .assert()
            .code(1)
            .get_output()
            .clone();
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (sharded, sharded_err) = run(&[]);
    let (single, single_err) = run(&["--max-connections", "999999"]);
    assert_eq!(sharded, single);
    assert_eq!(sharded_err, single_err);
    // Rows: "│ id ┆ client ┆ server ┆ …".
    let rows: Vec<(u64, String, String)> = sharded
        .lines()
        .filter(|l| l.starts_with('│'))
        .map(|l| {
            l.trim_matches('│')
                .split('┆')
                .map(str::trim)
                .collect::<Vec<&str>>()
        })
        .filter(|cells| cells[0] != "#")
        .map(|cells| {
            (
                cells[0].parse().unwrap(),
                cells[1].to_string(),
                cells[2].to_string(),
            )
        })
        .collect();
    let ids: Vec<u64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(ids, (1..=20).collect::<Vec<u64>>());
    let pairs: Vec<(String, String)> = rows.into_iter().map(|r| (r.1, r.2)).collect();
    assert_eq!(pairs, expected);
    // The connections closed by a reset or refused (FACTS column close), named in connection
    // order.
    let reset_ids: Vec<String> = in_order
        .iter()
        .enumerate()
        .filter(|(_, cols)| matches!(cols[5], "reset" | "refused"))
        .map(|(i, _)| format!("#{}", i + 1))
        .collect();
    assert_eq!(reset_ids, ["#5", "#7", "#8", "#19"]);
    // "tcpscope: --fail-on matched N connection(s): #3 a → b (reset); #7 …"
    let list = sharded_err.split_once("connection(s): ").unwrap().1;
    let named: Vec<&str> = list
        .split("; ")
        .map(|part| part.split(' ').next().unwrap())
        .collect();
    assert_eq!(named, reset_ids);
}

/// The environment tcpscope runs with, read from /proc while it waits on an open stdin:
/// after `wait`, or as soon as it shows `until`.
fn running_environment(
    extra_env: &[(&str, &str)],
    until: &str,
    wait: std::time::Duration,
) -> String {
    use std::process::Stdio;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tcpscope"))
        .args(["read", "-"])
        .env_remove("GLIBC_TUNABLES")
        .env_remove("TCPSCOPE_HUGE_PAGES")
        .envs(extra_env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = format!("/proc/{}", child.id());
    let started = std::time::Instant::now();
    let mut env = String::new();
    while started.elapsed() < wait {
        let environ = std::fs::read(format!("{proc}/environ")).unwrap_or_default();
        env = String::from_utf8_lossy(&environ).into_owned();
        if env.split('\0').any(|v| v == until) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Restarted or not, the process keeps its name.
    let name = std::fs::read_to_string(format!("{proc}/comm")).unwrap();
    assert_eq!(name.trim_end(), "tcpscope");
    drop(child.stdin.take());
    child.wait().unwrap();
    env
}

/// On Linux with glibc, tcpscope starts itself again once with glibc's malloc.hugetlb
/// tunable (huge pages for its heaps), keeping the user's other tunables; a user's own
/// setting of the tunable, or TCPSCOPE_HUGE_PAGES, leaves it as it is.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn tcpscope_restarts_itself_with_huge_pages_unless_told_not_to() {
    use std::time::Duration;
    let long = Duration::from_secs(10);
    let env = running_environment(&[], "TCPSCOPE_HUGE_PAGES=1", long);
    let vars: Vec<&str> = env.split('\0').collect();
    assert!(vars.contains(&"TCPSCOPE_HUGE_PAGES=1"), "{vars:?}");
    assert!(
        vars.contains(&"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"),
        "{vars:?}"
    );
    let theirs = [("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")];
    let env = running_environment(&theirs, "TCPSCOPE_HUGE_PAGES=1", long);
    // (glibc, parsing the tunables, may overwrite their ':' separators in place.)
    let restarted_with = "GLIBC_TUNABLES=glibc.malloc.arena_max=2?glibc.malloc.hugetlb=1";
    assert!(
        env.replace([':', '\0'], "?").contains(restarted_with),
        "{env:?}"
    );
    // Not restarted: the environment stays the one it was given.
    let short = Duration::from_millis(500);
    for given in [
        ("TCPSCOPE_HUGE_PAGES", "0"),
        ("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0"),
    ] {
        let env = running_environment(&[given], "TCPSCOPE_HUGE_PAGES=1", short);
        let vars: Vec<&str> = env.split('\0').collect();
        assert!(
            !vars.contains(&"TCPSCOPE_HUGE_PAGES=1"),
            "{given:?}: {vars:?}"
        );
        assert!(
            vars.contains(&format!("{}={}", given.0, given.1).as_str()),
            "{vars:?}"
        );
    }
}
