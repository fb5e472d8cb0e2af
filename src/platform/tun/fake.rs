//! A TUN device with no kernel behind it, for running the whole daemon without root and on any
//! OS (`weftd --tun fake`): engine and two-node tests, benches.
//!
//! It is a host that only knows how to be pinged. Every packet the engine writes to it (what
//! arrived through the tunnel) is examined: an ICMP or ICMPv6 echo request to one of the node's
//! own addresses becomes an echo reply, queued for the data path to hand back to the engine as
//! if the kernel had sent it; everything else is counted and dropped. It has no descriptor and
//! never blocks: the data path drains [`FakeTun::next_reply`] right after each burst, so a
//! reply leaves in the same burst as its request and an idle fake costs nothing.

use crate::packet::icmp::{echo_reply, parse_echo_request, Echo};
use std::collections::VecDeque;
use std::net::IpAddr;

/// The `--tun` name that asks for this device instead of a kernel interface.
pub(crate) const NAME: &str = "fake";

/// Replies waiting for the engine; more than a burst's worth means nobody drains them, and
/// the excess is dropped rather than held.
const MAX_QUEUED_REPLIES: usize = 256;

/// What the fake did with the packets written to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FakeTunCounters {
    /// Echo requests to one of our addresses, answered.
    pub answered: u64,
    /// Echo requests to an address that is not ours.
    pub not_ours: u64,
    /// Anything that is not an echo request (no stack listens behind the fake).
    pub unhandled: u64,
    /// Replies dropped because the queue was full.
    pub queue_full: u64,
}

/// The in-memory device: the node's addresses, the replies not yet taken, the counters.
#[derive(Debug, Default)]
pub(crate) struct FakeTun {
    addresses: Vec<IpAddr>,
    replies: VecDeque<Vec<u8>>,
    counters: FakeTunCounters,
}

impl FakeTun {
    pub(crate) fn new() -> FakeTun {
        FakeTun::default()
    }

    /// The addresses the node has; a kernel TUN gets them from the router, the fake here.
    pub(crate) fn set_addresses(&mut self, addresses: impl IntoIterator<Item = IpAddr>) {
        self.addresses = addresses.into_iter().collect();
    }

    /// Takes one packet from the engine, as a kernel TUN's `write` would.
    pub(crate) fn write(&mut self, packet: &[u8]) {
        let Some((request, data)) = parse_echo_request(packet) else {
            self.counters.unhandled += 1;
            return;
        };
        if !self.addresses.contains(&request.dst) {
            self.counters.not_ours += 1;
            return;
        }
        if self.replies.len() >= MAX_QUEUED_REPLIES {
            self.counters.queue_full += 1;
            return;
        }
        let answer = Echo { src: request.dst, dst: request.src, ..request };
        // The request parsed, so both addresses are of one family and the reply builds.
        if let Some(reply) = echo_reply(&answer, data) {
            self.replies.push_back(reply);
            self.counters.answered += 1;
        }
    }

    /// The oldest reply the engine has not taken yet.
    pub(crate) fn next_reply(&mut self) -> Option<Vec<u8>> {
        self.replies.pop_front()
    }

    pub(crate) fn counters(&self) -> FakeTunCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::icmp::{echo_request, parse_echo_reply};
    use crate::packet::{checksum_add, checksum_finish};

    const ME_V4: &str = "100.64.0.2";
    const ME_V6: &str = "fd7a:115c:a1e0::2";

    fn fake() -> FakeTun {
        let mut fake = FakeTun::new();
        fake.set_addresses([ME_V4.parse().unwrap(), ME_V6.parse().unwrap()]);
        fake
    }

    fn request(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
        let echo = Echo {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            identifier: 77,
            sequence: 9,
        };
        echo_request(&echo, payload).unwrap()
    }

    /// The ICMPv6 checksum, summed here from the RFC 8200 pseudo-header by hand.
    fn icmpv6_sum_is_valid(p: &[u8]) -> bool {
        let mut sum = checksum_add(0, &p[8..40]);
        sum = checksum_add(sum, &((p.len() - 40) as u32).to_be_bytes());
        sum = checksum_add(sum, &[0, 0, 0, 58]);
        checksum_finish(checksum_add(sum, &p[40..])) == 0
    }

    #[test]
    fn answers_a_v4_echo_to_its_own_address() {
        let mut fake = fake();
        fake.write(&request("100.64.0.1", ME_V4, b"weft fake"));
        let reply = fake.next_reply().expect("a reply");
        assert_eq!(fake.next_reply(), None, "exactly one");
        assert_eq!(checksum_finish(checksum_add(0, &reply[..20])), 0, "IPv4 header checksum");
        assert_eq!(checksum_finish(checksum_add(0, &reply[20..])), 0, "ICMP checksum");
        assert_eq!(reply[20], 0, "type echo reply");
        let echo = parse_echo_reply(&reply).unwrap();
        assert_eq!(
            (echo.src, echo.dst, echo.identifier, echo.sequence),
            (ME_V4.parse().unwrap(), "100.64.0.1".parse().unwrap(), 77, 9)
        );
        assert_eq!(&reply[28..], b"weft fake");
        assert_eq!(fake.counters().answered, 1);
    }

    #[test]
    fn answers_a_v6_echo_to_its_own_address() {
        let mut fake = fake();
        fake.write(&request("fd7a:115c:a1e0::1", ME_V6, b"six"));
        let reply = fake.next_reply().expect("a reply");
        assert!(icmpv6_sum_is_valid(&reply), "ICMPv6 checksum");
        assert_eq!(reply[40], 129, "type echo reply");
        let echo = parse_echo_reply(&reply).unwrap();
        assert_eq!(
            (echo.src, echo.dst, echo.identifier, echo.sequence),
            (ME_V6.parse().unwrap(), "fd7a:115c:a1e0::1".parse().unwrap(), 77, 9)
        );
        assert_eq!(&reply[48..], b"six");
    }

    #[test]
    fn echoes_to_other_addresses_are_dropped_and_counted() {
        let mut fake = fake();
        fake.write(&request("100.64.0.1", "100.64.0.3", b"x"));
        fake.write(&request("fd7a:115c:a1e0::1", "fd7a:115c:a1e0::3", b"x"));
        assert_eq!(fake.next_reply(), None);
        assert_eq!(fake.counters(), FakeTunCounters { not_ours: 2, ..Default::default() });
    }

    #[test]
    fn everything_else_is_dropped_and_counted() {
        let mut fake = fake();
        let reply = crate::packet::icmp::reply_to(&request(ME_V4, "100.64.0.1", b"r"));
        for packet in [&reply[..], &[][..], &[0x45, 0, 0][..]] {
            fake.write(packet);
        }
        assert_eq!(fake.next_reply(), None);
        assert_eq!(fake.counters(), FakeTunCounters { unhandled: 3, ..Default::default() });
    }

    #[test]
    fn a_full_queue_drops_instead_of_growing() {
        let mut fake = fake();
        let packet = request("100.64.0.1", ME_V4, b"");
        for _ in 0..MAX_QUEUED_REPLIES + 3 {
            fake.write(&packet);
        }
        assert_eq!(fake.counters().queue_full, 3);
        assert_eq!(std::iter::from_fn(|| fake.next_reply()).count(), MAX_QUEUED_REPLIES);
    }

    #[test]
    fn random_packets_never_panic() {
        let mut fake = fake();
        let packet = request("100.64.0.1", ME_V4, b"payload");
        crate::testing::shake(5, 3000, &packet, |p| {
            fake.write(p);
            while fake.next_reply().is_some() {}
        });
    }
}
