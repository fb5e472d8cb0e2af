//! Peer-set deltas: a full `Peers` list, or removals, upserts, seen/online flags and field
//! patches, in the official client's order — and a record of which peers they touched, so
//! that a change to a few peers reaches the engine as a delta of those peers alone.

use crate::control::tailcfg::{MapResponse, Node, NodeId, PeerChange};
use crate::keys::PublicKey;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::mem;
use std::time::SystemTime;

/// The peers control has described, by node ID.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct PeerTable {
    nodes: BTreeMap<NodeId, Node>,
    /// How many nodes carry each usable key; a key carried twice is settled by the whole
    /// netmap (the lowest node ID keeps it), never by a delta.
    key_users: HashMap<PublicKey, usize>,
    pending: Touched,
}

/// What changed since [`PeerTable::take_touched`] was last called.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Touched {
    /// The whole list was replaced.
    pub everything: bool,
    /// Nodes added, changed or removed.
    pub nodes: BTreeSet<NodeId>,
    /// Keys that nodes carried before they were removed or re-keyed.
    pub old_keys: BTreeSet<PublicKey>,
}

/// A node's WireGuard key, if it has one the engine can use.
pub(super) fn usable_key(node: &Node) -> Option<PublicKey> {
    node.key?.non_zero()
}

impl PeerTable {
    pub(super) fn get(&self, id: &NodeId) -> Option<&Node> {
        self.nodes.get(id)
    }

    pub(super) fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// How many nodes carry `key`.
    pub(super) fn key_users(&self, key: &PublicKey) -> usize {
        self.key_users.get(key).copied().unwrap_or(0)
    }

    /// What changed since the last call, forgetting it.
    pub(super) fn take_touched(&mut self) -> Touched {
        mem::take(&mut self.pending)
    }

    fn replace_all(&mut self, nodes: impl Iterator<Item = Node>) {
        self.nodes = nodes.map(|node| (node.id, node)).collect();
        self.key_users.clear();
        for key in self.nodes.values().filter_map(usable_key) {
            *self.key_users.entry(key).or_default() += 1;
        }
        self.pending.everything = true;
    }

    fn remove(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.remove(&id) {
            self.rekeyed(id, usable_key(&node), None);
        }
    }

    fn upsert(&mut self, node: Node) {
        let id = node.id;
        let new_key = usable_key(&node);
        let old_key = self.nodes.insert(id, node).and_then(|old| usable_key(&old));
        self.rekeyed(id, old_key, new_key);
    }

    /// Changes a known node in place; an unknown ID is ignored.
    fn modify(&mut self, id: NodeId, change: impl FnOnce(&mut Node)) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let old_key = usable_key(node);
        change(node);
        let new_key = usable_key(node);
        self.rekeyed(id, old_key, new_key);
    }

    /// Records that node `id` changed, from carrying `old` to carrying `new`.
    fn rekeyed(&mut self, id: NodeId, old: Option<PublicKey>, new: Option<PublicKey>) {
        self.pending.nodes.insert(id);
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.pending.old_keys.insert(old);
            if let Some(users) = self.key_users.get_mut(&old) {
                *users -= 1;
                if *users == 0 {
                    self.key_users.remove(&old);
                }
            }
        }
        if let Some(new) = new {
            *self.key_users.entry(new).or_default() += 1;
        }
    }
}

/// Applies the peer parts of `response` (taking them out of it); true if it had any.
pub(super) fn apply(peers: &mut PeerTable, response: &mut MapResponse, now: SystemTime) -> bool {
    if !response.peers.is_empty() {
        // A complete list: everything else about peers in this message is moot.
        peers.replace_all(normalized(mem::take(&mut response.peers)));
        return true;
    }
    let mut touched = false;
    for id in mem::take(&mut response.peers_removed) {
        peers.remove(id);
        touched = true;
    }
    for node in normalized(mem::take(&mut response.peers_changed)) {
        peers.upsert(node);
        touched = true;
    }
    for (id, seen) in mem::take(&mut response.peer_seen_change) {
        peers.modify(id, |node| node.last_seen = seen.then_some(now));
        touched = true;
    }
    for (id, online) in mem::take(&mut response.online_change) {
        peers.modify(id, |node| node.online = Some(online));
        touched = true;
    }
    for change in mem::take(&mut response.peers_changed_patch) {
        peers.modify(change.node_id, |node| patch(node, change));
        touched = true;
    }
    touched
}

fn normalized(nodes: Vec<Node>) -> impl Iterator<Item = Node> {
    nodes.into_iter().map(|mut node| {
        node.normalize();
        node
    })
}

/// Sets the fields `change` carries; zero region and capability mean "unchanged".
fn patch(node: &mut Node, change: PeerChange) {
    if change.derp_region != 0 {
        node.home_derp = change.derp_region;
    }
    if change.cap != 0 {
        node.cap = change.cap;
    }
    if let Some(cap_map) = change.cap_map {
        node.cap_map = cap_map;
    }
    if let Some(endpoints) = change.endpoints {
        node.endpoints = endpoints;
    }
    if change.key.is_some() {
        node.key = change.key;
    }
    if let Some(signature) = change.key_signature {
        node.key_signature = signature;
    }
    if change.disco_key.is_some() {
        node.disco_key = change.disco_key;
    }
    if change.online.is_some() {
        node.online = change.online;
    }
    if change.last_seen.is_some() {
        node.last_seen = change.last_seen;
    }
    if change.key_expiry.is_some() {
        node.key_expiry = change.key_expiry;
    }
}
