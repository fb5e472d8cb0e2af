//! The set of peers: applying a new netmap as a difference (sessions of unchanged peers survive)
//! or a delta of a few peers, local-index allocation, and running each peer's WireGuard timers.
//!
//! Every change is made one peer at a time — its session, its index, its claims in the route
//! table — so a delta costs time in proportion to the peers it names, and a full netmap in
//! proportion to its size, with no rebuild of the route table.

use super::disco::DiscoPeer;
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
    pub session: Session,
    pub clock: Clock,
    /// The UDP address outside disco's proof: the first configured or control-listed
    /// endpoint, then wherever authenticated packets came from (WireGuard roaming).
    pub endpoint: Option<SocketAddr>,
    /// `endpoint` was proven by an authenticated packet from it (see
    /// [`PeerState::path_for`] for when a configured endpoint is trusted without proof).
    pub endpoint_proven: bool,
    /// Disco's view of the peer's paths; `None` for a peer without a disco key.
    pub disco: Option<DiscoPeer>,
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
    /// The routed prefixes or this node's addresses or MTU may differ: the OS's routes and
    /// addresses need applying again.
    pub routes_changed: bool,
}

impl Engine {
    /// Applies `netmap`: new peers get sessions, vanished ones lose theirs, and peers whose key
    /// material is unchanged keep their running session (only endpoints and routes move).
    pub(crate) fn apply_netmap(&mut self, netmap: Netmap, now: Instant) -> NetmapChange {
        let Netmap { peers, self_node, domain, user_profiles, derp_map, packet_filter, dns } =
            netmap;
        let mut change = NetmapChange::default();
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
            || self_node.mtu != self.netmap.self_node.mtu;
        // Sessions created below use the new identity; peers live in `self.peers` only.
        self.netmap = Netmap {
            self_node,
            peers: Vec::new(),
            domain,
            user_profiles,
            derp_map,
            packet_filter,
            dns,
        };
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
        change
    }

    /// Applies a change to the named peers only; everything else stays as it is.
    pub(crate) fn apply_peer_delta(&mut self, delta: PeerDelta, now: Instant) -> NetmapChange {
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

    fn add_peer(&mut self, peer: Peer, now: Instant, change: &mut NetmapChange) {
        let index = self.allocate_local_index();
        let session = Session::new(
            &self.netmap.self_node.private_key,
            &peer.public_key,
            peer.preshared_key.map(|key| key.0),
            peer.persistent_keepalive,
            index,
            self.handshake_gate.session_limiter(),
        );
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
            path_log: PathLog::default(),
            session,
            config: peer,
        });
        if state.clock.keepalive {
            self.schedule.activity(index, &mut state.clock, now);
        }
        self.by_key.insert(state.config.public_key, index);
        self.disco.index_peer(state.disco.as_ref(), index);
        self.peers.insert(index, state);
    }

    fn remove_peer(&mut self, key: &PublicKey, change: &mut NetmapChange) {
        let Some(state) = self.by_key.remove(key).and_then(|index| self.peers.remove(&index))
        else {
            return;
        };
        for prefix in &state.config.allowed_ips {
            self.routes.remove(*prefix, state.session.local_index);
        }
        self.disco.forget_peer(state.disco.as_ref(), state.session.local_index);
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
            self.disco.forget_peer(state.disco.as_ref(), index);
            state.disco = self.disco.peer(&peer);
            self.disco.index_peer(state.disco.as_ref(), index);
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
            if let TunnResult::WriteToNetwork(datagram) =
                state.session.tunn.update_timers(&mut self.scratch)
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
