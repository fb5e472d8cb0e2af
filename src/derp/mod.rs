//! DERP, Tailscale's relay: packets addressed by node key over one TLS connection per
//! region, for peers no direct UDP path reaches (yet). Sans-IO framing and client state
//! machine; dialing, TLS and region choice belong to the driver. Not yet wired into the
//! daemon.

mod client;
mod frame;
#[cfg(test)]
mod tests;

pub use client::{
    DerpClient, DerpError, Event, PeerGoneReason, PingData, SendError, LOGIN_TIMEOUT, PING_TIMEOUT,
    PROTOCOL_VERSION, READ_TIMEOUT,
};
pub use frame::{
    append_frame, Frame, FrameReader, FrameType, OversizedFrame, HEADER_LEN, KEY_LEN, MAGIC,
    MAX_FRAME_LEN, MAX_PACKET_LEN,
};
