//! The set of peers: applying a new netmap as a difference (sessions of unchanged peers survive)
//! or a delta of a few peers, local-index allocation, and running each peer's WireGuard timers.
//!
//! Every change is made one peer at a time — its session, its index, its claims in the route
//! table — so a delta costs time in proportion to the peers it names, and a full netmap in
//! proportion to its size, with no rebuild of the route table.

use super::disco::DiscoPeer;
use super::lazy::{PeerActivity, Waker};
use super::path::PathLog;
use super::{Engine, PacketSink};
use crate::keys::PublicKey;
use crate::netmap::{Netmap, Peer, PeerDelta};
use crate::wg::allowed_ips::AllowedIps;
use crate::wg::gate::HandshakeGate;
use crate::wg::timers::{Clock, Due};
use crate::wg::Session;
use boringtun::noise::TunnResult;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;

/// A peer as the engine runs it.
pub(super) struct PeerState {
    pub config: Peer,
    /// `None` while the peer is trimmed (see [`super::lazy`]); boxed, so a trimmed peer does
    /// not carry the session's space.
    pub session: Option<Box<Session>>,
    /// Plaintext bytes sent and received in sessions trimmed away since.
    pub trimmed_traffic: (u64, u64),
    pub activity: PeerActivity,
    pub clock: Clock,
    /// The UDP address outside disco's proof: the first configured or control-listed
    /// endpoint, then wherever authenticated packets came from (WireGuard roaming).
    pub endpoint: Option<SocketAddr>,
    /// `endpoint` was proven by an authenticated packet from it (see
    /// [`PeerState::path_for`] for when a configured endpoint is trusted without proof).
    pub endpoint_proven: bool,
    /// Disco's view of the peer's paths; `None` for a peer without a disco key.
    pub disco: Option<Box<DiscoPeer>>,
    /// When the last handshake message of this peer's was accepted.
    pub last_handshake: Option<Instant>,
    /// What the log last said about the peer's path and handshake.
    pub path_log: PathLog,
}

/// What a netmap change did, for logs and for deciding whether the OS routes need touching.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct NetmapChange {
    pub added: usize,
    pub removed: usize,
    pub updated: usize,
    /// The routed prefixes or this node's addresses, MTU or firewall attribute may differ:
    /// the OS's routes, addresses and firewall table need applying again.
    pub routes_changed: bool,
    /// The netmap configured nothing new (same signature): only names and other descriptions
    /// were taken from it.
    pub skipped: bool,
}

impl Engine {
    /// Applies `netmap`: new peers are added (with a session only if they may not be
    /// trimmed), vanished ones removed, and peers whose key material is unchanged keep their
    /// running session (only endpoints and routes move). A netmap with the running
    /// configuration's signature only updates descriptions.
    pub(crate) fn apply_netmap(&mut self, netmap: Netmap, now: Instant) -> NetmapChange {
        // Names, addresses and DNS settings may all have changed.
        self.magic_dns.invalidate_zone();
        let magic_dns_was_on = self.magic_dns_on();
        let signature = self.signer.sign(&netmap);
        if signature.is_some() && signature == self.signature {
            let peers = self.take_all_but_peers(netmap);
            self.take_descriptions(peers);
            let routes_changed = magic_dns_was_on != self.magic_dns_on();
            return NetmapChange { skipped: true, routes_changed, ..NetmapChange::default() };
        }
        self.signature = signature;
        let mut change = NetmapChange::default();
        let self_node = &netmap.self_node;
        if self_node.private_key != self.netmap.self_node.private_key {
            change.removed += self.peers.len();
            change.routes_changed |= !self.routes.is_empty();
            self.peers.clear();
            self.by_key.clear();
            self.disco.forget_all_peers();
            self.routes = AllowedIps::new();
            self.handshake_gate = HandshakeGate::new(&self_node.private_key);
        }
        change.routes_changed |= self_node.addresses != self.netmap.self_node.addresses
            || self_node.mtu != self.netmap.self_node.mtu
            || self_node.cgnat_drop_disabled != self.netmap.self_node.cgnat_drop_disabled;
        // Sessions created below use the new identity; peers live in `self.peers` only.
        let peers = self.take_all_but_peers(netmap);
        let wanted: HashSet<PublicKey> = peers.iter().map(|p| p.public_key).collect();
        let gone: Vec<PublicKey> =
            self.by_key.keys().filter(|k| !wanted.contains(k)).copied().collect();
        for key in gone {
            self.remove_peer(&key, &mut change);
        }
        for peer in peers {
            self.upsert_peer(peer, now, &mut change);
        }
        let own = &self.netmap.self_node.addresses;
        self.filter.replace_rules(self.netmap.packet_filter.as_deref(), own);
        change.routes_changed |= magic_dns_was_on != self.magic_dns_on();
        change
    }

    /// Makes `netmap` the running one but for its peers, which it returns.
    fn take_all_but_peers(&mut self, netmap: Netmap) -> Vec<Peer> {
        let Netmap { peers, self_node, domain, user_profiles, derp_map, packet_filter, dns } =
            netmap;
        self.netmap = Netmap {
            self_node,
            peers: Vec::new(),
            domain,
            user_profiles,
            derp_map,
            packet_filter,
            dns,
        };
        peers
    }

    /// The peers of a netmap with the running configuration: their descriptions (online, last
    /// seen, host names) replace the old ones; sessions and routes stay.
    fn take_descriptions(&mut self, peers: Vec<Peer>) {
        for peer in peers {
            let index = self.by_key.get(&peer.public_key);
            if let Some(state) = index.and_then(|index| self.peers.get_mut(index)) {
                state.config = peer;
            }
        }
    }

    /// Applies a change to the named peers only; everything else stays as it is.
    pub(crate) fn apply_peer_delta(&mut self, delta: PeerDelta, now: Instant) -> NetmapChange {
        // Signing the whole result would cost time in proportion to the netmap: the next full
        // netmap is applied in full instead.
        self.signature = None;
        self.magic_dns.invalidate_zone();
        let mut change = NetmapChange::default();
        for key in &delta.remove {
            self.remove_peer(key, &mut change);
        }
        for peer in delta.upsert {
            self.upsert_peer(peer, now, &mut change);
        }
        change
    }

    fn upsert_peer(&mut self, peer: Peer, now: Instant, change: &mut NetmapChange) {
        match self.by_key.get(&peer.public_key).copied() {
            Some(index) => self.update_peer(index, peer, now, change),
            None => {
                change.added += 1;
                self.add_peer(peer, now, change);
            }
        }
    }

    /// Adds `peer` trimmed, without a session, unless it may not be trimmed.
    fn add_peer(&mut self, peer: Peer, now: Instant, change: &mut NetmapChange) {
        let index = self.allocate_local_index();
        let trimmable = self.lazy.trimmable(&peer);
        for prefix in &peer.allowed_ips {
            self.routes.insert(*prefix, index);
        }
        change.routes_changed |= !peer.allowed_ips.is_empty();
        let mut state = Box::new(PeerState {
            clock: Clock::new(now, peer.persistent_keepalive.is_some()),
            endpoint: peer.endpoints.first().copied(),
            endpoint_proven: false,
            disco: self.disco.peer(&peer),
            last_handshake: None,
            session: None,
            trimmed_traffic: (0, 0),
            activity: PeerActivity::default(),
            path_log: PathLog::default(),
            config: peer,
        });
        if state.clock.keepalive {
            self.schedule.activity(index, &mut state.clock, now);
        }
        self.by_key.insert(state.config.public_key, index);
        self.disco.index_peer(state.disco.as_deref(), index);
        self.peers.insert(index, state);
        if !trimmable {
            self.wake(index, now, Waker::Other);
        }
    }

    fn remove_peer(&mut self, key: &PublicKey, change: &mut NetmapChange) {
        let Some(index) = self.by_key.remove(key) else {
            return;
        };
        let Some(state) = self.peers.remove(&index) else {
            return;
        };
        for prefix in &state.config.allowed_ips {
            self.routes.remove(*prefix, index);
        }
        self.disco.forget_peer(state.disco.as_deref(), index);
        change.routes_changed |= !state.config.allowed_ips.is_empty();
        change.removed += 1;
    }

    /// Brings a known peer up to `peer`: a new session if its key material changed, else only
    /// its endpoint and the routes it gained or lost.
    fn update_peer(&mut self, index: u32, peer: Peer, now: Instant, change: &mut NetmapChange) {
        let Some(state) = self.peers.get_mut(&index) else {
            return;
        };
        if state.config == peer {
            return;
        }
        change.updated += 1;
        if !state.config.same_session(&peer) {
            let mut replaced = NetmapChange::default();
            self.remove_peer(&peer.public_key, &mut replaced);
            self.add_peer(peer, now, &mut replaced);
            change.routes_changed |= replaced.routes_changed;
            return;
        }
        if state.config.disco_key != peer.disco_key || state.config.key_expired != peer.key_expired
        {
            // A new disco key: the peer restarted, and what was proven about it is void.
            self.disco.forget_peer(state.disco.as_deref(), index);
            state.disco = self.disco.peer(&peer);
            self.disco.index_peer(state.disco.as_deref(), index);
        } else if state.config.endpoints != peer.endpoints {
            if let Some(disco) = state.disco.as_mut() {
                disco.paths.set_endpoints(&peer.endpoints);
            }
        }
        if state.config.endpoints != peer.endpoints {
            if let Some(configured) = peer.endpoints.first() {
                state.endpoint = Some(*configured);
                state.endpoint_proven = false;
            }
        }
        if state.config.allowed_ips != peer.allowed_ips {
            change.routes_changed = true;
            let kept: HashSet<&_> = peer.allowed_ips.iter().collect();
            for prefix in state.config.allowed_ips.iter().filter(|p| !kept.contains(p)) {
                self.routes.remove(*prefix, index);
            }
            for prefix in &peer.allowed_ips {
                self.routes.insert(*prefix, index);
            }
        }
        state.config = peer;
        // Gaining a subnet route makes the peer untrimmable; losing its last one, trimmable.
        match state.session {
            None if !self.lazy.trimmable(&state.config) => {
                self.wake(index, now, Waker::Other);
            }
            None => {}
            Some(_) => self.lazy.arm(index, &state.config, &mut state.activity, now),
        }
    }

    fn allocate_local_index(&mut self) -> u32 {
        loop {
            let index = self.next_local_index;
            self.next_local_index = (index + 1) & 0x00ff_ffff;
            if !self.peers.contains_key(&index) {
                return index;
            }
        }
    }

    pub(super) fn run_due_timers(&mut self, now: Instant, sink: &mut dyn PacketSink) {
        let mut due = Vec::new();
        self.schedule.take_due(now, &mut due);
        for (index, why) in due {
            let Some(state) = self.peers.get_mut(&index) else {
                continue;
            };
            match why {
                Due::Hot => state.clock.hot = false,
                Due::Cold(at) if state.clock.hot || state.clock.cold_at != Some(at) => continue,
                Due::Cold(_) => state.clock.cold_at = None,
            }
            // A trimmed peer has no timers; it is scheduled again when it comes back.
            let Some(session) = state.session.as_mut() else {
                continue;
            };
            if let TunnResult::WriteToNetwork(datagram) =
                session.tunn.update_timers(&mut self.scratch)
            {
                if state.send(now, sink, datagram) {
                    state.clock.last_activity = now;
                } else {
                    self.drops.no_endpoint += 1;
                }
            }
            self.schedule.settle(index, &mut state.clock, now);
        }
    }
}

impl PeerState {
    /// Plaintext bytes sent and received, over all of the peer's sessions.
    pub(super) fn traffic(&self) -> (u64, u64) {
        let (tx, rx) = self.session.as_ref().map_or((0, 0), |session| session.traffic());
        (self.trimmed_traffic.0 + tx, self.trimmed_traffic.1 + rx)
    }

    /// Frees the peer's WireGuard session (and any packets held for it), keeping its traffic
    /// counts.
    pub(super) fn trim(&mut self) {
        self.trimmed_traffic = self.traffic();
        self.session = None;
        self.activity.release_held();
    }
}
