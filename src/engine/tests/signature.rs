//! Netmaps that configure nothing new skip the reconfiguration, and only those.

use super::*;

#[test]
fn a_netmap_with_the_same_signature_skips_reconfiguration_but_updates_descriptions() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    a.engine.handle_tun_packet(now, &echo("100.64.0.1", "100.64.0.2", 1), &mut a.out);
    exchange(&mut a, &mut b, now);
    let running = a.engine.netmap();
    assert!(a.engine.apply_netmap(running.clone(), now).skipped, "the very same netmap");

    let mut renamed = running.clone();
    renamed.peers[0].name = "renamed".into();
    renamed.peers[0].online = Some(true);
    renamed.domain = "example.ts.net".into();
    assert!(a.engine.apply_netmap(renamed, now).skipped, "descriptions configure nothing");
    assert_eq!(a.engine.netmap().peers[0].name, "renamed", "but they are taken");
    assert_eq!(a.engine.netmap().domain, "example.ts.net");

    let mut filtered = a.engine.netmap();
    filtered.packet_filter = Some(Vec::new());
    assert!(!a.engine.apply_netmap(filtered.clone(), now).skipped, "a new filter");
    b.engine.handle_tun_packet(now, &echo("100.64.0.2", "100.64.0.1", 2), &mut b.out);
    exchange(&mut a, &mut b, now);
    assert!(a.out.tun.is_empty(), "the new filter runs");
    assert_eq!(a.engine.drops().filtered, 1);
    assert!(a.engine.apply_netmap(filtered.clone(), now).skipped);

    let mut jailed = filtered.clone();
    jailed.peers[0].jailed = true;
    assert!(!a.engine.apply_netmap(jailed, now).skipped, "a jail changes the filter's verdicts");
    assert!(!a.engine.apply_netmap(filtered.clone(), now).skipped, "and so does its end");

    let mut moved = filtered.clone();
    moved.peers[0].endpoints = vec!["192.0.2.99:3000".parse().unwrap()];
    assert!(!a.engine.apply_netmap(moved.clone(), now).skipped, "a new endpoint");
    let mut routed = moved.clone();
    routed.peers[0].allowed_ips.push("10.9.0.0/16".parse().unwrap());
    let change = a.engine.apply_netmap(routed.clone(), now);
    assert!(!change.skipped && change.routes_changed, "a new route");
    assert!(a.engine.routes().contains(&"10.9.0.0/16".parse().unwrap()));

    // After a delta the engine no longer knows its signature: the same netmap applies in full.
    a.engine.apply_peer_delta(PeerDelta::default(), now);
    assert!(!a.engine.apply_netmap(routed, now).skipped);
}
