//! Tailscale's control-protocol JSON ("tailcfg"): the bodies weft sends to and reads from a
//! control server, with Go's field names. Decoding ignores unknown fields (servers add them
//! constantly), takes `null` wherever Go could marshal a nil slice or map, and keeps `null`
//! apart from empty where the protocol gives the two different meanings (`Option<Vec<_>>`).

mod derp_map;
mod dns;
mod filter;
pub(crate) mod go_time;
mod hostinfo;
mod json;
mod map_request;
mod map_response;
mod node;
mod register;
mod user;
mod wire_key;

pub(crate) use derp_map::{DerpMap, DerpNode, DerpRegion};
#[cfg(test)]
pub(crate) use dns::DnsRecord;
pub(crate) use dns::{DnsConfig, Resolver};
pub(crate) use filter::{FilterRule, NetPortRange};
pub(crate) use hostinfo::{Hostinfo, NetInfo, Service};
pub(crate) use json::JsonError;
pub(crate) use map_request::{Endpoint, EndpointType, MapRequest};
pub(crate) use map_response::{DisplayMessage, MapResponse, PeerChange, PingRequest, PingResponse};
pub(crate) use node::{CapMap, Node};
pub(crate) use register::{RegisterAuth, RegisterRequest, RegisterResponse};
pub(crate) use user::UserProfile;
pub(crate) use wire_key::{DiscoKey, MachineKey, NlKey, NodeKey, WireKey};

// Named by tests (and fuzz targets) only; the daemon reaches them through the types above.
#[cfg(test)]
pub(crate) use filter::PortRange;

/// Node IDs: Go's `tailcfg.NodeID` (int64), sent as JSON numbers and as decimal map keys.
pub(crate) type NodeId = i64;
/// User IDs: Go's `tailcfg.UserID`.
pub(crate) type UserId = i64;
/// DERP region IDs. Real ones are small (Tailscale's 1–99, custom 900–999); the DERP
/// pseudo-address carries them in a port number, so 16 bits suffice.
pub(crate) type RegionId = u16;

/// The capability version weft claims (see the protocol README: 138 keeps headscale's moving
/// floor far away while staying below the TSMP disco-advertisement obligation of 144).
pub(crate) const CAPABILITY_VERSION: u32 = 138;
