//! The ts2021 control client: Noise IK transport, HTTP/2, registration and the map stream.

pub mod backoff;
pub mod client;
pub mod error;
pub mod http2;
pub mod map_state;
pub mod mapstream;
pub mod noise;
pub mod server_url;
pub mod session;
pub mod tailcfg;
