//! Reverse-lookup names (RFC 1035 §3.5, RFC 3596 §2.5): the address a PTR question is about.

use crate::resolver::name::Name;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address `name` is the reverse name of: `d.c.b.a.in-addr.arpa.` for IPv4, 32 nibbles
/// then `ip6.arpa.` for IPv6. `None` for any other name, which the responder forwards.
pub(crate) fn address_of(name: &Name) -> Option<IpAddr> {
    let labels: Vec<&[u8]> = name.labels().collect();
    match labels.as_slice() {
        [octets @ .., b"in-addr", b"arpa"] if octets.len() == 4 => {
            let mut address = [0u8; 4];
            for (slot, label) in address.iter_mut().rev().zip(octets) {
                *slot = decimal_octet(label)?;
            }
            Some(IpAddr::V4(Ipv4Addr::from(address)))
        }
        [nibbles @ .., b"ip6", b"arpa"] if nibbles.len() == 32 => {
            let mut address = 0u128;
            for label in nibbles.iter().rev() {
                let [digit] = label else { return None };
                address = address << 4 | u128::from(char::from(*digit).to_digit(16)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(address)))
        }
        _ => None,
    }
}

/// A decimal 0–255 without leading zeros, as reverse names write octets.
fn decimal_octet(label: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(label).ok()?;
    if text.len() > 1 && text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// DNS-SD's browse names (RFC 6763 §11: `b`, `db`, `r`, `dr`, `lb` under `_dns-sd._udp`):
/// reverse-looking names that are service discovery, never a node's, so always forwarded.
pub(crate) fn is_service_discovery(name: &Name) -> bool {
    let mut labels = name.labels();
    matches!(labels.next(), Some(b"b" | b"db" | b"r" | b"dr" | b"lb"))
        && labels.next() == Some(b"_dns-sd")
        && labels.next() == Some(b"_udp")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        Name::from_text(text).unwrap()
    }

    #[test]
    fn reverse_names_become_addresses() {
        assert_eq!(address_of(&name("2.0.64.100.in-addr.arpa.")), Some([100, 64, 0, 2].into()));
        assert_eq!(
            address_of(&name(
                "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.E.1.a.c.5.1.1.a.7.D.F.ip6.arpa"
            )),
            Some("fd7a:115c:a1e0::3".parse().unwrap())
        );
        for other in [
            "64.100.in-addr.arpa",
            "256.0.64.100.in-addr.arpa",
            "02.0.64.100.in-addr.arpa",
            "x.0.64.100.in-addr.arpa",
            "peer.tail.ts.net",
            "0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa",
            "10.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa",
            "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa",
        ] {
            assert_eq!(address_of(&name(other)), None, "{other}");
        }
    }

    #[test]
    fn service_discovery_names_are_recognised() {
        assert!(is_service_discovery(&name("lb._dns-sd._udp.0.64.100.in-addr.arpa")));
        assert!(!is_service_discovery(&name("x._dns-sd._udp.0.64.100.in-addr.arpa")));
        assert!(!is_service_discovery(&name("2.0.64.100.in-addr.arpa")));
    }
}
