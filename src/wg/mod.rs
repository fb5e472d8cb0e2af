//! WireGuard sessions: one boringtun `noise::Tunn` per peer, the demultiplexing of incoming
//! datagrams to their peer, and cryptokey routing.
//!
//! boringtun reads the clock itself inside `Tunn`; everything above it here is driven by the
//! `now` its callers pass in, so the engine decides *when* boringtun's timers are consulted.

pub(crate) mod allowed_ips;
pub(crate) mod demux;
pub(crate) mod gate;
pub(crate) mod handshake_limiter;
pub(crate) mod timers;

use crate::keys::{PrivateKey, PublicKey};
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::Tunn;
use std::sync::Arc;

/// Room a buffer needs beyond the plaintext for WireGuard's header and tag; also the minimum
/// size boringtun needs to write a handshake message.
pub(crate) const OVERHEAD: usize = 32;
pub(crate) const MIN_BUFFER: usize = 148;

/// A WireGuard session with one peer.
pub(crate) struct Session {
    pub tunn: Tunn,
}

impl Session {
    pub(crate) fn new(
        own_key: &PrivateKey,
        peer_key: &PublicKey,
        preshared_key: Option<[u8; 32]>,
        persistent_keepalive: Option<u16>,
        local_index: u32,
        mac1_checker: Arc<RateLimiter>,
    ) -> Session {
        let tunn = Tunn::new(
            own_key.secret(),
            x25519_dalek::PublicKey::from(peer_key.0),
            preshared_key,
            persistent_keepalive,
            local_index,
            Some(mac1_checker),
        );
        Session { tunn }
    }

    /// Plaintext bytes sent and received.
    pub(crate) fn traffic(&self) -> (u64, u64) {
        let (_, tx, rx, _, _) = self.tunn.stats();
        (tx as u64, rx as u64)
    }
}
