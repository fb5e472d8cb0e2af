//! `tailcfg.DNSConfig`: MagicDNS, resolvers and split DNS, kept as control sends it for the dns
//! module to apply.

use super::json::nullable;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

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
