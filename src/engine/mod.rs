//! The engine: turns a [`Netmap`] into running WireGuard sessions and cryptokey routes, moves
//! packets between the TUN device and UDP, answers status and ping requests.
//!
//! Sans-IO: the engine owns no file descriptor. The event loop hands it packets and the time,
//! and it writes its output through a [`PacketSink`].

mod datapath;
mod disco;
mod disco_paths;
pub(crate) mod lazy;
mod magicdns;
mod path;
mod peers;
pub(crate) mod ping;
#[cfg(any(test, feature = "bench"))]
pub(crate) mod scale_fixtures;
#[cfg(test)]
mod scale_tests;
mod signature;
pub(crate) mod status;
mod tsmp;

use crate::control::tailcfg::{DnsConfig, RegionId};
use crate::disco::DiscoKey;
use crate::filter::Filter;
use crate::keys::{PrivateKey, PublicKey};
use crate::netmap::{DerpMap, Netmap, SelfNode};
use crate::prefix::Prefix;
use crate::wall_clock::WallClock;
use crate::wg::allowed_ips::AllowedIps;
use crate::wg::gate::HandshakeGate;
use crate::wg::timers::Schedule;
pub(crate) use peers::NetmapChange;

// Named by tests (and fuzz targets) only; the daemon reaches them through the types above.
use peers::PeerState;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime};

/// Where the engine's output goes: the event loop's sockets, DERP connections and TUN in the
/// daemon, a recorder in tests.
pub(crate) trait PacketSink {
    fn send_udp(&mut self, to: SocketAddr, datagram: &[u8]);
    /// Relays `datagram` to the node `to` through the DERP server of `region`.
    fn send_derp(&mut self, region: RegionId, to: PublicKey, datagram: &[u8]);
    fn write_tun(&mut self, packet: &[u8]);
}

/// Datagrams and packets dropped, by reason: silent on the wire, visible in `weft status --json`.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Drops {
    /// Outbound packet to an address no peer's AllowedIPs cover.
    pub no_route: u64,
    /// Outbound packet that is not IPv4/IPv6 or is truncated.
    pub malformed_outbound: u64,
    /// Datagram that is not a WireGuard message, fails its MAC or names no peer of ours.
    pub invalid_datagram: u64,
    /// Initiation from a static key that is not a peer.
    pub unknown_initiator: u64,
    /// Handshake message, under load and with a valid cookie, from a source over its rate.
    pub handshake_rate_limited: u64,
    /// Decryption or replay failure inside a session.
    pub session_error: u64,
    /// Decrypted packet whose source address the sending peer may not use.
    pub spoofed_source: u64,
    /// Peer known but neither an endpoint nor a home relay to send to yet.
    pub no_endpoint: u64,
    /// Inbound packet the packet filter refused, by the filter's reason.
    pub filtered: u64,
    /// Inbound packet opening a new flow while shields are up.
    pub shields_up: u64,
    /// Inbound packet opening a new flow from a peer control jailed (`IsJailed`).
    pub jailed: u64,
    /// TSMP from a peer that is fragmented, cut short or of an unknown type.
    #[serde(rename = "MalformedTSMP")]
    pub malformed_tsmp: u64,
    /// TSMP the OS tried to send: only the daemon speaks it.
    #[serde(rename = "OutboundTSMP")]
    pub outbound_tsmp: u64,
    /// Disco packet whose sender key is no peer's disco key.
    pub disco_unknown_sender: u64,
    /// Disco packet that is truncated, does not authenticate, or says what its path cannot
    /// carry (a CallMeMaybe over UDP, a pong from another address than we pinged).
    pub disco_invalid: u64,
    /// Disco ping left unanswered: the peer's pong budget was spent.
    pub disco_rate_limited: u64,
    /// Packet for a trimmed peer coming back, beyond those held while its handshake completes.
    pub handshake_queue_full: u64,
}

/// What the engine would otherwise read from the OS, read once by the daemon and handed to
/// [`Engine::new`], so the same environment and inputs replay the same run (the pattern of
/// `control::client::Environment`).
#[derive(Clone, Debug)]
pub(crate) struct Environment {
    /// Where local session indexes start; only the low 24 bits count. The daemon makes it
    /// random, so a restarted daemon doesn't reuse the previous run's indexes, which peers
    /// might still hold in old sessions.
    pub index_seed: u32,
    /// The ICMP echo identifier of `weft ping`'s requests; the daemon uses its process id.
    pub ping_id: u16,
    /// The wall clock, read together with the `now` given to [`Engine::new`].
    pub clock: WallClock,
    /// This run's disco private key; its public half goes to control in every MapRequest.
    pub disco_key: PrivateKey,
    /// Random bytes that make disco nonces and transaction ids unique to this run.
    pub disco_seed: [u8; 16],
    /// When idle peers lose their WireGuard session.
    pub lazy: lazy::LazyConfig,
    /// The key of MagicDNS's upstream query IDs; the daemon draws it from the OS.
    pub dns_key: [u8; 32],
}

/// Largest IP packet we accept from the TUN or produce for it.
pub(crate) const MAX_PACKET: usize = 65535;

pub(crate) struct Engine {
    /// The running netmap but for its peers, which live in `peers` alone (this `peers` list
    /// stays empty), so that a change to one peer touches one entry.
    netmap: Netmap,
    /// Handshake messages pass here before any Diffie-Hellman.
    handshake_gate: HandshakeGate,
    /// Boxed, so that growing the map moves pointers; a peer's session (some 12 KB, mostly
    /// boringtun's `Tunn`) is boxed apart, present only while the peer is not trimmed.
    peers: HashMap<u32, Box<PeerState>>,
    by_key: HashMap<PublicKey, u32>,
    routes: AllowedIps<u32>,
    /// Control's packet filter (ACLs) on packets arriving from peers.
    filter: Filter,
    schedule: Schedule,
    next_local_index: u32,
    drops: Drops,
    pings: ping::Pings,
    /// TCP connects under way through the tunnel, for turning a peer's refusal into a reset.
    opening: tsmp::OpeningConnections,
    /// Packets the engine answers a peer with (TSMP pongs and rejections): peer, our source
    /// address, packet.
    answers: Vec<(u32, IpAddr, Vec<u8>)>,
    health: Vec<String>,
    /// Output space for boringtun; one packet plus WireGuard's overhead.
    scratch: Vec<u8>,
    /// A copy of an outbound packet whose source is rewritten for a masquerading peer; it only
    /// grows when such a peer exists.
    rewrite_buffer: Vec<u8>,
    /// One reading of both clocks at start-up, to turn event instants into wall-clock times
    /// that stay the same from one status request to the next.
    clock_anchor: WallClock,
    disco: disco::Disco,
    lazy: lazy::Lazy,
    signer: signature::Signer,
    /// The signature of the running configuration; `None` after a delta changed it.
    signature: Option<signature::Signature>,
    /// The DNS server at 100.100.100.100, while the netmap turns MagicDNS on.
    magic_dns: crate::magicdns::MagicDns,
    /// Its queries for the daemon's sockets (those to resolvers outside the tunnel), one socket per query.
    dns_outbox: std::collections::VecDeque<crate::magicdns::Transmit>,
    /// The UDP port its queries to resolvers inside the tunnel leave from (our own address).
    dns_tunnel_port: u16,
}

impl Engine {
    pub(crate) fn new(netmap: Netmap, now: Instant, environment: Environment) -> Engine {
        let handshake_gate = HandshakeGate::new(&netmap.self_node.private_key);
        let magic_dns = crate::magicdns::MagicDns::new(&environment.dns_key);
        let mut engine = Engine {
            netmap: Netmap::new(netmap.self_node.clone()),
            handshake_gate,
            peers: HashMap::new(),
            by_key: HashMap::new(),
            routes: AllowedIps::new(),
            filter: Filter::new(None, &[]),
            schedule: Schedule::default(),
            next_local_index: environment.index_seed & 0x00ff_ffff,
            drops: Drops::default(),
            pings: ping::Pings::new(environment.ping_id),
            opening: tsmp::OpeningConnections::new(),
            answers: Vec::new(),
            health: Vec::new(),
            scratch: vec![0; MAX_PACKET + crate::wg::OVERHEAD + crate::wg::MIN_BUFFER],
            rewrite_buffer: Vec::new(),
            clock_anchor: environment.clock,
            disco: disco::Disco::new(
                DiscoKey::from_private(environment.disco_key),
                environment.disco_seed,
            ),
            lazy: lazy::Lazy::new(environment.lazy),
            signer: signature::Signer::new(),
            signature: None,
            dns_tunnel_port: magic_dns.tunnel_port(),
            magic_dns,
            dns_outbox: std::collections::VecDeque::new(),
        };
        engine.apply_netmap(netmap, now);
        engine
    }

    pub(crate) fn self_node(&self) -> &SelfNode {
        &self.netmap.self_node
    }

    /// The tailnet's DNS settings in the running netmap, if control sent any.
    pub(crate) fn dns_config(&self) -> Option<&DnsConfig> {
        self.netmap.dns.as_ref()
    }

    /// The DERP regions of the running netmap, if control sent any.
    pub(crate) fn derp_map(&self) -> Option<&DerpMap> {
        self.netmap.derp_map.as_ref()
    }

    pub(crate) fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The peers' endpoint addresses outside the tunnel, for NetBSD's host routes: one a
    /// route into the tunnel covers (another peer's subnet, a peer's own address) is left out,
    /// since a host route to it would pull this host's traffic to that address out of the
    /// tunnel, on the word of the peer that announced it.
    pub(crate) fn peer_endpoint_ips(&self) -> impl Iterator<Item = std::net::IpAddr> + '_ {
        self.peers
            .values()
            .flat_map(|state| state.config.endpoints.iter().map(|e| e.ip()))
            .filter(|ip| self.routes.lookup(*ip).is_none())
    }

    /// The running netmap, reassembled with its peers sorted by key. It copies every peer:
    /// for inspection and tests, not for every change.
    #[cfg(any(test, feature = "bench"))]
    pub(crate) fn netmap(&self) -> Netmap {
        let mut peers: Vec<_> = self.peers.values().map(|state| state.config.clone()).collect();
        peers.sort_by_key(|peer| peer.public_key);
        Netmap { peers, ..self.netmap.clone() }
    }

    /// Every destination routed into the tunnel: all peers' AllowedIPs as networks and, while
    /// MagicDNS is on, its service addresses, each once, sorted.
    pub(crate) fn routes(&self) -> Vec<Prefix> {
        let mut routes: Vec<Prefix> =
            self.routes.prefixes().chain(self.magic_dns_routes()).collect();
        routes.sort_unstable();
        routes.dedup();
        routes
    }

    /// Replaces the problems reported by the platform layer (routing, TUN, sockets).
    pub(crate) fn set_health(&mut self, problems: Vec<String>) {
        self.health = problems;
    }

    /// Shields up: every new inbound flow is dropped, whatever the packet filter allows.
    pub(crate) fn set_shields_up(&mut self, on: bool) {
        self.filter.set_shields_up(on);
    }

    pub(crate) fn shields_up(&self) -> bool {
        self.filter.shields_up()
    }

    #[cfg(test)]
    pub(crate) fn drops(&self) -> &Drops {
        &self.drops
    }

    /// The wall-clock time of `instant`, by the start-up anchor.
    fn wall_time(&self, instant: Instant) -> SystemTime {
        self.clock_anchor.wall_at(instant)
    }

    /// The earliest time [`Engine::handle_timeout`] must run; `None` when nothing is pending.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [
            self.schedule.poll_timeout(),
            self.pings.poll_timeout(),
            self.disco_poll_timeout(),
            self.lazy.poll_timeout(),
            self.magic_dns.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs WireGuard timers and disco heartbeats that are due, trims peers idle long enough
    /// and expires pings and forwarded DNS queries that went unanswered.
    pub(crate) fn handle_timeout(&mut self, now: Instant, sink: &mut dyn PacketSink) {
        self.run_due_timers(now, sink);
        self.trim_idle(now);
        self.run_disco_heartbeats(now, sink);
        self.pings.expire(now);
        self.expire_dns(now, sink);
    }
}

#[cfg(test)]
mod tests;
