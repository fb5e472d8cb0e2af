//! Lazy WireGuard configuration between two engines on a virtual clock: idle peers are
//! trimmed, and come back on the first packet either way without losing it.

use super::*;
use crate::engine::lazy::{LazyConfig, HELD_PACKETS, IDLE_THRESHOLD};

/// Two engines as in [`pair`], with their own trimming policies.
fn pair_with(now: Instant, lazy_a: LazyConfig, lazy_b: LazyConfig) -> (Node, Node) {
    let (mut a, mut b) = pair(now);
    for (node, lazy, seed) in [(&mut a, lazy_a, 0x0a_0000), (&mut b, lazy_b, 0x0b_0000)] {
        let environment = Environment { lazy, ..environment(now, seed) };
        node.engine = Engine::new(node.engine.netmap(), now, environment);
    }
    (a, b)
}

const FULL: LazyConfig = LazyConfig { trim: false, idle: IDLE_THRESHOLD };

fn in_engine(node: &Node, now: Instant) -> bool {
    let status = node.engine.status(now, true);
    status.peer.values().next().expect("one peer").in_engine
}

/// Runs both engines' timers up to `until`, delivering what they send.
fn idle_until(a: &mut Node, b: &mut Node, until: Instant) {
    for _ in 0..10_000 {
        let next = [a.engine.poll_timeout(), b.engine.poll_timeout()].into_iter().flatten().min();
        let Some(at) = next.filter(|at| *at <= until) else {
            return;
        };
        a.engine.handle_timeout(at, &mut a.out);
        b.engine.handle_timeout(at, &mut b.out);
        exchange(a, b, at);
    }
    panic!("the timers never went quiet");
}

/// A and B with a session each, after one echo from A at `now`.
fn talking_pair(now: Instant, lazy_a: LazyConfig, lazy_b: LazyConfig) -> (Node, Node) {
    let (mut a, mut b) = pair_with(now, lazy_a, lazy_b);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    exchange(&mut a, &mut b, now);
    assert_eq!(b.out.tun.len(), 1);
    b.out.tun.clear();
    (a, b)
}

#[test]
fn a_peer_never_used_has_no_session_and_a_busy_one_is_trimmed_after_the_idle_time() {
    let t0 = Instant::now();
    let (a, _) = pair_with(t0, LazyConfig::default(), LazyConfig::default());
    assert!(!in_engine(&a, t0), "never active counts as idle for ever");
    let (mut a, mut b) = talking_pair(t0, LazyConfig::default(), LazyConfig::default());
    assert!(in_engine(&a, t0) && in_engine(&b, t0));
    // Traffic 4 minutes in keeps both for another 5 minutes from then.
    let t4 = t0 + Duration::from_secs(240);
    idle_until(&mut a, &mut b, t4);
    a.engine.handle_tun_packet(t4, &echo("100.64.0.1", "100.64.0.2", 2), &mut a.out);
    exchange(&mut a, &mut b, t4);
    assert_eq!(b.out.tun.len(), 1, "the session still carries data");
    idle_until(&mut a, &mut b, t0 + IDLE_THRESHOLD + Duration::from_secs(1));
    assert!(in_engine(&a, t0 + IDLE_THRESHOLD) && in_engine(&b, t0 + IDLE_THRESHOLD));
    let trimmed_at = t4 + IDLE_THRESHOLD;
    idle_until(&mut a, &mut b, trimmed_at);
    assert!(!in_engine(&a, trimmed_at) && !in_engine(&b, trimmed_at));
    let status = a.engine.status(trimmed_at, true);
    let peer = status.peer.values().next().unwrap();
    assert!(peer.tx_bytes > 0, "traffic counts outlive the session");
    // What was scheduled before the trim comes due once (and finds no session), then quiet.
    idle_until(&mut a, &mut b, trimmed_at + IDLE_THRESHOLD);
    assert_eq!(a.engine.poll_timeout(), None, "a trimmed peer wakes nothing");
}

#[test]
fn a_subnet_router_or_a_full_configuration_is_never_trimmed() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair_with(t0, LazyConfig::default(), FULL);
    let mut map = a.engine.netmap();
    map.peers[0].allowed_ips.push("192.168.7.0/24".parse().unwrap());
    a.engine.apply_netmap(map, t0);
    assert!(in_engine(&a, t0), "a subnet router has its session from the start");
    assert!(in_engine(&b, t0), "WEFT_DEBUG_TRIM_WIREGUARD=false: every peer has one");
    let later = t0 + 4 * IDLE_THRESHOLD;
    idle_until(&mut a, &mut b, later);
    assert!(in_engine(&a, later) && in_engine(&b, later));
    // Without the subnet, the idle router is trimmed after the idle time.
    let mut map = a.engine.netmap();
    map.peers[0].allowed_ips.retain(|p| p.is_host());
    a.engine.apply_netmap(map, later);
    idle_until(&mut a, &mut b, later + IDLE_THRESHOLD);
    assert!(!in_engine(&a, later + IDLE_THRESHOLD));
}

#[test]
fn the_first_packet_to_a_trimmed_peer_wakes_both_ends_and_arrives() {
    let t0 = Instant::now();
    let (mut a, mut b) = talking_pair(t0, LazyConfig::default(), LazyConfig::default());
    let later = t0 + 2 * IDLE_THRESHOLD;
    idle_until(&mut a, &mut b, later);
    assert!(!in_engine(&a, later) && !in_engine(&b, later));
    let first = echo("100.64.0.1", "100.64.0.2", 7);
    a.engine.handle_tun_packet(later, &first, &mut a.out);
    assert!(in_engine(&a, later), "the outbound packet brought B back on A");
    exchange(&mut a, &mut b, later);
    assert!(in_engine(&b, later), "A's initiation brought A back on B");
    assert_eq!(b.out.tun, vec![first], "the packet that woke the peer arrived");
    assert_eq!(a.engine.drops().handshake_queue_full, 0);
}

#[test]
fn an_initiation_from_a_peer_we_trimmed_is_answered_and_its_packet_arrives() {
    let t0 = Instant::now();
    // B keeps A for good; A trims B.
    let (mut a, mut b) = talking_pair(t0, LazyConfig::default(), FULL);
    let later = t0 + 2 * IDLE_THRESHOLD;
    idle_until(&mut a, &mut b, later);
    assert!(!in_engine(&a, later) && in_engine(&b, later));
    // B's keys are older than WireGuard lets them be used (boringtun keeps its own clock, so
    // its rekey is made here): B starts a handshake A must answer.
    let initiation = force_initiation(&mut b);
    a.engine.handle_datagram(later, b.addr, &initiation, &mut a.out);
    assert!(in_engine(&a, later), "the initiation brought B back on A");
    assert_eq!(a.out.udp.len(), 1, "A answered it");
    exchange(&mut a, &mut b, later);
    let from_b = echo("100.64.0.2", "100.64.0.1", 9);
    b.engine.handle_tun_packet(later, &from_b, &mut b.out);
    exchange(&mut a, &mut b, later);
    assert_eq!(a.out.tun, vec![from_b]);
    assert_eq!(a.engine.drops().unknown_initiator, 0);
}

#[test]
fn packets_beyond_the_hold_queue_are_dropped_and_counted_and_the_rest_arrive_in_order() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair_with(t0, LazyConfig::default(), LazyConfig::default());
    let packets: Vec<Vec<u8>> =
        (0..HELD_PACKETS as u16 + 3).map(|seq| echo("100.64.0.1", "100.64.0.2", seq)).collect();
    for packet in &packets {
        a.engine.handle_tun_packet(t0, packet, &mut a.out);
    }
    assert_eq!(a.out.udp.len(), 1, "one initiation, however many packets wait");
    assert_eq!(a.engine.drops().handshake_queue_full, 3);
    exchange(&mut a, &mut b, t0);
    assert_eq!(b.out.tun, packets[..HELD_PACKETS], "the held ones, in order");
}

#[test]
fn a_disco_ping_from_a_trimmed_peer_brings_it_back() {
    let t0 = Instant::now();
    let (mut a, mut b) = disco_pair(t0);
    assert!(!in_engine(&b, t0));
    a.engine.handle_tun_packet(t0, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    let pings: Vec<_> =
        a.out.udp.iter().filter(|(_, d)| crate::disco::looks_like_disco(d)).cloned().collect();
    assert_eq!(pings.len(), 1);
    for (_, ping) in pings {
        b.engine.handle_datagram(t0, a.addr, &ping, &mut b.out);
    }
    assert!(in_engine(&b, t0), "the disco ping alone brought A back on B");
}

/// A trimmed peer's new session has no record of the peer's last initiation, so it accepts a
/// replayed one: that must not count as proof that moves the peer's endpoint.
#[test]
fn a_replayed_initiation_wakes_a_trimmed_peer_but_does_not_move_its_endpoint() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair_with(t0, LazyConfig::default(), LazyConfig::default());
    let mut map = b.engine.netmap();
    map.peers[0].endpoints = vec![a.addr];
    b.engine.apply_netmap(map, t0);
    // B starts the conversation; an eavesdropper keeps B's initiation.
    b.engine.handle_tun_packet(t0, &echo("100.64.0.2", "100.64.0.1", 1), &mut b.out);
    let captured = b.out.udp.iter().find(|(_, d)| d[0] == 1).expect("B's initiation").1.clone();
    exchange(&mut a, &mut b, t0);
    assert_eq!(a.out.tun.len(), 1);
    let later = t0 + 2 * IDLE_THRESHOLD;
    idle_until(&mut a, &mut b, later);
    assert!(!in_engine(&a, later));
    a.engine.handle_datagram(later, attacker(), &captured, &mut a.out);
    let state = &a.engine.peers[&only_peer_index(&a)];
    assert_eq!(state.endpoint, Some(b.addr), "the replay moved the endpoint");
    // The real B still gets through: its next handshake is newer than the replayed one.
    a.out.udp.clear();
    let from_b = echo("100.64.0.2", "100.64.0.1", 2);
    b.engine.handle_tun_packet(later, &from_b, &mut b.out);
    exchange(&mut a, &mut b, later);
    assert_eq!(a.out.tun.last(), Some(&from_b));
}

/// What a forger makes of a peer's initiation: the static key (which anyone who knows our
/// public key can encrypt) kept, the timestamp (which needs the peer's private key) garbled,
/// and mac1 made anew from our public key, so the handshake gate lets it through.
fn forged_initiation(mut initiation: Vec<u8>, responder: &x25519_dalek::PublicKey) -> Vec<u8> {
    use blake2::digest::{consts::U16, Mac};
    use blake2::{Blake2s256, Blake2sMac, Digest};
    const TIMESTAMP: std::ops::Range<usize> = 88..116;
    initiation[TIMESTAMP].iter_mut().for_each(|b| *b ^= 0x5a);
    let key = Blake2s256::new().chain_update(b"mac1----").chain_update(responder.as_bytes());
    let mut mac = Blake2sMac::<U16>::new_from_slice(&key.finalize()).unwrap();
    mac.update(&initiation[..TIMESTAMP.end]);
    initiation[116..132].copy_from_slice(&mac.finalize().into_bytes());
    initiation
}

/// Anyone who knows A's public key can name B in an initiation: A looks B up and wakes it
/// before boringtun finds the initiation forged. The session so made goes again at once, so
/// forged initiations cost no memory for the idle time, and the peer stays never-active.
#[test]
fn a_forged_initiation_naming_a_trimmed_peer_leaves_it_trimmed() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair_with(t0, LazyConfig::default(), FULL);
    assert!(!in_engine(&a, t0));
    let forged = forged_initiation(force_initiation(&mut b), &public_of(&a));
    a.engine.handle_datagram(t0, attacker(), &forged, &mut a.out);
    assert_eq!(a.engine.drops().session_error, 1, "boringtun refused it");
    assert!(a.out.udp.is_empty(), "and answered nothing");
    assert!(!in_engine(&a, t0), "the forged initiation left B trimmed on A");
    assert_eq!(a.engine.poll_timeout(), None, "and scheduled nothing");
    // The real B still wakes A's session for it, kept for the idle time.
    let later = t0 + Duration::from_secs(1);
    let initiation = force_initiation(&mut b);
    a.engine.handle_datagram(later, b.addr, &initiation, &mut a.out);
    assert!(in_engine(&a, later), "B's own initiation woke it");
    exchange(&mut a, &mut b, later);
    let from_b = echo("100.64.0.2", "100.64.0.1", 3);
    b.engine.handle_tun_packet(later, &from_b, &mut b.out);
    exchange(&mut a, &mut b, later);
    assert_eq!(a.out.tun, vec![from_b]);
    idle_until(&mut a, &mut b, later + IDLE_THRESHOLD - Duration::from_secs(1));
    assert!(in_engine(&a, later + IDLE_THRESHOLD - Duration::from_secs(1)));
    idle_until(&mut a, &mut b, later + 2 * IDLE_THRESHOLD);
    assert!(!in_engine(&a, later + 2 * IDLE_THRESHOLD), "and trimmed when idle");
}

/// `WEFT_DEBUG_LAZY_IDLE` is any number of seconds: one too large to add to a time means
/// never idle long enough, not a panic.
#[test]
fn an_idle_time_beyond_the_clock_never_trims() {
    let t0 = Instant::now();
    let forever = LazyConfig { trim: true, idle: Duration::from_secs(u64::MAX) };
    let (mut a, mut b) = talking_pair(t0, forever, forever);
    let later = t0 + 10 * IDLE_THRESHOLD;
    idle_until(&mut a, &mut b, later);
    assert!(in_engine(&a, later) && in_engine(&b, later));
}
