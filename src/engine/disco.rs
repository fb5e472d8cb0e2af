//! Disco in the engine: recognising disco packets among the datagrams, opening them with the
//! sending peer's disco key, answering pings, proving paths with pongs, and sending our own
//! pings and CallMeMaybes. Which path to use is [`super::disco_paths`]'s decision.

use super::disco_paths::{DiscoPaths, PongOutcome, Probe};
use super::lazy::Waker;
use super::path::Source;
use super::ping::PingId;
use super::{Engine, PacketSink};
use crate::control::tailcfg::RegionId;
use crate::disco::{self, CallMeMaybe, DiscoKey, Message, PeerSession, Ping, Pong, TxId};
use crate::keys::PublicKey;
use crate::naclbox::Nonce;
use crate::netmap::Peer;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The engine's disco identity and what is shared by all peers.
pub(super) struct Disco {
    key: DiscoKey,
    /// Peers by disco key: the sender key in a packet's clear header picks the peer before any
    /// crypto runs.
    by_key: HashMap<PublicKey, u32>,
    /// Nonces and transaction ids are this random prefix and a counter: unique for the life
    /// of the disco key, which lives as long as the daemon.
    prefix: [u8; 16],
    counter: u64,
    /// Our own candidate addresses, sent in CallMeMaybe.
    own_endpoints: Vec<SocketAddr>,
    /// Heartbeat deadlines by peer, so the loop's every `poll_timeout` costs no walk over
    /// all peers. At most one entry per peer is current; one left by a removed or reset peer
    /// is skipped when it comes due.
    heartbeats: BTreeSet<(Instant, u32)>,
}

/// One disco-speaking peer: its box and its paths.
pub(super) struct DiscoPeer {
    key: PublicKey,
    session: PeerSession,
    pub(super) paths: DiscoPaths,
}

impl Disco {
    pub(super) fn new(key: DiscoKey, prefix: [u8; 16]) -> Disco {
        Disco {
            key,
            by_key: HashMap::new(),
            prefix,
            counter: 0,
            own_endpoints: Vec::new(),
            heartbeats: BTreeSet::new(),
        }
    }

    /// The disco state for `peer`, if it speaks disco.
    pub(super) fn peer(&self, peer: &Peer) -> Option<Box<DiscoPeer>> {
        let key = peer.disco_key.filter(|k| !k.is_zero() && !peer.key_expired)?;
        Some(Box::new(DiscoPeer {
            key,
            session: self.key.session(key),
            paths: DiscoPaths::new(&peer.endpoints),
        }))
    }

    fn next_unique(&mut self) -> [u8; 24] {
        self.counter += 1;
        let mut unique = [0u8; 24];
        unique[..16].copy_from_slice(&self.prefix);
        unique[16..].copy_from_slice(&self.counter.to_be_bytes());
        unique
    }

    fn nonce(&mut self) -> Nonce {
        self.next_unique()
    }

    fn tx_id(&mut self) -> TxId {
        let unique = self.next_unique();
        let mut tx_id = [0u8; 12];
        tx_id[..4].copy_from_slice(&unique[..4]);
        tx_id[4..].copy_from_slice(&unique[16..]);
        tx_id
    }

    /// Lets packets from `disco`'s key find peer `index`.
    pub(super) fn index_peer(&mut self, disco: Option<&DiscoPeer>, index: u32) {
        if let Some(disco) = disco {
            self.by_key.insert(disco.key, index);
        }
    }

    /// Undoes [`Disco::index_peer`] (unless another peer has claimed the key since).
    pub(super) fn forget_peer(&mut self, disco: Option<&DiscoPeer>, index: u32) {
        if let Some(disco) = disco {
            if self.by_key.get(&disco.key) == Some(&index) {
                self.by_key.remove(&disco.key);
            }
        }
    }

    /// Every peer is gone (a new node key).
    pub(super) fn forget_all_peers(&mut self) {
        self.by_key.clear();
    }
}

impl Engine {
    /// Our own candidate addresses (local interfaces, STUN results), offered in CallMeMaybe.
    pub(crate) fn set_own_endpoints(&mut self, endpoints: Vec<SocketAddr>) {
        self.disco.own_endpoints = endpoints;
    }

    /// Traffic is going to peer `index`: without a proven path, look for one.
    pub(super) fn disco_note_send(&mut self, index: u32, now: Instant, sink: &mut dyn PacketSink) {
        let Some(disco) = self.peers.get_mut(&index).and_then(|s| s.disco.as_mut()) else {
            return;
        };
        let armed = disco.paths.poll_timeout();
        let discover = disco.paths.note_send(now);
        if let Some(at) = disco.paths.poll_timeout().filter(|_| armed.is_none()) {
            self.disco.heartbeats.insert((at, index));
        }
        if discover {
            let ids = &mut self.disco;
            let probe = disco.paths.discover(now, &mut || ids.tx_id());
            self.send_probe(index, probe, sink);
        }
    }

    /// `weft ping`'s (or control's) disco ping to peer `index`: through its home DERP region
    /// while no direct path is trusted, and along [`DiscoPaths::user_probe`]'s paths. The
    /// first pong answers it, naming the path it came on.
    pub(super) fn start_disco_ping(
        &mut self,
        now: Instant,
        index: u32,
        target: IpAddr,
        name: String,
        timeout: Duration,
        sink: &mut dyn PacketSink,
    ) -> Result<PingId, String> {
        let Some(state) = self.peers.get_mut(&index) else {
            return Err(format!("no peer's AllowedIPs contain {target}"));
        };
        let region = state.config.derp_region;
        let Some(disco) = state.disco.as_mut() else {
            return Err(format!("{target} belongs to a peer that does not speak disco"));
        };
        let relayed = region.is_some() && disco.paths.trusted_best(now).is_none();
        let ids = &mut self.disco;
        let mut probe = disco.paths.user_probe(now, &mut || ids.tx_id());
        probe.derp_ping = relayed.then(|| self.disco.tx_id());
        if probe.pings.is_empty() && probe.derp_ping.is_none() {
            return Err(format!("no path to {target}: no endpoint and no home DERP region"));
        }
        let mut tx_ids: Vec<TxId> = probe.pings.iter().map(|(_, tx_id)| *tx_id).collect();
        tx_ids.extend(probe.derp_ping);
        let id = self.register_disco_ping(now, target, name, timeout, (index, tx_ids));
        self.send_probe(index, probe, sink);
        // Like traffic, a ping keeps the peer's paths searched and refreshed for a while.
        self.disco_note_send(index, now, sink);
        Ok(id)
    }

    /// The earliest disco heartbeat; `None` when every peer is idle.
    pub(super) fn disco_poll_timeout(&self) -> Option<Instant> {
        self.disco.heartbeats.first().map(|(at, _)| *at)
    }

    pub(super) fn run_disco_heartbeats(&mut self, now: Instant, sink: &mut dyn PacketSink) {
        while let Some(&(at, index)) = self.disco.heartbeats.first() {
            if at > now {
                return;
            }
            self.disco.heartbeats.pop_first();
            let Some(disco) = self.peers.get_mut(&index).and_then(|s| s.disco.as_mut()) else {
                continue;
            };
            if disco.paths.poll_timeout() != Some(at) {
                continue;
            }
            let ids = &mut self.disco;
            let probe = disco.paths.heartbeat(now, &mut || ids.tx_id());
            if let Some(next) = disco.paths.poll_timeout() {
                self.disco.heartbeats.insert((next, index));
            }
            if let Some(state) = self.peers.get(&index) {
                // A trust that lapsed without a pong shows here, between sends.
                state.current_path(now);
            }
            self.send_probe(index, probe, sink);
        }
    }

    /// Seals and sends a probe's pings (over UDP, and the one through the peer's home DERP
    /// region), and the CallMeMaybe that asks the peer to ping back.
    fn send_probe(&mut self, index: u32, probe: Probe, sink: &mut dyn PacketSink) {
        let Some(state) = self.peers.get(&index) else {
            return;
        };
        let Some(disco) = &state.disco else {
            return;
        };
        let node_key = self.netmap.self_node.private_key.public_key();
        let own_endpoints = &self.disco.own_endpoints;
        let call_me_maybe = probe.call_me_maybe && !own_endpoints.is_empty();
        let call = CallMeMaybe::new(own_endpoints.clone()).filter(|_| call_me_maybe);
        let nonces = &mut self.disco;
        let mut seal = |message: Message| disco.session.seal(&nonces.nonce(), &message);
        for (to, tx_id) in probe.pings {
            if let Some(ping) = Ping::new(tx_id, node_key, 0) {
                sink.send_udp(to, &seal(Message::Ping(ping)));
            }
        }
        let Some(region) = state.config.derp_region else {
            return;
        };
        let to = state.config.public_key;
        if let Some(ping) = probe.derp_ping.and_then(|tx_id| Ping::new(tx_id, node_key, 0)) {
            sink.send_derp(region, to, &seal(Message::Ping(ping)));
        }
        if let Some(call) = call {
            sink.send_derp(region, to, &seal(Message::CallMeMaybe(call)));
        }
    }

    /// A disco packet that came over UDP from `from`.
    pub(super) fn handle_disco_udp(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: &[u8],
        sink: &mut dyn PacketSink,
    ) {
        let Some((index, message)) = self.open_disco(packet) else {
            return;
        };
        match message {
            Message::Ping(ping) => self.answer_ping(index, now, Source::Udp(from), &ping, sink),
            Message::Pong(pong) => self.take_pong(index, now, from, &pong),
            // Only over DERP, where the DERP server vouches for the sender's node key.
            Message::CallMeMaybe(_) => self.drops.disco_invalid += 1,
        }
    }

    /// A disco packet that came over DERP region `region` from node `from` (the DERP driver
    /// hands these over before WireGuard sees them).
    pub(crate) fn handle_disco_via_derp(
        &mut self,
        now: Instant,
        region: RegionId,
        from: PublicKey,
        packet: &[u8],
        sink: &mut dyn PacketSink,
    ) {
        let Some((index, message)) = self.open_disco(packet) else {
            return;
        };
        let Some(state) = self.peers.get_mut(&index) else {
            return;
        };
        // The DERP server names the sending node: it must be the peer holding this disco key.
        if state.config.public_key != from {
            self.drops.disco_invalid += 1;
            return;
        }
        match message {
            Message::Ping(ping) => {
                self.answer_ping(index, now, Source::Derp { region, key: from }, &ping, sink)
            }
            // A pong over DERP proves no direct path; it may answer `weft ping`.
            Message::Pong(pong) => {
                let derp_map = self.netmap.derp_map.as_ref();
                let via = Source::Derp { region, key: from };
                let code = |region| super::status::region_code(derp_map, Some(region));
                if !self.pings.take_disco_pong(index, &pong.tx_id(), now, &via, code) {
                    log::trace!("disco: unsolicited pong via DERP region {region} dropped");
                }
            }
            Message::CallMeMaybe(call) => {
                let Some(disco) = state.disco.as_mut() else {
                    return;
                };
                disco.paths.on_call_me_maybe(call.endpoints());
                let ids = &mut self.disco;
                let mut probe = disco.paths.discover(now, &mut || ids.tx_id());
                // The peer is already pinging us: no CallMeMaybe back.
                probe.call_me_maybe = false;
                self.send_probe(index, probe, sink);
            }
        }
    }

    /// The peer a disco packet is from and its message; drops (counted) what is not from a
    /// peer's disco key or does not open.
    fn open_disco(&mut self, packet: &[u8]) -> Option<(u32, Message)> {
        let Ok(sender) = disco::sender(packet) else {
            self.drops.disco_invalid += 1;
            return None;
        };
        let Some(index) = self.disco.by_key.get(&sender).copied() else {
            self.drops.disco_unknown_sender += 1;
            return None;
        };
        let disco = self.peers.get(&index).and_then(|s| s.disco.as_ref())?;
        match disco.session.open(packet) {
            Ok(message) => Some((index, message)),
            Err(e) => {
                log::trace!("disco packet from peer {index} dropped: {e}");
                self.drops.disco_invalid += 1;
                None
            }
        }
    }

    fn answer_ping(
        &mut self,
        index: u32,
        now: Instant,
        via: Source,
        ping: &Ping,
        sink: &mut dyn PacketSink,
    ) {
        let Some(state) = self.peers.get(&index) else {
            return;
        };
        if ping.node_key().is_some_and(|k| k != state.config.public_key) {
            self.drops.disco_invalid += 1;
            return;
        }
        // A peer looking for a path to us is about to send: bring it back if trimmed.
        self.wake(index, now, Waker::Other);
        let Some(state) = self.peers.get_mut(&index) else {
            return;
        };
        let Some(disco) = state.disco.as_mut() else {
            return;
        };
        if let Source::Udp(from) = via {
            disco.paths.on_ping(now, from);
        }
        if !disco.paths.allow_pong(now) {
            self.drops.disco_rate_limited += 1;
            return;
        }
        let pong = Message::Pong(Pong::new(ping.tx_id(), via.addr()));
        let packet = disco.session.seal(&self.disco.nonce(), &pong);
        via.reply(sink, &packet);
    }

    fn take_pong(&mut self, index: u32, now: Instant, from: SocketAddr, pong: &Pong) {
        let Some(state) = self.peers.get_mut(&index) else {
            return;
        };
        let Some(disco) = state.disco.as_mut() else {
            return;
        };
        match disco.paths.on_pong(now, pong.tx_id(), from) {
            PongOutcome::Proven { addr, latency, best } => {
                log::debug!("disco: peer {index} answers at {addr} in {latency:?} (best: {best})");
                state.current_path(now);
                let via = Source::Udp(from);
                self.pings.take_disco_pong(index, &pong.tx_id(), now, &via, |_| String::new());
            }
            PongOutcome::WrongSource => self.drops.disco_invalid += 1,
            PongOutcome::Unknown => {}
        }
    }
}
