//! A small JSON writer for the objects tcpscope writes once per event, segment or connection.
//!
//! Building a `serde_json::Value` per object allocated a map and a string for every field,
//! which made JSON the slowest output by far on large captures. This writer appends straight
//! into a reused byte buffer, in field order, with no allocation per field.

use std::fmt::{self, Display, Write as _};

use crate::time::Duration;

/// A member name with a comma before it, its quotes and its colon (`,"name":`), made by
/// [`k!`] when compiling, so that writing it is one copy of a constant length (a connection
/// object has a hundred members): the whole of it, or all but the comma for the first member
/// of an object.
#[derive(Clone, Copy, Debug)]
pub struct Key(pub &'static str);

impl Key {
    /// `"name":`, without the comma.
    pub fn member(self) -> &'static str {
        &self.0[1..]
    }
}

/// `k!("name")`: the [`Key`] of a member called `name` (a plain name: no escaping is done).
macro_rules! k {
    ($name:literal) => {
        $crate::render::jsonw::Key(concat!(",\"", $name, "\":"))
    };
}
pub(crate) use k;

/// Appends JSON objects, one per line, to a byte buffer.
pub struct JsonBuf {
    buf: Vec<u8>,
    /// Does the next member need a comma before it (has the innermost open object a member
    /// yet)? One flag is enough: after an inner object closes, its parent has a member.
    comma: bool,
    /// How many objects are open.
    depth: u32,
    seconds: crate::time::SecondCache,
}

/// Writes what a `Display` produces, escaped for a JSON string.
struct Escaped<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            match b {
                b'"' => self.0.extend_from_slice(b"\\\""),
                b'\\' => self.0.extend_from_slice(b"\\\\"),
                b'\n' => self.0.extend_from_slice(b"\\n"),
                b'\r' => self.0.extend_from_slice(b"\\r"),
                b'\t' => self.0.extend_from_slice(b"\\t"),
                0..=0x1f => {
                    let _ = write!(self, "\\u{b:04x}");
                }
                _ => self.0.push(b),
            }
        }
        Ok(())
    }
}

/// Writes a `Display` as is (numbers).
struct Plain<'a>(&'a mut Vec<u8>);

impl fmt::Write for Plain<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl Default for JsonBuf {
    fn default() -> Self {
        JsonBuf {
            buf: Vec::with_capacity(1024),
            comma: false,
            depth: 0,
            seconds: Default::default(),
        }
    }
}

impl JsonBuf {
    /// Starts a new top-level object after what the buffer holds (the lines written before
    /// it, until [`JsonBuf::clear`]).
    pub fn begin(&mut self) {
        self.buf.push(b'{');
        self.comma = false;
        self.depth = 1;
    }

    /// Ends the top-level object and the line; returns the bytes the buffer holds (every
    /// line since it was last cleared).
    pub fn finish(&mut self) -> &[u8] {
        while self.depth > 0 {
            self.close();
        }
        self.buf.push(b'\n');
        &self.buf
    }

    /// The lines written so far.
    pub fn lines(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets the lines written so far (once they are out).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    // This and the small writers below are inlined into every call site, where the key is
    // a literal: its copy then has a constant length and compiles to a few moves instead of a
    // call to memcpy. Plain `#[inline]` left `plain`, `num` and `secs` out of line (callgrind,
    // 657 k-packet capture: the output thread did 570 M instructions, now 464 M).
    #[inline(always)]
    fn key(&mut self, k: Key) {
        let with_comma = k.0.as_bytes();
        if self.comma {
            self.buf.extend_from_slice(with_comma);
        } else {
            self.buf.extend_from_slice(&with_comma[1..]);
        }
        self.comma = true;
    }

    pub fn str(&mut self, k: Key, v: impl Display) -> &mut Self {
        self.key(k);
        self.buf.push(b'"');
        let _ = write!(Escaped(&mut self.buf), "{v}");
        self.buf.push(b'"');
        self
    }

    /// A timestamp in RFC 3339 UTC.
    #[inline(always)]
    pub fn ts(&mut self, k: Key, t: crate::time::Timestamp) -> &mut Self {
        self.key(k);
        self.buf.push(b'"');
        t.push_rfc3339_cached(&mut self.buf, &mut self.seconds);
        self.buf.push(b'"');
        self
    }

    #[inline(always)]
    pub fn opt_ts(&mut self, k: Key, t: Option<crate::time::Timestamp>) -> &mut Self {
        match t {
            Some(t) => self.ts(k, t),
            None => self.null(k),
        }
    }

    /// A string known to need no escaping (names, addresses).
    #[inline(always)]
    pub fn plain(&mut self, k: Key, v: &str) -> &mut Self {
        self.key(k);
        self.buf.push(b'"');
        self.buf.extend_from_slice(v.as_bytes());
        self.buf.push(b'"');
        self
    }

    #[inline(always)]
    pub fn opt_plain(&mut self, k: Key, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.plain(k, v),
            None => self.null(k),
        }
    }

    /// An address and port as a string (`"10.0.0.1:80"`, `"[::1]:80"`).
    pub fn addr(&mut self, k: Key, a: &std::net::SocketAddr) -> &mut Self {
        self.key(k);
        self.buf.push(b'"');
        match a {
            std::net::SocketAddr::V4(v4) => {
                let (text, len) = crate::render::push::ipv4_text(v4);
                self.buf.extend_from_slice(&text[..len]);
            }
            std::net::SocketAddr::V6(_) => {
                crate::render::push::socket_addr(&mut Plain(&mut self.buf), a)
            }
        }
        self.buf.push(b'"');
        self
    }

    pub fn opt_str(&mut self, k: Key, v: Option<impl Display>) -> &mut Self {
        match v {
            Some(v) => self.str(k, v),
            None => self.null(k),
        }
    }

    #[inline(always)]
    pub fn num(&mut self, k: Key, v: impl Into<u64>) -> &mut Self {
        self.key(k);
        let n = v.into();
        if n < 10 {
            // Most numbers written are counts of 0 or 1: one byte, without a copy.
            self.buf.push(b'0' + n as u8);
        } else {
            // itoa writes two digits a step (connection ids, sequence numbers).
            self.buf
                .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        }
        self
    }

    #[inline(always)]
    pub fn opt_num(&mut self, k: Key, v: Option<u64>) -> &mut Self {
        match v {
            Some(v) => self.num(k, v),
            None => self.null(k),
        }
    }

    /// A finite float (durations in seconds).
    pub fn float(&mut self, k: Key, v: f64) -> &mut Self {
        self.key(k);
        let v = if v.is_finite() { v } else { 0.0 };
        let _ = write!(Plain(&mut self.buf), "{v}");
        self
    }

    pub fn opt_float(&mut self, k: Key, v: Option<f64>) -> &mut Self {
        match v {
            Some(v) => self.float(k, v),
            None => self.null(k),
        }
    }

    /// A duration in seconds, as the float `d.as_secs_f64()` prints (`0.031641`, `2`), but
    /// written from the integer nanoseconds: the decimal with the trailing zeros dropped is
    /// that float's shortest form while a float step is under a nanosecond, that is below
    /// 2^22 s (48 days); longer spans go through the float.
    #[inline(always)]
    pub fn secs(&mut self, k: Key, d: Duration) -> &mut Self {
        const NANOS: u64 = 1_000_000_000;
        if d.0 >= (1 << 22) * NANOS {
            return self.float(k, d.as_secs_f64());
        }
        self.key(k);
        let whole = d.0 / NANOS;
        if whole < 10 {
            // Most durations written are round trips and gaps, under a second.
            self.buf.push(b'0' + whole as u8);
        } else {
            self.buf
                .extend_from_slice(itoa::Buffer::new().format(whole).as_bytes());
        }
        let frac = (d.0 % NANOS) as u32;
        if frac > 0 {
            let digits = crate::time::nine_digits(frac);
            let last = digits.iter().rposition(|&b| b != b'0').unwrap_or(0);
            self.buf.push(b'.');
            self.buf.extend_from_slice(&digits[..=last]);
        }
        self
    }

    #[inline(always)]
    pub fn opt_secs(&mut self, k: Key, d: Option<Duration>) -> &mut Self {
        match d {
            Some(d) => self.secs(k, d),
            None => self.null(k),
        }
    }

    #[inline(always)]
    pub fn bool(&mut self, k: Key, v: bool) -> &mut Self {
        self.key(k);
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    #[inline(always)]
    pub fn null(&mut self, k: Key) -> &mut Self {
        self.key(k);
        self.buf.extend_from_slice(b"null");
        self
    }

    /// A member whose value was formatted before (by [`JsonBuf::object`]), copied as it is:
    /// for values that many objects share.
    #[inline(always)]
    pub fn formatted(&mut self, k: Key, value: &[u8]) -> &mut Self {
        self.key(k);
        self.buf.extend_from_slice(value);
        self
    }

    /// The object that `members` writes, formatted on its own (`{…}`, no newline), to be
    /// copied into other objects with [`JsonBuf::formatted`].
    pub fn object(members: impl FnOnce(&mut JsonBuf)) -> Vec<u8> {
        let mut j = JsonBuf::default();
        j.begin();
        members(&mut j);
        let mut bytes = j.finish().to_vec();
        bytes.pop();
        bytes
    }

    /// Opens a nested object under `k`; close it with [`JsonBuf::close`].
    #[inline(always)]
    pub fn open(&mut self, k: Key) -> &mut Self {
        self.key(k);
        self.buf.push(b'{');
        self.comma = false;
        self.depth += 1;
        self
    }

    /// An array of strings.
    pub fn str_array<'s>(&mut self, k: Key, items: impl Iterator<Item = &'s str>) -> &mut Self {
        self.key(k);
        self.buf.push(b'[');
        for (i, s) in items.enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.buf.push(b'"');
            let _ = Escaped(&mut self.buf).write_str(s);
            self.buf.push(b'"');
        }
        self.buf.push(b']');
        self
    }

    #[inline(always)]
    pub fn close(&mut self) -> &mut Self {
        self.depth -= 1;
        self.comma = true;
        self.buf.push(b'}');
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_json_in_field_order() {
        let mut j = JsonBuf::default();
        j.begin();
        j.str(k!("type"), "x")
            .num(k!("n"), 3u32)
            .float(k!("f"), 0.25)
            .opt_num(k!("none"), None)
            .open(k!("inner"))
            .bool(k!("b"), true)
            .str(k!("q"), "a\"b\\c\n")
            .close()
            .str_array(k!("list"), ["p", "q"].into_iter());
        let line = String::from_utf8(j.finish().to_vec()).unwrap();
        assert_eq!(
            line,
            "{\"type\":\"x\",\"n\":3,\"f\":0.25,\"none\":null,\"inner\":{\"b\":true,\"q\":\"a\\\"b\\\\c\\n\"},\"list\":[\"p\",\"q\"]}\n"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["inner"]["q"], "a\"b\\c\n");
    }

    /// Commas go between members only, whatever the nesting: a first member, an empty object,
    /// members after a closed object, and a second line after the first.
    #[test]
    fn commas_only_between_members() {
        let mut j = JsonBuf::default();
        j.begin();
        j.open(k!("empty")).close();
        j.open(k!("outer"))
            .open(k!("inner"))
            .num(k!("a"), 1u8)
            .close()
            .null(k!("b"))
            .close()
            .bool(k!("c"), false);
        j.finish();
        j.begin();
        j.open(k!("open")).num(k!("n"), 12u32);
        let lines = String::from_utf8(j.finish().to_vec()).unwrap();
        assert_eq!(
            lines,
            "{\"empty\":{},\"outer\":{\"inner\":{\"a\":1},\"b\":null},\"c\":false}\n\
             {\"open\":{\"n\":12}}\n"
        );
        for line in lines.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
    }

    /// `secs` prints what the float path prints, digit for digit.
    #[test]
    fn seconds_from_integers_match_the_float() {
        let mut cases = vec![
            0u64,
            1,
            7,
            10,
            999,
            1_000,
            31_641_000,
            1_000_000_000,
            2_050_000_000,
        ];
        cases.extend([
            119_999_999_999,
            86_400_000_000_123,
            (1 << 22) * 1_000_000_000 - 1,
        ]);
        // A spread of values of every size (a fixed linear congruential walk).
        let mut x: u64 = 12_345;
        for _ in 0..100_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let bits = 1 + (x >> 58) % 52; // 1..=52 bits
            cases.push((x >> 3) & ((1u64 << bits) - 1));
        }
        for ns in cases {
            let d = Duration(ns);
            let mut a = JsonBuf::default();
            a.begin();
            a.secs(k!("s"), d);
            let mut b = JsonBuf::default();
            b.begin();
            b.float(k!("s"), d.as_secs_f64());
            assert_eq!(a.finish(), b.finish(), "{ns} ns");
        }
    }
}
