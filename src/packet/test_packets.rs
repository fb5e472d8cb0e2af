//! Hand-built packets for tests of code that reads transport headers. Checksums are left zero:
//! nothing under test verifies them.

use super::wire::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use std::net::IpAddr;

/// An IPv4 or IPv6 packet (by the addresses' family) from `src` to `dst` carrying `payload`.
pub(crate) fn ip(src: &str, dst: &str, protocol: u8, payload: &[u8]) -> Vec<u8> {
    match (parse(src), parse(dst)) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, protocol, 0, 0];
            p[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(payload);
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = vec![0x60, 0, 0, 0];
            p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            p.extend_from_slice(&[protocol, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(payload);
            p
        }
        _ => panic!("mixed address families in a test packet"),
    }
}

/// `"addr:port"` or `"[v6]:port"` → address text and port.
fn split(endpoint: &str) -> (&str, u16) {
    let (addr, port) = endpoint.rsplit_once(':').expect("endpoint has a port");
    (addr.trim_start_matches('[').trim_end_matches(']'), port.parse().expect("port"))
}

fn parse(addr: &str) -> IpAddr {
    addr.parse().expect("test address")
}

pub(crate) fn tcp(src: &str, dst: &str, flags: u8) -> Vec<u8> {
    let (src, src_port, dst, dst_port) = endpoints(src, dst);
    let mut header = [0u8; 20];
    header[..2].copy_from_slice(&src_port.to_be_bytes());
    header[2..4].copy_from_slice(&dst_port.to_be_bytes());
    header[12] = 5 << 4;
    header[13] = flags;
    ip(src, dst, PROTO_TCP, &header)
}

pub(crate) fn udp(src: &str, dst: &str) -> Vec<u8> {
    let (src, src_port, dst, dst_port) = endpoints(src, dst);
    let mut datagram = vec![0u8; 8];
    datagram[..2].copy_from_slice(&src_port.to_be_bytes());
    datagram[2..4].copy_from_slice(&dst_port.to_be_bytes());
    datagram[4..6].copy_from_slice(&12u16.to_be_bytes());
    datagram.extend_from_slice(b"data");
    ip(src, dst, PROTO_UDP, &datagram)
}

fn endpoints<'a>(src: &'a str, dst: &'a str) -> (&'a str, u16, &'a str, u16) {
    let ((src, src_port), (dst, dst_port)) = (split(src), split(dst));
    (src, src_port, dst, dst_port)
}

/// An ICMP (IPv4) or ICMPv6 message with an 8-byte header and a few bytes of body.
pub(crate) fn icmp(src: &str, dst: &str, kind: u8, code: u8) -> Vec<u8> {
    let protocol = if parse(src).is_ipv4() { PROTO_ICMP } else { PROTO_ICMPV6 };
    ip(src, dst, protocol, &[kind, code, 0, 0, 0, 1, 0, 1, b'p', b'i', b'n', b'g'])
}

/// Marks an IPv4 packet as a fragment at `offset` (8-byte units).
pub(crate) fn fragment_v4(mut packet: Vec<u8>, offset: u16, more_fragments: bool) -> Vec<u8> {
    let flags_and_offset = offset | if more_fragments { 0x2000 } else { 0 };
    packet[6..8].copy_from_slice(&flags_and_offset.to_be_bytes());
    packet
}

/// Wraps an IPv6 packet's payload in a Fragment header at `offset` (8-byte units).
pub(crate) fn fragment_v6(packet: Vec<u8>, offset: u16, more_fragments: bool) -> Vec<u8> {
    let offset_and_flags = (offset << 3) | u16::from(more_fragments);
    let mut payload = vec![packet[6], 0];
    payload.extend_from_slice(&offset_and_flags.to_be_bytes());
    payload.extend_from_slice(&[0, 0, 0, 7]);
    payload.extend_from_slice(&packet[40..]);
    let src = IpAddr::from(<[u8; 16]>::try_from(&packet[8..24]).expect("16 bytes"));
    let dst = IpAddr::from(<[u8; 16]>::try_from(&packet[24..40]).expect("16 bytes"));
    ip(&src.to_string(), &dst.to_string(), 44, &payload)
}
