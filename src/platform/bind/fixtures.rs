//! Recorded routing tables for the tests: `netstat -rn` (BSDs, macOS) and `route -n`
//! (Linux) output as those tools print it, read back into [`RouteEntry`]s.
//!
//! Columns are found by their header names, as the notes advise (releases add and drop
//! columns). Destinations the tools abbreviate (`127`, `192.168.1`) are not defaults and
//! are skipped. The `I` flag is macOS's interface-scoped route.

use super::select::{InterfaceInfo, RouteEntry};
use crate::prefix::Prefix;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// macOS with a VPN's default through utun3, whose delegate is en0 (index 6), and en0's
/// own default left scoped.
pub(super) const DARWIN_UTUN_DEFAULT: &str = "\
Routing tables

Internet:
Destination        Gateway            Flags               Netif Expire
default            link#22            UCSg                utun3
default            192.168.1.1        UGScIg                en0
127                127.0.0.1          UCS                   lo0
192.168.1          link#6             UCS                   en0      !
192.168.1.1/32     link#6             UCS                   en0      !
";

/// macOS on plain Wi-Fi, with a second scoped default on Ethernet (en7).
pub(super) const DARWIN_EN0_DEFAULT: &str = "\
Routing tables

Internet:
Destination        Gateway            Flags               Netif Expire
default            192.168.1.1        UGScg                 en0
default            10.0.0.1           UGScIg                en7
127                127.0.0.1          UCS                   lo0
";

/// Linux with Wi-Fi and Ethernet both up: NetworkManager gives Ethernet the lower metric.
pub(super) const LINUX_TWO_DEFAULTS: &str = "\
Kernel IP routing table
Destination     Gateway         Genmask         Flags Metric Ref    Use Iface
0.0.0.0         192.168.1.1     0.0.0.0         UG    600    0        0 wlan0
0.0.0.0         10.0.0.1        0.0.0.0         UG    100    0        0 eth0
10.0.0.0        0.0.0.0         255.255.255.0   U     100    0        0 eth0
192.168.1.0     0.0.0.0         255.255.255.0   U     600    0        0 wlan0
";

/// OpenBSD as an exit-node client: our default (priority 2) outranks the DHCP one (8).
pub(super) const OPENBSD_OWN_DEFAULT: &str = "\
Routing tables

Internet:
Destination        Gateway            Flags   Refs      Use   Mtu  Prio Iface
default            100.64.0.1         GS         0        0     -     2 tun0
default            192.168.1.1        UGS        5      123     -     8 em0
100.64.0.1         100.64.0.1         UHl        1        0 32768     1 tun0
192.168.1/24       192.168.1.10       UCn        1        0     -     4 em0
";

/// FreeBSD on an IPv6-only network.
pub(super) const FREEBSD_IPV6_ONLY: &str = "\
Routing tables

Internet6:
Destination                       Gateway                       Flags     Netif Expire
::/96                             ::1                           URS         lo0
default                           fe80::1%vtnet0                UGS      vtnet0
::1                               link#2                        UHS         lo0
2001:db8:1::/64                   link#1                        U        vtnet0
";

/// NetBSD without any default route (only the local network).
pub(super) const NETBSD_NO_DEFAULT: &str = "\
Routing tables

Internet:
Destination        Gateway            Flags    Refs      Use    Mtu Interface
10.0.2/24          link#1             UC          -        -      -  wm0
127/8              127.0.0.1          UGRS        -        -  33176  lo0
127.0.0.1          lo0                UHl         -        -  33176  lo0
";

pub(super) fn interfaces(list: &[(&str, u32)]) -> Vec<InterfaceInfo> {
    list.iter()
        .map(|(name, index)| InterfaceInfo { name: name.to_string(), index: *index, up: true })
        .collect()
}

/// The routes of a recorded table.
pub(super) fn routes(table: &str) -> Vec<RouteEntry> {
    let mut ipv6 = false;
    let mut columns: Option<Columns> = None;
    let mut found = Vec::new();
    for line in table.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().copied() {
            None => continue,
            Some("Internet:") => ipv6 = false,
            Some("Internet6:") => ipv6 = true,
            Some("Kernel") => ipv6 = line.contains("IPv6"),
            Some("Destination") => columns = Some(Columns::of(&words)),
            Some(_) => found.extend(columns.as_ref().and_then(|c| c.route(&words, ipv6))),
        }
    }
    found
}

struct Columns {
    gateway: usize,
    mask: Option<usize>,
    flags: usize,
    metric: Option<usize>,
    interface: usize,
}

impl Columns {
    fn of(header: &[&str]) -> Columns {
        let at = |names: &[&str]| header.iter().position(|h| names.contains(h));
        Columns {
            gateway: at(&["Gateway"]).unwrap(),
            mask: at(&["Genmask"]),
            flags: at(&["Flags"]).unwrap(),
            metric: at(&["Metric", "Prio"]),
            interface: at(&["Netif", "Iface", "Interface"]).unwrap(),
        }
    }

    fn route(&self, words: &[&str], ipv6: bool) -> Option<RouteEntry> {
        let destination = destination(words[0], self.mask.map(|m| words[m]), ipv6)?;
        Some(RouteEntry {
            destination,
            gateway: words[self.gateway]
                .split('%')
                .next()?
                .parse()
                .ok()
                .filter(|ip: &IpAddr| !ip.is_unspecified()),
            interface: words[self.interface].to_string(),
            metric: self.metric.and_then(|m| words[m].parse().ok()).unwrap_or(0),
            scoped: words[self.flags].contains('I'),
        })
    }
}

fn destination(word: &str, mask: Option<&str>, ipv6: bool) -> Option<Prefix> {
    if word == "default" {
        let any: IpAddr =
            if ipv6 { Ipv6Addr::UNSPECIFIED.into() } else { Ipv4Addr::UNSPECIFIED.into() };
        return Prefix::new(any, 0).ok();
    }
    match mask {
        Some(mask) => {
            let bits = u32::from(mask.parse::<Ipv4Addr>().ok()?).count_ones();
            Prefix::new(word.parse().ok()?, bits as u8).ok()
        }
        None => word.parse().ok(),
    }
}
