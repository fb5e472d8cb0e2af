//! Rewriting this node's address in a packet, for peers that know us by another address
//! (control's `SelfNodeV4MasqAddrForThisPeer` / `…V6…`, capability versions 59, 77 and 104:
//! shared nodes and 4via6 subnets). Checksums are adjusted incrementally (RFC 1624), so the
//! cost does not depend on the packet's size.

use super::checksum::{add, fold};
use super::icmp::PROTO_ICMPV6;
use super::transport::{PROTO_TCP, PROTO_UDP};
use super::IpHeader;
use std::net::IpAddr;

/// Which address of the packet to rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

/// Replaces the `side` address of `packet` with `to` if it is `from`; returns whether it did.
/// Packets of another family, or too short to be what they claim, are left alone.
pub fn rewrite(packet: &mut [u8], side: Side, from: IpAddr, to: IpAddr) -> bool {
    let Ok(header) = IpHeader::parse(packet) else { return false };
    let current = match side {
        Side::Source => header.src,
        Side::Destination => header.dst,
    };
    if current != from || from.is_ipv4() != to.is_ipv4() {
        return false;
    }
    let (old, new) = (octets(from), octets(to));
    let at = match (side, from.is_ipv4()) {
        (Side::Source, true) => 12,
        (Side::Destination, true) => 16,
        (Side::Source, false) => 8,
        (Side::Destination, false) => 24,
    };
    packet[at..at + old.len()].copy_from_slice(&new);
    if from.is_ipv4() {
        adjust_at(packet, 10, &old, &new);
    }
    if let Some(offset) = transport_checksum_offset(packet, &header) {
        adjust_at(packet, header.payload_offset + offset, &old, &new);
    }
    true
}

/// Where the transport checksum covering the addresses sits, if the packet has one: TCP and
/// UDP (a UDP checksum of 0 means "none" over IPv4), ICMPv6. Later IPv4 fragments carry no
/// transport header.
fn transport_checksum_offset(packet: &[u8], header: &IpHeader) -> Option<usize> {
    if header.src.is_ipv4() && u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff != 0 {
        return None;
    }
    let offset = match header.protocol {
        PROTO_TCP => 16,
        PROTO_UDP => 6,
        PROTO_ICMPV6 if header.src.is_ipv6() => 2,
        _ => return None,
    };
    let at = header.payload_offset + offset;
    if at + 2 > header.total_len {
        return None;
    }
    if header.protocol == PROTO_UDP && header.src.is_ipv4() && packet[at..at + 2] == [0, 0] {
        return None;
    }
    Some(offset)
}

/// RFC 1624: HC' = ~(~HC + ~m + m') over the changed 16-bit words.
fn adjust_at(packet: &mut [u8], at: usize, old: &[u8], new: &[u8]) {
    let checksum = u16::from_be_bytes([packet[at], packet[at + 1]]);
    let mut sum = u64::from(!checksum);
    for word in old.chunks_exact(2) {
        sum += u64::from(!u16::from_be_bytes([word[0], word[1]]));
    }
    sum = add(sum, new);
    packet[at..at + 2].copy_from_slice(&(!fold(sum)).to_be_bytes());
}

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::checksum::{finish, pseudo_header};
    use crate::packet::icmp::{echo_request, Echo};
    use crate::testing::shake;

    fn udp4(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let len = 20 + 8 + payload.len();
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, PROTO_UDP, 0, 0];
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        let ip_sum = finish(add(0, &p));
        p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
        let mut udp = vec![0x30, 0x39, 0x00, 0x35];
        udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let sum =
            finish(add(pseudo_header(src.into(), dst.into(), PROTO_UDP, udp.len() as u32), &udp));
        udp[6..8].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(&udp);
        p
    }

    /// Checksums verify from scratch after the rewrite.
    fn assert_checksums_valid(p: &[u8]) {
        let h = IpHeader::parse(p).unwrap();
        if h.src.is_ipv4() {
            assert_eq!(fold(add(0, &p[..h.payload_offset])), 0xffff, "IPv4 header checksum");
        }
        let l4 = &p[h.payload_offset..h.total_len];
        let covered = match h.protocol {
            PROTO_ICMPV6 | PROTO_UDP | PROTO_TCP => {
                add(pseudo_header(h.src, h.dst, h.protocol, l4.len() as u32), l4)
            }
            _ => add(0, l4),
        };
        assert_eq!(fold(covered), 0xffff, "transport checksum");
    }

    #[test]
    fn udp_source_is_rewritten_with_valid_checksums() {
        let mut p = udp4([100, 64, 0, 1], [100, 64, 0, 2], b"hello, odd length");
        assert!(rewrite(
            &mut p,
            Side::Source,
            "100.64.0.1".parse().unwrap(),
            "100.99.1.7".parse().unwrap()
        ));
        assert_eq!(IpHeader::parse(&p).unwrap().src.to_string(), "100.99.1.7");
        assert_checksums_valid(&p);
        // And back on the way in.
        assert!(rewrite(
            &mut p,
            Side::Source,
            "100.99.1.7".parse().unwrap(),
            "100.64.0.1".parse().unwrap()
        ));
        assert_eq!(p, udp4([100, 64, 0, 1], [100, 64, 0, 2], b"hello, odd length"));
    }

    #[test]
    fn icmpv6_destination_is_rewritten_with_valid_checksum() {
        let echo = Echo {
            src: "fd7a:115c:a1e0::2".parse().unwrap(),
            dst: "fd7a:115c:a1e0:ab12::9".parse().unwrap(),
            identifier: 1,
            sequence: 2,
        };
        let mut p = echo_request(&echo, b"ping").unwrap();
        let ours = "fd7a:115c:a1e0::1".parse().unwrap();
        assert!(rewrite(&mut p, Side::Destination, echo.dst, ours));
        assert_eq!(IpHeader::parse(&p).unwrap().dst, ours);
        assert_checksums_valid(&p);
    }

    #[test]
    fn other_addresses_and_families_are_left_alone() {
        let original = udp4([100, 64, 0, 1], [100, 64, 0, 2], b"x");
        let mut p = original.clone();
        assert!(!rewrite(
            &mut p,
            Side::Source,
            "100.64.0.9".parse().unwrap(),
            "100.99.0.1".parse().unwrap()
        ));
        assert!(!rewrite(
            &mut p,
            Side::Source,
            "100.64.0.1".parse().unwrap(),
            "fd00::1".parse().unwrap()
        ));
        assert_eq!(p, original);
    }

    #[test]
    fn mangled_packets_never_panic() {
        let p = udp4([100, 64, 0, 1], [100, 64, 0, 2], b"payload");
        shake(31, 3000, &p, |b| {
            let mut b = b.to_vec();
            let _ = rewrite(
                &mut b,
                Side::Source,
                "100.64.0.1".parse().unwrap(),
                "100.99.0.1".parse().unwrap(),
            );
        });
    }
}
