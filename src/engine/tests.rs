//! Two engines wired back to back through an in-memory network: handshakes, data, roaming,
//! cryptokey routing and pings, with no sockets.

use super::path::Path;
use super::*;
use crate::engine::peers::PeerState;
use crate::keys::PrivateKey;
use crate::netmap::{Peer, PeerDelta, SelfNode};
use crate::packet::icmp::{echo_request, Echo};
use crate::packet::IpHeader;
use std::time::Duration;

mod lazy;
mod magicdns;
mod pings;
mod signature;

#[derive(Default)]
struct Recorder {
    udp: Vec<(SocketAddr, Vec<u8>)>,
    derp: Vec<(RegionId, PublicKey, Vec<u8>)>,
    tun: Vec<Vec<u8>>,
}

impl PacketSink for Recorder {
    fn send_udp(&mut self, to: SocketAddr, datagram: &[u8]) {
        self.udp.push((to, datagram.to_vec()));
    }
    fn send_derp(&mut self, region: RegionId, to: PublicKey, datagram: &[u8]) {
        self.derp.push((region, to, datagram.to_vec()));
    }
    fn write_tun(&mut self, packet: &[u8]) {
        self.tun.push(packet.to_vec());
    }
}

struct Node {
    engine: Engine,
    addr: SocketAddr,
    out: Recorder,
}

fn netmap(
    own: &PrivateKey,
    ip: &str,
    peer: &PrivateKey,
    peer_ip: &str,
    peer_endpoint: Option<SocketAddr>,
) -> Netmap {
    Netmap {
        peers: vec![Peer {
            name: peer_ip.into(),
            allowed_ips: vec![peer_ip.parse().unwrap()],
            endpoints: peer_endpoint.into_iter().collect(),
            ..Peer::new(peer.public_key())
        }],
        ..Netmap::new(SelfNode {
            name: ip.into(),
            addresses: vec![ip.parse().unwrap()],
            ..SelfNode::new(own.clone())
        })
    }
}

/// A fixed environment: the engine's indexes, ping ids and wall times follow from it alone.
pub(super) fn environment(now: Instant, index_seed: u32) -> Environment {
    let wall = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    Environment {
        index_seed,
        ping_id: 0x7e57,
        clock: WallClock::new(now, wall),
        disco_key: PrivateKey([index_seed.to_le_bytes()[2]; 32]),
        disco_seed: [index_seed.to_le_bytes()[2]; 16],
        dns_key: [index_seed.to_le_bytes()[2]; 32],
        lazy: Default::default(),
    }
}

/// NetBSD pins its traffic to peers with host routes to their endpoints: an endpoint a peer
/// announces inside a route into the tunnel (another peer's subnet) must never be one of
/// them, or this host's traffic to that address would leave outside the tunnel.
#[test]
fn endpoints_inside_the_tunnels_routes_are_not_offered_for_host_routes() {
    let now = Instant::now();
    let (own, router, other) =
        (PrivateKey([1; 32]), PrivateKey::generate().unwrap(), PrivateKey::generate().unwrap());
    let mut map = netmap(&own, "100.64.0.1", &router, "100.64.0.2", None);
    map.peers[0].allowed_ips.push("10.1.0.0/16".parse().unwrap());
    map.peers.push(Peer {
        allowed_ips: vec!["100.64.0.3/32".parse().unwrap()],
        endpoints: ["10.1.2.3:41641", "192.0.2.9:41641"].map(|e| e.parse().unwrap()).to_vec(),
        ..Peer::new(other.public_key())
    });
    let engine = Engine::new(map, now, environment(now, 0x0c_0000));
    let offered: Vec<std::net::IpAddr> = engine.peer_endpoint_ips().collect();
    assert_eq!(offered, ["192.0.2.9".parse::<std::net::IpAddr>().unwrap()]);
}

/// A knows B's endpoint; B learns A's from the handshake, as with a roaming client.
fn pair(now: Instant) -> (Node, Node) {
    let (ka, kb) = (PrivateKey::generate().unwrap(), PrivateKey::generate().unwrap());
    let (aa, ab): (SocketAddr, SocketAddr) =
        ("192.0.2.1:1000".parse().unwrap(), "192.0.2.2:2000".parse().unwrap());
    let a = Node {
        engine: Engine::new(
            netmap(&ka, "100.64.0.1", &kb, "100.64.0.2", Some(ab)),
            now,
            environment(now, 0x0a_0000),
        ),
        addr: aa,
        out: Recorder::default(),
    };
    let b = Node {
        engine: Engine::new(
            netmap(&kb, "100.64.0.2", &ka, "100.64.0.1", None),
            now,
            environment(now, 0x0b_0000),
        ),
        addr: ab,
        out: Recorder::default(),
    };
    (a, b)
}

/// Delivers every queued datagram until the network is quiet.
fn exchange(a: &mut Node, b: &mut Node, now: Instant) {
    for _ in 0..10 {
        let from_a: Vec<_> = a.out.udp.drain(..).collect();
        let from_b: Vec<_> = b.out.udp.drain(..).collect();
        if from_a.is_empty() && from_b.is_empty() {
            return;
        }
        for (to, d) in from_a {
            assert_eq!(to, b.addr);
            b.engine.handle_datagram(now, a.addr, &d, &mut b.out);
        }
        for (to, d) in from_b {
            assert_eq!(to, a.addr);
            a.engine.handle_datagram(now, b.addr, &d, &mut a.out);
        }
    }
    panic!("the exchange never settled");
}

fn echo(src: &str, dst: &str, seq: u16) -> Vec<u8> {
    let e = Echo {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        identifier: 77,
        sequence: seq,
    };
    echo_request(&e, b"hello").unwrap()
}

#[test]
fn first_packet_triggers_handshake_and_arrives_intact() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    let packet = echo("100.64.0.1", "100.64.0.2", 1);
    a.engine.handle_tun_packet(now, &packet, &mut a.out);
    assert_eq!(a.out.udp.len(), 1, "a handshake initiation");
    exchange(&mut a, &mut b, now);
    assert_eq!(b.out.tun, vec![packet], "the queued packet crossed after the handshake");
    // And back, over the established session, with B sending to the endpoint it learned.
    let reply = echo("100.64.0.2", "100.64.0.1", 2);
    b.engine.handle_tun_packet(now, &reply, &mut b.out);
    exchange(&mut a, &mut b, now);
    assert_eq!(a.out.tun, vec![reply]);
    let status = b.engine.status(now, true);
    let peer = status.peer.values().next().unwrap();
    assert_eq!(peer.cur_addr, a.addr.to_string());
    assert!(peer.online && peer.rx_bytes > 0 && peer.tx_bytes > 0);
    assert!(!peer.last_handshake.starts_with("0001-"), "a handshake happened");
    let again = b.engine.status(now + Duration::from_secs(3), true);
    assert_eq!(
        again.peer.values().next().unwrap().last_handshake,
        peer.last_handshake,
        "stable between requests"
    );
}

#[test]
fn a_configured_endpoint_is_no_current_address_until_traffic_authenticates_from_it() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    assert_eq!(a.out.udp[0].0, b.addr, "the initiation goes to the configured endpoint");
    assert_eq!(current_endpoint(&a, now), "", "nothing answered yet");
    exchange(&mut a, &mut b, now);
    assert_eq!(current_endpoint(&a, now), b.addr.to_string());
}

#[test]
fn the_environment_alone_fixes_session_indexes_and_wall_times() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    let initiation = &a.out.udp[0].1;
    let sender = u32::from_le_bytes(initiation[4..8].try_into().unwrap());
    // boringtun puts the engine's 24-bit peer index above an 8-bit session counter.
    assert_eq!(sender >> 8, 0x0a_0000, "the first index is the seed's");
    exchange(&mut a, &mut b, now);
    let status = b.engine.status(now, true);
    let handshake = &status.peer.values().next().unwrap().last_handshake;
    assert!(
        handshake.starts_with("2027-01-15T08:00:00"),
        "wall time from the given clock: {handshake}"
    );
}

#[test]
fn ping_completes_with_latency_and_endpoint() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    let id = a
        .engine
        .start_ping(now, "100.64.0.2".parse().unwrap(), Duration::from_secs(5), &mut a.out)
        .unwrap();
    exchange(&mut a, &mut b, now);
    // B's kernel answers the echo.
    let request = b.out.tun.pop().expect("echo request delivered to B's kernel");
    let reply = crate::packet::icmp::reply_to(&request);
    let later = now + Duration::from_millis(12);
    b.engine.handle_tun_packet(later, &reply, &mut b.out);
    exchange(&mut a, &mut b, later);
    assert!(a.out.tun.is_empty(), "our own ping reply never reaches the kernel");
    let (done, result) = a.engine.poll_ping().unwrap();
    assert_eq!(done, id);
    assert_eq!(result.err, "");
    assert_eq!(result.endpoint, b.addr.to_string());
    assert!((result.latency_seconds - 0.012).abs() < 1e-6);
}

#[test]
fn unanswered_ping_times_out() {
    let now = Instant::now();
    let (mut a, _b) = pair(now);
    a.engine
        .start_ping(now, "100.64.0.2".parse().unwrap(), Duration::from_secs(2), &mut a.out)
        .unwrap();
    assert!(a.engine.poll_timeout().unwrap() <= now + Duration::from_secs(2));
    a.engine.handle_timeout(now + Duration::from_secs(3), &mut a.out);
    let (_, result) = a.engine.poll_ping().unwrap();
    assert!(result.err.contains("timed out"), "{}", result.err);
    assert!(a
        .engine
        .start_ping(now, "10.0.0.1".parse().unwrap(), Duration::from_secs(1), &mut a.out)
        .is_err());
}

#[test]
fn spoofed_source_is_dropped() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    exchange(&mut a, &mut b, now);
    b.out.tun.clear();
    // A claims a source outside its AllowedIPs.
    a.engine.handle_tun_packet(now, &echo("100.64.0.99", "100.64.0.2", 2), &mut a.out);
    exchange(&mut a, &mut b, now);
    assert!(b.out.tun.is_empty());
    assert_eq!(b.engine.drops().spoofed_source, 1);
}

#[test]
fn garbage_datagrams_and_packets_are_counted_not_fatal() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    let mut rng = crate::testing::Rng::new(5);
    for _ in 0..3000 {
        let len = rng.below(200);
        let junk = rng.bytes(len);
        b.engine.handle_datagram(now, a.addr, &junk, &mut b.out);
        b.engine.handle_tun_packet(now, &junk, &mut b.out);
    }
    // Mutated real handshake initiations too.
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    let init = a.out.udp[0].1.clone();
    crate::testing::shake(9, 2000, &init, |d| b.engine.handle_datagram(now, a.addr, d, &mut b.out));
    assert!(b.out.tun.is_empty());
    // The real session still works afterwards.
    exchange(&mut a, &mut b, now);
    assert_eq!(b.out.tun.len(), 1);
}

#[test]
fn netmap_update_keeps_unchanged_sessions() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    exchange(&mut a, &mut b, now);
    let before = a.engine.status(now, true).peer.values().next().unwrap().tx_bytes;
    // Add a third peer: B's session on A must survive (no new handshake needed).
    let mut map = a.engine.netmap();
    let other = PrivateKey::generate().unwrap();
    map.peers.push(Peer {
        name: "c".into(),
        allowed_ips: vec!["100.64.0.3/32".parse().unwrap()],
        ..Peer::new(other.public_key())
    });
    map.peers.sort_by_key(|p| p.public_key);
    let change = a.engine.apply_netmap(map.clone(), now);
    assert_eq!((change.added, change.removed), (1, 0));
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 2), &mut a.out);
    assert_eq!(a.out.udp.len(), 1);
    assert_eq!(a.out.udp[0].1[0], 4, "a data message, not a new handshake");
    let after = a.engine.status(now, true);
    assert!(after.peer.values().any(|p| p.tx_bytes > before));
    assert_eq!(a.engine.routes().len(), 2);
    // Remove B: its route and session go.
    map.peers.retain(|p| p.name == "c");
    let change = a.engine.apply_netmap(map, now);
    assert_eq!(change.removed, 1);
    a.out.udp.clear();
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 3), &mut a.out);
    assert!(a.out.udp.is_empty());
    assert_eq!(a.engine.drops().no_route, 1);
}

#[test]
fn handshake_flood_is_answered_with_cookie_replies() {
    let now = Instant::now();
    let (a, mut b) = pair(now);
    let a_key = a.engine.self_node().private_key.clone();
    let b_public = x25519_dalek::PublicKey::from(b.engine.self_node().private_key.public_key().0);
    let mut buf = vec![0u8; 256];
    for i in 0..400 {
        let mut tunn = boringtun::noise::Tunn::new(a_key.secret(), b_public, None, None, i, None);
        if let boringtun::noise::TunnResult::WriteToNetwork(init) =
            tunn.format_handshake_initiation(&mut buf, false)
        {
            b.engine.handle_datagram(now, a.addr, init, &mut b.out);
        }
    }
    let cookies = b.out.udp.iter().filter(|(_, d)| d[0] == 3).count();
    let responses = b.out.udp.iter().filter(|(_, d)| d[0] == 2).count();
    assert!(cookies > 0, "under load the responder demands cookies");
    assert!(responses > 0 && responses < 400, "{responses} responses");
}

#[test]
fn control_filter_drops_unsolicited_packets_but_passes_replies() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    // Control denies everything inbound on B.
    let mut map = b.engine.netmap();
    map.packet_filter = Some(Vec::new());
    b.engine.apply_netmap(map, now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    exchange(&mut a, &mut b, now);
    assert!(b.out.tun.is_empty(), "an unsolicited echo request is filtered");
    assert_eq!(b.engine.drops().filtered, 1);
    // B's own ping to A: the echo reply gets in.
    let id = b
        .engine
        .start_ping(now, "100.64.0.1".parse().unwrap(), Duration::from_secs(5), &mut b.out)
        .unwrap();
    exchange(&mut a, &mut b, now);
    let request = a.out.tun.pop().expect("A's kernel got the echo request");
    let reply = crate::packet::icmp::reply_to(&request);
    a.engine.handle_tun_packet(now, &reply, &mut a.out);
    exchange(&mut a, &mut b, now);
    assert_eq!(b.engine.poll_ping().map(|(done, r)| (done, r.err)), Some((id, String::new())));
}

#[test]
fn a_peer_that_knows_us_by_another_address_sees_only_that_one() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    // Control tells A that B knows it as 100.99.0.1, and B routes that address to A.
    let mut map = a.engine.netmap();
    map.peers[0].masquerade_as = vec!["100.99.0.1".parse().unwrap()];
    a.engine.apply_netmap(map, now);
    let mut map = b.engine.netmap();
    map.peers[0].allowed_ips = vec!["100.99.0.1/32".parse().unwrap()];
    b.engine.apply_netmap(map, now);

    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    exchange(&mut a, &mut b, now);
    let request = b.out.tun.pop().expect("delivered despite B not knowing 100.64.0.1");
    assert_eq!(IpHeader::parse(&request).unwrap().src.to_string(), "100.99.0.1");
    b.engine.handle_tun_packet(now, &crate::packet::icmp::reply_to(&request), &mut b.out);
    exchange(&mut a, &mut b, now);
    let reply = a.out.tun.pop().expect("the reply reached A");
    assert_eq!(IpHeader::parse(&reply).unwrap().dst.to_string(), "100.64.0.1");
}

/// An address on the path that is not the peer's.
fn attacker() -> SocketAddr {
    "198.51.100.7:4444".parse().unwrap()
}

fn public_of(node: &Node) -> x25519_dalek::PublicKey {
    x25519_dalek::PublicKey::from(node.engine.self_node().private_key.public_key().0)
}

/// The only peer's session on `node` (brought back if trimmed).
fn session_of(node: &mut Node) -> &mut boringtun::noise::Tunn {
    let index = *node.engine.peers.keys().next().unwrap();
    node.engine.wake(index, Instant::now(), super::lazy::Waker::Other);
    &mut node.engine.peers.get_mut(&index).unwrap().session.as_mut().unwrap().tunn
}

/// A new initiation from `node`'s session, as its retransmit or rekey timer would send.
fn force_initiation(node: &mut Node) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    match session_of(node).format_handshake_initiation(&mut buf, true) {
        boringtun::noise::TunnResult::WriteToNetwork(init) => init.to_vec(),
        _ => panic!("no initiation"),
    }
}

fn current_endpoint(node: &Node, now: Instant) -> String {
    node.engine.status(now, true).peer.values().next().unwrap().cur_addr.clone()
}

/// A cookie reply anyone can build from an observed initiation and the responder's public key:
/// boringtun's own limiter, given only that public key and set to be always under load.
fn forged_cookie_reply(init: &[u8], responder: &x25519_dalek::PublicKey) -> Vec<u8> {
    let forger = boringtun::noise::rate_limiter::RateLimiter::new(responder, 0);
    let mut buf = [0u8; 64];
    match forger.verify_packet(Some(attacker().ip()), init, &mut buf) {
        Err(boringtun::noise::TunnResult::WriteToNetwork(reply)) => reply.to_vec(),
        _ => panic!("the forger made no cookie reply"),
    }
}

#[test]
fn forged_cookie_reply_does_not_move_the_endpoint() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    let observed = a.out.udp[0].1.clone();
    let forged = forged_cookie_reply(&observed, &public_of(&b));
    assert_eq!((forged.len(), forged[0]), (64, 3));
    // During the handshake (nothing has authenticated yet, so no current address)…
    a.engine.handle_datagram(now, attacker(), &forged, &mut a.out);
    assert_eq!(current_endpoint(&a, now), "");
    exchange(&mut a, &mut b, now);
    assert_eq!(b.out.tun.len(), 1);
    // …and on the established session, with a replayed data message too.
    let data = {
        a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 2), &mut a.out);
        a.out.udp.last().unwrap().1.clone()
    };
    exchange(&mut a, &mut b, now);
    for _ in 0..2 {
        a.engine.handle_datagram(now, attacker(), &forged, &mut a.out);
        b.engine.handle_datagram(now, attacker(), &data, &mut b.out);
    }
    assert_eq!(current_endpoint(&a, now), b.addr.to_string());
    assert_eq!(current_endpoint(&b, now), a.addr.to_string());
    // Traffic still flows both ways, to the real addresses (exchange checks every destination).
    b.out.tun.clear();
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 3), &mut a.out);
    b.engine.handle_tun_packet(now, &echo("100.64.0.2", "100.64.0.1", 4), &mut b.out);
    exchange(&mut a, &mut b, now);
    assert_eq!((a.out.tun.len(), b.out.tun.len()), (1, 1));
}

#[test]
fn authenticated_traffic_from_a_new_address_moves_the_endpoint() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    exchange(&mut a, &mut b, now);
    // B roams: its data, then a bare keepalive, arrive from new addresses.
    let mut buf = vec![0u8; 256];
    let roamed: [SocketAddr; 2] =
        ["203.0.113.5:3000".parse().unwrap(), "[2001:db8::5]:3000".parse().unwrap()];
    b.engine.handle_tun_packet(now, &echo("100.64.0.2", "100.64.0.1", 2), &mut b.out);
    let (_, data) = b.out.udp.pop().unwrap();
    a.engine.handle_datagram(now, roamed[0], &data, &mut a.out);
    assert_eq!(current_endpoint(&a, now), roamed[0].to_string());
    let keepalive = match session_of(&mut b).encapsulate(&[], &mut buf) {
        boringtun::noise::TunnResult::WriteToNetwork(d) => d.to_vec(),
        _ => panic!("no keepalive"),
    };
    a.engine.handle_datagram(now, roamed[1], &keepalive, &mut a.out);
    assert_eq!(current_endpoint(&a, now), roamed[1].to_string());
    assert_eq!(a.out.tun.len(), 1);
}

#[test]
fn handshakes_over_months_never_need_a_cookie_round() {
    let mut now = Instant::now();
    let (mut a, mut b) = pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    exchange(&mut a, &mut b, now);
    // Rekeys and reconnections, three a day for two months.
    for round in 0..200 {
        now += Duration::from_secs(8 * 3600);
        let init = force_initiation(&mut a);
        b.engine.handle_datagram(now, a.addr, &init, &mut b.out);
        let replies: Vec<u8> = b.out.udp.iter().map(|(_, d)| d[0]).collect();
        assert_eq!(replies, vec![2], "round {round}: a response, no cookie reply first");
        exchange(&mut a, &mut b, now);
    }
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 2), &mut a.out);
    exchange(&mut a, &mut b, now);
    assert_eq!(b.out.tun.len(), 2);
}

/// A key holder that is no peer of B's: it floods B with initiations, solves the cookie B
/// answers with under load, and floods on with mac2.
struct Stranger {
    key: PrivateKey,
    tunn: boringtun::noise::Tunn,
}

impl Stranger {
    fn new(b: &Node) -> Stranger {
        let key = PrivateKey::generate().unwrap();
        let tunn = boringtun::noise::Tunn::new(key.secret(), public_of(b), None, None, 1, None);
        Stranger { key, tunn }
    }

    fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    fn initiation(&mut self) -> Vec<u8> {
        let mut buf = vec![0u8; 256];
        match self.tunn.format_handshake_initiation(&mut buf, true) {
            boringtun::noise::TunnResult::WriteToNetwork(init) => init.to_vec(),
            _ => panic!("no initiation"),
        }
    }

    /// Takes B's cookie reply: the next initiations carry mac2.
    fn solve(&mut self, cookie: &[u8]) {
        let mut out = vec![0u8; 256];
        self.tunn.decapsulate(None, cookie, &mut out);
    }
}

#[test]
fn one_source_solving_cookies_cannot_flood_the_diffie_hellman() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    let mut stranger = Stranger::new(&b);
    // Enough initiations to put B under load, then one answered with a cookie, which the
    // attacker solves.
    let mut cookie = None;
    for _ in 0..200 {
        b.out.udp.clear();
        b.engine.handle_datagram(now, attacker(), &stranger.initiation(), &mut b.out);
        cookie = b.out.udp.iter().find(|(_, d)| d[0] == 3).map(|(_, d)| d.clone());
        if cookie.is_some() {
            break;
        }
    }
    stranger.solve(&cookie.expect("B demands cookies under load"));
    let with_mac2 = stranger.initiation();
    let before = b.engine.drops().clone();
    b.out.udp.clear();
    for _ in 0..1000 {
        b.engine.handle_datagram(now, attacker(), &with_mac2, &mut b.out);
    }
    assert!(b.out.udp.is_empty(), "mac2 is valid: no cookie replies, and nothing else");
    let diffie_hellmans = b.engine.drops().unknown_initiator - before.unknown_initiator;
    let limited = b.engine.drops().handshake_rate_limited - before.handshake_rate_limited;
    assert!((1..=10).contains(&diffie_hellmans), "{diffie_hellmans} of 1000 reached the DH");
    assert_eq!(diffie_hellmans + limited, 1000);
    // The real peer, from another address, still gets through: a cookie round, then its
    // retransmission carries mac2 and is answered.
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    let (_, first) = a.out.udp.remove(0);
    b.engine.handle_datagram(now, a.addr, &first, &mut b.out);
    assert_eq!(b.out.udp[0].1[0], 3, "B is still under load: a cookie reply first");
    exchange(&mut a, &mut b, now);
    let retry = force_initiation(&mut a);
    b.engine.handle_datagram(now, a.addr, &retry, &mut b.out);
    exchange(&mut a, &mut b, now);
    assert_eq!(b.out.tun.len(), 1, "the peer's packet crossed after its handshake");
}

/// Through DERP every sender shares the relay's one magic address, so the per-source share is
/// per sender key (which the relay authenticated): one key flooding with solved cookies
/// leaves another relayed peer its handshake.
#[test]
fn a_relayed_flood_from_one_key_leaves_other_relayed_peers_their_handshakes() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    let mut stranger = Stranger::new(&b);
    let sent_to = |b: &Node, key: PublicKey, kind: u8| {
        b.out.derp.iter().find(|(_, to, d)| *to == key && d[0] == kind).map(|(_, _, d)| d.clone())
    };
    let mut cookie = None;
    for _ in 0..200 {
        b.out.derp.clear();
        let init = stranger.initiation();
        b.engine.handle_derp_datagram(now, HOME, stranger.public_key(), &init, &mut b.out);
        cookie = sent_to(&b, stranger.public_key(), 3);
        if cookie.is_some() {
            break;
        }
    }
    stranger.solve(&cookie.expect("B demands cookies under load, through DERP too"));
    let with_mac2 = stranger.initiation();
    let before = b.engine.drops().clone();
    for _ in 0..1000 {
        b.engine.handle_derp_datagram(now, HOME, stranger.public_key(), &with_mac2, &mut b.out);
    }
    let limited = b.engine.drops().handshake_rate_limited - before.handshake_rate_limited;
    assert!(limited >= 990, "the flooding key is held to its share: {limited} of 1000 limited");
    // A, relayed by the same region: a cookie round, then its retry is answered.
    b.out.derp.clear();
    b.engine.handle_derp_datagram(now, HOME, key_of(&a), &force_initiation(&mut a), &mut b.out);
    let cookie = sent_to(&b, key_of(&a), 3).expect("B is still under load: a cookie reply first");
    let mut out = vec![0u8; 256];
    session_of(&mut a).decapsulate(None, &cookie, &mut out);
    b.out.derp.clear();
    b.engine.handle_derp_datagram(now, HOME, key_of(&a), &force_initiation(&mut a), &mut b.out);
    assert!(sent_to(&b, key_of(&a), 2).is_some(), "A's handshake is answered: {:?}", b.out.derp);
}

// Disco: two engines that know each other's disco keys, as control tells them.

/// The disco private key [`environment`] gives an engine with `index_seed`.
fn disco_private(index_seed: u32) -> PrivateKey {
    environment(Instant::now(), index_seed).disco_key
}

/// A and B with each other's disco keys, endpoints and home DERP region 7, as a control server
/// would describe them; neither has proven any path yet.
fn disco_pair(now: Instant) -> (Node, Node) {
    let (mut a, mut b) = pair(now);
    let keys = [disco_private(0x0a_0000).public_key(), disco_private(0x0b_0000).public_key()];
    let (a_addr, b_addr) = (a.addr, b.addr);
    for (node, peer_disco, peer_addr) in [(&mut a, keys[1], b_addr), (&mut b, keys[0], a_addr)] {
        let mut map = node.engine.netmap().clone();
        map.peers[0].disco_key = Some(peer_disco);
        map.peers[0].endpoints = vec![peer_addr];
        map.peers[0].derp_region = Some(7);
        node.engine.apply_netmap(map, now);
        node.engine.set_own_endpoints(vec![node.addr]);
    }
    (a, b)
}

fn only_peer_index(node: &Node) -> u32 {
    *node.engine.peers.keys().next().unwrap()
}

fn path_of(node: &Node, now: Instant) -> Path {
    node.engine.peers[&only_peer_index(node)].path_for(now)
}

/// What `node` sent through DERP since the last call: (region, to, packet).
fn drain_derp(node: &mut Node) -> Vec<(RegionId, PublicKey, Vec<u8>)> {
    std::mem::take(&mut node.out.derp)
}

#[test]
fn disco_ping_and_pong_prove_a_direct_path() {
    let now = Instant::now();
    let (mut a, mut b) = disco_pair(now);
    assert_eq!(path_of(&a, now), Path::Derp(7), "nothing proven: the home DERP");
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    let pings: Vec<_> =
        a.out.udp.iter().filter(|(_, d)| crate::disco::looks_like_disco(d)).collect();
    assert_eq!(pings.len(), 1, "one discovery ping to B's only candidate");
    let derp = drain_derp(&mut a);
    assert_eq!(derp.len(), 2, "the handshake initiation and a CallMeMaybe via DERP: {derp:?}");
    assert!(derp
        .iter()
        .all(|d| d.0 == 7 && d.1 == b.engine.netmap().self_node.private_key.public_key()));
    let later = now + Duration::from_millis(30);
    exchange(&mut a, &mut b, later);
    assert_eq!(path_of(&a, later), Path::Udp(b.addr));
    assert_eq!(current_endpoint(&a, later), b.addr.to_string());
    // WireGuard now goes direct: the queued packet crosses once the handshake is retried there.
    a.engine.handle_tun_packet(later, &echo("100.64.0.1", "100.64.0.2", 2), &mut a.out);
    let retry = force_initiation(&mut a);
    b.engine.handle_datagram(later, a.addr, &retry, &mut b.out);
    exchange(&mut a, &mut b, later);
    assert!(!b.out.tun.is_empty(), "data crossed on the direct path");
    let status = a.engine.status(later, true);
    let peer = status.peer.values().next().unwrap();
    assert!(peer.active && peer.tx_bytes > 0);
}

#[test]
fn a_pong_from_elsewhere_or_under_another_key_proves_nothing() {
    let now = Instant::now();
    let (mut a, mut b) = disco_pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    let (_, ping) = a.out.udp.remove(0);
    b.engine.handle_datagram(now, a.addr, &ping, &mut b.out);
    let (to, pong) = b.out.udp.pop().expect("B answers the ping");
    assert_eq!(to, a.addr);
    // The genuine pong, delivered from an address A never pinged.
    a.engine.handle_datagram(now, attacker(), &pong, &mut a.out);
    assert_eq!(path_of(&a, now), Path::Derp(7));
    assert_eq!(a.engine.drops().disco_invalid, 1);
    // A pong claiming B's disco key but sealed by someone else's.
    let eve = crate::disco::DiscoKey::from_private(PrivateKey([0xee; 32]));
    let mut forged = eve
        .session(disco_private(0x0a_0000).public_key())
        .seal(&[1; 24], &crate::disco::Message::Pong(crate::disco::Pong::new([0; 12], b.addr)));
    let b_disco = disco_private(0x0b_0000).public_key();
    forged[6..38].copy_from_slice(&b_disco.0);
    a.engine.handle_datagram(now, b.addr, &forged, &mut a.out);
    assert_eq!(a.engine.drops().disco_invalid, 2);
    // Under its own key, eve is no peer.
    let unknown = eve
        .session(disco_private(0x0a_0000).public_key())
        .seal(&[2; 24], &crate::disco::Message::Pong(crate::disco::Pong::new([0; 12], b.addr)));
    a.engine.handle_datagram(now, b.addr, &unknown, &mut a.out);
    assert_eq!(a.engine.drops().disco_unknown_sender, 1);
    assert_eq!(path_of(&a, now), Path::Derp(7));
    // The real pong from the real address still works.
    a.engine.handle_datagram(now, b.addr, &pong, &mut a.out);
    assert_eq!(path_of(&a, now), Path::Udp(b.addr));
}

#[test]
fn the_direct_path_expires_without_pongs_and_comes_back_with_them() {
    let mut now = Instant::now();
    let (mut a, mut b) = disco_pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    exchange(&mut a, &mut b, now);
    assert_eq!(path_of(&a, now), Path::Udp(b.addr));
    // B goes silent: A keeps sending and heartbeating, but no pong comes back.
    for _ in 0..4 {
        now += Duration::from_secs(2);
        a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 2), &mut a.out);
        a.engine.handle_timeout(now, &mut a.out);
        a.out.udp.clear();
    }
    assert_eq!(path_of(&a, now), Path::Derp(7), "trust lapsed after 6.5 s without a pong");
    assert_eq!(current_endpoint(&a, now), "");
    // B answers again: the next heartbeat's pings bring the path back.
    let next = a.engine.poll_timeout().expect("still heartbeating while traffic flows");
    now = next.max(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 3), &mut a.out);
    a.engine.handle_timeout(now, &mut a.out);
    exchange(&mut a, &mut b, now);
    assert_eq!(path_of(&a, now), Path::Udp(b.addr));
}

/// Found by the path-switch lab (tests/interop/weft_paths.sh): once WireGuard had crossed the
/// direct path, a lapsed pong kept the peer on that dead UDP address forever, because the
/// WireGuard-proven endpoint outranked DERP. For a disco peer only a pong proves a path, as in
/// tailscale's magicsock.
#[test]
fn a_lapsed_direct_path_falls_back_to_derp_after_wireguard_used_it() {
    let mut now = Instant::now();
    let (mut a, mut b) = disco_pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    b.engine.handle_tun_packet(now, &echo("100.64.0.2", "100.64.0.1", 1), &mut b.out);
    exchange(&mut a, &mut b, now);
    assert_eq!(path_of(&b, now), Path::Udp(a.addr), "each side proved the path with its pings");
    // WireGuard handshakes and carries data over the proven direct path.
    let init = force_initiation(&mut a);
    b.engine.handle_datagram(now, a.addr, &init, &mut b.out);
    exchange(&mut a, &mut b, now);
    b.engine.handle_tun_packet(now, &echo("100.64.0.2", "100.64.0.1", 2), &mut b.out);
    exchange(&mut a, &mut b, now);
    assert!(!a.out.tun.is_empty(), "B's data reached A over UDP");
    assert_eq!(path_of(&a, now), Path::Udp(b.addr));
    // The direct path dies: A keeps sending and heartbeating, no pong comes back.
    for _ in 0..4 {
        now += Duration::from_secs(2);
        a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 3), &mut a.out);
        a.engine.handle_timeout(now, &mut a.out);
        a.out.udp.clear();
    }
    assert_eq!(path_of(&a, now), Path::Derp(7), "no pong for 6.5 s: back to the home DERP");
    assert_eq!(current_endpoint(&a, now), "");
}

#[test]
fn idle_disco_peers_schedule_no_wakeups() {
    let mut now = Instant::now();
    let (mut a, mut b) = disco_pair(now);
    assert_eq!(a.engine.poll_timeout(), None, "never used: nothing to wake for");
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    exchange(&mut a, &mut b, now);
    drain_derp(&mut a);
    let start = now;
    let mut wakeups = 0;
    while let Some(at) = a.engine.poll_timeout() {
        now = at;
        a.engine.handle_timeout(now, &mut a.out);
        exchange(&mut a, &mut b, now);
        wakeups += 1;
        assert!(wakeups < 1000, "the engine never goes quiet");
    }
    assert!(now - start < Duration::from_secs(600), "quiet after {:?}", now - start);
}

#[test]
fn garbled_disco_is_a_counted_drop_never_a_panic() {
    let now = Instant::now();
    let (mut a, mut b) = disco_pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    let (_, ping) = a.out.udp.remove(0);
    let mut rng = crate::testing::Rng::new(11);
    let b_disco = disco_private(0x0a_0000).public_key();
    for _ in 0..2000 {
        // The magic, often a known sender key, then anything.
        let mut junk = crate::disco::MAGIC.to_vec();
        if rng.below(2) == 0 {
            junk.extend_from_slice(&b_disco.0);
        }
        let len = rng.below(160);
        junk.extend(rng.bytes(len));
        b.engine.handle_datagram(now, a.addr, &junk, &mut b.out);
    }
    let drops = b.engine.drops();
    // Too short for a sender key, it is no disco: WireGuard's demux drops it.
    assert_eq!(drops.disco_invalid + drops.disco_unknown_sender + drops.invalid_datagram, 2000);
    assert!(drops.disco_invalid > 500 && drops.disco_unknown_sender > 500, "{drops:?}");
    assert!(b.out.udp.is_empty() && b.out.tun.is_empty());
    let mut answered = 0;
    crate::testing::shake(12, 2000, &ping, |d| {
        b.engine.handle_datagram(now, a.addr, d, &mut b.out);
        answered = b.out.udp.len();
    });
    assert!(b.out.tun.is_empty());
    assert!(answered <= 16, "pongs stay within the per-peer budget: {answered}");
}

#[test]
fn call_me_maybe_counts_only_over_derp_from_the_peer_itself() {
    let now = Instant::now();
    let (mut a, mut b) = disco_pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    let a_key = a.engine.netmap().self_node.private_key.public_key();
    let call = drain_derp(&mut a)
        .into_iter()
        .find(|d| crate::disco::looks_like_disco(&d.2))
        .expect("A's CallMeMaybe");
    // Over UDP it proves nothing about who sent it: dropped.
    b.engine.handle_datagram(now, a.addr, &call.2, &mut b.out);
    assert_eq!(b.engine.drops().disco_invalid, 1);
    assert!(b.out.udp.is_empty());
    // Over DERP from another node than the disco key's owner: dropped too.
    let stranger = PrivateKey([0x5a; 32]).public_key();
    b.engine.handle_disco_via_derp(now, 7, stranger, &call.2, &mut b.out);
    assert_eq!(b.engine.drops().disco_invalid, 2);
    assert!(b.out.udp.is_empty());
    // From A over DERP: B pings the endpoints A listed, at once.
    b.engine.handle_disco_via_derp(now, 7, a_key, &call.2, &mut b.out);
    let pinged: Vec<SocketAddr> = b.out.udp.iter().map(|(to, _)| *to).collect();
    assert_eq!(pinged, vec![a.addr]);
    assert!(drain_derp(&mut b).is_empty(), "no CallMeMaybe back");
    exchange(&mut a, &mut b, now);
    assert_eq!(path_of(&b, now), Path::Udp(a.addr), "A's pong proved B's path");
}

#[test]
fn a_ping_over_derp_is_answered_over_derp_naming_the_region() {
    let now = Instant::now();
    let (mut a, mut b) = disco_pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    let (_, ping) = a.out.udp.remove(0);
    let a_key = a.engine.netmap().self_node.private_key.public_key();
    b.engine.handle_disco_via_derp(now, 7, a_key, &ping, &mut b.out);
    assert!(b.out.udp.is_empty());
    let pong = drain_derp(&mut b).pop().expect("a pong via DERP");
    assert_eq!((pong.0, pong.1), (7, a_key));
    let session = crate::disco::DiscoKey::from_private(disco_private(0x0a_0000))
        .session(disco_private(0x0b_0000).public_key());
    match session.open(&pong.2).unwrap() {
        crate::disco::Message::Pong(p) => assert_eq!(p.src().to_string(), "127.3.3.40:7"),
        other => panic!("not a pong: {other:?}"),
    }
}

/// A TCP segment from `src` to `dst` with `flags` and sequence number `seq`.
fn tcp_segment(src: &str, dst: &str, flags: u8, seq: u32) -> Vec<u8> {
    let mut packet = crate::packet::test_packets::tcp(src, dst, flags);
    let at = IpHeader::parse(&packet).unwrap().payload_offset;
    packet[at + 4..at + 8].copy_from_slice(&seq.to_be_bytes());
    packet
}

const SYN: u8 = crate::packet::wire::tcp::flags::SYN;
const ACK: u8 = crate::packet::wire::tcp::flags::ACK;
const RST: u8 = crate::packet::wire::tcp::flags::RST;

/// B's control denies everything inbound.
fn deny_all_inbound(node: &mut Node, now: Instant) {
    let mut map = node.engine.netmap().clone();
    map.packet_filter = Some(Vec::new());
    node.engine.apply_netmap(map, now);
}

fn is_tsmp(packet: &[u8]) -> bool {
    crate::packet::tsmp::carries_tsmp(packet)
}

#[test]
fn tsmp_ping_is_answered_by_the_peers_engine_and_reaches_no_tun() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    let id = a
        .engine
        .start_ping_of(
            now,
            ping::PingKind::Tsmp,
            "100.64.0.2".parse().unwrap(),
            Duration::from_secs(5),
            &mut a.out,
        )
        .unwrap();
    exchange(&mut a, &mut b, now);
    assert!(b.out.tun.is_empty(), "B's engine answered, not its OS");
    assert!(a.out.tun.is_empty(), "the pong never reaches A's OS");
    let (done, result) = a.engine.poll_ping().expect("the pong completed the ping");
    assert_eq!((done, result.err.as_str()), (id, ""));
    assert_eq!(result.endpoint, b.addr.to_string());
    // An ICMP ping with the same sequence is still waiting for its own kind of answer.
    assert!(a.engine.poll_ping().is_none());
}

#[test]
fn tsmp_from_the_os_or_garbled_from_a_peer_is_dropped_and_counted() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    let ping = crate::packet::tsmp::ping(
        "100.64.0.1".parse().unwrap(),
        "100.64.0.2".parse().unwrap(),
        1,
        [0; 8],
    )
    .unwrap();
    a.engine.handle_tun_packet(now, &ping, &mut a.out);
    assert!(a.out.udp.is_empty(), "the OS may not send TSMP into the tunnel");
    assert_eq!(a.engine.drops().outbound_tsmp, 1);
    // A peer's TSMP of an unknown type, and a fragment, arrive over a real session.
    let unknown = crate::packet::test_packets::ip("100.64.0.1", "100.64.0.2", 99, b"z0123456789");
    let fragment = crate::packet::test_packets::fragment_v4(ping.clone(), 0, true);
    for packet in [&unknown, &fragment] {
        a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
        exchange(&mut a, &mut b, now);
        let index = *a.engine.by_key.values().next().unwrap();
        a.engine.encrypt_to(index, now, packet, &mut a.out);
        exchange(&mut a, &mut b, now);
    }
    assert!(b.out.tun.iter().all(|p| !is_tsmp(p)), "no TSMP reached B's OS");
    assert_eq!(b.engine.drops().malformed_tsmp, 2);
}

#[test]
fn a_syn_the_peer_filters_becomes_a_reset_for_the_local_connect() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    deny_all_inbound(&mut b, now);
    let syn = tcp_segment("100.64.0.1:40000", "100.64.0.2:22", SYN, 7000);
    a.engine.handle_tun_packet(now, &syn, &mut a.out);
    exchange(&mut a, &mut b, now);
    assert!(b.out.tun.is_empty(), "the SYN was filtered");
    assert_eq!(b.engine.drops().filtered, 1);
    assert_eq!(a.out.tun.len(), 1, "A's OS got exactly one packet: {:?}", a.out.tun);
    let reset = &a.out.tun[0];
    assert!(!is_tsmp(reset));
    let view = crate::packet::transport::TransportView::parse(reset).unwrap();
    assert_eq!(view.ip.src.to_string(), "100.64.0.2");
    assert_eq!(view.ip.dst.to_string(), "100.64.0.1");
    let tcp = crate::packet::wire::TcpSegment::new_checked(&reset[20..]).unwrap();
    assert_eq!((tcp.src_port(), tcp.dst_port()), (22, 40000));
    assert_eq!((tcp.flags(), tcp.ack_number()), (RST | ACK, 7001), "acknowledges the SYN");

    // A refusal of a connect A is not opening (this one was reset already) changes nothing.
    a.out.tun.clear();
    let notice = crate::packet::tsmp::rejection(
        "100.64.0.1:40000".parse().unwrap(),
        "100.64.0.2:22".parse().unwrap(),
        6,
        crate::packet::tsmp::RejectReason::ACL,
    )
    .unwrap();
    let index = *b.engine.by_key.values().next().unwrap();
    b.engine.encrypt_to(index, now, &notice, &mut b.out);
    exchange(&mut a, &mut b, now);
    assert!(a.out.tun.is_empty(), "{:?}", a.out.tun);
}

#[test]
fn shields_up_drops_new_inbound_flows_but_passes_replies_to_our_own() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    b.engine.set_shields_up(true);
    assert!(b.engine.status(now, true).shields_up);
    // A opens TCP, UDP and ICMP flows to B: all refused.
    let syn = tcp_segment("100.64.0.1:40000", "100.64.0.2:22", SYN, 100);
    let datagram = crate::packet::test_packets::udp("100.64.0.1:5000", "100.64.0.2:53");
    for packet in [syn, datagram, echo("100.64.0.1", "100.64.0.2", 1)] {
        a.engine.handle_tun_packet(now, &packet, &mut a.out);
        exchange(&mut a, &mut b, now);
    }
    assert!(b.out.tun.is_empty(), "nothing new got in: {:?}", b.out.tun);
    assert_eq!((b.engine.drops().shields_up, b.engine.drops().filtered), (3, 0));
    assert_eq!(a.out.tun.len(), 1, "A's connect was reset at once");
    assert_eq!(a.engine.drops().shields_up, 0);
    // B's own flows to A: the replies get in.
    a.out.tun.clear();
    let b_syn = tcp_segment("100.64.0.2:41000", "100.64.0.1:80", SYN, 9);
    let b_query = crate::packet::test_packets::udp("100.64.0.2:6000", "100.64.0.1:53");
    for packet in [&b_syn, &b_query] {
        b.engine.handle_tun_packet(now, packet, &mut b.out);
    }
    exchange(&mut a, &mut b, now);
    assert_eq!(a.out.tun.len(), 2);
    let syn_ack = tcp_segment("100.64.0.1:80", "100.64.0.2:41000", SYN | ACK, 77);
    let answer = crate::packet::test_packets::udp("100.64.0.1:53", "100.64.0.2:6000");
    let ping_id = b
        .engine
        .start_ping(now, "100.64.0.1".parse().unwrap(), Duration::from_secs(5), &mut b.out)
        .unwrap();
    exchange(&mut a, &mut b, now);
    let echo_reply = crate::packet::icmp::reply_to(a.out.tun.last().unwrap());
    for packet in [&syn_ack, &answer, &echo_reply] {
        a.engine.handle_tun_packet(now, packet, &mut a.out);
    }
    exchange(&mut a, &mut b, now);
    assert_eq!(b.out.tun, vec![syn_ack, answer], "replies to B's own flows passed");
    assert_eq!(b.engine.poll_ping().map(|(id, r)| (id, r.err)), Some((ping_id, String::new())));
    assert_eq!(b.engine.drops().shields_up, 3, "no reply was counted as a drop");
    let status = b.engine.status(now, true);
    assert_eq!(status.drops.get("ShieldsUp"), Some(&3));
}

/// B's control allows everything and jails A: A's packets are judged as with shields up.
fn jail_in_allow_all_tailnet(node: &mut Node, now: Instant) {
    let mut map = node.engine.netmap().clone();
    let allow_all =
        r#"[{"SrcIPs":["*"],"DstPorts":[{"IP":"*","Ports":{"First":0,"Last":65535}}]}]"#;
    map.packet_filter = Some(serde_json::from_str(allow_all).unwrap());
    map.peers[0].jailed = true;
    node.engine.apply_netmap(map, now);
}

#[test]
fn a_jailed_peer_may_answer_our_flows_but_open_none_of_its_own() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    jail_in_allow_all_tailnet(&mut b, now);
    let syn = tcp_segment("100.64.0.1:40000", "100.64.0.2:22", SYN, 100);
    for packet in [&syn, &echo("100.64.0.1", "100.64.0.2", 1)] {
        a.engine.handle_tun_packet(now, packet, &mut a.out);
        exchange(&mut a, &mut b, now);
    }
    assert!(b.out.tun.is_empty(), "A opened nothing: {:?}", b.out.tun);
    let drops = b.engine.drops();
    assert_eq!((drops.jailed, drops.shields_up, drops.filtered), (2, 0, 0));
    assert_eq!(b.engine.status(now, true).drops.get("Jailed"), Some(&2));
    assert_eq!(a.out.tun.len(), 1, "the refusal reset A's connect: {:?}", a.out.tun);
    assert!(!b.engine.shields_up(), "the jail is A's alone");

    // B's own connect and ping to A go out, and A's answers come in.
    a.out.tun.clear();
    let b_syn = tcp_segment("100.64.0.2:41000", "100.64.0.1:80", SYN, 9);
    b.engine.handle_tun_packet(now, &b_syn, &mut b.out);
    let ping_id = b
        .engine
        .start_ping(now, "100.64.0.1".parse().unwrap(), Duration::from_secs(5), &mut b.out)
        .unwrap();
    exchange(&mut a, &mut b, now);
    assert_eq!(a.out.tun.len(), 2, "B's SYN and echo request reached A: {:?}", a.out.tun);
    let syn_ack = tcp_segment("100.64.0.1:80", "100.64.0.2:41000", SYN | ACK, 77);
    let echo_reply = crate::packet::icmp::reply_to(&a.out.tun[1]);
    for packet in [&syn_ack, &echo_reply] {
        a.engine.handle_tun_packet(now, packet, &mut a.out);
    }
    exchange(&mut a, &mut b, now);
    assert_eq!(b.out.tun, vec![syn_ack], "A's SYN-ACK passed");
    assert_eq!(b.engine.poll_ping().map(|(id, r)| (id, r.err)), Some((ping_id, String::new())));
    assert_eq!(b.engine.drops().jailed, 2, "no reply was dropped");

    // Control frees A with a delta of A alone: its SYN gets in.
    let mut freed = b.engine.netmap().peers[0].clone();
    freed.jailed = false;
    b.engine.apply_peer_delta(PeerDelta { upsert: vec![freed], remove: vec![] }, now);
    b.out.tun.clear();
    a.engine.handle_tun_packet(now, &syn, &mut a.out);
    exchange(&mut a, &mut b, now);
    assert_eq!(b.out.tun, vec![syn], "a free peer's SYN passes the allow-all filter");
}

#[test]
fn refusals_name_the_reason_and_answer_only_syns() {
    use crate::filter::DropReason;
    use crate::packet::tsmp::{RejectReason, TsmpMessage, TsmpPacket};
    let now = Instant::now();
    let (_a, mut b) = pair(now);
    let index = *b.engine.by_key.values().next().unwrap();
    let reason_of = |packet: &[u8]| match TsmpPacket::parse(packet).unwrap().message {
        TsmpMessage::Rejected(r) => (r.reason, r.protocol, r.src_port, r.dst_port),
        other => panic!("{other:?}"),
    };
    let syn = tcp_segment("100.64.0.1:40000", "100.64.0.2:22", SYN, 1);
    b.engine.refuse(index, &syn, DropReason::NoRule);
    // A jailed peer's SYN, with this node's shields down: still "shields".
    b.engine.refuse(index, &syn, DropReason::ShieldsUp);
    b.engine.set_shields_up(true);
    b.engine.refuse(index, &syn, DropReason::ShieldsUp);
    // Not-local is a filter drop too, but with shields up tailscaled says "shields".
    b.engine.refuse(index, &syn, DropReason::NotLocal);
    let ack = tcp_segment("100.64.0.1:40000", "100.64.0.2:22", ACK, 1);
    b.engine.refuse(index, &ack, DropReason::ShieldsUp);
    let datagram = crate::packet::test_packets::udp("100.64.0.1:5000", "100.64.0.2:53");
    b.engine.refuse(index, &datagram, DropReason::ShieldsUp);
    let reasons: Vec<_> = b.engine.answers.iter().map(|(_, _, p)| reason_of(p)).collect();
    assert_eq!(
        reasons,
        [
            (RejectReason::ACL, 6, 40000, 22),
            (RejectReason::SHIELDS_UP, 6, 40000, 22),
            (RejectReason::SHIELDS_UP, 6, 40000, 22),
            (RejectReason::SHIELDS_UP, 6, 40000, 22)
        ]
    );
    let (_, source, notice) = &b.engine.answers[0];
    assert_eq!(source.to_string(), "100.64.0.2", "from the refused destination");
    assert_eq!(IpHeader::parse(notice).unwrap().dst.to_string(), "100.64.0.1");
}

#[test]
fn an_ipv6_syn_is_refused_and_reset_too() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    for (node, own, peer) in [(&mut a, "fd7a::1", "fd7a::2"), (&mut b, "fd7a::2", "fd7a::1")] {
        let mut map = node.engine.netmap().clone();
        map.self_node.addresses.push(own.parse().unwrap());
        map.peers[0].allowed_ips.push(peer.parse().unwrap());
        node.engine.apply_netmap(map, now);
    }
    deny_all_inbound(&mut b, now);
    let syn = tcp_segment("[fd7a::1]:40000", "[fd7a::2]:443", SYN, 10);
    a.engine.handle_tun_packet(now, &syn, &mut a.out);
    exchange(&mut a, &mut b, now);
    assert!(b.out.tun.is_empty());
    let [reset] = a.out.tun.as_slice() else { panic!("{:?}", a.out.tun) };
    assert_eq!(IpHeader::parse(reset).unwrap().src.to_string(), "fd7a::2");
    let tcp = crate::packet::wire::TcpSegment::new_checked(&reset[40..]).unwrap();
    assert_eq!((tcp.src_port(), tcp.dst_port(), tcp.flags()), (443, 40000, RST | ACK));
    assert_eq!(tcp.ack_number(), 11);
}

// --- Relayed through DERP -------------------------------------------------------------------

const HOME: RegionId = 7;

/// Control's view of a Tailscale peer: homed on DERP region [`HOME`], with a candidate UDP
/// endpoint that nothing has proven.
fn relayed_netmap(own: &PrivateKey, ip: &str, peer: &PrivateKey, peer_ip: &str) -> Netmap {
    let mut netmap = netmap(own, ip, peer, peer_ip, Some("198.51.100.9:41641".parse().unwrap()));
    netmap.peers[0].derp_region = Some(HOME);
    let region = crate::control::tailcfg::DerpRegion {
        region_id: HOME,
        region_code: "test".into(),
        ..Default::default()
    };
    netmap.derp_map = Some(crate::netmap::DerpMap {
        regions: [(HOME, region)].into_iter().collect(),
        ..Default::default()
    });
    netmap
}

fn relayed_pair(now: Instant) -> (Node, Node) {
    let (ka, kb) = (PrivateKey::generate().unwrap(), PrivateKey::generate().unwrap());
    let node = |own: &PrivateKey, ip, peer: &PrivateKey, peer_ip, seed, addr: &str| Node {
        engine: Engine::new(relayed_netmap(own, ip, peer, peer_ip), now, environment(now, seed)),
        addr: addr.parse().unwrap(),
        out: Recorder::default(),
    };
    (
        node(&ka, "100.64.0.1", &kb, "100.64.0.2", 0x0a_0000, "192.0.2.1:1000"),
        node(&kb, "100.64.0.2", &ka, "100.64.0.1", 0x0b_0000, "192.0.2.2:2000"),
    )
}

fn key_of(node: &Node) -> PublicKey {
    node.engine.netmap().self_node.private_key.public_key()
}

/// A relay in memory: delivers what each node sent to DERP, by key, until quiet. Nothing may
/// go over UDP.
fn relay(a: &mut Node, b: &mut Node, now: Instant) {
    for _ in 0..10 {
        assert!(a.out.udp.is_empty() && b.out.udp.is_empty(), "nothing goes over UDP");
        let from_a: Vec<_> = a.out.derp.drain(..).collect();
        let from_b: Vec<_> = b.out.derp.drain(..).collect();
        if from_a.is_empty() && from_b.is_empty() {
            return;
        }
        let (ka, kb) = (key_of(a), key_of(b));
        for (region, to, d) in from_a {
            assert_eq!((region, to), (HOME, kb));
            b.engine.handle_derp_datagram(now, region, ka, &d, &mut b.out);
        }
        for (region, to, d) in from_b {
            assert_eq!((region, to), (HOME, ka));
            a.engine.handle_derp_datagram(now, region, kb, &d, &mut a.out);
        }
    }
    panic!("the relay never settled");
}

fn only_peer(node: &Node) -> &PeerState {
    node.engine.peers.values().next().unwrap()
}

#[test]
fn path_for_prefers_a_trusted_endpoint_then_the_home_relay() {
    let now = Instant::now();
    // A static config's endpoint is configured, so trusted.
    let (a, b) = pair(now);
    assert_eq!(only_peer(&a).path_for(now), Path::Udp(b.addr));
    assert_eq!(only_peer(&b).path_for(now), Path::None, "no endpoint, no relay");
    // Control's unproven candidate loses to the peer's home relay.
    let (a, _) = relayed_pair(now);
    assert_eq!(only_peer(&a).path_for(now), Path::Derp(HOME));
}

#[test]
fn handshake_and_data_cross_a_relay_both_ways_without_moving_endpoints() {
    let now = Instant::now();
    let (mut a, mut b) = relayed_pair(now);
    let packet = echo("100.64.0.1", "100.64.0.2", 1);
    a.engine.handle_tun_packet(now, &packet, &mut a.out);
    assert_eq!(a.out.derp.len(), 1, "the initiation goes to the relay");
    relay(&mut a, &mut b, now);
    assert_eq!(b.out.tun, vec![packet], "the queued packet crossed after the handshake");
    let reply = echo("100.64.0.2", "100.64.0.1", 2);
    b.engine.handle_tun_packet(now, &reply, &mut b.out);
    relay(&mut a, &mut b, now);
    assert_eq!(a.out.tun, vec![reply]);
    for node in [&a, &b] {
        let peer = only_peer(node);
        assert_eq!(peer.path_for(now), Path::Derp(HOME), "relayed packets prove no UDP path");
        assert!(!peer.endpoint_proven);
        let status = node.engine.status(now, true);
        let shown = status.peer.values().next().unwrap();
        assert_eq!(shown.relay, "test");
        assert_eq!(shown.cur_addr, "", "no direct address in use");
        assert!(shown.rx_bytes > 0 && shown.tx_bytes > 0);
    }
}

#[test]
fn a_new_disco_key_voids_the_proven_path() {
    let now = Instant::now();
    let (mut a, mut b) = disco_pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    exchange(&mut a, &mut b, now);
    assert_eq!(path_of(&a, now), Path::Udp(b.addr));
    // B restarted: control announces its new disco key.
    let mut map = a.engine.netmap().clone();
    map.peers[0].disco_key = Some(PrivateKey([0x77; 32]).public_key());
    a.engine.apply_netmap(map, now);
    assert_eq!(path_of(&a, now), Path::Derp(7));
    // Packets under the old key are now from no peer.
    b.out.udp.clear();
    a.out.udp.clear();
    b.engine.handle_tun_packet(now, &echo("100.64.0.2", "100.64.0.1", 2), &mut b.out);
    for (_, d) in b.out.udp.drain(..).filter(|(_, d)| crate::disco::looks_like_disco(d)) {
        a.engine.handle_datagram(now, b.addr, &d, &mut a.out);
    }
    assert!(a.engine.drops().disco_unknown_sender >= 1);
}

#[test]
fn a_proven_udp_packet_takes_over_from_the_relay() {
    let now = Instant::now();
    let (mut a, mut b) = relayed_pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    relay(&mut a, &mut b, now);
    // B's data arrives over UDP this time: authenticated, so A may answer there.
    b.engine.handle_tun_packet(now, &echo("100.64.0.2", "100.64.0.1", 2), &mut b.out);
    let (_, _, datagram) = b.out.derp.pop().unwrap();
    a.engine.handle_datagram(now, b.addr, &datagram, &mut a.out);
    assert_eq!(a.out.tun.len(), 1);
    assert_eq!(only_peer(&a).path_for(now), Path::Udp(b.addr));
}

#[test]
fn garbage_from_a_relay_is_counted_not_trusted() {
    let now = Instant::now();
    let (mut a, b) = relayed_pair(now);
    a.engine.handle_derp_datagram(now, HOME, key_of(&b), b"\x04garbage", &mut a.out);
    a.engine.handle_derp_datagram(now, HOME, key_of(&b), &[], &mut a.out);
    assert_eq!(a.engine.drops().invalid_datagram, 2);
    assert!(a.out.derp.is_empty() && a.out.udp.is_empty() && a.out.tun.is_empty());
    assert_eq!(only_peer(&a).path_for(now), Path::Derp(HOME));
}

#[test]
fn a_home_relay_learned_later_beats_the_unproven_candidate() {
    // Control often lists a Tailscale peer before it has reported its home region.
    let now = Instant::now();
    let (ka, kb) = (PrivateKey::generate().unwrap(), PrivateKey::generate().unwrap());
    let mut netmap = relayed_netmap(&ka, "100.64.0.1", &kb, "100.64.0.2");
    netmap.peers[0].disco_key = Some(PrivateKey::generate().unwrap().public_key());
    let homed = netmap.clone();
    netmap.peers[0].derp_region = None;
    let mut engine = Engine::new(netmap, now, environment(now, 1));
    let candidate = engine.peers.values().next().unwrap().endpoint.unwrap();
    assert_eq!(engine.peers.values().next().unwrap().path_for(now), Path::Udp(candidate));
    engine.apply_netmap(homed, now);
    assert_eq!(engine.peers.values().next().unwrap().path_for(now), Path::Derp(HOME));
}

// `weft ping`'s disco pings: the first pong answers, naming its path.

fn disco_ping(node: &mut Node, now: Instant) -> Result<ping::PingId, String> {
    let target = "100.64.0.2".parse().unwrap();
    node.engine.start_ping_of(
        now,
        ping::PingKind::Disco,
        target,
        Duration::from_secs(5),
        &mut node.out,
    )
}

/// Gives `node` the DERP map naming region 7 `code`.
fn name_region_7(node: &mut Node, code: &str, now: Instant) {
    let mut map = node.engine.netmap();
    let region = crate::control::tailcfg::DerpRegion {
        region_id: 7,
        region_code: code.into(),
        ..Default::default()
    };
    map.derp_map = Some(crate::netmap::DerpMap {
        regions: [(7, region)].into_iter().collect(),
        ..Default::default()
    });
    node.engine.apply_netmap(map, now);
}

#[test]
fn a_disco_ping_answered_directly_names_the_endpoint_and_proves_the_path() {
    let now = Instant::now();
    let (mut a, mut b) = disco_pair(now);
    let id = disco_ping(&mut a, now).unwrap();
    assert_eq!(a.out.udp.len(), 1, "one ping to B's only candidate");
    let derp = drain_derp(&mut a);
    assert!(derp.iter().any(|(region, _, _)| *region == 7), "and one through B's home DERP");
    let later = now + Duration::from_millis(3);
    exchange(&mut a, &mut b, later);
    let (done, result) = a.engine.poll_ping().expect("the direct pong answered");
    assert_eq!(done, id);
    assert_eq!((result.err.as_str(), result.endpoint.clone()), ("", b.addr.to_string()));
    assert_eq!((result.derp_region_id, result.node_ip.as_str()), (0, "100.64.0.2"));
    assert!((result.latency_seconds - 0.003).abs() < 1e-6);
    assert_eq!(path_of(&a, later), Path::Udp(b.addr), "the user's ping proved the path too");
    let status = a.engine.status(later, true);
    assert_eq!(status.peer.values().next().unwrap().cur_addr, b.addr.to_string());
    // With a trusted path, the next ping goes there alone: nothing through DERP.
    disco_ping(&mut a, later).unwrap();
    assert!(drain_derp(&mut a).iter().all(|(_, _, d)| !crate::disco::looks_like_disco(d)));
    assert_eq!(a.out.udp.len(), 1);
}

#[test]
fn a_disco_ping_answered_through_derp_names_the_region_code() {
    let now = Instant::now();
    let (mut a, mut b) = disco_pair(now);
    name_region_7(&mut a, "fra", now);
    let id = disco_ping(&mut a, now).unwrap();
    a.out.udp.clear(); // UDP between the nodes is lost.
    let (ka, kb) = (key_of(&a), key_of(&b));
    for (region, _, datagram) in drain_derp(&mut a) {
        b.engine.handle_derp_datagram(now, region, ka, &datagram, &mut b.out);
    }
    let later = now + Duration::from_millis(40);
    for (region, _, datagram) in drain_derp(&mut b) {
        a.engine.handle_derp_datagram(later, region, kb, &datagram, &mut a.out);
    }
    let (done, result) = a.engine.poll_ping().expect("the pong through DERP answered");
    assert_eq!(done, id);
    assert_eq!((result.derp_region_id, result.derp_region_code.as_str()), (7, "fra"));
    assert_eq!((result.endpoint.as_str(), result.err.as_str()), ("", ""));
    assert!((result.latency_seconds - 0.040).abs() < 1e-6);
    assert_eq!(path_of(&a, later), Path::Derp(7), "a relayed pong proves no direct path");
    let status = a.engine.status(later, true);
    let peer = status.peer.values().next().unwrap();
    assert_eq!((peer.cur_addr.as_str(), peer.relay.as_str()), ("", "fra"));
    assert!(peer.active, "a ping is traffic to the peer, as tailscale counts it");
}

#[test]
fn a_disco_ping_falls_back_to_icmp_for_plain_wireguard_and_times_out_unanswered() {
    let now = Instant::now();
    // A plain WireGuard peer cannot answer disco: it gets an echo through the tunnel.
    let (mut plain, mut other) = pair(now);
    disco_ping(&mut plain, now).unwrap();
    exchange(&mut plain, &mut other, now);
    let request = other.out.tun.pop().expect("an echo request reached the peer's kernel");
    assert_eq!(crate::packet::IpHeader::parse(&request).unwrap().protocol, 1, "ICMP");
    // A pong under another transaction id, or unanswered pings, finish only by the timeout.
    let (mut a, _b) = disco_pair(now);
    disco_ping(&mut a, now).unwrap();
    a.engine.handle_timeout(now + Duration::from_secs(6), &mut a.out);
    let (_, result) = a.engine.poll_ping().unwrap();
    assert!(result.timed_out(), "{result:?}");
}

#[test]
fn an_echo_answered_through_derp_names_the_region_not_a_magic_address() {
    let now = Instant::now();
    let (mut a, mut b) = relayed_pair(now);
    let id = a
        .engine
        .start_ping(now, "100.64.0.2".parse().unwrap(), Duration::from_secs(5), &mut a.out)
        .unwrap();
    relay(&mut a, &mut b, now);
    let request = b.out.tun.pop().expect("the echo request crossed the relay");
    b.engine.handle_tun_packet(now, &crate::packet::icmp::reply_to(&request), &mut b.out);
    relay(&mut a, &mut b, now);
    let (done, result) = a.engine.poll_ping().expect("the reply came back through the relay");
    assert_eq!(done, id);
    assert_eq!((result.derp_region_id, result.derp_region_code.as_str()), (HOME, "test"));
    assert_eq!(result.endpoint, "", "no 127.3.3.40 address for the CLI to print");
}
