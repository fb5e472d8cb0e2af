//! When sockets must be bound again: only when the physical interface behind the default
//! route is another one (or the same name under a new index). A new gateway on the same
//! interface leaves bound sockets alone but moves what points at the gateway (NetBSD's
//! host routes, the OpenBSD rtable's or FreeBSD FIB's default).

use super::select::Selected;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Keep,
    /// Bind the sockets to the new selection (`None`: no physical default left; unbind).
    Rebind(Option<Selected>),
    /// Same interface, another gateway: re-point the routes via the gateway.
    Reroute(Selected),
}

/// The selection the daemon's sockets are bound to now.
#[derive(Debug, Default)]
pub(crate) struct Binding {
    current: Option<Selected>,
}

impl Binding {
    pub(crate) fn new(current: Option<Selected>) -> Binding {
        Binding { current }
    }

    pub(crate) fn current(&self) -> Option<&Selected> {
        self.current.as_ref()
    }

    /// Moves to `next` and says what that takes.
    pub(crate) fn decide(&mut self, next: Option<Selected>) -> Decision {
        let decision = match (&self.current, &next) {
            (None, None) => Decision::Keep,
            (Some(now), Some(new)) if !now.is_other_interface_than(new) => {
                match now.gateway() == new.gateway() {
                    true => Decision::Keep,
                    false => Decision::Reroute(new.clone()),
                }
            }
            _ => Decision::Rebind(next.clone()),
        };
        self.current = next;
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::bind::fixtures::{self, interfaces, routes};
    use crate::platform::bind::select::{effective_interface, InterfaceInfo};
    use crate::platform::link_monitor::{Change, Monitor};
    use crate::platform::route_socket::{LinkEvent, RouteChange};
    use std::cell::Cell;

    const UTUN3: u16 = 22;

    fn utun3_on_en0(interface: &InterfaceInfo) -> Option<u32> {
        (interface.name == "utun3").then_some(6)
    }

    /// macOS: en0 (6), en7 (14), our utun3 (22); the table as `netstat -rn` shows it now.
    struct Host {
        monitor: Monitor,
        binding: Binding,
        interfaces: Vec<InterfaceInfo>,
        table: String,
        selections: Cell<usize>,
    }

    impl Host {
        fn new(table: &str) -> Host {
            let interfaces = interfaces(&[("lo0", 1), ("en0", 6), ("en7", 14), ("utun3", 22)]);
            let mut monitor = Monitor::new();
            monitor.set_own_tun(Some(u32::from(UTUN3)));
            monitor.seed(&interfaces, &[]);
            let mut host = Host {
                monitor,
                binding: Binding::default(),
                interfaces,
                table: table.into(),
                selections: Cell::new(0),
            };
            host.binding = Binding::new(select(&host.table, &host.interfaces, &host.selections));
            host
        }

        /// The kernel's table is now `table`, and these events announced it.
        fn events(&mut self, table: &str, events: &[LinkEvent]) -> Decision {
            self.table = table.into();
            let changes: Vec<Change> = events.iter().map(Change::from).collect();
            // As the daemon does: only a major change has the table read again.
            if self.monitor.first_major(&changes).is_none() {
                return Decision::Keep;
            }
            let (table, interfaces, count) = (&self.table, &self.interfaces, &self.selections);
            self.binding.decide(select(table, interfaces, count))
        }
    }

    /// What the daemon will do after a major change: read the table, select; counted.
    fn select(table: &str, interfaces: &[InterfaceInfo], count: &Cell<usize>) -> Option<Selected> {
        count.set(count.get() + 1);
        effective_interface(&routes(table), interfaces, "utun3", &utun3_on_en0)
    }

    fn default_route(change: RouteChange, interface: u16) -> LinkEvent {
        LinkEvent::DefaultRoute { change, ipv6: false, interface }
    }

    fn en0() -> Selected {
        Selected::new("en0", 6, Some("192.168.1.1".parse().unwrap()))
    }

    #[test]
    fn our_own_exit_node_route_neither_reselects_nor_rebinds() {
        let mut host = Host::new(fixtures::DARWIN_EN0_DEFAULT);
        assert_eq!(host.binding.current(), Some(&en0()));
        let decision =
            host.events(fixtures::DARWIN_UTUN_DEFAULT, &[default_route(RouteChange::Added, UTUN3)]);
        assert_eq!(decision, Decision::Keep);
        assert_eq!(host.selections.get(), 1, "no second look at the table");
    }

    #[test]
    fn a_major_change_that_keeps_the_interface_keeps_the_binding() {
        let mut host = Host::new(fixtures::DARWIN_EN0_DEFAULT);
        let decision =
            host.events(fixtures::DARWIN_UTUN_DEFAULT, &[default_route(RouteChange::Changed, 6)]);
        assert_eq!(decision, Decision::Keep, "utun3 rides on en0: still en0");
        assert_eq!(host.selections.get(), 2);
    }

    #[test]
    fn moving_to_another_interface_rebinds() {
        let mut host = Host::new(fixtures::DARWIN_EN0_DEFAULT);
        let wifi_off: String = fixtures::DARWIN_EN0_DEFAULT
            .replace("UGScIg                en7", "UGScg                 en7");
        let wifi_off: String =
            wifi_off.lines().filter(|l| !l.contains("en0")).collect::<Vec<_>>().join("\n");
        let events = [
            LinkEvent::Interface { index: 6, up: false },
            default_route(RouteChange::Deleted, 6),
            default_route(RouteChange::Added, 14),
        ];
        let en7 = Selected::new("en7", 14, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(host.events(&wifi_off, &events), Decision::Rebind(Some(en7.clone())));
        assert_eq!(host.binding.current(), Some(&en7));
    }

    #[test]
    fn the_same_name_under_a_new_index_rebinds() {
        let mut host = Host::new(fixtures::DARWIN_EN0_DEFAULT);
        host.interfaces[1].index = 8;
        let events =
            [LinkEvent::InterfaceDeparted { index: 6 }, LinkEvent::InterfaceArrived { index: 8 }];
        let decision = host.events(fixtures::DARWIN_EN0_DEFAULT, &events);
        assert_eq!(decision, Decision::Rebind(Some(Selected::new("en0", 8, en0().gateway()))));
    }

    #[test]
    fn a_new_gateway_on_the_same_interface_reroutes_only() {
        let mut host = Host::new(fixtures::DARWIN_EN0_DEFAULT);
        let moved = fixtures::DARWIN_EN0_DEFAULT.replace("192.168.1.1 ", "192.168.1.254");
        let decision = host.events(&moved, &[default_route(RouteChange::Changed, 6)]);
        assert_eq!(
            decision,
            Decision::Reroute(Selected::new("en0", 6, Some("192.168.1.254".parse().unwrap())))
        );
    }

    #[test]
    fn losing_every_default_unbinds_and_getting_one_back_binds() {
        let mut host = Host::new(fixtures::DARWIN_EN0_DEFAULT);
        let none = "Routing tables\n\nInternet:\nDestination Gateway Flags Netif Expire\n";
        let gone =
            [default_route(RouteChange::Deleted, 6), default_route(RouteChange::Deleted, 14)];
        assert_eq!(host.events(none, &gone), Decision::Rebind(None));
        assert_eq!(host.events(none, &[LinkEvent::Resync]), Decision::Keep);
        let back =
            host.events(fixtures::DARWIN_EN0_DEFAULT, &[default_route(RouteChange::Added, 6)]);
        assert_eq!(back, Decision::Rebind(Some(en0())));
    }
}
