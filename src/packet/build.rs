//! New IP packets the engine writes itself (TSMP notices, TCP resets, MagicDNS answers): the IP
//! header of either family around a zeroed payload the caller fills in. The header is tailscaled's for the
//! packets it generates: no options, no fragmentation flags, TTL (hop limit) 64.

use super::checksum::pseudo_header;
use super::wire::{ipv4, ipv6, udp, Ipv4Packet, Ipv6Packet, UdpDatagram, PROTO_UDP};
use std::net::{IpAddr, SocketAddr};

const TTL: u8 = 64;

/// A packet from `src` to `dst` carrying `payload_len` zero bytes of `protocol`, with `ident`
/// as the IPv4 identification (its low 16 bits) or the IPv6 flow label (its low 20 bits).
/// Returns the packet and where its payload starts; `None` for mixed families or a payload
/// too long for one packet.
pub(crate) fn ip_packet(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    ident: u32,
    payload_len: usize,
) -> Option<(Vec<u8>, usize)> {
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let total = u16::try_from(ipv4::HEADER_LEN + payload_len).ok()?;
            let mut packet = vec![0; usize::from(total)];
            let mut ip = Ipv4Packet::new_unchecked(&mut packet[..]);
            ip.set_version_and_header_len(ipv4::HEADER_LEN);
            ip.set_total_len(total);
            ip.set_ident(ident as u16);
            ip.set_dont_fragment(false);
            ip.set_ttl(TTL);
            ip.set_protocol(protocol);
            ip.set_src(src);
            ip.set_dst(dst);
            ip.fill_checksum();
            Some((packet, ipv4::HEADER_LEN))
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let payload = u16::try_from(payload_len).ok()?;
            let mut packet = vec![0; ipv6::HEADER_LEN + payload_len];
            let mut ip = Ipv6Packet::new_unchecked(&mut packet[..]);
            ip.set_version();
            ip.set_flow_label(ident);
            ip.set_payload_len(payload);
            ip.set_next_header(protocol);
            ip.set_hop_limit(TTL);
            ip.set_src(src);
            ip.set_dst(dst);
            Some((packet, ipv6::HEADER_LEN))
        }
        _ => None,
    }
}

/// A UDP datagram from `src` to `dst` carrying `data`, checksums filled in; `None` for mixed
/// families or data too long for one packet.
pub(crate) fn udp_packet(src: SocketAddr, dst: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
    let length = u16::try_from(udp::HEADER_LEN + data.len()).ok()?;
    let (mut packet, at) = ip_packet(src.ip(), dst.ip(), PROTO_UDP, 0, usize::from(length))?;
    packet[at + udp::HEADER_LEN..].copy_from_slice(data);
    let mut datagram = UdpDatagram::new_unchecked(&mut packet[at..]);
    datagram.set_src_port(src.port());
    datagram.set_dst_port(dst.port());
    datagram.set_length(length);
    datagram.fill_checksum(pseudo_header(src.ip(), dst.ip(), PROTO_UDP, u32::from(length)));
    Some(packet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::transport::{Transport, TransportView};
    use crate::packet::{checksum_add, checksum_finish};

    /// The UDP checksum by the plain reference sum: 0 when the stored one is right.
    fn udp_checksum_residue(packet: &[u8], addresses: std::ops::Range<usize>, at: usize) -> u16 {
        let mut sum = checksum_add(0, &packet[addresses]);
        let length = (packet.len() - at) as u16;
        sum = checksum_add(sum, &[0, PROTO_UDP]);
        sum = checksum_add(sum, &length.to_be_bytes());
        checksum_finish(checksum_add(sum, &packet[at..]))
    }

    #[test]
    fn udp_packets_of_both_families_have_valid_checksums() {
        let server: SocketAddr = "100.100.100.100:53".parse().unwrap();
        let client: SocketAddr = "100.64.0.1:40000".parse().unwrap();
        let packet = udp_packet(server, client, b"odd").unwrap();
        assert_eq!(packet.len(), 20 + 8 + 3);
        assert_eq!(checksum_finish(checksum_add(0, &packet[..20])), 0, "IPv4 header");
        assert_eq!(udp_checksum_residue(&packet, 12..20, 20), 0, "UDP");
        let view = TransportView::parse(&packet).unwrap();
        let Transport::Udp(ports) = view.transport else { panic!("{view:?}") };
        assert_eq!((ports.src, ports.dst), (53, 40000));
        assert_eq!(UdpDatagram::new_checked(&packet[20..]).unwrap().length(), 11);

        let server: SocketAddr = "[fd7a:115c:a1e0::53]:53".parse().unwrap();
        let client: SocketAddr = "[fd7a:115c:a1e0::1]:5353".parse().unwrap();
        let packet = udp_packet(server, client, &[0xab; 100]).unwrap();
        assert_eq!(udp_checksum_residue(&packet, 8..40, 40), 0, "UDP over IPv6");
        assert_eq!(udp_packet(server, "100.64.0.1:1".parse().unwrap(), b""), None);
        assert_eq!(udp_packet(server, client, &vec![0; 65535]), None);
    }
}
