//! ICMP and ICMPv6 echo, for `weft ping`: the daemon writes its own echo requests into the
//! tunnel and recognises the replies addressed to it, so a ping proves the whole encrypted path.

use super::checksum::{add, finish, pseudo_header};
use super::IpHeader;
use std::net::IpAddr;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_ICMPV6: u8 = 58;
const ECHO_REQUEST_V4: u8 = 8;
pub(super) const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
pub(super) const ECHO_REPLY_V6: u8 = 129;
const TTL: u8 = 64;

/// Identifies one echo: the identifier names this daemon, the sequence number the attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Echo {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub identifier: u16,
    pub sequence: u16,
}

/// Builds an echo request packet from `echo.src` to `echo.dst` carrying `payload`.
/// Returns `None` when the two addresses are of different families.
pub fn echo_request(echo: &Echo, payload: &[u8]) -> Option<Vec<u8>> {
    let mut icmp = Vec::with_capacity(8 + payload.len());
    let kind = if echo.dst.is_ipv4() { ECHO_REQUEST_V4 } else { ECHO_REQUEST_V6 };
    icmp.extend_from_slice(&[kind, 0, 0, 0]);
    icmp.extend_from_slice(&echo.identifier.to_be_bytes());
    icmp.extend_from_slice(&echo.sequence.to_be_bytes());
    icmp.extend_from_slice(payload);
    match (echo.src, echo.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let sum = finish(add(0, &icmp));
            icmp[2..4].copy_from_slice(&sum.to_be_bytes());
            let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, TTL, PROTO_ICMP, 0, 0];
            p[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
            p.extend_from_slice(&src.octets());
            p.extend_from_slice(&dst.octets());
            let header_sum = finish(add(0, &p));
            p[10..12].copy_from_slice(&header_sum.to_be_bytes());
            p.extend_from_slice(&icmp);
            Some(p)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let pseudo = pseudo_header(src.into(), dst.into(), PROTO_ICMPV6, icmp.len() as u32);
            let sum = finish(add(pseudo, &icmp));
            icmp[2..4].copy_from_slice(&sum.to_be_bytes());
            let mut p = vec![0x60, 0, 0, 0];
            p.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
            p.extend_from_slice(&[PROTO_ICMPV6, TTL]);
            p.extend_from_slice(&src.octets());
            p.extend_from_slice(&dst.octets());
            p.extend_from_slice(&icmp);
            Some(p)
        }
        _ => None,
    }
}

/// Reads an echo reply out of a decrypted packet; `None` for anything else.
pub fn parse_echo_reply(packet: &[u8]) -> Option<Echo> {
    let header = IpHeader::parse(packet).ok()?;
    let icmp = packet.get(header.payload_offset..header.total_len)?;
    let expected = match header.src {
        IpAddr::V4(_) if header.protocol == PROTO_ICMP => ECHO_REPLY_V4,
        IpAddr::V6(_) if header.protocol == PROTO_ICMPV6 => ECHO_REPLY_V6,
        _ => return None,
    };
    if icmp.len() < 8 || icmp[0] != expected || icmp[1] != 0 {
        return None;
    }
    Some(Echo {
        src: header.src,
        dst: header.dst,
        identifier: u16::from_be_bytes([icmp[4], icmp[5]]),
        sequence: u16::from_be_bytes([icmp[6], icmp[7]]),
    })
}

#[cfg(test)]
/// Turns a request into the reply a host would send: swap addresses, change the type and
/// fix the checksum the way a kernel does.
pub(crate) fn reply_to(request: &[u8]) -> Vec<u8> {
    let h = IpHeader::parse(request).unwrap();
    let echo = Echo {
        src: h.dst,
        dst: h.src,
        identifier: u16::from_be_bytes([
            request[h.payload_offset + 4],
            request[h.payload_offset + 5],
        ]),
        sequence: u16::from_be_bytes([
            request[h.payload_offset + 6],
            request[h.payload_offset + 7],
        ]),
    };
    let mut reply = echo_request(&echo, &request[h.payload_offset + 8..]).unwrap();
    reply[h.payload_offset] = if h.src.is_ipv4() { ECHO_REPLY_V4 } else { ECHO_REPLY_V6 };
    reply
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
