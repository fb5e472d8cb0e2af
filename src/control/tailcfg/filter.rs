//! `tailcfg.FilterRule`: the packet filter as control sends it. Kept raw (address patterns as
//! text) until the filter module compiles it; `CapGrant` (application capabilities, not a
//! network allow) and the legacy `SrcBits` are not read.

use super::json::nullable;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct FilterRule {
    /// `*`, an IP, a CIDR, an inclusive `a-b` range, or `cap:<name>`.
    #[serde(rename = "SrcIPs", deserialize_with = "nullable")]
    pub src_ips: Vec<String>,
    #[serde(rename = "DstPorts", deserialize_with = "nullable")]
    pub dst_ports: Vec<NetPortRange>,
    /// IP protocol numbers; empty means TCP, UDP, ICMPv4 and ICMPv6. Values outside 0–255 are
    /// reserved and ignored by the enforcer, so they are kept wide here rather than failing.
    #[serde(rename = "IPProto", deserialize_with = "nullable")]
    pub ip_proto: Vec<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct NetPortRange {
    /// Same patterns as [`FilterRule::src_ips`].
    #[serde(rename = "IP")]
    pub ip: String,
    #[serde(rename = "Ports")]
    pub ports: PortRange,
}

/// Inclusive port range; `{0, 65535}` is "any port".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct PortRange {
    #[serde(rename = "First")]
    pub first: u16,
    #[serde(rename = "Last")]
    pub last: u16,
}
