//! Per-source token buckets for handshake messages.
//!
//! A cookie (mac2) only proves that the sender receives at its source address; everything that
//! goes into it is public, so one address can solve it and send thousands of valid initiations a
//! second, each costing us Diffie-Hellmans on the one thread. Each source therefore gets
//! [`MESSAGES_PER_SECOND`] with bursts of [`BURST`] — the rates of wireguard-go and the kernel —
//! where a source is an IPv4 address or an IPv6 /64 (one host commonly holds a whole /64), or,
//! for a message relayed through DERP, where every sender shares the relay's one address, the
//! sender's key (which the relay authenticated when the sender logged in).
//!
//! Sans-IO and timer-free: fed `now`. A bucket idle for [`IDLE_EXPIRY`] has refilled, so it is
//! the same as no bucket; such buckets are swept only when the table is full, at most once per
//! [`IDLE_EXPIRY`], so an idle daemon never wakes up for them. The table holds at most
//! [`MAX_SOURCES`]: while it is full of sources seen within the last second, a new source is
//! refused rather than let memory grow with the attacker's address count.

use crate::keys::PublicKey;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub(crate) const MESSAGES_PER_SECOND: u32 = 20;
pub(crate) const BURST: u32 = 5;
/// Sources tracked at once; about 200 KiB when full.
pub(crate) const MAX_SOURCES: usize = 4096;
/// After this long without a message a bucket is full again, and can be forgotten.
pub(crate) const IDLE_EXPIRY: Duration = Duration::from_secs(1);

/// Credit is kept as time: a message costs its share of a second, and credit accrues with the
/// time elapsed.
const COST: Duration = Duration::from_nanos(1_000_000_000 / MESSAGES_PER_SECOND as u64);
const FULL: Duration = Duration::from_nanos(COST.as_nanos() as u64 * BURST as u64);

/// Where a handshake message came from, as the limiter tells senders apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandshakeSource {
    /// Straight over UDP from this address.
    Address(IpAddr),
    /// Through a DERP relay from the holder of this key; `address` is the relay's magic
    /// address, which cookies are bound to.
    Relayed { address: IpAddr, sender: PublicKey },
}

impl HandshakeSource {
    /// The address a cookie (mac2) is bound to.
    pub(crate) fn address(&self) -> IpAddr {
        match self {
            HandshakeSource::Address(address) | HandshakeSource::Relayed { address, .. } => {
                *address
            }
        }
    }
}

/// Who is limited together: one IPv4 address, one IPv6 /64, or one relayed sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Source {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
    RelayedKey([u8; 32]),
}

impl Source {
    fn of(from: HandshakeSource) -> Source {
        let addr = match from {
            HandshakeSource::Relayed { sender, .. } => return Source::RelayedKey(sender.0),
            HandshakeSource::Address(addr) => addr,
        };
        // A dual-stack socket reports IPv4 senders as ::ffff:a.b.c.d; they must not share a /64.
        match addr.to_canonical() {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                Source::V6Prefix(prefix)
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    credit: Duration,
    last: Instant,
}

impl Bucket {
    #[must_use]
    fn take(&mut self, now: Instant) -> bool {
        self.credit = (self.credit + now.saturating_duration_since(self.last)).min(FULL);
        self.last = now;
        match self.credit.checked_sub(COST) {
            Some(left) => {
                self.credit = left;
                true
            }
            None => false,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct HandshakeLimiter {
    buckets: HashMap<Source, Bucket>,
    last_sweep: Option<Instant>,
}

impl HandshakeLimiter {
    /// Whether a handshake message from `from` may go on to the Diffie-Hellman.
    #[must_use]
    pub(crate) fn allow(&mut self, now: Instant, from: HandshakeSource) -> bool {
        let source = Source::of(from);
        if let Some(bucket) = self.buckets.get_mut(&source) {
            return bucket.take(now);
        }
        if self.buckets.len() >= MAX_SOURCES && !self.sweep(now) {
            return false;
        }
        self.buckets.insert(source, Bucket { credit: FULL - COST, last: now });
        true
    }

    /// Forgets refilled buckets; returns whether that made room. Runs at most once per
    /// [`IDLE_EXPIRY`], so a full table of busy sources costs a lookup per message, not a scan.
    fn sweep(&mut self, now: Instant) -> bool {
        if self.last_sweep.is_some_and(|at| now < at + IDLE_EXPIRY) {
            return false;
        }
        self.last_sweep = Some(now);
        self.buckets.retain(|_, b| now.saturating_duration_since(b.last) < IDLE_EXPIRY);
        self.buckets.len() < MAX_SOURCES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(n: u32) -> HandshakeSource {
        HandshakeSource::Address(IpAddr::V4(Ipv4Addr::from(n)))
    }

    fn at(address: &str) -> HandshakeSource {
        HandshakeSource::Address(address.parse().unwrap())
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut limiter = HandshakeLimiter::default();
        let allowed = (0..100).filter(|_| limiter.allow(t0, v4(1))).count();
        assert_eq!(allowed, BURST as usize);
        // Over ten more seconds, sending as fast as it likes, it gets the rate.
        let mut allowed = 0;
        for ms in 1..=10_000 {
            allowed += limiter.allow(t0 + Duration::from_millis(ms), v4(1)) as usize;
        }
        assert_eq!(allowed, 10 * MESSAGES_PER_SECOND as usize);
        assert!(limiter.allow(t0, v4(2)), "another source is not affected");
    }

    #[test]
    fn an_ipv6_64_is_one_source_and_mapped_ipv4_is_ipv4() {
        let t0 = Instant::now();
        let mut limiter = HandshakeLimiter::default();
        let base: u128 = "2001:db8:1:2::".parse::<Ipv6Addr>().unwrap().into();
        let allowed = (0..100u128).filter(|host| limiter.allow(t0, v6(base + host))).count();
        assert_eq!(allowed, BURST as usize);
        assert!(limiter.allow(t0, at("2001:db8:1:3::1")), "the next /64");
        assert!(limiter.allow(t0, at("::ffff:192.0.2.1")));
        assert!(limiter.allow(t0, at("::ffff:192.0.2.2")), "not one /64");
        assert_eq!(limiter.buckets.len(), 4);
    }

    fn v6(n: u128) -> HandshakeSource {
        HandshakeSource::Address(IpAddr::V6(Ipv6Addr::from(n)))
    }

    /// Every relayed sender comes from the relay's one magic address: each key is its own
    /// source, and none shares a bucket with that address reached over UDP.
    #[test]
    fn relayed_senders_are_told_apart_by_key() {
        let t0 = Instant::now();
        let mut limiter = HandshakeLimiter::default();
        let magic = "127.3.3.40".parse().unwrap();
        let relayed =
            |n: u8| HandshakeSource::Relayed { address: magic, sender: PublicKey([n; 32]) };
        assert_eq!((0..100).filter(|_| limiter.allow(t0, relayed(1))).count(), BURST as usize);
        assert!(limiter.allow(t0, relayed(2)), "another key through the same relay");
        assert!(limiter.allow(t0, HandshakeSource::Address(magic)), "the address over UDP");
        assert_eq!(limiter.buckets.len(), 3);
    }

    #[test]
    fn a_full_table_of_busy_sources_refuses_newcomers_until_they_go_quiet() {
        let t0 = Instant::now();
        let mut limiter = HandshakeLimiter::default();
        for n in 0..MAX_SOURCES as u32 {
            assert!(limiter.allow(t0, v4(n)));
        }
        assert!(!limiter.allow(t0, v4(u32::MAX)), "full of sources active this second");
        assert_eq!(limiter.buckets.len(), MAX_SOURCES);
        let later = t0 + IDLE_EXPIRY;
        assert!(limiter.allow(later, v4(u32::MAX)), "the quiet ones were forgotten");
        assert_eq!(limiter.buckets.len(), 1);
    }

    /// Many addresses at random times: the table never exceeds its bound, a busy source gets
    /// its rate and never more than its burst on top, and a source quiet for a second starts
    /// afresh.
    #[test]
    fn randomized_sources_stay_bounded_and_within_their_rate() {
        let t0 = Instant::now();
        let mut rng = Rng::new(17);
        let mut limiter = HandshakeLimiter::default();
        let mut allowed: HashMap<u32, u32> = HashMap::new();
        let mut now = t0;
        for _ in 0..400_000 {
            now += Duration::from_micros(rng.below(100) as u64);
            // A few heavy senders among a crowd far larger than the table.
            let addr = if rng.below(4) == 0 { rng.below(8) } else { rng.below(50_000) } as u32;
            if limiter.allow(now, v4(addr)) {
                *allowed.entry(addr).or_default() += 1;
            }
            assert!(limiter.buckets.len() <= MAX_SOURCES);
        }
        let elapsed = (now - t0).as_secs_f64();
        let rate_share = (MESSAGES_PER_SECOND as f64 * elapsed) as u32;
        let ceiling = BURST + rate_share + 1;
        for addr in 0..8 {
            let got = allowed.get(&addr).copied().unwrap_or(0);
            assert!(got <= ceiling, "heavy sender {addr} got {got} > {ceiling}");
            assert!(got >= rate_share, "heavy sender {addr} starved: {got} < {rate_share}");
        }
        let quiet = now + IDLE_EXPIRY;
        let fresh = (0..100).filter(|_| limiter.allow(quiet, v4(3))).count();
        assert_eq!(fresh, BURST as usize);
    }
}
