//! What quad-100 knows, built from the netmap: the nodes' MagicDNS names and control's extra
//! records (answered locally), the suffixes it is authoritative for (unknown names there are
//! NXDOMAIN), and where every other name is forwarded (split-DNS routes by longest suffix,
//! else the tailnet's resolvers, else — as tailscaled falls back to the OS's own DNS settings —
//! the host's nameservers). The rules are tailscaled's (`net/dns/resolver/tsdns.go`,
//! `ipn/ipnlocal`'s DNS configuration), facts only.

use super::message::{record_type, Query, Rcode, RecordData};
use super::reverse;
use crate::control::tailcfg::{DnsConfig, Resolver};
use crate::netmap::{Peer, SelfNode};
use crate::prefix::Prefix;
use crate::resolver::name::Name;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Where quad-100 listens, and the IPv6 twin inside Tailscale's ULA range.
pub(crate) const SERVICE_V4: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 100);
pub(crate) const SERVICE_V6: Ipv6Addr = Ipv6Addr::new(0xfd7a, 0x115c, 0xa1e0, 0, 0, 0, 0, 0x53);
/// Whether `ip` is one of the service addresses.
pub(crate) fn is_service(ip: IpAddr) -> bool {
    ip == IpAddr::V4(SERVICE_V4) || ip == IpAddr::V6(SERVICE_V6)
}

/// The name a reverse lookup of the service address gets, and which resolves back to it.
const SERVICE_NAME: &str = "magicdns.localhost-tailscale-daemon.";
/// The reverse zones of Tailscale's address ranges (100.64.0.0/10, fd7a:115c:a1e0::/48),
/// which quad-100 answers for when MagicDNS is on.
const TAILSCALE_IPV6_REVERSE: &str = "0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa.";
const CGNAT_SECOND_OCTETS: std::ops::RangeInclusive<u8> = 64..=127;

/// How a question is settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// Answered here.
    Local(Rcode, Vec<RecordData>),
    /// Asked of these upstreams (none: SERVFAIL).
    Forward(Vec<SocketAddr>),
}

/// The tailnet's names and DNS routing, as of one netmap.
#[derive(Debug, Default)]
pub(crate) struct Zone {
    hosts: HashMap<Name, Vec<IpAddr>>,
    pointers: HashMap<IpAddr, Name>,
    /// Suffixes under which a name not in `hosts` does not exist.
    authoritative: Vec<Name>,
    /// Split DNS with resolvers, the suffix with most labels first.
    routes: Vec<(Name, Vec<SocketAddr>)>,
    default_upstreams: Vec<SocketAddr>,
    /// Upstreams weft cannot use (DoH, names), to be reported once.
    unsupported: Vec<String>,
}

/// Control's per-node capability that asks for AAAA answers with peers' IPv6 addresses.
pub(crate) const PEER_AAAA_CAPABILITY: &str = "magicdns-aaaa";

impl Zone {
    /// The zone for this node, its peers and the tailnet's DNS configuration; names no route
    /// covers go to the tailnet's resolvers or, when it has none, to `host_nameservers`.
    pub(crate) fn new<'a>(
        self_node: &SelfNode,
        peers: impl Iterator<Item = &'a Peer>,
        dns: &DnsConfig,
        host_nameservers: &[SocketAddr],
    ) -> Zone {
        let mut zone = Zone::default();
        zone.add_extra_records(dns);
        let own: Vec<IpAddr> = self_node.addresses.iter().map(Prefix::addr).collect();
        let addresses = AnswerAddresses {
            self_v6_only: own.iter().all(IpAddr::is_ipv6) && !own.is_empty(),
            peer_aaaa: self_node.magicdns_peer_aaaa,
        };
        zone.add_node(&self_node.dns_name, &own, addresses);
        for peer in peers {
            zone.add_node(&peer.dns_name, &peer.tailscale_ips(), addresses);
        }
        if let Some(suffix) = magic_suffix(&self_node.dns_name) {
            zone.authoritative.push(suffix);
        }
        zone.authoritative.extend(tailscale_reverse_zones());
        zone.add_routes(dns);
        let is_ours =
            |resolver: &Resolver| resolver.plain_address().is_ok_and(|a| is_service(a.ip()));
        zone.default_upstreams = match dns.resolvers.iter().all(is_ours) {
            true => host_nameservers.to_vec(),
            false => zone.upstreams(&dns.resolvers),
        };
        zone
    }

    /// Upstreams weft skipped because it cannot speak to them.
    pub(crate) fn unsupported_upstreams(&self) -> &[String] {
        &self.unsupported
    }

    pub(crate) fn resolve(&self, query: &Query) -> Resolution {
        if !query.is_internet() {
            return self.forward(&query.name);
        }
        if query.record_type == record_type::PTR {
            return self.resolve_pointer(&query.name);
        }
        if query.name.labels().last() == Some(b"onion") {
            // RFC 7686: never leaked to a resolver.
            return Resolution::Local(Rcode::NameError, Vec::new());
        }
        if query.name == service_name() {
            let service = [IpAddr::V4(SERVICE_V4), IpAddr::V6(SERVICE_V6)];
            return answer_with(&service, query.record_type);
        }
        match self.hosts.get(&query.name) {
            Some(addresses) => answer_with(addresses, query.record_type),
            None if self.is_authoritative(&query.name) => {
                Resolution::Local(Rcode::NameError, Vec::new())
            }
            None => self.forward(&query.name),
        }
    }

    fn resolve_pointer(&self, name: &Name) -> Resolution {
        if reverse::is_service_discovery(name) {
            return self.forward(name);
        }
        let Some(address) = reverse::address_of(name) else {
            return self.forward(name);
        };
        if is_service(address) {
            return Resolution::Local(Rcode::NoError, vec![RecordData::Pointer(service_name())]);
        }
        match self.pointers.get(&address) {
            Some(owner) => {
                Resolution::Local(Rcode::NoError, vec![RecordData::Pointer(owner.clone())])
            }
            None if self.is_authoritative(name) => Resolution::Local(Rcode::NameError, Vec::new()),
            None => self.forward(name),
        }
    }

    fn is_authoritative(&self, name: &Name) -> bool {
        self.authoritative.iter().any(|zone| name.is_within(zone))
    }

    /// The most specific route's upstreams, else the default ones.
    fn forward(&self, name: &Name) -> Resolution {
        let route = self.routes.iter().find(|(suffix, _)| name.is_within(suffix));
        let upstreams = route.map_or(&self.default_upstreams, |(_, upstreams)| upstreams);
        Resolution::Forward(upstreams.clone())
    }

    /// Control's extra records: A or AAAA (an empty type means either, by the value), others
    /// ignored. They come before the nodes, so a record can stand in for a node's name.
    fn add_extra_records(&mut self, dns: &DnsConfig) {
        for record in &dns.extra_records {
            if !matches!(record.record_type.as_str(), "" | "A" | "AAAA") {
                continue;
            }
            let (Ok(address), Ok(name)) =
                (record.value.parse::<IpAddr>(), Name::from_text(&record.name))
            else {
                continue;
            };
            self.pointers.entry(address).or_insert_with(|| name.clone());
            self.hosts.entry(name).or_default().push(address);
        }
    }

    /// A node's name and the addresses answered for it; every address points back to it.
    fn add_node(&mut self, dns_name: &str, addresses: &[IpAddr], answer: AnswerAddresses) {
        let Ok(name) = Name::from_text(dns_name) else {
            return;
        };
        if addresses.is_empty() {
            return;
        }
        for address in addresses {
            self.pointers.entry(*address).or_insert_with(|| name.clone());
        }
        self.hosts.entry(name).or_insert_with(|| answer.filter(addresses));
    }

    /// Split DNS: a route without resolvers makes its suffix answered here; one with
    /// resolvers sends its names to them. Extra records outside every route are answered
    /// here too.
    fn add_routes(&mut self, dns: &DnsConfig) {
        for (suffix, resolvers) in &dns.routes {
            let Ok(suffix) = Name::from_text(suffix) else {
                continue;
            };
            match resolvers.as_deref().unwrap_or_default() {
                [] => self.authoritative.push(suffix),
                resolvers => {
                    let upstreams = self.upstreams(resolvers);
                    self.routes.push((suffix, upstreams));
                }
            }
        }
        self.routes.sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.labels().count()));
        let mut uncovered = Vec::new();
        for name in dns.extra_records.iter().filter_map(|r| Name::from_text(&r.name).ok()) {
            let mut covered = self.authoritative.iter().chain(self.routes.iter().map(|(s, _)| s));
            if !covered.any(|suffix| name.is_within(suffix)) {
                uncovered.push(name);
            }
        }
        self.authoritative.extend(uncovered);
    }

    /// The plain `IP` or `IP:port` resolvers among `resolvers`, but for the service addresses
    /// (asking ourselves would send the query out again, to the LAN's resolver or in a loop);
    /// the others are noted.
    fn upstreams(&mut self, resolvers: &[Resolver]) -> Vec<SocketAddr> {
        let mut upstreams = Vec::new();
        for resolver in resolvers {
            match resolver.plain_address() {
                Ok(address) if is_service(address.ip()) => {}
                Ok(address) => upstreams.push(address),
                Err(_) => self.unsupported.push(resolver.addr.clone()),
            }
        }
        upstreams
    }
}

/// Which of a node's addresses its A/AAAA answers carry: tailscaled leaves out the IPv6
/// addresses of a node that has IPv4 unless control grants [`PEER_AAAA_CAPABILITY`], as not
/// every node speaks IPv6; a node with only IPv6 itself sees only IPv6 addresses.
#[derive(Clone, Copy)]
struct AnswerAddresses {
    self_v6_only: bool,
    peer_aaaa: bool,
}

impl AnswerAddresses {
    fn filter(self, addresses: &[IpAddr]) -> Vec<IpAddr> {
        let has_v4 = addresses.iter().any(IpAddr::is_ipv4);
        let keep = |address: &&IpAddr| match self.self_v6_only {
            true => address.is_ipv6(),
            false => address.is_ipv4() || !has_v4 || self.peer_aaaa,
        };
        addresses.iter().filter(keep).copied().collect()
    }
}

/// The answer for a name that exists with `addresses`: records of the asked type, none for
/// another type (NOERROR, the name exists), NOTIMP for the types of zone management.
fn answer_with(addresses: &[IpAddr], asked: u16) -> Resolution {
    let wanted = |address: &&IpAddr| match asked {
        record_type::A => address.is_ipv4(),
        record_type::AAAA => address.is_ipv6(),
        _ => asked == record_type::ANY,
    };
    match asked {
        record_type::NS | record_type::SOA | record_type::AXFR | record_type::HINFO => {
            Resolution::Local(Rcode::NotImplemented, Vec::new())
        }
        _ => Resolution::Local(
            Rcode::NoError,
            addresses.iter().filter(wanted).map(|a| RecordData::Address(*a)).collect(),
        ),
    }
}

/// The domains quad-100 answers or routes itself — the MagicDNS suffix of `self_dns_name`,
/// the split-DNS routes and the tailnet's reverse zones — in the dotted form with a trailing
/// dot: what an OS that sends quad-100 only some names must send it.
pub(crate) fn own_domains(self_dns_name: &str, dns: &DnsConfig) -> Vec<String> {
    let routes = dns.routes.keys().filter_map(|route| Name::from_text(route).ok());
    magic_suffix(self_dns_name)
        .into_iter()
        .chain(routes)
        .chain(tailscale_reverse_zones())
        .map(|name| name.to_text())
        .collect()
}

/// The MagicDNS suffix: the node's name without its first label.
fn magic_suffix(dns_name: &str) -> Option<Name> {
    let (_, suffix) = dns_name.trim_end_matches('.').split_once('.')?;
    Name::from_text(suffix).ok()
}

fn tailscale_reverse_zones() -> impl Iterator<Item = Name> {
    let v4 = CGNAT_SECOND_OCTETS.map(|octet| format!("{octet}.100.in-addr.arpa."));
    std::iter::once(TAILSCALE_IPV6_REVERSE.to_string())
        .chain(v4)
        .filter_map(|text| Name::from_text(&text).ok())
}

fn service_name() -> Name {
    Name::from_text(SERVICE_NAME).expect("a valid constant name")
}
