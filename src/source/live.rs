//! Live capture through libpcap: the BPF filter in the kernel, a clean stop on Ctrl-C /
//! `--count` / `--duration`, and `-w` to save what was captured.
//!
//! Immediate mode is off on purpose. With it, libpcap uses TPACKET_V2, whose ring has one slot
//! per packet sized for the largest packet the interface takes (64 KiB on loopback), so even
//! a large buffer holds only a few milliseconds of traffic and drops under load. Without it,
//! the kernel packs packets into the ring (TPACKET_V3) and hands over a block when it fills
//! or after the read timeout, so packets reach the analysis within `TIMEOUT_MS`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pcap::{Active, Capture, Device, Precision};

use crate::decode::LinkKind;
use crate::source::filter::bad_filter;
use crate::source::{Flow, RawPacket, SourceError};
use crate::summary::CaptureStats;
use crate::time::Timestamp;

/// The kernel's capture ring. At 200,000 small packets a second it holds a few seconds of
/// backlog, so a pause of the reading thread (the scheduler giving both cores to others)
/// loses nothing.
const LIVE_BUFFER: i32 = 64 << 20;

/// How long the kernel holds packets back before handing them over when traffic is light.
const TIMEOUT_MS: i32 = 50;

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

/// Tells the kernel not to copy outgoing packets into this capture's ring. libpcap 1.10
/// filters them out itself after the copy, which on loopback doubles the kernel's work and
/// halves the ring. Best effort: an older kernel without the option copies as before.
#[cfg(target_os = "linux")]
fn ignore_outgoing(cap: &Capture<Active>) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a plain setsockopt on the capture's own packet socket, with a pointer to a
    // live c_int and its size; the descriptor stays open as long as `cap`.
    unsafe {
        libc::setsockopt(
            cap.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn ignore_outgoing(_cap: &Capture<Active>) {}

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
        let mut loopback = false;
        if let Ok(devs) = Device::list() {
            match devs.iter().find(|d| d.name == iface) {
                Some(d) => loopback = d.flags.is_loopback(),
                None => return Err(unknown_interface(iface)),
            }
        }
        let mut cap = Capture::from_device(iface)
            .map_err(|e| open_error(iface, e))?
            .promisc(false)
            .snaplen(262_144)
            .immediate_mode(false)
            .timeout(TIMEOUT_MS)
            .buffer_size(LIVE_BUFFER)
            .precision(Precision::Nano)
            .open()
            .map_err(|e| open_error(iface, e))?;
        // On loopback every packet passes the interface twice, going out and coming in, and
        // libpcap keeps only the incoming copy (as tcpdump shows). Asking for that direction
        // lets the kernel skip the other copy (PACKET_IGNORE_OUTGOING) instead of filling
        // the ring with it: half the kernel's work, and twice the backlog before a drop.
        if loopback {
            let _ = cap.direction(pcap::Direction::In);
            ignore_outgoing(&cap);
        }
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
