//! From the control picture to weft's [`Netmap`]: peers keyed by node key, routes, path
//! inputs and status facts, with key expiry judged by control's clock.

use super::peers::{usable_key, Touched};
use super::{Changed, MapState};
use crate::control::tailcfg::go_time::meaningful;
use crate::control::tailcfg::Node;
use crate::keys::PrivateKey;
use crate::magicdns::zone::PEER_AAAA_CAPABILITY;
use crate::netmap::{Netmap, Peer, PeerDelta, SelfNode};
use crate::prefix::Prefix;
use std::collections::HashSet;
use std::time::SystemTime;

/// The node attribute (capver 136) by which control tells a Linux node not to drop packets
/// from the tailnet range that arrive on other interfaces.
const DISABLE_CGNAT_DROP_RULE: &str = "disable-linux-cgnat-drop-rule";

/// What a MapResponse changed, in the form the engine applies.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Update {
    Full(Box<Netmap>),
    /// Only these peers changed.
    Peers(PeerDelta),
}

impl MapState {
    /// The change to hand on after a MapResponse that changed `changed`: a delta of the peers
    /// it touched when only peers changed (and no key is carried by two nodes, which only the
    /// whole netmap settles), else the whole netmap at local time `now`. `None` until the first
    /// full MapResponse. Either way the record of touched peers starts afresh.
    pub(crate) fn take_update(
        &mut self,
        private_key: PrivateKey,
        now: SystemTime,
        changed: Changed,
    ) -> Option<Update> {
        let touched = self.peers.take_touched();
        let peers_only = changed == Changed { peers: true, ..Changed::default() };
        let control_now = self.skew.control_now(now);
        if peers_only && !touched.everything && !self.self_expired(control_now) {
            if let Some(delta) = self.peer_delta(touched, control_now) {
                return Some(Update::Peers(delta));
            }
        }
        self.netmap(private_key, now).map(|netmap| Update::Full(Box::new(netmap)))
    }

    /// The touched peers as the engine should now have them; `None` when a key they carry or
    /// carried is also another node's.
    fn peer_delta(&self, touched: Touched, control_now: Option<SystemTime>) -> Option<PeerDelta> {
        let mut delta = PeerDelta::default();
        for node in touched.nodes.iter().filter_map(|id| self.peers.get(id)) {
            let Some(peer) = peer(node, control_now, self.accept_subnet_routes) else {
                continue;
            };
            if self.peers.key_users(&peer.public_key) > 1 {
                return None;
            }
            delta.upsert.push(peer);
        }
        for key in touched.old_keys {
            let carried_by_a_touched_node = || delta.upsert.iter().any(|p| p.public_key == key);
            match self.peers.key_users(&key) {
                0 => delta.remove.push(key),
                _ if carried_by_a_touched_node() => {}
                _ => return None,
            }
        }
        Some(delta)
    }

    /// The netmap at local time `now`, for this node's `private_key`; `None` until the first
    /// full MapResponse. `now` matters because keys expire between messages: rebuild at
    /// [`MapState::next_key_expiry`].
    pub(crate) fn netmap(&self, private_key: PrivateKey, now: SystemTime) -> Option<Netmap> {
        let me = self.self_node.as_ref()?;
        let control_now = self.skew.control_now(now);
        // Expired, this node needs a new login: like tailscaled, it keeps no peer (and so no
        // session and no route) and no DNS (the host's resolver is given back) until control
        // renews the key.
        let expired = self.self_expired(control_now);
        let peers = match expired {
            true => Vec::new(),
            false => self.peers_at(control_now),
        };
        Some(Netmap {
            peers,
            domain: self.domain.clone(),
            user_profiles: self.user_profiles.clone(),
            derp_map: self.derp_map.clone(),
            packet_filter: Some(self.filters.effective()),
            dns: self.dns.clone().filter(|_| !expired),
            ..Netmap::new(self_node(me, private_key, control_now))
        })
    }

    /// Whether this node's own key has expired by control's verdict or clock; also true
    /// before the first full MapResponse, when there is no netmap a delta could apply to.
    fn self_expired(&self, control_now: Option<SystemTime>) -> bool {
        self.self_node.as_ref().is_none_or(|me| is_expired(me, control_now))
    }

    /// The local time at which the next key (this node's or a peer's) expires, so the caller
    /// can rebuild the netmap then; `None` if no key is due to expire.
    pub(crate) fn next_key_expiry(&self, now: SystemTime) -> Option<SystemTime> {
        let control_now = self.skew.control_now(now)?;
        self.self_node
            .iter()
            .chain(self.peers.nodes())
            .filter(|node| !node.expired)
            .filter_map(|node| meaningful(node.key_expiry))
            .filter(|expiry| *expiry > control_now)
            .min()
            .and_then(|expiry| self.skew.local_time_of(expiry))
            .map(|local| local.max(now))
    }

    /// Peers sorted by key; a key listed twice keeps its lowest node ID (the engine and
    /// WireGuard know a peer only by key).
    fn peers_at(&self, control_now: Option<SystemTime>) -> Vec<Peer> {
        let mut seen = HashSet::new();
        let mut peers: Vec<Peer> = self
            .peers
            .nodes()
            .filter_map(|node| peer(node, control_now, self.accept_subnet_routes))
            .filter(|peer| seen.insert(peer.public_key))
            .collect();
        peers.sort_by_key(|peer| peer.public_key);
        peers
    }
}

fn self_node(node: &Node, private_key: PrivateKey, control_now: Option<SystemTime>) -> SelfNode {
    let mut addresses = node.addresses.clone();
    addresses.sort_by_key(|prefix| !prefix.is_ipv4());
    SelfNode {
        name: display_name(node),
        addresses,
        node_id: node.id,
        dns_name: node.name.clone(),
        user_id: node.user,
        key_expiry: meaningful(node.key_expiry),
        key_expired: is_expired(node, control_now),
        machine_authorized: node.machine_authorized,
        cgnat_drop_disabled: node.cap_map.contains_key(DISABLE_CGNAT_DROP_RULE),
        magicdns_peer_aaaa: node.cap_map.contains_key(PEER_AAAA_CAPABILITY),
        ..SelfNode::new(private_key)
    }
}

/// The candidate endpoints kept per peer. A node reports its addresses on each interface and
/// what STUN saw, a handful; the endpoints come from the peer itself, through control, and
/// each costs disco pings (and on NetBSD a host route), so a peer cannot make them many.
const MAX_ENDPOINTS_PER_PEER: usize = 64;

/// `None` for a node without a usable key.
fn peer(node: &Node, control_now: Option<SystemTime>, accept_subnets: bool) -> Option<Peer> {
    let key = usable_key(node)?;
    let expired = is_expired(node, control_now);
    let mut peer = Peer {
        name: display_name(node),
        node_id: node.id,
        stable_id: node.stable_id.clone(),
        dns_name: node.name.clone(),
        host_name: node.hostinfo.hostname.clone(),
        os: node.hostinfo.os.clone(),
        user_id: node.user,
        addresses: node.addresses.clone(),
        tags: node.tags.clone(),
        primary_routes: node.primary_routes.clone(),
        online: node.online,
        last_seen: meaningful(node.last_seen),
        key_expiry: meaningful(node.key_expiry),
        key_expired: expired,
        masquerade_as: [
            node.self_node_v4_masq_addr_for_this_peer,
            node.self_node_v6_masq_addr_for_this_peer,
        ]
        .into_iter()
        .flatten()
        .collect(),
        jailed: node.is_jailed,
        ..Peer::new(key)
    };
    if !expired {
        // Skip, rather than fail on, a candidate this build cannot parse.
        peer.endpoints = node
            .endpoints
            .iter()
            .filter_map(|e| e.parse().ok())
            .take(MAX_ENDPOINTS_PER_PEER)
            .collect();
        peer.disco_key = node.disco_key.and_then(|k| k.non_zero());
        peer.derp_region = (node.home_derp != 0).then_some(node.home_derp);
        if reachable(&peer, node) {
            peer.allowed_ips = accepted_routes(node, accept_subnets);
        }
    }
    Some(peer)
}

/// The node's AllowedIPs this node routes to it, as tailscaled takes them: never a default
/// route (an exit node's 0.0.0.0/0 and ::/0 would carry all of the host's traffic, and is
/// only for the exit node the user chose, which weft cannot choose yet), and subnet routes
/// (anything but the node's own addresses) only when the user accepts them
/// (`weft up --accept-routes`).
fn accepted_routes(node: &Node, accept_subnets: bool) -> Vec<Prefix> {
    let own = |prefix: &Prefix| prefix.is_host() && node.addresses.contains(prefix);
    node.allowed_ips()
        .iter()
        .filter(|prefix| prefix.bits() != 0)
        .filter(|prefix| accept_subnets || own(prefix))
        .copied()
        .collect()
}

/// Expired by control's verdict, or by its key-expiry time on control's clock (capver 53).
/// Without a plausible clock only control's verdict counts.
fn is_expired(node: &Node, control_now: Option<SystemTime>) -> bool {
    let past_expiry = match (meaningful(node.key_expiry), control_now) {
        (Some(expiry), Some(now)) => expiry <= now,
        _ => false,
    };
    node.expired || past_expiry
}

/// A peer that has neither disco nor a home relay predates both, and nothing can reach it —
/// unless it is a plain WireGuard peer, reached at its endpoints.
fn reachable(peer: &Peer, node: &Node) -> bool {
    node.is_wireguard_only || peer.disco_key.is_some() || peer.derp_region.is_some()
}

/// The name `weft status` shows: the first label of the MagicDNS name (what is left once the
/// MagicDNS suffix, which every node of the tailnet shares, is cut off), else the host's own
/// name, else the key. `Domain` is no guide: headscale sends its server address there.
fn display_name(node: &Node) -> String {
    let short = node.name.trim_end_matches('.').split('.').next().unwrap_or_default();
    if !short.is_empty() {
        return short.to_string();
    }
    if !node.hostinfo.hostname.is_empty() {
        return node.hostinfo.hostname.clone();
    }
    node.key.map(|k| k.key.to_nodekey()).unwrap_or_default()
}
