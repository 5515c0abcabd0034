//! Link layers: which header precedes the IP packet, and how to step over it.
//!
//! The kind comes from the capture's link-type number. Files carry LINKTYPE_ values; libpcap's
//! live handles report DLT_ values; the two differ only for raw IP (101 vs 12/14), so both
//! spellings are accepted.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// Ethernet II, with any number of 802.1Q / 802.1ad / QinQ tags.
    Ethernet,
    /// Linux "cooked" capture v1 (`tcpdump -i any` before 4.99): 16-byte header.
    LinuxSll,
    /// Linux "cooked" capture v2 (`tcpdump -i any` since 4.99): 20-byte header.
    LinuxSll2,
    /// BSD loopback: a 4-byte address family in the capturing host's byte order (NULL) or in
    /// network order (LOOP).
    Null,
    Loop,
    /// The packet is an IP packet (v4 or v6, told apart by the version nibble).
    RawIp,
    Ipv4,
    Ipv6,
    /// Cisco HDLC: address, control, 2-byte EtherType.
    CiscoHdlc,
    /// IP over InfiniBand (RFC 4391): 40 bytes of addresses, 2-byte EtherType, 2 reserved.
    IpOverIb,
}

/// A link-type number tcpscope cannot decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownLinkType(pub u32);

impl fmt::Display for UnknownLinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unsupported link type {} (supported: Ethernet 1, Linux SLL 113, SLL2 276, NULL 0, LOOP 108, raw IP 12/14/101, IPv4 228, IPv6 229, Cisco HDLC 104, IPoIB 242)",
            self.0
        )
    }
}

impl LinkKind {
    pub fn from_link_type(n: u32) -> Result<LinkKind, UnknownLinkType> {
        Ok(match n {
            0 => LinkKind::Null,
            1 => LinkKind::Ethernet,
            12 | 14 | 101 => LinkKind::RawIp,
            104 => LinkKind::CiscoHdlc,
            108 => LinkKind::Loop,
            113 => LinkKind::LinuxSll,
            228 => LinkKind::Ipv4,
            229 => LinkKind::Ipv6,
            242 => LinkKind::IpOverIb,
            276 => LinkKind::LinuxSll2,
            other => return Err(UnknownLinkType(other)),
        })
    }

    /// The DLT_ number libpcap wants when compiling a filter for this link type.
    pub fn dlt(self) -> i32 {
        match self {
            LinkKind::Null => 0,
            LinkKind::Ethernet => 1,
            LinkKind::RawIp => 12,
            LinkKind::CiscoHdlc => 104,
            LinkKind::Loop => 108,
            LinkKind::LinuxSll => 113,
            LinkKind::Ipv4 => 228,
            LinkKind::Ipv6 => 229,
            LinkKind::IpOverIb => 242,
            LinkKind::LinuxSll2 => 276,
        }
    }
}

/// What the link layer says the packet carries.
pub enum LinkPayload<'a> {
    /// An IP packet (v4 or v6).
    Ip(&'a [u8]),
    /// Something else (ARP, LLDP, …), by EtherType.
    Other,
    /// The frame ends inside the link header.
    Truncated,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_MPLS: u16 = 0x8847;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// Steps over VLAN tags after an EtherType and returns the IP packet, if that is what follows.
fn by_ethertype(mut ethertype: u16, mut rest: &[u8]) -> LinkPayload<'_> {
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        match be16(rest, 2) {
            Some(inner) => {
                ethertype = inner;
                rest = &rest[4..];
            }
            None => return LinkPayload::Truncated,
        }
    }
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => LinkPayload::Ip(rest),
        // PPPoE session: 6-byte PPPoE header, then the 2-byte PPP protocol.
        ETHERTYPE_PPPOE_SESSION => match be16(rest, 6) {
            Some(PPP_IPV4 | PPP_IPV6) => LinkPayload::Ip(&rest[8..]),
            Some(_) => LinkPayload::Other,
            None => LinkPayload::Truncated,
        },
        // MPLS: 4-byte labels until the bottom-of-stack bit; IP is told by its version nibble.
        ETHERTYPE_MPLS => {
            let mut at = 0;
            loop {
                match rest.get(at + 2) {
                    Some(b) if b & 1 == 1 => break,
                    Some(_) => at += 4,
                    None => return LinkPayload::Truncated,
                }
            }
            match rest.get(at + 4).map(|b| b >> 4) {
                Some(4 | 6) => LinkPayload::Ip(&rest[at + 4..]),
                Some(_) => LinkPayload::Other,
                None => LinkPayload::Truncated,
            }
        }
        _ => LinkPayload::Other,
    }
}

/// Splits off the link header of `frame`.
pub fn strip(kind: LinkKind, frame: &[u8]) -> LinkPayload<'_> {
    let fixed = |hdr: usize, proto_at: usize| match be16(frame, proto_at) {
        Some(et) if frame.len() >= hdr => by_ethertype(et, &frame[hdr..]),
        _ => LinkPayload::Truncated,
    };
    match kind {
        LinkKind::Ethernet => fixed(14, 12),
        LinkKind::LinuxSll => fixed(16, 14),
        LinkKind::LinuxSll2 => fixed(20, 0),
        LinkKind::CiscoHdlc => fixed(4, 2),
        LinkKind::IpOverIb => fixed(44, 40),
        // The address family's byte order depends on the machine that wrote the file, and its
        // value for IPv6 differs between BSDs (24, 28, 30) and Linux (10); the IP version nibble
        // says the same thing without either ambiguity.
        LinkKind::Null | LinkKind::Loop => match frame.get(4..) {
            Some(ip) if !ip.is_empty() => match ip[0] >> 4 {
                4 | 6 => LinkPayload::Ip(ip),
                _ => LinkPayload::Other,
            },
            _ => LinkPayload::Truncated,
        },
        LinkKind::RawIp | LinkKind::Ipv4 | LinkKind::Ipv6 => LinkPayload::Ip(frame),
    }
}

impl std::error::Error for UnknownLinkType {}
