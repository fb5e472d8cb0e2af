//! The Internet checksum (RFC 1071), fast enough for every byte of a bulk transfer.
//!
//! The sum is kept in a `u64` of big-endian 32-bit words: since 2^16 ≡ 1 (mod 0xffff), adding
//! 32-bit words and folding at the end gives the same one's-complement sum as adding 16-bit
//! words, at half the additions. [`super::checksum_add`] is the plain reference the tests
//! compare against.

use std::net::IpAddr;

/// Adds `data` to the running sum `sum` (which must come from this module or be 0). `data` is
/// taken to start at an even offset of the checksummed region.
pub(crate) fn add(mut sum: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_be_bytes(c.try_into().expect("8-byte chunk"));
        sum = sum.wrapping_add(word >> 32).wrapping_add(word & 0xffff_ffff);
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 4 {
        sum += u64::from(u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")));
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        sum += u64::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let [last] = rest {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds a running sum to 16 bits, not complemented (a "partial" checksum).
pub(crate) fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum to store: the complement of the folded sum.
pub(crate) fn finish(sum: u64) -> u16 {
    !fold(sum)
}

/// RFC 1624 incremental update: the checksum `checksum` once the 16-bit-aligned bytes `old`
/// it covered are replaced by `new` (of the same length). HC' = ~(~HC + ~m + m'), so a
/// rewritten address costs the same whatever the size of the packet.
pub(crate) fn update(checksum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut sum = u64::from(!checksum);
    for word in old.chunks_exact(2) {
        sum += u64::from(!u16::from_be_bytes([word[0], word[1]]));
    }
    !fold(add(sum, new))
}

/// The TCP/UDP pseudo-header of RFC 793 / RFC 8200 §8.1 for `src`→`dst`, `protocol` and the
/// transport length `len`. Mixed families give 0 (the caller has already checked them).
pub(crate) fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, len: u32) -> u64 {
    let mut sum = u64::from(protocol) + u64::from(len);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum = add(sum, &s.octets());
            add(sum, &d.octets())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            sum = add(sum, &s.octets());
            add(sum, &d.octets())
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{checksum_add, checksum_finish};
    use crate::testing::Rng;

    #[test]
    fn agrees_with_the_reference_on_every_length_and_alignment() {
        let mut rng = Rng::new(42);
        let data = rng.bytes(3000);
        for start in 0..8 {
            for len in (0..200).chain([1399, 1400, 1401, 2992]) {
                let slice = &data[start..start + len];
                assert_eq!(
                    finish(add(0, slice)),
                    checksum_finish(checksum_add(0, slice)),
                    "start {start} len {len}"
                );
            }
        }
    }

    #[test]
    fn all_ones_does_not_overflow() {
        let data = vec![0xff; 65536];
        assert_eq!(finish(add(0, &data)), checksum_finish(checksum_add(0, &data)));
    }

    #[test]
    fn rfc1071_example() {
        let sum = add(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
        assert_eq!(fold(sum), 0xddf2);
    }
}
