//! The IP protocols a filter rule applies to, as a 256-bit set so a lookup is one bit test.

use crate::packet::wire::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ProtocolSet([u64; 4]);

/// What a rule with an empty `IPProto` means.
const DEFAULT_PROTOCOLS: [u8; 4] = [PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6];

impl ProtocolSet {
    /// From a rule's `IPProto`: empty means TCP, UDP, ICMP and ICMPv6; numbers outside 0–255
    /// are reserved and skipped, so a list of only those matches nothing.
    pub(super) fn from_wire(numbers: &[i64]) -> ProtocolSet {
        let mut set = ProtocolSet([0; 4]);
        if numbers.is_empty() {
            DEFAULT_PROTOCOLS.iter().for_each(|&p| set.insert(p));
        } else {
            numbers.iter().filter_map(|&n| u8::try_from(n).ok()).for_each(|p| set.insert(p));
        }
        set
    }

    fn insert(&mut self, protocol: u8) {
        self.0[usize::from(protocol / 64)] |= 1 << (protocol % 64);
    }

    pub(super) fn contains(&self, protocol: u8) -> bool {
        self.0[usize::from(protocol / 64)] & (1 << (protocol % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_the_default_four() {
        let set = ProtocolSet::from_wire(&[]);
        assert!([1, 6, 17, 58].iter().all(|&p| set.contains(p)));
        assert!(![0, 2, 99, 132, 255].iter().any(|&p| set.contains(p)));
    }

    #[test]
    fn explicit_numbers_and_reserved_ones() {
        let set = ProtocolSet::from_wire(&[132, 0, 255, -1, 256]);
        assert!(set.contains(132) && set.contains(0) && set.contains(255));
        assert!(!set.contains(6));
        assert_eq!(ProtocolSet::from_wire(&[-1, 300]), ProtocolSet([0; 4]), "matches nothing");
    }
}
