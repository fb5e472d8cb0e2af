//! What a TUN with offloads hands us: a `virtio_net_hdr` and either a packet whose checksum is
//! left to us or a TCP super-segment of up to 64 KiB. This module turns both into ordinary,
//! fully checksummed IP packets no longer than the segment size the kernel asked for.
//!
//! Portable pure code: the Linux shim only moves the bytes.

use super::checksum;
use super::wire::tcp::flags::{CWR, FIN, PSH};
use super::wire::{ipv6, Ipv4Packet, Ipv6Packet, TcpSegment, WireError, PROTO_TCP};
use std::net::IpAddr;

/// `struct virtio_net_hdr` (the 10-byte legacy layout that `TUNSETVNETHDRSZ` defaults to).
/// Fields are in the host's byte order, as the kernel keeps them for a legacy TUN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct VirtioHdr {
    pub flags: u8,
    pub gso_type: u8,
    /// Length of all headers (IP + TCP); a hint we don't rely on.
    pub hdr_len: u16,
    /// Payload bytes per segment (the MSS for TCP).
    pub gso_size: u16,
    /// Where checksumming starts (the transport header).
    pub csum_start: u16,
    /// Where, from `csum_start`, the checksum is stored.
    pub csum_offset: u16,
}

pub(crate) const VIRTIO_NET_HDR_LEN: usize = 10;
pub(crate) const F_NEEDS_CSUM: u8 = 1;
pub(crate) const GSO_NONE: u8 = 0;
pub(crate) const GSO_TCPV4: u8 = 1;
pub(crate) const GSO_TCPV6: u8 = 4;
pub(crate) const GSO_ECN: u8 = 0x80;

impl VirtioHdr {
    pub(crate) fn parse(bytes: &[u8]) -> Option<VirtioHdr> {
        let b = bytes.get(..VIRTIO_NET_HDR_LEN)?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VirtioHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    pub(crate) fn encode(&self) -> [u8; VIRTIO_NET_HDR_LEN] {
        let mut b = [0u8; VIRTIO_NET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }
}

/// Why a packet from the TUN could not be turned into plain packets (it is dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GsoError {
    /// The checksum position lies outside the packet.
    BadChecksumOffset,
    /// A GSO type we did not ask the kernel for (UDP, unknown).
    UnsupportedGso(u8),
    /// The headers contradict the GSO type or the buffer.
    Malformed,
    /// `out` cannot hold one segment.
    OutputTooSmall,
}

/// Turns one read from an offloading TUN (`hdr` + `packet`) into plain IP packets, handing each
/// to `emit`. A packet without GSO is checksummed in place if asked and passed through; a TCP
/// super-segment is cut into segments of at most `gso_size` payload bytes, built one at a time
/// in `out` (which needs room for the headers plus one segment's payload).
pub(crate) fn split(
    hdr: &VirtioHdr,
    packet: &mut [u8],
    out: &mut [u8],
    mut emit: impl FnMut(&[u8]),
) -> Result<(), GsoError> {
    match hdr.gso_type & !GSO_ECN {
        GSO_NONE => {
            if hdr.flags & F_NEEDS_CSUM != 0 {
                complete_checksum(packet, hdr.csum_start.into(), hdr.csum_offset.into())?;
            }
            emit(packet);
            Ok(())
        }
        GSO_TCPV4 => segment_tcp(hdr, packet, out, false, emit),
        GSO_TCPV6 => segment_tcp(hdr, packet, out, true, emit),
        other => Err(GsoError::UnsupportedGso(other)),
    }
}

/// Finishes a partial checksum (`CHECKSUM_PARTIAL`): the field at `start + offset` holds the
/// pseudo-header sum; the one's-complement sum from `start` to the end goes in its place.
pub(crate) fn complete_checksum(
    packet: &mut [u8],
    start: usize,
    offset: usize,
) -> Result<(), GsoError> {
    let at = start
        .checked_add(offset)
        .filter(|at| at.checked_add(2).is_some_and(|end| end <= packet.len()))
        .ok_or(GsoError::BadChecksumOffset)?;
    let sum = checksum::finish(checksum::add(0, &packet[start..]));
    // As the kernel does: a computed 0 is sent as 0xffff (UDP reserves 0 for "no checksum").
    let sum = if sum == 0 { 0xffff } else { sum };
    packet[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// Where the headers of a TCP packet are, checked against the buffer.
struct TcpLayout {
    /// Offset of the TCP header (= IP header length, extension headers included).
    tcp_at: usize,
    /// IP + TCP headers.
    headers: usize,
    src: IpAddr,
    dst: IpAddr,
}

fn tcp_layout(packet: &[u8], csum_start: usize, v6: bool) -> Result<TcpLayout, GsoError> {
    // Only the headers are checked: the segmenter writes every length field itself.
    let (src, dst, tcp_at) = if v6 {
        let ip = Ipv6Packet::new_unchecked(packet);
        ip.check_header_len().map_err(malformed)?;
        // The kernel points csum_start past any extension headers; a bare header must say TCP.
        let bare = csum_start == ipv6::HEADER_LEN;
        if csum_start < ipv6::HEADER_LEN || (bare && ip.next_header() != PROTO_TCP) {
            return Err(GsoError::Malformed);
        }
        (ip.src().into(), ip.dst().into(), csum_start)
    } else {
        let ip = Ipv4Packet::new_unchecked(packet);
        ip.check_header_len().map_err(malformed)?;
        if ip.protocol() != PROTO_TCP || ip.header_len() != csum_start {
            return Err(GsoError::Malformed);
        }
        (ip.src().into(), ip.dst().into(), ip.header_len())
    };
    let tcp = TcpSegment::new_checked(packet.get(tcp_at..).unwrap_or_default());
    let tcp_len = tcp.and_then(|tcp| tcp.checked_header_len()).map_err(malformed)?;
    Ok(TcpLayout { tcp_at, headers: tcp_at + tcp_len, src, dst })
}

/// Headers that contradict themselves or the buffer, whatever the view's reason.
fn malformed(_: WireError) -> GsoError {
    GsoError::Malformed
}

fn segment_tcp(
    hdr: &VirtioHdr,
    packet: &[u8],
    out: &mut [u8],
    v6: bool,
    mut emit: impl FnMut(&[u8]),
) -> Result<(), GsoError> {
    let layout = tcp_layout(packet, hdr.csum_start.into(), v6)?;
    let mss = usize::from(hdr.gso_size);
    if mss == 0 {
        return Err(GsoError::Malformed);
    }
    let headers = &packet[..layout.headers];
    let payload = &packet[layout.headers..];
    let max_segment = layout.headers + mss.min(payload.len());
    if out.len() < max_segment {
        return Err(GsoError::OutputTooSmall);
    }
    if max_segment > usize::from(u16::MAX) {
        return Err(GsoError::Malformed);
    }
    let tcp = TcpSegment::new_unchecked(&packet[layout.tcp_at..]);
    let (seq, flags) = (tcp.seq(), tcp.flags());
    let ip_id = if v6 { 0 } else { Ipv4Packet::new_unchecked(packet).ident() };
    let count = payload.len().div_ceil(mss).max(1);
    for i in 0..count {
        let chunk = &payload[(i * mss).min(payload.len())..((i + 1) * mss).min(payload.len())];
        let len = layout.headers + chunk.len();
        let seg = &mut out[..len];
        seg[..layout.headers].copy_from_slice(headers);
        seg[layout.headers..].copy_from_slice(chunk);
        if v6 {
            Ipv6Packet::new_unchecked(&mut *seg).set_payload_len((len - ipv6::HEADER_LEN) as u16);
        } else {
            let mut ip = Ipv4Packet::new_unchecked(&mut *seg);
            ip.set_total_len(len as u16);
            ip.set_ident(ip_id.wrapping_add(i as u16));
            ip.fill_checksum();
        }
        let mut seg_flags = flags;
        if i + 1 < count {
            seg_flags &= !(FIN | PSH);
        }
        if i > 0 {
            seg_flags &= !CWR;
        }
        let mut tcp = TcpSegment::new_unchecked(&mut seg[layout.tcp_at..]);
        tcp.set_seq(seq.wrapping_add((i * mss) as u32));
        tcp.set_flags(seg_flags);
        let tcp_len = (len - layout.tcp_at) as u32;
        tcp.fill_checksum(checksum::pseudo_header(layout.src, layout.dst, PROTO_TCP, tcp_len));
        emit(seg);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::packet::wire::tcp::flags::{CWR as TCP_CWR, FIN as TCP_FIN, PSH as TCP_PSH};
    use crate::packet::wire::PROTO_TCP as TCP;
    use crate::packet::{checksum_add, checksum_finish};
    use crate::testing::{shake, Rng};
    use std::net::Ipv6Addr;

    /// A TCP packet (v4 or v6) with `payload`, checksums as the kernel leaves them for TSO
    /// (IPv4 header checksum valid, TCP checksum = partial pseudo-header sum).
    pub(crate) fn tcp_packet(v6: bool, payload: &[u8], flags: u8, seq: u32) -> Vec<u8> {
        let ip_len = if v6 { 40 } else { 20 };
        let tcp_len = 32; // with a 12-byte timestamp option
        let total = ip_len + tcp_len + payload.len();
        let mut p = vec![0u8; total];
        if v6 {
            p[0] = 0x60;
            p[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
            p[6] = TCP;
            p[7] = 64;
            p[8..24].copy_from_slice(&"fd7a:115c:a1e0::1".parse::<Ipv6Addr>().unwrap().octets());
            p[24..40].copy_from_slice(&"fd7a:115c:a1e0::2".parse::<Ipv6Addr>().unwrap().octets());
        } else {
            p[0] = 0x45;
            p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            p[4..6].copy_from_slice(&0xfff0u16.to_be_bytes());
            p[6] = 0x40;
            p[8] = 64;
            p[9] = TCP;
            p[12..16].copy_from_slice(&[100, 64, 0, 1]);
            p[16..20].copy_from_slice(&[100, 64, 0, 2]);
            let s = checksum_finish(checksum_add(0, &p[..20]));
            p[10..12].copy_from_slice(&s.to_be_bytes());
        }
        let t = ip_len;
        p[t..t + 2].copy_from_slice(&40000u16.to_be_bytes());
        p[t + 2..t + 4].copy_from_slice(&5201u16.to_be_bytes());
        p[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
        p[t + 8..t + 12].copy_from_slice(&77u32.to_be_bytes());
        p[t + 12] = (tcp_len as u8 / 4) << 4;
        p[t + 13] = flags;
        p[t + 14..t + 16].copy_from_slice(&512u16.to_be_bytes());
        p[t + 20..t + 32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        p[ip_len + tcp_len..].copy_from_slice(payload);
        let (src, dst) = addrs(&p);
        let partial =
            checksum::fold(checksum::pseudo_header(src, dst, TCP, (total - ip_len) as u32));
        p[t + 16..t + 18].copy_from_slice(&partial.to_be_bytes());
        p
    }

    fn addrs(p: &[u8]) -> (IpAddr, IpAddr) {
        let h = crate::packet::IpHeader::parse(p).unwrap();
        (h.src, h.dst)
    }

    /// Independent check: the reference 16-bit checksum over pseudo-header + segment is 0.
    pub(crate) fn tcp_checksum_ok(p: &[u8]) -> bool {
        let h = crate::packet::IpHeader::parse(p).unwrap();
        let seg = &p[h.payload_offset..h.total_len];
        let mut sum = 0u32;
        match (h.src, h.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                sum = checksum_add(sum, &s.octets());
                sum = checksum_add(sum, &d.octets());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                sum = checksum_add(sum, &s.octets());
                sum = checksum_add(sum, &d.octets());
            }
            _ => unreachable!(),
        }
        sum += u32::from(TCP) + seg.len() as u32;
        checksum_finish(checksum_add(sum, seg)) == 0
    }

    pub(crate) fn ipv4_checksum_ok(p: &[u8]) -> bool {
        checksum_finish(checksum_add(0, &p[..20])) == 0
    }

    fn tso_hdr(v6: bool, mss: u16) -> VirtioHdr {
        VirtioHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
            hdr_len: if v6 { 72 } else { 52 },
            gso_size: mss,
            csum_start: if v6 { 40 } else { 20 },
            csum_offset: 16,
        }
    }

    fn split_all(hdr: &VirtioHdr, packet: &mut [u8]) -> Result<Vec<Vec<u8>>, GsoError> {
        let mut out = vec![0u8; 65536];
        let mut segs = Vec::new();
        split(hdr, packet, &mut out, |s| segs.push(s.to_vec()))?;
        Ok(segs)
    }

    #[test]
    fn header_round_trips() {
        let h = tso_hdr(true, 1388);
        assert_eq!(VirtioHdr::parse(&h.encode()), Some(h));
        assert_eq!(VirtioHdr::parse(&[0; 9]), None);
    }

    fn check_segmentation(v6: bool, payload_len: usize, mss: u16, flags: u8) {
        let payload = Rng::new(payload_len as u64 + 1).bytes(payload_len);
        let seq = 0xffff_f000; // wraps within the burst
        let mut packet = tcp_packet(v6, &payload, flags, seq);
        let segs = split_all(&tso_hdr(v6, mss), &mut packet).unwrap();
        let mss = usize::from(mss);
        assert_eq!(segs.len(), payload_len.div_ceil(mss).max(1));
        let ip_len = if v6 { 40 } else { 20 };
        let mut joined = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            let h = crate::packet::IpHeader::parse(s).unwrap();
            assert_eq!(h.total_len, s.len(), "segment {i} length field");
            let body = &s[ip_len + 32..];
            assert!(body.len() <= mss);
            if i + 1 < segs.len() {
                assert_eq!(body.len(), mss, "only the last segment is short");
            }
            joined.extend_from_slice(body);
            assert!(tcp_checksum_ok(s), "TCP checksum of segment {i}");
            if !v6 {
                assert!(ipv4_checksum_ok(s), "IPv4 checksum of segment {i}");
                let id = u16::from_be_bytes([s[4], s[5]]);
                assert_eq!(id, 0xfff0u16.wrapping_add(i as u16));
            }
            let t = ip_len;
            let got_seq = u32::from_be_bytes(s[t + 4..t + 8].try_into().unwrap());
            assert_eq!(got_seq, seq.wrapping_add((i * mss) as u32));
            let f = s[t + 13];
            let last = i + 1 == segs.len();
            assert_eq!(f & TCP_FIN != 0, last && flags & TCP_FIN != 0, "FIN on {i}");
            assert_eq!(f & TCP_PSH != 0, last && flags & TCP_PSH != 0, "PSH on {i}");
            assert_eq!(f & TCP_CWR != 0, i == 0 && flags & TCP_CWR != 0, "CWR on {i}");
            assert_eq!(f & 0x10, 0x10, "ACK everywhere");
            // Everything else in the headers is copied: ports, ack, window, options.
            assert_eq!(s[t..t + 4], packet[t..t + 4]);
            assert_eq!(s[t + 8..t + 12], packet[t + 8..t + 12]);
            assert_eq!(s[t + 14..t + 16], packet[t + 14..t + 16]);
            assert_eq!(s[t + 20..t + 32], packet[t + 20..t + 32]);
        }
        assert_eq!(joined, payload);
    }

    #[test]
    fn segments_ipv4_and_ipv6_at_every_boundary() {
        for v6 in [false, true] {
            for (len, mss) in [
                (0, 1368),
                (1, 1368),
                (1367, 1368),
                (1368, 1368),
                (1369, 1368),
                (2 * 1368, 1368),
                (65535 - 72, 1348),
                (10_000, 1),
                (5000, 536),
            ] {
                for flags in [0x10, 0x18, 0x19, 0x98, 0x11] {
                    check_segmentation(v6, len, mss, flags);
                }
            }
        }
    }

    #[test]
    fn completes_a_partial_checksum_for_a_plain_packet() {
        for v6 in [false, true] {
            let mut p = tcp_packet(v6, b"hello, tunnel", 0x18, 1);
            let hdr = VirtioHdr {
                flags: F_NEEDS_CSUM,
                csum_start: if v6 { 40 } else { 20 },
                csum_offset: 16,
                ..VirtioHdr::default()
            };
            let segs = split_all(&hdr, &mut p).unwrap();
            assert_eq!(segs.len(), 1);
            assert!(tcp_checksum_ok(&segs[0]));
        }
    }

    #[test]
    fn passes_plain_packets_through_untouched() {
        let mut p = tcp_packet(false, b"x", 0x18, 1);
        let before = p.clone();
        let segs = split_all(&VirtioHdr::default(), &mut p).unwrap();
        assert_eq!(segs, vec![before]);
    }

    #[test]
    fn zero_udp_checksum_becomes_ffff() {
        // A UDP packet whose data makes the sum come out at 0: the field must read 0xffff.
        let mut p = vec![0u8; 8];
        p[6..8].copy_from_slice(&0xffffu16.to_be_bytes());
        complete_checksum(&mut p, 0, 6).unwrap();
        assert_eq!(&p[6..8], &[0xff, 0xff]);
    }

    #[test]
    fn refuses_contradictions() {
        let mut v4 = tcp_packet(false, &[0; 3000], 0x10, 1);
        let mut v6 = tcp_packet(true, &[0; 3000], 0x10, 1);
        assert_eq!(split_all(&tso_hdr(true, 1000), &mut v4), Err(GsoError::Malformed));
        assert_eq!(split_all(&tso_hdr(false, 1000), &mut v6), Err(GsoError::Malformed));
        assert_eq!(split_all(&tso_hdr(false, 0), &mut v4), Err(GsoError::Malformed));
        let udp = VirtioHdr { gso_type: 5, ..tso_hdr(false, 1000) };
        assert_eq!(split_all(&udp, &mut v4), Err(GsoError::UnsupportedGso(5)));
        let far = VirtioHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 3040,
            csum_offset: 16,
            ..VirtioHdr::default()
        };
        assert_eq!(split_all(&far, &mut v4), Err(GsoError::BadChecksumOffset));
        let mut out = [0u8; 100];
        assert_eq!(
            split(&tso_hdr(false, 1000), &mut v4, &mut out, |_| {}),
            Err(GsoError::OutputTooSmall)
        );
    }

    #[test]
    fn malformed_headers_and_packets_never_panic() {
        let mut rng = Rng::new(99);
        for v6 in [false, true] {
            let packet = tcp_packet(v6, &rng.bytes(4000), 0x19, 5);
            let mut with_hdr = tso_hdr(v6, 1300).encode().to_vec();
            with_hdr.extend_from_slice(&packet);
            shake(if v6 { 11 } else { 12 }, 3000, &with_hdr, |b| {
                let Some(hdr) = VirtioHdr::parse(b) else {
                    return;
                };
                let mut p = b[VIRTIO_NET_HDR_LEN..].to_vec();
                let mut out = vec![0u8; 1 + rng.below(9000)];
                let _ = split(&hdr, &mut p, &mut out, |_| {});
            });
        }
        // Random headers over a valid packet.
        let packet = tcp_packet(false, &rng.bytes(3000), 0x18, 5);
        for _ in 0..3000 {
            let hdr = VirtioHdr::parse(&rng.bytes(10)).unwrap();
            let mut p = packet.clone();
            let mut out = vec![0u8; 65536];
            let _ = split(&hdr, &mut p, &mut out, |_| {});
        }
    }
}
