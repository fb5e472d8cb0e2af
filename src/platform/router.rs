//! Addresses, MTU and routes of the TUN interface, the Tailscale way: every tunnel route in
//! table 52, and policy rules that send everyone's traffic through table 52 first except the
//! daemon's own (marked) packets. The BSD family, macOS and illumos use [`bsd`] instead.
//!
//! The router remembers what it last applied and changes only the difference, so a netmap
//! update that adds one peer costs one `route add` rather than a rebuild.
//!
//! On Linux it also keeps weft's nftables table (`firewall`), which drops packets that
//! claim a tailnet source without coming through the tunnel; it comes and goes with the
//! routes. The BSD-family routers have no such table yet.

mod batch;
pub(crate) mod bsd;
mod firewall;
#[cfg(any(target_os = "linux", test))]
mod ipv6;
mod op;
mod plan;
mod tool;

#[cfg(all(test, target_os = "linux"))]
mod firewall_netns_test;
#[cfg(all(test, target_os = "linux"))]
mod netns_test;

#[cfg(target_os = "linux")]
use tool::SystemTool;
pub(crate) use tool::{Tool, ToolOutput};

use crate::platform::os_kind::OsKind;
use crate::platform::tun;
use crate::prefix::Prefix;
use firewall::{Firewall, FirewallConfig};
use std::fmt;

/// The smallest MTU an IPv4 interface may have.
const MIN_MTU: u16 = 68;

/// The state the daemon wants the kernel to have.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RouterConfig {
    /// The TUN interface, as [`tun::Tun::name`] reports it.
    pub tun: String,
    /// At least 68 (the IPv4 minimum); below 1280 the interface carries no IPv6, so IPv6
    /// entries are left out. Tailscale uses 1280.
    pub mtu: u16,
    /// Our own addresses, assigned as given (`100.x.y.z/32`, `fd7a:…/128`).
    pub addresses: Vec<Prefix>,
    /// Destinations routed into the tunnel (peers, subnets, exit-node defaults).
    pub routes: Vec<Prefix>,
    /// Control's node attribute `disable-linux-cgnat-drop-rule`: packets from the tailnet
    /// range that arrive on other interfaces are let in (Linux only).
    pub cgnat_drop_disabled: bool,
}

/// A routing change that did not happen, with the command and the tool's own words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RouterError(String);

impl fmt::Display for RouterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RouterError {}

pub(crate) struct Router(Backend);

enum Backend {
    /// Linux's `ip`. Built on every OS so its planning stays type-checked and unit-tested;
    /// only Linux (and tests) construct it.
    #[cfg_attr(not(any(target_os = "linux", test)), allow(dead_code))]
    Ip {
        tool: Box<dyn Tool>,
        firewall: Firewall,
        ipv6: bool,
        /// What the kernel was last brought to (normalized); `None` before the first apply
        /// and after shutdown.
        applied: Option<RouterConfig>,
    },
    Bsd(bsd::BsdRouter),
}

/// Names the OS whose router to drive instead of the one we were built for, with its tools
/// taken from `PATH`: how the BSD-family routers are exercised on Linux against fakes.
pub(crate) const ROUTER_OS_VARIABLE: &str = "WEFT_ROUTER";

impl Router {
    /// The router of this OS, or of the OS named by `WEFT_ROUTER`.
    pub(crate) fn new() -> Result<Router, RouterError> {
        match router_os()? {
            OsKind::Linux => Router::new_ip(),
            os => Ok(Router::bsd(bsd::BsdRouter::new(
                os,
                Box::<bsd::PathRunner>::default(),
                bsd::DEFAULT_DIR.into(),
            ))),
        }
    }

    /// A router driving `route`/`ifconfig` in the grammar `router` was made for.
    pub(crate) fn bsd(router: bsd::BsdRouter) -> Router {
        Router(Backend::Bsd(router))
    }

    /// A router driving the system's `ip`, with IPv6 included when the kernel supports it.
    #[cfg(target_os = "linux")]
    fn new_ip() -> Result<Router, RouterError> {
        let mut tool = SystemTool::ip();
        tool.run(&["-V"], "").map_err(|err| {
            RouterError(format!("cannot run `ip` (iproute2 is needed for routing): {err}"))
        })?;
        let ipv6 = ipv6::detect(&mut tool);
        if !ipv6 {
            log::info!("IPv6 policy routing is unavailable; IPv6 addresses and routes are skipped");
        }
        Ok(Router::with_tools(Box::new(tool), Box::new(SystemTool::nft()), ipv6))
    }

    #[cfg(not(target_os = "linux"))]
    fn new_ip() -> Result<Router, RouterError> {
        Err(not_implemented())
    }

    /// A router driving `ip` and `nft` instead of the system's: for tests, and for callers
    /// that know better whether IPv6 works.
    #[cfg_attr(not(any(target_os = "linux", test)), allow(dead_code))]
    pub(crate) fn with_tools(ip: Box<dyn Tool>, nft: Box<dyn Tool>, ipv6: bool) -> Router {
        Router(Backend::Ip { tool: ip, firewall: Firewall::new(nft), ipv6, applied: None })
    }

    /// Brings the kernel from the last applied state to `desired`. On failure the remembered
    /// state stays as it was, so the next call repeats the unfinished part (commands that
    /// already took effect are then accepted as done). On Linux the firewall table follows
    /// too; its failure leaves the routes in place and is reported like theirs.
    pub(crate) fn apply(&mut self, desired: &RouterConfig) -> Result<(), RouterError> {
        check(desired)?;
        let (tool, firewall, ipv6, applied) = match &mut self.0 {
            Backend::Ip { tool, firewall, ipv6, applied } => (tool, firewall, *ipv6, applied),
            Backend::Bsd(router) => return router.apply(desired),
        };
        let wanted =
            FirewallConfig { tun: desired.tun.clone(), drop_inbound: !desired.cgnat_drop_disabled };
        let desired = plan::normalize(desired, ipv6);
        let ops = plan::apply_ops(applied.as_ref(), &desired, ipv6);
        let routes = batch::run(tool.as_mut(), &ops);
        if routes.is_ok() {
            *applied = Some(desired);
        }
        both(routes, firewall.apply(&wanted))
    }

    /// The OS whose grammar this router speaks.
    pub(crate) fn os(&self) -> OsKind {
        match &self.0 {
            Backend::Ip { .. } => OsKind::Linux,
            Backend::Bsd(router) => router.os(),
        }
    }

    /// Runs the routes that keep our own traffic off the tunnel, as `platform::bind`
    /// planned them (the BSD family only: Linux's bypass is the mark and its rules).
    pub(crate) fn run_bypass_routes(&mut self, ops: &[bsd::BsdOp]) -> Result<(), RouterError> {
        match &mut self.0 {
            Backend::Bsd(router) => router.run_bypass_routes(ops),
            Backend::Ip { .. } if ops.is_empty() => Ok(()),
            Backend::Ip { .. } => {
                Err(RouterError("bypass routes are for the BSD-family routers".into()))
            }
        }
    }

    /// Removes our rules and routes, and on Linux our firewall table. On Linux the addresses
    /// go when the TUN descriptor is closed; elsewhere they are removed too, as the interface
    /// may outlive us.
    pub(crate) fn shutdown(&mut self) -> Result<(), RouterError> {
        match &mut self.0 {
            Backend::Ip { tool, firewall, ipv6, applied } => {
                let routes = match applied.take() {
                    Some(applied) => {
                        batch::run(tool.as_mut(), &plan::shutdown_ops(&applied, *ipv6))
                    }
                    None => Ok(()),
                };
                both(routes, firewall.remove())
            }
            Backend::Bsd(router) => router.shutdown(),
        }
    }

    /// Destroys the TUN interface `tun` where it outlives its descriptor (the BSDs'
    /// `/dev/tunN`); call after closing it. Elsewhere it went with the descriptor.
    pub(crate) fn destroy_interface(&mut self, tun: &str) -> Result<(), RouterError> {
        match &mut self.0 {
            Backend::Ip { .. } => Ok(()),
            Backend::Bsd(router) => router.destroy_interface(tun),
        }
    }

    /// Removes what a crashed run may have left behind: our rules in both families, any
    /// table-52 route through `tun` and our firewall table. Call it at start-up, before the
    /// first apply.
    pub(crate) fn remove_stale(tun: &str) -> Result<(), RouterError> {
        let mut router = Router::new()?;
        router.remove_stale_with_own_tool(tun)
    }

    /// [`Router::remove_stale`] through this router's tool. The BSD-family routers remove
    /// what their record names, whatever the interface was called.
    pub(crate) fn remove_stale_with_own_tool(&mut self, tun: &str) -> Result<(), RouterError> {
        check_interface_name(tun)?;
        match &mut self.0 {
            Backend::Ip { tool, firewall, ipv6, .. } => {
                let routes = batch::run(tool.as_mut(), &plan::stale_ops(tun, *ipv6));
                both(routes, firewall.remove_stale())
            }
            Backend::Bsd(router) => router.remove_stale(),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
impl Router {
    /// Whether this is the `ip` router with IPv6 on.
    fn has_ipv6(&self) -> bool {
        matches!(self.0, Backend::Ip { ipv6: true, .. })
    }
}

/// The OS named by `WEFT_ROUTER`, else the one we were built for.
fn router_os() -> Result<OsKind, RouterError> {
    router_os_named(std::env::var(ROUTER_OS_VARIABLE).ok())
}

fn router_os_named(name: Option<String>) -> Result<OsKind, RouterError> {
    match name {
        Some(name) => name.parse().map_err(|e| RouterError(format!("{ROUTER_OS_VARIABLE}: {e}"))),
        None => OsKind::current().ok_or_else(not_implemented),
    }
}

fn not_implemented() -> RouterError {
    RouterError(format!("routing is not implemented on {} yet", std::env::consts::OS))
}

/// Both outcomes of two independent steps: either failure, or both joined.
fn both(
    first: Result<(), RouterError>,
    second: Result<(), RouterError>,
) -> Result<(), RouterError> {
    match (first, second) {
        (Err(a), Err(b)) => Err(RouterError(format!("{a}; {b}"))),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// Refuses configurations that could only fail, before any command runs.
fn check(desired: &RouterConfig) -> Result<(), RouterError> {
    check_interface_name(&desired.tun)?;
    if desired.mtu < MIN_MTU {
        return Err(RouterError(format!(
            "MTU {} for {} is below the minimum of {MIN_MTU}",
            desired.mtu, desired.tun
        )));
    }
    Ok(())
}

/// Besides the kernel's rules, keeps out the characters that `ip`'s batch parser treats as
/// quotes, escapes or comments: the name is pasted into command lines.
fn check_interface_name(name: &str) -> Result<(), RouterError> {
    tun::validate_name(name).map_err(RouterError)?;
    match name.chars().find(|c| matches!(c, '"' | '\'' | '\\' | '#')) {
        Some(bad) => Err(RouterError(format!(
            "the interface name {name:?} contains {bad:?}, which `ip -batch` cannot take"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::io;
    use std::rc::Rc;

    type Runs = Rc<RefCell<Vec<String>>>;
    type Failure = Rc<RefCell<Option<String>>>;

    /// Records each run as `<program> <args>` followed by its stdin, and fails when told to.
    struct RecordingTool {
        program: &'static str,
        runs: Runs,
        fail_with: Failure,
    }

    impl Tool for RecordingTool {
        fn run(&mut self, args: &[&str], stdin: &str) -> io::Result<ToolOutput> {
            self.runs.borrow_mut().push(format!("{} {}\n{stdin}", self.program, args.join(" ")));
            Ok(match self.fail_with.borrow().clone() {
                Some(stderr) => ToolOutput { success: false, stderr },
                None => ToolOutput { success: true, stderr: String::new() },
            })
        }
    }

    /// What the router's `ip` and `nft` were asked, and the switches that make them fail.
    #[derive(Default)]
    struct Tools {
        ip: Runs,
        nft: Runs,
        ip_fails: Failure,
        nft_fails: Failure,
    }

    fn router(ipv6: bool) -> (Router, Tools) {
        let tools = Tools::default();
        let ip = RecordingTool {
            program: "ip",
            runs: tools.ip.clone(),
            fail_with: tools.ip_fails.clone(),
        };
        let nft = RecordingTool {
            program: "nft",
            runs: tools.nft.clone(),
            fail_with: tools.nft_fails.clone(),
        };
        (Router::with_tools(Box::new(ip), Box::new(nft), ipv6), tools)
    }

    fn config(routes: &[&str]) -> RouterConfig {
        RouterConfig {
            tun: "weft0".into(),
            mtu: 1280,
            addresses: vec!["100.64.0.1/32".parse().unwrap()],
            routes: routes.iter().map(|r| r.parse().unwrap()).collect(),
            ..RouterConfig::default()
        }
    }

    #[test]
    fn first_apply_is_one_batch_with_the_exact_command_text() {
        let (mut router, Tools { ip: runs, .. }) = router(false);
        router.apply(&config(&["100.64.0.2/32"])).unwrap();
        assert_eq!(
            *runs.borrow(),
            ["ip -4 -force -batch -\n\
              address add 100.64.0.1/32 dev weft0\n\
              link set dev weft0 mtu 1280\n\
              link set dev weft0 up\n\
              rule add pref 5210 fwmark 0x80000/0xff0000 table main\n\
              rule add pref 5230 fwmark 0x80000/0xff0000 table default\n\
              rule add pref 5250 fwmark 0x80000/0xff0000 type unreachable\n\
              rule add pref 5270 table 52\n\
              route add 100.64.0.2/32 dev weft0 table 52\n"]
        );
    }

    #[test]
    fn later_applies_send_only_the_difference() {
        let (mut router, Tools { ip: runs, .. }) = router(true);
        router.apply(&config(&["100.64.0.2/32"])).unwrap();
        let first = runs.borrow().len();
        assert_eq!(first, 2, "IPv4 and IPv6 rules");
        router.apply(&config(&["100.64.0.2/32"])).unwrap();
        assert_eq!(runs.borrow().len(), first, "an unchanged state runs nothing");
        router.apply(&config(&["fd7a:115c:a1e0::/48"])).unwrap();
        assert_eq!(
            runs.borrow()[first..],
            [
                "ip -4 -force -batch -\nroute del 100.64.0.2/32 dev weft0 table 52\n",
                "ip -6 -force -batch -\nroute add fd7a:115c:a1e0::/48 dev weft0 table 52\n",
            ]
        );
    }

    #[test]
    fn a_failed_apply_is_retried_in_full_next_time() {
        let (mut router, Tools { ip: runs, ip_fails: fail_with, .. }) = router(false);
        router.apply(&config(&[])).unwrap();
        *fail_with.borrow_mut() = Some("Error: no\nCommand failed -:1\n".into());
        let err = router.apply(&config(&["10.0.0.0/8"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`ip -4 -force -batch -` failed: `route add 10.0.0.0/8 dev weft0 table 52`: Error: no"
        );
        *fail_with.borrow_mut() = None;
        router.apply(&config(&["10.0.0.0/8"])).unwrap();
        assert_eq!(runs.borrow()[1], runs.borrow()[2]);
    }

    #[test]
    fn shutdown_undoes_rules_and_routes_once() {
        let (mut router, Tools { ip: runs, .. }) = router(false);
        router.shutdown().unwrap();
        assert!(runs.borrow().is_empty(), "nothing applied, nothing to undo");
        router.apply(&config(&["10.0.0.0/8"])).unwrap();
        router.shutdown().unwrap();
        let undo = runs.borrow()[1].clone();
        assert!(undo.contains("rule del pref 5270 table 52\n"), "{undo}");
        assert!(undo.contains("route del 10.0.0.0/8 dev weft0 table 52\n"), "{undo}");
        router.shutdown().unwrap();
        assert_eq!(runs.borrow().len(), 2);
    }

    #[test]
    fn refuses_configurations_that_could_only_fail() {
        let (mut router, Tools { ip: runs, .. }) = router(true);
        let cases = [
            (RouterConfig { tun: String::new(), ..config(&[]) }, "empty"),
            (RouterConfig { tun: "wg#0".into(), ..config(&[]) }, "'#'"),
            (RouterConfig { mtu: 0, ..config(&[]) }, "below the minimum"),
        ];
        for (bad, why) in cases {
            let err = router.apply(&bad).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        assert!(router.remove_stale_with_own_tool("a b").is_err());
        assert!(runs.borrow().is_empty());
    }

    #[test]
    fn weft_router_names_the_os_whose_router_to_drive() {
        assert_eq!(router_os_named(Some("netbsd".into())), Ok(OsKind::NetBsd));
        assert_eq!(router_os_named(None).ok(), OsKind::current());
        let err = router_os_named(Some("haiku".into())).unwrap_err().to_string();
        assert!(err.starts_with("WEFT_ROUTER: unknown OS \"haiku\""), "{err}");
    }

    #[test]
    fn stale_removal_deletes_rules_and_flushes_both_families() {
        let (mut router, Tools { ip: runs, .. }) = router(true);
        router.remove_stale_with_own_tool("weft0").unwrap();
        let runs = runs.borrow();
        assert_eq!(runs.len(), 2);
        assert!(runs[1].starts_with("ip -6 -force -batch -\nrule del pref 5210"), "{}", runs[1]);
        assert!(runs[1].ends_with("route flush table 52 dev weft0\n"), "{}", runs[1]);
    }

    fn install(tun: &str, drop_inbound: bool) -> String {
        let config = FirewallConfig { tun: tun.into(), drop_inbound };
        format!("nft -f -\n{}", firewall::install_script(&config))
    }

    fn removal() -> String {
        format!("nft -f -\n{}", firewall::removal_script())
    }

    #[test]
    fn the_firewall_table_comes_and_goes_with_the_routes() {
        let (mut router, tools) = router(false);
        router.apply(&config(&["100.64.0.2/32"])).unwrap();
        router.apply(&config(&["100.64.0.3/32"])).unwrap();
        assert_eq!(*tools.nft.borrow(), [install("weft0", true)], "installed once");
        let moved = RouterConfig { tun: "weft1".into(), ..config(&["100.64.0.3/32"]) };
        router.apply(&moved).unwrap();
        assert_eq!(tools.nft.borrow()[1], install("weft1", true), "replaced for the new name");
        router.shutdown().unwrap();
        assert_eq!(tools.nft.borrow()[2..], [removal()]);
        router.remove_stale_with_own_tool("weft1").unwrap();
        assert_eq!(tools.nft.borrow()[3..], [removal()], "stale removal always tries");
    }

    #[test]
    fn control_can_let_foreign_tailnet_sources_in() {
        let (mut router, tools) = router(false);
        let mut desired = RouterConfig { cgnat_drop_disabled: true, ..config(&[]) };
        router.apply(&desired).unwrap();
        desired.cgnat_drop_disabled = false;
        router.apply(&desired).unwrap();
        assert_eq!(*tools.nft.borrow(), [install("weft0", false), install("weft0", true)]);
    }

    #[test]
    fn a_refused_firewall_is_reported_but_keeps_the_routes() {
        let (mut router, tools) = router(false);
        *tools.nft_fails.borrow_mut() = Some("Error: Could not process rule\n".into());
        let err = router.apply(&config(&["10.0.0.0/8"])).unwrap_err().to_string();
        assert!(err.contains("`nft -f -` refused weft's firewall table"), "{err}");
        assert!(err.ends_with("Error: Could not process rule"), "{err}");
        assert_eq!(tools.ip.borrow().len(), 1);
        *tools.nft_fails.borrow_mut() = None;
        router.apply(&config(&["10.0.0.0/8"])).unwrap();
        assert_eq!(tools.ip.borrow().len(), 1, "the routes were in place already");
        assert_eq!(tools.nft.borrow().len(), 2, "the table was tried again");
    }

    #[test]
    fn route_and_firewall_failures_are_reported_together() {
        let (mut router, tools) = router(false);
        *tools.ip_fails.borrow_mut() = Some("Error: no\nCommand failed -:1\n".into());
        *tools.nft_fails.borrow_mut() = Some("Error: nope\n".into());
        let err = router.apply(&config(&[])).unwrap_err().to_string();
        assert!(err.starts_with("`ip -4 -force -batch -` failed"), "{err}");
        assert!(
            err.ends_with(
                "; `nft -f -` refused weft's firewall table, so packets spoofing \
                               a tailnet source from other interfaces are not dropped: Error: nope"
            ),
            "{err}"
        );
    }
}
