//! Inclusive address ranges: the one shape every address pattern of a filter rule compiles to
//! (`*`, an IP, a CIDR, `a-b`), and the shape of this node's own addresses.

use crate::prefix::Prefix;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `first..=last`, both of one family. `IpAddr` orders every IPv4 address before every IPv6
/// one, so an address of the other family is never inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct AddrRange {
    first: IpAddr,
    last: IpAddr,
}

/// What a rule's address text names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AddressPattern {
    /// `*`: every address of both families.
    Everything,
    Range(AddrRange),
    /// `cap:<name>`: peers holding a node capability.
    Capability,
}

impl AddrRange {
    pub(super) const ALL_V4: AddrRange = AddrRange {
        first: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        last: IpAddr::V4(Ipv4Addr::BROADCAST),
    };
    pub(super) const ALL_V6: AddrRange = AddrRange {
        first: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        last: IpAddr::V6(Ipv6Addr::from_bits(u128::MAX)),
    };

    /// Every address of `prefix` (its host bits ignored).
    pub(super) fn of_prefix(prefix: Prefix) -> AddrRange {
        let network = prefix.network();
        let network_bits = u32::from(network.bits());
        let last = match network.addr() {
            IpAddr::V4(a) => {
                let hosts = u32::MAX.checked_shr(network_bits).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from_bits(a.to_bits() | hosts))
            }
            IpAddr::V6(a) => {
                let hosts = u128::MAX.checked_shr(network_bits).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from_bits(a.to_bits() | hosts))
            }
        };
        AddrRange { first: network.addr(), last }
    }

    pub(super) fn contains(&self, addr: IpAddr) -> bool {
        self.first <= addr && addr <= self.last
    }

    pub(super) fn overlaps(&self, other: &AddrRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

impl AddressPattern {
    /// Parses the text of a `SrcIPs` entry or a `DstPorts` IP, as tailscaled's filter does: an
    /// IP, a CIDR whose host bits are clear, an inclusive `a-b` range of one family with
    /// `a <= b`, `*`, or `cap:<name>`.
    pub(super) fn parse(text: &str) -> Result<AddressPattern, String> {
        if text == "*" {
            return Ok(AddressPattern::Everything);
        }
        if text.starts_with("cap:") {
            return Ok(AddressPattern::Capability);
        }
        let range = if text.contains('/') {
            parse_cidr(text)?
        } else if let Some((first, last)) = text.split_once('-') {
            parse_span(parse_addr(first)?, parse_addr(last)?)?
        } else {
            let addr = parse_addr(text)?;
            AddrRange { first: addr, last: addr }
        };
        Ok(AddressPattern::Range(range))
    }

    /// The ranges the pattern covers; none for a capability, which names no address.
    pub(super) fn ranges(self) -> impl Iterator<Item = AddrRange> {
        let (first, second) = match self {
            AddressPattern::Everything => (Some(AddrRange::ALL_V4), Some(AddrRange::ALL_V6)),
            AddressPattern::Range(range) => (Some(range), None),
            AddressPattern::Capability => (None, None),
        };
        first.into_iter().chain(second)
    }
}

fn parse_addr(text: &str) -> Result<IpAddr, String> {
    text.parse().map_err(|_| format!("{text:?} is not an IP address"))
}

fn parse_cidr(text: &str) -> Result<AddrRange, String> {
    let prefix: Prefix = text.parse()?;
    if prefix.network() != prefix {
        return Err(format!("{text:?} has host bits set"));
    }
    Ok(AddrRange::of_prefix(prefix))
}

fn parse_span(first: IpAddr, last: IpAddr) -> Result<AddrRange, String> {
    if first.is_ipv4() != last.is_ipv4() || first > last {
        return Err(format!("{first}-{last} is not an address range"));
    }
    Ok(AddrRange { first, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> AddrRange {
        match AddressPattern::parse(text) {
            Ok(AddressPattern::Range(r)) => r,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(AddressPattern::parse("*"), Ok(AddressPattern::Everything));
        assert_eq!(AddressPattern::parse("cap:funnel"), Ok(AddressPattern::Capability));
        assert!(range("100.64.0.1").contains(ip("100.64.0.1")));
        assert!(!range("100.64.0.1").contains(ip("100.64.0.2")));
        let cgnat = range("100.64.0.0/10");
        assert!(cgnat.contains(ip("100.127.255.255")) && !cgnat.contains(ip("100.128.0.0")));
        let span = range("10.0.0.250-10.0.1.5");
        assert!(span.contains(ip("10.0.0.255")) && span.contains(ip("10.0.1.5")));
        assert!(!span.contains(ip("10.0.1.6")) && !span.contains(ip("10.0.0.249")));
        let v6 = range("fd7a:115c:a1e0::/48");
        assert!(v6.contains(ip("fd7a:115c:a1e0:ffff::1")) && !v6.contains(ip("100.64.0.1")));
        assert!(
            range("0.0.0.0/0").contains(ip("8.8.8.8")) && !range("0.0.0.0/0").contains(ip("::"))
        );
        assert!(range("::/0").contains(ip("::ffff:1.2.3.4")));
        let everything: Vec<_> = AddressPattern::Everything.ranges().collect();
        assert_eq!(everything, [AddrRange::ALL_V4, AddrRange::ALL_V6]);
        assert_eq!(AddressPattern::Capability.ranges().count(), 0);
    }

    #[test]
    fn refuses_what_tailscaled_refuses() {
        for bad in
            ["", "10.0.0.1/8", "10.0.0.9-10.0.0.1", "10.0.0.1-::1", "1.2.3.4/33", "a-b-c", "x"]
        {
            assert!(AddressPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_become_ranges_and_overlap() {
        let host = AddrRange::of_prefix("100.64.0.1/32".parse().unwrap());
        assert_eq!(host, range("100.64.0.1"));
        let interface = AddrRange::of_prefix("100.64.1.2/10".parse().unwrap());
        assert_eq!(interface, range("100.64.0.0/10"));
        assert!(interface.overlaps(&host) && host.overlaps(&interface));
        assert!(!host.overlaps(&range("100.64.0.2-100.64.0.9")));
        assert!(!AddrRange::ALL_V4.overlaps(&AddrRange::ALL_V6));
        assert_eq!(AddrRange::of_prefix("::/0".parse().unwrap()), AddrRange::ALL_V6);
    }
}
