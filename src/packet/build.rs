//! New IP packets the engine writes itself (TSMP notices, TCP resets): the IP header of either
//! family around a zeroed payload the caller fills in. The header is tailscaled's for the
//! packets it generates: no options, no fragmentation flags, TTL (hop limit) 64.

use super::wire::{ipv4, ipv6, Ipv4Packet, Ipv6Packet};
use std::net::IpAddr;

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
