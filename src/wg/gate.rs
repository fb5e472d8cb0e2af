//! Which handshake messages (initiations and responses) go on to the Diffie-Hellman.
//!
//! Cheapest check first: mac1 (the sender knows our public key); then the load counter — past
//! [`HANDSHAKE_MESSAGES_PER_SECOND_BEFORE_COOKIES`] in the current second we are under load;
//! under load, mac2 (the sender answered a cookie reply, so it receives at its address), and
//! then that source's token bucket ([`HandshakeLimiter`]: an address, or a relayed sender's key).
//!
//! boringtun's `RateLimiter` holds the cookie cryptography and a counter, but resets the counter
//! only when its owner asks and only by boringtun's own clock, and a `Tunn` runs every message
//! through its limiter again. So the counter lives here instead, fed `now` and reset lazily by
//! the first handshake message of each new second (no timer); boringtun's limiter is used in two
//! fixed modes only: one that is never under load (it checks mac1; the sessions get this one,
//! so their second look counts nothing) and one that always is (it checks mac2 and writes the
//! cookie reply).

use super::handshake_limiter::{HandshakeLimiter, HandshakeSource};
use crate::keys::PrivateKey;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::TunnResult;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Handshake messages that passed mac1 within one second, across all peers, before further ones
/// must carry a cookie (mac2): wireguard-go and boringtun's device use limits of this order.
pub(crate) const HANDSHAKE_MESSAGES_PER_SECOND_BEFORE_COOKIES: u32 = 100;

/// A cookie reply's length on the wire.
pub(crate) const COOKIE_REPLY_LEN: usize = 64;

/// What happens to a handshake message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Admit,
    /// Under load without a valid mac2: send this cookie reply to the sender instead.
    CookieReply([u8; COOKIE_REPLY_LEN]),
    /// Under load, its source has used its share.
    RateLimited,
    /// Not a handshake message, or a wrong mac1.
    Invalid,
}

pub(crate) struct HandshakeGate {
    mac1_only: Arc<RateLimiter>,
    mac2_required: RateLimiter,
    load: LoadCounter,
    per_source: HandshakeLimiter,
}

impl HandshakeGate {
    pub(crate) fn new(own_key: &PrivateKey) -> HandshakeGate {
        let public = x25519_dalek::PublicKey::from(own_key.public_key().0);
        HandshakeGate {
            mac1_only: Arc::new(RateLimiter::new(&public, u64::MAX)),
            mac2_required: RateLimiter::new(&public, 0),
            load: LoadCounter::default(),
            per_source: HandshakeLimiter::default(),
        }
    }

    /// The limiter every session is built with: it only checks mac1, because the gate has
    /// already judged the load.
    pub(crate) fn session_limiter(&self) -> Arc<RateLimiter> {
        self.mac1_only.clone()
    }

    /// Judges one handshake message (initiation or response) from `from`, received at `now`.
    #[must_use]
    pub(crate) fn admit(&mut self, now: Instant, from: HandshakeSource, message: &[u8]) -> Verdict {
        let mut reply = [0u8; COOKIE_REPLY_LEN];
        if self.mac1_only.verify_packet(None, message, &mut reply).is_err() {
            return Verdict::Invalid;
        }
        if !self.load.count(now) {
            return Verdict::Admit;
        }
        match self.mac2_required.verify_packet(Some(from.address()), message, &mut reply) {
            Ok(_) if self.per_source.allow(now, from) => Verdict::Admit,
            Ok(_) => Verdict::RateLimited,
            Err(TunnResult::WriteToNetwork(written)) => {
                match <[u8; COOKIE_REPLY_LEN]>::try_from(&*written) {
                    Ok(cookie_reply) => Verdict::CookieReply(cookie_reply),
                    Err(_) => Verdict::Invalid,
                }
            }
            Err(_) => Verdict::Invalid,
        }
    }
}

/// Handshake messages in the current one-second window.
#[derive(Debug, Default)]
struct LoadCounter {
    window_start: Option<Instant>,
    messages: u32,
}

impl LoadCounter {
    const WINDOW: Duration = Duration::from_secs(1);

    /// Counts one message at `now`; returns whether we are under load.
    #[must_use]
    fn count(&mut self, now: Instant) -> bool {
        if self.window_start.is_none_or(|start| now >= start + Self::WINDOW) {
            self.window_start = Some(now);
            self.messages = 0;
        }
        self.messages = self.messages.saturating_add(1);
        self.messages > HANDSHAKE_MESSAGES_PER_SECOND_BEFORE_COOKIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_window_starts_again_each_second() {
        let t0 = Instant::now();
        let mut load = LoadCounter::default();
        let limit = HANDSHAKE_MESSAGES_PER_SECOND_BEFORE_COOKIES as usize;
        assert_eq!((0..limit).filter(|_| load.count(t0)).count(), 0);
        assert!(load.count(t0 + Duration::from_millis(999)), "one too many within the second");
        let next = t0 + Duration::from_secs(1);
        assert_eq!((0..limit).filter(|_| load.count(next)).count(), 0, "a fresh second");
        assert!(load.count(next));
    }
}
