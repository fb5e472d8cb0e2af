//! The TCP reset that makes a local `connect()` fail at once: what the engine writes to the
//! TUN when the peer reports, by a TSMP notice, that it refused the connection.
//!
//! A connection in SYN-SENT accepts a reset only if it acknowledges the SYN (RFC 9293 §3.10.7.3:
//! SND.UNA < SEG.ACK =< SND.NXT), so the reset carries ACK = the SYN's sequence number + 1;
//! the stack then fails the connect with "connection refused".

use super::build::ip_packet;
use super::checksum::pseudo_header;
use super::wire::tcp::{self as tcp_wire, flags};
use super::wire::{TcpSegment, PROTO_TCP};
use std::net::SocketAddr;

/// A RST+ACK from `server` to `client` answering the SYN whose sequence number was
/// `syn_seq`; `None` for mixed families.
pub(crate) fn reset_for_syn(
    server: SocketAddr,
    client: SocketAddr,
    syn_seq: u32,
) -> Option<Vec<u8>> {
    let (mut packet, at) = ip_packet(server.ip(), client.ip(), PROTO_TCP, 0, tcp_wire::HEADER_LEN)?;
    let pseudo = pseudo_header(server.ip(), client.ip(), PROTO_TCP, tcp_wire::HEADER_LEN as u32);
    let mut tcp = TcpSegment::new_unchecked(&mut packet[at..]);
    tcp.set_src_port(server.port());
    tcp.set_dst_port(client.port());
    tcp.set_seq(0);
    tcp.set_ack_number(syn_seq.wrapping_add(1));
    tcp.set_header_len(tcp_wire::HEADER_LEN);
    tcp.set_flags(flags::RST | flags::ACK);
    tcp.set_window(0);
    tcp.fill_checksum(pseudo);
    Some(packet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::transport::{Transport, TransportView};
    use crate::packet::{checksum_add, checksum_finish};

    #[test]
    fn acknowledges_the_syn_with_valid_checksums() {
        let (server, client) =
            ("100.64.0.2:22".parse().unwrap(), "100.64.0.1:40000".parse().unwrap());
        let reset = reset_for_syn(server, client, u32::MAX).unwrap();
        let view = TransportView::parse(&reset).unwrap();
        let Transport::Tcp { ports, flags: seen } = view.transport else { panic!() };
        assert_eq!((ports.src, ports.dst), (22, 40000));
        assert_eq!(seen.0, flags::RST | flags::ACK);
        let tcp = TcpSegment::new_checked(&reset[20..]).unwrap();
        assert_eq!((tcp.ack_number(), tcp.header_len()), (0, 20), "the SYN's seq + 1, wrapped");
        assert_eq!(checksum_finish(checksum_add(0, &reset[..20])), 0, "IPv4 header");
        // The TCP checksum, with the plain reference sum over the pseudo-header.
        let mut sum = checksum_add(0, &reset[12..20]);
        sum = checksum_add(sum, &[0, PROTO_TCP, 0, 20]);
        assert_eq!(checksum_finish(checksum_add(sum, &reset[20..])), 0, "TCP");
    }

    #[test]
    fn ipv6_too_and_no_mixed_families() {
        let server = "[fd7a::2]:443".parse().unwrap();
        let reset = reset_for_syn(server, "[fd7a::1]:5000".parse().unwrap(), 41).unwrap();
        assert_eq!(TcpSegment::new_checked(&reset[40..]).unwrap().ack_number(), 42);
        assert_eq!(reset_for_syn(server, "100.64.0.1:1".parse().unwrap(), 1), None);
    }
}
