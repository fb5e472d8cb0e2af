//! The ts2021 control client: Noise IK transport, HTTP/2, registration and the map stream.

pub(crate) mod backoff;
pub(crate) mod client;
pub(crate) mod error;
pub(crate) mod http2;
pub(crate) mod map_state;
pub(crate) mod mapstream;
pub(crate) mod noise;
pub(crate) mod server_url;
pub(crate) mod session;
pub(crate) mod tailcfg;
