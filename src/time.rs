//! Capture timestamps and how they are printed.
//!
//! Time inside tcpscope is always the packet's own timestamp, as nanoseconds since the Unix
//! epoch; nothing reads the wall clock, so a file gives the same report on every run. Formatting
//! writes straight into the output without allocating, because a timeline of a large capture
//! formats one timestamp per line.

use std::fmt;
use std::io::{self, Write};

/// Nanoseconds since 1970-01-01T00:00:00Z, as taken from the capture record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const NANOS_PER_SEC: u64 = 1_000_000_000;

    pub fn from_secs_nanos(secs: u64, nanos: u64) -> Self {
        Timestamp(
            secs.saturating_mul(Self::NANOS_PER_SEC)
                .saturating_add(nanos),
        )
    }

    pub fn secs(self) -> u64 {
        self.0 / Self::NANOS_PER_SEC
    }

    pub fn subsec_nanos(self) -> u32 {
        (self.0 % Self::NANOS_PER_SEC) as u32
    }

    /// Time from `earlier` to `self`; zero when `earlier` is later (captures are not always
    /// in time order, and a negative gap has no use in a report).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }

    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }

    /// RFC 3339 in UTC with nanoseconds, e.g. `2026-01-01T00:00:00.000123456Z` (the JSON form).
    pub fn rfc3339(self) -> Rfc3339 {
        Rfc3339(self)
    }
}

/// A span of capture time in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub u64);

impl Duration {
    pub fn from_secs_f64(s: f64) -> Duration {
        Duration((s.max(0.0) * 1e9).round() as u64)
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl fmt::Display for Duration {
    /// Human form: `85 µs`, `1.204 ms`, `3.051 s`, `2 min 5 s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns < 1_000 {
            write!(f, "{ns} ns")
        } else if ns < 1_000_000 {
            write!(f, "{} µs", ns / 1_000)
        } else if ns < 1_000_000_000 {
            write!(f, "{:.3} ms", ns as f64 / 1e6)
        } else if ns < 120 * 1_000_000_000 {
            write!(f, "{:.3} s", ns as f64 / 1e9)
        } else {
            let s = ns / 1_000_000_000;
            write!(f, "{} min {} s", s / 60, s % 60)
        }
    }
}

/// Days since the epoch to a (year, month, day) civil date (proleptic Gregorian).
/// Howard Hinnant's well-known algorithm, written out here so formatting needs no allocation.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl Timestamp {
    /// Appends the RFC 3339 form (`2026-01-01T00:00:00.000123456Z`) to `out`, digit by digit:
    /// JSON output writes one or more per line.
    pub fn push_rfc3339(self, out: &mut Vec<u8>) {
        let secs = self.secs() as i64;
        let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, mo, d) = civil_from_days(days);
        let digits = |n: u64, width: usize, out: &mut Vec<u8>| {
            let mut buf = [b'0'; 20];
            let mut n = n;
            for i in (0..width).rev() {
                buf[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
            out.extend_from_slice(&buf[..width]);
        };
        digits(y.clamp(0, 9999) as u64, 4, out);
        out.push(b'-');
        digits(u64::from(mo), 2, out);
        out.push(b'-');
        digits(u64::from(d), 2, out);
        out.push(b'T');
        digits((sod / 3600) as u64, 2, out);
        out.push(b':');
        digits((sod / 60 % 60) as u64, 2, out);
        out.push(b':');
        digits((sod % 60) as u64, 2, out);
        out.push(b'.');
        digits(u64::from(self.subsec_nanos()), 9, out);
        out.push(b'Z');
    }
}

/// Display adapter for [`Timestamp::rfc3339`].
pub struct Rfc3339(Timestamp);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_calendar(f, self.0, 0, 9, 'T')?;
        f.write_str("Z")
    }
}

/// Writes `YYYY-MM-DD<sep>HH:MM:SS.fff…` for `ts` shifted by `offset_secs`.
fn write_calendar(
    w: &mut dyn fmt::Write,
    ts: Timestamp,
    offset_secs: i64,
    digits: usize,
    sep: char,
) -> fmt::Result {
    let secs = ts.secs() as i64 + offset_secs;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    write!(
        w,
        "{y:04}-{mo:02}-{d:02}{sep}{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )?;
    write_fraction(w, ts.subsec_nanos(), digits)
}

fn write_fraction(w: &mut dyn fmt::Write, nanos: u32, digits: usize) -> fmt::Result {
    match digits {
        0 => Ok(()),
        6 => write!(w, ".{:06}", nanos / 1_000),
        _ => write!(w, ".{nanos:09}"),
    }
}

/// How the text views print a timestamp (`--time`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeFormat {
    /// `2026-01-01 12:00:00.000123` in UTC
    Utc,
    /// the same in the machine's local time zone (TZ)
    Local,
    /// seconds since the first packet, like `tcpdump -ttttt`
    Relative,
    /// seconds since the Unix epoch, like `tcpdump -tt`
    Epoch,
}

/// Formats timestamps for the text views: the chosen style, the capture's precision (6 digits
/// for microsecond captures, 9 for nanosecond ones) and the start of the capture for relative
/// times.
#[derive(Clone, Copy, Debug)]
pub struct TimeFormatter {
    pub format: TimeFormat,
    pub digits: usize,
    pub origin: Option<Timestamp>,
}

impl TimeFormatter {
    pub fn new(format: TimeFormat, nanosecond_precision: bool) -> Self {
        TimeFormatter {
            format,
            digits: if nanosecond_precision { 9 } else { 6 },
            origin: None,
        }
    }

    /// Writes `ts` into `out` in the chosen style.
    pub fn write(&self, out: &mut dyn Write, ts: Timestamp) -> io::Result<()> {
        let mut buf = StackBuf::new();
        let r = match self.format {
            TimeFormat::Utc => write_calendar(&mut buf, ts, 0, self.digits, ' '),
            TimeFormat::Local => {
                write_calendar(&mut buf, ts, local_offset_secs(ts), self.digits, ' ')
            }
            TimeFormat::Epoch => fmt::Write::write_fmt(&mut buf, format_args!("{}", ts.secs()))
                .and_then(|_| write_fraction(&mut buf, ts.subsec_nanos(), self.digits)),
            TimeFormat::Relative => {
                let d = ts.since(self.origin.unwrap_or(ts));
                let rel = Timestamp(d.0);
                fmt::Write::write_fmt(&mut buf, format_args!("{:>4}", rel.secs()))
                    .and_then(|_| write_fraction(&mut buf, rel.subsec_nanos(), self.digits))
            }
        };
        r.map_err(|_| io::Error::other("timestamp formatting failed"))?;
        out.write_all(buf.as_bytes())
    }

    /// The same as [`TimeFormatter::write`], into a `String` (for tables, which are built once).
    pub fn to_string(&self, ts: Timestamp) -> String {
        let mut v = Vec::with_capacity(32);
        let _ = self.write(&mut v, ts);
        String::from_utf8(v).unwrap_or_default()
    }
}

/// The local time zone's offset from UTC at `ts`, through chrono (which reads TZ).
fn local_offset_secs(ts: Timestamp) -> i64 {
    use chrono::{Local, Offset, TimeZone};
    match Local.timestamp_opt(ts.secs() as i64, 0) {
        chrono::LocalResult::Single(dt) | chrono::LocalResult::Ambiguous(dt, _) => {
            i64::from(dt.offset().fix().local_minus_utc())
        }
        chrono::LocalResult::None => 0,
    }
}

/// A small fixed buffer that implements `fmt::Write`, so timestamps are formatted without a heap
/// allocation.
struct StackBuf {
    buf: [u8; 48],
    len: usize,
}

impl StackBuf {
    fn new() -> Self {
        StackBuf {
            buf: [0; 48],
            len: 0,
        }
    }
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        // 2026-01-01T00:00:00Z is 1767225600 s after the epoch.
        let ts = Timestamp::from_secs_nanos(1_767_225_600, 123_456_789);
        assert_eq!(ts.rfc3339().to_string(), "2026-01-01T00:00:00.123456789Z");
        // A leap day: 2024-02-29T12:34:56Z = 1709210096.
        let ts = Timestamp::from_secs_nanos(1_709_210_096, 0);
        assert_eq!(ts.rfc3339().to_string(), "2024-02-29T12:34:56.000000000Z");
        assert_eq!(
            Timestamp(0).rfc3339().to_string(),
            "1970-01-01T00:00:00.000000000Z"
        );
    }

    #[test]
    fn pushed_rfc3339_matches_the_display_form() {
        for ts in [
            Timestamp(0),
            Timestamp::from_secs_nanos(1_767_225_600, 123_456_789),
            Timestamp::from_secs_nanos(1_709_210_096, 7),
        ] {
            let mut v = Vec::new();
            ts.push_rfc3339(&mut v);
            assert_eq!(String::from_utf8(v).unwrap(), ts.rfc3339().to_string());
        }
    }

    #[test]
    fn text_styles() {
        let ts = Timestamp::from_secs_nanos(1_767_225_601, 500_000_000);
        let mut f = TimeFormatter::new(TimeFormat::Utc, false);
        assert_eq!(f.to_string(ts), "2026-01-01 00:00:01.500000");
        f.format = TimeFormat::Epoch;
        assert_eq!(f.to_string(ts), "1767225601.500000");
        f.format = TimeFormat::Relative;
        f.origin = Some(Timestamp::from_secs_nanos(1_767_225_600, 0));
        assert_eq!(f.to_string(ts), "   1.500000");
        let f = TimeFormatter::new(TimeFormat::Utc, true);
        assert_eq!(f.to_string(ts), "2026-01-01 00:00:01.500000000");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(Duration(85_000).to_string(), "85 µs");
        assert_eq!(Duration(1_204_000).to_string(), "1.204 ms");
        assert_eq!(Duration(3_051_000_000).to_string(), "3.051 s");
        assert_eq!(Duration(125_000_000_000).to_string(), "2 min 5 s");
    }
}
