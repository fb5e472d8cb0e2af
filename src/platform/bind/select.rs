//! Which physical interface the daemon's own traffic must leave by: the "effective
//! interface" behind the default route.
//!
//! When the default route points into a tunnel (our own exit-node routes, or on macOS
//! another VPN's utun), binding our sockets to that interface would loop the encrypted
//! traffic back into the tunnel. macOS tells which physical interface a utun rides on
//! (its *delegate*, `SIOCGIFDELEGATE`); elsewhere our own tunnel is simply passed over and
//! the next default wins. Pure: the route table, the interface list and the delegate
//! lookup are inputs, so every case is tested from recorded tables on any OS.

use crate::platform::netlink::{RouteMessage, RTN_UNICAST, RT_TABLE_MAIN};
use crate::platform::route_socket::DumpedDefault;
use crate::prefix::Prefix;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One row of a routing table, as a sysctl/netlink dump or `netstat -rn` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RouteEntry {
    pub destination: Prefix,
    pub gateway: Option<IpAddr>,
    /// The outgoing interface's name.
    pub interface: String,
    /// Linux's metric, OpenBSD's priority: lower wins. 0 where the OS has none.
    pub metric: u32,
    /// macOS's interface-scoped routes (`RTF_IFSCOPE`, flag `I`): one default per
    /// interface, used only by sockets bound to it, never the system's default.
    pub scoped: bool,
}

impl RouteEntry {
    /// A route of a netlink dump (`RTM_GETROUTE`) as a table row, if it is an ordinary
    /// route of the main table with an outgoing interface; `name_of` maps the index to
    /// the interface's name (`if_indextoname`, or the links of the same dump).
    // Netlink is Linux's; the other OSes' dumps come through `from_dump`.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn from_netlink(
        route: &RouteMessage,
        name_of: impl Fn(u32) -> Option<String>,
    ) -> Option<RouteEntry> {
        if route.removed || route.table != RT_TABLE_MAIN || route.kind != RTN_UNICAST {
            return None;
        }
        Some(RouteEntry {
            destination: route.destination,
            gateway: route.gateway,
            interface: name_of(route.interface?)?,
            metric: route.priority,
            scoped: false,
        })
    }

    /// A default route of a BSD/macOS table dump (`route_socket::default_routes`) or of
    /// illumos's answer to a lookup (`route_socket::lookup`) as a table row; `name_of` maps
    /// the index to the interface's name.
    // Not on Linux (netlink, `from_netlink`).
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    pub(crate) fn from_dump(
        route: &DumpedDefault,
        name_of: impl Fn(u32) -> Option<String>,
    ) -> Option<RouteEntry> {
        let any: IpAddr = match route.ipv6 {
            true => Ipv6Addr::UNSPECIFIED.into(),
            false => Ipv4Addr::UNSPECIFIED.into(),
        };
        Some(RouteEntry {
            destination: Prefix::new(any, 0).ok()?,
            gateway: route.gateway,
            interface: name_of(u32::from(route.interface))?,
            metric: 0,
            scoped: route.scoped,
        })
    }

    fn is_default(&self) -> bool {
        self.destination.bits() == 0
    }
}

/// One network interface of the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InterfaceInfo {
    pub name: String,
    pub index: u32,
    pub up: bool,
}

/// The kernel's answer to "which interface does this (tunnel) interface ride on": its
/// index, or `None` when it has no delegate. Only macOS keeps such a link.
pub(crate) trait DelegateLookup {
    fn delegate_of(&self, interface: &InterfaceInfo) -> Option<u32>;
}

impl<F: Fn(&InterfaceInfo) -> Option<u32>> DelegateLookup for F {
    fn delegate_of(&self, interface: &InterfaceInfo) -> Option<u32> {
        self(interface)
    }
}

/// For the OSes without delegates: every interface stands for itself. (macOS asks the
/// kernel, `delegate::KernelDelegates`.)
#[cfg_attr(target_os = "macos", allow(dead_code))]
pub(crate) struct NoDelegates;

impl DelegateLookup for NoDelegates {
    fn delegate_of(&self, _: &InterfaceInfo) -> Option<u32> {
        None
    }
}

/// The physical interface chosen, and the gateway on it (what host routes and a second
/// routing table point at).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Selected {
    interface: String,
    index: u32,
    gateway: Option<IpAddr>,
}

impl Selected {
    pub(crate) fn new(interface: &str, index: u32, gateway: Option<IpAddr>) -> Selected {
        Selected { interface: interface.to_string(), index, gateway }
    }

    pub(crate) fn interface(&self) -> &str {
        &self.interface
    }

    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    pub(crate) fn gateway(&self) -> Option<IpAddr> {
        self.gateway
    }

    /// Whether sockets bound to `self` must be rebound to be bound to `other`: another
    /// interface, or the same name under a new index (it was removed and re-created).
    pub(crate) fn is_other_interface_than(&self, other: &Selected) -> bool {
        self.interface != other.interface || self.index != other.index
    }
}

/// The interface the default route really leaves by, never `own_tun`.
///
/// Default routes are tried IPv4 first (most endpoints are IPv4), then by metric, then in
/// table order. A route whose interface has a delegate stands for the delegate; a route
/// into our own tunnel without one is passed over, so the next default (the physical one
/// our exit-node route outranks) wins. Interfaces that are down or unknown are passed over
/// too. macOS's interface-scoped defaults count only when no unscoped one is usable: once a
/// VPN takes the default, the physical interface keeps just its scoped one.
pub(crate) fn effective_interface(
    routes: &[RouteEntry],
    interfaces: &[InterfaceInfo],
    own_tun: &str,
    delegates: &dyn DelegateLookup,
) -> Option<Selected> {
    [false, true].into_iter().find_map(|scoped| {
        let mut defaults: Vec<&RouteEntry> =
            routes.iter().filter(|r| r.is_default() && r.scoped == scoped).collect();
        defaults.sort_by_key(|r| (!r.destination.is_ipv4(), r.metric));
        defaults.into_iter().find_map(|route| follow(route, routes, interfaces, own_tun, delegates))
    })
}

/// The physical interface behind one default route, if it is not our own tunnel.
fn follow(
    route: &RouteEntry,
    routes: &[RouteEntry],
    interfaces: &[InterfaceInfo],
    own_tun: &str,
    delegates: &dyn DelegateLookup,
) -> Option<Selected> {
    let via = interfaces.iter().find(|i| i.name == route.interface && i.up)?;
    let delegate = delegates
        .delegate_of(via)
        .filter(|index| *index != via.index)
        .and_then(|index| interfaces.iter().find(|i| i.index == index && i.up));
    match delegate {
        Some(physical) if physical.name != own_tun => {
            let gateway = gateway_on(routes, &physical.name, route.destination.is_ipv4());
            Some(Selected::new(&physical.name, physical.index, gateway))
        }
        _ if via.name == own_tun => None,
        _ => Some(Selected::new(&via.name, via.index, route.gateway)),
    }
}

/// The gateway of a default route (scoped or not) on `interface`, same family first.
fn gateway_on(routes: &[RouteEntry], interface: &str, ipv4: bool) -> Option<IpAddr> {
    let mut on_it: Vec<&RouteEntry> = routes
        .iter()
        .filter(|r| r.is_default() && r.interface == interface && r.gateway.is_some())
        .collect();
    on_it.sort_by_key(|r| (r.destination.is_ipv4() != ipv4, r.metric));
    on_it.first().and_then(|r| r.gateway)
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;
