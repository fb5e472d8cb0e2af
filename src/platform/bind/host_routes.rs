//! NetBSD has no per-socket way off the tunnel (no FIBs, no rtables, no `IP_BOUND_IF`), so
//! when an exit node's routes cover the whole Internet, every remote endpoint the daemon
//! talks to (peers' current UDP endpoints, DERP, control, STUN) gets a host route via the
//! physical gateway instead, as wg-quick does. A host route outranks the exit node's /1
//! routes by being longer.
//!
//! Pure planning: the set of routes wanted now, and the `route` ops from what was applied
//! to it, for the BSD router to run (`BsdRouter::run_bypass_routes`).

use super::select::Selected;
use crate::platform::interfaces::usable_endpoint;
use crate::platform::router::bsd::{BsdOp, HostRoute};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// One host route per endpoint, via the physical default of its family (`physical`: the
/// selections of each family, as `select::effective_interface` gives them). Endpoints of
/// a family without a physical gateway get none, and so do those no peer sits at
/// (loopback, link-local, multicast, the tailnet's own ranges).
pub(crate) fn wanted(
    endpoints: impl IntoIterator<Item = IpAddr>,
    physical: &[Selected],
) -> BTreeSet<HostRoute> {
    endpoints
        .into_iter()
        .filter(|endpoint| usable_endpoint(*endpoint) && !endpoint.is_multicast())
        .filter_map(|endpoint| {
            let via = physical
                .iter()
                .find(|s| s.gateway().is_some_and(|g| g.is_ipv4() == endpoint.is_ipv4()))?;
            let gateway = via.gateway()?;
            Some(HostRoute { endpoint, gateway, interface: via.interface().to_string() })
        })
        .collect()
}

/// The ops that take the kernel from `applied` to `wanted`: deletes first, so that an
/// endpoint whose gateway moved is free again before its new route is added.
pub(crate) fn plan(applied: &BTreeSet<HostRoute>, wanted: &BTreeSet<HostRoute>) -> Vec<BsdOp> {
    let deletes = applied.difference(wanted).cloned().map(BsdOp::DeleteHostRoute);
    let adds = wanted.difference(applied).cloned().map(BsdOp::AddHostRoute);
    deletes.chain(adds).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::os_kind::OsKind;
    use crate::platform::router::bsd::{BsdRouter, CommandLine, CommandRunner};
    use crate::platform::router::ToolOutput;
    use std::cell::RefCell;
    use std::io;
    use std::rc::Rc;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn physical() -> Vec<Selected> {
        vec![
            Selected::new("wm0", 1, Some(ip("10.0.2.2"))),
            Selected::new("wm0", 1, Some(ip("fe80::1"))),
        ]
    }

    fn route(endpoint: &str, gateway: &str) -> HostRoute {
        HostRoute { endpoint: ip(endpoint), gateway: ip(gateway), interface: "wm0".into() }
    }

    fn lines(ops: &[BsdOp]) -> Vec<String> {
        ops.iter().map(|op| op.command(OsKind::NetBsd).to_string()).collect()
    }

    #[test]
    fn each_reachable_endpoint_goes_via_its_familys_gateway() {
        let endpoints =
            ["203.0.113.7", "2001:db8::7", "127.0.0.1", "100.64.0.9", "fe80::9", "224.0.0.1"];
        let wanted = wanted(endpoints.map(ip), &physical());
        let expected: BTreeSet<HostRoute> =
            [route("203.0.113.7", "10.0.2.2"), route("2001:db8::7", "fe80::1")].into();
        assert_eq!(wanted, expected);
        let v4_only = super::wanted([ip("2001:db8::7")], &physical()[..1]);
        assert!(v4_only.is_empty(), "no IPv6 gateway, no IPv6 host route");
    }

    #[test]
    fn the_plan_removes_first_then_adds() {
        let applied: BTreeSet<HostRoute> =
            [route("203.0.113.7", "10.0.2.2"), route("198.51.100.1", "10.0.2.2")].into();
        let moved: BTreeSet<HostRoute> =
            [route("203.0.113.7", "10.0.2.254"), route("192.0.2.5", "10.0.2.254")].into();
        assert_eq!(
            lines(&plan(&applied, &moved)),
            [
                "route -q -n delete -inet -host 198.51.100.1 10.0.2.2",
                "route -q -n delete -inet -host 203.0.113.7 10.0.2.2",
                "route -q -n add -inet -host 192.0.2.5 10.0.2.254",
                "route -q -n add -inet -host 203.0.113.7 10.0.2.254",
            ]
        );
        assert!(plan(&moved, &moved).is_empty());
    }

    #[test]
    fn a_link_local_gateway_carries_its_zone() {
        let ops = plan(&BTreeSet::new(), &[route("2001:db8::7", "fe80::1")].into());
        assert_eq!(lines(&ops), ["route -q -n add -inet6 -host 2001:db8::7 fe80::1%wm0"]);
    }

    /// A runner that records each command and answers like NetBSD's route(8).
    struct Recorder(Rc<RefCell<Vec<String>>>);

    impl CommandRunner for Recorder {
        fn run(&mut self, command: &CommandLine) -> io::Result<ToolOutput> {
            let line = command.to_string();
            self.0.borrow_mut().push(line.clone());
            let stderr = match line {
                l if l.contains("add") && l.contains("203.0.113.7") => {
                    "add host 203.0.113.7: gateway 10.0.2.2: File exists"
                }
                l if l.contains("192.0.2.5") => {
                    "add host 192.0.2.5: gateway 10.0.2.2: Network is unreachable"
                }
                _ => "",
            };
            Ok(ToolOutput { success: stderr.is_empty(), stderr: stderr.into() })
        }
    }

    #[test]
    fn the_bsd_router_runs_them_and_reports_only_real_failures() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let dir = crate::testing::fresh_dir("host-routes");
        let mut router =
            BsdRouter::new(OsKind::NetBsd, Box::new(Recorder(log.clone())), dir.clone());
        let present = plan(&BTreeSet::new(), &[route("203.0.113.7", "10.0.2.2")].into());
        assert_eq!(router.run_bypass_routes(&present), Ok(()));
        let unreachable = plan(&BTreeSet::new(), &[route("192.0.2.5", "10.0.2.2")].into());
        let error = router.run_bypass_routes(&unreachable).unwrap_err().to_string();
        assert!(error.contains("Network is unreachable"), "{error}");
        assert_eq!(log.borrow().len(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
