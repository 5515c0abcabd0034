//! TCP sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 §3.4).
//!
//! `a` is "before" `b` when the signed 32-bit difference `b - a` is positive, which is what every
//! TCP implementation and Wireshark do; it stays right across the wrap from 0xFFFFFFFF to 0.

use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// `self + n` modulo 2^32.
    pub fn plus(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }

    /// Signed distance from `other` to `self` (positive when `self` is after `other`).
    pub fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// Offset of `self` from a base (an ISN), for relative numbers as tcpdump prints them.
    pub fn relative_to(self, base: SeqNum) -> u32 {
        self.0.wrapping_sub(base.0)
    }

    pub fn is_before(self, other: SeqNum) -> bool {
        self.diff(other) < 0
    }

    pub fn is_after(self, other: SeqNum) -> bool {
        self.diff(other) > 0
    }

    /// The later of the two in sequence space.
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self.is_before(other) { other } else { self }
    }
}

impl PartialOrd for SeqNum {
    /// Ordering modulo 2^32; two numbers exactly 2^31 apart compare as "before" one way, the
    /// same convention as the kernels'.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_survives_the_wrap() {
        let a = SeqNum(0xFFFF_FFF0);
        let b = a.plus(0x20); // wraps to 0x10
        assert_eq!(b, SeqNum(0x10));
        assert!(a.is_before(b));
        assert!(b.is_after(a));
        assert_eq!(b.diff(a), 0x20);
        assert_eq!(a.diff(b), -0x20);
        assert_eq!(b.relative_to(a), 0x20);
        assert_eq!(a.max(b), b);
        assert!(a < b);
    }

    #[test]
    fn equal_numbers_are_neither_before_nor_after() {
        let a = SeqNum(7);
        assert!(!a.is_before(a));
        assert!(!a.is_after(a));
    }
}
