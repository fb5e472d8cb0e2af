//! The physical interface as the kernel sees it now: the default routes read from the
//! kernel (a netlink dump on Linux, sysctl `NET_RT_DUMP` on the BSDs, `NET_RT_DUMP2` on
//! macOS, an `RTM_GET` per family on illumos), the interface list, and on macOS the utun delegates, handed to
//! [`select::effective_interface`]. Only the reads are per OS (thin shims below); the
//! parsing and the choice are the portable, tested code of `netlink`, `route_socket` and
//! `select`.

use super::select::{self, RouteEntry, Selected};
use crate::platform::interfaces;

/// The interface our own traffic must leave by now, never `own_tun`; `None` without a
/// default route.
pub(crate) fn effective_interface(own_tun: &str) -> Option<Selected> {
    let snapshot = interfaces::snapshot();
    let name_of =
        |index: u32| snapshot.interfaces.iter().find(|i| i.index == index).map(|i| i.name.clone());
    let routes = match shim::default_routes(&name_of) {
        Ok(routes) => routes,
        Err(e) => {
            log::debug!("reading the default routes: {e}");
            Vec::new()
        }
    };
    select::effective_interface(&routes, &snapshot.interfaces, own_tun, &shim::DELEGATES)
}

#[cfg(target_os = "linux")]
mod shim {
    use super::RouteEntry;
    use crate::platform::bind::select::NoDelegates;
    use crate::platform::netlink::{self, NetlinkEvent};
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd};

    pub(super) const DELEGATES: NoDelegates = NoDelegates;

    /// The routes of the main table, by one `RTM_GETROUTE` dump on a socket of its own.
    pub(super) fn default_routes(
        name_of: &dyn Fn(u32) -> Option<String>,
    ) -> io::Result<Vec<RouteEntry>> {
        let socket = open()?;
        let request = netlink::route_dump_request(1);
        // SAFETY: the pointer and length describe `request`, which outlives the call.
        let sent =
            unsafe { libc::send(socket.as_raw_fd(), request.as_ptr().cast(), request.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut routes = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: the pointer and length describe `buf`, which outlives the call.
            let n =
                unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
            let answer = &buf[..n];
            let events = netlink::parse(answer)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            routes.extend(events.iter().filter_map(|event| match event {
                NetlinkEvent::Route(route) => RouteEntry::from_netlink(route, name_of),
                _ => None,
            }));
            if n == 0 || netlink::ends_dump(answer) {
                return Ok(routes);
            }
        }
    }

    /// A blocking netlink socket that gives up after a second: a dump is answered at once,
    /// and the loop must not hang on a kernel that does not answer.
    fn open() -> io::Result<OwnedFd> {
        let kind = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
        let owned =
            crate::platform::socket::raw_socket(libc::AF_NETLINK, kind, libc::NETLINK_ROUTE)?;
        let fd = owned.as_raw_fd();
        crate::platform::socket::set_receive_timeout(fd, std::time::Duration::from_secs(1))?;
        Ok(owned)
    }
}

#[cfg(any(
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "macos"
))]
mod shim {
    use super::RouteEntry;
    use crate::platform::os_kind::OsKind;
    use crate::platform::route_socket;
    use std::io;

    #[cfg(target_os = "macos")]
    pub(super) const DELEGATES: crate::platform::bind::delegate::KernelDelegates =
        crate::platform::bind::delegate::KernelDelegates;
    #[cfg(not(target_os = "macos"))]
    pub(super) const DELEGATES: crate::platform::bind::select::NoDelegates =
        crate::platform::bind::select::NoDelegates;

    const CTL_NET: libc::c_int = 4;
    /// `NET_RT_DUMP`; macOS's `NET_RT_DUMP2` gives `rt_msghdr2` records with the
    /// interface-scoped flag the choice needs.
    #[cfg(not(target_os = "macos"))]
    const DUMP: libc::c_int = 1;
    #[cfg(target_os = "macos")]
    const DUMP: libc::c_int = 7;

    /// The default routes of the routing table, read with sysctl.
    pub(super) fn default_routes(
        name_of: &dyn Fn(u32) -> Option<String>,
    ) -> io::Result<Vec<RouteEntry>> {
        let os = OsKind::current().ok_or(io::ErrorKind::Unsupported)?;
        let table = dump()?;
        let defaults = route_socket::default_routes(os, &table)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(defaults.iter().filter_map(|d| RouteEntry::from_dump(d, name_of)).collect())
    }

    /// The whole table: the size first, then the bytes (again if it grew in between).
    fn dump() -> io::Result<Vec<u8>> {
        let mut mib = [CTL_NET, libc::PF_ROUTE, 0, 0, DUMP, 0];
        for _ in 0..3 {
            let mut len: libc::size_t = 0;
            // SAFETY: a size query: no buffer, `len` receives the size.
            let rc = unsafe {
                libc::sysctl(
                    mib.as_mut_ptr(),
                    mib.len() as libc::c_uint,
                    std::ptr::null_mut(),
                    &mut len,
                    std::ptr::null_mut(),
                    0,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            let mut buf = vec![0u8; len + len / 4];
            let mut len = buf.len();
            // SAFETY: the pointer and `len` describe `buf`; the kernel writes at most `len`.
            let rc = unsafe {
                libc::sysctl(
                    mib.as_mut_ptr(),
                    mib.len() as libc::c_uint,
                    buf.as_mut_ptr().cast(),
                    &mut len,
                    std::ptr::null_mut(),
                    0,
                )
            };
            if rc == 0 {
                buf.truncate(len);
                return Ok(buf);
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOMEM) {
                return Err(e);
            }
        }
        Err(io::Error::other("the routing table kept growing while it was read"))
    }
}

#[cfg(target_os = "illumos")]
mod shim {
    use super::RouteEntry;
    use crate::platform::bind::route_lookup;
    use crate::platform::bind::select::NoDelegates;
    use crate::platform::os_kind::OsKind;
    use std::io;
    use std::os::fd::{AsFd, AsRawFd};

    pub(super) const DELEGATES: NoDelegates = NoDelegates;

    /// The default routes, asked of the kernel on a routing socket of their own (illumos
    /// has no routing sysctl to dump the table with).
    pub(super) fn default_routes(
        name_of: &dyn Fn(u32) -> Option<String>,
    ) -> io::Result<Vec<RouteEntry>> {
        let kind = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
        let socket = crate::platform::socket::raw_socket(libc::PF_ROUTE, kind, 0)?;
        // A blocking socket that gives up after a second: the kernel answers at once, and
        // the loop must not hang on one that does not.
        let timeout = std::time::Duration::from_secs(1);
        crate::platform::socket::set_receive_timeout(socket.as_raw_fd(), timeout)?;
        let defaults = route_lookup::ask_default_routes(socket.as_fd(), OsKind::Illumos)?;
        Ok(defaults.iter().filter_map(|d| RouteEntry::from_dump(d, name_of)).collect())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use crate::testing::{in_new_network_namespace, ip};

    /// In a namespace of the test's own: no default route, no choice; a default via a veth
    /// with a carrier is chosen, with its gateway; the same default via our own tunnel's
    /// name is passed over.
    #[test]
    fn the_default_route_of_a_fresh_namespace_is_followed() {
        in_new_network_namespace("effective-interface", || {
            assert_eq!(super::effective_interface("weft0"), None, "no default route yet");
            ip(&["link", "add", "weftsel0", "type", "veth", "peer", "name", "weftsel1"])?;
            ip(&["address", "add", "192.0.2.7/24", "dev", "weftsel0"])?;
            ip(&["link", "set", "weftsel0", "up"])?;
            ip(&["link", "set", "weftsel1", "up"])?;
            ip(&["route", "add", "default", "via", "192.0.2.1", "dev", "weftsel0"])?;
            let index = crate::platform::interfaces::index_of("weftsel0").unwrap();
            let chosen = super::effective_interface("weft0").expect("the veth");
            let expected =
                super::Selected::new("weftsel0", index, Some("192.0.2.1".parse().unwrap()));
            assert_eq!(chosen, expected);
            assert_eq!(super::effective_interface("weftsel0"), None, "never our own tunnel");
            Ok(())
        });
    }
}
