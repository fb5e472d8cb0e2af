//! The synthetic tailnet peers that the scale tests (`scale_tests`) and the scale bench
//! (`crate::scale_bench`) both build by the thousand: cheap distinct keys, addresses from
//! the index, one endpoint.

use crate::keys::PublicKey;
use crate::netmap::Peer;
use crate::prefix::Prefix;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Peer `i`'s key: distinct bytes are all a session needs, and far cheaper than real keys.
pub(crate) fn key(i: u32) -> PublicKey {
    let mut bytes = [7u8; 32];
    bytes[..4].copy_from_slice(&i.to_le_bytes());
    PublicKey(bytes)
}

/// Peer `i`'s Tailscale IPv4 address (100.64.0.0 + i).
pub(crate) fn v4(i: u32) -> IpAddr {
    Ipv4Addr::from(0x6440_0000 + i).into()
}

/// Peer `i`'s Tailscale IPv6 address (fd7a:115c:a1e0:: + i).
pub(crate) fn v6(i: u32) -> IpAddr {
    Ipv6Addr::from((0xfd7a_115c_a1e0u128 << 80) + u128::from(i)).into()
}

/// A tailnet peer: its two Tailscale addresses as host routes, an endpoint on `port`.
pub(crate) fn peer(i: u32, port: u16) -> Peer {
    Peer {
        name: format!("peer{i}"),
        allowed_ips: vec![Prefix::host(v4(i)), Prefix::host(v6(i))],
        endpoints: vec![SocketAddr::new(v4(i), port)],
        ..Peer::new(key(i))
    }
}
