//! `tailcfg.DNSConfig`: MagicDNS, resolvers and split DNS, kept as control sends it for the dns
//! module to apply.

use super::json::nullable;
use crate::resolver::DNS_PORT;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct DnsConfig {
    #[serde(rename = "Resolvers", deserialize_with = "nullable")]
    pub resolvers: Vec<Resolver>,
    /// Split DNS: suffix → resolvers. An empty or null list means "answer locally at
    /// 100.100.100.100".
    #[serde(rename = "Routes", deserialize_with = "nullable")]
    pub routes: BTreeMap<String, Option<Vec<Resolver>>>,
    #[serde(rename = "FallbackResolvers", deserialize_with = "nullable")]
    pub fallback_resolvers: Vec<Resolver>,
    /// Search domains, without trailing dots.
    #[serde(rename = "Domains", deserialize_with = "nullable")]
    pub domains: Vec<String>,
    /// MagicDNS on.
    #[serde(rename = "Proxied")]
    pub proxied: bool,
    /// Deprecated plain nameservers.
    #[serde(rename = "Nameservers", deserialize_with = "nullable")]
    pub nameservers: Vec<IpAddr>,
    #[serde(rename = "CertDomains", deserialize_with = "nullable")]
    pub cert_domains: Vec<String>,
    #[serde(rename = "ExtraRecords", deserialize_with = "nullable")]
    pub extra_records: Vec<DnsRecord>,
    #[serde(rename = "ExitNodeFilteredSet", deserialize_with = "nullable")]
    pub exit_node_filtered_set: Vec<String>,
}

/// An upstream: `8.8.8.8`, `1.2.3.4:53`, a DoH URL, or `http://<node>:port/…`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Resolver {
    #[serde(rename = "Addr")]
    pub addr: String,
    #[serde(rename = "BootstrapResolution", deserialize_with = "nullable")]
    pub bootstrap_resolution: Vec<IpAddr>,
    #[serde(rename = "UseWithExitNode")]
    pub use_with_exit_node: bool,
}

impl Resolver {
    /// Where a plain DNS-over-UDP resolver listens: `IP` (port 53) or `IP:port` (IPv6 in
    /// brackets); why not for a DNS-over-HTTPS or -TLS URL or anything else.
    pub(crate) fn plain_address(&self) -> Result<SocketAddr, NotPlain> {
        if let Ok(ip) = self.addr.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, DNS_PORT));
        }
        match self.addr.parse::<SocketAddr>() {
            Ok(address) => Ok(address),
            Err(_) if self.addr.contains("://") => Err(NotPlain::Url),
            Err(_) => Err(NotPlain::NotAnAddress),
        }
    }
}

/// Why a [`Resolver`] is no plain DNS server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotPlain {
    /// DNS over HTTPS or TLS.
    Url,
    NotAnAddress,
}

impl std::fmt::Display for NotPlain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotPlain::Url => "not a plain DNS server (DNS over HTTPS or TLS)",
            NotPlain::NotAnAddress => "not an IP address",
        })
    }
}

/// An extra record MagicDNS answers; `Type` empty means A or AAAA by the value's family.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct DnsRecord {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Type")]
    pub record_type: String,
    #[serde(rename = "Value")]
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(addr: &str) -> Result<SocketAddr, NotPlain> {
        Resolver { addr: addr.into(), ..Resolver::default() }.plain_address()
    }

    #[test]
    fn a_plain_resolver_is_an_address_with_port_53_unless_it_names_another() {
        assert_eq!(plain("192.0.2.53"), Ok("192.0.2.53:53".parse().unwrap()));
        assert_eq!(plain("2001:db8::53"), Ok("[2001:db8::53]:53".parse().unwrap()));
        assert_eq!(plain("[2001:db8::53]:5353"), Ok("[2001:db8::53]:5353".parse().unwrap()));
        assert_eq!(plain("https://dns.example/dns-query"), Err(NotPlain::Url));
        assert_eq!(plain("tls://dns.example"), Err(NotPlain::Url));
        assert_eq!(plain("dns.example"), Err(NotPlain::NotAnAddress));
    }
}
