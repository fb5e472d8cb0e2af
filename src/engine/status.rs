//! The node's state as `weft status` shows it: the same top-level shape as
//! `tailscale status --json` for the fields weft has.

use super::peers::PeerState;
use super::Engine;
use crate::control::tailcfg::{go_time, RegionId};
use crate::keys::PublicKey;
use crate::netmap::{DerpMap, Peer};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// A peer counts as online while its last handshake is younger than WireGuard's
/// REJECT_AFTER_TIME: the session could still carry data.
const ONLINE_WINDOW: Duration = Duration::from_secs(180);
/// tailscaled calls a peer active when traffic moved within the last 45 s.
const ACTIVE_WINDOW: Duration = Duration::from_secs(45);

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Status {
    pub version: String,
    #[serde(rename = "TUN")]
    pub tun: bool,
    /// weft's own addition: the TUN interface's name, or `fake` for the in-memory device.
    #[serde(rename = "TUNName", default, skip_serializing_if = "String::is_empty")]
    pub tun_name: String,
    pub backend_state: String,
    /// The login page to visit while an interactive login is pending.
    #[serde(rename = "AuthURL", default)]
    pub auth_url: String,
    #[serde(rename = "TailscaleIPs")]
    pub tailscale_ips: Vec<String>,
    #[serde(rename = "Self")]
    pub self_node: PeerStatus,
    pub health: Vec<String>,
    #[serde(rename = "MagicDNSSuffix")]
    pub magic_dns_suffix: String,
    /// The tailnet, when a control server named one.
    #[serde(default)]
    pub current_tailnet: Option<CurrentTailnet>,
    /// Keyed by `nodekey:<hex>` like tailscale's. The daemon writes it apart from the rest
    /// ([`StatusBuild`]), hence skipped here when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peer: BTreeMap<String, PeerStatus>,
    /// Owners of nodes, keyed by decimal user ID.
    #[serde(default)]
    pub user: BTreeMap<String, UserStatus>,
    /// weft's own addition: why the last login failed (empty when it didn't).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub login_error: String,
    /// weft's own addition: silent drops by reason.
    #[serde(default)]
    pub drops: BTreeMap<String, u64>,
    /// weft's own addition, under tailscale's name for the preference (and for Hostinfo's
    /// field): new inbound connections are refused.
    #[serde(default)]
    pub shields_up: bool,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CurrentTailnet {
    pub name: String,
    #[serde(rename = "MagicDNSSuffix")]
    pub magic_dns_suffix: String,
    #[serde(rename = "MagicDNSEnabled")]
    pub magic_dns_enabled: bool,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UserStatus {
    #[serde(rename = "ID")]
    pub id: i64,
    pub login_name: String,
    pub display_name: String,
    #[serde(rename = "ProfilePicURL")]
    pub profile_pic_url: String,
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PeerStatus {
    #[serde(rename = "ID")]
    pub id: String,
    pub public_key: String,
    pub host_name: String,
    #[serde(rename = "DNSName")]
    pub dns_name: String,
    #[serde(rename = "OS")]
    pub os: String,
    #[serde(rename = "UserID", default)]
    pub user_id: i64,
    #[serde(rename = "TailscaleIPs")]
    pub tailscale_ips: Vec<String>,
    /// The addresses routed to the peer: its own, and its subnets when accepted.
    #[serde(rename = "AllowedIPs", default)]
    pub allowed_ips: Vec<String>,
    /// The subnets control made the peer the primary router for, accepted or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary_routes: Vec<String>,
    #[serde(default)]
    pub addrs: Vec<String>,
    pub cur_addr: String,
    pub relay: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub last_handshake: String,
    /// When control last saw the peer (zero time when unknown or online).
    #[serde(default)]
    pub last_seen: String,
    pub online: bool,
    pub active: bool,
    pub in_network_map: bool,
    pub in_engine: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_expiry: Option<String>,
    /// weft's own addition: control jailed the peer, so it can answer this node's flows but
    /// open none of its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub jailed: bool,
}

/// Peers written per slice of a status answer: a few milliseconds of the loop's thread, so
/// packets keep moving between slices of a 10,000-peer answer.
pub(crate) const STATUS_SLICE: usize = 250;

/// A status answer in the making. It lists the peers the engine had when it started, in the
/// order of their keys (as the JSON map shows them), and turns them into JSON a slice at a
/// time ([`Engine::write_status_slice`]); each peer's JSON is written straight from the
/// engine's state and kept as bytes, and the envelope around them is added last
/// ([`StatusBuild::to_json`]). A peer removed before its slice is left out.
pub(crate) struct StatusBuild {
    keys: Vec<PublicKey>,
    written: usize,
    peers: Vec<(String, Box<RawValue>)>,
}

impl StatusBuild {
    /// Whether every peer is written.
    pub(crate) fn is_done(&self) -> bool {
        self.written == self.keys.len()
    }

    /// The answer: `status` with the peers written into its `Peer` map. `status` itself
    /// carries no peers (see [`Engine::status_without_peers`]).
    pub(crate) fn to_json(&self, status: &Status) -> serde_json::Result<Vec<u8>> {
        #[derive(serde::Serialize)]
        struct Answer<'a> {
            #[serde(flatten)]
            status: &'a Status,
            #[serde(rename = "Peer")]
            peer: WrittenPeers<'a>,
        }
        let size = self.peers.iter().map(|(key, json)| key.len() + json.get().len() + 4);
        let mut out = Vec::with_capacity(size.sum::<usize>() + 4096);
        serde_json::to_writer(&mut out, &Answer { status, peer: WrittenPeers(&self.peers) })?;
        Ok(out)
    }
}

/// Peers already turned into JSON, written out as a map in their order.
struct WrittenPeers<'a>(&'a [(String, Box<RawValue>)]);

impl serde::Serialize for WrittenPeers<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, json)| (key, json)))
    }
}

impl Engine {
    /// The whole status at once, peers included.
    #[cfg(test)]
    pub(crate) fn status(&self, now: Instant, tun: bool) -> Status {
        let peer = self
            .peers
            .values()
            .map(|state| (state.config.public_key.to_nodekey(), self.peer_status(state, now)))
            .collect();
        Status { peer, ..self.status_without_peers(tun) }
    }

    /// Starts a status answer with the peers the engine has now.
    pub(crate) fn start_status(&self) -> StatusBuild {
        let mut keys: Vec<PublicKey> = self.by_key.keys().copied().collect();
        keys.sort_unstable();
        StatusBuild { peers: Vec::with_capacity(keys.len()), keys, written: 0 }
    }

    /// Writes up to `count` more peers of `build`, each as it is now.
    pub(crate) fn write_status_slice(&self, build: &mut StatusBuild, now: Instant, count: usize) {
        let end = build.keys.len().min(build.written + count);
        for key in &build.keys[build.written..end] {
            let Some(state) = self.by_key.get(key).and_then(|index| self.peers.get(index)) else {
                continue;
            };
            // Serializing plain strings, numbers and vectors cannot fail; a peer that
            // somehow did would be left out rather than spoil the answer.
            if let Ok(json) = serde_json::value::to_raw_value(&self.peer_status(state, now)) {
                build.peers.push((key.to_nodekey(), json));
            }
        }
        build.written = end;
    }

    /// Everything `weft status` shows but the peers.
    pub(crate) fn status_without_peers(&self, tun: bool) -> Status {
        let self_node = &self.netmap.self_node;
        let ips: Vec<String> = self_node.addresses.iter().map(|p| p.addr().to_string()).collect();
        let me = PeerStatus {
            id: if self_node.node_id != 0 { self_node.node_id.to_string() } else { String::new() },
            public_key: self_node.private_key.public_key().to_nodekey(),
            host_name: self_node.name.clone(),
            dns_name: self_node.dns_name.clone(),
            os: std::env::consts::OS.to_string(),
            user_id: self_node.user_id,
            tailscale_ips: ips.clone(),
            online: true,
            in_network_map: true,
            last_handshake: rfc3339(None),
            last_seen: rfc3339(None),
            expired: self_node.key_expired,
            key_expiry: self_node.key_expiry.map(|t| rfc3339(Some(t))),
            ..PeerStatus::default()
        };
        let mut drops: BTreeMap<String, u64> = serde_json::to_value(&self.drops)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        drops.extend(self.magic_dns.counters().by_name());
        let suffix = magic_dns_suffix(&self_node.dns_name);
        let current_tailnet = (!self.netmap.domain.is_empty()).then(|| CurrentTailnet {
            name: self.netmap.domain.clone(),
            magic_dns_suffix: suffix.clone(),
            magic_dns_enabled: self.netmap.dns.as_ref().is_some_and(|d| d.proxied),
        });
        let user = self
            .netmap
            .user_profiles
            .iter()
            .map(|(id, p)| {
                let profile = UserStatus {
                    id: *id,
                    login_name: p.login_name.clone(),
                    display_name: p.display_name.clone(),
                    profile_pic_url: p.profile_pic_url.clone(),
                };
                (id.to_string(), profile)
            })
            .collect();
        Status {
            version: crate::VERSION.to_string(),
            tun,
            tailscale_ips: ips,
            self_node: me,
            health: self.health.clone(),
            magic_dns_suffix: suffix,
            current_tailnet,
            user,
            drops,
            shields_up: self.shields_up(),
            ..Status::default()
        }
    }

    /// One peer as `weft status` shows it.
    fn peer_status(&self, state: &PeerState, now: Instant) -> PeerStatus {
        let (tx, rx) = state.traffic();
        let since = state.last_handshake.map(|at| now.saturating_duration_since(at));
        let handshake = state.last_handshake.map(|at| self.wall_time(at));
        let active = match &state.disco {
            Some(disco) => disco.paths.is_active(now),
            None => {
                now.saturating_duration_since(state.clock.last_activity) < ACTIVE_WINDOW
                    && (tx > 0 || rx > 0)
            }
        };
        PeerStatus {
            // The direct address in use, as tailscale shows it: none while relayed.
            cur_addr: state.proven_direct(now).map(|a| a.to_string()).unwrap_or_default(),
            rx_bytes: rx,
            tx_bytes: tx,
            last_handshake: rfc3339(handshake),
            // Control knows best; a static config only has the handshake to go by.
            online: state.config.online.unwrap_or(since.is_some_and(|d| d < ONLINE_WINDOW)),
            active,
            in_engine: state.session.is_some(),
            relay: region_code(self.netmap.derp_map.as_ref(), state.config.derp_region),
            ..describe(&state.config)
        }
    }
}

/// The short code of DERP region `region` (tailscale's `Relay`, a ping's `DERPRegionCode`),
/// empty when unknown.
pub(super) fn region_code(derp_map: Option<&DerpMap>, region: Option<RegionId>) -> String {
    let regions = derp_map.map(|m| &m.regions);
    region.and_then(|r| regions?.get(&r)).map(|r| r.region_code.clone()).unwrap_or_default()
}

/// The netmap's facts about a peer, before runtime state is added.
fn describe(peer: &Peer) -> PeerStatus {
    PeerStatus {
        id: if peer.stable_id.is_empty() {
            peer.public_key.short()
        } else {
            peer.stable_id.clone()
        },
        public_key: peer.public_key.to_nodekey(),
        host_name: if peer.host_name.is_empty() {
            peer.name.clone()
        } else {
            peer.host_name.clone()
        },
        dns_name: peer.dns_name.clone(),
        os: peer.os.clone(),
        user_id: peer.user_id,
        last_seen: rfc3339(peer.last_seen),
        expired: peer.key_expired,
        jailed: peer.jailed,
        key_expiry: peer.key_expiry.map(|t| rfc3339(Some(t))),
        tailscale_ips: peer.tailscale_ips().iter().map(|a| a.to_string()).collect(),
        allowed_ips: peer.allowed_ips.iter().map(|p| p.to_string()).collect(),
        primary_routes: peer.primary_routes.iter().map(|p| p.to_string()).collect(),
        addrs: peer.endpoints.iter().map(|e| e.to_string()).collect(),
        in_network_map: true,
        ..PeerStatus::default()
    }
}

/// The MagicDNS suffix: this node's DNS name without its first label and trailing dot.
fn magic_dns_suffix(dns_name: &str) -> String {
    dns_name
        .trim_end_matches('.')
        .split_once('.')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_default()
}

/// A time as tailscale's JSON writes it; `None` gives Go's zero time, which tailscale prints
/// for "never".
pub(crate) fn rfc3339(time: Option<SystemTime>) -> String {
    go_time::format(time.unwrap_or_else(go_time::go_zero_time))
}

/// The key of `engine_with_peers`'s peer `i`: keys sort as their numbers do.
#[cfg(test)]
pub(crate) fn peer_key(i: u16) -> PublicKey {
    let mut key = [7; 32];
    key[..2].copy_from_slice(&i.to_be_bytes());
    PublicKey(key)
}

/// An engine with peers `peer0`… for the status tests here and the daemon's.
#[cfg(test)]
pub(crate) fn engine_with_peers(count: u16, now: Instant) -> Engine {
    use crate::keys::PrivateKey;
    use crate::netmap::{Netmap, SelfNode};
    let me = SelfNode {
        addresses: vec!["100.64.0.1/32".parse().unwrap()],
        ..SelfNode::new(PrivateKey([9; 32]))
    };
    let peers = (0..count)
        .map(|i| Peer {
            name: format!("peer{i}"),
            allowed_ips: vec![format!("100.64.{}.{}/32", i >> 8, i & 0xff).parse().unwrap()],
            ..Peer::new(peer_key(i))
        })
        .collect();
    Engine::new(Netmap { peers, ..Netmap::new(me) }, now, super::tests::environment(now, 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netmap::PeerDelta;
    use std::time::UNIX_EPOCH;

    /// Writes `build` to the end, `per_slice` peers at a time; returns the number of slices.
    fn finish(engine: &Engine, build: &mut StatusBuild, now: Instant, per_slice: usize) -> usize {
        let mut slices = 0;
        while !build.is_done() {
            engine.write_status_slice(build, now, per_slice);
            slices += 1;
        }
        slices
    }

    #[test]
    fn an_answer_written_in_slices_is_the_whole_status() {
        let now = Instant::now();
        let engine = engine_with_peers(5, now);
        let mut build = engine.start_status();
        assert_eq!(finish(&engine, &mut build, now, 2), 3);
        let json = build.to_json(&engine.status_without_peers(true)).unwrap();
        let answer: Status = serde_json::from_slice(&json).unwrap();
        let whole = engine.status(now, true);
        assert_eq!(serde_json::to_value(&answer).unwrap(), serde_json::to_value(&whole).unwrap());
        assert_eq!(answer.peer.len(), 5);
        // The map's keys come in order, as tailscale's JSON has them.
        let text = String::from_utf8(json).unwrap();
        let at = |key: PublicKey| text.find(&key.to_nodekey()).unwrap();
        assert!(at(peer_key(0)) < at(peer_key(1)));
        assert!(at(peer_key(3)) < at(peer_key(4)));
    }

    #[test]
    fn peers_gone_before_their_slice_are_left_out() {
        let now = Instant::now();
        let mut engine = engine_with_peers(4, now);
        let mut build = engine.start_status();
        engine.write_status_slice(&mut build, now, 2);
        let delta = PeerDelta { upsert: vec![], remove: vec![peer_key(3)] };
        engine.apply_peer_delta(delta, now);
        finish(&engine, &mut build, now, 2);
        let json = build.to_json(&engine.status_without_peers(true)).unwrap();
        let answer: Status = serde_json::from_slice(&json).unwrap();
        let names: Vec<&str> = answer.peer.values().map(|p| p.host_name.as_str()).collect();
        assert_eq!(names, ["peer0", "peer1", "peer2"]);
    }

    #[test]
    fn a_node_without_peers_still_has_a_peer_map() {
        let now = Instant::now();
        let engine = engine_with_peers(0, now);
        let mut build = engine.start_status();
        assert!(build.is_done());
        finish(&engine, &mut build, now, 1);
        let json = build.to_json(&engine.status_without_peers(false)).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["Peer"], serde_json::json!({}));
    }

    #[test]
    fn a_jailed_peer_says_so_and_a_free_one_says_nothing() {
        let now = Instant::now();
        let mut engine = engine_with_peers(2, now);
        let mut jailed = engine.netmap().peers[1].clone();
        jailed.jailed = true;
        engine.apply_peer_delta(PeerDelta { upsert: vec![jailed], remove: vec![] }, now);
        let status = serde_json::to_value(engine.status(now, true)).unwrap();
        let peer = |i| &status["Peer"][peer_key(i).to_nodekey()];
        assert_eq!(peer(1)["Jailed"], true);
        assert!(peer(0).get("Jailed").is_none(), "omitted when false: {}", peer(0));
    }

    #[test]
    fn formats_times_like_go() {
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339(Some(UNIX_EPOCH)), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_219_200 + 3661);
        assert_eq!(rfc3339(Some(t)), "2026-11-21T01:01:01Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(Some(leap)), "2000-02-29T00:00:00Z");
    }
}
