//! The two section kinds being filled in, key by key, and turned into netmap nodes once the
//! whole section has been read.

use super::fields::{InterfaceField, PeerField};
use super::values;
use crate::keys::{PresharedKey, PrivateKey, PublicKey};
use crate::netmap::{Peer, SelfNode, DEFAULT_MTU};
use crate::prefix::Prefix;
use std::collections::HashSet;
use std::net::SocketAddr;

/// An `[Interface]` section as read so far.
pub(super) struct InterfaceSection {
    /// The line of the `[Interface]` header.
    pub(super) line: usize,
    /// The key and the line it is on, so a peer repeating our own key can point there.
    private_key: Option<(PrivateKey, usize)>,
    addresses: Vec<Prefix>,
    listen_port: Option<u16>,
    mtu: Option<u16>,
    name: Option<String>,
    shields_up: bool,
}

impl InterfaceSection {
    pub(super) fn new(line: usize) -> InterfaceSection {
        InterfaceSection {
            line,
            private_key: None,
            addresses: Vec::new(),
            listen_port: None,
            mtu: None,
            name: None,
            shields_up: false,
        }
    }

    /// `ShieldsUp = true`: refuse every new inbound connection.
    pub(super) fn shields_up(&self) -> bool {
        self.shields_up
    }

    /// Applies one setting found on `line`.
    pub(super) fn set(
        &mut self,
        field: InterfaceField,
        value: &str,
        line: usize,
    ) -> Result<(), String> {
        match field {
            InterfaceField::PrivateKey => {
                self.private_key = Some((values::private_key(value)?, line))
            }
            InterfaceField::Address => self.addresses.extend(values::prefixes(value)?),
            InterfaceField::ListenPort => self.listen_port = Some(values::listen_port(value)?),
            InterfaceField::Mtu => self.mtu = Some(values::mtu(value)?),
            InterfaceField::Name => self.name = Some(values::name(value)?),
            InterfaceField::ShieldsUp => self.shields_up = values::switch(value)?,
        }
        Ok(())
    }

    /// This node, and the line of its PrivateKey.
    pub(super) fn finish(self) -> Result<(SelfNode, usize), String> {
        let (private_key, key_line) = self.private_key.ok_or("[Interface] has no PrivateKey")?;
        let node = SelfNode {
            name: self.name.unwrap_or_default(),
            addresses: ipv4_first(without_repeats(self.addresses)),
            listen_port: self.listen_port,
            mtu: self.mtu.unwrap_or(DEFAULT_MTU),
            ..SelfNode::new(private_key)
        };
        Ok((node, key_line))
    }
}

/// A `[Peer]` section as read so far.
pub(super) struct PeerSection {
    /// The line of the `[Peer]` header.
    pub(super) line: usize,
    /// The key and the line it is on, so a clash with another peer can name both places.
    public_key: Option<(PublicKey, usize)>,
    allowed_ips: Vec<Prefix>,
    endpoint: Option<SocketAddr>,
    persistent_keepalive: Option<u16>,
    preshared_key: Option<PresharedKey>,
    name: Option<String>,
}

impl PeerSection {
    pub(super) fn new(line: usize) -> PeerSection {
        PeerSection {
            line,
            public_key: None,
            allowed_ips: Vec::new(),
            endpoint: None,
            persistent_keepalive: None,
            preshared_key: None,
            name: None,
        }
    }

    /// Applies one setting found on `line`.
    pub(super) fn set(&mut self, field: PeerField, value: &str, line: usize) -> Result<(), String> {
        match field {
            PeerField::PublicKey => self.public_key = Some((values::public_key(value)?, line)),
            PeerField::AllowedIps => self.allowed_ips.extend(values::prefixes(value)?),
            PeerField::Endpoint => self.endpoint = Some(values::endpoint(value)?),
            PeerField::PersistentKeepalive => {
                self.persistent_keepalive = values::persistent_keepalive(value)?
            }
            PeerField::PresharedKey => self.preshared_key = Some(values::preshared_key(value)?),
            PeerField::Name => self.name = Some(values::name(value)?),
        }
        Ok(())
    }

    /// The peer, and the line of its PublicKey.
    pub(super) fn finish(self) -> Result<(Peer, usize), String> {
        let (public_key, key_line) = self.public_key.ok_or("[Peer] has no PublicKey")?;
        // Routes are written as networks; wg(8) masks host bits the same way.
        let networks = self.allowed_ips.iter().map(Prefix::network).collect();
        let peer = Peer {
            public_key,
            name: self.name.unwrap_or_default(),
            allowed_ips: without_repeats(networks),
            endpoints: self.endpoint.into_iter().collect(),
            persistent_keepalive: self.persistent_keepalive,
            preshared_key: self.preshared_key.map(Box::new),
            ..Peer::new(public_key)
        };
        Ok((peer, key_line))
    }
}

/// The prefixes in their first-seen order, each once: listing one twice is harmless.
fn without_repeats(prefixes: Vec<Prefix>) -> Vec<Prefix> {
    let mut seen = HashSet::with_capacity(prefixes.len());
    prefixes.into_iter().filter(|prefix| seen.insert(*prefix)).collect()
}

/// IPv4 addresses before IPv6, each family in the order written, as `SelfNode` promises.
fn ipv4_first(mut addresses: Vec<Prefix>) -> Vec<Prefix> {
    addresses.sort_by_key(|prefix| !prefix.is_ipv4());
    addresses
}
