//! Rewriting this node's address in a packet, for peers that know us by another address
//! (control's `SelfNodeV4MasqAddrForThisPeer` / `…V6…`, capability versions 59, 77 and 104:
//! shared nodes and 4via6 subnets). Checksums are adjusted incrementally (RFC 1624), so the
//! cost does not depend on the packet's size.

use super::checksum;
use super::wire::{IcmpPacket, IpPacket, TcpSegment, UdpDatagram};
use super::wire::{PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use std::net::IpAddr;

/// Which address of the packet to rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Source,
    Destination,
}

/// Replaces the `side` address of `packet` with `to` if it is `from`; returns whether it did.
/// Packets of another family, or too short to be what they claim, are left alone. Works in
/// place on the caller's buffer: the per-packet path allocates nothing.
pub(crate) fn rewrite(packet: &mut [u8], side: Side, from: IpAddr, to: IpAddr) -> bool {
    let Ok(ip) = IpPacket::new_checked(packet) else { return false };
    let current = match side {
        Side::Source => ip.src(),
        Side::Destination => ip.dst(),
    };
    if current != from {
        return false;
    }
    match (ip, from, to) {
        (IpPacket::V4(mut v4), IpAddr::V4(from), IpAddr::V4(to)) => {
            match side {
                Side::Source => v4.set_src(to),
                Side::Destination => v4.set_dst(to),
            }
            let (old, new) = (from.octets(), to.octets());
            v4.set_checksum(checksum::update(v4.checksum(), &old, &new));
            // A later fragment carries no transport header.
            if v4.fragment_offset() == 0 {
                let protocol = v4.protocol();
                update_transport_checksum(v4.payload_mut(), protocol, false, &old, &new);
            }
        }
        (IpPacket::V6(mut v6), IpAddr::V6(from), IpAddr::V6(to)) => {
            match side {
                Side::Source => v6.set_src(to),
                Side::Destination => v6.set_dst(to),
            }
            let protocol = v6.next_header();
            update_transport_checksum(
                v6.payload_mut(),
                protocol,
                true,
                &from.octets(),
                &to.octets(),
            );
        }
        _ => return false,
    }
    true
}

/// Updates the transport checksum that covers the addresses through the pseudo-header, if the
/// packet has one: TCP, UDP (whose checksum 0 means "none" over IPv4), ICMPv6. A header cut
/// short is left alone.
fn update_transport_checksum(
    payload: &mut [u8],
    protocol: u8,
    is_v6: bool,
    old: &[u8],
    new: &[u8],
) {
    match protocol {
        PROTO_TCP => {
            if let Ok(mut tcp) = TcpSegment::new_checked(payload) {
                tcp.set_checksum(checksum::update(tcp.checksum(), old, new));
            }
        }
        PROTO_UDP => {
            if let Ok(mut udp) = UdpDatagram::new_checked(payload) {
                if is_v6 || udp.checksum() != 0 {
                    udp.set_checksum(checksum::update(udp.checksum(), old, new));
                }
            }
        }
        PROTO_ICMPV6 if is_v6 => {
            if let Ok(mut icmp) = IcmpPacket::new_checked(payload) {
                icmp.set_checksum(checksum::update(icmp.checksum(), old, new));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::checksum::{add, finish, fold, pseudo_header};
    use crate::packet::icmp::{echo_request, Echo};
    use crate::packet::IpHeader;
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
