//! Receive-side coalescing (GRO in user space): consecutive in-order TCP segments of one flow,
//! as they come out of the tunnel, are glued into one super-segment that an offloading TUN
//! takes with a single write and the kernel's stack handles as one packet.
//!
//! The rules follow the kernel's own `tcp_gro_receive`: same addresses, ports, ACK number,
//! window and options, only ACK (and PSH on the last segment) set, sequence numbers adjoining,
//! every segment the size of the first except a shorter last one. A segment whose checksum is
//! wrong is never merged (the kernel would not check it again) but passed on as it is.
//! Portable pure code.

use super::checksum;
use super::gso::{VirtioHdr, F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, VIRTIO_NET_HDR_LEN};
use super::wire::tcp::flags::{ACK, PSH};
use super::wire::{ipv4, ipv6, tcp, IpPacket, Ipv4Packet, Ipv6Packet, TcpSegment, PROTO_TCP};
use std::net::IpAddr;
use std::ops::Range;
/// Largest super-segment: an IPv4 total length (and IPv6 payload length) is 16 bits.
const MAX_SUPER: usize = 65535;

/// The facts of one TCP packet that decide whether it can join another.
struct Segment {
    v6: bool,
    /// IP header length (TCP header offset).
    ip_len: usize,
    /// IP + TCP header length (payload offset).
    headers: usize,
    seq: u32,
    flags: u8,
    payload: usize,
}

/// The pending super-segment and the space it is built in.
pub(crate) struct Coalescer {
    buf: Box<[u8]>,
    /// Bytes of `buf` in use; 0 when nothing is pending.
    len: usize,
    first: Option<Segment>,
    count: usize,
    next_seq: u32,
    /// A shorter or PSH segment was added: the next one starts afresh.
    closed: bool,
}

impl Default for Coalescer {
    fn default() -> Self {
        Self::new()
    }
}

impl Coalescer {
    pub(crate) fn new() -> Coalescer {
        Coalescer {
            buf: vec![0; MAX_SUPER].into_boxed_slice(),
            len: 0,
            first: None,
            count: 0,
            next_seq: 0,
            closed: false,
        }
    }

    /// Offers one packet bound for the TUN. It joins the pending super-segment, starts a new
    /// one, or (not TCP data, bad checksum) is written through `write` at once, after whatever
    /// was pending so the order is kept.
    pub(crate) fn push(
        &mut self,
        packet: &[u8],
        mut write: impl FnMut(&[u8; VIRTIO_NET_HDR_LEN], &[u8]),
    ) {
        let Some(seg) = parse(packet) else {
            self.flush(&mut write);
            write(&[0; VIRTIO_NET_HDR_LEN], packet);
            return;
        };
        if self.can_join(&seg, packet) {
            self.buf[self.len..self.len + seg.payload].copy_from_slice(&packet[seg.headers..]);
            self.len += seg.payload;
            self.count += 1;
            self.next_seq = seg.seq.wrapping_add(seg.payload as u32);
            let first = self.first.as_ref().expect("pending segment");
            if seg.payload < first.payload || seg.flags & PSH != 0 {
                self.closed = true;
                if seg.flags & PSH != 0 {
                    let mut tcp = TcpSegment::new_unchecked(&mut self.buf[first.ip_len..]);
                    tcp.set_flags(tcp.flags() | PSH);
                }
            }
            return;
        }
        self.flush(&mut write);
        self.buf[..packet.len()].copy_from_slice(packet);
        self.len = packet.len();
        self.count = 1;
        self.next_seq = seg.seq.wrapping_add(seg.payload as u32);
        self.closed = seg.flags & PSH != 0;
        self.first = Some(seg);
    }

    fn can_join(&self, seg: &Segment, packet: &[u8]) -> bool {
        let Some(first) = &self.first else {
            return false;
        };
        if self.closed
            || seg.v6 != first.v6
            || seg.headers != first.headers
            || seg.ip_len != first.ip_len
            || seg.seq != self.next_seq
            || seg.payload > first.payload
            || self.len + seg.payload > MAX_SUPER
        {
            return false;
        }
        let pending = &self.buf[..first.headers];
        let same = |at: Range<usize>| pending[at.clone()] == packet[at];
        let ip_same = if seg.v6 {
            use ipv6::field::{DST, NEXT_HEADER, VERSION_CLASS_FLOW};
            // Everything but the payload length.
            same(VERSION_CLASS_FLOW) && same(NEXT_HEADER..DST.end)
        } else {
            use ipv4::field::{DSCP_ECN, DST, FLAGS_FRAGMENT, PROTOCOL, SRC};
            // The IP ID goes up by one per segment, as segmenting again will make it; TOS;
            // flags and fragment offset; TTL and protocol; addresses.
            let first_id = Ipv4Packet::new_unchecked(pending).ident();
            let id = Ipv4Packet::new_unchecked(packet).ident();
            id == first_id.wrapping_add(self.count as u16)
                && same(DSCP_ECN..DSCP_ECN + 1)
                && same(FLAGS_FRAGMENT.start..PROTOCOL + 1)
                && same(SRC.start..DST.end)
        };
        use tcp::field::{ACK as ACK_NUMBER, DATA_OFFSET, DST_PORT, SRC_PORT, URGENT, WINDOW};
        let t = first.ip_len;
        let same_tcp = |at: Range<usize>| same(t + at.start..t + at.end);
        // Ports; ACK number; data offset; window; urgent pointer and options (all but the
        // sequence number, the flags' PSH bit and the checksum).
        ip_same
            && same_tcp(SRC_PORT.start..DST_PORT.end)
            && same_tcp(ACK_NUMBER.start..DATA_OFFSET + 1)
            && same_tcp(WINDOW)
            && same_tcp(URGENT.start..first.headers - t)
    }

    /// Writes the pending super-segment (a plain packet if it holds only one).
    pub(crate) fn flush(&mut self, mut write: impl FnMut(&[u8; VIRTIO_NET_HDR_LEN], &[u8])) {
        let Some(first) = self.first.take() else {
            return;
        };
        let len = std::mem::take(&mut self.len);
        let count = std::mem::take(&mut self.count);
        self.closed = false;
        let packet = &mut self.buf[..len];
        if count == 1 {
            write(&[0; VIRTIO_NET_HDR_LEN], packet);
            return;
        }
        let t = first.ip_len;
        let (src, dst): (IpAddr, IpAddr) = if first.v6 {
            let mut ip = Ipv6Packet::new_unchecked(&mut *packet);
            ip.set_payload_len((len - ipv6::HEADER_LEN) as u16);
            (ip.src().into(), ip.dst().into())
        } else {
            let mut ip = Ipv4Packet::new_unchecked(&mut *packet);
            ip.set_total_len(len as u16);
            ip.fill_checksum();
            (ip.src().into(), ip.dst().into())
        };
        // CHECKSUM_PARTIAL: the field holds the pseudo-header sum, the kernel (or whoever
        // segments the packet again) finishes it.
        let partial = checksum::pseudo_header(src, dst, PROTO_TCP, (len - t) as u32);
        TcpSegment::new_unchecked(&mut packet[t..]).set_checksum(checksum::fold(partial));
        let hdr = VirtioHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if first.v6 { GSO_TCPV6 } else { GSO_TCPV4 },
            hdr_len: first.headers as u16,
            gso_size: first.payload as u16,
            csum_start: t as u16,
            csum_offset: tcp::field::CHECKSUM.start as u16,
        };
        write(&hdr.encode(), packet);
    }
}

/// A TCP data segment that may be coalesced: plain IPv4 (no options, not a fragment) or IPv6
/// without extension headers, only ACK or ACK+PSH set, some payload, a valid checksum.
fn parse(p: &[u8]) -> Option<Segment> {
    let ip = IpPacket::new_checked(p).ok()?;
    let v6 = match &ip {
        IpPacket::V4(v4) => {
            let plain = v4.header_len() == ipv4::HEADER_LEN && !v4.is_fragment();
            if !plain || v4.protocol() != PROTO_TCP || !v4.verify_checksum() {
                return None;
            }
            false
        }
        IpPacket::V6(v6) => {
            if v6.next_header() != PROTO_TCP {
                return None;
            }
            true
        }
    };
    if ip.total_len() != p.len() || p.len() > MAX_SUPER {
        return None;
    }
    let ip_len = ip.header_len();
    let segment = ip.payload();
    let tcp = TcpSegment::new_checked(segment).ok()?;
    let headers = ip_len + tcp.checked_header_len().ok()?;
    if headers >= p.len() || tcp.flags() & !PSH != ACK {
        return None;
    }
    let sum = checksum::pseudo_header(ip.src(), ip.dst(), PROTO_TCP, segment.len() as u32);
    if checksum::finish(checksum::add(sum, segment)) != 0 {
        return None;
    }
    Some(Segment {
        v6,
        ip_len,
        headers,
        seq: tcp.seq(),
        flags: tcp.flags(),
        payload: p.len() - headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::gso::tests::{ipv4_checksum_ok, tcp_checksum_ok, tcp_packet};
    use crate::packet::gso::{complete_checksum, split};
    use crate::packet::wire::PROTO_TCP as TCP;
    use crate::testing::{shake, Rng};

    /// A TCP packet with a complete, valid checksum (as it leaves the tunnel).
    fn wire_packet(v6: bool, payload: &[u8], flags: u8, seq: u32) -> Vec<u8> {
        let mut p = tcp_packet(v6, payload, flags, seq);
        let t = if v6 { 40 } else { 20 };
        complete_checksum(&mut p, t, 16).unwrap();
        assert!(tcp_checksum_ok(&p));
        p
    }

    type Written = Vec<(VirtioHdr, Vec<u8>)>;

    fn run(packets: &[Vec<u8>]) -> Written {
        let mut c = Coalescer::new();
        let mut out = Vec::new();
        for p in packets {
            c.push(p, |h, b| out.push((VirtioHdr::parse(h).unwrap(), b.to_vec())));
        }
        c.flush(|h, b| out.push((VirtioHdr::parse(h).unwrap(), b.to_vec())));
        out
    }

    /// Cuts what was written back into wire packets with the segmentation code.
    fn resegment(written: &Written) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        let mut out = vec![0u8; 65536];
        for (hdr, packet) in written {
            let mut p = packet.clone();
            split(hdr, &mut p, &mut out, |s| all.push(s.to_vec())).unwrap();
        }
        all
    }

    fn stream(v6: bool, sizes: &[usize], seq: u32, last_flags: u8) -> Vec<Vec<u8>> {
        let mut rng = Rng::new(sizes.len() as u64 + 3);
        let mut seq = seq;
        let n = sizes.len();
        sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let flags = if i + 1 == n { last_flags } else { ACK };
                let mut p = tcp_packet(v6, &rng.bytes(len), flags, seq);
                if !v6 {
                    // IDs go up per segment as the kernel sends them.
                    p[4..6].copy_from_slice(&0xfff0u16.wrapping_add(i as u16).to_be_bytes());
                    p[10..12].copy_from_slice(&[0, 0]);
                    let sum = checksum::finish(checksum::add(0, &p[..20]));
                    p[10..12].copy_from_slice(&sum.to_be_bytes());
                }
                complete_checksum(&mut p, if v6 { 40 } else { 20 }, 16).unwrap();
                seq = seq.wrapping_add(len as u32);
                p
            })
            .collect()
    }

    #[test]
    fn merges_a_run_and_the_kernel_view_is_exact() {
        for v6 in [false, true] {
            let packets = stream(v6, &[1368, 1368, 1368, 500], 0xffff_fa00, ACK | PSH);
            let written = run(&packets);
            assert_eq!(written.len(), 1, "one super-segment");
            let (hdr, merged) = &written[0];
            assert_eq!(hdr.gso_type, if v6 { GSO_TCPV6 } else { GSO_TCPV4 });
            assert_eq!((hdr.gso_size, hdr.flags), (1368, F_NEEDS_CSUM));
            // Finishing the partial checksum over the whole gives a valid big packet.
            let mut whole = merged.clone();
            complete_checksum(&mut whole, hdr.csum_start.into(), 16).unwrap();
            assert!(tcp_checksum_ok(&whole));
            if !v6 {
                assert!(ipv4_checksum_ok(&whole));
            }
            // Segmenting it again gives back exactly the packets that went in.
            assert!(resegment(&written) == packets, "round trip");
        }
    }

    fn refresh_v4_tcp_checksum(p: &mut [u8]) {
        let t = 20;
        p[t + 16..t + 18].copy_from_slice(&[0, 0]);
        let (src, dst) = (IpAddr::from([100, 64, 0, 1]), IpAddr::from([100, 64, 0, 2]));
        let sum = checksum::pseudo_header(src, dst, TCP, (p.len() - t) as u32);
        let sum = checksum::finish(checksum::add(sum, &p[t..]));
        p[t + 16..t + 18].copy_from_slice(&sum.to_be_bytes());
        assert!(tcp_checksum_ok(p));
    }

    #[test]
    fn keeps_apart_what_must_not_merge() {
        let v4 = stream(false, &[1000, 1000], 1, ACK);
        // A gap in sequence numbers.
        let mut gap = v4.clone();
        gap[1] = wire_packet(false, &[7; 1000], ACK, 5000);
        assert_eq!(run(&gap).len(), 2);
        // A larger segment after a smaller one, and anything after a short one.
        let grow = stream(false, &[500, 1000], 1, ACK);
        assert_eq!(run(&grow).len(), 2);
        let after_short = stream(false, &[1000, 500, 500], 1, ACK);
        assert_eq!(run(&after_short).len(), 2);
        // After PSH, and FIN/SYN never.
        let psh = stream(false, &[1000, 1000, 1000], 1, ACK);
        let mut psh_mid = psh.clone();
        psh_mid[1][20 + 13] |= PSH;
        refresh_v4_tcp_checksum(&mut psh_mid[1]);
        assert_eq!(run(&psh_mid).len(), 2);
        let fin = stream(false, &[1000, 1000], 1, ACK | 0x01);
        assert_eq!(run(&fin).len(), 2);
        // A bad checksum passes through on its own.
        let mut bad = stream(false, &[1000, 1000, 1000], 1, ACK);
        bad[1][100] ^= 1;
        let written = run(&bad);
        assert_eq!(written.len(), 3);
        assert!(written.iter().all(|(h, _)| h.gso_type == 0));
        assert!(written[1].1 == bad[1], "bad packet passed as it is");
        // Different ACK numbers; IPv4 then IPv6; pure ACKs.
        let mut acks = stream(false, &[1000, 1000], 1, ACK);
        let t = 20;
        acks[1][t + 11] ^= 1;
        refresh_v4_tcp_checksum(&mut acks[1]);
        assert_eq!(run(&acks).len(), 2);
        let mixed = vec![v4[0].clone(), stream(true, &[1000], 1001, ACK)[0].clone()];
        assert_eq!(run(&mixed).len(), 2);
        let pure = stream(false, &[0, 0], 1, ACK);
        let written = run(&pure);
        assert_eq!(written.len(), 2);
        assert!(resegment(&written) == pure, "pure ACKs pass");
    }

    #[test]
    fn order_is_kept_around_packets_that_pass_through() {
        let mut packets = stream(false, &[1000, 1000, 1000, 1000], 1, ACK);
        let icmp = {
            let mut p = vec![0u8; 28];
            p[0] = 0x45;
            p[2..4].copy_from_slice(&28u16.to_be_bytes());
            p[9] = 1;
            p
        };
        packets.insert(2, icmp.clone());
        let written = run(&packets);
        assert_eq!(written.len(), 3);
        assert!(written[1].1 == icmp, "ICMP in the middle");
        assert!(resegment(&written) == packets, "round trip");
    }

    #[test]
    fn stops_below_64k() {
        let packets = stream(true, &[1400; 60], 9, ACK);
        let written = run(&packets);
        assert!(written.len() >= 2);
        assert!(written.iter().all(|(_, p)| p.len() <= MAX_SUPER));
        assert!(resegment(&written) == packets, "round trip");
    }

    #[test]
    fn random_packets_never_panic_and_never_lose_bytes() {
        for v6 in [false, true] {
            let base = stream(v6, &[1200, 1200], 77, ACK);
            let mut c = Coalescer::new();
            let mut total_in = 0usize;
            let mut total_out = 0usize;
            shake(if v6 { 21 } else { 22 }, 4000, &base[0], |b| {
                total_in += 1;
                c.push(b, |_, _| total_out += 1);
                c.push(&base[1], |_, _| total_out += 1);
            });
            c.flush(|_, _| total_out += 1);
            assert!(total_out >= 1 && total_in > 0);
        }
    }
}
