//! Numbers and addresses appended to text without `format!`: a table or timeline of a large
//! capture formats millions of them, and the general formatting machinery (padding, dynamic
//! dispatch per piece) costs more than the analysis that produced them.

use std::fmt::Write;
use std::net::{SocketAddr, SocketAddrV4};

/// Appends `n` in decimal.
pub fn uint<W: Write>(w: &mut W, n: impl Into<u64>) {
    let _ = w.write_str(itoa::Buffer::new().format(n.into()));
}

/// Appends `a` as `Display` would (`10.0.0.1:80`, `[::1]:80`); IPv4, the common case, octet
/// by octet.
pub fn socket_addr<W: Write>(w: &mut W, a: &SocketAddr) {
    match a {
        SocketAddr::V4(v4) => {
            let (text, len) = ipv4_text(v4);
            // Only ASCII digits, dots and a colon were written.
            let _ = w.write_str(std::str::from_utf8(&text[..len]).unwrap_or_default());
        }
        SocketAddr::V6(_) => {
            let _ = write!(w, "{a}");
        }
    }
}

/// `a.b.c.d:port` put together on the stack, to be appended in one piece (appending the nine
/// pieces one by one cost a copy call each); the text is the first `len` bytes.
pub fn ipv4_text(a: &SocketAddrV4) -> ([u8; 24], usize) {
    // 21 bytes at most ("255.255.255.255:65535"), and room for the fourth byte that each
    // octet's copy writes past its digits (overwritten by what follows, or cut off).
    let mut text = [0u8; 24];
    let mut len = 0;
    for octet in a.ip().octets() {
        let digits = OCTET_TEXT[usize::from(octet)];
        text[len..len + 4].copy_from_slice(&digits);
        len += usize::from(digits[3]);
        text[len] = b'.';
        len += 1;
    }
    text[len - 1] = b':';
    len += put_decimal(&mut text[len..], u32::from(a.port()));
    (text, len)
}

/// Every octet's decimal digits, and in the fourth byte how many there are.
static OCTET_TEXT: [[u8; 4]; 256] = {
    let mut table = [[0u8; 4]; 256];
    let mut n = 0;
    while n < 256 {
        let (hundreds, tens, ones) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
        table[n] = match n {
            0..=9 => [b'0' + ones, 0, 0, 1],
            10..=99 => [b'0' + tens, b'0' + ones, 0, 2],
            _ => [b'0' + hundreds, b'0' + tens, b'0' + ones, 3],
        };
        n += 1;
    }
    table
};

/// Writes `n` (at most 99,999) in decimal at the start of `out`; returns how many digits.
fn put_decimal(out: &mut [u8], mut n: u32) -> usize {
    let digits = match n {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1_000..=9_999 => 4,
        _ => 5,
    };
    for d in out[..digits].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_print_as_display_does() {
        for a in [
            "10.0.0.1:80",
            "255.255.255.255:65535",
            "0.0.0.0:0",
            "[::1]:8899",
            "1.22.133.4:9",
            "100.10.1.0:10000",
            "9.99.199.255:1234",
        ] {
            let addr: SocketAddr = a.parse().unwrap();
            let mut s = String::new();
            socket_addr(&mut s, &addr);
            assert_eq!(s, addr.to_string());
        }
        // Every octet in every position, with ports of every length.
        for octet in 0..=255u8 {
            for (i, port) in [0u16, 9, 10, 99, 100, 999, 1000, 9999, 10000, 65535]
                .into_iter()
                .enumerate()
            {
                let mut octets = [1, 22, 133, 4];
                octets[i % 4] = octet;
                let addr = SocketAddr::from((octets, port));
                let mut s = String::new();
                socket_addr(&mut s, &addr);
                assert_eq!(s, addr.to_string());
            }
        }
        let mut s = String::new();
        uint(&mut s, u64::MAX);
        assert_eq!(s, "18446744073709551615");
    }
}
