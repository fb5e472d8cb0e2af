//! `POST /machine/map`: the MapRequest body, in its two uses — the long poll that streams the
//! netmap, and the "lite update" that pushes new endpoints or Hostinfo (capver ≥ 68 servers may
//! ignore those in a streaming request).

use super::{DiscoKey, Hostinfo, NodeKey};
use serde::Serialize;
use std::net::SocketAddr;

/// `tailcfg.EndpointType`: how a node learned one of its own addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum EndpointType {
    /// An address of a local interface.
    Local = 1,
    /// The address a STUN server saw us at.
    Stun = 2,
    /// The STUN-seen IP with our local port, tried behind NATs whose mapping varies.
    Stun4LocalPort = 4,
}

/// One address peers may reach this node at, with where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub addr: SocketAddr,
    pub kind: EndpointType,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct MapRequest {
    #[serde(rename = "Version")]
    pub version: u32,
    /// `""`: plain JSON frames. weft does not ask for `"zstd"`.
    #[serde(rename = "Compress", skip_serializing_if = "String::is_empty")]
    pub compress: String,
    /// Ask for keep-alive frames on an idle stream (they feed the watchdog).
    #[serde(rename = "KeepAlive")]
    pub keep_alive: bool,
    #[serde(rename = "NodeKey")]
    pub node_key: NodeKey,
    #[serde(rename = "DiscoKey", skip_serializing_if = "Option::is_none")]
    pub disco_key: Option<DiscoKey>,
    #[serde(rename = "Stream")]
    pub stream: bool,
    #[serde(rename = "Hostinfo")]
    pub hostinfo: Hostinfo,
    #[serde(rename = "Endpoints", skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<SocketAddr>,
    /// Parallel to `endpoints`: 0 unknown, 1 local, 2 STUN, 3 port-mapped, 4 STUN IP with the
    /// local port, 5 explicitly configured.
    #[serde(rename = "EndpointTypes", skip_serializing_if = "Vec::is_empty")]
    pub endpoint_types: Vec<u8>,
    /// With `stream: false`: "just store my state", no netmap wanted.
    #[serde(rename = "OmitPeers", skip_serializing_if = "std::ops::Not::not")]
    pub omit_peers: bool,
    #[serde(rename = "DebugFlags", skip_serializing_if = "Vec::is_empty")]
    pub debug_flags: Vec<String>,
}

impl MapRequest {
    /// The long poll: a full netmap, then deltas and keep-alives until the stream ends.
    pub(crate) fn long_poll(
        node_key: NodeKey,
        disco_key: DiscoKey,
        hostinfo: Hostinfo,
    ) -> MapRequest {
        MapRequest {
            version: super::CAPABILITY_VERSION,
            compress: String::new(),
            keep_alive: true,
            node_key,
            disco_key: Some(disco_key),
            stream: true,
            hostinfo,
            endpoints: Vec::new(),
            endpoint_types: Vec::new(),
            omit_peers: false,
            debug_flags: Vec::new(),
        }
    }

    /// A one-shot push of this node's current state; the response carries no netmap.
    pub(crate) fn lite_update(
        node_key: NodeKey,
        disco_key: DiscoKey,
        hostinfo: Hostinfo,
    ) -> MapRequest {
        MapRequest {
            keep_alive: false,
            stream: false,
            omit_peers: true,
            ..MapRequest::long_poll(node_key, disco_key, hostinfo)
        }
    }

    /// Fills `Endpoints` and the parallel `EndpointTypes`.
    pub(crate) fn set_endpoints(&mut self, endpoints: &[Endpoint]) {
        self.endpoints = endpoints.iter().map(|e| e.addr).collect();
        self.endpoint_types = endpoints.iter().map(|e| e.kind as u8).collect();
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        // Serializing plain structs with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PublicKey;

    fn keys() -> (NodeKey, DiscoKey) {
        (NodeKey::new(PublicKey([1; 32])), DiscoKey::new(PublicKey([2; 32])))
    }

    #[test]
    fn long_poll_streams_with_keep_alives() {
        let (node, disco) = keys();
        let mut request = MapRequest::long_poll(node, disco, Hostinfo::for_this_host("h"));
        request.set_endpoints(&[
            Endpoint { addr: "192.0.2.1:41641".parse().unwrap(), kind: EndpointType::Local },
            Endpoint { addr: "[2001:db8::1]:41641".parse().unwrap(), kind: EndpointType::Stun },
            Endpoint {
                addr: "192.0.2.7:41641".parse().unwrap(),
                kind: EndpointType::Stun4LocalPort,
            },
        ]);
        let json: serde_json::Value = serde_json::from_slice(&request.to_json()).unwrap();
        assert_eq!(json["Stream"], true);
        assert_eq!(json["KeepAlive"], true);
        assert_eq!(json["DiscoKey"], format!("discokey:{}", "02".repeat(32)));
        assert_eq!(json["Endpoints"][1], "[2001:db8::1]:41641");
        assert_eq!(json["EndpointTypes"], serde_json::json!([1, 2, 4]));
        assert!(json.get("Compress").is_none() && json.get("OmitPeers").is_none());
    }

    #[test]
    fn lite_update_omits_peers() {
        let (node, disco) = keys();
        let request = MapRequest::lite_update(node, disco, Hostinfo::default());
        let json: serde_json::Value = serde_json::from_slice(&request.to_json()).unwrap();
        assert_eq!(
            (json["Stream"].as_bool(), json["OmitPeers"].as_bool()),
            (Some(false), Some(true))
        );
    }
}
