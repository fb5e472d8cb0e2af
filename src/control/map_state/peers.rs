//! Peer-set deltas: a full `Peers` list, or removals, upserts, seen/online flags and field
//! patches, in the official client's order.

use crate::control::tailcfg::{MapResponse, Node, NodeId, PeerChange};
use std::collections::BTreeMap;
use std::mem;
use std::time::SystemTime;

/// Applies the peer parts of `response` (taking them out of it); true if it had any.
pub(super) fn apply(
    peers: &mut BTreeMap<NodeId, Node>,
    response: &mut MapResponse,
    now: SystemTime,
) -> bool {
    if !response.peers.is_empty() {
        // A complete list: everything else about peers in this message is moot.
        *peers = normalized(mem::take(&mut response.peers)).map(|node| (node.id, node)).collect();
        return true;
    }
    let mut touched = false;
    for id in mem::take(&mut response.peers_removed) {
        peers.remove(&id);
        touched = true;
    }
    for node in normalized(mem::take(&mut response.peers_changed)) {
        peers.insert(node.id, node);
        touched = true;
    }
    for (id, seen) in mem::take(&mut response.peer_seen_change) {
        if let Some(node) = peers.get_mut(&id) {
            node.last_seen = seen.then_some(now);
        }
        touched = true;
    }
    for (id, online) in mem::take(&mut response.online_change) {
        if let Some(node) = peers.get_mut(&id) {
            node.online = Some(online);
        }
        touched = true;
    }
    for change in mem::take(&mut response.peers_changed_patch) {
        if let Some(node) = peers.get_mut(&change.node_id) {
            patch(node, change);
        }
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
