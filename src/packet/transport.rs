//! The transport layer of an IP packet as a packet filter needs it: ports and TCP flags, the
//! ICMP message type, or the fact that a fragment carries no transport header at all.
//!
//! Fragments are read the way tailscaled's `net/packet` reads them: a first fragment must hold
//! its whole transport header, and a later fragment must not start inside the first 80 bytes,
//! where it could rewrite a header the filter already judged (RFC 1858). IPv6 extension headers
//! are not walked, except one Fragment header right after the base header.

use super::wire::icmp::{ECHO_REPLY_V4, ECHO_REPLY_V6};
use super::wire::tcp::flags;
use super::wire::{
    ipv6_fragment, IcmpPacket, IpPacket, Ipv6FragmentHeader, SctpPacket, TcpSegment, UdpDatagram,
    WireError, PROTO_ICMP, PROTO_ICMPV6, PROTO_IPV6_FRAGMENT,
};
use super::{ip_view, IpHeader, PacketError};

/// The protocols the filter tells apart, under the names its callers know.
pub(crate) use super::wire::{PROTO_SCTP, PROTO_TCP, PROTO_TSMP, PROTO_UDP};

/// The largest IPv4 header plus a basic TCP header, in the 8-byte units of fragment offsets.
const MIN_LATER_FRAGMENT_OFFSET: u16 = (60 + 20) / 8;
/// The smallest TSMP message (a reject notice).
const TSMP_MIN_LEN: usize = 7;

/// An IP packet with its transport header located and read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TransportView {
    pub ip: IpHeader,
    /// The transport protocol: the IP header's, or the one named by an IPv6 Fragment header.
    pub protocol: u8,
    pub transport: Transport,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Tcp {
        ports: Ports,
        flags: TcpFlags,
    },
    Udp(Ports),
    Sctp(Ports),
    /// ICMP in IPv4 or ICMPv6 in IPv6 (the other pairing is [`Transport::Other`]).
    Icmp(IcmpHeader),
    Tsmp,
    /// A fragment after the first: its bytes continue a transport header sent earlier.
    LaterFragment,
    /// Any other protocol; nothing past the IP header is read.
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ports {
    pub src: u16,
    pub dst: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpFlags(pub u8);

impl TcpFlags {
    pub(crate) const SYN: u8 = flags::SYN;
    pub(crate) const ACK: u8 = flags::ACK;

    /// SYN without ACK: the only segment that can open a connection. Everything else belongs
    /// to a connection some SYN already opened.
    pub(crate) fn opens_connection(self) -> bool {
        self.0 & (Self::SYN | Self::ACK) == Self::SYN
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IcmpHeader {
    pub kind: u8,
    pub code: u8,
    pub is_v6: bool,
}

impl IcmpHeader {
    pub(crate) fn is_echo_reply(self) -> bool {
        let reply = if self.is_v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
        self.kind == reply && self.code == 0
    }

    /// Destination unreachable, time exceeded, parameter problem (and ICMPv6's packet too
    /// big): the messages that report on some other packet's fate. (tailscaled's table gives
    /// ICMPv4 parameter problem as 18, which is address mask reply; RFC 792 says 12.)
    pub(crate) fn is_error(self) -> bool {
        if self.is_v6 {
            matches!(self.kind, 1..=4)
        } else {
            matches!(self.kind, 3 | 11 | 12)
        }
    }
}

/// Why a packet's transport layer cannot be judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TransportError {
    Ip(PacketError),
    /// The transport header is cut short (for a first fragment: it did not fit).
    Truncated,
    /// A later fragment that starts where it could overwrite the transport header.
    OverlappingFragment,
    /// TSMP is never fragmented by a Tailscale node.
    FragmentedTsmp,
}

/// Where the transport header starts within the IP payload, once fragmentation is accounted
/// for. Every fragment names the protocol; only the first holds its header.
enum Position {
    Header { protocol: u8, offset: usize, fragmented: bool },
    LaterFragment { protocol: u8 },
}

impl TransportView {
    pub(crate) fn parse(packet: &[u8]) -> Result<TransportView, TransportError> {
        let ip_packet = ip_view(packet).map_err(TransportError::Ip)?;
        let ip = IpHeader::of(&ip_packet);
        let (protocol, offset, fragmented) = match position(&ip_packet)? {
            Position::Header { protocol, offset, fragmented } => (protocol, offset, fragmented),
            Position::LaterFragment { protocol } => {
                return Ok(TransportView { ip, protocol, transport: Transport::LaterFragment });
            }
        };
        let bytes = ip_packet.payload().get(offset..).ok_or(TransportError::Truncated)?;
        let is_v6 = matches!(ip_packet, IpPacket::V6(_));
        let transport = read_transport(protocol, is_v6, fragmented, bytes)?;
        Ok(TransportView { ip, protocol, transport })
    }
}

fn position(ip: &IpPacket<&[u8]>) -> Result<Position, TransportError> {
    match ip {
        IpPacket::V4(v4) => {
            fragment_position(v4.fragment_offset(), v4.protocol(), 0, v4.more_fragments())
        }
        IpPacket::V6(v6) if v6.next_header() == PROTO_IPV6_FRAGMENT => {
            let header = Ipv6FragmentHeader::new_checked(v6.payload()).map_err(truncated)?;
            let (offset, protocol) = (header.fragment_offset(), header.next_header());
            fragment_position(offset, protocol, ipv6_fragment::HEADER_LEN, header.more_fragments())
        }
        IpPacket::V6(v6) => {
            Ok(Position::Header { protocol: v6.next_header(), offset: 0, fragmented: false })
        }
    }
}

fn fragment_position(
    fragment_offset: u16,
    protocol: u8,
    header_offset: usize,
    more_fragments: bool,
) -> Result<Position, TransportError> {
    match fragment_offset {
        0 => Ok(Position::Header { protocol, offset: header_offset, fragmented: more_fragments }),
        1..MIN_LATER_FRAGMENT_OFFSET => Err(TransportError::OverlappingFragment),
        _ => Ok(Position::LaterFragment { protocol }),
    }
}

fn read_transport(
    protocol: u8,
    is_v6: bool,
    fragmented: bool,
    bytes: &[u8],
) -> Result<Transport, TransportError> {
    Ok(match protocol {
        PROTO_TCP => {
            let tcp = TcpSegment::new_checked(bytes).map_err(truncated)?;
            let ports = Ports { src: tcp.src_port(), dst: tcp.dst_port() };
            Transport::Tcp { ports, flags: TcpFlags(tcp.flags()) }
        }
        PROTO_UDP => {
            let udp = UdpDatagram::new_checked(bytes).map_err(truncated)?;
            Transport::Udp(Ports { src: udp.src_port(), dst: udp.dst_port() })
        }
        PROTO_SCTP => {
            let sctp = SctpPacket::new_checked(bytes).map_err(truncated)?;
            Transport::Sctp(Ports { src: sctp.src_port(), dst: sctp.dst_port() })
        }
        PROTO_ICMP if !is_v6 => Transport::Icmp(icmp(bytes, is_v6)?),
        PROTO_ICMPV6 if is_v6 => Transport::Icmp(icmp(bytes, is_v6)?),
        PROTO_TSMP if fragmented => return Err(TransportError::FragmentedTsmp),
        PROTO_TSMP if bytes.len() < TSMP_MIN_LEN => return Err(TransportError::Truncated),
        PROTO_TSMP => Transport::Tsmp,
        _ => Transport::Other,
    })
}

fn icmp(bytes: &[u8], is_v6: bool) -> Result<IcmpHeader, TransportError> {
    let icmp = IcmpPacket::new_checked(bytes).map_err(truncated)?;
    Ok(IcmpHeader { kind: icmp.msg_type(), code: icmp.code(), is_v6 })
}

/// A transport header that does not fit is cut short, whatever the view's reason.
fn truncated(_: WireError) -> TransportError {
    TransportError::Truncated
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::test_packets::{fragment_v4, fragment_v6, icmp, ip, tcp, udp};
    use crate::testing::shake;

    fn transport_of(packet: &[u8]) -> Result<Transport, TransportError> {
        TransportView::parse(packet).map(|view| view.transport)
    }

    #[test]
    fn reads_ports_and_flags() {
        let syn = tcp("100.64.0.2:40000", "100.64.0.1:22", TcpFlags::SYN);
        let Transport::Tcp { ports, flags } = transport_of(&syn).unwrap() else { panic!() };
        assert_eq!((ports.src, ports.dst), (40000, 22));
        assert!(flags.opens_connection());
        assert!(!TcpFlags(TcpFlags::SYN | TcpFlags::ACK).opens_connection());
        assert!(!TcpFlags(TcpFlags::ACK).opens_connection());

        let datagram = udp("[fd7a:115c:a1e0::2]:53", "[fd7a:115c:a1e0::1]:5353");
        assert_eq!(transport_of(&datagram), Ok(Transport::Udp(Ports { src: 53, dst: 5353 })));
    }

    #[test]
    fn classifies_icmp_by_family() {
        let reply = icmp("100.64.0.2", "100.64.0.1", 0, 0);
        let Transport::Icmp(header) = transport_of(&reply).unwrap() else { panic!() };
        assert!(header.is_echo_reply() && !header.is_error());
        let unreachable = icmp("fd7a::2", "fd7a::1", 1, 3);
        let Transport::Icmp(header) = transport_of(&unreachable).unwrap() else { panic!() };
        assert!(header.is_error() && !header.is_echo_reply());
        let request = icmp("fd7a::2", "fd7a::1", 128, 0);
        let Transport::Icmp(header) = transport_of(&request).unwrap() else { panic!() };
        assert!(!header.is_error() && !header.is_echo_reply());
        // ICMPv6 carried over IPv4 is no ICMP message this host would act on.
        assert_eq!(
            transport_of(&ip("10.0.0.1", "10.0.0.2", PROTO_ICMPV6, &[0; 8])),
            Ok(Transport::Other)
        );
    }

    #[test]
    fn first_fragments_must_hold_the_transport_header() {
        let syn = tcp("10.0.0.2:1", "10.0.0.1:22", TcpFlags::SYN);
        let first = fragment_v4(syn.clone(), 0, true);
        assert!(matches!(transport_of(&first), Ok(Transport::Tcp { .. })));
        let cut = fragment_v4(ip("10.0.0.2", "10.0.0.1", PROTO_TCP, &syn[20..28]), 0, true);
        assert_eq!(transport_of(&cut), Err(TransportError::Truncated));

        let syn_v6 = || tcp("[fd7a::2]:1", "[fd7a::1]:22", TcpFlags::SYN);
        let v6 = fragment_v6(syn_v6(), 0, true);
        let view = TransportView::parse(&v6).unwrap();
        assert_eq!(view.protocol, PROTO_TCP);
        let later = TransportView::parse(&fragment_v6(syn_v6(), 20, false)).unwrap();
        assert_eq!((later.protocol, later.transport), (PROTO_TCP, Transport::LaterFragment));
        assert!(matches!(view.transport, Transport::Tcp { ports: Ports { dst: 22, .. }, .. }));
    }

    #[test]
    fn later_fragments_pass_unless_they_overlap_the_header() {
        let datagram = udp("10.0.0.2:1", "10.0.0.1:53");
        assert_eq!(
            transport_of(&fragment_v4(datagram.clone(), 185, false)),
            Ok(Transport::LaterFragment)
        );
        assert_eq!(
            transport_of(&fragment_v4(datagram, 9, true)),
            Err(TransportError::OverlappingFragment)
        );
        let v6 = udp("[fd7a::2]:1", "[fd7a::1]:53");
        assert_eq!(transport_of(&fragment_v6(v6.clone(), 10, true)), Ok(Transport::LaterFragment));
        assert_eq!(
            transport_of(&fragment_v6(v6, 1, true)),
            Err(TransportError::OverlappingFragment)
        );
    }

    #[test]
    fn tsmp_must_be_whole() {
        let notice = ip("100.64.0.2", "100.64.0.1", PROTO_TSMP, b"A\x00\x01\x02\x03\x04\x05");
        assert_eq!(transport_of(&notice), Ok(Transport::Tsmp));
        assert_eq!(
            transport_of(&fragment_v4(notice.clone(), 0, true)),
            Err(TransportError::FragmentedTsmp)
        );
        assert_eq!(transport_of(&notice[..26]), Err(TransportError::Ip(PacketError::Truncated)));
        let short = ip("100.64.0.2", "100.64.0.1", PROTO_TSMP, b"A");
        assert_eq!(transport_of(&short), Err(TransportError::Truncated));
    }

    #[test]
    fn random_bytes_never_panic() {
        let seeds = [
            tcp("100.64.0.2:40000", "100.64.0.1:22", TcpFlags::SYN),
            fragment_v6(udp("[fd7a::2]:1", "[fd7a::1]:53"), 0, true),
            icmp("fd7a::2", "fd7a::1", 129, 0),
        ];
        for (seed, packet) in seeds.iter().enumerate() {
            shake(seed as u64 + 17, 3000, packet, |bytes| {
                if let Ok(view) = TransportView::parse(bytes) {
                    assert!(view.ip.total_len <= bytes.len());
                }
            });
        }
    }
}
