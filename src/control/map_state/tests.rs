//! Crafted MapResponse sequences, shaped like what headscale and Tailscale's testcontrol send.

use super::*;
use crate::control::map_state::Update;
use crate::control::mapstream::{encode_frame, FrameReader};
use crate::keys::{PrivateKey, PublicKey};
use crate::testing::shake;
use std::time::{Duration, UNIX_EPOCH};

/// 2026-08-01T10:00:00Z, the local clock in these tests.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_785_578_400)
}

fn key(byte: u8, prefix: &str) -> String {
    PublicKey([byte; 32]).to_prefixed_hex(prefix)
}

fn own_key() -> PrivateKey {
    PrivateKey([9; 32])
}

/// A headscale-like peer; `overrides` is a JSON object of fields to replace or add.
fn peer_json(id: i64, overrides: &str) -> String {
    let base = format!(
        r#"{{"ID":{id},"StableID":"n{id}CNTRL","Name":"peer{id}.tail1234.ts.net.","User":{user},
            "Key":"{nodekey}","KeyExpiry":"2027-01-01T00:00:00Z",
            "Machine":"{mkey}","DiscoKey":"{disco}",
            "Addresses":["100.64.0.{id}/32","fd7a:115c:a1e0::{id}/128"],
            "AllowedIPs":null,"Endpoints":["192.0.2.{id}:41641","[2001:db8::{id}]:41641","bogus"],
            "DERP":"127.3.3.40:1","Hostinfo":{{"Hostname":"host{id}","OS":"linux","Services":null}},
            "Created":"2026-01-01T00:00:00Z","Cap":138,"Online":true,"MachineAuthorized":true,
            "CapMap":null,"SomeFutureField":{{"x":[1,2]}}}}"#,
        user = 100 + id,
        nodekey = key(id as u8, "nodekey:"),
        mkey = key(id as u8, "mkey:"),
        disco = key(0x80 + id as u8, "discokey:"),
    );
    let mut node: serde_json::Value = serde_json::from_str(&base).unwrap();
    let overrides: serde_json::Value = serde_json::from_str(overrides).unwrap();
    for (field, value) in overrides.as_object().unwrap() {
        node[field] = value.clone();
    }
    node.to_string()
}

fn full_map() -> String {
    format!(
        r#"{{"MapSessionHandle":"h1","Seq":1,
            "Node":{{"ID":1,"Name":"self.tail1234.ts.net.","User":101,"Key":"{own}",
                     "KeyExpiry":"0001-01-01T00:00:00Z",
                     "Addresses":["fd7a:115c:a1e0::1/128","100.64.0.1/32"],"AllowedIPs":null,
                     "MachineAuthorized":true,"HomeDERP":1}},
            "DERPMap":{{"HomeParams":{{"RegionScore":{{"1":1.0}}}},"Regions":{{
                "1":{{"RegionID":1,"RegionCode":"nyc","RegionName":"New York",
                      "Nodes":[{{"Name":"1a","RegionID":1,"HostName":"derp1.example.com","IPv4":"192.0.2.100"}}]}},
                "900":{{"RegionID":900,"RegionCode":"hs","Nodes":null}},
                "901":null}}}},
            "Peers":[{p2},{p3}],
            "DNSConfig":{{"Resolvers":[{{"Addr":"1.1.1.1"}}],"Routes":{{"corp.example.":null}},
                          "Domains":["tail1234.ts.net"],"Proxied":true}},
            "Domain":"tail1234.ts.net",
            "PacketFilter":[{{"SrcIPs":["*"],"DstPorts":[{{"IP":"*","Ports":{{"First":0,"Last":65535}}}}],
                             "CapGrant":[{{"Dsts":["100.64.0.1/32"]}}]}}],
            "UserProfiles":[{{"ID":101,"LoginName":"alice@example.com","DisplayName":"Alice"}}],
            "ControlTime":"2026-08-01T10:00:00Z","CollectServices":true}}"#,
        own = own_key().public_key().to_nodekey(),
        p2 = peer_json(2, "{}"),
        p3 = peer_json(3, r#"{"AllowedIPs":["100.64.0.3/32","10.3.0.0/16"]}"#),
    )
}

fn started() -> MapState {
    let mut state = MapState::new();
    state.apply_frame(full_map().as_bytes(), now()).unwrap();
    state
}

fn netmap_of(state: &MapState) -> Netmap {
    state.netmap(own_key(), now()).unwrap()
}

fn peer_by_id(netmap: &Netmap, id: i64) -> Option<&crate::netmap::Peer> {
    netmap.peers.iter().find(|p| p.node_id == id)
}

use crate::netmap::Netmap;

#[test]
fn full_map_produces_the_netmap() {
    let state = started();
    let netmap = netmap_of(&state);
    let me = &netmap.self_node;
    assert_eq!(me.name, "self");
    assert_eq!(me.dns_name, "self.tail1234.ts.net.");
    assert_eq!(
        me.addresses,
        vec!["100.64.0.1/32".parse().unwrap(), "fd7a:115c:a1e0::1/128".parse().unwrap()]
    );
    assert_eq!(me.private_key, own_key());
    assert_eq!((me.key_expiry, me.key_expired, me.machine_authorized), (None, false, true));
    assert_eq!(netmap.domain, "tail1234.ts.net");
    assert_eq!(netmap.peers.len(), 2);
    let p2 = peer_by_id(&netmap, 2).unwrap();
    assert_eq!(p2.public_key, PublicKey([2; 32]));
    assert_eq!(p2.name, "peer2");
    assert_eq!(p2.dns_name, "peer2.tail1234.ts.net.");
    assert_eq!((p2.host_name.as_str(), p2.os.as_str()), ("host2", "linux"));
    assert_eq!(p2.user_id, 102);
    assert_eq!(p2.stable_id, "n2CNTRL");
    assert_eq!(
        p2.allowed_ips,
        vec!["100.64.0.2/32".parse().unwrap(), "fd7a:115c:a1e0::2/128".parse().unwrap()]
    );
    assert_eq!(p2.allowed_ips, p2.addresses);
    assert_eq!(
        p2.endpoints,
        vec!["192.0.2.2:41641".parse().unwrap(), "[2001:db8::2]:41641".parse().unwrap()]
    );
    assert_eq!(p2.disco_key, Some(PublicKey([0x82; 32])));
    assert_eq!(p2.derp_region, Some(1), "legacy DERP string folded in");
    assert_eq!(p2.online, Some(true));
    assert!(!p2.key_expired);
    assert_eq!(p2.tailscale_ips().len(), 2);
    let p3 = peer_by_id(&netmap, 3).unwrap();
    assert_eq!(p3.allowed_ips, vec!["100.64.0.3/32".parse().unwrap()], "its subnet not accepted");
    assert_eq!(
        p3.tailscale_ips(),
        vec![
            "100.64.0.3".parse::<std::net::IpAddr>().unwrap(),
            "fd7a:115c:a1e0::3".parse().unwrap()
        ]
    );
    assert!(netmap.peers.windows(2).all(|w| w[0].public_key < w[1].public_key));
    let derp = netmap.derp_map.as_ref().unwrap();
    assert_eq!(derp.regions.keys().copied().collect::<Vec<_>>(), vec![1, 900]);
    assert_eq!(derp.regions[&1].nodes[0].host_name, "derp1.example.com");
    assert_eq!(derp.region_score.get(&1), Some(&1.0));
    let filter = netmap.packet_filter.as_ref().unwrap();
    assert_eq!(filter.len(), 1);
    assert_eq!(filter[0].src_ips, vec!["*"]);
    assert_eq!(netmap.user_profiles[&101].login_name, "alice@example.com");
    let dns = netmap.dns.as_ref().unwrap();
    assert!(dns.proxied);
    assert_eq!(dns.routes.get("corp.example."), Some(&None));
    assert_eq!(state.collect_services(), Some(true));
}

/// A subnet router that is also an exit node: its default routes are never taken (they would
/// carry all of the host's traffic), its subnet only with `--accept-routes`, in full netmaps
/// and in deltas alike.
#[test]
fn exit_routes_are_never_taken_and_subnets_only_when_accepted() {
    let router = peer_json(
        4,
        r#"{"AllowedIPs":["100.64.0.4/32","fd7a:115c:a1e0::4/128","10.4.0.0/16",
                          "192.0.2.44/32","0.0.0.0/0","::/0"]}"#,
    );
    let add = format!(r#"{{"PeersChanged":[{router}]}}"#);
    use crate::prefix::Prefix;
    let own: Vec<Prefix> =
        vec!["100.64.0.4/32".parse().unwrap(), "fd7a:115c:a1e0::4/128".parse().unwrap()];
    for accept in [false, true] {
        let mut state = MapState::accepting_subnet_routes(accept);
        update_after(&mut state, &full_map());
        let Update::Peers(delta) = update_after(&mut state, &add) else {
            panic!("one new peer is a delta");
        };
        let mut expected = own.clone();
        if accept {
            expected.extend(["10.4.0.0/16", "192.0.2.44/32"].map(|p| p.parse::<Prefix>().unwrap()));
        }
        assert_eq!(delta.upsert[0].allowed_ips, expected, "accept {accept}");
        assert_eq!(peer_by_id(&netmap_of(&state), 4).unwrap().allowed_ips, expected);
    }
}

/// Control's jail (`IsJailed`) reaches the netmap in full maps and in deltas; a patch, which
/// cannot carry the flag, leaves it as it was.
#[test]
fn a_jailed_peer_is_marked_in_full_maps_and_deltas() {
    let jailed = |state: &MapState, id| peer_by_id(&netmap_of(state), id).unwrap().jailed;
    let mut state = MapState::new();
    let full = full_map().replace(&peer_json(2, "{}"), &peer_json(2, r#"{"IsJailed":true}"#));
    assert!(matches!(update_after(&mut state, &full), Update::Full(_)));
    assert!(jailed(&state, 2) && !jailed(&state, 3));
    let patch = r#"{"PeersChangedPatch":[{"NodeID":2,"Endpoints":["192.0.2.99:1"]}]}"#;
    let Update::Peers(delta) = update_after(&mut state, patch) else {
        panic!("a patch of one peer is a delta");
    };
    assert!(delta.upsert[0].jailed, "a patch keeps the jail");
    for (id, on) in [(2, false), (3, true)] {
        let changed = peer_json(id, &format!(r#"{{"IsJailed":{on}}}"#));
        let Update::Peers(delta) =
            update_after(&mut state, &format!(r#"{{"PeersChanged":[{changed}]}}"#))
        else {
            panic!("one changed peer is a delta");
        };
        assert_eq!((delta.upsert[0].node_id, delta.upsert[0].jailed), (id, on));
        assert_eq!(jailed(&state, id), on);
    }
}

#[test]
fn no_netmap_before_the_first_full_response() {
    let mut state = MapState::new();
    assert!(state.netmap(own_key(), now()).is_none());
    let keep_alive = state.apply_frame(br#"{"KeepAlive":true}"#, now()).unwrap();
    assert!(!keep_alive.any());
    let before = state.clone();
    assert_eq!(state.apply_frame(br#"{"Domain":"x.ts.net"}"#, now()), Err(MapError::NoSelfNode));
    assert_eq!(state, before);
}

#[test]
fn keep_alive_changes_nothing() {
    let mut state = started();
    let before = state.clone();
    let changed = state
        .apply_frame(br#"{"KeepAlive":true,"Domain":"other","PeersRemoved":[2]}"#, now())
        .unwrap();
    assert!(!changed.any());
    assert_eq!(state, before);
}

#[test]
fn peers_list_replaces_everything() {
    let mut state = started();
    let body = format!(
        r#"{{"Peers":[{}],"PeersRemoved":[4],"OnlineChange":{{"4":false}}}}"#,
        peer_json(4, "{}")
    );
    let changed = state.apply_frame(body.as_bytes(), now()).unwrap();
    assert!(changed.peers && !changed.self_node && !changed.domain);
    let netmap = netmap_of(&state);
    assert_eq!(netmap.peers.len(), 1);
    assert_eq!(netmap.peers[0].node_id, 4);
    assert_eq!(netmap.peers[0].online, Some(true), "delta fields ignored with Peers");
}

#[test]
fn peers_changed_upserts_and_removed_deletes() {
    let mut state = started();
    let body = format!(
        r#"{{"PeersChanged":[{},{}],"PeersRemoved":[3]}}"#,
        peer_json(4, "{}"),
        peer_json(2, r#"{"Endpoints":[],"Online":false}"#)
    );
    let changed = state.apply_frame(body.as_bytes(), now()).unwrap();
    assert!(changed.peers);
    let netmap = netmap_of(&state);
    let ids: Vec<_> = netmap.peers.iter().map(|p| p.node_id).collect();
    assert_eq!(ids, vec![2, 4]);
    let p2 = peer_by_id(&netmap, 2).unwrap();
    assert!(p2.endpoints.is_empty());
    assert_eq!(p2.online, Some(false));
    // Self, filter, DNS untouched by a peers-only delta.
    assert_eq!(netmap.self_node.addresses.len(), 2);
    assert_eq!(netmap.packet_filter.unwrap().len(), 1);
}

#[test]
fn patches_change_only_their_fields() {
    let mut state = started();
    let body = format!(
        r#"{{"PeersChangedPatch":[
            {{"NodeID":2,"DERPRegion":900,"Endpoints":["198.51.100.7:1234"],
              "DiscoKey":"{disco}","Key":"{nodekey}","Online":false,
              "LastSeen":"2026-07-31T00:00:00Z","KeyExpiry":"0001-01-01T00:00:00Z","Cap":140}},
            {{"NodeID":3,"Online":false}},
            {{"NodeID":99,"Online":true}}]}}"#,
        disco = key(0xd2, "discokey:"),
        nodekey = key(0x22, "nodekey:"),
    );
    state.apply_frame(body.as_bytes(), now()).unwrap();
    let node = state.peer(2).unwrap();
    assert_eq!(node.cap, 140);
    let netmap = netmap_of(&state);
    let p2 = peer_by_id(&netmap, 2).unwrap();
    assert_eq!(p2.public_key, PublicKey([0x22; 32]));
    assert_eq!(p2.derp_region, Some(900));
    assert_eq!(p2.endpoints, vec!["198.51.100.7:1234".parse().unwrap()]);
    assert_eq!(p2.disco_key, Some(PublicKey([0xd2; 32])));
    assert_eq!(p2.online, Some(false));
    assert_eq!(p2.last_seen, Some(UNIX_EPOCH + Duration::from_secs(1_785_456_000)));
    assert_eq!(p2.key_expiry, None, "zero KeyExpiry patch = never expires");
    assert_eq!(p2.host_name, "host2", "untouched fields stay");
    let p3 = peer_by_id(&netmap, 3).unwrap();
    assert_eq!(p3.online, Some(false));
    assert_eq!(p3.endpoints.len(), 2);
    assert!(state.peer(99).is_none());
}

#[test]
fn online_and_seen_changes() {
    let mut state = started();
    state
        .apply_frame(
            br#"{"OnlineChange":{"2":false,"3":true,"77":true},"PeerSeenChange":{"2":true,"3":false}}"#,
            now(),
        )
        .unwrap();
    let netmap = netmap_of(&state);
    let p2 = peer_by_id(&netmap, 2).unwrap();
    assert_eq!((p2.online, p2.last_seen), (Some(false), Some(now())));
    let p3 = peer_by_id(&netmap, 3).unwrap();
    assert_eq!((p3.online, p3.last_seen), (Some(true), None));
}

#[test]
fn named_packet_filters() {
    let mut state = started();
    let rule = |ip: &str| format!(r#"[{{"SrcIPs":["{ip}"],"DstPorts":[],"IPProto":[6]}}]"#);
    let filter_srcs = |state: &MapState| -> Vec<String> {
        netmap_of(state).packet_filter.unwrap().iter().flat_map(|r| r.src_ips.clone()).collect()
    };
    // Named lists join "base" in name order.
    let body =
        format!(r#"{{"PacketFilters":{{"zz":{},"aa":{}}}}}"#, rule("10.0.0.2"), rule("10.0.0.1"));
    assert!(state.apply_frame(body.as_bytes(), now()).unwrap().packet_filter);
    assert_eq!(filter_srcs(&state), vec!["10.0.0.1", "*", "10.0.0.2"]);
    // null deletes one name.
    state.apply_frame(br#"{"PacketFilters":{"zz":null}}"#, now()).unwrap();
    assert_eq!(filter_srcs(&state), vec!["10.0.0.1", "*"]);
    // null PacketFilter = unchanged.
    let changed = state.apply_frame(br#"{"PacketFilter":null,"Domain":"d"}"#, now()).unwrap();
    assert!(!changed.packet_filter);
    assert_eq!(filter_srcs(&state), vec!["10.0.0.1", "*"]);
    // "*": null clears all, including the base set in the same message, before others apply.
    let body = format!(
        r#"{{"PacketFilter":{},"PacketFilters":{{"*":null,"new":{}}}}}"#,
        rule("1.1.1.1"),
        rule("10.9.9.9")
    );
    state.apply_frame(body.as_bytes(), now()).unwrap();
    assert_eq!(filter_srcs(&state), vec!["10.9.9.9"]);
    // An empty PacketFilter is deny-all for "base" only.
    state.apply_frame(br#"{"PacketFilter":[]}"#, now()).unwrap();
    assert_eq!(filter_srcs(&state), vec!["10.9.9.9"]);
    state.apply_frame(br#"{"PacketFilters":{"*":null}}"#, now()).unwrap();
    assert_eq!(netmap_of(&state).packet_filter, Some(vec![]));
}

#[test]
fn derp_map_updates_are_incremental() {
    let mut state = started();
    // Null Regions and HomeParams keep the old ones; omitDefaultRegions is taken.
    state.apply_frame(br#"{"DERPMap":{"Regions":null,"omitDefaultRegions":true}}"#, now()).unwrap();
    let derp = netmap_of(&state).derp_map.unwrap();
    assert_eq!(derp.regions.len(), 2);
    assert_eq!(derp.region_score.len(), 1);
    assert!(derp.omit_default_regions);
    // HomeParams without RegionScore keeps the scores; new Regions replace the set.
    state
        .apply_frame(
            br#"{"DERPMap":{"HomeParams":{},"Regions":{"2":{"RegionID":2,"RegionCode":"fra"}}}}"#,
            now(),
        )
        .unwrap();
    let derp = netmap_of(&state).derp_map.unwrap();
    assert_eq!(derp.regions.keys().copied().collect::<Vec<_>>(), vec![2]);
    assert_eq!(derp.region_score.get(&1), Some(&1.0));
    state
        .apply_frame(br#"{"DERPMap":{"HomeParams":{"RegionScore":{}},"Regions":{}}}"#, now())
        .unwrap();
    let derp = netmap_of(&state).derp_map.unwrap();
    assert!(derp.regions.is_empty() && derp.region_score.is_empty());
}

#[test]
fn dns_domain_profiles_and_self() {
    let mut state = started();
    let changed = state
        .apply_frame(
            br#"{"Domain":"","DNSConfig":null,"UserProfiles":[{"ID":102,"LoginName":"bob@example.com"}],
                "Node":null}"#,
            now(),
        )
        .unwrap();
    assert!(changed.user_profiles && !changed.domain && !changed.dns && !changed.self_node);
    let netmap = netmap_of(&state);
    assert_eq!(netmap.domain, "tail1234.ts.net");
    assert!(netmap.dns.is_some());
    assert_eq!(netmap.user_profiles.len(), 2, "profiles accumulate");
    let body = format!(
        r#"{{"Domain":"new.ts.net","DNSConfig":{{"Proxied":false}},
            "Node":{{"ID":1,"Name":"me.new.ts.net.","Key":"{own}","Addresses":["100.64.9.9/32"],
                    "MachineAuthorized":false,"KeyExpiry":"2027-06-01T00:00:00Z"}}}}"#,
        own = own_key().public_key().to_nodekey()
    );
    let changed = state.apply_frame(body.as_bytes(), now()).unwrap();
    assert!(changed.domain && changed.dns && changed.self_node);
    let netmap = netmap_of(&state);
    assert_eq!(netmap.self_node.name, "me");
    assert_eq!(netmap.self_node.addresses, vec!["100.64.9.9/32".parse().unwrap()]);
    assert!(!netmap.self_node.machine_authorized);
    assert!(netmap.self_node.key_expiry.is_some());
    assert!(!netmap.dns.unwrap().proxied);
}

#[test]
fn control_can_turn_the_cgnat_drop_rule_off() {
    let mut state = started();
    assert!(!netmap_of(&state).self_node.cgnat_drop_disabled, "on unless control says");
    let body = format!(
        r#"{{"Node":{{"ID":1,"Key":"{own}","Addresses":["100.64.0.1/32"],"MachineAuthorized":true,
                     "CapMap":{{"disable-linux-cgnat-drop-rule":null,"other":[1]}}}}}}"#,
        own = own_key().public_key().to_nodekey()
    );
    state.apply_frame(body.as_bytes(), now()).unwrap();
    assert!(netmap_of(&state).self_node.cgnat_drop_disabled);
}

#[test]
fn the_magicdns_aaaa_capability_reaches_the_self_node() {
    let mut state = started();
    assert!(!netmap_of(&state).self_node.magicdns_peer_aaaa);
    let body = format!(
        r#"{{"Node":{{"ID":1,"Name":"me.tail1234.ts.net.","Key":"{own}","Addresses":["100.64.9.9/32"],
                    "MachineAuthorized":true,"CapMap":{{"magicdns-aaaa":null}}}}}}"#,
        own = own_key().public_key().to_nodekey()
    );
    state.apply_frame(body.as_bytes(), now()).unwrap();
    assert!(netmap_of(&state).self_node.magicdns_peer_aaaa);
}

#[test]
fn key_expiry_uses_control_time() {
    let mut state = started();
    // Peer 2's key expires 2027-01-01. The local clock says 2026-08-01, but control's says
    // 2027-02-01: trust control.
    let control = UNIX_EPOCH + Duration::from_secs(1_801_440_000 + 31 * 86_400);
    let body =
        format!(r#"{{"ControlTime":"{}"}}"#, crate::control::tailcfg::go_time::format(control));
    let changed = state.apply_frame(body.as_bytes(), now()).unwrap();
    assert!(changed.clock_skew);
    let netmap = netmap_of(&state);
    let p2 = peer_by_id(&netmap, 2).unwrap();
    assert!(p2.key_expired);
    assert!(p2.allowed_ips.is_empty() && p2.endpoints.is_empty());
    assert_eq!((p2.disco_key, p2.derp_region), (None, None));
    assert_eq!(p2.tailscale_ips().len(), 2, "still listed for status");
    // Control agrees with us again: not expired, and the next expiry is scheduled.
    let body = format!(
        r#"{{"KeepAlive":true,"ControlTime":"{}"}}"#,
        crate::control::tailcfg::go_time::format(now() + Duration::from_secs(30))
    );
    assert!(state.apply_frame(body.as_bytes(), now()).unwrap().clock_skew);
    assert!(!peer_by_id(&netmap_of(&state), 2).unwrap().key_expired);
    let expiry = crate::control::tailcfg::go_time::parse("2027-01-01T00:00:00Z").unwrap();
    assert_eq!(state.next_key_expiry(now()), Some(expiry));
    let later = state.netmap(own_key(), expiry).unwrap();
    assert!(later.peers.iter().all(|p| p.key_expired));
}

/// Like tailscaled, which empties WireGuard and the routes when it needs a new login: once
/// this node's own key has expired (by control's clock), the netmap carries no peers and no
/// DNS, in full netmaps and instead of deltas, until control renews the key.
#[test]
fn an_expired_node_key_leaves_no_peers_until_it_is_renewed() {
    let valid = r#""KeyExpiry":"0001-01-01T00:00:00Z""#;
    let expired = full_map().replacen(valid, r#""KeyExpiry":"2026-07-01T00:00:00Z""#, 1);
    let mut state = MapState::new();
    let Update::Full(netmap) = update_after(&mut state, &expired) else {
        panic!("the first map is a full one");
    };
    assert!(netmap.self_node.key_expired);
    assert_eq!(netmap.peers, [], "no peer while this node's key is expired");
    assert_eq!(netmap.dns, None, "no DNS either: the host's resolver goes back");
    let patch = r#"{"PeersChangedPatch":[{"NodeID":2,"Endpoints":["192.0.2.99:1"]}]}"#;
    match update_after(&mut state, patch) {
        Update::Full(netmap) => assert_eq!(netmap.peers, []),
        Update::Peers(delta) => panic!("no peer delta while expired: {delta:?}"),
    }
    let Update::Full(renewed) = update_after(&mut state, &full_map()) else {
        panic!("a new self node is a full netmap");
    };
    assert!(!renewed.self_node.key_expired);
    assert_eq!(renewed.peers.len(), 2, "the peers are back");
    assert!(renewed.dns.is_some(), "and the DNS");
}

/// A peer's endpoints come from the peer itself: however many it announces, it keeps a
/// bounded number, the first ones.
#[test]
fn a_peer_announcing_thousands_of_endpoints_keeps_a_bounded_few() {
    let many: Vec<String> =
        (0..10_000).map(|i| format!("192.0.2.{}:{}", i % 250, 1000 + i)).collect();
    let node =
        peer_json(4, &format!(r#"{{"Endpoints":{}}}"#, serde_json::to_string(&many).unwrap()));
    let mut state = started();
    state.apply_frame(format!(r#"{{"PeersChanged":[{node}]}}"#).as_bytes(), now()).unwrap();
    let netmap = netmap_of(&state);
    let endpoints = &peer_by_id(&netmap, 4).unwrap().endpoints;
    assert_eq!(endpoints.len(), 64);
    assert_eq!(endpoints[0], "192.0.2.0:1000".parse().unwrap());
}

#[test]
fn server_expired_and_unreachable_peers_get_no_routes() {
    let mut state = started();
    let body = format!(
        r#"{{"PeersChanged":[{},{}]}}"#,
        peer_json(5, r#"{"Expired":true}"#),
        peer_json(
            6,
            &format!(r#"{{"DiscoKey":"{}","DERP":"","HomeDERP":0}}"#, key(0, "discokey:"))
        ),
    );
    state.apply_frame(body.as_bytes(), now()).unwrap();
    let netmap = netmap_of(&state);
    let p5 = peer_by_id(&netmap, 5).unwrap();
    assert!(p5.key_expired && p5.allowed_ips.is_empty());
    let p6 = peer_by_id(&netmap, 6).unwrap();
    assert!(!p6.key_expired && p6.allowed_ips.is_empty() && p6.disco_key.is_none());
}

#[test]
fn peers_without_keys_or_with_duplicate_keys_are_dropped() {
    let mut state = started();
    let body = format!(
        r#"{{"PeersChanged":[{},{{"ID":8,"Addresses":["100.64.0.8/32"]}}]}}"#,
        peer_json(7, &format!(r#"{{"Key":"{}"}}"#, key(2, "nodekey:")))
    );
    state.apply_frame(body.as_bytes(), now()).unwrap();
    let netmap = netmap_of(&state);
    assert_eq!(netmap.peers.iter().map(|p| p.node_id).collect::<Vec<_>>().len(), 2);
    assert_eq!(peer_by_id(&netmap, 2).unwrap().public_key, PublicKey([2; 32]));
    assert!(peer_by_id(&netmap, 7).is_none() && peer_by_id(&netmap, 8).is_none());
}

#[test]
fn malformed_responses_leave_state_untouched() {
    let mut state = started();
    let before = state.clone();
    for bad in [
        &b"{"[..],
        b"[]",
        b"null",
        b"",
        br#"{"Peers":[{"ID":"two"}]}"#,
        br#"{"PeersChanged":[{"ID":2,"Key":"nodekey:zz"}]}"#,
        br#"{"PeersChanged":[{"ID":2,"Key":"discokey:0000000000000000000000000000000000000000000000000000000000000000"}]}"#,
        br#"{"PeersChanged":[{"ID":2,"Addresses":["100.64.0.2/33"]}]}"#,
        br#"{"ControlTime":"yesterday"}"#,
        br#"{"OnlineChange":{"two":true}}"#,
        br#"{"DERPMap":{"Regions":{"70000":null}}}"#,
        b"\x28\xb5\x2f\xfd\x00",
    ] {
        assert!(state.apply_frame(bad, now()).is_err(), "{}", String::from_utf8_lossy(bad));
        assert_eq!(state, before);
    }
}

#[test]
fn unknown_fields_are_ignored_everywhere() {
    let mut state = started();
    let body = br#"{"NewTopLevel":1,"PeersChangedPatch":[{"NodeID":2,"Future":[1],"Online":false}],
                    "DNSConfig":{"Unknown":{"a":null}},"SSHPolicy":{"rules":[]},"TKAInfo":{"Head":"x"}}"#;
    assert!(state.apply_frame(body, now()).is_ok());
}

#[test]
fn frames_then_states_end_to_end() {
    let mut stream = encode_frame(full_map().as_bytes());
    stream.extend(encode_frame(br#"{"KeepAlive":true}"#));
    stream.extend(encode_frame(br#"{"PeersRemoved":[2]}"#));
    let mut reader = FrameReader::default();
    let mut state = MapState::new();
    for chunk in stream.chunks(97) {
        reader.push(chunk);
        while let Some(body) = reader.next_frame().unwrap() {
            state.apply_frame(&body, now()).unwrap();
        }
    }
    assert_eq!(netmap_of(&state).peers.len(), 1);
}

#[test]
fn shaken_responses_never_panic() {
    let inputs = [
        full_map(),
        format!(r#"{{"PeersChanged":[{}],"PeersRemoved":[3]}}"#, peer_json(4, "{}")),
        r#"{"PeersChangedPatch":[{"NodeID":2,"DERPRegion":9,"Endpoints":["1.2.3.4:5"],"LastSeen":"2026-07-31T00:00:00Z"}],
            "OnlineChange":{"2":true},"PeerSeenChange":{"3":false},
            "PacketFilters":{"*":null,"a":[{"SrcIPs":["*"]}]},"DERPMap":{"Regions":{"1":null}}}"#
            .to_string(),
    ];
    for (seed, input) in inputs.iter().enumerate() {
        let mut state = started();
        shake(100 + seed as u64, 800, input.as_bytes(), |bytes| {
            let before = state.clone();
            match state.apply_frame(bytes, now()) {
                Ok(_) => {
                    let _ = state.netmap(own_key(), now());
                    let _ = state.next_key_expiry(now());
                }
                Err(_) => assert_eq!(state, before),
            }
        });
    }
}

#[test]
fn display_messages_patch_the_health_list() {
    let mut state = started();
    let patch =
        |state: &mut MapState, json: &str| state.apply_frame(json.as_bytes(), now()).unwrap();
    patch(&mut state, r#"{"Health":["old warning"]}"#);
    let changed = patch(
        &mut state,
        r#"{"DisplayMessages":{"a":{"Title":"Key expiring","Text":"in 3 days"},"b":{"Title":"Update available"}}}"#,
    );
    assert!(changed.health);
    assert_eq!(state.health(), ["old warning", "Key expiring: in 3 days", "Update available"]);
    patch(&mut state, r#"{"DisplayMessages":{"a":null}}"#);
    assert_eq!(state.health(), ["old warning", "Update available"]);
    patch(&mut state, r#"{"DisplayMessages":{"*":null,"c":{"Title":"New"}}}"#);
    assert_eq!(state.health(), ["old warning", "New"]);
}

/// The engine's peers after `update`, given its peers before: what the daemon does with it.
fn replay(peers: &mut Vec<crate::netmap::Peer>, update: Update) {
    match update {
        Update::Full(netmap) => *peers = netmap.peers,
        Update::Peers(delta) => {
            let replaced = |key: &PublicKey| {
                delta.remove.contains(key) || delta.upsert.iter().any(|p| p.public_key == *key)
            };
            peers.retain(|p| !replaced(&p.public_key));
            peers.extend(delta.upsert);
            peers.sort_by_key(|p| p.public_key);
        }
    }
}

fn update_after(state: &mut MapState, frame: &str) -> Update {
    let changed = state.apply_frame(frame.as_bytes(), now()).unwrap();
    state.take_update(own_key(), now(), changed).unwrap()
}

#[test]
fn a_change_to_one_peer_is_handed_on_as_a_delta_of_that_peer() {
    let mut state = MapState::new();
    assert!(matches!(update_after(&mut state, &full_map()), Update::Full(_)));
    let patch = r#"{"PeersChangedPatch":[{"NodeID":2,"Endpoints":["192.0.2.99:1"]}]}"#;
    let Update::Peers(delta) = update_after(&mut state, patch) else {
        panic!("a patch of one peer is a delta");
    };
    assert_eq!(delta.remove, []);
    assert_eq!(delta.upsert, vec![peer_by_id(&netmap_of(&state), 2).unwrap().clone()]);
    assert_eq!(delta.upsert[0].endpoints, vec!["192.0.2.99:1".parse().unwrap()]);
    let Update::Peers(delta) = update_after(&mut state, r#"{"PeersRemoved":[3]}"#) else {
        panic!("a removal is a delta");
    };
    assert_eq!((delta.upsert, delta.remove), (vec![], vec![PublicKey([3; 32])]));
}

#[test]
fn a_key_carried_by_two_nodes_is_settled_by_the_whole_netmap() {
    let mut state = MapState::new();
    update_after(&mut state, &full_map());
    let twin = peer_json(9, &format!(r#"{{"Key":"{}"}}"#, key(2, "nodekey:")));
    let update = update_after(&mut state, &format!(r#"{{"PeersChanged":[{twin}]}}"#));
    assert!(matches!(update, Update::Full(_)), "{update:?}");
    let update = update_after(&mut state, r#"{"PeersRemoved":[2]}"#);
    assert!(matches!(update, Update::Full(_)), "node 9 now holds the key: {update:?}");
}

#[test]
fn deltas_replayed_give_the_netmap_at_every_step() {
    let frames = [
        full_map(),
        r#"{"PeersChangedPatch":[{"NodeID":2,"Endpoints":["192.0.2.99:1"]}]}"#.to_string(),
        format!(r#"{{"PeersChanged":[{}]}}"#, peer_json(4, "{}")),
        r#"{"OnlineChange":{"4":false},"PeerSeenChange":{"2":true}}"#.to_string(),
        format!(r#"{{"PeersChangedPatch":[{{"NodeID":3,"Key":"{}"}}]}}"#, key(0x33, "nodekey:")),
        r#"{"PeersRemoved":[2]}"#.to_string(),
        format!(
            r#"{{"PeersChanged":[{}]}}"#,
            peer_json(5, &format!(r#"{{"Key":"{}"}}"#, key(4, "nodekey:")))
        ),
        r#"{"PeersRemoved":[4]}"#.to_string(),
        r#"{"PeersChangedPatch":[{"NodeID":5,"KeyExpiry":"2020-01-01T00:00:00Z"}]}"#.to_string(),
        format!(
            r#"{{"PeersRemoved":[5],"PeersChanged":[{}]}}"#,
            peer_json(6, &format!(r#"{{"Key":"{}"}}"#, key(4, "nodekey:")))
        ),
        r#"{"Domain":"renamed.example","PeersRemoved":[3]}"#.to_string(),
    ];
    let mut state = MapState::new();
    let mut peers = Vec::new();
    let mut deltas = 0;
    for frame in frames {
        let update = update_after(&mut state, &frame);
        deltas += matches!(update, Update::Peers(_)) as usize;
        replay(&mut peers, update);
        assert_eq!(peers, netmap_of(&state).peers, "after {frame}");
    }
    assert_eq!(
        deltas, 7,
        "all but the full map, the two steps where nodes 4 and 5 share a key, and the domain"
    );
}
