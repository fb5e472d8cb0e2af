//! One `address.port` column of BSD-style `netstat` output (the BSDs, macOS, illumos): the
//! port follows the last `.`, `*` stands for any address or any port, IPv6 addresses may
//! carry a `%zone`.

use std::net::IpAddr;

/// A local or remote column, read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Endpoint {
    /// `None` for `*`.
    pub port: Option<u16>,
    /// The address is a loopback one (127/8, `::1`, or 127/8 mapped into IPv6).
    pub loopback: bool,
}

/// Reads `column`; `None` when it is not an `address.port` at all.
pub(super) fn parse(column: &[u8]) -> Option<Endpoint> {
    let column = std::str::from_utf8(column).ok()?;
    let (host, port) = column.rsplit_once('.')?;
    let port = match port {
        "*" => None,
        digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse().ok()?)
        }
        _ => return None,
    };
    Some(Endpoint { port, loopback: is_loopback(host) })
}

/// Whether the host part names a loopback address; `*` and names that are not addresses
/// (netstat never prints them with `-n`) do not.
fn is_loopback(host: &str) -> bool {
    let without_zone = host.split_once('%').map_or(host, |(address, _)| address);
    match without_zone.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(column: &str) -> Option<(Option<u16>, bool)> {
        parse(column.as_bytes()).map(|e| (e.port, e.loopback))
    }

    #[test]
    fn reads_the_port_after_the_last_dot() {
        assert_eq!(read("*.22"), Some((Some(22), false)));
        assert_eq!(read("192.0.2.7.8080"), Some((Some(8080), false)));
        assert_eq!(read("fe80::1%em0.546"), Some((Some(546), false)));
        assert_eq!(read("*.*"), Some((None, false)));
        assert_eq!(read("2001:db8::5.443"), Some((Some(443), false)));
    }

    #[test]
    fn knows_loopback_addresses() {
        assert_eq!(read("127.0.0.1.631"), Some((Some(631), true)));
        assert_eq!(read("127.0.0.53.53"), Some((Some(53), true)));
        assert_eq!(read("::1.8187"), Some((Some(8187), true)));
        assert_eq!(read("::ffff:127.0.0.1.25"), Some((Some(25), true)));
        assert_eq!(read("::ffff:192.0.2.1.25"), Some((Some(25), false)));
    }

    #[test]
    fn refuses_what_is_no_address_and_port() {
        for column in ["", "22", "*.", "*.x22", "*.65536", "*.-1", "LISTEN", "\u{fffd}.22x"] {
            assert_eq!(read(column), None, "{column:?}");
        }
        assert_eq!(parse(b"\xff\xfe.22"), None);
    }
}
