//! Quad-100 in the data path: a DNS query the host sends to 100.100.100.100:53 (or
//! `[fd7a:115c:a1e0::53]:53`) never reaches WireGuard. While the netmap turns MagicDNS on, the
//! engine hands it to [`MagicDns`] and writes the answer back to the TUN as a UDP packet from
//! the service address. A forwarded query to a resolver outside the tunnel leaves through a
//! socket the daemon opens for that one query ([`Engine::poll_dns_transmit`]) and its answer
//! comes back through [`Engine::handle_dns_upstream`] with the query's ticket; one to a
//! resolver the tunnel routes (a split-DNS server on a peer or behind a subnet router) goes to
//! that peer from our own address and a port of the engine's, and the peer's answer is taken
//! out of the inbound path before the OS sees it. Each answer is believed only from the path
//! its query took.

use super::{Engine, PacketSink};
use crate::control::tailcfg::DnsConfig;
use crate::magicdns::zone::{is_service, Zone, SERVICE_V4, SERVICE_V6};
use crate::magicdns::{Path, Reply, Ticket, Transmit};
use crate::packet::build::udp_packet;
use crate::packet::wire::{udp, IpPacket, UdpDatagram, PROTO_UDP};
use crate::packet::{ip_view, IpHeader};
use crate::prefix::Prefix;
use crate::resolver::DNS_PORT;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

impl Engine {
    /// Whether the tailnet turned MagicDNS on for this node (an expired node answers nothing,
    /// as tailscaled drops its DNS configuration).
    pub(super) fn magic_dns_on(&self) -> bool {
        let proxied = self.netmap.dns.as_ref().is_some_and(|dns| dns.proxied);
        proxied && !self.netmap.self_node.key_expired
    }

    /// The service addresses, routed into the TUN while MagicDNS is on.
    pub(super) fn magic_dns_routes(&self) -> impl Iterator<Item = Prefix> {
        let on = self.magic_dns_on();
        [IpAddr::V4(SERVICE_V4), IpAddr::V6(SERVICE_V6)]
            .into_iter()
            .filter(move |_| on)
            .map(Prefix::host)
    }

    /// Answers `packet` if it is a DNS query to quad-100 while MagicDNS is on; returns whether
    /// it was one (answered, forwarded or dropped), so it goes no further.
    pub(super) fn intercept_dns(
        &mut self,
        now: Instant,
        header: &IpHeader,
        packet: &[u8],
        sink: &mut dyn PacketSink,
    ) -> bool {
        if header.protocol != PROTO_UDP || !is_service(header.dst) || !self.magic_dns_on() {
            return false;
        }
        let (client, query) = match dns_query(packet) {
            ToService::Dns { client, query } => (client, query),
            // Not DNS: routed as any packet (no peer has the address, so it is dropped).
            ToService::OtherPort => return false,
            ToService::Malformed => {
                self.drops.malformed_outbound += 1;
                return true;
            }
        };
        if self.magic_dns.needs_zone() {
            let peers = self.peers.values().map(|state| &state.config);
            let no_dns = DnsConfig::default();
            let dns = self.netmap.dns.as_ref().unwrap_or(&no_dns);
            let host = self.magic_dns.host_nameservers();
            let zone = Zone::new(&self.netmap.self_node, peers, dns, host);
            self.magic_dns.set_zone(zone);
        }
        if let Some(answer) = self.magic_dns.handle_query(now, client, query) {
            write_dns_reply(Reply { client, message: answer }, sink);
        }
        self.route_dns_queries(now, sink);
        true
    }

    /// Sends the forwarded queries to resolvers the tunnel routes to their peers; the others
    /// wait for the daemon's sockets. Either way the query's path is recorded.
    fn route_dns_queries(&mut self, now: Instant, sink: &mut dyn PacketSink) {
        while let Some(transmit) = self.magic_dns.poll_transmit() {
            let to = transmit.to;
            let mut own = self.netmap.self_node.addresses.iter().map(Prefix::addr);
            let src = own.find(|a| a.is_ipv4() == to.is_ipv4());
            let inside = self.routes.lookup(to.ip()).zip(src);
            let packet = inside.and_then(|(index, src)| {
                let from = SocketAddr::new(src, self.dns_tunnel_port);
                udp_packet(from, to, &transmit.datagram).map(|packet| (index, src, packet))
            });
            match packet {
                Some((index, src, packet)) => {
                    self.magic_dns.record_path(&transmit, Path::Tunnel);
                    self.send_inside(index, now, src, &packet, sink);
                }
                None => {
                    self.magic_dns.record_path(&transmit, Path::Socket(transmit.ticket));
                    self.dns_outbox.push_back(transmit);
                }
            }
        }
    }

    /// Takes an inbound packet that answers a query sent through the tunnel, writing the
    /// answer to the host; returns whether it did (anything else goes on to the OS).
    pub(super) fn take_dns_answer(&mut self, packet: &[u8], sink: &mut dyn PacketSink) -> bool {
        if !self.magic_dns.is_waiting() {
            return false;
        }
        let Ok(ip) = ip_view(packet) else { return false };
        if ip.protocol() != PROTO_UDP || matches!(&ip, IpPacket::V4(v4) if v4.is_fragment()) {
            return false;
        }
        let Ok(datagram) = UdpDatagram::new_checked(ip.payload()) else { return false };
        let from = SocketAddr::new(ip.src(), datagram.src_port());
        if datagram.dst_port() != self.dns_tunnel_port || !self.magic_dns.waits_in_tunnel(from) {
            return false;
        }
        let length = usize::from(datagram.length()).clamp(udp::HEADER_LEN, ip.payload().len());
        let answer = &ip.payload()[udp::HEADER_LEN..length];
        if let Some(reply) = self.magic_dns.handle_upstream(Path::Tunnel, from, answer) {
            write_dns_reply(reply, sink);
        }
        true
    }

    /// The host's own nameservers, where names go that the tailnet has no resolver for; the
    /// service addresses themselves are left out (the host may already point at them).
    pub(crate) fn set_host_nameservers(&mut self, nameservers: &[SocketAddr]) {
        let kept = nameservers.iter().filter(|ns| !is_service(ns.ip())).copied().collect();
        self.magic_dns.set_host_nameservers(kept);
    }

    /// The next query for an upstream resolver outside the tunnel, to be sent from a socket
    /// of its query's own (one socket per ticket and family).
    pub(crate) fn poll_dns_transmit(&mut self) -> Option<Transmit> {
        self.dns_outbox.pop_front()
    }

    /// The next forwarded query that ended (answered or timed out): its sockets can close.
    pub(crate) fn poll_dns_finished(&mut self) -> Option<Ticket> {
        self.magic_dns.poll_finished()
    }

    /// A datagram on the socket of the query with `ticket`: relayed to the host if it answers
    /// that query.
    pub(crate) fn handle_dns_upstream(
        &mut self,
        ticket: Ticket,
        from: SocketAddr,
        datagram: &[u8],
        sink: &mut dyn PacketSink,
    ) {
        if let Some(reply) = self.magic_dns.handle_upstream(Path::Socket(ticket), from, datagram) {
            write_dns_reply(reply, sink);
        }
    }

    /// SERVFAIL for forwarded queries whose time is up.
    pub(super) fn expire_dns(&mut self, now: Instant, sink: &mut dyn PacketSink) {
        for reply in self.magic_dns.handle_timeout(now) {
            write_dns_reply(reply, sink);
        }
    }
}

/// A UDP packet to a service address, as the DNS server sees it.
enum ToService<'a> {
    /// A query: the asking socket and the DNS message.
    Dns { client: SocketAddr, query: &'a [u8] },
    /// Not for port 53.
    OtherPort,
    /// A fragment, or a datagram whose header or length field does not fit the packet.
    Malformed,
}

fn dns_query(packet: &[u8]) -> ToService<'_> {
    let Ok(ip) = ip_view(packet) else {
        return ToService::Malformed;
    };
    if matches!(&ip, IpPacket::V4(v4) if v4.is_fragment()) {
        return ToService::Malformed;
    }
    let header = IpHeader::of(&ip);
    let payload = &packet[header.payload_offset..header.total_len];
    let Ok(datagram) = UdpDatagram::new_checked(payload) else {
        return ToService::Malformed;
    };
    if datagram.dst_port() != DNS_PORT {
        return ToService::OtherPort;
    }
    let length = usize::from(datagram.length());
    if length < udp::HEADER_LEN || length > payload.len() {
        return ToService::Malformed;
    }
    let client = SocketAddr::new(header.src, datagram.src_port());
    ToService::Dns { client, query: &payload[udp::HEADER_LEN..length] }
}

/// Writes `reply` to the TUN from the service address of the client's family.
fn write_dns_reply(reply: Reply, sink: &mut dyn PacketSink) {
    let service = match reply.client.ip() {
        IpAddr::V4(_) => IpAddr::V4(SERVICE_V4),
        IpAddr::V6(_) => IpAddr::V6(SERVICE_V6),
    };
    match udp_packet(SocketAddr::new(service, DNS_PORT), reply.client, &reply.message) {
        Some(packet) => sink.write_tun(&packet),
        None => {
            log::debug!("MagicDNS: answer of {} bytes does not fit a packet", reply.message.len())
        }
    }
}
