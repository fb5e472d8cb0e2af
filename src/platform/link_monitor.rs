//! The route monitor's judgement: which network changes are *major* (the daemon must
//! rebind its UDP sockets, re-apply its routes, look for its endpoints again) and which
//! it may ignore: repeats the kernel sends for nothing, addresses no peer could use, and
//! above all the changes we cause ourselves on our own tunnel (an exit-node default, the
//! routes in our own table), which would otherwise make every route we add trigger
//! another round of rebinding.
//!
//! Sans-IO: routing-socket [`LinkEvent`]s and netlink [`NetlinkEvent`]s come in as
//! [`Change`]s, a [`Verdict`] goes out. The daemon's `link_monitor` driver feeds it.

use crate::platform::bind::select::InterfaceInfo;
use crate::platform::interfaces::usable_endpoint;
use crate::platform::netlink::{NetlinkEvent, RTN_UNICAST};
use crate::platform::route_socket::LinkEvent;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// One change of the host's network, whichever kernel interface announced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// A default route came, went or changed.
    DefaultRoute {
        interface: u32,
    },
    /// A route in our own routing table (Linux's table 52): ours by construction.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    OwnTableRoute,
    /// An interface's state: administratively up and (on Linux) with a carrier.
    Link {
        index: u32,
        usable: bool,
    },
    LinkArrived {
        index: u32,
    },
    LinkDeparted {
        index: u32,
    },
    Address {
        index: u32,
        address: IpAddr,
        added: bool,
    },
    /// Messages were lost: everything must be read again.
    Resync,
}

impl From<&LinkEvent> for Change {
    fn from(event: &LinkEvent) -> Change {
        match *event {
            LinkEvent::DefaultRoute { interface, .. } => {
                Change::DefaultRoute { interface: u32::from(interface) }
            }
            LinkEvent::Interface { index, up } => {
                Change::Link { index: u32::from(index), usable: up }
            }
            LinkEvent::InterfaceArrived { index } => {
                Change::LinkArrived { index: u32::from(index) }
            }
            LinkEvent::InterfaceDeparted { index } => {
                Change::LinkDeparted { index: u32::from(index) }
            }
            LinkEvent::AddressAdded { index, address } => {
                Change::Address { index: u32::from(index), address, added: true }
            }
            LinkEvent::AddressRemoved { index, address } => {
                Change::Address { index: u32::from(index), address, added: false }
            }
            LinkEvent::Resync => Change::Resync,
        }
    }
}

impl Change {
    /// The change a netlink message announces, given our own routing table; `None` for
    /// routes that are neither defaults nor ours (the kernel's connected and local routes).
    // Netlink is Linux's; the other OSes announce changes as `LinkEvent`s.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn from_netlink(event: &NetlinkEvent, own_table: u32) -> Option<Change> {
        Some(match event {
            NetlinkEvent::Link { index, removed: true, .. } => {
                Change::LinkDeparted { index: *index }
            }
            NetlinkEvent::Link { index, usable, .. } => {
                Change::Link { index: *index, usable: *usable }
            }
            NetlinkEvent::Address { index, address, removed } => {
                Change::Address { index: *index, address: address.addr(), added: !removed }
            }
            NetlinkEvent::Route(route) if route.table == own_table => Change::OwnTableRoute,
            NetlinkEvent::Route(route)
                if route.destination.bits() == 0 && route.kind == RTN_UNICAST =>
            {
                Change::DefaultRoute { interface: route.interface.unwrap_or(0) }
            }
            NetlinkEvent::Route(_) => return None,
            NetlinkEvent::Overrun => Change::Resync,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ignore,
    /// Rebind the UDP sockets, re-apply routes, re-select the physical interface.
    Major,
}

/// What the monitor remembers to tell a real change from a repeat.
#[derive(Debug, Default)]
pub(crate) struct Monitor {
    own_tun: Option<u32>,
    usable: HashMap<u32, bool>,
    addresses: HashSet<(u32, IpAddr)>,
}

impl Monitor {
    pub(crate) fn new() -> Monitor {
        Monitor::default()
    }

    /// Our tunnel's interface index, once it exists (again: a re-created TUN gets a new one).
    pub(crate) fn set_own_tun(&mut self, index: Option<u32>) {
        self.own_tun = index;
    }

    /// The interfaces and addresses as read at start or after a resync, so that the
    /// kernel's re-announcements of them count as repeats.
    pub(crate) fn seed(&mut self, interfaces: &[InterfaceInfo], addresses: &[(u32, IpAddr)]) {
        self.usable = interfaces.iter().map(|i| (i.index, i.up)).collect();
        self.addresses = addresses.iter().copied().collect();
    }

    /// Judges a batch (what one read of the socket gave), every change of it so that the
    /// remembered state follows them all; the first major change, if any.
    pub(crate) fn first_major<'a>(&mut self, changes: &'a [Change]) -> Option<&'a Change> {
        let mut first = None;
        for change in changes {
            if self.judge(change) == Verdict::Major && first.is_none() {
                first = Some(change);
            }
        }
        first
    }

    pub(crate) fn judge(&mut self, change: &Change) -> Verdict {
        let own = |index: &u32| Some(*index) == self.own_tun;
        let major_unless = |ignore: bool| if ignore { Verdict::Ignore } else { Verdict::Major };
        match change {
            Change::Resync => {
                self.usable.clear();
                self.addresses.clear();
                Verdict::Major
            }
            Change::OwnTableRoute | Change::LinkArrived { .. } => Verdict::Ignore,
            Change::DefaultRoute { interface } => major_unless(own(interface)),
            Change::Link { index, .. }
            | Change::LinkDeparted { index }
            | Change::Address { index, .. }
                if own(index) =>
            {
                Verdict::Ignore
            }
            Change::Link { index, usable } => {
                let before = self.usable.insert(*index, *usable);
                major_unless(before == Some(*usable) || (before.is_none() && !usable))
            }
            Change::LinkDeparted { index } => {
                self.usable.remove(index);
                self.addresses.retain(|(i, _)| i != index);
                Verdict::Major
            }
            Change::Address { index, address, added } => {
                self.judge_address(*index, *address, *added)
            }
        }
    }

    /// Addresses no peer could reach us at (link-local, loopback, the tailnet's ranges)
    /// change nothing; an added address we already know is the kernel repeating itself.
    fn judge_address(&mut self, index: u32, address: IpAddr, added: bool) -> Verdict {
        if !usable_endpoint(address) {
            return Verdict::Ignore;
        }
        let new = match added {
            true => self.addresses.insert((index, address)),
            false => {
                self.addresses.remove(&(index, address));
                true
            }
        };
        if new {
            Verdict::Major
        } else {
            Verdict::Ignore
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::route_socket::RouteChange;

    const OWN: u32 = 22;

    fn monitor() -> Monitor {
        let mut monitor = Monitor::new();
        monitor.set_own_tun(Some(OWN));
        let up = |name: &str, index| InterfaceInfo { name: name.into(), index, up: true };
        monitor.seed(&[up("en0", 6), up("utun3", OWN)], &[(6, "192.168.1.20".parse().unwrap())]);
        monitor
    }

    fn default_route(interface: u16) -> LinkEvent {
        LinkEvent::DefaultRoute { change: RouteChange::Added, ipv6: false, interface }
    }

    fn judge(monitor: &mut Monitor, event: LinkEvent) -> Verdict {
        monitor.judge(&Change::from(&event))
    }

    #[test]
    fn our_own_tunnel_changes_are_ignored() {
        let mut m = monitor();
        let own = OWN as u16;
        assert_eq!(judge(&mut m, default_route(own)), Verdict::Ignore);
        assert_eq!(judge(&mut m, LinkEvent::Interface { index: own, up: false }), Verdict::Ignore);
        let tailnet_address =
            LinkEvent::AddressAdded { index: own, address: "10.9.9.9".parse().unwrap() };
        assert_eq!(judge(&mut m, tailnet_address), Verdict::Ignore);
        assert_eq!(judge(&mut m, LinkEvent::InterfaceDeparted { index: own }), Verdict::Ignore);
    }

    #[test]
    fn the_physical_default_moving_is_major() {
        let mut m = monitor();
        assert_eq!(judge(&mut m, default_route(6)), Verdict::Major);
        assert_eq!(judge(&mut m, default_route(7)), Verdict::Major);
        m.set_own_tun(None);
        assert_eq!(judge(&mut m, default_route(OWN as u16)), Verdict::Major, "not ours any more");
    }

    #[test]
    fn link_state_matters_only_when_it_changes() {
        let mut m = monitor();
        let en0 = |up| LinkEvent::Interface { index: 6, up };
        assert_eq!(judge(&mut m, en0(true)), Verdict::Ignore, "already known up");
        assert_eq!(judge(&mut m, en0(false)), Verdict::Major);
        assert_eq!(judge(&mut m, en0(false)), Verdict::Ignore);
        assert_eq!(judge(&mut m, en0(true)), Verdict::Major);
        assert_eq!(judge(&mut m, LinkEvent::Interface { index: 30, up: false }), Verdict::Ignore);
        assert_eq!(judge(&mut m, LinkEvent::Interface { index: 31, up: true }), Verdict::Major);
        assert_eq!(judge(&mut m, LinkEvent::InterfaceArrived { index: 32 }), Verdict::Ignore);
        assert_eq!(judge(&mut m, LinkEvent::InterfaceDeparted { index: 6 }), Verdict::Major);
    }

    #[test]
    fn addresses_count_once_and_only_if_usable() {
        let mut m = monitor();
        let add =
            |address: &str| LinkEvent::AddressAdded { index: 6, address: address.parse().unwrap() };
        assert_eq!(judge(&mut m, add("192.168.1.20")), Verdict::Ignore, "seeded");
        assert_eq!(judge(&mut m, add("192.168.1.21")), Verdict::Major);
        assert_eq!(judge(&mut m, add("192.168.1.21")), Verdict::Ignore, "re-announced");
        assert_eq!(judge(&mut m, add("fe80::1")), Verdict::Ignore);
        let removed =
            LinkEvent::AddressRemoved { index: 6, address: "192.168.1.21".parse().unwrap() };
        assert_eq!(judge(&mut m, removed), Verdict::Major);
        assert_eq!(judge(&mut m, add("192.168.1.21")), Verdict::Major, "back again");
    }

    #[test]
    fn a_resync_is_major_and_forgets() {
        let mut m = monitor();
        assert_eq!(judge(&mut m, LinkEvent::Resync), Verdict::Major);
        let again = LinkEvent::AddressAdded { index: 6, address: "192.168.1.20".parse().unwrap() };
        assert_eq!(judge(&mut m, again), Verdict::Major);
    }

    #[test]
    fn a_batch_is_major_if_anything_in_it_is() {
        let mut m = monitor();
        let ours = Change::from(&default_route(OWN as u16));
        assert_eq!(m.first_major(&[ours.clone(), Change::OwnTableRoute]), None);
        let theirs = Change::from(&default_route(6));
        let batch = [ours, theirs.clone(), Change::from(&default_route(7))];
        assert_eq!(m.first_major(&batch), Some(&theirs));
        assert_eq!(judge(&mut m, default_route(7)), Verdict::Major, "judged too, after the first");
    }

    #[test]
    fn netlink_routes_in_our_table_are_ours_and_others_only_count_as_defaults() {
        let route = |destination: &str, table, interface| {
            NetlinkEvent::Route(crate::platform::netlink::RouteMessage {
                removed: false,
                destination: destination.parse().unwrap(),
                table,
                kind: RTN_UNICAST,
                interface: Some(interface),
                gateway: None,
                priority: 0,
            })
        };
        let from = |event| Change::from_netlink(&event, 52);
        assert_eq!(from(route("0.0.0.0/0", 52, OWN)), Some(Change::OwnTableRoute));
        assert_eq!(from(route("0.0.0.0/0", 254, 2)), Some(Change::DefaultRoute { interface: 2 }));
        assert_eq!(from(route("10.0.0.0/24", 254, 2)), None);
        let gone = NetlinkEvent::Link { index: 2, usable: false, removed: true };
        assert_eq!(from(gone), Some(Change::LinkDeparted { index: 2 }));
        assert_eq!(from(NetlinkEvent::Overrun), Some(Change::Resync));
        let mut m = monitor();
        let ours = from(route("100.64.0.0/10", 52, OWN)).unwrap();
        assert_eq!(m.judge(&ours), Verdict::Ignore);
    }
}
