//! DERP, Tailscale's relay: packets addressed by node key over one TLS connection per
//! region, for peers no direct UDP path reaches (yet). Sans-IO framing and client state
//! machine; dialing, TLS and region choice belong to the driver (`daemon::derp`).

mod client;
mod frame;
#[cfg(test)]
mod tests;

pub(crate) use client::{DerpClient, DerpError, Event, PeerGoneReason, LOGIN_TIMEOUT};

// Named by tests (and fuzz targets) only; the daemon reaches them through the types above.
#[cfg(test)]
pub(crate) use client::{SendError, MAX_HEALTH_TEXT, PING_TIMEOUT, READ_TIMEOUT};
#[cfg(test)]
pub(crate) use frame::{
    append_frame, Frame, FrameReader, FrameType, OversizedFrame, HEADER_LEN, KEY_LEN, MAGIC,
    MAX_FRAME_LEN, MAX_PACKET_LEN,
};
