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

impl Duration {
    /// Writes the human form: `85 µs`, `1.204 ms`, `3.051 s`, `2 min 5 s`. Rounded to the
    /// last digit shown, half up, in integers: no float formatting on the table's hot path.
    pub fn write_human<W: fmt::Write>(self, w: &mut W) -> fmt::Result {
        let ns = self.0;
        let mut digits = itoa::Buffer::new();
        // `whole.frac` with three decimals, `unit` nanoseconds to one.
        let mut decimal = |w: &mut W, unit: u64, suffix: &str| {
            let thousandths = (ns + unit / 2_000) / (unit / 1_000);
            w.write_str(digits.format(thousandths / 1_000))?;
            let frac = thousandths % 1_000;
            let pad = if frac < 10 {
                "00"
            } else if frac < 100 {
                "0"
            } else {
                ""
            };
            w.write_char('.')?;
            w.write_str(pad)?;
            w.write_str(itoa::Buffer::new().format(frac))?;
            w.write_str(suffix)
        };
        if ns < 1_000 {
            w.write_str(digits.format(ns))?;
            w.write_str(" ns")
        } else if ns < 1_000_000 {
            w.write_str(digits.format(ns / 1_000))?;
            w.write_str(" µs")
        } else if ns < 1_000_000_000 {
            decimal(w, 1_000_000, " ms")
        } else if ns < 120 * 1_000_000_000 {
            decimal(w, 1_000_000_000, " s")
        } else {
            let s = ns / 1_000_000_000;
            w.write_str(digits.format(s / 60))?;
            w.write_str(" min ")?;
            w.write_str(itoa::Buffer::new().format(s % 60))?;
            w.write_str(" s")
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_human(f)
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

/// Appends `n` as exactly `width` decimal digits (zero-padded; wider numbers keep their low
/// digits, which only a year past 9999 could need).
fn push_digits(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut n = n;
    for i in (0..width).rev() {
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// `n` (below 10⁹: nanoseconds) as nine digits, with leading zeros. The output thread writes
/// one for every timestamp of a JSON run (millions): digit by digit they were 6% of its
/// instructions, two digits at a time from a table still 9%.
pub(crate) fn nine_digits(n: u32) -> [u8; 9] {
    debug_assert!(n < 1_000_000_000);
    let [a, b, c, d, e, f, g, h] = eight_digits(n % 100_000_000);
    [b'0' + (n / 100_000_000) as u8, a, b, c, d, e, f, g, h]
}

/// `n` (below 10⁸) as eight digits, with leading zeros, all eight at once in the lanes of a
/// 64-bit word ("SWAR"): halves of four digits in 32-bit lanes, then pairs in 16-bit lanes,
/// then digits in bytes. Each step divides every lane at once by a multiplication and a
/// shift, exact for the lanes' ranges (x·10486 >> 20 is x / 100 below 10⁴, x·103 >> 10 is
/// x / 10 below 100), and no product spills into the next lane. Little-endian: the lower
/// lane is the one written first.
fn eight_digits(n: u32) -> [u8; 8] {
    debug_assert!(n < 100_000_000);
    let n = u64::from(n);
    let quads = (n / 10_000) | ((n % 10_000) << 32);
    let high_pairs = ((quads * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let pairs = ((quads - high_pairs * 100) << 16) | high_pairs;
    let tens = ((pairs * 103) >> 10) & 0x000f_000f_000f_000f;
    let digits = ((pairs - tens * 10) << 8) | tens;
    (digits | 0x3030_3030_3030_3030).to_le_bytes()
}

/// Appends `YYYY-MM-DD<sep>HH:MM:SS.fff…` for `ts` shifted by `offset_secs`, digit by digit.
fn push_calendar(out: &mut Vec<u8>, ts: Timestamp, offset_secs: i64, digits: usize, sep: u8) {
    let secs = ts.secs() as i64 + offset_secs;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    push_digits(out, y.clamp(0, 9999) as u64, 4);
    out.push(b'-');
    push_digits(out, u64::from(mo), 2);
    out.push(b'-');
    push_digits(out, u64::from(d), 2);
    out.push(sep);
    push_digits(out, (sod / 3600) as u64, 2);
    out.push(b':');
    push_digits(out, (sod / 60 % 60) as u64, 2);
    out.push(b':');
    push_digits(out, (sod % 60) as u64, 2);
    push_fraction(out, ts.subsec_nanos(), digits);
}

fn push_fraction(out: &mut Vec<u8>, nanos: u32, digits: usize) {
    match digits {
        0 => {}
        6 => {
            out.push(b'.');
            push_digits(out, u64::from(nanos / 1_000), 6);
        }
        _ => {
            out.push(b'.');
            push_digits(out, u64::from(nanos), 9);
        }
    }
}

impl Timestamp {
    /// Appends the RFC 3339 form (`2026-01-01T00:00:00.000123456Z`) to `out`, digit by digit:
    /// JSON output writes one or more per line.
    pub fn push_rfc3339(self, out: &mut Vec<u8>) {
        push_calendar(out, self, 0, 9, b'T');
        out.push(b'Z');
    }

    /// The same, with the calendar part taken from `cache` when the second is the last one's.
    /// Put together on the stack and appended in one copy: JSON lines hold millions of them.
    pub fn push_rfc3339_cached(self, out: &mut Vec<u8>, cache: &mut SecondCache) {
        let mut text = [0u8; CALENDAR + 11];
        text[..CALENDAR].copy_from_slice(cache.calendar(self, b'T', |_| 0));
        text[CALENDAR] = b'.';
        text[CALENDAR + 1..CALENDAR + 10].copy_from_slice(&nine_digits(self.subsec_nanos()));
        text[CALENDAR + 10] = b'Z';
        out.extend_from_slice(&text);
    }
}

/// The calendar part (`YYYY-MM-DD HH:MM:SS`) of the seconds formatted lately, by second
/// modulo [`CACHED_SECONDS`]. A timeline prints a timestamp per line, consecutive lines mostly
/// share their second, and the calendar arithmetic (and, for local time, the time zone
/// lookup) is most of a timestamp's cost. A connection object holds seconds spread over its
/// life (its start, its RST, its TIME_WAIT's end a minute later), written between the events'
/// current second: a cache of the last second or two missed a quarter of the time.
#[derive(Clone, Debug, Default)]
pub struct SecondCache {
    /// [`CACHED_SECONDS`] entries, made on first use.
    seconds: Vec<CachedSecond>,
    /// Where a new second is formatted.
    scratch: Vec<u8>,
}

#[derive(Clone, Debug)]
struct CachedSecond {
    /// The UTC second and the separator formatted.
    key: Option<(u64, u8)>,
    text: [u8; CALENDAR],
}

/// The length of `YYYY-MM-DD HH:MM:SS` (a year is written with four digits, see
/// [`push_digits`]).
const CALENDAR: usize = 19;

/// Seconds a [`SecondCache`] holds: more than a TIME_WAIT (60 s) after a connection's start.
const CACHED_SECONDS: usize = 256;

impl SecondCache {
    /// The calendar part of `ts`, shifted by `offset(ts)` seconds (the local time zone's
    /// offset, or none): computed only when its entry holds another second.
    fn calendar(
        &mut self,
        ts: Timestamp,
        sep: u8,
        offset: impl Fn(Timestamp) -> i64,
    ) -> &[u8; CALENDAR] {
        if self.seconds.is_empty() {
            let empty = CachedSecond {
                key: None,
                text: [0; CALENDAR],
            };
            self.seconds = vec![empty; CACHED_SECONDS];
        }
        let key = Some((ts.secs(), sep));
        let entry = &mut self.seconds[(ts.secs() % CACHED_SECONDS as u64) as usize];
        if entry.key != key {
            let whole = Timestamp::from_secs_nanos(ts.secs(), 0);
            self.scratch.clear();
            push_calendar(&mut self.scratch, whole, offset(whole), 0, sep);
            entry.text.copy_from_slice(&self.scratch);
            entry.key = key;
        }
        &entry.text
    }

    /// Appends the calendar part of `ts` (see [`SecondCache::calendar`]).
    fn push(
        &mut self,
        out: &mut Vec<u8>,
        ts: Timestamp,
        sep: u8,
        offset: impl Fn(Timestamp) -> i64,
    ) {
        out.extend_from_slice(self.calendar(ts, sep, offset));
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
        // Room for the longest form (a local time zone's, with nanoseconds) at once.
        let mut buf = Vec::with_capacity(40);
        self.push(&mut buf, ts);
        out.write_all(&buf)
    }

    /// Appends `ts` in the chosen style to `buf` (the timeline reuses one buffer).
    pub fn push(&self, buf: &mut Vec<u8>, ts: Timestamp) {
        match self.format {
            TimeFormat::Utc => push_calendar(buf, ts, 0, self.digits, b' '),
            TimeFormat::Local => push_calendar(buf, ts, local_offset_secs(ts), self.digits, b' '),
            TimeFormat::Epoch => {
                let _ = write!(buf, "{}", ts.secs());
                push_fraction(buf, ts.subsec_nanos(), self.digits);
            }
            TimeFormat::Relative => {
                let rel = Timestamp(ts.since(self.origin.unwrap_or(ts)).0);
                let _ = write!(buf, "{:>4}", rel.secs());
                push_fraction(buf, rel.subsec_nanos(), self.digits);
            }
        }
    }

    /// The same as [`TimeFormatter::push`], with calendar parts reused from `cache` (one
    /// cache per formatter: a cache does not know the style it was filled in).
    pub fn push_cached(&self, buf: &mut Vec<u8>, ts: Timestamp, cache: &mut SecondCache) {
        match self.format {
            TimeFormat::Utc => cache.push(buf, ts, b' ', |_| 0),
            TimeFormat::Local => cache.push(buf, ts, b' ', local_offset_secs),
            TimeFormat::Epoch | TimeFormat::Relative => return self.push(buf, ts),
        }
        push_fraction(buf, ts.subsec_nanos(), self.digits);
    }

    /// The same as [`TimeFormatter::write`], into a `String` (for tables, which are built once).
    pub fn to_string(&self, ts: Timestamp) -> String {
        let mut s = String::new();
        self.push_str(&mut s, ts);
        s
    }

    /// Appends `ts` to a `String`, without a `String` of its own: an event's sentence names
    /// a time, and the output thread writes hundreds of thousands of sentences.
    pub fn push_str(&self, s: &mut String, ts: Timestamp) {
        let mut bytes = std::mem::take(s).into_bytes();
        self.push(&mut bytes, ts);
        // Digits and separators only: always UTF-8.
        *s = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
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
    fn nine_digits_pads_every_place() {
        for n in [
            0,
            7,
            10,
            99,
            100,
            9_999,
            10_000,
            10_001,
            99_999,
            100_000,
            123_456_789,
            900_000_009,
            999_999_999,
        ] {
            assert_eq!(nine_digits(n), *format!("{n:09}").as_bytes(), "{n}");
        }
    }

    /// Every value below 10⁶, and every 997th one above it (each place takes every digit).
    #[test]
    fn eight_digits_at_once_are_the_decimal_digits() {
        for n in (0..1_000_000).chain((1_000_000..100_000_000).step_by(997)) {
            assert_eq!(eight_digits(n), *format!("{n:08}").as_bytes(), "{n}");
        }
        assert_eq!(&eight_digits(99_999_999), b"99999999");
    }

    #[test]
    fn cached_calendar_parts_print_what_uncached_ones_do() {
        let stamps = [
            Timestamp::from_secs_nanos(1_767_225_600, 1),
            Timestamp::from_secs_nanos(1_767_225_600, 999_999_999),
            Timestamp::from_secs_nanos(1_767_225_601, 0),
            Timestamp::from_secs_nanos(1_767_225_599, 500), // back in time
            Timestamp::from_secs_nanos(1_709_251_199, 42),  // 2024-02-29 23:59:59
            Timestamp::from_secs_nanos(1_709_251_200, 42),
            // Two seconds in turn (a connection's start, then its end), then a third.
            Timestamp::from_secs_nanos(1_709_251_199, 7),
            Timestamp::from_secs_nanos(1_709_251_200, 8),
            Timestamp::from_secs_nanos(1_709_251_199, 9),
            Timestamp::from_secs_nanos(1_767_225_601, 10),
            Timestamp::from_secs_nanos(1_709_251_200, 11),
            Timestamp::from_secs_nanos(1_709_251_199, 12),
            // Seconds that share an entry of the cache (256 s apart), in turn.
            Timestamp::from_secs_nanos(1_709_251_199 + 256, 13),
            Timestamp::from_secs_nanos(1_709_251_199, 14),
            Timestamp::from_secs_nanos(1_709_251_199 + 512, 999_999_999),
            // The last representable year, and the epoch.
            Timestamp::from_secs_nanos(253_402_300_799, 1),
            Timestamp(0),
        ];
        let mut cache = SecondCache::default();
        for ts in stamps {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            ts.push_rfc3339(&mut a);
            ts.push_rfc3339_cached(&mut b, &mut cache);
            assert_eq!(a, b);
        }
        for format in [TimeFormat::Utc, TimeFormat::Epoch, TimeFormat::Relative] {
            let tf = TimeFormatter {
                format,
                digits: 6,
                origin: Some(stamps[0]),
            };
            let mut cache = SecondCache::default();
            for ts in stamps {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                tf.push(&mut a, ts);
                tf.push_cached(&mut b, ts, &mut cache);
                assert_eq!(a, b);
            }
        }
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
        // Appended to a sentence, after its words.
        let mut s = String::from("TIME_WAIT until ");
        f.push_str(&mut s, ts);
        assert_eq!(s, "TIME_WAIT until 2026-01-01 00:00:01.500000000");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(Duration(85_000).to_string(), "85 µs");
        assert_eq!(Duration(1_204_000).to_string(), "1.204 ms");
        assert_eq!(Duration(3_051_000_000).to_string(), "3.051 s");
        assert_eq!(Duration(125_000_000_000).to_string(), "2 min 5 s");
        // Three decimals, zero-padded, rounded half up at the last digit.
        assert_eq!(Duration(1_004_500).to_string(), "1.005 ms");
        assert_eq!(Duration(2_050_000_000).to_string(), "2.050 s");
        assert_eq!(Duration(999_999_999).to_string(), "1000.000 ms");
        assert_eq!(Duration(7).to_string(), "7 ns");
        assert_eq!(Duration(u64::MAX).to_string(), "307445734 min 33 s");
        // Against the rule written with `format!`, at and around every boundary.
        let by_format = |ns: u64| {
            let decimal = |unit: u64, suffix: &str| {
                let thousandths = (ns + unit / 2_000) / (unit / 1_000);
                format!("{}.{:03}{suffix}", thousandths / 1_000, thousandths % 1_000)
            };
            match ns {
                0..1_000 => format!("{ns} ns"),
                1_000..1_000_000 => format!("{} µs", ns / 1_000),
                1_000_000..1_000_000_000 => decimal(1_000_000, " ms"),
                1_000_000_000..120_000_000_000 => decimal(1_000_000_000, " s"),
                _ => format!("{} min {} s", ns / 60_000_000_000, ns / 1_000_000_000 % 60),
            }
        };
        for edge in [
            0,
            1_000,
            1_000_000,
            1_000_000_000,
            120_000_000_000,
            u64::MAX / 2,
        ] {
            for ns in edge.saturating_sub(1_000)..edge.saturating_add(1_000) {
                assert_eq!(Duration(ns).to_string(), by_format(ns), "{ns} ns");
            }
        }
    }
}
