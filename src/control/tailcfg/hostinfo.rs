//! `tailcfg.Hostinfo`: how a node describes itself to control (and, through control, to its
//! peers). weft sends it in register and map requests and reads peers' copies for status.
//! Every field is optional on the wire, so empty ones are left out of what weft sends.

use super::json::nullable;
use super::RegionId;
use crate::prefix::Prefix;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Hostinfo {
    #[serde(rename = "IPNVersion", skip_serializing_if = "String::is_empty")]
    pub ipn_version: String,
    #[serde(rename = "FrontendLogID", skip_serializing_if = "String::is_empty")]
    pub frontend_log_id: String,
    /// The official client refuses to register without one; servers don't check.
    #[serde(rename = "BackendLogID", skip_serializing_if = "String::is_empty")]
    pub backend_log_id: String,
    /// Go's GOOS spelling, except `macOS`: `linux`, `freebsd`, `openbsd`, `illumos`…
    #[serde(rename = "OS", skip_serializing_if = "String::is_empty")]
    pub os: String,
    #[serde(rename = "OSVersion", skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    #[serde(rename = "Container", skip_serializing_if = "Option::is_none")]
    pub container: Option<bool>,
    #[serde(rename = "Distro", skip_serializing_if = "String::is_empty")]
    pub distro: String,
    #[serde(rename = "DistroVersion", skip_serializing_if = "String::is_empty")]
    pub distro_version: String,
    #[serde(rename = "DistroCodeName", skip_serializing_if = "String::is_empty")]
    pub distro_code_name: String,
    #[serde(rename = "App", skip_serializing_if = "String::is_empty")]
    pub app: String,
    #[serde(rename = "Desktop", skip_serializing_if = "Option::is_none")]
    pub desktop: Option<bool>,
    #[serde(rename = "Package", skip_serializing_if = "String::is_empty")]
    pub package: String,
    #[serde(rename = "DeviceModel", skip_serializing_if = "String::is_empty")]
    pub device_model: String,
    /// The machine's name; headscale names the node after it.
    #[serde(rename = "Hostname", skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(rename = "ShieldsUp", skip_serializing_if = "is_false")]
    pub shields_up: bool,
    #[serde(rename = "NoLogsNoSupport", skip_serializing_if = "is_false")]
    pub no_logs_no_support: bool,
    /// `uname -m`.
    #[serde(rename = "Machine", skip_serializing_if = "String::is_empty")]
    pub machine: String,
    /// Go's GOARCH spelling: `amd64`, `arm64`, `386`…
    #[serde(rename = "GoArch", skip_serializing_if = "String::is_empty")]
    pub go_arch: String,
    #[serde(rename = "GoArchVar", skip_serializing_if = "String::is_empty")]
    pub go_arch_var: String,
    #[serde(rename = "GoVersion", skip_serializing_if = "String::is_empty")]
    pub go_version: String,
    /// Advertised subnet routes (and 0.0.0.0/0, ::/0 for an exit node).
    #[serde(
        rename = "RoutableIPs",
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub routable_ips: Vec<Prefix>,
    #[serde(
        rename = "RequestTags",
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub request_tags: Vec<String>,
    #[serde(
        rename = "Services",
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub services: Vec<Service>,
    #[serde(rename = "NetInfo", skip_serializing_if = "Option::is_none")]
    pub net_info: Option<NetInfo>,
    #[serde(
        rename = "sshHostKeys",
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ssh_host_keys: Vec<String>,
    #[serde(rename = "Userspace", skip_serializing_if = "Option::is_none")]
    pub userspace: Option<bool>,
    #[serde(rename = "UserspaceRouter", skip_serializing_if = "Option::is_none")]
    pub userspace_router: Option<bool>,
}

impl Hostinfo {
    /// What weft says about the host it runs on; the caller adds logging ids, NetInfo and
    /// advertised routes as it learns them.
    pub(crate) fn for_this_host(hostname: &str) -> Hostinfo {
        Hostinfo {
            ipn_version: crate::VERSION.to_string(),
            os: go_os_name(std::env::consts::OS).to_string(),
            hostname: hostname.to_string(),
            machine: std::env::consts::ARCH.to_string(),
            go_arch: go_arch_name(std::env::consts::ARCH).to_string(),
            ..Hostinfo::default()
        }
    }
}

/// Rust's OS name in Tailscale's spelling (Go's GOOS, with `macOS` capitalised as
/// tailscaled reports it).
fn go_os_name(rust_os: &str) -> &str {
    match rust_os {
        "macos" => "macOS",
        other => other,
    }
}

/// Rust's architecture name as Go's GOARCH.
fn go_arch_name(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn is_false(value: &bool) -> bool {
    !value
}

/// A service the node offers, e.g. `{"Proto":"peerapi4","Port":N}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Service {
    #[serde(rename = "Proto")]
    pub proto: String,
    #[serde(rename = "Port")]
    pub port: u16,
    #[serde(rename = "Description", skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// Network conditions from netcheck. Its `PreferredDERP` is how peers learn this node's home
/// region.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct NetInfo {
    #[serde(rename = "MappingVariesByDestIP", skip_serializing_if = "Option::is_none")]
    pub mapping_varies_by_dest_ip: Option<bool>,
    #[serde(rename = "WorkingIPv6", skip_serializing_if = "Option::is_none")]
    pub working_ipv6: Option<bool>,
    #[serde(rename = "OSHasIPv6", skip_serializing_if = "Option::is_none")]
    pub os_has_ipv6: Option<bool>,
    #[serde(rename = "WorkingUDP", skip_serializing_if = "Option::is_none")]
    pub working_udp: Option<bool>,
    #[serde(rename = "WorkingICMPv4", skip_serializing_if = "Option::is_none")]
    pub working_icmpv4: Option<bool>,
    #[serde(rename = "HavePortMap", skip_serializing_if = "is_false")]
    pub have_port_map: bool,
    #[serde(rename = "UPnP", skip_serializing_if = "Option::is_none")]
    pub upnp: Option<bool>,
    #[serde(rename = "PMP", skip_serializing_if = "Option::is_none")]
    pub pmp: Option<bool>,
    #[serde(rename = "PCP", skip_serializing_if = "Option::is_none")]
    pub pcp: Option<bool>,
    #[serde(rename = "PreferredDERP")]
    pub preferred_derp: RegionId,
    /// `wired`, `wifi` or `mobile`.
    #[serde(rename = "LinkType", skip_serializing_if = "String::is_empty")]
    pub link_type: String,
    /// `"<region>-v4"` / `"<region>-v6"` → latency in seconds.
    #[serde(
        rename = "DERPLatency",
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub derp_latency: BTreeMap<String, f64>,
    #[serde(rename = "FirewallMode", skip_serializing_if = "String::is_empty")]
    pub firewall_mode: String,
}

impl NetInfo {
    /// Equal but for `DERPLatency`, which differs on every netcheck run (tailscale's
    /// `NetInfo.BasicallyEqual`): what decides whether control must hear of a change.
    pub(crate) fn basically_equal(&self, other: &NetInfo) -> bool {
        let without_latency = |n: &NetInfo| NetInfo { derp_latency: BTreeMap::new(), ..n.clone() };
        without_latency(self) == without_latency(other)
    }
}
