//! The daemon's side of socket binding: what its sockets are pinned with now, and the
//! routes that pinning needs, kept in step with the network.
//!
//! [`pin_socket`] is the one function every socket of the daemon (data path UDP, control
//! and DERP TCP) goes through before it binds or connects. On Linux it always marks
//! (`SO_MARK`, matched by the router's bypass rules), as before. Elsewhere the policy
//! depends on the physical interface, so [`Pinning`] publishes it: macOS and illumos bind
//! to the interface's index (`IP_BOUND_IF`), OpenBSD and FreeBSD point sockets at a second
//! table once its default via the physical gateway is in place (`SO_RTABLE`, `SO_SETFIB`),
//! NetBSD pins nothing and gets host routes to the peers' endpoints instead.

use super::bypass_table;
use super::host_routes;
use super::policy::{self, BindingPolicy, SocketFamily};
use super::rebind::{Binding, Decision};
use super::select::Selected;
use crate::platform::os_kind::OsKind;
use crate::platform::router::bsd::{BsdOp, HostRoute};
use crate::platform::router::Router;
use crate::platform::socket::BYPASS_MARK;
use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::Mutex;

/// The OpenBSD rtable / FreeBSD FIB that holds the physical default for our sockets. Not
/// searched for a free one: an administrator using table 1 for something else must know
/// (docs/platforms.md). FreeBSD needs `net.fibs` of at least 2.
pub(crate) const BYPASS_TABLE: u32 = 1;

/// The policy [`Pinning`] published, for the OSes whose policy depends on the network.
static PUBLISHED: Mutex<Option<BindingPolicy>> = Mutex::new(None);

/// Pins `fd`, a socket of `family` not yet bound or connected, to the physical path by the
/// OS's means; nothing where there is nothing to pin with (yet).
pub(crate) fn pin_socket(fd: RawFd, family: SocketFamily) -> io::Result<()> {
    let published = *PUBLISHED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    match OsKind::current() {
        Some(OsKind::Linux) => policy::bind_socket(fd, BindingPolicy::Mark(BYPASS_MARK), family),
        Some(_) => published.map_or(Ok(()), |p| policy::bind_socket(fd, p, family)),
        None => Ok(()),
    }
}

fn publish(policy: Option<BindingPolicy>) {
    *PUBLISHED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = policy;
}

/// What a change of the physical path asks of the daemon.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The sockets' pinning changed: they must be made again (the data path's UDP; TCP
    /// connections take it when they reconnect).
    pub rebind_sockets: bool,
    /// Routes that failed, with the tool's words, for `weft status`.
    pub problem: Option<String>,
}

/// The daemon's pinning: the chosen interface, the policy published for it, and the bypass
/// routes applied for it.
pub(crate) struct Pinning {
    /// The OS whose means are planned: the router's (`WEFT_ROUTER` on Linux drives another
    /// OS's router against fakes). Policies are published only when it is the OS we run on.
    os: OsKind,
    binding: Binding,
    published: Option<BindingPolicy>,
    /// OpenBSD/FreeBSD: the second table's default is in place.
    table_ready: bool,
    /// NetBSD: the host routes applied, and the peers' endpoints they are wanted for.
    host_routes: BTreeSet<HostRoute>,
    endpoints: Vec<IpAddr>,
}

impl Pinning {
    /// Pinning by `os`'s means, with nothing chosen yet: the first [`Pinning::follow`]
    /// chooses.
    pub(crate) fn new(os: OsKind) -> Pinning {
        Pinning {
            os,
            binding: Binding::new(None),
            published: None,
            table_ready: false,
            host_routes: BTreeSet::new(),
            endpoints: Vec::new(),
        }
    }

    /// The interface our traffic leaves by now, if one was chosen.
    pub(crate) fn current(&self) -> Option<&Selected> {
        self.binding.current()
    }

    /// Follows the physical path to `next` (at start, and after each major change): the
    /// second table's default follows the gateway, NetBSD's host routes follow it too, and
    /// the policy for new sockets is published. Routes that fail are tried again at the
    /// next call, whatever it brings.
    pub(crate) fn follow(
        &mut self,
        next: Option<Selected>,
        router: Option<&mut Router>,
    ) -> Outcome {
        let before = self.binding.current().cloned();
        if self.binding.decide(next) == Decision::Keep {
            return Outcome::default();
        }
        let after = self.binding.current().cloned();
        let mut ops = match self.table_policy() {
            Some(table) => bypass_table::default_ops(table, before.as_ref(), after.as_ref()),
            None => Vec::new(),
        };
        let wanted_routes = self.wanted_host_routes();
        ops.extend(host_routes::plan(&self.host_routes, &wanted_routes));
        let problem = run(router, &ops);
        match problem {
            None => {
                self.table_ready = after.as_ref().and_then(Selected::gateway).is_some();
                self.host_routes = wanted_routes;
            }
            // Back to where the kernel was, so that the next call plans the same ops again.
            Some(_) => self.binding = Binding::new(before),
        }
        Outcome { rebind_sockets: self.publish(), problem }
    }

    /// NetBSD: the peers' endpoints changed; host routes are added and removed to match.
    /// Elsewhere nothing happens.
    pub(crate) fn set_endpoints(
        &mut self,
        endpoints: impl IntoIterator<Item = IpAddr>,
        router: Option<&mut Router>,
    ) -> Option<String> {
        if !self.wants_peer_endpoints() {
            return None;
        }
        self.endpoints = endpoints.into_iter().collect();
        let wanted = self.wanted_host_routes();
        let problem = run(router, &host_routes::plan(&self.host_routes, &wanted));
        if problem.is_none() {
            self.host_routes = wanted;
        }
        problem
    }

    /// Whether [`Pinning::set_endpoints`] has anything to do: NetBSD's host routes.
    pub(crate) fn wants_peer_endpoints(&self) -> bool {
        BindingPolicy::for_os(self.os, None, BYPASS_TABLE) == Some(BindingPolicy::HostRoutes)
    }

    /// Removes the bypass routes (the second table's default, the host routes).
    pub(crate) fn shutdown(&mut self, router: Option<&mut Router>) -> Option<String> {
        let mut ops = match self.table_policy() {
            Some(table) if self.table_ready => {
                bypass_table::default_ops(table, self.binding.current(), None)
            }
            _ => Vec::new(),
        };
        ops.extend(host_routes::plan(&self.host_routes, &BTreeSet::new()));
        let problem = run(router, &ops);
        if problem.is_none() {
            self.table_ready = false;
            self.host_routes.clear();
        }
        problem
    }

    /// The OS's policy, when it keeps a second table (OpenBSD, FreeBSD).
    fn table_policy(&self) -> Option<BindingPolicy> {
        BindingPolicy::for_os(self.os, None, BYPASS_TABLE)
            .filter(|p| matches!(p, BindingPolicy::Rtable(_) | BindingPolicy::Fib(_)))
    }

    fn wanted_host_routes(&self) -> BTreeSet<HostRoute> {
        if !self.wants_peer_endpoints() {
            return BTreeSet::new();
        }
        let physical: Vec<Selected> = self.binding.current().into_iter().cloned().collect();
        host_routes::wanted(self.endpoints.iter().copied(), &physical)
    }

    /// The per-socket policy new sockets get: an interface index, or a table once its
    /// default is in place. Linux's mark is [`pin_socket`]'s own; NetBSD has none.
    fn socket_policy(&self) -> Option<BindingPolicy> {
        match BindingPolicy::for_os(self.os, self.binding.current(), BYPASS_TABLE)? {
            BindingPolicy::Rtable(_) | BindingPolicy::Fib(_) if !self.table_ready => None,
            BindingPolicy::Mark(_) | BindingPolicy::HostRoutes => None,
            policy => Some(policy),
        }
    }

    /// Publishes the socket policy for the OS we run on; whether it changed.
    fn publish(&mut self) -> bool {
        if Some(self.os) != OsKind::current() {
            return false;
        }
        let policy = self.socket_policy();
        let changed = policy != self.published;
        self.published = policy;
        publish(policy);
        changed
    }
}

/// Runs the bypass route ops through the router; the failure as a health line.
fn run(router: Option<&mut Router>, ops: &[BsdOp]) -> Option<String> {
    if ops.is_empty() {
        return None;
    }
    let Some(router) = router else {
        return Some("no router to add the routes that keep our traffic off the tunnel".into());
    };
    router.run_bypass_routes(ops).err().map(|e| format!("keeping our traffic off the tunnel: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::router::bsd::{BsdRouter, CommandLine, CommandRunner};
    use crate::platform::router::ToolOutput;
    use std::cell::RefCell;
    use std::rc::Rc;

    type Log = Rc<RefCell<Vec<String>>>;

    /// Records each command; fails those that contain `fail_on`.
    struct Recorder {
        log: Log,
        fail_on: Rc<RefCell<Option<&'static str>>>,
    }

    impl CommandRunner for Recorder {
        fn run(&mut self, command: &CommandLine) -> io::Result<ToolOutput> {
            let line = command.to_string();
            self.log.borrow_mut().push(line.clone());
            let fails = self.fail_on.borrow().is_some_and(|f| line.contains(f));
            let stderr =
                if fails { "route: writing to routing socket: Network is unreachable" } else { "" };
            Ok(ToolOutput { success: !fails, stderr: stderr.into() })
        }
    }

    struct Host {
        router: Router,
        log: Log,
        fail_on: Rc<RefCell<Option<&'static str>>>,
        dir: std::path::PathBuf,
    }

    impl Host {
        fn new(os: OsKind, test: &str) -> Host {
            let (log, fail_on) = (Log::default(), Rc::new(RefCell::new(None)));
            let recorder = Recorder { log: log.clone(), fail_on: fail_on.clone() };
            let dir = crate::testing::fresh_dir(test);
            let router = Router::bsd(BsdRouter::new(os, Box::new(recorder), dir.clone()));
            Host { router, log, fail_on, dir }
        }

        fn take_log(&self) -> Vec<String> {
            std::mem::take(&mut *self.log.borrow_mut())
        }
    }

    impl Drop for Host {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn em0(gateway: &str) -> Selected {
        Selected::new("em0", 1, Some(gateway.parse().unwrap()))
    }

    #[test]
    fn openbsd_keeps_its_rtable_default_on_the_physical_gateway_and_retries_failures() {
        let mut host = Host::new(OsKind::OpenBsd, "pinning-openbsd");
        let mut pinning = Pinning::new(OsKind::OpenBsd);
        let first = pinning.follow(Some(em0("192.168.1.1")), Some(&mut host.router));
        assert_eq!(first, Outcome::default(), "not the OS we run on: nothing published");
        assert_eq!(host.take_log(), ["route -T 1 -q -n add -inet default 192.168.1.1"]);
        assert!(pinning.table_ready);
        assert_eq!(pinning.socket_policy(), Some(BindingPolicy::Rtable(1)));

        *host.fail_on.borrow_mut() = Some("add");
        let failed = pinning.follow(Some(em0("192.168.1.254")), Some(&mut host.router));
        assert!(failed.problem.unwrap().contains("Network is unreachable"));
        assert_eq!(host.take_log().len(), 2, "delete the old default, try the new one");
        *host.fail_on.borrow_mut() = None;
        pinning.follow(Some(em0("192.168.1.254")), Some(&mut host.router));
        assert_eq!(
            host.take_log(),
            [
                "route -T 1 -q -n delete -inet default 192.168.1.1",
                "route -T 1 -q -n add -inet default 192.168.1.254",
            ],
            "the same move is tried again"
        );
        assert_eq!(pinning.shutdown(Some(&mut host.router)), None);
        assert_eq!(host.take_log(), ["route -T 1 -q -n delete -inet default 192.168.1.254"]);
    }

    #[test]
    fn without_a_default_the_table_is_not_used() {
        let mut host = Host::new(OsKind::FreeBsd, "pinning-freebsd");
        let mut pinning = Pinning::new(OsKind::FreeBsd);
        pinning.follow(Some(Selected::new("em0", 1, None)), Some(&mut host.router));
        assert!(host.take_log().is_empty());
        assert_eq!(pinning.socket_policy(), None, "sockets stay in the main FIB");
    }

    #[test]
    fn netbsd_routes_each_peer_endpoint_via_the_physical_gateway() {
        let mut host = Host::new(OsKind::NetBsd, "pinning-netbsd");
        let mut pinning = Pinning::new(OsKind::NetBsd);
        let endpoints = vec!["203.0.113.7".parse().unwrap(), "127.0.0.1".parse().unwrap()];
        assert_eq!(pinning.set_endpoints(endpoints, Some(&mut host.router)), None);
        assert!(host.take_log().is_empty(), "no physical gateway chosen yet");
        pinning.follow(Some(em0("10.0.2.2")), Some(&mut host.router));
        assert_eq!(host.take_log(), ["route -q -n add -inet -host 203.0.113.7 10.0.2.2"]);
        pinning.follow(Some(em0("10.0.2.254")), Some(&mut host.router));
        assert_eq!(
            host.take_log(),
            [
                "route -q -n delete -inet -host 203.0.113.7 10.0.2.2",
                "route -q -n add -inet -host 203.0.113.7 10.0.2.254",
            ]
        );
        pinning.set_endpoints(vec!["198.51.100.9".parse().unwrap()], Some(&mut host.router));
        assert_eq!(
            host.take_log(),
            [
                "route -q -n delete -inet -host 203.0.113.7 10.0.2.254",
                "route -q -n add -inet -host 198.51.100.9 10.0.2.254",
            ]
        );
        pinning.shutdown(Some(&mut host.router));
        assert_eq!(host.take_log(), ["route -q -n delete -inet -host 198.51.100.9 10.0.2.254"]);
        assert_eq!(pinning.socket_policy(), None, "NetBSD pins no socket");
    }

    #[test]
    fn darwin_binds_to_the_chosen_index_and_asks_for_a_rebind_when_it_moves() {
        let mut pinning = Pinning::new(OsKind::Darwin);
        pinning.follow(Some(Selected::new("en0", 6, None)), None);
        assert_eq!(pinning.socket_policy(), Some(BindingPolicy::BoundIf(6)));
        pinning.follow(Some(Selected::new("en7", 14, None)), None);
        assert_eq!(pinning.socket_policy(), Some(BindingPolicy::BoundIf(14)));
        pinning.follow(None, None);
        assert_eq!(pinning.socket_policy(), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_marks_every_socket_whatever_was_chosen() {
        let mut pinning = Pinning::new(OsKind::Linux);
        let outcome = pinning.follow(Some(Selected::new("eth0", 2, None)), None);
        assert_eq!(outcome, Outcome::default(), "the mark does not depend on the interface");
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        match pin_socket(fd, SocketFamily::Ipv4) {
            Ok(()) => {
                let mut mark: u32 = 0;
                let mut len = 4 as libc::socklen_t;
                // SAFETY: getsockopt into a live u32 whose size we pass.
                let rc = unsafe {
                    libc::getsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        libc::SO_MARK,
                        (&mut mark as *mut u32).cast(),
                        &mut len,
                    )
                };
                assert_eq!((rc, mark), (0, BYPASS_MARK));
            }
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
        }
    }
}
