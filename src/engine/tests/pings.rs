//! Pings others can ask for — control's `PingRequest`s, local API callers — kept to the
//! tailnet and to a bounded number in flight.

use super::*;
use crate::engine::ping::{PingKind, MAX_PENDING_PINGS};

/// A and B where B is also an exit node and a subnet router: A routes the whole internet
/// and 192.168.7.0/24 to it. B's own address is 100.64.0.2.
fn pair_with_exit_node(now: Instant) -> (Node, Node) {
    let (mut a, b) = pair(now);
    let mut map = a.engine.netmap();
    let peer = &mut map.peers[0];
    peer.addresses = vec!["100.64.0.2/32".parse().unwrap()];
    let routed: [crate::prefix::Prefix; 2] =
        ["0.0.0.0/0".parse().unwrap(), "192.168.7.0/24".parse().unwrap()];
    peer.allowed_ips.extend(routed);
    a.engine.apply_netmap(map, now);
    (a, b)
}

#[test]
fn control_may_ping_a_peers_own_address_but_nothing_it_only_routes() {
    let now = Instant::now();
    let (mut a, _b) = pair_with_exit_node(now);
    let timeout = Duration::from_secs(5);
    for kind in [PingKind::Icmp, PingKind::Tsmp, PingKind::Disco] {
        for outside in ["8.8.8.8", "192.168.7.1"] {
            let target = outside.parse().unwrap();
            let refused = a.engine.start_control_ping(now, kind, target, timeout, &mut a.out);
            assert!(refused.is_err(), "{kind:?} of {outside} through the exit node: {refused:?}");
            assert!(a.out.udp.is_empty() && a.out.derp.is_empty(), "nothing sent");
        }
    }
    let peer = "100.64.0.2".parse().unwrap();
    assert!(a.engine.start_control_ping(now, PingKind::Icmp, peer, timeout, &mut a.out).is_ok());
    // The local user may still ping through a subnet router, as with tailscale.
    let subnet = "192.168.7.1".parse().unwrap();
    assert!(a.engine.start_ping(now, subnet, timeout, &mut a.out).is_ok());
}

#[test]
fn pings_in_flight_are_bounded() {
    let now = Instant::now();
    let (mut a, _b) = pair(now);
    let target = "100.64.0.2".parse().unwrap();
    let timeout = Duration::from_secs(10);
    let started = (0..10 * MAX_PENDING_PINGS)
        .filter(|_| a.engine.start_ping(now, target, timeout, &mut a.out).is_ok())
        .count();
    assert_eq!(started, MAX_PENDING_PINGS, "beyond the bound, a clear error");
    // Once they time out, there is room again.
    a.engine.handle_timeout(now + timeout, &mut a.out);
    while a.engine.poll_ping().is_some() {}
    assert!(a.engine.start_ping(now + timeout, target, timeout, &mut a.out).is_ok());
}
