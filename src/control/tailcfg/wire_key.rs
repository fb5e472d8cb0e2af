//! Public keys as the control protocol spells them: a type prefix and 64 hex digits
//! (`nodekey:…`, `discokey:…`, `mkey:…`, `nlpub:…`). The prefix is part of the type, so a
//! disco key can never be read where a node key belongs.

use crate::keys::PublicKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// Which kind of key a [`WireKey`] is, by its text prefix.
pub(crate) trait KeyKind {
    const PREFIX: &'static str;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum NodeKind {}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum DiscoKind {}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum MachineKind {}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum NlKind {}

impl KeyKind for NodeKind {
    const PREFIX: &'static str = "nodekey:";
}
impl KeyKind for DiscoKind {
    const PREFIX: &'static str = "discokey:";
}
impl KeyKind for MachineKind {
    const PREFIX: &'static str = "mkey:";
}
impl KeyKind for NlKind {
    const PREFIX: &'static str = "nlpub:";
}

/// A 32-byte public key tagged with its kind.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct WireKey<K> {
    pub key: PublicKey,
    kind: PhantomData<K>,
}

/// The WireGuard key of a node.
pub(crate) type NodeKey = WireKey<NodeKind>;
/// The key a node's disco messages are boxed with.
pub(crate) type DiscoKey = WireKey<DiscoKind>;
/// The machine (Noise) key.
pub(crate) type MachineKey = WireKey<MachineKind>;
/// The tailnet-lock key (ed25519, same 32-byte text shape).
pub(crate) type NlKey = WireKey<NlKind>;

impl<K> WireKey<K> {
    pub(crate) fn new(key: PublicKey) -> WireKey<K> {
        WireKey { key, kind: PhantomData }
    }

    /// The key, or `None` for the all-zero key Tailscale sends to mean "none".
    pub(crate) fn non_zero(&self) -> Option<PublicKey> {
        (!self.key.is_zero()).then_some(self.key)
    }
}

impl<K: KeyKind> fmt::Debug for WireKey<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:?}", K::PREFIX, self.key)
    }
}

impl<K: KeyKind> Serialize for WireKey<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key.to_prefixed_hex(K::PREFIX))
    }
}

impl<'de, K: KeyKind> Deserialize<'de> for WireKey<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PublicKey::from_prefixed_hex(K::PREFIX, &text)
            .map(WireKey::new)
            .map_err(serde::de::Error::custom)
    }
}
