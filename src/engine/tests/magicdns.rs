//! Quad-100 through the engine: DNS queries from the TUN are answered back into the TUN (or
//! forwarded upstream), never encrypted to a peer, and only while MagicDNS is on.

use super::*;
use crate::control::tailcfg::{DnsConfig, Resolver};
use crate::magicdns::message::tests::query_bytes;
use crate::magicdns::message::{Query, Rcode, RecordData};
use crate::magicdns::{Ticket, FORWARD_TIMEOUT};
use crate::packet::build::udp_packet;
use crate::packet::wire::{IpPacket, UdpDatagram};
use crate::packet::{checksum_add, checksum_finish};
use crate::resolver::message::{parse_response, Question, RecordType, Reply};
use crate::resolver::name::Name;

const CLIENT: &str = "100.64.0.1:40000";
const QUAD_100: &str = "100.100.100.100:53";

fn dns(proxied: bool) -> DnsConfig {
    let upstream = Resolver { addr: "192.0.2.53".into(), ..Resolver::default() };
    DnsConfig { proxied, resolvers: vec![upstream], ..DnsConfig::default() }
}

fn magic_netmap(proxied: bool) -> Netmap {
    let peer_key = PrivateKey([2; 32]).public_key();
    Netmap {
        peers: vec![Peer {
            dns_name: "peer.tail.ts.net.".into(),
            allowed_ips: vec!["100.64.0.2/32".parse().unwrap()],
            addresses: vec!["100.64.0.2/32".parse().unwrap()],
            ..Peer::new(peer_key)
        }],
        dns: Some(dns(proxied)),
        ..Netmap::new(SelfNode {
            dns_name: "me.tail.ts.net.".into(),
            addresses: vec!["100.64.0.1/32".parse().unwrap()],
            ..SelfNode::new(PrivateKey([1; 32]))
        })
    }
}

fn engine(proxied: bool, now: Instant) -> Engine {
    Engine::new(magic_netmap(proxied), now, environment(now, 0x0c_0000))
}

/// A query packet from the host's resolver to `server`.
fn query_packet(server: &str, name: &str, record_type: u16) -> Vec<u8> {
    let client: SocketAddr = match server.starts_with('[') {
        true => "[fd7a:115c:a1e0::1]:40000".parse().unwrap(),
        false => CLIENT.parse().unwrap(),
    };
    udp_packet(client, server.parse().unwrap(), &query_bytes(name, record_type)).unwrap()
}

/// The DNS message of an answer packet written to the TUN, after checking that it comes from
/// quad-100's port 53 to the asking socket with a valid UDP checksum.
fn answer_of(packet: &[u8]) -> Vec<u8> {
    let ip = IpPacket::new_checked(packet).unwrap();
    let header = IpHeader::of(&ip);
    let udp = UdpDatagram::new_checked(&packet[header.payload_offset..]).unwrap();
    assert_eq!((udp.src_port(), udp.dst_port()), (53, 40000));
    let mut sum = match (header.src, header.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => checksum_add(checksum_add(0, &s.octets()), &d.octets()),
        (IpAddr::V6(s), IpAddr::V6(d)) => checksum_add(checksum_add(0, &s.octets()), &d.octets()),
        _ => panic!("mixed families"),
    };
    let udp_len = (packet.len() - header.payload_offset) as u16;
    sum = checksum_add(sum, &[0, 17]);
    sum = checksum_add(sum, &udp_len.to_be_bytes());
    assert_eq!(checksum_finish(checksum_add(sum, &packet[header.payload_offset..])), 0);
    packet[header.payload_offset + 8..].to_vec()
}

fn addresses(answer: &[u8], name: &str) -> Reply {
    let question = Question { name: Name::from_text(name).unwrap(), record_type: RecordType::A };
    parse_response(answer, 0x1234, &question).unwrap()
}

#[test]
fn a_query_to_quad_100_is_answered_into_the_tun_and_not_sent_to_a_peer() {
    let now = Instant::now();
    let mut engine = engine(true, now);
    let mut out = Recorder::default();
    engine.handle_tun_packet(now, &query_packet(QUAD_100, "Peer.tail.ts.net", 1), &mut out);
    assert!(out.udp.is_empty() && out.derp.is_empty(), "nothing went to WireGuard");
    assert_eq!(out.tun.len(), 1);
    let header = IpHeader::parse(&out.tun[0]).unwrap();
    assert_eq!(
        (header.src, header.dst),
        (IpAddr::from([100, 100, 100, 100]), IpAddr::from([100, 64, 0, 1]))
    );
    let reply = addresses(&answer_of(&out.tun[0]), "peer.tail.ts.net");
    assert_eq!(reply, Reply::Addresses(vec![IpAddr::from([100, 64, 0, 2])]));
    assert!(engine.routes().contains(&"100.100.100.100/32".parse().unwrap()));
    assert!(engine.routes().contains(&"fd7a:115c:a1e0::53/128".parse().unwrap()));
}

#[test]
fn the_ipv6_service_address_answers_too() {
    let now = Instant::now();
    let mut engine = engine(true, now);
    let mut out = Recorder::default();
    let query = query_packet("[fd7a:115c:a1e0::53]:53", "nobody.tail.ts.net", 1);
    engine.handle_tun_packet(now, &query, &mut out);
    assert_eq!(out.tun.len(), 1);
    let header = IpHeader::parse(&out.tun[0]).unwrap();
    assert_eq!(header.src, "fd7a:115c:a1e0::53".parse::<IpAddr>().unwrap());
    assert_eq!(crate::magicdns::rcode_of(&answer_of(&out.tun[0])), Some(Rcode::NameError));
}

#[test]
fn forwarded_queries_are_answered_from_upstream_or_fail_in_time() {
    let now = Instant::now();
    let mut engine = engine(true, now);
    let mut out = Recorder::default();
    engine.handle_tun_packet(now, &query_packet(QUAD_100, "www.example.com", 1), &mut out);
    assert!(out.tun.is_empty() && out.udp.is_empty());
    let transmit = engine.poll_dns_transmit().unwrap();
    let (ticket, to) = (transmit.ticket, transmit.to);
    assert_eq!(to, "192.0.2.53:53".parse().unwrap());
    let query = Query::parse(&transmit.datagram).unwrap();
    let answer = query.answer(Rcode::NoError, &[RecordData::Address([192, 0, 2, 80].into())], 60);
    engine.handle_dns_upstream(ticket, "192.0.2.66:53".parse().unwrap(), &answer, &mut out);
    assert!(out.tun.is_empty(), "an answer from another address is not believed");
    assert_eq!(engine.poll_dns_finished(), None);
    engine.handle_dns_upstream(ticket, to, &answer, &mut out);
    let reply = addresses(&answer_of(&out.tun[0]), "www.example.com");
    assert_eq!(reply, Reply::Addresses(vec![IpAddr::from([192, 0, 2, 80])]));
    assert_eq!(engine.poll_dns_finished(), Some(ticket), "its socket can close");

    engine.handle_tun_packet(now, &query_packet(QUAD_100, "slow.example.com", 1), &mut out);
    let slow = engine.poll_dns_transmit().unwrap();
    assert_ne!(slow.ticket, ticket, "every query has a socket of its own");
    assert_eq!(engine.poll_timeout(), Some(now + FORWARD_TIMEOUT));
    engine.handle_timeout(now + FORWARD_TIMEOUT, &mut out);
    let failure = answer_of(out.tun.last().unwrap());
    assert_eq!(crate::magicdns::rcode_of(&failure), Some(Rcode::ServerFailure));
    assert_eq!(engine.poll_dns_finished(), Some(slow.ticket));
}

#[test]
fn the_hosts_nameservers_answer_when_the_tailnet_has_no_resolvers_but_never_quad_100() {
    let now = Instant::now();
    let mut netmap = magic_netmap(true);
    netmap.dns.as_mut().unwrap().resolvers.clear();
    let mut engine = Engine::new(netmap, now, environment(now, 0x0c_0000));
    let host: Vec<SocketAddr> = vec![QUAD_100.parse().unwrap(), "127.0.0.53:53".parse().unwrap()];
    engine.set_host_nameservers(&host);
    let mut out = Recorder::default();
    engine.handle_tun_packet(now, &query_packet(QUAD_100, "www.example.com", 1), &mut out);
    let transmit = engine.poll_dns_transmit().unwrap();
    assert_eq!(transmit.to, "127.0.0.53:53".parse().unwrap());
    assert_eq!(engine.poll_dns_transmit(), None, "never to itself");
}

#[test]
fn without_magic_dns_quad_100_is_not_answered_or_routed() {
    let now = Instant::now();
    let mut engine = engine(false, now);
    let mut out = Recorder::default();
    engine.handle_tun_packet(now, &query_packet(QUAD_100, "peer.tail.ts.net", 1), &mut out);
    assert!(out.tun.is_empty());
    assert_eq!(engine.drops().no_route, 1);
    assert!(!engine.routes().contains(&"100.100.100.100/32".parse().unwrap()));
    // Turning it on changes the routes the OS must have, even with the same peers.
    let change = engine.apply_netmap(magic_netmap(true), now);
    assert!(change.routes_changed);
    engine.handle_tun_packet(now, &query_packet(QUAD_100, "peer.tail.ts.net", 1), &mut out);
    assert_eq!(out.tun.len(), 1);
}

#[test]
fn a_renamed_peer_is_answered_by_its_new_name() {
    let now = Instant::now();
    let mut engine = engine(true, now);
    let mut out = Recorder::default();
    let mut renamed = magic_netmap(true).peers.remove(0);
    renamed.dns_name = "renamed.tail.ts.net.".into();
    engine.apply_peer_delta(PeerDelta { upsert: vec![renamed], remove: vec![] }, now);
    engine.handle_tun_packet(now, &query_packet(QUAD_100, "renamed.tail.ts.net", 1), &mut out);
    let reply = addresses(&answer_of(&out.tun[0]), "renamed.tail.ts.net");
    assert_eq!(reply, Reply::Addresses(vec![IpAddr::from([100, 64, 0, 2])]));
    engine.handle_tun_packet(now, &query_packet(QUAD_100, "peer.tail.ts.net", 1), &mut out);
    assert_eq!(crate::magicdns::rcode_of(&answer_of(&out.tun[1])), Some(Rcode::NameError));
}

#[test]
fn other_ports_and_broken_datagrams_to_quad_100_are_not_answered() {
    let now = Instant::now();
    let mut engine = engine(true, now);
    let mut out = Recorder::default();
    let client: SocketAddr = CLIENT.parse().unwrap();
    let web = udp_packet(client, "100.100.100.100:80".parse().unwrap(), b"GET").unwrap();
    engine.handle_tun_packet(now, &web, &mut out);
    assert_eq!(engine.drops().no_route, 1, "another port is routed as any packet");
    let mut short = query_packet(QUAD_100, "peer.tail.ts.net", 1);
    short[20 + 4..20 + 6].copy_from_slice(&4000u16.to_be_bytes());
    engine.handle_tun_packet(now, &short, &mut out);
    assert!(out.tun.is_empty() && out.udp.is_empty());
    let mut fragment = query_packet(QUAD_100, "peer.tail.ts.net", 1);
    fragment[6] = 0x20; // more fragments
    fragment[10..12].fill(0);
    let sum = checksum_finish(checksum_add(0, &fragment[..20]));
    fragment[10..12].copy_from_slice(&sum.to_be_bytes());
    engine.handle_tun_packet(now, &fragment, &mut out);
    assert!(out.tun.is_empty() && out.udp.is_empty());
    assert_eq!(engine.drops().malformed_outbound, 2);
}

/// A split-DNS resolver on a peer: the query goes to it through WireGuard from our own
/// address, its answer comes back the same way and reaches the host from quad-100, and the
/// answer itself never reaches the OS.
#[test]
fn a_resolver_inside_the_tunnel_is_asked_through_it() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    let mut netmap = a.engine.netmap();
    let route = vec![Resolver { addr: "100.64.0.2".into(), ..Resolver::default() }];
    let mut config = dns(true);
    config.routes.insert("corp.example".into(), Some(route));
    netmap.dns = Some(config);
    a.engine.apply_netmap(netmap, now);
    a.engine.handle_tun_packet(now, &query_packet(QUAD_100, "git.corp.example", 1), &mut a.out);
    assert_eq!(a.engine.poll_dns_transmit(), None, "not for the daemon's socket");
    exchange(&mut a, &mut b, now);
    assert_eq!(b.out.tun.len(), 1, "the query crossed the tunnel");
    let query = b.out.tun.remove(0);
    let header = IpHeader::parse(&query).unwrap();
    assert_eq!(
        (header.src, header.dst),
        (IpAddr::from([100, 64, 0, 1]), IpAddr::from([100, 64, 0, 2]))
    );
    let udp = UdpDatagram::new_checked(&query[header.payload_offset..]).unwrap();
    assert_eq!(udp.dst_port(), 53);
    let asked = Query::parse(&query[header.payload_offset + 8..]).unwrap();
    let answer = asked.answer(Rcode::NoError, &[RecordData::Address([10, 1, 2, 3].into())], 60);
    // The same answer forged off the tunnel, on the daemon's socket of the first query (the
    // only one), is not believed.
    let resolver: SocketAddr = "100.64.0.2:53".parse().unwrap();
    a.engine.handle_dns_upstream(Ticket::numbered(0), resolver, &answer, &mut a.out);
    assert!(a.out.tun.is_empty(), "a spoofed answer off the tunnel reached the host");
    let back = udp_packet(
        "100.64.0.2:53".parse().unwrap(),
        SocketAddr::new(header.src, udp.src_port()),
        &answer,
    )
    .unwrap();
    b.engine.handle_tun_packet(now, &back, &mut b.out);
    exchange(&mut a, &mut b, now);
    assert_eq!(a.out.tun.len(), 1, "only the answer from quad-100 reaches the host");
    let reply = addresses(&answer_of(&a.out.tun[0]), "git.corp.example");
    assert_eq!(reply, Reply::Addresses(vec![IpAddr::from([10, 1, 2, 3])]));
    // Other traffic from the peer to that port still reaches the OS once nothing waits.
    b.engine.handle_tun_packet(now, &back, &mut b.out);
    exchange(&mut a, &mut b, now);
    assert_eq!(a.out.tun.last(), Some(&back));
}
