//! `--format zeek`: a Zeek conn.log (TSV with Zeek's header lines), one line per connection,
//! readable by zeek-cut and the tools built on Zeek logs.

use std::io::{self, Write};

use crate::event::Event;
use crate::render::{ConnHeader, Renderer};
use crate::summary::Summary;
use crate::tcp::conn::Connection;
use crate::time::Timestamp;

pub struct ZeekRenderer<W: Write> {
    out: W,
    header_written: bool,
}

const FIELDS: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\tip_proto";
const TYPES: &str = "time\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\tcount";

impl<W: Write> ZeekRenderer<W> {
    pub fn new(out: W) -> Self {
        ZeekRenderer {
            out,
            header_written: false,
        }
    }

    fn header(&mut self, open: Timestamp) -> io::Result<()> {
        if self.header_written {
            return Ok(());
        }
        self.header_written = true;
        writeln!(self.out, "#separator \\x09")?;
        writeln!(self.out, "#set_separator\t,")?;
        writeln!(self.out, "#empty_field\t(empty)")?;
        writeln!(self.out, "#unset_field\t-")?;
        writeln!(self.out, "#path\tconn")?;
        writeln!(self.out, "#open\t{}", zeek_date(open))?;
        writeln!(self.out, "#fields\t{FIELDS}")?;
        writeln!(self.out, "#types\t{TYPES}")
    }
}

/// Zeek's `#open`/`#close` stamp: `2026-01-01-00-00-00`.
fn zeek_date(t: Timestamp) -> String {
    let s = t.rfc3339().to_string();
    // 2026-01-01T00:00:00.…Z → 2026-01-01-00-00-00
    s[..19].replace(['T', ':'], "-")
}

fn epoch(t: Timestamp) -> String {
    format!("{}.{:06}", t.secs(), t.subsec_nanos() / 1000)
}

/// A stable Zeek-style uid ("C" and 17 base-62 characters) derived from the connection id, so
/// the same capture always gives the same uids.
fn uid(id: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut x = id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut mix = || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut n = (u128::from(mix()) << 64) | u128::from(mix());
    let mut s = String::from("C");
    for _ in 0..17 {
        s.push(ALPHABET[(n % 62) as usize] as char);
        n /= 62;
    }
    s
}

/// One conn.log line.
pub fn conn_line(c: &Connection) -> String {
    // The zeek format always tracks Zeek's model (see `TrackerConfig::zeek`).
    let Some(z) = c.zeek.as_deref() else {
        return String::new();
    };
    let (orig, resp) = (c.addr(z.orig), c.addr(z.orig.peer()));
    let (ob, op, oip, omiss) = z.counts(0);
    let (rb, rp, rip, rmiss) = z.counts(1);
    let d = z.duration();
    let (duration, obytes, rbytes) = if d.0 == 0 {
        ("-".to_string(), "-".to_string(), "-".to_string())
    } else {
        (
            format!("{:.6}", d.as_secs_f64()),
            ob.to_string(),
            rb.to_string(),
        )
    };
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\ttcp\t-\t{duration}\t{obytes}\t{rbytes}\t{}\t-\t-\t{}\t{}\t{op}\t{oip}\t{rp}\t{rip}\t-\t6",
        epoch(z.first_ts()),
        uid(c.id),
        orig.ip(),
        orig.port(),
        resp.ip(),
        resp.port(),
        z.conn_state(),
        omiss + rmiss,
        z.history(),
    )
}

impl<W: Write> Renderer for ZeekRenderer<W> {
    fn wants_events(&self) -> bool {
        false
    }

    fn start(&mut self, first: Timestamp) {
        let _ = self.header(first);
    }
    fn event(&mut self, _ev: &Event, _c: Option<&ConnHeader>) -> io::Result<()> {
        Ok(())
    }
    fn connection(&mut self, c: &Connection) -> io::Result<()> {
        self.header(c.first_ts)?;
        writeln!(self.out, "{}", conn_line(c))
    }
    fn finish(&mut self, s: &Summary) -> io::Result<()> {
        let end = s.last_ts.unwrap_or_default();
        self.header(end)?;
        writeln!(self.out, "#close\t{}", zeek_date(end))?;
        self.out.flush()
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
