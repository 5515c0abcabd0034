//! Numbers and addresses appended to text without `format!`: a table or timeline of a large
//! capture formats millions of them, and the general formatting machinery (padding, dynamic
//! dispatch per piece) costs more than the analysis that produced them.

use std::fmt::Write;
use std::net::SocketAddr;

/// Appends `n` in decimal.
pub fn uint<W: Write>(w: &mut W, n: impl Into<u64>) {
    let _ = w.write_str(itoa::Buffer::new().format(n.into()));
}

/// Appends `a` as `Display` would (`10.0.0.1:80`, `[::1]:80`); IPv4, the common case, octet
/// by octet.
pub fn socket_addr<W: Write>(w: &mut W, a: &SocketAddr) {
    match a {
        SocketAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    let _ = w.write_char('.');
                }
                let _ = w.write_str(digits.format(octet));
            }
            let _ = w.write_char(':');
            let _ = w.write_str(digits.format(v4.port()));
        }
        SocketAddr::V6(_) => {
            let _ = write!(w, "{a}");
        }
    }
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
        ] {
            let addr: SocketAddr = a.parse().unwrap();
            let mut s = String::new();
            socket_addr(&mut s, &addr);
            assert_eq!(s, addr.to_string());
        }
        let mut s = String::new();
        uint(&mut s, u64::MAX);
        assert_eq!(s, "18446744073709551615");
    }
}
