//! Where a peer's WireGuard packets go: the one decision magicsock's endpoint makes per packet,
//! named as the NAT-traversal helpers agreed (see the lead's interface notes).

use crate::control::tailcfg::RegionId;
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Directly to this address: a configured static endpoint, one that authenticated
    /// WireGuard traffic came from, or a path a disco pong proved.
    Udp(SocketAddr),
    /// Through the peer's home DERP region.
    Derp(RegionId),
    /// Nowhere yet.
    None,
}
