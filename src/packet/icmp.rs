//! ICMP and ICMPv6 echo, for `weft ping`: the daemon writes its own echo requests into the
//! tunnel and recognises the replies addressed to it, so a ping proves the whole encrypted path.

use super::checksum::pseudo_header;
use super::ip_view;
use super::wire::icmp::{ECHO_REPLY_V4, ECHO_REPLY_V6, ECHO_REQUEST_V4, ECHO_REQUEST_V6};
use super::wire::{icmp as icmp_wire, ipv4, ipv6, IcmpPacket, IpPacket, Ipv4Packet, Ipv6Packet};
/// The two protocols, under the names callers of this module know.
pub(crate) use super::wire::{PROTO_ICMP, PROTO_ICMPV6};
use std::net::IpAddr;

const TTL: u8 = 64;

/// Identifies one echo: the identifier names this daemon, the sequence number the attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Echo {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub identifier: u16,
    pub sequence: u16,
}

/// Builds an echo request packet from `echo.src` to `echo.dst` carrying `payload`.
/// Returns `None` when the two addresses are of different families.
pub(crate) fn echo_request(echo: &Echo, payload: &[u8]) -> Option<Vec<u8>> {
    echo_packet(echo, payload, [ECHO_REQUEST_V4, ECHO_REQUEST_V6])
}

/// Builds the echo reply a host sends from `echo.src` to `echo.dst` (the request's addresses
/// already swapped), with the request's identifier, sequence number and `payload`.
pub(crate) fn echo_reply(echo: &Echo, payload: &[u8]) -> Option<Vec<u8>> {
    echo_packet(echo, payload, [ECHO_REPLY_V4, ECHO_REPLY_V6])
}

/// An echo packet whose ICMP type is `types[0]` over IPv4 and `types[1]` over IPv6.
fn echo_packet(echo: &Echo, payload: &[u8], types: [u8; 2]) -> Option<Vec<u8>> {
    let icmp_len = icmp_wire::HEADER_LEN + payload.len();
    match (echo.src, echo.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut packet = vec![0; ipv4::HEADER_LEN + icmp_len];
            let mut ip = Ipv4Packet::new_unchecked(&mut packet[..]);
            ip.set_version_and_header_len(ipv4::HEADER_LEN);
            ip.set_total_len((ipv4::HEADER_LEN + icmp_len) as u16);
            ip.set_dont_fragment(true);
            ip.set_ttl(TTL);
            ip.set_protocol(PROTO_ICMP);
            ip.set_src(src);
            ip.set_dst(dst);
            ip.fill_checksum();
            write_echo(ip.payload_mut(), types[0], echo, payload, 0);
            Some(packet)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let mut packet = vec![0; ipv6::HEADER_LEN + icmp_len];
            let mut ip = Ipv6Packet::new_unchecked(&mut packet[..]);
            ip.set_version();
            ip.set_payload_len(icmp_len as u16);
            ip.set_next_header(PROTO_ICMPV6);
            ip.set_hop_limit(TTL);
            ip.set_src(src);
            ip.set_dst(dst);
            let pseudo = pseudo_header(src.into(), dst.into(), PROTO_ICMPV6, icmp_len as u32);
            write_echo(ip.payload_mut(), types[1], echo, payload, pseudo);
            Some(packet)
        }
        _ => None,
    }
}

/// Fills `buffer` (header and data exactly) with an echo message and its checksum, which
/// starts from `pseudo` (ICMPv6 covers a pseudo-header, ICMP does not).
fn write_echo(buffer: &mut [u8], msg_type: u8, echo: &Echo, payload: &[u8], pseudo: u64) {
    let mut icmp = IcmpPacket::new_unchecked(buffer);
    icmp.set_msg_type(msg_type);
    icmp.set_echo_ident(echo.identifier);
    icmp.set_echo_seq(echo.sequence);
    icmp.echo_data_mut().copy_from_slice(payload);
    icmp.fill_checksum(pseudo);
}

/// Reads an echo reply out of a decrypted packet; `None` for anything else.
pub(crate) fn parse_echo_reply(packet: &[u8]) -> Option<Echo> {
    parse_echo(packet, [ECHO_REPLY_V4, ECHO_REPLY_V6]).map(|(echo, _)| echo)
}

/// Reads an echo request and its data out of a packet; `None` for anything else.
pub(crate) fn parse_echo_request(packet: &[u8]) -> Option<(Echo, &[u8])> {
    parse_echo(packet, [ECHO_REQUEST_V4, ECHO_REQUEST_V6])
}

/// An echo message of type `types[0]` (IPv4) or `types[1]` (IPv6) with code 0, and its data.
fn parse_echo(packet: &[u8], types: [u8; 2]) -> Option<(Echo, &[u8])> {
    let ip = ip_view(packet).ok()?;
    let expected = match &ip {
        IpPacket::V4(v4) if v4.protocol() == PROTO_ICMP => types[0],
        IpPacket::V6(v6) if v6.next_header() == PROTO_ICMPV6 => types[1],
        _ => return None,
    };
    let (src, dst) = (ip.src(), ip.dst());
    let icmp = IcmpPacket::new_checked(ip.payload()).ok()?;
    if icmp.msg_type() != expected || icmp.code() != 0 {
        return None;
    }
    let echo = Echo { src, dst, identifier: icmp.echo_ident(), sequence: icmp.echo_seq() };
    // The data borrowed from `packet` itself, not from the views over it.
    let data = ip.header_len() + icmp_wire::field::ECHO_DATA_START..ip.total_len();
    Some((echo, &packet[data]))
}

#[cfg(test)]
/// Turns a request into the reply a host would send: swap addresses, change the type.
pub(crate) fn reply_to(request: &[u8]) -> Vec<u8> {
    let (echo, data) = parse_echo_request(request).unwrap();
    echo_reply(&Echo { src: echo.dst, dst: echo.src, ..echo }, data).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::shake;

    #[test]
    fn v4_request_has_valid_checksums_and_reply_parses() {
        let echo = Echo {
            src: "100.64.0.1".parse().unwrap(),
            dst: "100.64.0.2".parse().unwrap(),
            identifier: 0x5746,
            sequence: 3,
        };
        let p = echo_request(&echo, b"weft").unwrap();
        use crate::packet::{checksum_add, checksum_finish};
        assert_eq!(checksum_finish(checksum_add(0, &p[..20])), 0, "IPv4 header checksum");
        assert_eq!(checksum_finish(checksum_add(0, &p[20..])), 0, "ICMP checksum");
        assert_eq!(parse_echo_reply(&p), None, "a request is not a reply");
        let got = parse_echo_reply(&reply_to(&p)).unwrap();
        assert_eq!(
            (got.src, got.dst, got.identifier, got.sequence),
            (echo.dst, echo.src, 0x5746, 3)
        );
    }

    #[test]
    fn v6_request_checksum_verifies_with_pseudo_header() {
        let echo = Echo {
            src: "fd7a:115c:a1e0::1".parse().unwrap(),
            dst: "fd7a:115c:a1e0::2".parse().unwrap(),
            identifier: 9,
            sequence: 1,
        };
        let p = echo_request(&echo, b"abc").unwrap();
        // Checked with the plain reference sum, not the code under test.
        let mut sum = crate::packet::checksum_add(0, &p[8..40]);
        sum = crate::packet::checksum_add(sum, &((p.len() - 40) as u32).to_be_bytes());
        sum = crate::packet::checksum_add(sum, &[0, 0, 0, PROTO_ICMPV6]);
        assert_eq!(crate::packet::checksum_finish(crate::packet::checksum_add(sum, &p[40..])), 0);
        assert_eq!(parse_echo_reply(&reply_to(&p)).unwrap().sequence, 1);
    }

    #[test]
    fn mixed_families_are_refused() {
        let echo = Echo {
            src: "100.64.0.1".parse().unwrap(),
            dst: "::2".parse().unwrap(),
            identifier: 1,
            sequence: 1,
        };
        assert!(echo_request(&echo, b"").is_none());
    }

    #[test]
    fn random_replies_never_panic() {
        let echo = Echo {
            src: "100.64.0.2".parse().unwrap(),
            dst: "100.64.0.1".parse().unwrap(),
            identifier: 1,
            sequence: 1,
        };
        let reply = reply_to(&echo_request(&echo, b"payload").unwrap());
        shake(11, 5000, &reply, |b| {
            let _ = parse_echo_reply(b);
        });
    }
}
