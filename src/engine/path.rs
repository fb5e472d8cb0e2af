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
pub(crate) enum Path {
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
    pub(super) fn addr(&self) -> SocketAddr {
        match self {
            Source::Udp(addr) => *addr,
            Source::Derp { region, .. } => SocketAddr::new(IpAddr::V4(DERP_MAGIC_IP), *region),
        }
    }

    /// The UDP address, when there is one: only those may become a peer's endpoint.
    pub(super) fn udp(&self) -> Option<SocketAddr> {
        match self {
            Source::Udp(addr) => Some(*addr),
            Source::Derp { .. } => None,
        }
    }

    /// Sends `datagram` back to where this source's packet came from.
    pub(super) fn reply(&self, sink: &mut dyn PacketSink, datagram: &[u8]) {
        match self {
            Source::Udp(addr) => sink.send_udp(*addr, datagram),
            Source::Derp { region, key } => sink.send_derp(*region, *key, datagram),
        }
    }
}

impl PeerState {
    /// The peer's outbound path, the one choice magicsock's endpoint makes per packet: a direct
    /// path a disco pong proved (while its trust lasts), else — for a peer without disco only —
    /// a UDP endpoint proven by authenticated WireGuard, else the peer's home DERP region, else
    /// (only for a peer without a relay, which has nothing better) the first unproven candidate
    /// control gave. A plain WireGuard peer (no disco, no relay: a static config's or control's
    /// WireGuard-only peer) trusts its configured endpoint; a Tailscale node's candidates are
    /// not trusted, even before its home region is known.
    pub(super) fn path_for(&self, now: Instant) -> Path {
        if let Some(direct) = self.disco.as_ref().and_then(|d| d.paths.trusted_best(now)) {
            return Path::Udp(direct);
        }
        let plain_wireguard = self.config.disco_key.is_none() && self.config.derp_region.is_none();
        let trusted = self.wireguard_proven_endpoint().is_some() || plain_wireguard;
        match (self.endpoint, trusted, self.config.derp_region) {
            (Some(addr), true, _) => Path::Udp(addr),
            (_, _, Some(region)) => Path::Derp(region),
            (Some(addr), false, None) => Path::Udp(addr),
            (None, _, None) => Path::None,
        }
    }

    /// The direct address in use and proven (tailscale's `CurAddr`): a pong's path, or where
    /// authenticated WireGuard came from; never a merely configured or listed endpoint.
    pub(super) fn proven_direct(&self, now: Instant) -> Option<SocketAddr> {
        let by_disco = self.disco.as_ref().and_then(|d| d.paths.trusted_best(now));
        by_disco.or(self.wireguard_proven_endpoint())
    }

    /// Where authenticated WireGuard last came from, for a peer without disco. A disco peer's
    /// paths are proven by pongs alone, as magicsock's are: WireGuard arriving on an address
    /// says nothing about whether our packets still reach it, and keeping that address after
    /// the pongs stop would hold the peer on a dead path instead of falling back to DERP.
    fn wireguard_proven_endpoint(&self) -> Option<SocketAddr> {
        let proven = self.endpoint_proven && self.config.disco_key.is_none();
        self.endpoint.filter(|_| proven)
    }

    /// Sends `datagram` along [`PeerState::path_for`]; false when there is no path.
    pub(super) fn send(&self, now: Instant, sink: &mut dyn PacketSink, datagram: &[u8]) -> bool {
        match self.path_for(now) {
            Path::Udp(addr) => sink.send_udp(addr, datagram),
            Path::Derp(region) => sink.send_derp(region, self.config.public_key, datagram),
            Path::None => return false,
        }
        true
    }
}
