//! The engine at tailnet scale: a 10,000-peer netmap loads and routes every peer's addresses,
//! and deltas change exactly the peers they name. Correctness only; how fast is for
//! `crate::scale_bench` (run by `make bench`).

use super::scale_fixtures::{key, v4, v6};
use super::tests::environment;
use super::*;
use crate::keys::{PresharedKey, PrivateKey, PublicKey};
use crate::netmap::{Peer, PeerDelta, SelfNode};
use std::net::IpAddr;

/// A tailnet peer on the default port.
fn peer(i: u32) -> Peer {
    super::scale_fixtures::peer(i, 41641)
}

fn netmap_of(peers: impl IntoIterator<Item = Peer>) -> Netmap {
    let me = SelfNode {
        addresses: vec!["100.127.255.254/32".parse().unwrap()],
        ..SelfNode::new(PrivateKey([9; 32]))
    };
    let mut peers: Vec<Peer> = peers.into_iter().collect();
    peers.sort_by_key(|p| p.public_key);
    Netmap { peers, ..Netmap::new(me) }
}

fn owner(engine: &Engine, ip: IpAddr) -> Option<PublicKey> {
    let index = engine.routes.lookup(ip)?;
    Some(engine.peers[&index].config.public_key)
}

/// Asserts that each of peers `range` is in the engine and owns both its addresses.
fn assert_routed(engine: &Engine, range: std::ops::Range<u32>) {
    for i in range {
        assert_eq!(owner(engine, v4(i)), Some(key(i)), "{}", v4(i));
        assert_eq!(owner(engine, v6(i)), Some(key(i)), "{}", v6(i));
    }
}

fn engine_of(n: u32) -> Engine {
    let now = Instant::now();
    Engine::new(netmap_of((0..n).map(peer)), now, environment(now, 1))
}

#[test]
fn ten_thousand_peers_load_and_each_address_routes_to_its_peer() {
    let engine = engine_of(10_000);
    assert_eq!(engine.peer_count(), 10_000);
    assert_eq!(engine.routes().len(), 20_000);
    assert_routed(&engine, 0..10_000);
    assert_eq!(owner(&engine, v4(10_000)), None);
    assert_eq!(owner(&engine, v6(10_000)), None);
    assert_eq!(engine.netmap(), netmap_of((0..10_000).map(peer)));
}

#[test]
fn a_one_peer_delta_adds_and_removes_exactly_that_peers_routes() {
    let now = Instant::now();
    let mut engine = engine_of(1000);
    let routes_before = engine.routes();
    let mut newcomer = peer(5000);
    newcomer.allowed_ips.push("10.9.0.0/16".parse().unwrap());
    let change =
        engine.apply_peer_delta(PeerDelta { upsert: vec![newcomer], remove: Vec::new() }, now);
    assert_eq!((change.added, change.removed, change.updated), (1, 0, 0));
    assert!(change.routes_changed);
    let mut expected = routes_before.clone();
    expected.extend([Prefix::host(v4(5000)), Prefix::host(v6(5000))]);
    expected.push("10.9.0.0/16".parse().unwrap());
    expected.sort();
    assert_eq!(engine.routes(), expected);
    assert_eq!(owner(&engine, "10.9.200.1".parse().unwrap()), Some(key(5000)));
    assert_routed(&engine, 0..1000);

    let change =
        engine.apply_peer_delta(PeerDelta { upsert: Vec::new(), remove: vec![key(5000)] }, now);
    assert_eq!((change.added, change.removed, change.updated), (0, 1, 0));
    assert_eq!(engine.routes(), routes_before);
    assert_eq!(owner(&engine, v4(5000)), None);
    assert_eq!(owner(&engine, "10.9.200.1".parse().unwrap()), None);
    assert_eq!(engine.peer_count(), 1000);
    assert_routed(&engine, 0..1000);
}

#[test]
fn a_delta_that_moves_one_peers_routes_touches_no_other() {
    let now = Instant::now();
    let mut engine = engine_of(1000);
    let index_before = engine.by_key[&key(17)];
    let mut moved = peer(17);
    moved.allowed_ips = vec![Prefix::host(v4(5017)), Prefix::host(v6(17))];
    let change = engine.apply_peer_delta(PeerDelta { upsert: vec![moved], remove: vec![] }, now);
    assert_eq!((change.added, change.removed, change.updated), (0, 0, 1));
    assert!(change.routes_changed);
    assert_eq!(engine.by_key[&key(17)], index_before, "the session is kept");
    assert_eq!(owner(&engine, v4(17)), None);
    assert_eq!(owner(&engine, v4(5017)), Some(key(17)));
    assert_eq!(owner(&engine, v6(17)), Some(key(17)));
    assert_routed(&engine, 0..17);
    assert_routed(&engine, 18..1000);
    assert_eq!(engine.routes().len(), 2000);
}

#[test]
fn a_delta_with_new_key_material_replaces_the_session_and_keeps_the_routes() {
    let now = Instant::now();
    let mut engine = engine_of(100);
    let index_before = engine.by_key[&key(3)];
    let rekeyed = Peer { preshared_key: Some(Box::new(PresharedKey([1; 32]))), ..peer(3) };
    let change = engine.apply_peer_delta(PeerDelta { upsert: vec![rekeyed], remove: vec![] }, now);
    assert_eq!((change.added, change.removed, change.updated), (0, 0, 1));
    assert_ne!(engine.by_key[&key(3)], index_before, "a new session, under a new index");
    assert!(!engine.peers.contains_key(&index_before));
    assert_routed(&engine, 0..100);
    assert_eq!(engine.routes().len(), 200);
}

#[test]
fn an_unchanged_peer_in_a_delta_or_netmap_changes_nothing() {
    let now = Instant::now();
    let mut engine = engine_of(100);
    let change = engine.apply_peer_delta(PeerDelta { upsert: vec![peer(5)], remove: vec![] }, now);
    assert_eq!(change, NetmapChange::default());
    let change = engine.apply_netmap(engine.netmap(), now);
    assert_eq!(change, NetmapChange::default());
    let change =
        engine.apply_peer_delta(PeerDelta { upsert: vec![], remove: vec![key(9999)] }, now);
    assert_eq!(change, NetmapChange::default(), "an unknown key is ignored");
}

#[test]
fn a_full_netmap_and_the_same_change_as_a_delta_give_the_same_engine() {
    let now = Instant::now();
    let (mut by_netmap, mut by_delta) = (engine_of(300), engine_of(300));
    let mut changed = peer(40);
    changed.allowed_ips.push("192.168.7.0/24".parse().unwrap());
    let wanted = netmap_of((0..300).filter(|i| *i != 12).map(|i| {
        if i == 40 {
            changed.clone()
        } else {
            peer(i)
        }
    }));
    let full = by_netmap.apply_netmap(wanted.clone(), now);
    let delta =
        by_delta.apply_peer_delta(PeerDelta { upsert: vec![changed], remove: vec![key(12)] }, now);
    assert_eq!(full, delta);
    assert_eq!((full.removed, full.updated), (1, 1));
    assert_eq!(by_netmap.netmap(), wanted);
    assert_eq!(by_delta.netmap(), wanted);
    assert_eq!(by_netmap.routes(), by_delta.routes());
}

#[test]
fn a_shared_subnet_stays_routed_while_any_claimant_remains() {
    let now = Instant::now();
    let subnet: Prefix = "10.20.0.0/16".parse().unwrap();
    let with_subnet = |i| Peer { allowed_ips: vec![subnet], ..peer(i) };
    let mut engine =
        Engine::new(netmap_of([with_subnet(1), with_subnet(2)]), now, environment(now, 1));
    let first = owner(&engine, "10.20.1.1".parse().unwrap()).unwrap();
    let second = if first == key(1) { key(2) } else { key(1) };
    engine.apply_peer_delta(PeerDelta { upsert: vec![], remove: vec![first] }, now);
    assert_eq!(owner(&engine, "10.20.1.1".parse().unwrap()), Some(second));
    assert_eq!(engine.routes(), vec![subnet]);
    engine.apply_peer_delta(PeerDelta { upsert: vec![], remove: vec![second] }, now);
    assert_eq!(owner(&engine, "10.20.1.1".parse().unwrap()), None);
    assert!(engine.routes().is_empty());
}

/// The daemon re-applies the OS's routes only when this says they may have changed.
#[test]
fn only_changes_of_routes_or_own_addresses_call_for_new_os_routes() {
    let now = Instant::now();
    let mut engine = engine_of(100);
    let moved = Peer { endpoints: vec!["192.0.2.9:9".parse().unwrap()], ..peer(7) };
    let change = engine.apply_peer_delta(PeerDelta { upsert: vec![moved], remove: vec![] }, now);
    assert_eq!((change.updated, change.routes_changed), (1, false), "an endpoint moved");
    let routeless = Peer { allowed_ips: Vec::new(), ..peer(500) };
    let delta = PeerDelta { upsert: vec![routeless], remove: vec![] };
    assert!(!engine.apply_peer_delta(delta, now).routes_changed, "a peer without routes");
    let delta = PeerDelta { upsert: vec![], remove: vec![key(500)] };
    assert!(!engine.apply_peer_delta(delta, now).routes_changed);
    let mut netmap = engine.netmap();
    netmap.self_node.addresses.push("fd7a:115c:a1e0::1/128".parse().unwrap());
    assert!(engine.apply_netmap(netmap.clone(), now).routes_changed, "our own address");
    netmap.self_node.mtu += 1;
    assert!(engine.apply_netmap(netmap.clone(), now).routes_changed, "our MTU");
    netmap.self_node.cgnat_drop_disabled = true;
    assert!(engine.apply_netmap(netmap, now).routes_changed, "control's firewall attribute");
}

/// A large tailnet costs sessions only for the peers in use.
#[test]
fn of_ten_thousand_idle_peers_only_the_one_written_to_gets_a_session() {
    let now = Instant::now();
    let mut engine = engine_of(10_000);
    let sessions = |engine: &Engine| engine.peers.values().filter(|p| p.session.is_some()).count();
    assert_eq!(sessions(&engine), 0);
    let packet = crate::packet::icmp::echo_request(
        &crate::packet::icmp::Echo {
            src: "100.127.255.254".parse().unwrap(),
            dst: v4(4321),
            identifier: 1,
            sequence: 1,
        },
        b"wake",
    )
    .unwrap();
    struct Discard;
    impl PacketSink for Discard {
        fn send_udp(&mut self, _: SocketAddr, _: &[u8]) {}
        fn send_derp(&mut self, _: RegionId, _: PublicKey, _: &[u8]) {}
        fn write_tun(&mut self, _: &[u8]) {}
    }
    engine.handle_tun_packet(now, &packet, &mut Discard);
    assert_eq!(sessions(&engine), 1);
    assert!(engine.peers[&engine.by_key[&key(4321)]].session.is_some());
    let idle = now + super::lazy::IDLE_THRESHOLD;
    engine.handle_timeout(idle, &mut Discard);
    assert_eq!(sessions(&engine), 0, "trimmed again once idle");
}

/// Packets held for peers coming back are bounded across all peers, not only per peer: a
/// local program writing to every address of a large tailnet of unreachable peers must not
/// make the daemon hold 32 packets for each.
#[test]
fn packets_held_for_waking_peers_are_bounded_across_peers() {
    struct Discard;
    impl PacketSink for Discard {
        fn send_udp(&mut self, _: SocketAddr, _: &[u8]) {}
        fn send_derp(&mut self, _: RegionId, _: PublicKey, _: &[u8]) {}
        fn write_tun(&mut self, _: &[u8]) {}
    }
    let now = Instant::now();
    let peers = 1000;
    let mut engine = engine_of(peers);
    let packet_to = |i: u32| {
        let echo = crate::packet::icmp::Echo {
            src: "100.127.255.254".parse().unwrap(),
            dst: v4(i),
            identifier: 1,
            sequence: 1,
        };
        crate::packet::icmp::echo_request(&echo, &[0; 1372]).unwrap()
    };
    let size = packet_to(0).len();
    for i in 0..peers {
        for _ in 0..super::lazy::HELD_PACKETS {
            engine.handle_tun_packet(now, &packet_to(i), &mut Discard);
        }
    }
    let sent = peers as usize * super::lazy::HELD_PACKETS;
    let held = sent - engine.drops().handshake_queue_full as usize;
    assert_eq!(held, super::lazy::HELD_BYTES / size, "held up to the budget, the rest dropped");
    // Peers that go take their held packets' share of the budget with them.
    engine.apply_netmap(netmap_of(std::iter::empty()), now);
    engine.apply_netmap(netmap_of((0..peers).map(peer)), now);
    let dropped = engine.drops().handshake_queue_full;
    engine.handle_tun_packet(now, &packet_to(7), &mut Discard);
    assert_eq!(engine.drops().handshake_queue_full, dropped, "the budget is free again");
}
