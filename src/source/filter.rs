//! BPF filters as tcpdump takes them, compiled by libpcap for each link type a capture uses and
//! run on every packet read from a file (a live capture filters in the kernel instead).

use pcap::{BpfProgram, Capture, Linktype};
use rustc_hash::FxHashMap;

use crate::decode::LinkKind;

pub struct PacketFilter {
    expr: String,
    programs: FxHashMap<i32, BpfProgram>,
}

impl PacketFilter {
    /// Checks the expression against Ethernet up front, so a typo fails before any reading.
    pub fn new(expr: &str) -> Result<PacketFilter, String> {
        let mut f = PacketFilter {
            expr: expr.to_string(),
            programs: FxHashMap::default(),
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
