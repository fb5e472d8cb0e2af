//! Selection from recorded tables (see `fixtures`), with macOS's delegate lookup played by
//! a closure that answers as `ifconfig utun3` ("effective interface: en0") would.

use super::*;
use crate::platform::bind::fixtures::{self, interfaces, routes};

fn darwin_interfaces() -> Vec<InterfaceInfo> {
    interfaces(&[("lo0", 1), ("en0", 6), ("en7", 14), ("utun3", 22), ("utun5", 24)])
}

/// utun3 rides on en0 (index 6); nothing else has a delegate.
fn utun3_on_en0(interface: &InterfaceInfo) -> Option<u32> {
    (interface.name == "utun3").then_some(6)
}

fn pick(
    table: &str,
    interfaces: &[InterfaceInfo],
    own: &str,
    d: &dyn DelegateLookup,
) -> Option<Selected> {
    effective_interface(&routes(table), interfaces, own, d)
}

#[test]
fn our_own_utun_default_gives_way_to_its_delegate() {
    let chosen = pick(fixtures::DARWIN_UTUN_DEFAULT, &darwin_interfaces(), "utun3", &utun3_on_en0);
    assert_eq!(chosen, Some(Selected::new("en0", 6, Some("192.168.1.1".parse().unwrap()))));
}

#[test]
fn another_vpns_utun_is_followed_to_its_delegate() {
    let chosen = pick(fixtures::DARWIN_UTUN_DEFAULT, &darwin_interfaces(), "utun5", &utun3_on_en0);
    assert_eq!(chosen.map(|s| (s.interface().to_string(), s.index())), Some(("en0".into(), 6)));
}

#[test]
fn own_utun_without_delegate_falls_back_to_the_scoped_physical_default() {
    let chosen = pick(fixtures::DARWIN_UTUN_DEFAULT, &darwin_interfaces(), "utun3", &NoDelegates);
    assert_eq!(chosen.as_ref().map(Selected::interface), Some("en0"));
    assert_eq!(chosen.and_then(|s| s.gateway()), Some("192.168.1.1".parse().unwrap()));
}

#[test]
fn a_plain_default_is_taken_and_scoped_ones_are_ignored() {
    let chosen = pick(fixtures::DARWIN_EN0_DEFAULT, &darwin_interfaces(), "utun5", &utun3_on_en0);
    assert_eq!(chosen, Some(Selected::new("en0", 6, Some("192.168.1.1".parse().unwrap()))));
}

#[test]
fn the_lower_metric_wins() {
    let list = interfaces(&[("lo", 1), ("eth0", 2), ("wlan0", 3), ("weft0", 9)]);
    let chosen = pick(fixtures::LINUX_TWO_DEFAULTS, &list, "weft0", &NoDelegates);
    assert_eq!(chosen, Some(Selected::new("eth0", 2, Some("10.0.0.1".parse().unwrap()))));
}

#[test]
fn a_down_interface_is_passed_over() {
    let mut list = interfaces(&[("lo", 1), ("eth0", 2), ("wlan0", 3)]);
    list[1].up = false;
    let chosen = pick(fixtures::LINUX_TWO_DEFAULTS, &list, "weft0", &NoDelegates);
    assert_eq!(chosen.as_ref().map(Selected::interface), Some("wlan0"));
}

#[test]
fn our_exit_node_default_is_never_chosen_even_when_it_outranks() {
    let list = interfaces(&[("lo0", 3), ("em0", 1), ("tun0", 5)]);
    let chosen = pick(fixtures::OPENBSD_OWN_DEFAULT, &list, "tun0", &NoDelegates);
    assert_eq!(chosen, Some(Selected::new("em0", 1, Some("192.168.1.1".parse().unwrap()))));
}

#[test]
fn ipv6_only_hosts_get_their_ipv6_default() {
    let list = interfaces(&[("vtnet0", 1), ("lo0", 2), ("tun0", 3)]);
    let chosen = pick(fixtures::FREEBSD_IPV6_ONLY, &list, "tun0", &NoDelegates);
    assert_eq!(chosen, Some(Selected::new("vtnet0", 1, Some("fe80::1".parse().unwrap()))));
}

#[test]
fn no_default_route_means_no_selection() {
    let list = interfaces(&[("wm0", 1), ("lo0", 2)]);
    assert_eq!(pick(fixtures::NETBSD_NO_DEFAULT, &list, "tun0", &NoDelegates), None);
}

#[test]
fn only_our_own_tunnel_left_means_no_selection() {
    let only_ours: String = fixtures::OPENBSD_OWN_DEFAULT
        .lines()
        .filter(|l| !l.contains("em0"))
        .collect::<Vec<_>>()
        .join("\n");
    let list = interfaces(&[("lo0", 3), ("em0", 1), ("tun0", 5)]);
    assert_eq!(pick(&only_ours, &list, "tun0", &NoDelegates), None);
}

#[test]
fn a_delegate_pointing_back_at_our_tunnel_is_refused() {
    let list = darwin_interfaces();
    let into_ours = |i: &InterfaceInfo| (i.name == "utun3").then_some(24);
    let chosen = pick(fixtures::DARWIN_UTUN_DEFAULT, &list, "utun5", &into_ours);
    assert_eq!(chosen.as_ref().map(Selected::interface), Some("utun3"));
}

#[test]
fn own_tunnel_never_chosen_from_any_fixture() {
    let tables = [
        fixtures::DARWIN_UTUN_DEFAULT,
        fixtures::DARWIN_EN0_DEFAULT,
        fixtures::LINUX_TWO_DEFAULTS,
        fixtures::OPENBSD_OWN_DEFAULT,
        fixtures::FREEBSD_IPV6_ONLY,
        fixtures::NETBSD_NO_DEFAULT,
    ];
    for table in tables {
        for route in routes(table) {
            let names: Vec<(&str, u32)> =
                vec![(route.interface.as_str(), 1), ("en0", 6), ("em0", 2)];
            let list = interfaces(&names);
            let chosen =
                effective_interface(&routes(table), &list, &route.interface, &utun3_on_en0);
            assert_ne!(
                chosen.as_ref().map(Selected::interface),
                Some(route.interface.as_str()),
                "{table}"
            );
        }
    }
}

#[test]
fn a_new_index_under_the_same_name_is_another_interface() {
    let before = Selected::new("en0", 6, None);
    assert!(before.is_other_interface_than(&Selected::new("en0", 7, None)));
    assert!(before.is_other_interface_than(&Selected::new("en1", 6, None)));
    assert!(!before.is_other_interface_than(&Selected::new(
        "en0",
        6,
        Some("10.0.0.1".parse().unwrap())
    )));
}

#[test]
fn the_fixtures_read_back_as_recorded() {
    let defaults = |table| routes(table).iter().filter(|r| r.is_default()).count();
    assert_eq!(defaults(fixtures::DARWIN_UTUN_DEFAULT), 2);
    assert_eq!(defaults(fixtures::LINUX_TWO_DEFAULTS), 2);
    assert_eq!(defaults(fixtures::OPENBSD_OWN_DEFAULT), 2);
    assert_eq!(defaults(fixtures::FREEBSD_IPV6_ONLY), 1);
    assert_eq!(defaults(fixtures::NETBSD_NO_DEFAULT), 0);
    assert_eq!(
        routes(fixtures::NETBSD_NO_DEFAULT).len(),
        1,
        "127.0.0.1 only; abbreviations skipped"
    );
    let linux = routes(fixtures::LINUX_TWO_DEFAULTS);
    assert_eq!((linux[0].metric, linux[2].destination.to_string()), (600, "10.0.0.0/24".into()));
    assert!(routes(fixtures::DARWIN_UTUN_DEFAULT)[1].scoped);
}

#[test]
fn a_netlink_dump_reads_as_a_table() {
    let route = |table, kind, interface, priority| RouteMessage {
        removed: false,
        destination: "0.0.0.0/0".parse().unwrap(),
        table,
        kind,
        interface,
        gateway: Some("10.0.0.1".parse().unwrap()),
        priority,
    };
    let name_of = |index| (index == 2).then(|| "eth0".to_string());
    let entry = RouteEntry::from_netlink(&route(254, 1, Some(2), 100), name_of).unwrap();
    assert_eq!((entry.interface.as_str(), entry.metric, entry.is_default()), ("eth0", 100, true));
    for skipped in [
        route(52, 1, Some(2), 0),
        route(254, 7, Some(2), 0),
        route(254, 1, None, 0),
        route(254, 1, Some(3), 0),
    ] {
        assert_eq!(RouteEntry::from_netlink(&skipped, name_of), None, "{skipped:?}");
    }
}

#[test]
fn a_routing_socket_dump_reads_as_a_table() {
    use crate::platform::route_socket::DumpedDefault;
    let name_of = |index| {
        [(6, "en0"), (22, "utun3")].iter().find(|(i, _)| *i == index).map(|(_, n)| n.to_string())
    };
    let dumped = [
        DumpedDefault { ipv6: false, gateway: None, interface: 22, scoped: false },
        DumpedDefault {
            ipv6: false,
            gateway: Some("192.168.1.1".parse().unwrap()),
            interface: 6,
            scoped: true,
        },
        DumpedDefault { ipv6: true, gateway: None, interface: 9, scoped: false },
    ];
    let table: Vec<RouteEntry> =
        dumped.iter().filter_map(|d| RouteEntry::from_dump(d, name_of)).collect();
    assert_eq!(table.len(), 2, "index 9 has no name");
    assert!(table.iter().all(RouteEntry::is_default));
    let chosen = effective_interface(&table, &darwin_interfaces(), "utun3", &NoDelegates);
    assert_eq!(chosen, Some(Selected::new("en0", 6, Some("192.168.1.1".parse().unwrap()))));
}
