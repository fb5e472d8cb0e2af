//! The kernel socket that announces network changes: `NETLINK_ROUTE` on Linux, subscribed
//! to link, address and route changes of both families; a `PF_ROUTE` socket on FreeBSD,
//! NetBSD, OpenBSD, macOS and illumos. What it reads is parsed by [`netlink`] or
//! [`route_socket`] into the [`Change`]s `link_monitor` judges.
//!
//! Only the socket calls differ per OS (thin `cfg` shims below); the parsing is the
//! portable, unit-tested code of those modules.

use crate::platform::link_monitor::Change;
#[cfg(target_os = "linux")]
use crate::platform::netlink;
#[cfg(not(target_os = "linux"))]
use crate::platform::{os_kind::OsKind, route_socket};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Linux's routing table that holds every tunnel route (the Tailscale scheme's table 52,
/// see `router`): a change in it is one we made.
#[cfg(target_os = "linux")]
const OWN_ROUTE_TABLE: u32 = 52;

/// Big enough for the largest burst one `recv` returns (netlink batches several messages).
const READ_BUFFER_LEN: usize = 64 * 1024;

/// An open, non-blocking, close-on-exec monitor socket.
#[derive(Debug)]
pub(crate) struct MonitorSocket {
    fd: OwnedFd,
}

impl MonitorSocket {
    /// Opens the OS's change socket.
    pub(crate) fn open() -> io::Result<MonitorSocket> {
        shim::open().map(|fd| MonitorSocket { fd })
    }

    /// Reads everything queued (until `WouldBlock`) into changes. Damaged messages are
    /// logged and skipped; lost messages (the socket's buffer overflowed) become
    /// [`Change::Resync`].
    pub(crate) fn read_changes(&self) -> io::Result<Vec<Change>> {
        let mut buf = vec![0u8; READ_BUFFER_LEN];
        let mut changes = Vec::new();
        loop {
            // SAFETY: the pointer and length describe `buf`, which outlives the call.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            let Ok(n) = usize::try_from(n) else {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => changes.push(Change::Resync),
                    _ if e.kind() == io::ErrorKind::WouldBlock => return Ok(changes),
                    _ => return Err(e),
                }
                continue;
            };
            if n == 0 {
                return Ok(changes);
            }
            changes.extend(parse(&buf[..n]));
        }
    }
}

impl AsRawFd for MonitorSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The changes in one datagram of the monitor socket.
#[cfg(target_os = "linux")]
fn parse(datagram: &[u8]) -> Vec<Change> {
    match netlink::parse(datagram) {
        Ok(events) => {
            events.iter().filter_map(|event| Change::from_netlink(event, OWN_ROUTE_TABLE)).collect()
        }
        Err(e) => {
            log::debug!("link monitor: skipped a damaged netlink message: {e}");
            Vec::new()
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn parse(datagram: &[u8]) -> Vec<Change> {
    let Some(os) = OsKind::current() else { return Vec::new() };
    match route_socket::parse(os, datagram) {
        Ok(events) => events.iter().map(Change::from).collect(),
        Err(e) => {
            log::debug!("link monitor: skipped a damaged routing message: {e}");
            Vec::new()
        }
    }
}

#[cfg(target_os = "linux")]
mod shim {
    use crate::platform::socket::raw_socket;
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd};

    /// `linux/rtnetlink.h`: the multicast groups of link, address and route changes.
    const GROUPS: u32 = libc::RTMGRP_LINK as u32
        | libc::RTMGRP_IPV4_IFADDR as u32
        | libc::RTMGRP_IPV6_IFADDR as u32
        | libc::RTMGRP_IPV4_ROUTE as u32
        | libc::RTMGRP_IPV6_ROUTE as u32;

    pub(super) fn open() -> io::Result<OwnedFd> {
        let kind = libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        let owned = raw_socket(libc::AF_NETLINK, kind, libc::NETLINK_ROUTE)?;
        let fd = owned.as_raw_fd();
        // SAFETY: sockaddr_nl is plain data; all zeroes is a valid value.
        let mut address: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        address.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        address.nl_groups = GROUPS;
        let len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: the pointer and length describe `address`, a live sockaddr_nl.
        let rc = unsafe { libc::bind(fd, (&address as *const libc::sockaddr_nl).cast(), len) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(owned)
    }
}

#[cfg(any(
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "illumos"
))]
mod shim {
    use crate::platform::socket::raw_socket;
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd};

    pub(super) fn open() -> io::Result<OwnedFd> {
        let owned = raw_socket(libc::PF_ROUTE, libc::SOCK_RAW, libc::AF_UNSPEC)?;
        crate::platform::fd::set_nonblocking_cloexec(owned.as_raw_fd())?;
        Ok(owned)
    }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "illumos"
)))]
mod shim {
    use std::io;
    use std::os::fd::OwnedFd;

    pub(super) fn open() -> io::Result<OwnedFd> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no route monitor on this OS"))
    }
}

#[cfg(all(test, target_os = "linux"))]
#[path = "monitor_socket_netns_test.rs"]
mod netns_test;
