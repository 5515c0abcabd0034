//! Bytes to [`Segment`]: the one place where packet bytes become a typed TCP segment.
//!
//! The link layer is stepped over by hand ([`link`]), the IP layer (v4, v6 and its extension
//! headers) is sliced by etherparse, and the TCP header is read by hand so that a header cut by
//! a short snap length still yields its fixed 20 bytes. Everything that is not a decodable TCP
//! segment comes back as a [`Skip`] reason, which the caller counts; nothing here fails a run.

pub mod defrag;
pub mod link;

use std::net::{IpAddr, SocketAddr};

use etherparse::{IpNumber, LaxIpSlice, LenSource};

use crate::tcp::seq::SeqNum;
use crate::time::Timestamp;
pub use link::{LinkKind, UnknownLinkType};

/// TCP header flags, all nine bits (real captures carry SYN+FIN, FIN+RST and worse).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
    pub const URG: u16 = 0x020;
    pub const ECE: u16 = 0x040;
    pub const CWR: u16 = 0x080;
    pub const NS: u16 = 0x100;

    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }

    /// The flags as tcpdump prints them inside `Flags [...]`: `S`, `S.`, `P.`, `F.`, `R.`, `FP.`.
    pub fn tcpdump(self) -> TcpdumpFlags {
        TcpdumpFlags(self)
    }

    /// Compact form used in JSON (`"S."`, `"FP."`), the same letters as tcpdump.
    pub fn to_letters(self) -> String {
        self.tcpdump().to_string()
    }
}

pub struct TcpdumpFlags(TcpFlags);

impl std::fmt::Display for TcpdumpFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fl = self.0;
        // tcpdump's order: F S R P U E W, then "." for ACK; "none" when nothing is set.
        let mut any = false;
        for (bit, c) in [
            (TcpFlags::FIN, 'F'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'W'),
        ] {
            if fl.has(bit) {
                std::fmt::Write::write_char(f, c)?;
                any = true;
            }
        }
        if fl.ack() {
            f.write_str(".")?;
            any = true;
        }
        if !any {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// The TCP options the analysis uses: the window scale. It counts only on SYNs (RFC 7323), so
/// the options of other segments are not read, and the others (MSS, SACK, timestamps) not kept:
/// every segment is handed from the reading thread to the analysis, and bytes no one reads
/// would still travel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    pub window_scale: Option<u8>,
}

/// One TCP segment as seen on the wire: the typed view every later stage works on.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub ts: Timestamp,
    /// 1-based position of the packet in the capture, non-TCP packets included (as tshark's
    /// `frame.number`).
    pub frame: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    pub window: u16,
    /// Payload length from the IP header's length field, not from the captured bytes, so a
    /// headers-only capture still gives exact sequence accounting.
    pub payload_len: u32,
    pub options: TcpOptions,
    /// The capture holds fewer bytes than the packet had (snap length).
    pub truncated: bool,
    /// Length of the IP packet (header and payload) from its length field, as Zeek counts
    /// `ip_bytes`.
    pub ip_len: u32,
}

impl Segment {
    /// A place for a segment to be decoded into: no segment seen on any wire.
    pub const PLACEHOLDER: Segment = Segment {
        ts: Timestamp(0),
        frame: 0,
        src: SocketAddr::V4(std::net::SocketAddrV4::new(
            std::net::Ipv4Addr::UNSPECIFIED,
            0,
        )),
        dst: SocketAddr::V4(std::net::SocketAddrV4::new(
            std::net::Ipv4Addr::UNSPECIFIED,
            0,
        )),
        seq: SeqNum(0),
        ack: SeqNum(0),
        flags: TcpFlags(0),
        window: 0,
        payload_len: 0,
        options: TcpOptions { window_scale: None },
        truncated: false,
        ip_len: 0,
    };

    /// A segment of the unit tests' connection, client 10.0.0.1:40000, server 10.0.0.2:80.
    #[cfg(test)]
    pub(crate) fn test_between(
        from_client: bool,
        flags: u16,
        seq: u32,
        ack: u32,
        payload_len: u32,
        ts: Timestamp,
    ) -> Segment {
        let c: SocketAddr = "10.0.0.1:40000".parse().expect("an address");
        let s: SocketAddr = "10.0.0.2:80".parse().expect("an address");
        let (src, dst) = if from_client { (c, s) } else { (s, c) };
        Segment {
            ts,
            frame: 0,
            src,
            dst,
            seq: SeqNum(seq),
            ack: SeqNum(ack),
            flags: TcpFlags(flags),
            window: 1000,
            payload_len,
            options: TcpOptions::default(),
            truncated: false,
            ip_len: 40 + payload_len,
        }
    }

    /// Sequence space the segment occupies: payload, plus one each for SYN and FIN.
    pub fn seq_len(&self) -> u32 {
        self.payload_len + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }

    /// The sequence number after this segment.
    pub fn seq_end(&self) -> SeqNum {
        self.seq.plus(self.seq_len())
    }
}

/// Why a packet produced no TCP segment. Counted and shown in the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// ARP, LLDP and other non-IP frames.
    NotIp,
    Udp,
    Icmp,
    /// Any other IP protocol (GRE, ESP, SCTP, …).
    OtherIpProtocol,
    /// An IP fragment: tcpscope does not reassemble IP fragments.
    Fragment,
    /// The capture cut the packet before the end of the fixed TCP header (or an earlier header).
    Truncated,
    /// A header that cannot be right (IPv4 IHL < 5, TCP data offset < 5 or beyond the packet).
    Malformed,
}

impl Skip {
    pub const ALL: [Skip; 7] = [
        Skip::NotIp,
        Skip::Udp,
        Skip::Icmp,
        Skip::OtherIpProtocol,
        Skip::Fragment,
        Skip::Truncated,
        Skip::Malformed,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// Stable name used in JSON and in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Skip::NotIp => "not_ip",
            Skip::Udp => "udp",
            Skip::Icmp => "icmp",
            Skip::OtherIpProtocol => "other_ip_protocol",
            Skip::Fragment => "ip_fragment",
            Skip::Truncated => "truncated",
            Skip::Malformed => "malformed",
        }
    }
}

/// Decodes one captured frame, without IP reassembly (fragments are `Skip::Fragment`).
pub fn decode(kind: LinkKind, frame: &[u8], ts: Timestamp, frame_no: u64) -> Result<Segment, Skip> {
    match link::strip(kind, frame) {
        link::LinkPayload::Ip(ip) => decode_ip(ip, ts, frame_no, 0, None),
        link::LinkPayload::Other => Err(Skip::NotIp),
        link::LinkPayload::Truncated => Err(Skip::Truncated),
    }
}

/// A decoder that also reassembles fragmented IPv4 datagrams, as Wireshark does, so a TCP
/// segment split by IP is analysed once, at the frame that completes it.
#[derive(Default)]
pub struct Decoder {
    defrag: defrag::Defrag,
}

impl Decoder {
    #[inline]
    pub fn decode(
        &mut self,
        kind: LinkKind,
        frame: &[u8],
        ts: Timestamp,
        frame_no: u64,
    ) -> Result<Segment, Skip> {
        let mut seg = Segment::PLACEHOLDER;
        self.decode_into(kind, frame, ts, frame_no, &mut seg)?;
        Ok(seg)
    }

    /// [`Decoder::decode`], writing the segment into `out`, the place it is kept in (left as
    /// it was on an error). Built elsewhere and copied there, the segment's small fields,
    /// just written one by one, were read back eight bytes at a time, and the read waited
    /// for them (a failed store-to-load forward: half of the reading thread's time in
    /// `Ingest::packet`).
    #[inline]
    pub fn decode_into(
        &mut self,
        kind: LinkKind,
        frame: &[u8],
        ts: Timestamp,
        frame_no: u64,
        out: &mut Segment,
    ) -> Result<(), Skip> {
        match link::strip(kind, frame) {
            // The common case inlined here (decode_ip tries it first too, for the free
            // function and for tunnels).
            link::LinkPayload::Ip(ip) => match plain_ip(ip) {
                Some(h) => plain_segment_into(ip, h, ts, frame_no, out),
                None => {
                    *out = decode_ip(ip, ts, frame_no, 0, Some(&mut self.defrag))?;
                    Ok(())
                }
            },
            link::LinkPayload::Other => Err(Skip::NotIp),
            link::LinkPayload::Truncated => Err(Skip::Truncated),
        }
    }
}

/// UDP port of L2TP (RFC 2661), whose tunnels carry PPP and, in it, IP.
const L2TP_PORT: u16 = 1701;

/// Decodes an IP packet down to its TCP segment. `depth` counts tunnels (L2TP) entered.
fn decode_ip(
    ip: &[u8],
    ts: Timestamp,
    frame_no: u64,
    depth: u8,
    defrag: Option<&mut defrag::Defrag>,
) -> Result<Segment, Skip> {
    if let Some(h) = plain_ip(ip) {
        return plain_segment(ip, h, ts, frame_no);
    }
    let (slice, _ext_err) = LaxIpSlice::from_slice(ip).map_err(|e| match e {
        etherparse::err::ip::LaxHeaderSliceError::Len(_) => Skip::Truncated,
        etherparse::err::ip::LaxHeaderSliceError::Content(_) => Skip::Malformed,
    })?;
    let payload = slice.payload();
    if payload.fragmented {
        if let (Some(pool), LaxIpSlice::Ipv4(v4)) = (defrag, &slice)
            && !payload.incomplete
        {
            let h = v4.header();
            let whole = pool.add(
                defrag::Fragment {
                    header: h.slice(),
                    id: h.identification(),
                    offset: u32::from(h.fragments_offset().value()) * 8,
                    more: h.more_fragments(),
                    data: payload.payload,
                },
                ts,
            );
            if let Some(datagram) = whole {
                return decode_ip(datagram, ts, frame_no, depth, None);
            }
        }
        return Err(Skip::Fragment);
    }
    match payload.ip_number {
        IpNumber::TCP => {}
        IpNumber::UDP => {
            return match l2tp_inner_ip(payload.payload) {
                Some(inner) if depth < 2 => decode_ip(inner, ts, frame_no, depth + 1, None),
                _ => Err(Skip::Udp),
            };
        }
        IpNumber::ICMP | IpNumber::IPV6_ICMP => return Err(Skip::Icmp),
        _ => return Err(Skip::OtherIpProtocol),
    }
    let tcp = payload.payload;
    // Bytes of IP header (and extension headers) in front of the TCP header.
    let ip_header_len = tcp.as_ptr() as usize - ip.as_ptr() as usize;
    let declared_ip_len = match (&slice, payload.len_source) {
        (LaxIpSlice::Ipv4(v4), LenSource::Ipv4HeaderTotalLen) => {
            Some(usize::from(v4.header().total_len()))
        }
        (LaxIpSlice::Ipv6(v6), LenSource::Ipv6HeaderPayloadLen) => {
            Some(40 + usize::from(v6.header().payload_length()))
        }
        // etherparse fell back to the captured length: either the length field is larger than
        // what was captured (snap length) or it is unusable (0 on TSO captures). Read the field
        // ourselves to tell the two apart.
        (LaxIpSlice::Ipv4(v4), _) => {
            let total = usize::from(v4.header().total_len());
            (payload.incomplete && total > ip_header_len).then_some(total)
        }
        (LaxIpSlice::Ipv6(v6), _) => {
            let plen = usize::from(v6.header().payload_length());
            (payload.incomplete && plen > 0).then_some(40 + plen)
        }
    };
    let tcp_len = match declared_ip_len {
        Some(n) => n.checked_sub(ip_header_len).ok_or(Skip::Malformed)?,
        None => tcp.len(),
    };
    let (src_ip, dst_ip): (IpAddr, IpAddr) = (slice.source_addr(), slice.destination_addr());
    let ip_len = (ip_header_len + tcp_len) as u32;
    let mut seg = Segment::PLACEHOLDER;
    parse_tcp_into(tcp, tcp_len, src_ip, dst_ip, ts, frame_no, ip_len, &mut seg)?;
    Ok(seg)
}

/// Where the TCP header starts and how long the IP packet says it is, for the common case read
/// directly: IPv4 without options and unfragmented, or IPv6 with TCP as its first next header.
#[derive(Clone, Copy)]
struct PlainIp {
    header_len: usize,
    declared: usize,
}

/// The common case's IP header (see [`PlainIp`]). Anything else (options, extension headers,
/// fragments, lengths that do not add up) returns None and goes through etherparse.
#[inline(always)]
fn plain_ip(ip: &[u8]) -> Option<PlainIp> {
    let first = *ip.first()?;
    if first == 0x45 {
        if ip.len() < 20 || ip[9] != 6 || (ip[6] & 0x3f) != 0 || ip[7] != 0 {
            return None;
        }
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        (total >= 40).then_some(PlainIp {
            header_len: 20,
            declared: total,
        })
    } else if first >> 4 == 6 {
        if ip.len() < 40 || ip[6] != 6 {
            return None;
        }
        let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        (plen >= 20).then_some(PlainIp {
            header_len: 40,
            declared: 40 + plen,
        })
    } else {
        None
    }
}

/// The segment of an IP packet that [`plain_ip`] accepted. Kept apart from it so that the
/// caller matches one small Option and then builds the segment where it wants it, instead of
/// copying it out of nested results.
#[inline(always)]
fn plain_segment(ip: &[u8], h: PlainIp, ts: Timestamp, frame_no: u64) -> Result<Segment, Skip> {
    let mut seg = Segment::PLACEHOLDER;
    plain_segment_into(ip, h, ts, frame_no, &mut seg)?;
    Ok(seg)
}

/// [`plain_segment`], writing the segment into `out` (left as it was on an error).
#[inline(always)]
fn plain_segment_into(
    ip: &[u8],
    h: PlainIp,
    ts: Timestamp,
    frame_no: u64,
    out: &mut Segment,
) -> Result<(), Skip> {
    let tcp = &ip[h.header_len..h.declared.min(ip.len())];
    let tcp_len = h.declared - h.header_len;
    let ip_len = h.declared as u32;
    // Each branch has its own copy of parse_tcp_into, which then builds its addresses knowing
    // their family.
    if h.header_len == 20 {
        let a = |i: usize| IpAddr::from([ip[i], ip[i + 1], ip[i + 2], ip[i + 3]]);
        parse_tcp_into(tcp, tcp_len, a(12), a(16), ts, frame_no, ip_len, out)
    } else {
        let a = |i: usize| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&ip[i..i + 16]);
            IpAddr::from(b)
        };
        parse_tcp_into(tcp, tcp_len, a(8), a(24), ts, frame_no, ip_len, out)
    }
}

/// The IP packet inside an L2TPv2 data message carried by this UDP datagram, if it is one.
fn l2tp_inner_ip(udp: &[u8]) -> Option<&[u8]> {
    let port = |i: usize| u16::from_be_bytes([*udp.get(i)?, *udp.get(i + 1)?]).into();
    let (sport, dport): (Option<u16>, Option<u16>) = (port(0), port(2));
    if sport != Some(L2TP_PORT) && dport != Some(L2TP_PORT) {
        return None;
    }
    let l2tp = udp.get(8..)?;
    let flags = u16::from_be_bytes([*l2tp.first()?, *l2tp.get(1)?]);
    // T bit: control message (no user data); version must be 2.
    if flags & 0x8000 != 0 || flags & 0x000f != 2 {
        return None;
    }
    let mut at = 2;
    if flags & 0x4000 != 0 {
        at += 2; // length
    }
    at += 4; // tunnel and session ids
    if flags & 0x0800 != 0 {
        at += 4; // Ns, Nr
    }
    if flags & 0x0200 != 0 {
        let off = usize::from(u16::from_be_bytes([*l2tp.get(at)?, *l2tp.get(at + 1)?]));
        at += 2 + off;
    }
    let mut ppp = l2tp.get(at..)?;
    // PPP in HDLC-like framing may start with address 0xff, control 0x03.
    if ppp.starts_with(&[0xff, 0x03]) {
        ppp = &ppp[2..];
    }
    let proto = u16::from_be_bytes([*ppp.first()?, *ppp.get(1)?]);
    match proto {
        0x0021 | 0x0057 => ppp.get(2..),
        _ => None,
    }
}

/// Reads the TCP header from `tcp` (the captured bytes) given the segment's real length and
/// that of its IP packet, and writes the segment into `out` (left as it was on an error).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn parse_tcp_into(
    tcp: &[u8],
    tcp_len: usize,
    src_ip: IpAddr,
    dst_ip: IpAddr,
    ts: Timestamp,
    frame: u64,
    ip_len: u32,
    out: &mut Segment,
) -> Result<(), Skip> {
    if tcp.len() < 20 {
        return Err(if tcp_len < 20 {
            Skip::Malformed
        } else {
            Skip::Truncated
        });
    }
    let u16_at = |i: usize| u16::from_be_bytes([tcp[i], tcp[i + 1]]);
    let u32_at = |i: usize| u32::from_be_bytes([tcp[i], tcp[i + 1], tcp[i + 2], tcp[i + 3]]);
    let data_offset = usize::from(tcp[12] >> 4) * 4;
    if data_offset < 20 || data_offset > tcp_len {
        return Err(Skip::Malformed);
    }
    let captured_header = &tcp[20..data_offset.min(tcp.len())];
    let flags = TcpFlags((u16::from(tcp[12] & 1) << 8) | u16::from(tcp[13]));
    *out = Segment {
        ts,
        frame,
        src: SocketAddr::new(src_ip, u16_at(0)),
        dst: SocketAddr::new(dst_ip, u16_at(2)),
        seq: SeqNum(u32_at(4)),
        ack: SeqNum(u32_at(8)),
        flags,
        window: u16_at(14),
        payload_len: (tcp_len - data_offset) as u32,
        options: if flags.syn() {
            parse_options(captured_header)
        } else {
            TcpOptions::default()
        },
        truncated: tcp.len() < tcp_len,
        ip_len,
    };
    Ok(())
}

/// Walks the option bytes that were captured; a cut or malformed option ends the walk.
fn parse_options(mut b: &[u8]) -> TcpOptions {
    let mut o = TcpOptions::default();
    while let Some(&kind) = b.first() {
        match kind {
            0 => break,
            1 => {
                b = &b[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = b.get(1) else { break };
        let len = usize::from(len);
        if len < 2 || len > b.len() {
            break;
        }
        if kind == 3 && len == 3 {
            o.window_scale = Some(b[2]);
        }
        b = &b[len..];
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 + TCP, built by hand: 10.0.0.1:40000 > 10.0.0.2:80, SYN, with MSS and
    /// window-scale options, IPv4 total length covering `extra` payload bytes of which only
    /// `captured_payload` are present.
    fn ipv4_frame(extra: u16, captured_payload: usize, flags: u8) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let tcp_hdr_len = 28u16;
        let total = 20 + tcp_hdr_len + extra;
        f.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ]);
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&40000u16.to_be_bytes());
        f.extend_from_slice(&80u16.to_be_bytes());
        f.extend_from_slice(&1000u32.to_be_bytes());
        f.extend_from_slice(&0u32.to_be_bytes());
        f.extend_from_slice(&[(7 << 4), flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(&[2, 4, 0x05, 0xb4, 1, 3, 3, 7]);
        f.extend(std::iter::repeat_n(0xaa, captured_payload));
        f
    }

    /// The same packet with one IPv4 option (a NOP word), which the common case leaves to
    /// etherparse.
    fn with_ip_option(frame: &[u8]) -> Vec<u8> {
        let mut f = frame[..14 + 20].to_vec();
        f[14] = 0x46;
        let total = u16::from_be_bytes([f[16], f[17]]) + 4;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[1, 1, 1, 0]);
        f.extend_from_slice(&frame[14 + 20..]);
        f
    }

    /// The common case, read directly, gives what etherparse's path gives for the same
    /// segment: whole, cut by the snap length, a SYN (with its options), and padded
    /// (Ethernet's minimum frame).
    #[test]
    fn the_direct_path_and_etherparse_agree() {
        let ts = Timestamp(5);
        let mut padded = ipv4_frame(0, 0, 0x10);
        padded.extend_from_slice(&[0; 6]);
        for (frame, what) in [
            (ipv4_frame(100, 100, 0x18), "whole"),
            (ipv4_frame(1400, 10, 0x18), "cut"),
            (ipv4_frame(0, 0, 0x02), "a SYN"),
            (padded, "padded"),
        ] {
            let direct = decode(LinkKind::Ethernet, &frame, ts, 7).expect("decodes");
            assert!(plain_ip(&frame[14..]).is_some(), "{what}: the direct path");
            let optioned = with_ip_option(&frame);
            assert!(
                plain_ip(&optioned[14..]).is_none(),
                "{what}: etherparse's path"
            );
            let general = decode(LinkKind::Ethernet, &optioned, ts, 7).expect("decodes");
            assert_eq!(direct.ip_len + 4, general.ip_len, "{what}");
            let same = |s: &Segment| {
                let o = s.options;
                let f = (
                    s.ts, s.frame, s.src, s.dst, s.seq, s.ack, s.flags.0, s.window,
                );
                (f, s.payload_len, o.window_scale, s.truncated)
            };
            assert_eq!(same(&direct), same(&general), "{what}");
        }
    }

    /// The window scale is found among other options (MSS, SACK permitted, timestamps,
    /// NOPs) in any order, and a cut or malformed option ends the walk.
    #[test]
    fn the_window_scale_is_found_among_other_options() {
        let (mss, nop, wscale, sack_ok) = ([2, 4, 5, 0xb4], [1], [3, 3, 7], [4, 2]);
        let ts = [8, 10, 0, 0, 0, 7, 0, 0, 1, 0];
        let linux = [&mss[..], &sack_ok, &ts, &nop, &wscale].concat();
        assert_eq!(parse_options(&linux).window_scale, Some(7));
        let first = [&wscale[..], &nop, &mss, &ts].concat();
        assert_eq!(parse_options(&first).window_scale, Some(7));
        assert_eq!(
            parse_options(&[&mss[..], &sack_ok].concat()).window_scale,
            None
        );
        // Cut after the MSS (snap length), or an option claiming more bytes than are left.
        assert_eq!(
            parse_options(&[&mss[..], &wscale[..2]].concat()).window_scale,
            None
        );
        assert_eq!(
            parse_options(&[&[2, 40][..], &wscale].concat()).window_scale,
            None
        );
        // An end-of-list option ends the walk.
        assert_eq!(
            parse_options(&[&[0][..], &wscale].concat()).window_scale,
            None
        );
    }

    #[test]
    fn payload_length_comes_from_the_ip_header_when_the_capture_is_cut() {
        let frame = ipv4_frame(1000, 10, 0x18);
        let s = decode(LinkKind::Ethernet, &frame, Timestamp(0), 1).unwrap();
        assert_eq!(s.payload_len, 1000);
        assert!(s.truncated);
        assert_eq!(s.flags.tcpdump().to_string(), "P.");
        // The same options as the SYN's, not read: the window scale counts only on SYNs.
        assert_eq!(s.options.window_scale, None);
        assert_eq!(s.src.to_string(), "10.0.0.1:40000");
    }

    #[test]
    fn syn_occupies_one_sequence_number() {
        let frame = ipv4_frame(0, 0, 0x02);
        let s = decode(LinkKind::Ethernet, &frame, Timestamp(0), 1).unwrap();
        assert_eq!(s.seq_len(), 1);
        assert_eq!(s.seq_end(), SeqNum(1001));
        assert_eq!(s.flags.tcpdump().to_string(), "S");
        assert_eq!(s.options.window_scale, Some(7));
    }

    #[test]
    fn cut_inside_the_tcp_header_is_truncated_not_an_error() {
        let frame = ipv4_frame(0, 0, 0x02);
        assert_eq!(
            decode(LinkKind::Ethernet, &frame[..40], Timestamp(0), 1).unwrap_err(),
            Skip::Truncated
        );
    }

    #[test]
    fn data_offset_below_five_is_malformed() {
        let mut frame = ipv4_frame(0, 0, 0x02);
        frame[14 + 20 + 12] = 4 << 4;
        assert_eq!(
            decode(LinkKind::Ethernet, &frame, Timestamp(0), 1).unwrap_err(),
            Skip::Malformed
        );
    }

    #[test]
    fn flags_print_like_tcpdump() {
        let f = |b| TcpFlags(b).tcpdump().to_string();
        assert_eq!(f(0x012), "S.");
        assert_eq!(f(0x011), "F.");
        assert_eq!(f(0x019), "FP.");
        assert_eq!(f(0x004), "R");
        assert_eq!(f(0x014), "R.");
        assert_eq!(f(0x010), ".");
        assert_eq!(f(0x000), "none");
    }
}
