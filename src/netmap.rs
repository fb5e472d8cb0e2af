//! The one network map both sources produce — a static config file or a control server — and the
//! engine consumes. Nothing here knows where the data came from.

use crate::keys::{PrivateKey, PublicKey};
use crate::prefix::Prefix;
use std::net::SocketAddr;

/// Everything the engine needs to run this node.
#[derive(Clone, Debug, PartialEq)]
pub struct Netmap {
    pub self_node: SelfNode,
    /// Peers, kept sorted by public key so diffs and output are stable.
    pub peers: Vec<Peer>,
    /// The tailnet's name (MapResponse.Domain); empty for a static config.
    pub domain: String,
}

/// This node.
#[derive(Clone, Debug, PartialEq)]
pub struct SelfNode {
    pub name: String,
    pub private_key: PrivateKey,
    /// Interface addresses (Tailscale IPs), IPv4 first.
    pub addresses: Vec<Prefix>,
    /// UDP listen port from the config; `None` leaves the daemon's `--port` in force.
    pub listen_port: Option<u16>,
    pub mtu: u16,
}

/// A peer node.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    pub public_key: PublicKey,
    pub name: String,
    /// Destinations routed to this peer (its Tailscale IPs and any subnets it serves).
    pub allowed_ips: Vec<Prefix>,
    /// Where the peer may be reached directly. Static configs give at most one; a control
    /// server gives several candidates, among which NAT traversal chooses.
    pub endpoints: Vec<SocketAddr>,
    /// Seconds between keepalives, `None` when off.
    pub persistent_keepalive: Option<u16>,
    pub preshared_key: Option<[u8; 32]>,
}

impl Peer {
    /// The peer's own addresses: its single-host AllowedIPs, as `tailscale status` lists them.
    pub fn tailscale_ips(&self) -> Vec<std::net::IpAddr> {
        self.allowed_ips
            .iter()
            .filter(|p| p.is_host())
            .map(|p| p.addr())
            .collect()
    }

    /// True when only the endpoints changed: a running WireGuard session can be kept.
    pub fn same_session(&self, other: &Peer) -> bool {
        self.public_key == other.public_key
            && self.preshared_key == other.preshared_key
            && self.persistent_keepalive == other.persistent_keepalive
    }
}

pub const DEFAULT_MTU: u16 = 1280;
