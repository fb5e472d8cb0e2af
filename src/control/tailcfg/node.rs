//! `tailcfg.Node`: one machine in the tailnet — this node (`MapResponse.Node`) or a peer.

use super::go_time;
use super::json::nullable;
use super::{DiscoKey, Hostinfo, MachineKey, NodeId, NodeKey, RegionId, UserId};
use crate::prefix::Prefix;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

/// Node attributes or peer capabilities: capability name → JSON arguments (`null` when the
/// capability takes none). Authoritative since capver 74.
pub(crate) type CapMap = BTreeMap<String, Option<Vec<serde_json::Value>>>;

/// The prefix of the legacy `DERP` field: `127.3.3.40:<region>`.
const LEGACY_DERP_PREFIX: &str = "127.3.3.40:";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Node {
    #[serde(rename = "ID")]
    pub id: NodeId,
    #[serde(rename = "StableID")]
    pub stable_id: String,
    /// MagicDNS FQDN with a trailing dot.
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "User")]
    pub user: UserId,
    #[serde(rename = "Sharer")]
    pub sharer: UserId,
    #[serde(rename = "Key")]
    pub key: Option<NodeKey>,
    /// Zero or absent: the key never expires.
    #[serde(rename = "KeyExpiry", with = "go_time")]
    pub key_expiry: Option<SystemTime>,
    #[serde(rename = "KeySignature", deserialize_with = "nullable")]
    pub key_signature: String,
    #[serde(rename = "Machine")]
    pub machine: Option<MachineKey>,
    /// Zero: the node does not speak disco.
    #[serde(rename = "DiscoKey")]
    pub disco_key: Option<DiscoKey>,
    #[serde(rename = "Addresses", deserialize_with = "nullable")]
    pub addresses: Vec<Prefix>,
    /// `None` (JSON null) means "same as Addresses" (capver 112); see [`Node::normalize`].
    #[serde(rename = "AllowedIPs")]
    pub allowed_ips: Option<Vec<Prefix>>,
    /// UDP candidates as `ip:port` text, kept as text so one odd entry cannot fail the map.
    #[serde(rename = "Endpoints", deserialize_with = "nullable")]
    pub endpoints: Vec<String>,
    /// Legacy home DERP, `127.3.3.40:<region>`; folded into `home_derp` by normalize.
    #[serde(rename = "DERP")]
    pub legacy_derp: String,
    /// Home DERP region; 0 = unknown.
    #[serde(rename = "HomeDERP")]
    pub home_derp: RegionId,
    #[serde(rename = "Hostinfo", deserialize_with = "nullable")]
    pub hostinfo: Hostinfo,
    #[serde(rename = "Created", with = "go_time")]
    pub created: Option<SystemTime>,
    /// The node's capability version.
    #[serde(rename = "Cap")]
    pub cap: i64,
    #[serde(rename = "Tags", deserialize_with = "nullable")]
    pub tags: Vec<String>,
    #[serde(rename = "PrimaryRoutes", deserialize_with = "nullable")]
    pub primary_routes: Vec<Prefix>,
    /// Only meaningful while offline.
    #[serde(rename = "LastSeen", with = "go_time")]
    pub last_seen: Option<SystemTime>,
    /// Connected to control; `None` = unknown.
    #[serde(rename = "Online")]
    pub online: Option<bool>,
    #[serde(rename = "MachineAuthorized")]
    pub machine_authorized: bool,
    #[serde(rename = "CapMap", deserialize_with = "nullable")]
    pub cap_map: CapMap,
    /// Tailnet-lock bypass: only peerapi may be reached, so AllowedIPs shrink to Addresses.
    #[serde(rename = "UnsignedPeerAPIOnly")]
    pub unsigned_peer_api_only: bool,
    /// Set by the server, or by weft from KeyExpiry (capver 53).
    #[serde(rename = "Expired")]
    pub expired: bool,
    #[serde(rename = "SelfNodeV4MasqAddrForThisPeer")]
    pub self_node_v4_masq_addr_for_this_peer: Option<IpAddr>,
    #[serde(rename = "SelfNodeV6MasqAddrForThisPeer")]
    pub self_node_v6_masq_addr_for_this_peer: Option<IpAddr>,
    /// A plain WireGuard peer (no disco, no DERP), e.g. a Mullvad exit node.
    #[serde(rename = "IsWireGuardOnly")]
    pub is_wireguard_only: bool,
    #[serde(rename = "IsJailed")]
    pub is_jailed: bool,
}

impl Node {
    /// Brings an old-style node up to the current conventions, as the official client does on
    /// receipt: the legacy `DERP` string becomes `HomeDERP`, a null AllowedIPs becomes the
    /// Addresses, and an unsigned node is limited to its own addresses.
    pub(crate) fn normalize(&mut self) {
        if self.home_derp == 0 {
            self.home_derp = legacy_derp_region(&self.legacy_derp).unwrap_or(0);
        }
        self.legacy_derp.clear();
        if self.allowed_ips.is_none() || self.unsigned_peer_api_only {
            self.allowed_ips = Some(self.addresses.clone());
        }
    }

    /// The routes to this node, after [`Node::normalize`] has resolved the null case.
    pub(crate) fn allowed_ips(&self) -> &[Prefix] {
        self.allowed_ips.as_deref().unwrap_or(&self.addresses)
    }
}

fn legacy_derp_region(legacy: &str) -> Option<RegionId> {
    legacy.strip_prefix(LEGACY_DERP_PREFIX)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_legacy_fields() {
        let mut node: Node = serde_json::from_str(
            r#"{"ID":7,"Addresses":["100.64.0.7/32"],"AllowedIPs":null,"DERP":"127.3.3.40:12"}"#,
        )
        .unwrap();
        node.normalize();
        assert_eq!(node.home_derp, 12);
        assert_eq!(node.legacy_derp, "");
        assert_eq!(node.allowed_ips(), &["100.64.0.7/32".parse().unwrap()]);
    }

    #[test]
    fn home_derp_wins_over_legacy_and_unsigned_nodes_lose_routes() {
        let mut node: Node = serde_json::from_str(
            r#"{"Addresses":["100.64.0.7/32"],"AllowedIPs":["0.0.0.0/0"],"HomeDERP":3,
                "DERP":"127.3.3.40:12","UnsignedPeerAPIOnly":true}"#,
        )
        .unwrap();
        node.normalize();
        assert_eq!(node.home_derp, 3);
        assert_eq!(node.allowed_ips(), &["100.64.0.7/32".parse().unwrap()]);
    }
}
