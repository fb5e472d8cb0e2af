//! A signature of what a netmap configures in the engine — WireGuard (peers' keys, endpoints,
//! AllowedIPs, paths), the router (this node's addresses, MTU and firewall attribute, every
//! route) and the packet filter (its rules, and which peers are jailed) — so that a netmap
//! that changes none of it (control resends the map when only a peer's online state or
//! last-seen time moved) skips the reconfiguration: no session, route or filter is touched
//! (tailscaled compares such a hash in `Reconfig` likewise).
//!
//! The hasher is keyed at random per engine: signatures are compared, never shown, and a
//! chosen netmap cannot aim at a collision.

use crate::netmap::{Netmap, Peer};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Signature(u64);

pub(super) struct Signer {
    keys: RandomState,
}

impl Signer {
    pub(super) fn new() -> Signer {
        Signer { keys: RandomState::new() }
    }

    /// The signature of `netmap`'s WireGuard, router and filter configuration; `None` if the
    /// filter cannot be serialized (it always can: plain data), so the netmap is applied.
    pub(super) fn sign(&self, netmap: &Netmap) -> Option<Signature> {
        let mut hasher = self.keys.build_hasher();
        let own = &netmap.self_node;
        own.private_key.public_key().hash(&mut hasher);
        own.addresses.hash(&mut hasher);
        own.mtu.hash(&mut hasher);
        own.cgnat_drop_disabled.hash(&mut hasher);
        netmap.peers.len().hash(&mut hasher);
        for peer in &netmap.peers {
            hash_peer(peer, &mut hasher);
        }
        // The filter rules are wire structures without `Hash`: their JSON feeds the hasher.
        serde_json::to_writer(HashWriter(&mut hasher), &netmap.packet_filter).ok()?;
        Some(Signature(hasher.finish()))
    }
}

/// Everything of `peer` the engine configures; not its names, owner, online state or times.
fn hash_peer(peer: &Peer, hasher: &mut impl Hasher) {
    peer.public_key.hash(hasher);
    peer.preshared_key.as_ref().map(|key| key.0).hash(hasher);
    peer.persistent_keepalive.hash(hasher);
    peer.allowed_ips.hash(hasher);
    peer.endpoints.hash(hasher);
    peer.disco_key.hash(hasher);
    peer.derp_region.hash(hasher);
    peer.key_expired.hash(hasher);
    peer.masquerade_as.hash(hasher);
    peer.jailed.hash(hasher);
}

/// Feeds serialized bytes to a hasher.
struct HashWriter<'h, H: Hasher>(&'h mut H);

impl<H: Hasher> std::io::Write for HashWriter<'_, H> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
