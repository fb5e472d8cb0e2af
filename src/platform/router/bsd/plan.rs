//! From a [`RouterConfig`] to the routes and addresses one BSD-family kernel will hold, and
//! the commands between two such states. Pure, like the Linux plan it mirrors.

use super::op::{BsdOp, Gateway, Route};
use crate::platform::os_kind::OsKind;
use crate::platform::router::{plan, RouterConfig};
use crate::prefix::Prefix;
use std::net::IpAddr;

/// OpenBSD's priority for our default routes: 1 is the kernel's, connected routes have 4 and
/// static ones 8, so 2 wins over the physical default without replacing it.
const OPENBSD_DEFAULT_PRIORITY: u8 = 2;

/// The prefix length FreeBSD, NetBSD and OpenBSD get for an IPv6 host address: FreeBSD
/// refuses `X/128` on a tunnel (bug 218508), and the /48 makes the kernel route the whole
/// mesh range, as Tailscale does there.
const BSD_IPV6_ADDRESS_LEN: u8 = 48;

/// What the kernel holds for one configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct KernelState {
    pub tun: String,
    pub mtu: u16,
    pub addresses: Vec<Prefix>,
    pub routes: Vec<Route>,
}

/// The normalized configuration `os` can carry: illumos is IPv4-only for now (the tuntap
/// plumbing we know of is), the others follow the Linux rules.
pub(super) fn normalize(os: OsKind, desired: &RouterConfig) -> RouterConfig {
    plan::normalize(desired, os != OsKind::Illumos)
}

/// The kernel state `os` ends up in for the normalized `config`.
pub(super) fn kernel_state(os: OsKind, config: &RouterConfig) -> KernelState {
    let addresses: Vec<Prefix> = config.addresses.iter().map(|a| assigned(os, *a)).collect();
    // Routes the kernel makes itself for an address cannot be added (`File exists`), and
    // deleting them would cut the address off.
    let connected: Vec<Prefix> =
        addresses.iter().filter(|a| !a.is_host()).map(Prefix::network).collect();
    let own = |ipv4: bool| addresses.iter().find(|a| a.is_ipv4() == ipv4).map(Prefix::addr);
    let mut routes = Vec::new();
    for destination in config.routes.iter().filter(|r| !connected.contains(r)) {
        let gateway = match (os, own(destination.is_ipv4())) {
            (OsKind::FreeBsd | OsKind::Darwin, _) => Gateway::Interface,
            (_, Some(address)) => Gateway::OwnAddress(address),
            // No address of this family to name as the gateway: nothing could use the route.
            (_, None) => continue,
        };
        for (destination, priority) in default_route_form(os, destination) {
            let route = Route { destination, gateway: gateway.clone(), priority };
            if !routes.contains(&route) {
                routes.push(route);
            }
        }
    }
    KernelState { tun: config.tun.clone(), mtu: config.mtu, addresses, routes }
}

fn assigned(os: OsKind, address: Prefix) -> Prefix {
    let widen = matches!(os, OsKind::FreeBsd | OsKind::NetBsd | OsKind::OpenBsd);
    match address.addr() {
        IpAddr::V6(_) if widen && address.is_host() => {
            Prefix::new(address.addr(), BSD_IPV6_ADDRESS_LEN).unwrap_or(address)
        }
        _ => address,
    }
}

/// A default route as `os` accepts one next to the physical default: OpenBSD by priority,
/// the others as the two halves, which are more specific than any /0 and so never collide
/// with it (a second /0 is refused, and on macOS deleting it can take the physical one).
fn default_route_form(os: OsKind, route: &Prefix) -> Vec<(Prefix, Option<u8>)> {
    if route.bits() != 0 {
        return vec![(*route, None)];
    }
    if os == OsKind::OpenBsd {
        return vec![(*route, Some(OPENBSD_DEFAULT_PRIORITY))];
    }
    let halves: [&str; 2] =
        if route.is_ipv4() { ["0.0.0.0/1", "128.0.0.0/1"] } else { ["::/1", "8000::/1"] };
    halves.iter().filter_map(|h| h.parse().ok()).map(|half| (half, None)).collect()
}

/// Commands from `before` (`None` when nothing is known to be in place) to `after`.
/// Removals come first; a change of interface moves everything.
pub(super) fn apply_ops(before: Option<&KernelState>, after: &KernelState) -> Vec<BsdOp> {
    let nothing = KernelState::default();
    let old = before.unwrap_or(&nothing);
    let moved = old.tun != after.tun;
    let (old_tun, tun) = (&old.tun, &after.tun);
    let mut ops = Vec::new();
    for route in old.routes.iter().filter(|r| moved || !after.routes.contains(r)) {
        ops.push(BsdOp::DeleteRoute { tun: old_tun.clone(), route: route.clone() });
    }
    for &address in old.addresses.iter().filter(|a| moved || !after.addresses.contains(a)) {
        ops.push(BsdOp::DeleteAddress { tun: old_tun.clone(), address });
    }
    for &address in after.addresses.iter().filter(|a| moved || !old.addresses.contains(a)) {
        ops.push(BsdOp::AddAddress { tun: tun.clone(), address });
    }
    if moved || old.mtu != after.mtu {
        ops.push(BsdOp::SetMtu { tun: tun.clone(), mtu: after.mtu });
    }
    if moved {
        ops.push(BsdOp::SetUp { tun: tun.clone() });
    }
    for route in after.routes.iter().filter(|r| moved || !old.routes.contains(r)) {
        ops.push(BsdOp::AddRoute { tun: tun.clone(), route: route.clone() });
    }
    ops
}

/// Commands that remove `state`: routes first, then the addresses (which on FreeBSD and
/// NetBSD outlive the daemon, because the interface does).
pub(super) fn undo_ops(state: &KernelState) -> Vec<BsdOp> {
    let routes = state
        .routes
        .iter()
        .map(|route| BsdOp::DeleteRoute { tun: state.tun.clone(), route: route.clone() });
    let addresses = state
        .addresses
        .iter()
        .map(|&address| BsdOp::DeleteAddress { tun: state.tun.clone(), address });
    routes.chain(addresses).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(addresses: &[&str], routes: &[&str]) -> RouterConfig {
        RouterConfig {
            tun: "tun0".into(),
            mtu: 1280,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            routes: routes.iter().map(|r| r.parse().unwrap()).collect(),
            ..RouterConfig::default()
        }
    }

    fn destinations(state: &KernelState) -> Vec<String> {
        let show = |r: &Route| match r.priority {
            Some(p) => format!("{} prio {p}", r.destination),
            None => r.destination.to_string(),
        };
        state.routes.iter().map(show).collect()
    }

    #[test]
    fn default_routes_become_halves_except_on_openbsd() {
        let c = config(&["100.64.0.1/32", "fd7a:115c:a1e0::1/128"], &["0.0.0.0/0", "::/0"]);
        for os in [OsKind::FreeBsd, OsKind::NetBsd, OsKind::Darwin] {
            let state = kernel_state(os, &normalize(os, &c));
            assert_eq!(destinations(&state), ["0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"]);
        }
        let openbsd = kernel_state(OsKind::OpenBsd, &normalize(OsKind::OpenBsd, &c));
        assert_eq!(destinations(&openbsd), ["0.0.0.0/0 prio 2", "::/0 prio 2"]);
        let illumos = kernel_state(OsKind::Illumos, &normalize(OsKind::Illumos, &c));
        assert_eq!(destinations(&illumos), ["0.0.0.0/1", "128.0.0.0/1"], "IPv4 only");
    }

    #[test]
    fn gateways_are_the_interface_or_our_own_address() {
        let c = config(&["100.64.0.1/32"], &["10.0.0.0/8", "fd00::/8"]);
        let freebsd = kernel_state(OsKind::FreeBsd, &c);
        assert_eq!(freebsd.routes.len(), 2);
        assert!(freebsd.routes.iter().all(|r| r.gateway == Gateway::Interface));
        let netbsd = kernel_state(OsKind::NetBsd, &c);
        assert_eq!(destinations(&netbsd), ["10.0.0.0/8"], "no IPv6 address to name");
        assert_eq!(netbsd.routes[0].gateway, Gateway::OwnAddress("100.64.0.1".parse().unwrap()));
    }

    #[test]
    fn ipv6_host_addresses_widen_where_the_kernel_needs_it() {
        let c =
            config(&["fd7a:115c:a1e0::1/128"], &["fd7a:115c:a1e0::/48", "fd7a:115c:a1e0::9/128"]);
        let openbsd = kernel_state(OsKind::OpenBsd, &c);
        assert_eq!(
            openbsd.addresses,
            [Prefix::new("fd7a:115c:a1e0::1".parse().unwrap(), 48).unwrap()]
        );
        assert_eq!(destinations(&openbsd), ["fd7a:115c:a1e0::9/128"], "the /48 is connected");
        let darwin = kernel_state(OsKind::Darwin, &c);
        assert_eq!(darwin.addresses, c.addresses);
        assert_eq!(darwin.routes.len(), 2);
    }

    #[test]
    fn changing_our_address_moves_the_routes_that_name_it() {
        let before = kernel_state(OsKind::NetBsd, &config(&["100.64.0.1/32"], &["10.0.0.0/8"]));
        let after = kernel_state(OsKind::NetBsd, &config(&["100.64.0.2/32"], &["10.0.0.0/8"]));
        let lines: Vec<String> = apply_ops(Some(&before), &after)
            .iter()
            .map(|op| op.command(OsKind::NetBsd).to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "route -q -n delete -inet 10.0.0.0/8 -iface 100.64.0.1",
                "ifconfig tun0 inet 100.64.0.1/32 -alias",
                "ifconfig tun0 inet 100.64.0.2/32 alias",
                "route -q -n add -inet 10.0.0.0/8 -iface 100.64.0.2",
            ]
        );
    }

    #[test]
    fn the_same_state_needs_nothing_and_undo_removes_all() {
        let state = kernel_state(OsKind::FreeBsd, &config(&["100.64.0.1/32"], &["10.0.0.0/8"]));
        assert_eq!(apply_ops(Some(&state), &state), []);
        let undo = undo_ops(&state);
        assert!(matches!(undo[0], BsdOp::DeleteRoute { .. }));
        assert!(matches!(undo[1], BsdOp::DeleteAddress { .. }));
        assert_eq!(undo.len(), 2);
    }
}
