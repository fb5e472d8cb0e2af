//! Which way a peer's packets leave, and where an arriving packet came from: a UDP address, or
//! a DERP relay region that forwards by node key. The one place that chooses the outbound path
//! is [`PeerState::path_for`].

use super::peers::PeerState;
use super::PacketSink;
use crate::control::tailcfg::RegionId;
use crate::keys::PublicKey;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

/// Where a peer's packets go now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Udp(SocketAddr),
    /// Through the relay of this region, addressed by the peer's node key.
    Derp(RegionId),
    /// Nowhere yet: no trusted endpoint and no home relay.
    None,
}

/// The address that stands for "relayed through DERP region N" where a socket address is
/// expected (ping results, the handshake gate's per-source accounting): tailscale's
/// `127.3.3.40:N`, which no real packet can come from.
const DERP_MAGIC_IP: Ipv4Addr = Ipv4Addr::new(127, 3, 3, 40);

/// Where an arriving datagram came from; replies that answer it go back the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    Udp(SocketAddr),
    Derp { region: RegionId, key: PublicKey },
}

impl Source {
    /// The source as a socket address; DERP regions as tailscale's magic address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Source::Udp(addr) => *addr,
            Source::Derp { region, .. } => SocketAddr::new(IpAddr::V4(DERP_MAGIC_IP), *region),
        }
    }

    /// The UDP address, when there is one: only those may become a peer's endpoint.
    pub fn udp(&self) -> Option<SocketAddr> {
        match self {
            Source::Udp(addr) => Some(*addr),
            Source::Derp { .. } => None,
        }
    }

    /// Sends `datagram` back to where this source's packet came from.
    pub fn reply(&self, sink: &mut dyn PacketSink, datagram: &[u8]) {
        match self {
            Source::Udp(addr) => sink.send_udp(*addr, datagram),
            Source::Derp { region, key } => sink.send_derp(*region, *key, datagram),
        }
    }
}

impl PeerState {
    /// The peer's outbound path: a trusted UDP endpoint, else its home DERP region, else the
    /// first unproven candidate control gave (a peer without a relay has nothing better).
    /// Trusted means proven by an authenticated packet from it, or configured for a plain
    /// WireGuard peer (no disco, no relay: a static config's or control's WireGuard-only
    /// peer); a Tailscale node's candidates are not, even before its home region is known.
    pub fn path_for(&self, _now: Instant) -> Path {
        let plain_wireguard = self.config.disco_key.is_none() && self.config.derp_region.is_none();
        let trusted = self.endpoint_proven || plain_wireguard;
        match (self.endpoint, trusted, self.config.derp_region) {
            (Some(addr), true, _) => Path::Udp(addr),
            (_, _, Some(region)) => Path::Derp(region),
            (Some(addr), false, None) => Path::Udp(addr),
            (None, _, None) => Path::None,
        }
    }

    /// Sends `datagram` along [`PeerState::path_for`]; false when there is no path.
    pub fn send(&self, now: Instant, sink: &mut dyn PacketSink, datagram: &[u8]) -> bool {
        match self.path_for(now) {
            Path::Udp(addr) => sink.send_udp(addr, datagram),
            Path::Derp(region) => sink.send_derp(region, self.config.public_key, datagram),
            Path::None => return false,
        }
        true
    }
}
