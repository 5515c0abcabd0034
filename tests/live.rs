//! Live capture on the loopback interface, end to end: tcpscope captures while this test opens
//! a real TCP connection through the kernel and closes it from the client side.
//!
//! What happens on the wire (Linux): SYN, SYN-ACK, ACK; the client sends "hello", the server
//! answers "world"; the client closes; the server's kernel ACKs that FIN at once or after its
//! delayed-ACK timer (at most 200 ms); the server application sleeps 500 ms before closing, so
//! its FIN goes out alone: a four-way close, the client (first FIN) ends in TIME_WAIT.
//!
//! Needs root or CAP_NET_RAW, as CI has. Set TCPSCOPE_SKIP_LIVE=1 to skip it explicitly on a
//! machine without capture rights; without that variable a failure to capture fails the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::thread;
use std::time::Duration;

use serde_json::Value;

fn tcpscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tcpscope"))
}

/// Starts a live capture and waits until tcpscope says it is capturing ("capturing on lo").
/// None when the capture could not start and TCPSCOPE_SKIP_LIVE asks to skip; a failure
/// otherwise.
fn start_capture(mut cmd: Command) -> Option<(Child, BufReader<ChildStderr>)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    if !first.contains("capturing on lo") {
        let _ = child.wait();
        if std::env::var_os("TCPSCOPE_SKIP_LIVE").is_some() {
            eprintln!("live capture skipped on request (TCPSCOPE_SKIP_LIVE): {first}");
            return None;
        }
        panic!("tcpscope could not capture on lo (run as root): {first}");
    }
    thread::sleep(Duration::from_millis(200));
    Some((child, stderr))
}

/// One client-first connection to `listener`, as described above.
fn talk(listener: TcpListener) {
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(b"world").unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap(); // until the client's FIN
        thread::sleep(Duration::from_millis(500));
        drop(s);
    });
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"world");
    drop(c);
    server.join().unwrap();
}

fn connection_facts(json: &str, port: u16) -> Value {
    let conns: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "connection")
        .collect();
    assert_eq!(conns.len(), 1, "one connection captured: {json}");
    let c = conns[0].clone();
    assert_eq!(c["server"], format!("127.0.0.1:{port}"));
    c
}

fn assert_client_first_close(c: &Value) {
    assert_eq!(c["roles"], "observed");
    assert_eq!(c["handshake"]["status"], "complete");
    assert!(c["handshake"]["rtt_s"].as_f64().unwrap() > 0.0);
    assert_eq!(c["close"]["kind"], "four_way");
    assert_eq!(c["close"]["first_fin"], "client");
    assert_eq!(c["time_wait"]["side"], "client");
    assert_eq!(c["reset"], Value::Null);
    assert_eq!(c["payload_bytes"]["client"], 5);
    assert_eq!(c["payload_bytes"]["server"], 5);
    assert_eq!(c["final_state"]["client"], "TIME_WAIT");
    assert_eq!(c["final_state"]["server"], "CLOSED");
    assert_eq!(c["retransmissions"]["total"], 0);
}

#[test]
fn live_capture_on_loopback_explains_a_real_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("live.pcap");
    let mut cmd = tcpscope();
    cmd.args(["--format", "json", "live", "lo", "-w"])
        .arg(&saved)
        .args(["--duration", "4", "tcp", "port"])
        .arg(port.to_string());
    let Some((child, mut stderr)) = start_capture(cmd) else {
        return;
    };
    talk(listener);
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {rest}");
    let json = String::from_utf8(out.stdout).unwrap();
    let summary: Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["live"]["dropped"], 0);
    assert_client_first_close(&connection_facts(&json, port));

    // What -w saved reads back to the same story.
    let out = tcpscope()
        .args(["--format", "json", "read"])
        .arg(&saved)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_client_first_close(&connection_facts(
        &String::from_utf8(out.stdout).unwrap(),
        port,
    ));
}

#[test]
fn live_count_stops_by_itself_and_prints_the_table() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The handshake alone is three packets.
    let mut cmd = tcpscope();
    cmd.args([
        "--format", "table", "live", "lo", "--count", "3", "tcp", "port",
    ])
    .arg(port.to_string());
    let Some((child, _stderr)) = start_capture(cmd) else {
        return;
    };
    talk(listener);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("3 packets, 3 TCP segments, 1 connection"),
        "{text}"
    );
    assert!(text.contains("libpcap: "), "{text}");
}
