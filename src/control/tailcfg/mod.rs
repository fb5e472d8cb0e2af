//! Tailscale's control-protocol JSON ("tailcfg"): the bodies weft sends to and reads from a
//! control server, with Go's field names. Decoding ignores unknown fields (servers add them
//! constantly), takes `null` wherever Go could marshal a nil slice or map, and keeps `null`
//! apart from empty where the protocol gives the two different meanings (`Option<Vec<_>>`).

mod derp_map;
mod dns;
mod filter;
pub mod go_time;
mod hostinfo;
mod json;
mod map_request;
mod map_response;
mod node;
mod register;
mod user;
mod wire_key;

pub use derp_map::{DerpHomeParams, DerpMap, DerpNode, DerpRegion};
pub use dns::{DnsConfig, DnsRecord, Resolver};
pub use filter::{FilterRule, NetPortRange, PortRange};
pub use hostinfo::{Hostinfo, NetInfo, Service};
pub use json::JsonError;
pub use map_request::{Endpoint, EndpointType, MapRequest};
pub use map_response::{DebugRequest, DisplayMessage, MapResponse, PeerChange, PingRequest};
pub use node::{CapMap, Node};
pub use register::{Login, RegisterAuth, RegisterRequest, RegisterResponse, User};
pub use user::UserProfile;
pub use wire_key::{DiscoKey, MachineKey, NlKey, NodeKey, WireKey};

/// Node IDs: Go's `tailcfg.NodeID` (int64), sent as JSON numbers and as decimal map keys.
pub type NodeId = i64;
/// User IDs: Go's `tailcfg.UserID`.
pub type UserId = i64;
/// DERP region IDs. Real ones are small (Tailscale's 1–99, custom 900–999); the DERP
/// pseudo-address carries them in a port number, so 16 bits suffice.
pub type RegionId = u16;

/// The capability version weft claims (see the protocol README: 138 keeps headscale's moving
/// floor far away while staying below the TSMP disco-advertisement obligation of 144).
pub const CAPABILITY_VERSION: u32 = 138;
