//! One MapResponse: a frame of the map stream. The first complete one carries the whole
//! netmap; later ones are deltas in which absent or null fields mean "unchanged" (the state
//! machine in `control::map_state` gives each field its meaning).

use super::json::{decode, nullable, JsonError};
use super::{
    go_time, CapMap, DerpMap, DiscoKey, DnsConfig, FilterRule, Node, NodeId, NodeKey, RegionId,
    UserProfile,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

/// The first bytes of a zstd frame: what a body looks like if compression was negotiated
/// by mistake.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct MapResponse {
    /// Only a keep-alive: apart from `ping_request`, `control_time` and `pop_browser_url`,
    /// nothing in the message counts.
    #[serde(rename = "KeepAlive")]
    pub keep_alive: bool,
    #[serde(rename = "MapSessionHandle")]
    pub map_session_handle: String,
    #[serde(rename = "Seq")]
    pub seq: i64,
    #[serde(rename = "PingRequest")]
    pub ping_request: Option<PingRequest>,
    #[serde(rename = "PopBrowserURL")]
    pub pop_browser_url: String,
    /// This node; `None` = unchanged.
    #[serde(rename = "Node")]
    pub node: Option<Node>,
    #[serde(rename = "DERPMap")]
    pub derp_map: Option<DerpMap>,
    /// Non-empty: the complete peer list, replacing all others.
    #[serde(rename = "Peers", deserialize_with = "nullable")]
    pub peers: Vec<Node>,
    /// Added or changed peers, whole (upsert by ID).
    #[serde(rename = "PeersChanged", deserialize_with = "nullable")]
    pub peers_changed: Vec<Node>,
    #[serde(rename = "PeersRemoved", deserialize_with = "nullable")]
    pub peers_removed: Vec<NodeId>,
    /// Field-level changes to known peers.
    #[serde(rename = "PeersChangedPatch", deserialize_with = "nullable")]
    pub peers_changed_patch: Vec<PeerChange>,
    /// true: the peer was seen just now; false: its last-seen time is unknown.
    #[serde(rename = "PeerSeenChange", deserialize_with = "nullable")]
    pub peer_seen_change: BTreeMap<NodeId, bool>,
    #[serde(rename = "OnlineChange", deserialize_with = "nullable")]
    pub online_change: BTreeMap<NodeId, bool>,
    #[serde(rename = "DNSConfig")]
    pub dns_config: Option<DnsConfig>,
    /// The tailnet's name; empty = unchanged.
    #[serde(rename = "Domain")]
    pub domain: String,
    #[serde(rename = "CollectServices")]
    pub collect_services: Option<bool>,
    /// `None` = unchanged; `Some([])` = deny everything. Sets the named filter "base".
    #[serde(rename = "PacketFilter")]
    pub packet_filter: Option<Vec<FilterRule>>,
    /// Named filters: a null value deletes the name, `"*": null` clears all first.
    #[serde(rename = "PacketFilters")]
    pub packet_filters: Option<BTreeMap<String, Option<Vec<FilterRule>>>>,
    /// New or changed profiles only.
    #[serde(rename = "UserProfiles", deserialize_with = "nullable")]
    pub user_profiles: Vec<UserProfile>,
    /// `None` = unchanged; `[]` = healthy.
    #[serde(rename = "Health")]
    pub health: Option<Vec<String>>,
    /// Health messages as patches by ID (capability version 117, instead of `Health`): a
    /// null value removes one, `"*": null` removes all.
    #[serde(rename = "DisplayMessages")]
    pub display_messages: Option<BTreeMap<String, Option<DisplayMessage>>>,
    /// The server's clock, for correcting key-expiry checks on a skewed local clock.
    #[serde(rename = "ControlTime", with = "go_time")]
    pub control_time: Option<SystemTime>,
    #[serde(rename = "Debug")]
    pub debug: Option<DebugRequest>,
}

impl MapResponse {
    /// Decodes one uncompressed frame body.
    pub(crate) fn from_json(body: &[u8]) -> Result<MapResponse, JsonError> {
        if body.starts_with(&ZSTD_MAGIC) {
            return Err(JsonError(
                "frame is zstd-compressed, but weft asked for plain JSON".to_string(),
            ));
        }
        decode(body)
    }
}

/// A patch to one known peer; only the fields present change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct PeerChange {
    #[serde(rename = "NodeID")]
    pub node_id: NodeId,
    /// New home DERP region; 0 = unchanged.
    #[serde(rename = "DERPRegion")]
    pub derp_region: RegionId,
    /// New capability version; 0 = unchanged.
    #[serde(rename = "Cap")]
    pub cap: i64,
    #[serde(rename = "CapMap")]
    pub cap_map: Option<CapMap>,
    /// Replacement endpoints (`ip:port` text).
    #[serde(rename = "Endpoints")]
    pub endpoints: Option<Vec<String>>,
    #[serde(rename = "Key")]
    pub key: Option<NodeKey>,
    #[serde(rename = "KeySignature")]
    pub key_signature: Option<String>,
    /// The peer restarted with a new disco key.
    #[serde(rename = "DiscoKey")]
    pub disco_key: Option<DiscoKey>,
    #[serde(rename = "Online")]
    pub online: Option<bool>,
    #[serde(rename = "LastSeen", with = "go_time")]
    pub last_seen: Option<SystemTime>,
    /// Go's zero time here sets "never expires".
    #[serde(rename = "KeyExpiry", with = "go_time")]
    pub key_expiry: Option<SystemTime>,
}

/// One of control's messages for the user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct DisplayMessage {
    #[serde(rename = "Title")]
    pub title: String,
    #[serde(rename = "Text")]
    pub text: String,
}

/// Control asking for proof of life (`types` empty: HEAD the URL) or a ping of a peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct PingRequest {
    #[serde(rename = "URL")]
    pub url: String,
    /// Send the answer over the Noise connection rather than plain HTTPS.
    #[serde(rename = "URLIsNoise")]
    pub url_is_noise: bool,
    #[serde(rename = "Log")]
    pub log: bool,
    /// Comma-separated: `disco`, `TSMP`, `ICMP`, `peerapi`, or `c2n`.
    #[serde(rename = "Types")]
    pub types: String,
    #[serde(rename = "IP")]
    pub ip: Option<IpAddr>,
    /// base64 (c2n only).
    #[serde(rename = "Payload", deserialize_with = "nullable")]
    pub payload: String,
}

/// The result of a peer ping control asked for, POSTed to the request's URL (tailcfg's
/// `PingResponse`: every field but `Type` left out when empty).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct PingResponse {
    /// `disco`, `TSMP` or `ICMP`.
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "IP", skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(rename = "NodeIP", skip_serializing_if = "String::is_empty")]
    pub node_ip: String,
    #[serde(rename = "NodeName", skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    #[serde(rename = "Err", skip_serializing_if = "String::is_empty")]
    pub err: String,
    #[serde(rename = "LatencySeconds", skip_serializing_if = "is_zero_f64")]
    pub latency_seconds: f64,
    #[serde(rename = "Endpoint", skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    #[serde(rename = "DERPRegionID", skip_serializing_if = "is_zero_u16")]
    pub derp_region_id: RegionId,
    #[serde(rename = "DERPRegionCode", skip_serializing_if = "String::is_empty")]
    pub derp_region_code: String,
    #[serde(rename = "PeerAPIPort", skip_serializing_if = "is_zero_u16")]
    pub peerapi_port: u16,
}

fn is_zero_f64(value: &f64) -> bool {
    *value == 0.0
}

fn is_zero_u16(value: &u16) -> bool {
    *value == 0
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct DebugRequest {
    /// Pause before the next poll (cap it at 5 minutes).
    #[serde(rename = "SleepSeconds")]
    pub sleep_seconds: f64,
    #[serde(rename = "DisableLogTail")]
    pub disable_log_tail: bool,
    /// Control asks the process to exit with this code.
    #[serde(rename = "Exit")]
    pub exit: Option<i32>,
}
