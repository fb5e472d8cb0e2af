//! Control's `FilterRule`s compiled for one node: address patterns parsed into ranges, the
//! protocol list into a bit set, and destinations that are not this node's dropped, so a packet
//! is checked only against what can concern it.

use super::address_range::{AddrRange, AddressPattern};
use super::protocol_set::ProtocolSet;
use crate::control::tailcfg::{FilterRule, NetPortRange};
use std::net::IpAddr;
use std::ops::RangeInclusive;

/// Allows packets from any of `sources` to any of `destinations`, for `protocols`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Rule {
    protocols: ProtocolSet,
    sources: Vec<AddrRange>,
    destinations: Vec<Destination>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Destination {
    addresses: AddrRange,
    ports: RangeInclusive<u16>,
}

/// What a rule must grant to admit a packet, which depends on what its protocol carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    /// TCP, UDP, SCTP: the protocol, and the destination port within a destination's range.
    Port { protocol: u8, port: u16 },
    /// ICMP: the addresses alone, whatever the rule's protocols and ports — a peer allowed to
    /// reach any port of an address may also ping it.
    AddressesOnly,
    /// Protocols without ports: the protocol, and a destination open on every port.
    WholeAddress { protocol: u8 },
}

impl Scope {
    fn admits_protocols(self, protocols: &ProtocolSet) -> bool {
        match self {
            Scope::Port { protocol, .. } | Scope::WholeAddress { protocol } => {
                protocols.contains(protocol)
            }
            Scope::AddressesOnly => true,
        }
    }

    fn admits_ports(self, ports: &RangeInclusive<u16>) -> bool {
        match self {
            Scope::Port { port, .. } => ports.contains(&port),
            Scope::AddressesOnly => true,
            Scope::WholeAddress { .. } => *ports == (0..=u16::MAX),
        }
    }
}

impl Rule {
    pub(super) fn allows(&self, src: IpAddr, dst: IpAddr, scope: Scope) -> bool {
        scope.admits_protocols(&self.protocols)
            && self.sources.iter().any(|range| range.contains(src))
            && self
                .destinations
                .iter()
                .any(|d| d.addresses.contains(dst) && scope.admits_ports(&d.ports))
    }
}

/// The rules that can match, and a description of every entry that had to be skipped.
#[derive(Debug, Default)]
pub(super) struct Compiled {
    pub rules: Vec<Rule>,
    pub problems: Vec<String>,
}

/// Compiles control's rules for a node whose addresses (and served routes) are `local`.
/// Like tailscaled, a bad address entry is skipped and the rest of its rule kept. `cap:`
/// sources match no one: weft does not evaluate node capabilities, so such a grant stays
/// closed rather than open.
pub(super) fn compile(wire: &[FilterRule], local: &[AddrRange]) -> Compiled {
    let mut compiled = Compiled::default();
    for (index, rule) in wire.iter().enumerate() {
        let mut problems = Vec::new();
        let sources = compile_sources(&rule.src_ips, &mut problems);
        let destinations = compile_destinations(&rule.dst_ports, local, &mut problems);
        if !sources.is_empty() && !destinations.is_empty() {
            let protocols = ProtocolSet::from_wire(&rule.ip_proto);
            compiled.rules.push(Rule { protocols, sources, destinations });
        }
        compiled.problems.extend(problems.into_iter().map(|p| format!("filter rule {index}: {p}")));
    }
    compiled
}

fn compile_sources(texts: &[String], problems: &mut Vec<String>) -> Vec<AddrRange> {
    let mut sources = Vec::new();
    for text in texts {
        match AddressPattern::parse(text) {
            Ok(pattern) => sources.extend(pattern.ranges()),
            Err(e) => problems.push(format!("SrcIPs: {e}")),
        }
    }
    sources
}

fn compile_destinations(
    wire: &[NetPortRange],
    local: &[AddrRange],
    problems: &mut Vec<String>,
) -> Vec<Destination> {
    let mut destinations = Vec::new();
    for dst in wire {
        match AddressPattern::parse(&dst.ip) {
            Ok(AddressPattern::Capability) => {
                problems.push(format!("DstPorts: {:?} is a capability, not an address", dst.ip))
            }
            Ok(pattern) => destinations.extend(
                pattern
                    .ranges()
                    .filter(|addresses| local.iter().any(|l| l.overlaps(addresses)))
                    .map(|addresses| Destination {
                        addresses,
                        ports: dst.ports.first..=dst.ports.last,
                    }),
            ),
            Err(e) => problems.push(format!("DstPorts: {e}")),
        }
    }
    destinations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::tailcfg::PortRange;

    use crate::packet::wire::{PROTO_TCP as TCP, PROTO_UDP as UDP};
    const GRE: u8 = 47;

    fn rule(src: &[&str], dst: &[(&str, u16, u16)], protocols: &[i64]) -> FilterRule {
        FilterRule {
            src_ips: src.iter().map(|s| s.to_string()).collect(),
            dst_ports: dst
                .iter()
                .map(|&(ip, first, last)| NetPortRange {
                    ip: ip.to_string(),
                    ports: PortRange { first, last },
                })
                .collect(),
            ip_proto: protocols.to_vec(),
        }
    }

    fn local() -> Vec<AddrRange> {
        ["100.64.0.1", "fd7a:115c:a1e0::1"]
            .iter()
            .map(|a| AddrRange::of_prefix(crate::prefix::Prefix::host(a.parse().unwrap())))
            .collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn allow_all_covers_both_families_and_every_port() {
        let compiled = compile(&[rule(&["*"], &[("*", 0, 65535)], &[])], &local());
        assert!(compiled.problems.is_empty());
        let [allow_all] = &compiled.rules[..] else { panic!("{compiled:?}") };
        let port = |port| Scope::Port { protocol: TCP, port };
        assert!(allow_all.allows(ip("100.100.1.1"), ip("100.64.0.1"), port(0)));
        assert!(allow_all.allows(ip("fd7a:115c:a1e0::9"), ip("fd7a:115c:a1e0::1"), port(65535)));
        assert!(allow_all.allows(ip("8.8.8.8"), ip("100.64.0.1"), Scope::AddressesOnly));
        // The default protocols leave out e.g. GRE even with every port open.
        let gre = Scope::WholeAddress { protocol: GRE };
        assert!(!allow_all.allows(ip("100.100.1.1"), ip("100.64.0.1"), gre));
    }

    #[test]
    fn ports_are_inclusive_and_protocols_respected() {
        let wire = rule(&["100.64.0.2"], &[("100.64.0.1", 22, 23)], &[TCP.into()]);
        let compiled = compile(&[wire], &local());
        let [ssh] = &compiled.rules[..] else { panic!("{compiled:?}") };
        let peer = ip("100.64.0.2");
        let me = ip("100.64.0.1");
        for (protocol, port, allowed) in
            [(TCP, 22, true), (TCP, 23, true), (TCP, 21, false), (TCP, 24, false), (UDP, 22, false)]
        {
            assert_eq!(ssh.allows(peer, me, Scope::Port { protocol, port }), allowed, "{port}");
        }
        assert!(!ssh.allows(ip("100.64.0.3"), me, Scope::Port { protocol: TCP, port: 22 }));
        assert!(ssh.allows(peer, me, Scope::AddressesOnly), "ICMP follows any open port");
        assert!(!ssh.allows(peer, me, Scope::WholeAddress { protocol: TCP }), "not all ports");
    }

    #[test]
    fn destinations_elsewhere_are_dropped() {
        let wire = [
            rule(&["*"], &[("100.64.0.9", 0, 65535)], &[]),
            rule(&["*"], &[("100.64.0.0-100.64.0.5", 80, 80)], &[]),
            rule(&["10.0.0.0/8"], &[("fd7a:115c:a1e0::/48", 443, 443)], &[]),
        ];
        let compiled = compile(&wire, &local());
        assert_eq!(compiled.rules.len(), 2, "the rule for 100.64.0.9 alone is gone");
        // IPv4 sources with only IPv6 destinations: no packet has both, so nothing matches.
        let v6 = Scope::Port { protocol: TCP, port: 443 };
        assert!(!compiled.rules[1].allows(ip("fd7a:115c:a1e0::2"), ip("fd7a:115c:a1e0::1"), v6));
    }

    #[test]
    fn bad_entries_are_reported_and_skipped() {
        let wire = [
            rule(&["bogus", "100.64.0.2"], &[("100.64.0.1", 22, 22), ("cap:x", 1, 1)], &[]),
            rule(&["cap:tailscale.com/cap/ssh"], &[("100.64.0.1", 22, 22)], &[]),
            rule(&["*"], &[("100.64.0.1/24", 0, 65535)], &[]),
        ];
        let compiled = compile(&wire, &local());
        assert_eq!(compiled.rules.len(), 1);
        assert!(compiled.rules[0].allows(
            ip("100.64.0.2"),
            ip("100.64.0.1"),
            Scope::Port { protocol: TCP, port: 22 }
        ));
        assert_eq!(compiled.problems.len(), 3, "{:?}", compiled.problems);
        assert!(compiled.problems[0].starts_with("filter rule 0: SrcIPs"));
        assert!(compiled.problems[2].contains("host bits"));
    }
}
