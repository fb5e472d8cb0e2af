//! The set of peers: applying a new netmap as a difference (sessions of unchanged peers survive),
//! local-index allocation, and running each peer's WireGuard timers.

use super::disco::DiscoPeer;
use super::{Engine, PacketSink};
use crate::netmap::{Netmap, Peer};
use crate::wg::allowed_ips::AllowedIps;
use crate::wg::gate::HandshakeGate;
use crate::wg::timers::{Clock, Due};
use crate::wg::Session;
use boringtun::noise::TunnResult;
use std::net::SocketAddr;
use std::time::Instant;

/// A peer as the engine runs it.
pub struct PeerState {
    pub config: Peer,
    pub session: Session,
    pub clock: Clock,
    /// Where we send without disco: the configured endpoint (static peers only), then
    /// wherever authenticated packets came from (WireGuard roaming).
    pub endpoint: Option<SocketAddr>,
    /// Where WireGuard traffic last authenticated from.
    pub authenticated_from: Option<SocketAddr>,
    /// Disco's view of the peer's paths; `None` for a peer without a disco key.
    pub disco: Option<DiscoPeer>,
    /// When the last handshake message of this peer's was accepted.
    pub last_handshake: Option<Instant>,
}

/// What a netmap change did, for logs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct NetmapChange {
    pub added: usize,
    pub removed: usize,
    pub updated: usize,
}

impl Engine {
    /// Applies `netmap`: new peers get sessions, vanished ones lose theirs, and peers whose key
    /// material is unchanged keep their running session (only endpoints and routes move).
    pub fn apply_netmap(&mut self, netmap: Netmap, now: Instant) -> NetmapChange {
        let mut change = NetmapChange::default();
        if netmap.self_node.private_key != self.netmap.self_node.private_key {
            change.removed += self.peers.len();
            self.peers.clear();
            self.by_key.clear();
            self.handshake_gate = HandshakeGate::new(&netmap.self_node.private_key);
        }
        // Sessions created below use the new identity.
        self.netmap.self_node = netmap.self_node.clone();
        let wanted: std::collections::HashSet<_> =
            netmap.peers.iter().map(|p| p.public_key).collect();
        let gone: Vec<_> = self.by_key.keys().filter(|k| !wanted.contains(k)).copied().collect();
        for key in gone {
            if let Some(index) = self.by_key.remove(&key) {
                self.peers.remove(&index);
                change.removed += 1;
            }
        }
        for peer in &netmap.peers {
            match self.by_key.get(&peer.public_key).copied() {
                Some(index) => change.updated += self.update_peer(index, peer, now) as usize,
                None => {
                    self.add_peer(peer, now);
                    change.added += 1;
                }
            }
        }
        self.netmap = netmap;
        self.rebuild_routes();
        self.rebuild_disco_index();
        let own = &self.netmap.self_node.addresses;
        self.filter.replace_rules(self.netmap.packet_filter.as_deref(), own);
        change
    }

    fn add_peer(&mut self, peer: &Peer, now: Instant) {
        let index = self.allocate_local_index();
        let session = Session::new(
            &self.netmap.self_node.private_key,
            &peer.public_key,
            peer.preshared_key.map(|key| key.0),
            peer.persistent_keepalive,
            index,
            self.handshake_gate.session_limiter(),
        );
        let disco = self.disco.peer(peer);
        // A disco peer's control-listed endpoints are only candidates until a pong proves one.
        let configured = if disco.is_none() { peer.endpoints.first().copied() } else { None };
        let mut state = PeerState {
            config: peer.clone(),
            session,
            clock: Clock::new(now, peer.persistent_keepalive.is_some()),
            endpoint: configured,
            authenticated_from: None,
            disco,
            last_handshake: None,
        };
        if state.clock.keepalive {
            self.schedule.activity(index, &mut state.clock, now);
        }
        self.peers.insert(index, state);
        self.by_key.insert(peer.public_key, index);
    }

    /// Returns whether anything about the peer changed.
    fn update_peer(&mut self, index: u32, peer: &Peer, now: Instant) -> bool {
        let Some(state) = self.peers.get_mut(&index) else {
            return false;
        };
        if state.config == *peer {
            return false;
        }
        if !state.config.same_session(peer) {
            self.peers.remove(&index);
            self.by_key.remove(&peer.public_key);
            self.add_peer(peer, now);
            return true;
        }
        if state.config.disco_key != peer.disco_key || state.config.key_expired != peer.key_expired
        {
            // A new disco key: the peer restarted, and what was proven about it is void.
            state.disco = self.disco.peer(peer);
        } else if state.config.endpoints != peer.endpoints {
            match &mut state.disco {
                Some(disco) => disco.paths.set_endpoints(&peer.endpoints),
                None => state.endpoint = peer.endpoints.first().copied().or(state.endpoint),
            }
        }
        state.config = peer.clone();
        true
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

    fn rebuild_routes(&mut self) {
        let mut routes = AllowedIps::new();
        for (index, state) in &self.peers {
            for prefix in &state.config.allowed_ips {
                routes.insert(*prefix, *index);
            }
        }
        self.routes = routes;
    }

    pub(super) fn run_due_timers(&mut self, now: Instant, sink: &mut dyn PacketSink) {
        let mut due = Vec::new();
        self.schedule.take_due(now, &mut due);
        for (index, why) in due {
            let path = self.path_for(index, now);
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
                let to = state.config.public_key;
                if self.disco.send_wireguard(path, to, datagram, sink) {
                    state.clock.last_activity = now;
                } else {
                    self.drops.no_endpoint += 1;
                }
            }
            self.schedule.settle(index, &mut state.clock, now);
        }
    }
}
