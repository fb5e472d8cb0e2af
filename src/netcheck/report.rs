//! What one netcheck run found, and the choice of home region from it. Field names on the wire
//! follow tailscale's `netcheck.Report` so `weft netcheck --json` reads like
//! `tailscale netcheck --format=json`.

use crate::control::tailcfg::{Endpoint, EndpointType, NetInfo, RegionId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Report {
    /// Some STUN server answered over UDP.
    #[serde(rename = "UDP")]
    pub udp: bool,
    /// An IPv4 / IPv6 STUN server answered.
    #[serde(rename = "IPv4")]
    pub ipv4: bool,
    #[serde(rename = "IPv6")]
    pub ipv6: bool,
    /// Our socket has an IPv6 sibling to probe from.
    #[serde(rename = "OSHasIPv6")]
    pub os_has_ipv6: bool,
    /// Different STUN servers saw different IPv4 mappings (a "hard" NAT); `None` until two
    /// servers at different addresses answered.
    #[serde(rename = "MappingVariesByDestIP")]
    pub mapping_varies_by_dest_ip: Option<bool>,
    /// 0: no home (no region answered and none was home before).
    #[serde(rename = "PreferredDERP")]
    pub preferred_derp: RegionId,
    /// Best round trip per region over both families, and per family.
    #[serde(rename = "RegionLatency", with = "nanos")]
    pub region_latency: BTreeMap<RegionId, Duration>,
    #[serde(rename = "RegionV4Latency", with = "nanos")]
    pub region_v4_latency: BTreeMap<RegionId, Duration>,
    #[serde(rename = "RegionV6Latency", with = "nanos")]
    pub region_v6_latency: BTreeMap<RegionId, Duration>,
    /// Our address as seen by the fastest IPv4 / IPv6 server.
    #[serde(rename = "GlobalV4", with = "optional_addr")]
    pub global_v4: Option<SocketAddr>,
    #[serde(rename = "GlobalV6", with = "optional_addr")]
    pub global_v6: Option<SocketAddr>,
    /// Every mapping seen, with how many servers saw it (what the endpoints are made from).
    #[serde(skip)]
    pub(super) mappings: BTreeMap<SocketAddr, usize>,
    /// The mapping behind `global_v4` / `global_v6` and its round trip.
    #[serde(skip)]
    fastest_v4: Option<(SocketAddr, Duration)>,
    #[serde(skip)]
    fastest_v6: Option<(SocketAddr, Duration)>,
}

impl Report {
    /// An empty report for a run from sockets with (or without) an IPv6 one.
    pub(super) fn new(os_has_ipv6: bool) -> Report {
        Report { os_has_ipv6, ..Report::default() }
    }

    /// The addresses STUN found, typed for `MapRequest.Endpoints`: the global v4 and v6
    /// mappings, other v4 mappings seen more than once, and — behind a NAT whose mapping varies
    /// by destination — the public IPv4 with our local port (a guess that works for NATs that
    /// keep the port).
    pub(crate) fn stun_endpoints(&self, local_port: u16) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = Vec::new();
        let mut add = |addr: SocketAddr, kind: EndpointType| {
            if !out.iter().any(|e| e.addr == addr) {
                out.push(Endpoint { addr, kind });
            }
        };
        for global in [self.global_v4, self.global_v6].into_iter().flatten() {
            add(global, EndpointType::Stun);
        }
        for (addr, seen) in &self.mappings {
            if addr.is_ipv4() && *seen > 1 {
                add(*addr, EndpointType::Stun);
            }
        }
        if let (Some(true), Some(global)) = (self.mapping_varies_by_dest_ip, self.global_v4) {
            add(SocketAddr::new(global.ip(), local_port), EndpointType::Stun4LocalPort);
        }
        out
    }

    /// `Hostinfo.NetInfo` as control expects it: latencies in seconds, keyed `"<id>-v4"`.
    pub(crate) fn net_info(&self) -> NetInfo {
        let mut derp_latency = BTreeMap::new();
        for (suffix, latencies) in
            [("v4", &self.region_v4_latency), ("v6", &self.region_v6_latency)]
        {
            for (region, latency) in latencies {
                derp_latency.insert(format!("{region}-{suffix}"), latency.as_secs_f64());
            }
        }
        NetInfo {
            mapping_varies_by_dest_ip: self.mapping_varies_by_dest_ip,
            working_ipv6: Some(self.ipv6),
            os_has_ipv6: Some(self.os_has_ipv6),
            working_udp: Some(self.udp),
            preferred_derp: self.preferred_derp,
            derp_latency,
            ..NetInfo::default()
        }
    }

    /// Records a mapping `server` saw for us `latency` after we asked.
    pub(super) fn add_answer(
        &mut self,
        region: RegionId,
        server: IpAddr,
        mapped: SocketAddr,
        latency: Duration,
    ) {
        self.udp = true;
        let per_family = if server.is_ipv4() {
            self.ipv4 = true;
            &mut self.region_v4_latency
        } else {
            self.ipv6 = true;
            &mut self.region_v6_latency
        };
        keep_best(per_family, region, latency);
        keep_best(&mut self.region_latency, region, latency);
        *self.mappings.entry(mapped).or_default() += 1;
        let fastest = if mapped.is_ipv4() { &mut self.fastest_v4 } else { &mut self.fastest_v6 };
        if fastest.is_none_or(|(_, best)| latency < best) {
            *fastest = Some((mapped, latency));
        }
        self.global_v4 = self.fastest_v4.map(|(addr, _)| addr);
        self.global_v6 = self.fastest_v6.map(|(addr, _)| addr);
    }

    /// After every answer: whether two IPv4 servers at different addresses disagree.
    pub(super) fn note_v4_server(&mut self, servers_seen: &BTreeMap<IpAddr, SocketAddr>) {
        let v4: Vec<&SocketAddr> =
            servers_seen.iter().filter(|(ip, _)| ip.is_ipv4()).map(|(_, m)| m).collect();
        if v4.len() >= 2 {
            self.mapping_varies_by_dest_ip = Some(v4.iter().any(|m| *m != v4[0]));
        }
    }
}

/// Stores `latency` for `region` if it beats what is there.
fn keep_best(map: &mut BTreeMap<RegionId, Duration>, region: RegionId, latency: Duration) {
    let best = map.entry(region).or_insert(latency);
    *best = (*best).min(latency);
}

/// How much faster another region must be before the home moves (derp.md §6.1): at least
/// 10 ms and at least a third faster. Stops flapping between two similar regions.
const MIN_HOME_IMPROVEMENT: Duration = Duration::from_millis(10);

/// The home region given this run's (scaled, best-recent) latencies and the current home;
/// `candidates` holds only regions that may be home.
pub(super) fn choose_home(
    candidates: &BTreeMap<RegionId, Duration>,
    current: Option<RegionId>,
) -> Option<RegionId> {
    let best = candidates.iter().min_by_key(|(id, latency)| (**latency, **id));
    let Some((&best_id, &best_latency)) = best else {
        // Nothing answered: keep what peers already know.
        return current;
    };
    if let Some(old_latency) = current.and_then(|home| candidates.get(&home)) {
        let small_gain = old_latency.saturating_sub(best_latency) < MIN_HOME_IMPROVEMENT;
        let not_a_third_faster = best_latency * 3 > *old_latency * 2;
        if small_gain || not_a_third_faster {
            return current;
        }
    }
    Some(best_id)
}

/// Go's `time.Duration` in JSON: integer nanoseconds.
mod nanos {
    use super::RegionId;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(
        map: &BTreeMap<RegionId, Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let nanos: BTreeMap<RegionId, u64> =
            map.iter().map(|(k, v)| (*k, v.as_nanos() as u64)).collect();
        nanos.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<RegionId, Duration>, D::Error> {
        let nanos = Option::<BTreeMap<RegionId, u64>>::deserialize(d)?.unwrap_or_default();
        Ok(nanos.into_iter().map(|(k, v)| (k, Duration::from_nanos(v))).collect())
    }
}

/// An address as Go's `netip.AddrPort` string, `""` for none.
mod optional_addr {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::net::SocketAddr;

    pub(super) fn serialize<S: Serializer>(
        addr: &Option<SocketAddr>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match addr {
            Some(a) => s.serialize_str(&a.to_string()),
            None => s.serialize_str(""),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(serde::de::Error::custom)
    }
}
