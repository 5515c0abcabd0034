//! Live capture through libpcap: immediate mode so each packet is delivered as it arrives, the
//! BPF filter in the kernel, a clean stop on Ctrl-C / `--count` / `--duration`, and `-w` to
//! save what was captured.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pcap::{Active, Capture, Device, Precision};

use crate::decode::LinkKind;
use crate::source::filter::bad_filter;
use crate::source::{Flow, RawPacket, SourceError};
use crate::summary::CaptureStats;
use crate::time::Timestamp;

pub struct LiveCapture {
    cap: Capture<Active>,
    link: LinkKind,
    savefile: Option<pcap::Savefile>,
    stop: Arc<AtomicBool>,
}

/// Explains libpcap's open errors in one line, with what to do about them.
fn open_error(iface: &str, e: pcap::Error) -> SourceError {
    let msg = match &e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
    };
    let lower = msg.to_lowercase();
    if lower.contains("permitted") || lower.contains("permission") {
        SourceError::Live(format!(
            "no permission to capture on {iface} ({msg}): run as root, or allow the binary with: sudo setcap cap_net_raw,cap_net_admin=eip $(command -v tcpscope)"
        ))
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        unknown_interface(iface)
    } else {
        SourceError::Live(format!("cannot capture on {iface}: {msg}"))
    }
}

fn unknown_interface(iface: &str) -> SourceError {
    let names = Device::list()
        .map(|ds| {
            ds.into_iter()
                .map(|d| d.name)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    SourceError::Live(format!("unknown interface '{iface}' (available: {names})"))
}

impl LiveCapture {
    pub fn open(
        iface: &str,
        filter: Option<&str>,
        save: Option<&str>,
    ) -> Result<Self, SourceError> {
        if let Ok(devs) = Device::list()
            && !devs.iter().any(|d| d.name == iface)
        {
            return Err(unknown_interface(iface));
        }
        let mut cap = Capture::from_device(iface)
            .map_err(|e| open_error(iface, e))?
            .promisc(false)
            .snaplen(262_144)
            .immediate_mode(true)
            .timeout(50)
            .buffer_size(32 << 20)
            .precision(Precision::Nano)
            .open()
            .map_err(|e| open_error(iface, e))?;
        if let Some(expr) = filter {
            cap.filter(expr, true)
                .map_err(|e| SourceError::Live(bad_filter(expr, &e)))?;
        }
        let dlt = cap.get_datalink().0;
        let link =
            LinkKind::from_link_type(dlt as u32).map_err(|source| SourceError::LinkType {
                path: iface.to_string(),
                source,
            })?;
        let savefile = match save {
            Some(path) => Some(
                cap.savefile(path)
                    .map_err(|e| SourceError::Live(format!("cannot write {path}: {e}")))?,
            ),
            None => None,
        };
        Ok(LiveCapture {
            cap,
            link,
            savefile,
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A handle that stops the capture from another thread (Ctrl-C, `--duration`).
    pub fn stopper(&mut self) -> impl Fn() + Send + Sync + 'static {
        let brk = self.cap.breakloop_handle();
        let stop = self.stop.clone();
        move || {
            stop.store(true, Ordering::SeqCst);
            brk.breakloop();
        }
    }

    /// Captures until stopped, calling `f` with each packet, and with None when no packet
    /// came within the read timeout (so that a caller holding packets back can pass them on).
    pub fn run(&mut self, f: &mut dyn FnMut(Option<RawPacket>) -> Flow) -> Result<(), SourceError> {
        while !self.stop.load(Ordering::SeqCst) {
            match self.cap.next_packet() {
                Ok(p) => {
                    if let Some(s) = self.savefile.as_mut() {
                        s.write(&p);
                    }
                    let ts = Timestamp::from_secs_nanos(
                        p.header.ts.tv_sec.max(0) as u64,
                        p.header.ts.tv_usec.max(0) as u64,
                    );
                    let pkt = RawPacket {
                        ts,
                        wire_len: p.header.len,
                        data: p.data,
                        link: self.link,
                    };
                    if f(Some(pkt)) == Flow::Stop {
                        break;
                    }
                }
                Err(pcap::Error::TimeoutExpired) => {
                    if f(None) == Flow::Stop {
                        break;
                    }
                }
                // What a breakloop() looks like from next_packet().
                Err(pcap::Error::NoMorePackets) => break,
                Err(e) => return Err(SourceError::Live(format!("capture failed: {e}"))),
            }
        }
        if let Some(s) = self.savefile.as_mut() {
            let _ = s.flush();
        }
        Ok(())
    }

    pub fn stats(&mut self) -> Option<CaptureStats> {
        self.cap.stats().ok().map(|s| CaptureStats {
            received: u64::from(s.received),
            dropped: u64::from(s.dropped),
            if_dropped: u64::from(s.if_dropped),
        })
    }
}
