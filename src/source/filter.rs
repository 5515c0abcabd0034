//! BPF filters as tcpdump takes them, compiled by libpcap for each link type a capture uses and
//! run on every packet read from a file (a live capture filters in the kernel instead).

use pcap::{BpfProgram, Capture, Linktype};
use rustc_hash::FxHashMap;

use crate::decode::LinkKind;

pub struct PacketFilter {
    expr: String,
    programs: FxHashMap<i32, BpfProgram>,
    /// Copy of a BSD-loopback packet with its address family rewritten (see `matches`).
    scratch: Vec<u8>,
}

/// The host's address-family numbers, which libpcap's compiler expects in a NULL/LOOP header.
const AF_INET: u32 = 2;
#[cfg(target_os = "linux")]
const AF_INET6: u32 = 10;
#[cfg(not(target_os = "linux"))]
const AF_INET6: u32 = 30;

impl PacketFilter {
    /// Checks the expression against Ethernet up front, so a typo fails before any reading.
    pub fn new(expr: &str) -> Result<PacketFilter, String> {
        let mut f = PacketFilter {
            expr: expr.to_string(),
            programs: FxHashMap::default(),
            scratch: Vec::new(),
        };
        f.program(LinkKind::Ethernet)?;
        Ok(f)
    }

    fn program(&mut self, link: LinkKind) -> Result<&BpfProgram, String> {
        let dlt = link.dlt();
        if !self.programs.contains_key(&dlt) {
            let prog = Capture::dead(Linktype(dlt))
                .and_then(|cap| cap.compile(&self.expr, true))
                .map_err(|e| bad_filter(&self.expr, &e))?;
            self.programs.insert(dlt, prog);
        }
        Ok(&self.programs[&dlt])
    }

    /// Does the packet pass? A filter that cannot be compiled for this link type is an error.
    pub fn matches(&mut self, link: LinkKind, data: &[u8]) -> Result<bool, String> {
        // A filter compiled outside a savefile tests a BSD-loopback header against this host's
        // AF_INET6 only, while files carry the writer's value (24, 28, 30 on BSDs). Give libpcap
        // the packet with the host's value for the IP version the packet really carries.
        if matches!(link, LinkKind::Null | LinkKind::Loop) && data.len() > 4 {
            let af = if data[4] >> 4 == 6 { AF_INET6 } else { AF_INET };
            let header = match link {
                LinkKind::Null => af.to_ne_bytes(),
                _ => af.to_be_bytes(),
            };
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            scratch.extend_from_slice(&header);
            scratch.extend_from_slice(&data[4..]);
            let r = self.program(link)?.filter(&scratch);
            self.scratch = scratch;
            return Ok(r);
        }
        Ok(self.program(link)?.filter(data))
    }
}

/// `bad filter 'port 88999': illegal port number 88999 > 65535`.
pub fn bad_filter(expr: &str, e: &pcap::Error) -> String {
    let msg = match e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
    };
    format!("bad filter '{expr}': {msg}")
}
