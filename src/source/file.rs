//! Capture files: classic pcap (either byte order, µs or ns), pcapng (any number of sections and
//! interfaces, each with its own link type and time resolution), either of them gzip-compressed,
//! from a path or from stdin (`-`).
//!
//! Classic pcap is read by hand (a 24-byte header, then 16-byte record headers): it is the
//! common case, and the hand loop is the fastest reader measured. pcapng goes through
//! pcap-parser, except its enhanced packet blocks when they are well formed, which are read by
//! hand too (`QuickEpb`). libpcap is not used for files because it refuses pcapng files whose
//! interfaces have different link types.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError, PcapNGReader};

use crate::decode::LinkKind;
use crate::source::{Flow, RawPacket, SourceError};
use crate::time::Timestamp;

/// The read buffer. Half the 1 MiB L2 cache of the benchmark's AMD EPYC: the reading thread
/// shares its core with the output thread, and every byte of the file passes through this
/// buffer. With 1 MiB, JSON on the 4.4 M-packet benchmark was about 10 ms slower (fastest
/// five of 40 alternating runs: 381–416 ms against 374–393 ms); the table and the full-size
/// capture measured the same either way.
const BUF_SIZE: usize = 1 << 19;
/// pcap-parser's buffer for a pcapng file, to begin with: larger than the reader's own
/// buffer, so that refilling it reads from the file straight into it, not through a copy. A
/// longer block makes it grow (see [`MAX_NG_BLOCK`]).
const NG_BUF_SIZE: usize = 2 * BUF_SIZE;
/// The longest pcapng block read, as libpcap's limit: the buffer grows to hold a block up to
/// this long (a name resolution or decryption secrets block can be long), and a longer one
/// is taken for corruption, not given the memory its length field asks for.
const MAX_NG_BLOCK: usize = 16 << 20;
/// Largest record accepted, whatever the header's snap length says (libpcap's limit).
const MAX_RECORD: u32 = 262_144;

enum Format {
    Pcap(PcapHeader),
    PcapNg(Box<PcapNGReader<Box<dyn BufRead + Send>>>, NgState),
}

#[derive(Clone, Copy)]
struct PcapHeader {
    big_endian: bool,
    nanos: bool,
    snaplen: u32,
    link: LinkKind,
}

struct NgState {
    /// Interfaces of the current section: link type (or the unsupported number) and clock.
    interfaces: Vec<NgInterface>,
    /// The current section's byte order.
    big_endian: bool,
    /// pcap-parser's buffer's size now.
    buffer: usize,
}

impl Default for NgState {
    fn default() -> Self {
        NgState {
            interfaces: Vec::new(),
            big_endian: false,
            buffer: NG_BUF_SIZE,
        }
    }
}

/// An enhanced packet block read without pcap-parser: its general parser (nom, and a list
/// of options made for every block) took two thirds of the reading thread's time on a
/// headers-only pcapng capture. Only a block that pcap-parser would read the same way is
/// read so; any other goes to it.
struct QuickEpb {
    /// The whole block's length.
    len: usize,
    if_id: usize,
    /// The timestamp, in the interface's units.
    units: u64,
    caplen: usize,
    wire_len: u32,
}

impl QuickEpb {
    const TYPE: u32 = 6;
    /// Where the packet's data starts: type, length, interface, time (2), captured and
    /// original lengths.
    const DATA: usize = 28;

    /// The enhanced packet block at the start of `buf`, if one is there whole and well formed
    /// (the data fits the block, and the block's two lengths agree).
    #[inline]
    fn parse(buf: &[u8], big_endian: bool) -> Option<QuickEpb> {
        let u32_at = |i: usize| -> Option<u32> {
            let b: [u8; 4] = buf.get(i..i + 4)?.try_into().ok()?;
            Some(if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        if u32_at(0)? != Self::TYPE {
            return None;
        }
        let len = u32_at(4)? as usize;
        let caplen = u32_at(20)? as usize;
        // The data is padded to 32 bits; options may follow it, then the length again.
        let padded = caplen.checked_add(3)? & !3;
        if len < 32 || len > buf.len() || Self::DATA + padded + 4 > len {
            return None;
        }
        if u32_at(len - 4)? as usize != len {
            return None;
        }
        Some(QuickEpb {
            len,
            if_id: u32_at(8)? as usize,
            units: (u64::from(u32_at(12)?) << 32) | u64::from(u32_at(16)?),
            caplen,
            wire_len: u32_at(24)?,
        })
    }
}

/// Hands a pcapng packet, (interface, time in its units, data, length on the wire), to `f`,
/// with the link type and clock of its interface; counts it in `packets`.
fn deliver(
    interfaces: &[NgInterface],
    path: &str,
    packets: &mut u64,
    (if_id, units, data, wire_len): (usize, u64, &[u8], u32),
    f: &mut dyn FnMut(RawPacket) -> Flow,
) -> Result<Flow, SourceError> {
    let Some(iface) = interfaces.get(if_id) else {
        return Err(SourceError::Corrupt {
            path: path.to_string(),
            what: format!(
                "packet {} names interface {if_id}, which the file never described",
                *packets + 1
            ),
        });
    };
    let link = iface.link.map_err(|n| SourceError::LinkType {
        path: path.to_string(),
        source: crate::decode::UnknownLinkType(n),
    })?;
    *packets += 1;
    Ok(f(RawPacket {
        ts: iface.timestamp(units),
        wire_len,
        data,
        link,
    }))
}

#[derive(Clone, Copy)]
struct NgInterface {
    link: Result<LinkKind, u32>,
    /// Time units per second (if_tsresol) and offset in seconds (if_tsoffset).
    units_per_sec: u64,
    /// The interface's snap length (0: none).
    snaplen: u32,
    /// Nanoseconds a unit, when a unit is a whole number of them (microseconds and
    /// nanoseconds, nearly every file): no 128-bit division per packet then.
    nanos_per_unit: Option<u64>,
    offset_secs: i64,
}

impl NgInterface {
    /// The time of a packet stamped `units` on this interface's clock.
    fn timestamp(&self, units: u64) -> Timestamp {
        const NANOS: u128 = 1_000_000_000;
        let ns = match self.nanos_per_unit {
            Some(k) => u128::from(units) * u128::from(k),
            None => u128::from(units) * NANOS / u128::from(self.units_per_sec),
        };
        // A timestamp past the year 2554 (only garbage ones are) wraps around 2^64 ns: the
        // gaps between packets, which the analysis uses, stay right. (The cast keeps the low
        // 64 bits: the value modulo 2^64.)
        Timestamp((ns as i128 + i128::from(self.offset_secs) * NANOS as i128) as u64)
    }
}

/// An open capture file.
pub struct CaptureFile {
    path: String,
    reader: Option<Box<dyn BufRead + Send>>,
    format: Format,
    packets: u64,
    nanosecond: bool,
    /// Gzip-compressed: reading costs the decompression too.
    compressed: bool,
}

/// The file's reader, and whether it is gzip-compressed (then read through a decompressor).
fn open_reader(path: &str) -> Result<(Box<dyn BufRead + Send>, bool), SourceError> {
    let raw: Box<dyn Read + Send> = if path == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(|source| SourceError::Open {
            path: path.to_string(),
            source,
        })?)
    };
    let mut r: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(BUF_SIZE, raw));
    let head = r.fill_buf().map_err(|source| SourceError::Open {
        path: path.to_string(),
        source,
    })?;
    let compressed = head.starts_with(&[0x1f, 0x8b]);
    if compressed {
        r = Box::new(BufReader::with_capacity(
            BUF_SIZE,
            flate2::bufread::MultiGzDecoder::new(r),
        ));
    }
    Ok((r, compressed))
}

impl CaptureFile {
    /// Opens `path` (`-` for stdin) and reads the file header.
    pub fn open(path: &str) -> Result<CaptureFile, SourceError> {
        let (mut reader, compressed) = open_reader(path)?;
        let corrupt = |what: String| SourceError::Corrupt {
            path: path.to_string(),
            what,
        };
        let mut magic = [0u8; 4];
        let head = reader.fill_buf().map_err(|e| corrupt(e.to_string()))?;
        if head.is_empty() {
            return Err(corrupt("empty file".into()));
        }
        if head.len() < 4 {
            return Err(SourceError::NotACapture { path: path.into() });
        }
        magic.copy_from_slice(&head[..4]);
        let format = match magic {
            [0xa1, 0xb2, 0xc3, 0xd4]
            | [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x4d, 0x3c, 0xb2, 0xa1] => {
                let mut hdr = [0u8; 24];
                reader.read_exact(&mut hdr).map_err(|_| {
                    corrupt("truncated: the file ends inside the 24-byte pcap header".into())
                })?;
                Format::Pcap(parse_pcap_header(path, &hdr)?)
            }
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                let ng = PcapNGReader::new(NG_BUF_SIZE, reader)
                    .map_err(|e| corrupt(format!("invalid pcapng section header: {e:?}")))?;
                return CaptureFile::from_pcapng(path, ng, compressed);
            }
            [0xa1, 0xb2, 0xcd, 0x34] | [0x34, 0xcd, 0xb2, 0xa1] => {
                return Err(SourceError::Unsupported {
                    path: path.into(),
                    what: "Kuznetzov's modified pcap".into(),
                });
            }
            [b's', b'n', b'o', b'o'] => {
                return Err(SourceError::Unsupported {
                    path: path.into(),
                    what: "Solaris snoop (convert it with: editcap -F pcap IN OUT)".into(),
                });
            }
            _ => return Err(SourceError::NotACapture { path: path.into() }),
        };
        let nanosecond = matches!(format, Format::Pcap(h) if h.nanos);
        Ok(CaptureFile {
            path: path.to_string(),
            reader: Some(reader),
            format,
            packets: 0,
            nanosecond,
            compressed,
        })
    }

    fn from_pcapng(
        path: &str,
        ng: PcapNGReader<Box<dyn BufRead + Send>>,
        compressed: bool,
    ) -> Result<CaptureFile, SourceError> {
        let mut file = CaptureFile {
            path: path.to_string(),
            reader: None,
            format: Format::PcapNg(Box::new(ng), NgState::default()),
            packets: 0,
            nanosecond: false,
            compressed,
        };
        // Read up to the first packet so the time resolution is known before any output.
        file.read_pcapng(&mut |_| Flow::Stop, true)?;
        Ok(file)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Is the file gzip-compressed (reading it costs the decompression)?
    pub fn compressed(&self) -> bool {
        self.compressed
    }

    /// Is reading this file cheap next to analysing it? An uncompressed capture whose snap
    /// length keeps only the headers (at most 256 bytes a packet, as `tcpdump -s 96`): then
    /// a packet costs its reader a few tens of nanoseconds, and its analysis more. In pcapng,
    /// every interface described before the first packet must have such a snap length.
    pub fn headers_only(&self) -> bool {
        const HEADERS: u32 = 256;
        !self.compressed
            && match &self.format {
                Format::Pcap(h) => h.snaplen <= HEADERS,
                Format::PcapNg(_, state) => {
                    !state.interfaces.is_empty()
                        && state
                            .interfaces
                            .iter()
                            .all(|i| (1..=HEADERS).contains(&i.snaplen))
                }
            }
    }

    /// Does the file carry nanosecond timestamps (so they are printed with 9 digits)?
    pub fn nanosecond(&self) -> bool {
        self.nanosecond
    }

    /// Hands every packet to `f` until the end of the file or until `f` says stop. Returns the
    /// number of packets read from this file.
    pub fn read_all(&mut self, f: &mut dyn FnMut(RawPacket) -> Flow) -> Result<u64, SourceError> {
        match self.format {
            Format::Pcap(h) => self.read_pcap(h, f)?,
            Format::PcapNg(..) => self.read_pcapng(f, false)?,
        }
        Ok(self.packets)
    }

    fn read_pcap(
        &mut self,
        h: PcapHeader,
        f: &mut dyn FnMut(RawPacket) -> Flow,
    ) -> Result<(), SourceError> {
        let reader = self.reader.as_mut().expect("pcap has a reader");
        // A record that straddles the end of the read buffer is copied here; the others are
        // handed over in place, straight from the buffer.
        let mut straddling = Vec::new();
        loop {
            let buf = match reader.fill_buf() {
                Ok(b) => b,
                Err(e) => return Err(self.io_error(e)),
            };
            if buf.is_empty() {
                return Ok(());
            }
            // Every record wholly in the buffer, one after the other, without going back to
            // the reader in between (it is behind a `dyn`, and this loop runs per packet).
            let mut used = 0;
            let mut stop = false;
            while let Some(rec) = buf.get(used..used + 16) {
                let (ts, caplen, wire_len) = h.record(rec);
                if caplen > MAX_RECORD.max(h.snaplen) {
                    break; // reported below, after what came before it
                }
                let Some(data) = buf.get(used + 16..used + 16 + caplen as usize) else {
                    break;
                };
                self.packets += 1;
                used += 16 + caplen as usize;
                let packet = RawPacket {
                    ts,
                    wire_len,
                    data,
                    link: h.link,
                };
                if f(packet) == Flow::Stop {
                    stop = true;
                    break;
                }
            }
            reader.consume(used);
            if stop {
                return Ok(());
            }
            if used > 0 {
                continue;
            }
            // The next record is not wholly in the buffer (or its length is bad): it is read
            // through a copy, and a bad length is reported here.
            let mut rec = [0u8; 16];
            match read_full(reader, &mut rec) {
                Ok(16) => {}
                Ok(_) => {
                    return Err(SourceError::Truncated {
                        path: self.path.clone(),
                        packets: self.packets,
                    });
                }
                Err(e) => return Err(self.io_error(e)),
            }
            let (ts, caplen, wire_len) = h.record(&rec);
            if caplen > MAX_RECORD.max(h.snaplen) {
                return Err(SourceError::Corrupt {
                    path: self.path.clone(),
                    what: format!(
                        "corrupt packet record {}: captured length {caplen} is larger than the snap length {} (after {} good packets)",
                        self.packets + 1,
                        h.snaplen,
                        self.packets
                    ),
                });
            }
            straddling.resize(caplen as usize, 0);
            match read_full(reader, &mut straddling) {
                Ok(n) if n == caplen as usize => {}
                Ok(_) => {
                    return Err(SourceError::Truncated {
                        path: self.path.clone(),
                        packets: self.packets,
                    });
                }
                Err(e) => return Err(self.io_error(e)),
            }
            self.packets += 1;
            let packet = RawPacket {
                ts,
                wire_len,
                data: &straddling,
                link: h.link,
            };
            if f(packet) == Flow::Stop {
                return Ok(());
            }
        }
    }

    fn read_pcapng(
        &mut self,
        f: &mut dyn FnMut(RawPacket) -> Flow,
        until_first_packet: bool,
    ) -> Result<(), SourceError> {
        let path = self.path.clone();
        let Format::PcapNg(reader, state) = &mut self.format else {
            unreachable!("read_pcapng on a pcap file")
        };
        let corrupt = |what: String| SourceError::Corrupt {
            path: path.clone(),
            what,
        };
        loop {
            // Nearly every block is an enhanced packet block: a well-formed one is read here,
            // and pcap-parser, which reads any block (and makes the errors of a bad one),
            // takes the rest.
            if !until_first_packet
                && let Some(epb) = QuickEpb::parse(reader.data(), state.big_endian)
            {
                let data = &reader.data()[QuickEpb::DATA..][..epb.caplen];
                let packet = (epb.if_id, epb.units, data, epb.wire_len);
                let flow = deliver(&state.interfaces, &path, &mut self.packets, packet, f)?;
                reader.consume_noshift(epb.len);
                if flow == Flow::Stop {
                    return Ok(());
                }
                continue;
            }
            let (offset, block) = match reader.next() {
                Ok(x) => x,
                Err(PcapError::Eof) => return Ok(()),
                Err(PcapError::Incomplete(_)) => {
                    reader
                        .refill()
                        .map_err(|e| corrupt(format!("read error: {e:?}")))?;
                    continue;
                }
                Err(PcapError::UnexpectedEof) => {
                    return Err(SourceError::Truncated {
                        path,
                        packets: self.packets,
                    });
                }
                Err(PcapError::BufferTooSmall) if state.buffer < MAX_NG_BLOCK => {
                    state.buffer *= 2;
                    reader.grow(state.buffer);
                    continue;
                }
                Err(PcapError::BufferTooSmall) => {
                    return Err(corrupt(format!(
                        "corrupt pcapng block after {} packets: longer than {MAX_NG_BLOCK} bytes",
                        self.packets
                    )));
                }
                Err(_) => {
                    return Err(corrupt(format!(
                        "corrupt pcapng block after {} packets: its structure is invalid",
                        self.packets
                    )));
                }
            };
            let PcapBlockOwned::NG(block) = block else {
                reader.consume_noshift(offset);
                continue;
            };
            // (interface, ts units, data, wire length) of a packet block.
            let packet = match &block {
                Block::SectionHeader(shb) => {
                    state.interfaces.clear();
                    state.big_endian = shb.big_endian();
                    None
                }
                Block::InterfaceDescription(idb) => {
                    let units = idb.ts_resolution().unwrap_or(1_000_000).max(1);
                    if units > 1_000_000 {
                        self.nanosecond = true;
                    }
                    state.interfaces.push(NgInterface {
                        link: LinkKind::from_link_type(idb.linktype.0 as u32)
                            .map_err(|_| idb.linktype.0 as u32),
                        units_per_sec: units,
                        snaplen: idb.snaplen,
                        nanos_per_unit: (1_000_000_000 % units == 0).then(|| 1_000_000_000 / units),
                        offset_secs: idb.if_tsoffset,
                    });
                    None
                }
                // The blocks' data is padded to 32 bits: cut it to the captured length.
                Block::EnhancedPacket(epb) => Some((
                    epb.if_id as usize,
                    (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low),
                    &epb.data[..(epb.caplen as usize).min(epb.data.len())],
                    epb.origlen,
                )),
                Block::SimplePacket(spb) => Some((
                    0,
                    0,
                    &spb.data[..(spb.origlen as usize).min(spb.data.len())],
                    spb.origlen,
                )),
                _ => None,
            };
            if let Some(packet) = packet {
                if until_first_packet {
                    return Ok(());
                }
                let flow = deliver(&state.interfaces, &path, &mut self.packets, packet, f)?;
                reader.consume_noshift(offset);
                if flow == Flow::Stop {
                    return Ok(());
                }
                continue;
            }
            reader.consume_noshift(offset);
        }
    }

    fn io_error(&self, e: io::Error) -> SourceError {
        SourceError::Corrupt {
            path: self.path.clone(),
            what: format!("read error after {} packets: {e}", self.packets),
        }
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(r: &mut dyn BufRead, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl PcapHeader {
    /// A packet record's header (16 bytes): time, captured length, length on the wire.
    fn record(&self, rec: &[u8]) -> (Timestamp, u32, u32) {
        let u32_at = |i: usize| {
            let v = [rec[i], rec[i + 1], rec[i + 2], rec[i + 3]];
            if self.big_endian {
                u32::from_be_bytes(v)
            } else {
                u32::from_le_bytes(v)
            }
        };
        let (secs, frac) = (u64::from(u32_at(0)), u64::from(u32_at(4)));
        // A sub-second field of a second or more is invalid (tcpdump prints "invalid"); it
        // is read as the last instant of its second, so a garbage value cannot throw the
        // packet seconds or hours away from its neighbours.
        let ts = if self.nanos {
            Timestamp::from_secs_nanos(secs, frac.min(999_999_999))
        } else {
            Timestamp::from_secs_nanos(secs, frac.min(999_999) * 1000)
        };
        (ts, u32_at(8), u32_at(12))
    }
}

fn parse_pcap_header(path: &str, h: &[u8; 24]) -> Result<PcapHeader, SourceError> {
    let big_endian = h[0] == 0xa1;
    let nanos = matches!(h[..4], [0xa1, 0xb2, 0x3c, 0x4d] | [0x4d, 0x3c, 0xb2, 0xa1]);
    let u16_at = |i: usize| {
        let v = [h[i], h[i + 1]];
        if big_endian {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    };
    let u32_at = |i: usize| {
        let v = [h[i], h[i + 1], h[i + 2], h[i + 3]];
        if big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    };
    let (major, minor) = (u16_at(4), u16_at(6));
    if major != 2 {
        return Err(SourceError::Corrupt {
            path: path.into(),
            what: format!("invalid pcap file: version {major}.{minor} (only 2.x exists)"),
        });
    }
    // The upper bits of the link-type field carry FCS information, not the link type.
    let link_type = u32_at(20) & 0x0fff_ffff;
    let link = LinkKind::from_link_type(link_type).map_err(|source| SourceError::LinkType {
        path: path.into(),
        source,
    })?;
    Ok(PcapHeader {
        big_endian,
        nanos,
        snaplen: u32_at(16),
        link,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn fixture(name: &str) -> String {
        format!("{}/fixtures/linux/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    /// Only an uncompressed capture with a snap length of at most 256 bytes counts as cheap to
    /// read (the table's reading thread then takes a share of the analysis).
    #[test]
    fn only_uncompressed_headers_only_pcap_is_cheap_to_read() {
        let headers = fixture("headers_only.pcap");
        assert!(CaptureFile::open(&headers).unwrap().headers_only());
        for full in ["close_client_first.pcap", "pcapng.pcapng"] {
            assert!(
                !CaptureFile::open(&fixture(full)).unwrap().headers_only(),
                "{full}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("headers_only.pcap.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&std::fs::read(&headers).unwrap()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let compressed = CaptureFile::open(gz.to_str().unwrap()).unwrap();
        assert!(!compressed.headers_only());
        // pcapng: every interface described before the first packet must keep headers only.
        for (snaplens, cheap) in [
            (&[96][..], true),
            (&[96, 256], true),
            (&[96, 0], false),
            (&[262_144], false),
            (&[257, 96], false),
        ] {
            let path = dir.path().join("headers.pcapng");
            std::fs::write(&path, pcapng(snaplens)).unwrap();
            let file = CaptureFile::open(path.to_str().unwrap()).unwrap();
            assert_eq!(file.headers_only(), cheap, "snap lengths {snaplens:?}");
        }
    }

    /// A little-endian pcapng file: a section, an Ethernet interface of each snap length,
    /// one packet.
    fn pcapng(snaplens: &[u32]) -> Vec<u8> {
        let mut f = Vec::new();
        for v in [0x0a0d_0d0a, 28, 0x1a2b_3c4d, 1, u32::MAX, u32::MAX, 28] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        for &snaplen in snaplens {
            for v in [1, 20, 1, snaplen, 20] {
                f.extend_from_slice(&v.to_le_bytes());
            }
        }
        f.extend(epb(false, 4, &[0; 4], &[], None));
        f
    }

    /// A block longer than pcap-parser's buffer (a 3 MiB block of an unknown type) makes the
    /// buffer grow, and the packet after it is read; a block whose length says 32 MiB is
    /// reported as corrupt, without taking that much memory.
    #[test]
    fn long_pcapng_blocks_grow_the_buffer_up_to_a_limit() {
        let dir = tempfile::tempdir().unwrap();
        let with_block = |len: u32, body: usize| {
            let mut f = pcapng(&[96]);
            let packet = f.split_off(f.len() - epb(false, 4, &[0; 4], &[], None).len());
            for v in [0x0bad, len] {
                f.extend_from_slice(&v.to_le_bytes());
            }
            f.resize(f.len() + body, 0);
            f.extend_from_slice(&len.to_le_bytes());
            f.extend(packet);
            let path = dir.path().join(format!("block{len}.pcapng"));
            std::fs::write(&path, f).unwrap();
            CaptureFile::open(path.to_str().unwrap())
                .and_then(|mut file| file.read_all(&mut |_| Flow::Continue))
        };
        let body = 3 << 20;
        assert_eq!(with_block(12 + body as u32, body).unwrap(), 1);
        let err = with_block(32 << 20, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("longer than 16777216 bytes"), "{err}");
    }

    /// An enhanced packet block: the given fields, `options` after the padded data, and the
    /// trailing length `len2` (None: the right one).
    fn epb(
        big_endian: bool,
        caplen: u32,
        data: &[u8],
        options: &[u8],
        len2: Option<u32>,
    ) -> Vec<u8> {
        let padded = data.len().div_ceil(4) * 4;
        let len = (32 + padded + options.len()) as u32;
        let mut b = Vec::new();
        let mut put = |v: u32| {
            b.extend_from_slice(&if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        for v in [6, len, 0, 0x0006_1234, 0x89ab_cdef, caplen, 1514] {
            put(v);
        }
        b.extend_from_slice(data);
        b.resize(28 + padded, 0);
        b.extend_from_slice(options);
        let tail = len2.unwrap_or(len);
        b.extend_from_slice(&if big_endian {
            tail.to_be_bytes()
        } else {
            tail.to_le_bytes()
        });
        b
    }

    /// The fast reading of an enhanced packet block gives what pcap-parser gives for it, in
    /// both byte orders, and leaves every block it would read otherwise (or reject) to it.
    #[test]
    fn quick_epb_reads_what_pcap_parser_reads() {
        use pcap_parser::pcapng::{parse_enhancedpacketblock_be, parse_enhancedpacketblock_le};
        // An option (code 1, a comment) and the end of options.
        let options = [1, 0, 3, 0, b'a', b'b', b'c', 0, 0, 0, 0, 0];
        for big_endian in [false, true] {
            let parse = |b: &[u8]| {
                let parsed = if big_endian {
                    parse_enhancedpacketblock_be(b)
                } else {
                    parse_enhancedpacketblock_le(b)
                };
                // (bytes after the block, interface, time, captured and original lengths,
                // the data within the captured length)
                parsed.ok().map(|(rest, e)| {
                    let units = (u64::from(e.ts_high) << 32) | u64::from(e.ts_low);
                    let data = e.data[..e.caplen as usize].to_vec();
                    (
                        rest.len(),
                        e.if_id as usize,
                        units,
                        e.caplen,
                        e.origlen,
                        data,
                    )
                })
            };
            let data: Vec<u8> = (0..61).collect();
            for (caplen, opts) in [(0, &[][..]), (1, &[]), (5, &[]), (60, &[]), (61, &options)] {
                let mut block = epb(big_endian, caplen, &data[..caplen as usize], opts, None);
                let len = block.len();
                // What follows the block in the buffer is not read.
                block.extend_from_slice(&[0xff; 40]);
                let quick = QuickEpb::parse(&block, big_endian).expect("a well-formed block");
                let (rest, if_id, units, their_caplen, origlen, their_data) =
                    parse(&block).expect("pcap-parser reads it");
                assert_eq!(quick.len, len);
                assert_eq!(rest, block.len() - len);
                assert_eq!(quick.if_id, if_id);
                assert_eq!(quick.units, units);
                assert_eq!(quick.caplen, their_caplen as usize);
                assert_eq!(quick.wire_len, origlen);
                assert_eq!(&block[QuickEpb::DATA..][..quick.caplen], &their_data[..]);
                // In the other byte order it is not an enhanced packet block.
                assert!(QuickEpb::parse(&block, !big_endian).is_none());
            }
            let good = epb(big_endian, 5, &data[..5], &[], None);
            let mut interface = good.clone();
            interface[if big_endian { 3 } else { 0 }] = 1;
            let malformed = [
                (
                    "lengths disagree",
                    epb(big_endian, 5, &data[..5], &[], Some(44)),
                ),
                (
                    "data past the block",
                    epb(big_endian, 9, &data[..5], &[], None),
                ),
                (
                    "huge captured length",
                    epb(big_endian, u32::MAX - 2, &data[..5], &[], None),
                ),
                ("block cut short", good[..good.len() - 1].to_vec()),
                ("header cut short", good[..20].to_vec()),
                ("not a packet block", interface),
            ];
            for (what, block) in malformed {
                assert!(QuickEpb::parse(&block, big_endian).is_none(), "{what}");
                assert!(
                    parse(&block).is_none(),
                    "pcap-parser rejects it too: {what}"
                );
            }
        }
    }

    /// A timestamp's nanoseconds, by the exact 128-bit formula.
    fn exact_nanos(units: u64, units_per_sec: u64, offset_secs: i64) -> u64 {
        let ns = u128::from(units) * 1_000_000_000 / u128::from(units_per_sec);
        (ns as i128 + i128::from(offset_secs) * 1_000_000_000).rem_euclid(1 << 64) as u64
    }

    /// Interfaces whose unit is a whole number of nanoseconds skip the division, and give
    /// the same times as the others: offsets, wrapping past 2^64 ns, any resolution.
    #[test]
    fn packet_times_are_exact_at_every_resolution() {
        for units_per_sec in [1, 1_000, 1_000_000, 1_000_000_000, 1024, 10_000_000_000] {
            let iface = NgInterface {
                link: Ok(LinkKind::Ethernet),
                units_per_sec,
                snaplen: 0,
                nanos_per_unit: (1_000_000_000 % units_per_sec == 0)
                    .then(|| 1_000_000_000 / units_per_sec),
                offset_secs: 0,
            };
            for offset_secs in [0, 3_600, -86_400, i64::MAX / 1_000_000_000] {
                let iface = NgInterface {
                    offset_secs,
                    ..iface
                };
                for units in [0, 1, 1_764_547_200_123_456, u64::MAX / 3, u64::MAX] {
                    assert_eq!(
                        iface.timestamp(units).0,
                        exact_nanos(units, units_per_sec, offset_secs),
                        "{units} at {units_per_sec}/s, offset {offset_secs} s"
                    );
                }
            }
        }
    }
}
