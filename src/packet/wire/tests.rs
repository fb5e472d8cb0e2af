//! The views against hand-written bytes: every accessor and setter on a minimal valid header,
//! every rejection of `new_checked`, and random bytes that must either be refused or be read
//! without a panic.

use super::*;
use crate::packet::{checksum_add, checksum_finish};
use crate::testing::{shake, Rng};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4, no options, more fragments at offset 258, UDP, 8 bytes of payload.
const V4: [u8; 28] = [
    0x45, 0xb8, 0, 28, 0x12, 0x34, 0x21, 0x02, 64, 17, 0xab, 0xcd, 100, 64, 0, 1, 100, 64, 0,
    2, //
    1, 2, 3, 4, 5, 6, 7, 8,
];

/// IPv6 with traffic class and flow label set, TCP, hop limit 63, 8 bytes of payload.
fn v6() -> Vec<u8> {
    let mut p = vec![0x6a, 0xbc, 0xde, 0xf1, 0, 8, 6, 63];
    p.extend_from_slice(&"fd7a:115c:a1e0::1".parse::<Ipv6Addr>().unwrap().octets());
    p.extend_from_slice(&"fd7a:115c:a1e0::2".parse::<Ipv6Addr>().unwrap().octets());
    p.extend_from_slice(&[9, 8, 7, 6, 5, 4, 3, 2]);
    p
}

/// Ports 40000 → 22, seq, ack, a 24-byte header (one option word), SYN+ACK.
const TCP: [u8; 26] = [
    0x9c, 0x40, 0, 22, 1, 2, 3, 4, 5, 6, 7, 8, 0x60, 0x12, 0xfa, 0xf0, 0x11, 0x11, 0x22,
    0x22, //
    1, 1, 1, 0, b'h', b'i',
];

const UDP: [u8; 10] = [0x30, 0x39, 0, 53, 0, 10, 0xbe, 0xef, b'h', b'i'];
const SCTP: [u8; 12] = [0, 80, 0x1f, 0x90, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4];
/// Echo reply, identifier 0x5746, sequence 3, data "abc".
const ICMP: [u8; 11] = [0, 0, 0x12, 0x34, 0x57, 0x46, 0, 3, b'a', b'b', b'c'];
/// Fragment header: next header UDP, offset 10, more fragments, identification 0xdeadbeef.
const FRAGMENT: [u8; 8] = [17, 0, 0, 0x51, 0xde, 0xad, 0xbe, 0xef];

#[test]
fn ipv4_accessors() {
    let p = Ipv4Packet::new_checked(&V4[..]).unwrap();
    assert_eq!((p.version(), p.header_len(), p.dscp_ecn(), p.total_len()), (4, 20, 0xb8, 28));
    assert_eq!((p.ident(), p.more_fragments(), p.fragment_offset()), (0x1234, true, 258));
    assert!(p.is_fragment());
    assert_eq!((p.ttl(), p.protocol(), p.checksum()), (64, 17, 0xabcd));
    assert_eq!((p.src(), p.dst()), (Ipv4Addr::new(100, 64, 0, 1), Ipv4Addr::new(100, 64, 0, 2)));
    assert_eq!(p.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(!p.verify_checksum());
    // Link padding after the total length is not payload.
    let mut padded = V4.to_vec();
    padded.extend_from_slice(&[0xee; 6]);
    assert_eq!(Ipv4Packet::new_checked(&padded[..]).unwrap().payload(), &V4[20..]);
}

#[test]
fn ipv4_setters() {
    let mut bytes = [0u8; 24];
    let mut p = Ipv4Packet::new_unchecked(&mut bytes[..]);
    p.set_version_and_header_len(20);
    p.set_total_len(24);
    p.set_ident(0xbeef);
    p.set_dont_fragment(true);
    p.set_ttl(7);
    p.set_protocol(1);
    p.set_src(Ipv4Addr::new(10, 0, 0, 1));
    p.set_dst(Ipv4Addr::new(10, 0, 0, 2));
    p.payload_mut().copy_from_slice(&[1, 2, 3, 4]);
    p.fill_checksum();
    assert!(p.verify_checksum());
    assert!(!p.is_fragment());
    assert_eq!(checksum_finish(checksum_add(0, &bytes[..20])), 0, "by the reference sum");
    assert_eq!(bytes[..10], [0x45, 0, 0, 24, 0xbe, 0xef, 0x40, 0, 7, 1]);
    assert_eq!(bytes[12..], [10, 0, 0, 1, 10, 0, 0, 2, 1, 2, 3, 4]);
    Ipv4Packet::new_unchecked(&mut bytes[..]).set_checksum(0x0102);
    assert_eq!(bytes[10..12], [1, 2]);
}

#[test]
fn ipv4_rejections() {
    let with = |at: usize, value: u8| {
        let mut p = V4.to_vec();
        p[at] = value;
        p
    };
    let check = |bytes: &[u8]| Ipv4Packet::new_checked(bytes).map(|_| ());
    assert_eq!(check(&V4[..19]), Err(WireError::Truncated));
    assert_eq!(check(&[]), Err(WireError::Truncated));
    assert_eq!(check(&with(0, 0x65)), Err(WireError::Version(6)));
    assert_eq!(check(&with(0, 0x44)), Err(WireError::BadHeaderLength), "IHL below 5");
    assert_eq!(check(&with(0, 0x48)), Err(WireError::BadHeaderLength), "options past the end");
    assert_eq!(check(&with(3, 19)), Err(WireError::BadLength), "total below the header");
    assert_eq!(check(&with(3, 29)), Err(WireError::BadLength), "total past the buffer");
    assert_eq!(check(&V4[..27]), Err(WireError::BadLength));
    assert_eq!(check(&with(0, 0x46)), Ok(()), "one option word inside the total length");
    // A super-segment's header is checked without its length field.
    let header_only = Ipv4Packet::new_unchecked(with(3, 200));
    assert_eq!(header_only.check_header_len(), Ok(()));
    assert_eq!(
        Ipv4Packet::new_unchecked(with(0, 0x4f)).check_header_len(),
        Err(WireError::BadHeaderLength)
    );
}

#[test]
fn ipv6_accessors_and_setters() {
    let bytes = v6();
    let p = Ipv6Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!((p.version(), p.payload_len(), p.total_len()), (6, 8, 48));
    assert_eq!((p.next_header(), p.hop_limit()), (6, 63));
    assert_eq!(p.src(), "fd7a:115c:a1e0::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(p.dst(), "fd7a:115c:a1e0::2".parse::<Ipv6Addr>().unwrap());
    assert_eq!(p.payload(), &[9, 8, 7, 6, 5, 4, 3, 2]);

    let mut out = [0xffu8; 44];
    let mut p = Ipv6Packet::new_unchecked(&mut out[..]);
    p.set_version();
    p.set_payload_len(4);
    p.set_next_header(58);
    p.set_hop_limit(1);
    p.set_src(Ipv6Addr::LOCALHOST);
    p.set_dst(Ipv6Addr::UNSPECIFIED);
    p.payload_mut().copy_from_slice(b"ping");
    assert_eq!(out[..8], [0x60, 0, 0, 0, 0, 4, 58, 1]);
    assert_eq!(out[8..24], Ipv6Addr::LOCALHOST.octets());
    assert_eq!(out[24..40], [0; 16]);
    assert_eq!(&out[40..], b"ping");
}

#[test]
fn ipv6_rejections() {
    let bytes = v6();
    let check = |b: &[u8]| Ipv6Packet::new_checked(b).map(|_| ());
    assert_eq!(check(&bytes[..39]), Err(WireError::Truncated));
    assert_eq!(check(&bytes[..47]), Err(WireError::BadLength));
    let mut v4 = bytes.clone();
    v4[0] = 0x45;
    assert_eq!(check(&v4), Err(WireError::Version(4)));
    let mut long = bytes.clone();
    long[5] = 9;
    assert_eq!(check(&long), Err(WireError::BadLength));
    assert_eq!(Ipv6Packet::new_unchecked(&long[..]).check_header_len(), Ok(()));
}

#[test]
fn ip_packet_dispatches_on_the_version() {
    let v4 = IpPacket::new_checked(&V4[..]).unwrap();
    assert!(matches!(v4, IpPacket::V4(_)));
    assert_eq!(
        (v4.src(), v4.dst()),
        (IpAddr::from([100, 64, 0, 1]), IpAddr::from([100, 64, 0, 2]))
    );
    assert_eq!((v4.protocol(), v4.header_len(), v4.total_len()), (17, 20, 28));
    assert_eq!(v4.payload(), &V4[20..]);
    let bytes = v6();
    let v6 = IpPacket::new_checked(&bytes[..]).unwrap();
    assert!(matches!(v6, IpPacket::V6(_)));
    assert_eq!(v6.src(), "fd7a:115c:a1e0::1".parse::<IpAddr>().unwrap());
    assert_eq!(v6.dst(), "fd7a:115c:a1e0::2".parse::<IpAddr>().unwrap());
    assert_eq!((v6.protocol(), v6.header_len(), v6.total_len()), (6, 40, 48));
    assert_eq!(v6.payload(), &bytes[40..]);
    assert_eq!(IpPacket::new_checked(&[][..]), Err(WireError::Truncated));
    assert_eq!(IpPacket::new_checked(&[0x55; 60][..]), Err(WireError::Version(5)));
    assert_eq!(IpPacket::new_checked(&V4[..25]), Err(WireError::BadLength));
}

#[test]
fn ipv6_fragment_header() {
    let f = Ipv6FragmentHeader::new_checked(&FRAGMENT[..]).unwrap();
    assert_eq!((f.next_header(), f.fragment_offset(), f.more_fragments()), (17, 10, true));
    assert_eq!(f.ident(), 0xdead_beef);
    assert_eq!(Ipv6FragmentHeader::new_checked(&FRAGMENT[..7]), Err(WireError::Truncated));
}

#[test]
fn tcp_accessors_setters_and_rejections() {
    let t = TcpSegment::new_checked(&TCP[..]).unwrap();
    assert_eq!((t.src_port(), t.dst_port()), (40000, 22));
    assert_eq!((t.seq(), t.ack_number()), (0x0102_0304, 0x0506_0708));
    assert_eq!((t.header_len(), t.checked_header_len()), (24, Ok(24)));
    assert_eq!(
        (t.flags(), t.window(), t.checksum(), t.urgent_pointer()),
        (0x12, 0xfaf0, 0x1111, 0x2222)
    );

    let mut bytes = TCP;
    let mut t = TcpSegment::new_unchecked(&mut bytes[..]);
    t.set_seq(0xffff_fffe);
    t.set_flags(tcp::flags::FIN | tcp::flags::ACK);
    assert_eq!(bytes[4..8], [0xff, 0xff, 0xff, 0xfe]);
    assert_eq!(bytes[13], 0x11);
    let pseudo = 0x1234;
    TcpSegment::new_unchecked(&mut bytes[..]).fill_checksum(pseudo);
    assert_eq!(checksum_finish(checksum_add(0x1234, &bytes)), 0, "by the reference sum");
    TcpSegment::new_unchecked(&mut bytes[..]).set_checksum(0xabcd);
    assert_eq!(bytes[16..18], [0xab, 0xcd]);

    assert_eq!(TcpSegment::new_checked(&TCP[..19]), Err(WireError::Truncated));
    let mut short_offset = TCP;
    short_offset[12] = 0x40;
    let t = TcpSegment::new_checked(&short_offset[..]).unwrap();
    assert_eq!(t.checked_header_len(), Err(WireError::BadHeaderLength), "below 20 bytes");
    let t = TcpSegment::new_checked(&TCP[..23]).unwrap();
    assert_eq!(t.checked_header_len(), Err(WireError::BadHeaderLength), "options past the end");
}

#[test]
fn udp_and_sctp() {
    let u = UdpDatagram::new_checked(&UDP[..]).unwrap();
    assert_eq!((u.src_port(), u.dst_port(), u.length(), u.checksum()), (12345, 53, 10, 0xbeef));
    let mut bytes = UDP;
    UdpDatagram::new_unchecked(&mut bytes[..]).set_checksum(0);
    assert_eq!(bytes[6..8], [0, 0]);
    assert_eq!(UdpDatagram::new_checked(&UDP[..7]), Err(WireError::Truncated));

    let s = SctpPacket::new_checked(&SCTP[..]).unwrap();
    assert_eq!((s.src_port(), s.dst_port()), (80, 8080));
    assert_eq!((s.verification_tag(), s.checksum()), (0xdead_beef, 0x0102_0304));
    assert_eq!(SctpPacket::new_checked(&SCTP[..11]), Err(WireError::Truncated));
}

#[test]
fn icmp_accessors_setters_and_rejections() {
    let i = IcmpPacket::new_checked(&ICMP[..]).unwrap();
    assert_eq!((i.msg_type(), i.code(), i.checksum()), (icmp::ECHO_REPLY_V4, 0, 0x1234));
    assert_eq!((i.echo_ident(), i.echo_seq(), i.echo_data()), (0x5746, 3, &b"abc"[..]));

    let mut bytes = [0u8; 10];
    let mut i = IcmpPacket::new_unchecked(&mut bytes[..]);
    i.set_msg_type(icmp::ECHO_REQUEST_V6);
    i.set_code(1);
    i.set_echo_ident(0x0102);
    i.set_echo_seq(0x0304);
    i.echo_data_mut().copy_from_slice(b"hi");
    i.fill_checksum(7);
    assert_eq!(checksum_finish(checksum_add(7, &bytes)), 0, "by the reference sum");
    assert_eq!(bytes[..2], [128, 1]);
    assert_eq!(bytes[4..], [1, 2, 3, 4, b'h', b'i']);
    IcmpPacket::new_unchecked(&mut bytes[..]).set_checksum(0x0a0b);
    assert_eq!(bytes[2..4], [0x0a, 0x0b]);
    assert_eq!(IcmpPacket::new_checked(&ICMP[..7]), Err(WireError::Truncated));
}

/// Tries every view on `bytes`; whatever `new_checked` accepts must answer every accessor,
/// and what it promises about lengths must hold.
fn read_everything(bytes: &[u8]) {
    if let Ok(p) = Ipv4Packet::new_checked(bytes) {
        let _ = (p.version(), p.dscp_ecn(), p.ident(), p.is_fragment(), p.ttl(), p.protocol());
        let _ = (p.checksum(), p.verify_checksum(), p.src(), p.dst());
        assert_eq!(p.payload().len(), p.total_len() - p.header_len());
        let mut copy = bytes.to_vec();
        let mut w = Ipv4Packet::new_checked(&mut copy[..]).unwrap();
        w.fill_checksum();
        w.set_src(w.dst());
        w.payload_mut().fill(0);
    }
    if let Ok(()) = Ipv4Packet::new_unchecked(bytes).check_header_len() {
        let p = Ipv4Packet::new_unchecked(bytes);
        let _ = (p.total_len(), p.more_fragments(), p.fragment_offset(), p.verify_checksum());
    }
    if let Ok(p) = Ipv6Packet::new_checked(bytes) {
        let _ = (p.version(), p.next_header(), p.hop_limit(), p.src(), p.dst());
        assert_eq!(p.payload().len(), p.payload_len());
        let mut copy = bytes.to_vec();
        let mut w = Ipv6Packet::new_checked(&mut copy[..]).unwrap();
        w.set_payload_len(0);
        w.set_dst(w.src());
    }
    if let Ok(p) = IpPacket::new_checked(bytes) {
        let _ = (p.src(), p.dst(), p.protocol());
        assert!(
            p.header_len() + p.payload().len() == p.total_len() && p.total_len() <= bytes.len()
        );
    }
    if let Ok(f) = Ipv6FragmentHeader::new_checked(bytes) {
        let _ = (f.next_header(), f.fragment_offset(), f.more_fragments(), f.ident());
    }
    if let Ok(t) = TcpSegment::new_checked(bytes) {
        let _ = (t.src_port(), t.dst_port(), t.seq(), t.ack_number(), t.flags());
        let _ = (t.window(), t.checksum(), t.urgent_pointer());
        if let Ok(len) = t.checked_header_len() {
            assert!((20..=bytes.len()).contains(&len));
        }
        let mut copy = bytes.to_vec();
        TcpSegment::new_checked(&mut copy[..]).unwrap().fill_checksum(0);
    }
    if let Ok(u) = UdpDatagram::new_checked(bytes) {
        let _ = (u.src_port(), u.dst_port(), u.length(), u.checksum());
    }
    if let Ok(s) = SctpPacket::new_checked(bytes) {
        let _ = (s.src_port(), s.dst_port(), s.verification_tag(), s.checksum());
    }
    if let Ok(i) = IcmpPacket::new_checked(bytes) {
        let _ = (i.msg_type(), i.code(), i.checksum(), i.echo_ident(), i.echo_seq());
        assert_eq!(i.echo_data().len(), bytes.len() - 8);
    }
}

#[test]
fn random_bytes_are_refused_or_read_without_panic() {
    let mut seeds = vec![V4.to_vec(), v6(), TCP.to_vec(), ICMP.to_vec(), FRAGMENT.to_vec()];
    let mut in_v4 = V4[..20].to_vec();
    in_v4[3] = 46;
    in_v4.extend_from_slice(&TCP);
    seeds.push(in_v4);
    for (i, seed) in seeds.iter().enumerate() {
        shake(100 + i as u64, 3000, seed, read_everything);
    }
    let mut rng = Rng::new(0x5eed);
    for _ in 0..3000 {
        let len = rng.below(80);
        let mut bytes = rng.bytes(len);
        // Mostly plausible versions, so the deeper checks are reached.
        if let Some(first) = bytes.first_mut() {
            *first = [0x45, 0x4f, 0x60, *first][rng.below(4)];
        }
        read_everything(&bytes);
    }
}
