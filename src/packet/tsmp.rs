//! TSMP, the Tailscale Message Protocol: IP protocol 99 packets that Tailscale nodes send each
//! other inside WireGuard — pings answered by the node itself, notices that a connection was
//! refused, disco key advertisements. They are made and consumed by the daemon, never by an
//! operating system. Layouts: `/work/shared/protocol/tsmp.md` (tailscale's `net/packet/tsmp.go`).
//!
//! Parsing is strict about what it reads and bounded by the packet: a whole, unfragmented IP
//! packet of protocol 99 whose body holds every field of its type. Bytes past those fields are
//! skipped, as tailscaled's readers skip them, so a field added later does not make a peer's
//! message unreadable.

use super::build::ip_packet;
use super::wire::tsmp::{self as body_wire, TsmpBody};
use super::wire::{IpPacket, Ipv6FragmentHeader, WireError};
use super::wire::{PROTO_IPV6_FRAGMENT, PROTO_TSMP};
use super::{ip_view, PacketError};
use std::net::{IpAddr, SocketAddr};

/// Why a rejected-connection notice was sent: one byte, an ASCII letter for the known ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RejectReason(pub u8);

impl RejectReason {
    /// The receiver's packet filter (the tailnet's ACLs) refused the flow.
    pub(crate) const ACL: RejectReason = RejectReason(b'A');
    /// The receiver has shields up: no inbound connections at all.
    pub(crate) const SHIELDS_UP: RejectReason = RejectReason(b'S');
    /// A subnet router has IP forwarding off.
    pub(crate) const IP_FORWARDING: RejectReason = RejectReason(b'F');
    /// The target host's own firewall blocks the flow.
    pub(crate) const HOST_FIREWALL: RejectReason = RejectReason(b'W');
    /// An app connector knows no real address for the transit address used.
    pub(crate) const UNKNOWN_TRANSIT_IP: RejectReason = RejectReason(b'T');

    /// tailscaled's name for the reason.
    pub(crate) fn name(self) -> String {
        match self {
            RejectReason::ACL => "acl".into(),
            RejectReason::SHIELDS_UP => "shields".into(),
            RejectReason::IP_FORWARDING => "host-ip-forwarding-unavailable".into(),
            RejectReason::HOST_FIREWALL => "host-firewall".into(),
            RejectReason::UNKNOWN_TRANSIT_IP => "app-connector-transit-ip-unknown".into(),
            RejectReason(other) => format!("0x{other:02x}"),
        }
    }
}

/// A refused flow, as the refusing node reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    /// The flow's IP protocol (tailscaled refuses TCP only).
    pub protocol: u8,
    pub reason: RejectReason,
    /// The originator's port.
    pub src_port: u16,
    /// The refused destination port.
    pub dst_port: u16,
    /// A hint only: the refusing node is not sure the flow is broken.
    pub maybe_broken: bool,
}

/// One TSMP message by type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TsmpMessage {
    /// Echo `data` back in a pong.
    Ping {
        data: [u8; 8],
    },
    /// The answer to a ping, with the responder's PeerAPI port (0 for none).
    Pong {
        data: [u8; 8],
        peerapi_port: u16,
    },
    Rejected(Rejection),
    /// The sender's current disco public key.
    DiscoAdvertisement {
        key: [u8; 32],
    },
}

/// A TSMP packet read from the tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TsmpPacket {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The IPv4 identification or the IPv6 flow label, which a pong inverts.
    pub ident: u32,
    pub message: TsmpMessage,
}

/// Why a packet is not a TSMP message weft can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TsmpError {
    /// Not a whole IPv4 or IPv6 packet.
    Ip(PacketError),
    /// Another IP protocol.
    NotTsmp(u8),
    /// A fragment: a Tailscale node never fragments TSMP.
    Fragmented,
    /// The body is shorter than its type's fields.
    Truncated,
    UnknownType(u8),
}

impl std::fmt::Display for TsmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TsmpError::Ip(e) => write!(f, "not an IP packet: {e}"),
            TsmpError::NotTsmp(protocol) => write!(f, "IP protocol {protocol}, not TSMP"),
            TsmpError::Fragmented => f.write_str("fragmented TSMP"),
            TsmpError::Truncated => f.write_str("TSMP body shorter than its type's fields"),
            TsmpError::UnknownType(t) => write!(f, "unknown TSMP type 0x{t:02x}"),
        }
    }
}

impl std::error::Error for TsmpError {}

/// Whether `packet` carries TSMP, fragmented or not: such a packet must never reach the OS.
/// Cheap enough for every inbound packet: one header, and one more for an IPv6 fragment.
pub(crate) fn carries_tsmp(packet: &[u8]) -> bool {
    match ip_view(packet) {
        Ok(IpPacket::V6(v6)) if v6.next_header() == PROTO_IPV6_FRAGMENT => {
            Ipv6FragmentHeader::new_checked(v6.payload())
                .is_ok_and(|fragment| fragment.next_header() == PROTO_TSMP)
        }
        Ok(ip) => ip.protocol() == PROTO_TSMP,
        Err(_) => false,
    }
}

impl TsmpPacket {
    pub(crate) fn parse(packet: &[u8]) -> Result<TsmpPacket, TsmpError> {
        let ip = ip_view(packet).map_err(TsmpError::Ip)?;
        let ident = match &ip {
            IpPacket::V4(v4) if v4.is_fragment() => return Err(TsmpError::Fragmented),
            IpPacket::V4(v4) => u32::from(v4.ident()),
            IpPacket::V6(v6) if v6.next_header() == PROTO_IPV6_FRAGMENT => {
                let fragment = Ipv6FragmentHeader::new_checked(v6.payload()).ok();
                return match fragment.map(|f| f.next_header()) {
                    Some(PROTO_TSMP) => Err(TsmpError::Fragmented),
                    _ => Err(TsmpError::NotTsmp(PROTO_IPV6_FRAGMENT)),
                };
            }
            IpPacket::V6(v6) => v6.flow_label(),
        };
        if ip.protocol() != PROTO_TSMP {
            return Err(TsmpError::NotTsmp(ip.protocol()));
        }
        let body =
            TsmpBody::new_checked(ip.payload()).map_err(|_: WireError| TsmpError::Truncated)?;
        Ok(TsmpPacket { src: ip.src(), dst: ip.dst(), ident, message: read_message(&body)? })
    }

    /// For a rejection notice: the refused flow's source (this side, the originator) and
    /// destination (the refusing node), as the packet's addresses and the notice's ports say.
    pub(crate) fn rejected_flow(&self) -> Option<(SocketAddr, SocketAddr)> {
        let TsmpMessage::Rejected(rejection) = self.message else {
            return None;
        };
        let originator = SocketAddr::new(self.dst, rejection.src_port);
        Some((originator, SocketAddr::new(self.src, rejection.dst_port)))
    }
}

fn read_message(body: &TsmpBody<&[u8]>) -> Result<TsmpMessage, TsmpError> {
    Ok(match body.msg_type() {
        body_wire::TYPE_PING => TsmpMessage::Ping { data: body.echo_data() },
        body_wire::TYPE_PONG => {
            TsmpMessage::Pong { data: body.echo_data(), peerapi_port: body.pong_peerapi_port() }
        }
        body_wire::TYPE_REJECTED => TsmpMessage::Rejected(Rejection {
            protocol: body.reject_protocol(),
            reason: RejectReason(body.reject_reason()),
            src_port: body.reject_src_port(),
            dst_port: body.reject_dst_port(),
            maybe_broken: body.reject_flags() & body_wire::REJECT_FLAG_MAYBE_BROKEN != 0,
        }),
        body_wire::TYPE_DISCO_ADVERTISEMENT => {
            TsmpMessage::DiscoAdvertisement { key: body.disco_key() }
        }
        other => return Err(TsmpError::UnknownType(other)),
    })
}

/// A TSMP packet of `body_len` bytes whose body `fill` writes; `None` for mixed families.
fn tsmp_packet(
    src: IpAddr,
    dst: IpAddr,
    ident: u32,
    body_len: usize,
    fill: impl FnOnce(&mut TsmpBody<&mut [u8]>),
) -> Option<Vec<u8>> {
    let (mut packet, at) = ip_packet(src, dst, PROTO_TSMP, ident, body_len)?;
    fill(&mut TsmpBody::new_unchecked(&mut packet[at..]));
    Some(packet)
}

/// A ping from `src` to `dst` carrying `data`; `ident` goes in the IP header.
pub(crate) fn ping(src: IpAddr, dst: IpAddr, ident: u32, data: [u8; 8]) -> Option<Vec<u8>> {
    tsmp_packet(src, dst, ident, body_wire::PING_LEN, |body| {
        body.set_msg_type(body_wire::TYPE_PING);
        body.set_echo_data(data);
    })
}

/// The pong tailscaled sends for `ping`: addresses swapped, the IP ident inverted (within the
/// 20 bits of a flow label for IPv6), the data echoed, and our PeerAPI port (0 for none).
/// `None` when `ping` is not a ping.
pub(crate) fn pong_for(ping: &TsmpPacket, peerapi_port: u16) -> Option<Vec<u8>> {
    let TsmpMessage::Ping { data } = ping.message else {
        return None;
    };
    let ident = match ping.src {
        IpAddr::V4(_) => u32::from(!(ping.ident as u16)),
        IpAddr::V6(_) => !ping.ident & 0x000f_ffff,
    };
    tsmp_packet(ping.dst, ping.src, ident, body_wire::PONG_LEN, |body| {
        body.set_msg_type(body_wire::TYPE_PONG);
        body.set_echo_data(data);
        body.set_pong_peerapi_port(peerapi_port);
    })
}

/// The notice a node sends when it refuses the flow `originator` → `target`: from the target
/// address back to the originator, naming the ports. IP ident 0, as tailscaled's.
pub(crate) fn rejection(
    originator: SocketAddr,
    target: SocketAddr,
    protocol: u8,
    reason: RejectReason,
) -> Option<Vec<u8>> {
    let ip = (target.ip(), originator.ip());
    tsmp_packet(ip.0, ip.1, 0, body_wire::REJECTED_LEN, |body| {
        body.set_msg_type(body_wire::TYPE_REJECTED);
        body.set_reject_protocol(protocol);
        body.set_reject_reason(reason.0);
        body.set_reject_ports(originator.port(), target.port());
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::test_packets::{fragment_v4, fragment_v6, ip, tcp};
    use crate::packet::wire::Ipv4Packet;
    use crate::testing::{shake, Rng};

    const PEER: &str = "100.64.0.2";
    const ME: &str = "100.64.0.1";

    fn addr(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn at(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn reads_tailscaleds_ping_and_answers_with_its_pong() {
        // A ping as tailscaled sends it: IP ident 0x1234, data 1..=8.
        let mut request = ip(PEER, ME, PROTO_TSMP, b"p\x01\x02\x03\x04\x05\x06\x07\x08");
        request[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        let ping = TsmpPacket::parse(&request).unwrap();
        let data = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(ping.message, TsmpMessage::Ping { data });
        assert_eq!((ping.src, ping.dst, ping.ident), (addr(PEER), addr(ME), 0x1234));

        let pong = pong_for(&ping, 0).unwrap();
        // Byte for byte: 20-byte header, 'o', the data, port 0.
        assert_eq!(pong.len(), 31);
        assert_eq!(&pong[20..], b"o\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00");
        let header = Ipv4Packet::new_checked(&pong[..]).unwrap();
        assert_eq!((header.ident(), header.ttl(), header.protocol()), (!0x1234, 64, 99));
        assert!(header.verify_checksum());
        assert!(!header.is_fragment());
        let parsed = TsmpPacket::parse(&pong).unwrap();
        assert_eq!((parsed.src, parsed.dst), (addr(ME), addr(PEER)));
        assert_eq!(parsed.message, TsmpMessage::Pong { data, peerapi_port: 0 });
        assert_eq!(pong_for(&parsed, 0), None, "a pong is not answered");
    }

    #[test]
    fn ipv6_pong_inverts_the_flow_label_within_20_bits() {
        let ping = ping(addr("fd7a::2"), addr("fd7a::1"), 0xabcde, [9; 8]).unwrap();
        assert_eq!(ping.len(), 40 + 9);
        let parsed = TsmpPacket::parse(&ping).unwrap();
        assert_eq!(parsed.ident, 0xabcde);
        let pong = TsmpPacket::parse(&pong_for(&parsed, 4242).unwrap()).unwrap();
        assert_eq!(pong.ident, !0xabcde & 0xfffff);
        assert_eq!(pong.message, TsmpMessage::Pong { data: [9; 8], peerapi_port: 4242 });
        assert_eq!(pong.dst, addr("fd7a::2"));
    }

    #[test]
    fn short_pongs_of_older_nodes_read_with_port_zero() {
        let pong = ip(PEER, ME, PROTO_TSMP, b"o12345678");
        let parsed = TsmpPacket::parse(&pong).unwrap();
        assert_eq!(parsed.message, TsmpMessage::Pong { data: *b"12345678", peerapi_port: 0 });
    }

    #[test]
    fn rejection_names_the_flow_from_the_originators_side() {
        let (originator, target) = (at("100.64.0.1:40000"), at("100.64.0.2:22"));
        let notice = rejection(originator, target, 6, RejectReason::SHIELDS_UP).unwrap();
        assert_eq!(&notice[20..], b"!\x06S\x9c\x40\x00\x16", "tailscaled's 7 bytes");
        let parsed = TsmpPacket::parse(&notice).unwrap();
        assert_eq!((parsed.src, parsed.dst), (target.ip(), originator.ip()));
        assert_eq!(parsed.rejected_flow(), Some((originator, target)));
        let TsmpMessage::Rejected(r) = parsed.message else { panic!() };
        assert_eq!((r.protocol, r.reason, r.maybe_broken), (6, RejectReason::SHIELDS_UP, false));
        assert_eq!(r.reason.name(), "shields");
        let mut flagged = ip(PEER, ME, PROTO_TSMP, b"!\x06A\x00\x01\x00\x02\x01");
        let TsmpMessage::Rejected(r) = TsmpPacket::parse(&flagged).unwrap().message else {
            panic!()
        };
        assert!(r.maybe_broken && r.reason == RejectReason::ACL);
        flagged[27] = 0;
        assert_eq!(TsmpPacket::parse(&flagged).unwrap().rejected_flow().unwrap().1.port(), 2);
    }

    #[test]
    fn disco_advertisement_carries_the_key() {
        let mut body = vec![b'a'];
        body.extend_from_slice(&[7; 32]);
        let parsed = TsmpPacket::parse(&ip(PEER, ME, PROTO_TSMP, &body)).unwrap();
        assert_eq!(parsed.message, TsmpMessage::DiscoAdvertisement { key: [7; 32] });
        assert_eq!(parsed.rejected_flow(), None);
        let short = ip(PEER, ME, PROTO_TSMP, &body[..32]);
        assert_eq!(TsmpPacket::parse(&short), Err(TsmpError::Truncated));
    }

    #[test]
    fn refuses_what_is_not_a_whole_known_message() {
        let parse = |body: &[u8]| TsmpPacket::parse(&ip(PEER, ME, PROTO_TSMP, body));
        assert_eq!(parse(b""), Err(TsmpError::Truncated));
        assert_eq!(parse(b"p1234567"), Err(TsmpError::Truncated), "8 of a ping's 9 bytes");
        assert_eq!(parse(b"o1234567"), Err(TsmpError::Truncated));
        assert_eq!(parse(b"!\x06A\x00\x01\x00"), Err(TsmpError::Truncated));
        assert_eq!(parse(b"z123456789"), Err(TsmpError::UnknownType(b'z')));
        let syn = tcp("100.64.0.2:1", "100.64.0.1:22", 2);
        assert_eq!(TsmpPacket::parse(&syn), Err(TsmpError::NotTsmp(6)));
        assert_eq!(TsmpPacket::parse(&[]), Err(TsmpError::Ip(PacketError::Empty)));
        let whole = ip(PEER, ME, PROTO_TSMP, b"p12345678");
        assert_eq!(TsmpPacket::parse(&whole[..28]), Err(TsmpError::Ip(PacketError::Truncated)));
        let fragment = fragment_v4(whole.clone(), 0, true);
        assert_eq!(TsmpPacket::parse(&fragment), Err(TsmpError::Fragmented));
        let v6 = ip("fd7a::2", "fd7a::1", PROTO_TSMP, b"p12345678");
        let v6_fragment = fragment_v6(v6.clone(), 0, true);
        assert_eq!(TsmpPacket::parse(&v6_fragment), Err(TsmpError::Fragmented));
        assert!(carries_tsmp(&v6_fragment) && carries_tsmp(&fragment) && carries_tsmp(&v6));
        assert!(!carries_tsmp(&syn) && !carries_tsmp(b"junk"));
    }

    #[test]
    fn mixed_families_build_nothing() {
        assert_eq!(ping(addr(ME), addr("fd7a::1"), 0, [0; 8]), None);
        assert_eq!(rejection(at("100.64.0.1:1"), at("[fd7a::1]:2"), 6, RejectReason::ACL), None);
    }

    #[test]
    fn mutated_and_random_packets_never_panic_and_stay_within_the_packet() {
        let seeds = [
            ping(addr(PEER), addr(ME), 7, [1; 8]).unwrap(),
            rejection(at("[fd7a::1]:1"), at("[fd7a::2]:2"), 6, RejectReason::ACL).unwrap(),
            ip(PEER, ME, PROTO_TSMP, &[b'a'; 33]),
        ];
        let mut parsed = 0;
        for (seed, packet) in seeds.iter().enumerate() {
            shake(seed as u64 + 99, 4000, packet, |bytes| {
                if let Ok(p) = TsmpPacket::parse(bytes) {
                    parsed += 1;
                    assert!(carries_tsmp(bytes));
                    // Whatever was read, a pong of it is a well-formed packet again.
                    if let Some(pong) = pong_for(&p, 1) {
                        assert!(TsmpPacket::parse(&pong).is_ok());
                    }
                }
            });
        }
        assert!(parsed > 100, "the mutations keep some packets readable: {parsed}");
        let mut rng = Rng::new(3);
        for _ in 0..3000 {
            let len = rng.below(40);
            let mut body = rng.bytes(len);
            let pick = rng.below(5);
            if let Some(first) = body.first_mut() {
                *first = [b'p', b'o', b'!', b'a', *first][pick];
            }
            let packet = ip(PEER, ME, PROTO_TSMP, &body);
            match TsmpPacket::parse(&packet) {
                Ok(known) => assert!(body.len() >= body_wire::MIN_LEN, "{known:?}"),
                Err(e) => assert!(matches!(e, TsmpError::Truncated | TsmpError::UnknownType(_))),
            }
        }
    }
}
