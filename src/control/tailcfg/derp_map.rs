//! `tailcfg.DERPMap`: the relay servers. Several fields are `Option` because a MapResponse may
//! send the map incrementally (capver 65): a null `Regions`, `HomeParams` or `RegionScore`
//! keeps the previous value, and a region whose value is null is dropped.

use super::json::nullable;
use super::RegionId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct DerpMap {
    #[serde(rename = "HomeParams")]
    pub home_params: Option<DerpHomeParams>,
    /// `None`: keep the previous regions. A `None` value inside: no such region.
    #[serde(rename = "Regions")]
    pub regions: Option<BTreeMap<RegionId, Option<DerpRegion>>>,
    /// Tells a client with a built-in default map not to merge it in. weft has no built-in
    /// map, so it only carries the flag along.
    #[serde(rename = "omitDefaultRegions")]
    pub omit_default_regions: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct DerpHomeParams {
    /// Multipliers for measured latency per region when choosing a home; `None` keeps the
    /// previous scores.
    #[serde(rename = "RegionScore")]
    pub region_score: Option<BTreeMap<RegionId, f64>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct DerpRegion {
    #[serde(rename = "RegionID")]
    pub region_id: RegionId,
    #[serde(rename = "RegionCode")]
    pub region_code: String,
    #[serde(rename = "RegionName")]
    pub region_name: String,
    #[serde(rename = "Latitude")]
    pub latitude: f64,
    #[serde(rename = "Longitude")]
    pub longitude: f64,
    /// Don't pick as home, but keep existing connections.
    #[serde(rename = "Avoid")]
    pub avoid: bool,
    /// Neither measure latency to nor choose as home (capver 115).
    #[serde(rename = "NoMeasureNoHome")]
    pub no_measure_no_home: bool,
    #[serde(rename = "Nodes", deserialize_with = "nullable")]
    pub nodes: Vec<DerpNode>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct DerpNode {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "RegionID")]
    pub region_id: RegionId,
    #[serde(rename = "HostName")]
    pub host_name: String,
    /// TLS name to expect when it differs from HostName.
    #[serde(rename = "CertName")]
    pub cert_name: String,
    /// Empty: resolve HostName; `"none"`: don't use this family.
    #[serde(rename = "IPv4")]
    pub ipv4: String,
    #[serde(rename = "IPv6")]
    pub ipv6: String,
    /// 0 means 3478; -1 disables STUN.
    #[serde(rename = "STUNPort")]
    pub stun_port: i32,
    #[serde(rename = "STUNOnly")]
    pub stun_only: bool,
    /// 0 means 443.
    #[serde(rename = "DERPPort")]
    pub derp_port: u16,
    #[serde(rename = "InsecureForTests")]
    pub insecure_for_tests: bool,
    #[serde(rename = "STUNTestIP")]
    pub stun_test_ip: String,
    #[serde(rename = "CanPort80")]
    pub can_port_80: bool,
}
