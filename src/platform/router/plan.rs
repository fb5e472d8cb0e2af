//! The diff: which `ip` commands take the kernel from the state we last applied to the state
//! we want. Pure, so every case is a plain unit test.

use super::op::{Family, IpOp, POLICY_RULES};
use super::RouterConfig;
use crate::prefix::Prefix;
use std::collections::HashSet;

/// Below this MTU Linux removes IPv6 from an interface, so IPv6 addresses and routes on it
/// would only fail.
const IPV6_MIN_MTU: u16 = 1280;

/// The form in which a configuration is applied and remembered: without duplicates, routes
/// written as networks (`ip` refuses host bits in a route), and without IPv6 entries when
/// the kernel or the interface cannot carry IPv6.
pub(super) fn normalize(desired: &RouterConfig, ipv6: bool) -> RouterConfig {
    let keep = |p: &Prefix| p.is_ipv4() || (ipv6 && desired.mtu >= IPV6_MIN_MTU);
    RouterConfig {
        tun: desired.tun.clone(),
        mtu: desired.mtu,
        addresses: unique(desired.addresses.iter().copied().filter(keep)),
        routes: unique(desired.routes.iter().map(Prefix::network).filter(keep)),
        cgnat_drop_disabled: desired.cgnat_drop_disabled,
    }
}

/// The prefixes in their first-seen order, each once; hashed, as a 10,000-peer tailnet has
/// 10,000 routes or more.
fn unique(prefixes: impl Iterator<Item = Prefix>) -> Vec<Prefix> {
    let mut seen = HashSet::new();
    prefixes.filter(|prefix| seen.insert(*prefix)).collect()
}

/// The families that get policy rules.
pub(super) fn rule_families(ipv6: bool) -> &'static [Family] {
    if ipv6 {
        &[Family::V4, Family::V6]
    } else {
        &[Family::V4]
    }
}

/// Commands from `applied` (`None` before the first apply) to `desired`, both normalized.
/// Removals come first so that a prefix moving between lists never collides with itself.
/// A change of device is a move: everything on the old one is removed, everything on the
/// new one added.
pub(super) fn apply_ops(
    applied: Option<&RouterConfig>,
    desired: &RouterConfig,
    ipv6: bool,
) -> Vec<IpOp> {
    let nothing = RouterConfig::default();
    let before = applied.unwrap_or(&nothing);
    let new_device = before.tun != desired.tun;
    let gone = |old: &[Prefix], new: &[Prefix]| -> Vec<Prefix> {
        let new: HashSet<&Prefix> = new.iter().collect();
        old.iter().filter(|p| new_device || !new.contains(p)).copied().collect()
    };
    let (old_tun, tun) = (&before.tun, &desired.tun);

    let mut ops = Vec::new();
    for route in gone(&before.routes, &desired.routes) {
        ops.push(IpOp::DeleteRoute { tun: old_tun.clone(), route });
    }
    for address in gone(&before.addresses, &desired.addresses) {
        ops.push(IpOp::DeleteAddress { tun: old_tun.clone(), address });
    }
    for address in gone(&desired.addresses, &before.addresses) {
        ops.push(IpOp::AddAddress { tun: tun.clone(), address });
    }
    if new_device || before.mtu != desired.mtu {
        ops.push(IpOp::SetMtu { tun: tun.clone(), mtu: desired.mtu });
    }
    if new_device {
        ops.push(IpOp::SetUp { tun: tun.clone() });
    }
    if applied.is_none() {
        for &family in rule_families(ipv6) {
            ops.extend(POLICY_RULES.iter().map(|&rule| IpOp::AddRule { family, rule }));
        }
    }
    for route in gone(&desired.routes, &before.routes) {
        ops.push(IpOp::AddRoute { tun: tun.clone(), route });
    }
    ops
}

/// Commands that undo `applied`: our rules and routes. Addresses stay; they vanish with the
/// device when the TUN descriptor closes.
pub(super) fn shutdown_ops(applied: &RouterConfig, ipv6: bool) -> Vec<IpOp> {
    let mut ops = delete_rules(ipv6);
    for &route in &applied.routes {
        ops.push(IpOp::DeleteRoute { tun: applied.tun.clone(), route });
    }
    ops
}

/// Commands that remove whatever a crashed run may have left: our rules, and any table-52
/// route through `tun` (there are none if the device died with the process).
pub(super) fn stale_ops(tun: &str, ipv6: bool) -> Vec<IpOp> {
    let mut ops = delete_rules(ipv6);
    for &family in rule_families(ipv6) {
        ops.push(IpOp::FlushRoutes { family, tun: tun.to_string() });
    }
    ops
}

fn delete_rules(ipv6: bool) -> Vec<IpOp> {
    rule_families(ipv6)
        .iter()
        .flat_map(|&family| POLICY_RULES.iter().map(move |&rule| IpOp::DeleteRule { family, rule }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes(list: &[&str]) -> Vec<Prefix> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn config(tun: &str, addresses: &[&str], routes: &[&str]) -> RouterConfig {
        RouterConfig {
            tun: tun.into(),
            mtu: 1280,
            addresses: prefixes(addresses),
            routes: prefixes(routes),
            ..RouterConfig::default()
        }
    }

    fn lines(ops: &[IpOp]) -> Vec<String> {
        ops.iter()
            .map(|op| format!("{} {}", op.family().map_or("--", |f| f.flag()), op.command_line()))
            .collect()
    }

    const RULES_V4: [&str; 4] = [
        "-4 rule add pref 5210 fwmark 0x80000/0xff0000 table main",
        "-4 rule add pref 5230 fwmark 0x80000/0xff0000 table default",
        "-4 rule add pref 5250 fwmark 0x80000/0xff0000 type unreachable",
        "-4 rule add pref 5270 table 52",
    ];

    #[test]
    fn first_apply_sets_up_everything_in_order() {
        let desired = config(
            "weft0",
            &["100.64.0.1/32", "fd7a:115c:a1e0::1/128"],
            &["100.64.0.2/32", "fd7a:115c:a1e0::/48"],
        );
        let mut expected = vec![
            "-4 address add 100.64.0.1/32 dev weft0".to_string(),
            "-6 address add fd7a:115c:a1e0::1/128 dev weft0".into(),
            "-- link set dev weft0 mtu 1280".into(),
            "-- link set dev weft0 up".into(),
        ];
        expected.extend(RULES_V4.iter().map(|s| s.to_string()));
        expected.extend(RULES_V4.iter().map(|s| s.replace("-4", "-6")));
        expected.push("-4 route add 100.64.0.2/32 dev weft0 table 52".into());
        expected.push("-6 route add fd7a:115c:a1e0::/48 dev weft0 table 52".into());
        assert_eq!(lines(&apply_ops(None, &desired, true)), expected);
    }

    #[test]
    fn first_apply_without_ipv6_has_only_ipv4_rules() {
        let desired = config("weft0", &["100.64.0.1/32"], &[]);
        let ops = lines(&apply_ops(None, &desired, false));
        assert!(ops.iter().all(|line| !line.starts_with("-6")), "{ops:?}");
        assert_eq!(ops.iter().filter(|line| line.contains("rule add")).count(), 4);
    }

    #[test]
    fn applying_the_same_state_again_does_nothing() {
        let state = config("weft0", &["100.64.0.1/32"], &["100.64.0.2/32", "::/0"]);
        assert_eq!(apply_ops(Some(&state), &state, true), []);
    }

    #[test]
    fn adds_only_the_new_route() {
        let before = config("weft0", &["100.64.0.1/32"], &["100.64.0.2/32"]);
        let after = config("weft0", &["100.64.0.1/32"], &["100.64.0.2/32", "10.1.0.0/16"]);
        assert_eq!(
            lines(&apply_ops(Some(&before), &after, true)),
            ["-4 route add 10.1.0.0/16 dev weft0 table 52"]
        );
    }

    #[test]
    fn one_changed_route_among_ten_thousand_is_one_command_each_way() {
        let hosts: Vec<Prefix> = (0..10_000u32)
            .map(|i| Prefix::host(std::net::Ipv4Addr::from(0x6440_0000 + i).into()))
            .collect();
        let before = RouterConfig { routes: hosts.clone(), ..config("weft0", &[], &[]) };
        let mut routes = hosts;
        routes[4321] = "10.1.0.0/16".parse().unwrap();
        routes.push(routes[0]);
        let after = normalize(&RouterConfig { routes, ..before.clone() }, true);
        assert_eq!(after.routes.len(), 10_000, "the repeated route is listed once");
        assert_eq!(
            lines(&apply_ops(Some(&before), &after, true)),
            [
                "-4 route del 100.64.16.225/32 dev weft0 table 52",
                "-4 route add 10.1.0.0/16 dev weft0 table 52"
            ]
        );
    }

    #[test]
    fn deletes_only_the_removed_route() {
        let before = config("weft0", &[], &["100.64.0.2/32", "fd7a:115c:a1e0::/48", "::/0"]);
        let after = config("weft0", &[], &["100.64.0.2/32", "fd7a:115c:a1e0::/48"]);
        assert_eq!(
            lines(&apply_ops(Some(&before), &after, true)),
            ["-6 route del ::/0 dev weft0 table 52"]
        );
    }

    #[test]
    fn swaps_an_address_removing_before_adding() {
        let before = config("weft0", &["100.64.0.1/32", "fd7a:115c:a1e0::1/128"], &[]);
        let after = config("weft0", &["100.64.0.9/32", "fd7a:115c:a1e0::1/128"], &[]);
        assert_eq!(
            lines(&apply_ops(Some(&before), &after, true)),
            ["-4 address del 100.64.0.1/32 dev weft0", "-4 address add 100.64.0.9/32 dev weft0",]
        );
    }

    #[test]
    fn changes_the_mtu_alone() {
        let before = config("weft0", &["100.64.0.1/32"], &[]);
        let after = RouterConfig { mtu: 1400, ..before.clone() };
        assert_eq!(
            lines(&apply_ops(Some(&before), &after, true)),
            ["-- link set dev weft0 mtu 1400"]
        );
    }

    #[test]
    fn moving_to_another_device_moves_everything_but_the_rules() {
        let before = config("old0", &["100.64.0.1/32"], &["100.64.0.2/32"]);
        let after = config("new0", &["100.64.0.1/32"], &["100.64.0.2/32"]);
        assert_eq!(
            lines(&apply_ops(Some(&before), &after, true)),
            [
                "-4 route del 100.64.0.2/32 dev old0 table 52",
                "-4 address del 100.64.0.1/32 dev old0",
                "-4 address add 100.64.0.1/32 dev new0",
                "-- link set dev new0 mtu 1280",
                "-- link set dev new0 up",
                "-4 route add 100.64.0.2/32 dev new0 table 52",
            ]
        );
    }

    #[test]
    fn normalizing_masks_routes_and_drops_duplicates() {
        let desired = config(
            "weft0",
            &["100.64.0.1/32", "100.64.0.1/32"],
            &["10.1.2.3/16", "10.1.0.0/16", "fd7a:115c:a1e0::5/48"],
        );
        let normal = normalize(&desired, true);
        assert_eq!(normal.addresses, prefixes(&["100.64.0.1/32"]));
        assert_eq!(normal.routes, prefixes(&["10.1.0.0/16", "fd7a:115c:a1e0::/48"]));
    }

    #[test]
    fn normalizing_drops_ipv6_when_the_kernel_or_the_mtu_cannot_carry_it() {
        let desired = config("weft0", &["100.64.0.1/32", "fd7a::1/128"], &["::/0", "0.0.0.0/0"]);
        let expect_v4_only = |normal: RouterConfig| {
            assert_eq!(normal.addresses, prefixes(&["100.64.0.1/32"]));
            assert_eq!(normal.routes, prefixes(&["0.0.0.0/0"]));
        };
        expect_v4_only(normalize(&desired, false));
        expect_v4_only(normalize(&RouterConfig { mtu: 1279, ..desired.clone() }, true));
        assert_eq!(normalize(&desired, true).routes.len(), 2);
    }

    #[test]
    fn shutdown_removes_rules_and_routes_but_not_addresses() {
        let applied = config("weft0", &["100.64.0.1/32"], &["100.64.0.2/32"]);
        let ops = lines(&shutdown_ops(&applied, false));
        let mut expected: Vec<String> =
            RULES_V4.iter().map(|s| s.replace(" add ", " del ")).collect();
        expected.push("-4 route del 100.64.0.2/32 dev weft0 table 52".into());
        assert_eq!(ops, expected);
    }

    #[test]
    fn stale_cleanup_covers_both_families() {
        let ops = lines(&stale_ops("weft0", true));
        assert_eq!(ops.iter().filter(|l| l.starts_with("-4 rule del")).count(), 4);
        assert_eq!(ops.iter().filter(|l| l.starts_with("-6 rule del")).count(), 4);
        assert!(ops.contains(&"-4 route flush table 52 dev weft0".to_string()));
        assert!(ops.contains(&"-6 route flush table 52 dev weft0".to_string()));
        assert_eq!(ops.len(), 10);
    }
}
