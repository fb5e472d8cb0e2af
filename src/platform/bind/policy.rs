//! How each OS pins one of the daemon's sockets to the physical path, and the exact
//! `setsockopt` that does it.
//!
//! The option numbers of every OS are plain values here (like the routing-message
//! layouts), so the choice is tested on any build host; the one call that applies them is
//! ordinary POSIX. Tests on each OS compare the numbers with its `libc` where `libc` has
//! them.

use super::select::Selected;
use crate::platform::os_kind::OsKind;
use crate::platform::socket::{set_int_option, BYPASS_MARK};
use std::fmt;
use std::io;
use std::os::fd::RawFd;

/// Linux, `include/uapi/asm-generic/socket.h` (sparc has its own numbers: SO_MARK 0x22).
mod linux {
    pub(super) const SOL_SOCKET: i32 = 1;
    pub(super) const SO_MARK: i32 = 36;
}

/// `SOL_SOCKET` of the BSD family, `sys/socket.h`.
const BSD_SOL_SOCKET: i32 = 0xffff;
/// OpenBSD `sys/socket.h`: the routing table (rtable) a socket's lookups use.
const OPENBSD_SO_RTABLE: i32 = 0x1021;
/// FreeBSD `sys/socket.h`: the FIB a socket's lookups use.
const FREEBSD_SO_SETFIB: i32 = 0x1014;

/// The `IPPROTO_*` levels, the same on every OS (`netinet/in.h`).
const IPPROTO_IP: i32 = 0;
const IPPROTO_IPV6: i32 = 41;

/// macOS: `IP_BOUND_IF` in `netinet/in.h`, `IPV6_BOUND_IF` in `netinet6/in6.h`.
mod darwin {
    pub(super) const IP_BOUND_IF: i32 = 25;
    pub(super) const IPV6_BOUND_IF: i32 = 125;
}

/// illumos `netinet/in.h` (both options share the number, at their own levels).
mod illumos {
    pub(super) const IP_BOUND_IF: i32 = 0x41;
    pub(super) const IPV6_BOUND_IF: i32 = 0x41;
}

/// What keeps a socket's packets out of our tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BindingPolicy {
    /// Linux: the fwmark our policy rules send to the main table.
    Mark(u32),
    /// OpenBSD: a routing table whose default goes via the physical gateway.
    Rtable(u32),
    /// FreeBSD: the same with a FIB.
    Fib(u32),
    /// macOS, illumos: the physical interface's index; follows the selection.
    BoundIf(u32),
    /// NetBSD has no per-socket means: host routes to each remote endpoint via the
    /// physical gateway do the work (see `host_routes`).
    HostRoutes,
}

/// Which kind of socket an option is for: the `BOUND_IF` options exist per family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SocketFamily {
    Ipv4,
    /// IPv6 and dual-stack sockets.
    Ipv6,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MismatchError {
    os: OsKind,
    policy: BindingPolicy,
}

impl fmt::Display for MismatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} has no socket option for {:?}", self.os, self.policy)
    }
}

impl std::error::Error for MismatchError {}

/// One `setsockopt(fd, level, name, &value, 4)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SocketOption {
    level: i32,
    name: i32,
    value: u32,
}

impl SocketFamily {
    pub(crate) fn of(addr: &std::net::SocketAddr) -> SocketFamily {
        match addr {
            std::net::SocketAddr::V4(_) => SocketFamily::Ipv4,
            std::net::SocketAddr::V6(_) => SocketFamily::Ipv6,
        }
    }
}

impl BindingPolicy {
    /// The policy `os` uses. `bypass_table` is the OpenBSD rtable or FreeBSD FIB that the
    /// daemon keeps a physical default route in. macOS and illumos need the selected
    /// interface; without one there is nothing to bind to (`None`).
    pub(crate) fn for_os(
        os: OsKind,
        selected: Option<&Selected>,
        bypass_table: u32,
    ) -> Option<BindingPolicy> {
        match os {
            OsKind::Linux => Some(BindingPolicy::Mark(BYPASS_MARK)),
            OsKind::OpenBsd => Some(BindingPolicy::Rtable(bypass_table)),
            OsKind::FreeBsd => Some(BindingPolicy::Fib(bypass_table)),
            OsKind::Darwin | OsKind::Illumos => selected.map(|s| BindingPolicy::BoundIf(s.index())),
            OsKind::NetBsd => Some(BindingPolicy::HostRoutes),
        }
    }

    /// The option that applies this policy on `os` to a socket of `family`; `None` when
    /// sockets need nothing (host routes).
    pub(crate) fn socket_option(
        self,
        os: OsKind,
        family: SocketFamily,
    ) -> Result<Option<SocketOption>, MismatchError> {
        let option = |level, name, value| Ok(Some(SocketOption { level, name, value }));
        let (ip_level, ipv6) = match family {
            SocketFamily::Ipv4 => (IPPROTO_IP, false),
            SocketFamily::Ipv6 => (IPPROTO_IPV6, true),
        };
        match (self, os) {
            (BindingPolicy::Mark(mark), OsKind::Linux) => {
                option(linux::SOL_SOCKET, linux::SO_MARK, mark)
            }
            (BindingPolicy::Rtable(table), OsKind::OpenBsd) => {
                option(BSD_SOL_SOCKET, OPENBSD_SO_RTABLE, table)
            }
            (BindingPolicy::Fib(fib), OsKind::FreeBsd) => {
                option(BSD_SOL_SOCKET, FREEBSD_SO_SETFIB, fib)
            }
            (BindingPolicy::BoundIf(index), OsKind::Darwin) => {
                let name = if ipv6 { darwin::IPV6_BOUND_IF } else { darwin::IP_BOUND_IF };
                option(ip_level, name, index)
            }
            (BindingPolicy::BoundIf(index), OsKind::Illumos) => {
                let name = if ipv6 { illumos::IPV6_BOUND_IF } else { illumos::IP_BOUND_IF };
                option(ip_level, name, index)
            }
            (BindingPolicy::HostRoutes, OsKind::NetBsd) => Ok(None),
            (policy, os) => Err(MismatchError { os, policy }),
        }
    }
}

impl SocketOption {
    /// Sets the option on `fd`. Do it before `bind`/`connect`/the first send: the BSDs
    /// choose the table, macOS the scoped route, when the socket is first used.
    pub(crate) fn apply(self, fd: RawFd) -> io::Result<()> {
        // The kernels read these 4 bytes as an int or a u32 alike (a mark above i32::MAX
        // keeps its bits).
        set_int_option(fd, self.level, self.name, self.value as libc::c_int)
    }
}

/// Pins `fd` to the physical path by `policy`, on the OS this binary runs on.
pub(crate) fn bind_socket(
    fd: RawFd,
    policy: BindingPolicy,
    family: SocketFamily,
) -> io::Result<()> {
    let os = OsKind::current().ok_or_else(|| io::Error::from(io::ErrorKind::Unsupported))?;
    match policy.socket_option(os, family) {
        Ok(Some(option)) => option.apply(fd),
        Ok(None) => Ok(()),
        Err(mismatch) => Err(io::Error::new(io::ErrorKind::Unsupported, mismatch)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn en0() -> Selected {
        Selected::new("en0", 6, None)
    }

    #[test]
    fn each_os_gets_its_own_means() {
        let policy = |os| BindingPolicy::for_os(os, Some(&en0()), 7);
        assert_eq!(policy(OsKind::Linux), Some(BindingPolicy::Mark(0x80000)));
        assert_eq!(policy(OsKind::OpenBsd), Some(BindingPolicy::Rtable(7)));
        assert_eq!(policy(OsKind::FreeBsd), Some(BindingPolicy::Fib(7)));
        assert_eq!(policy(OsKind::Darwin), Some(BindingPolicy::BoundIf(6)));
        assert_eq!(policy(OsKind::Illumos), Some(BindingPolicy::BoundIf(6)));
        assert_eq!(policy(OsKind::NetBsd), Some(BindingPolicy::HostRoutes));
        assert_eq!(BindingPolicy::for_os(OsKind::Darwin, None, 7), None);
    }

    #[test]
    fn each_policy_becomes_its_oss_option() {
        let v4 = SocketFamily::Ipv4;
        let v6 = SocketFamily::Ipv6;
        let opt = |level, name, value| Ok(Some(SocketOption { level, name, value }));
        let cases = [
            (BindingPolicy::Mark(0x80000), OsKind::Linux, v6, opt(1, 36, 0x80000)),
            (BindingPolicy::Rtable(3), OsKind::OpenBsd, v4, opt(0xffff, 0x1021, 3)),
            (BindingPolicy::Fib(1), OsKind::FreeBsd, v6, opt(0xffff, 0x1014, 1)),
            (BindingPolicy::BoundIf(6), OsKind::Darwin, v4, opt(0, 25, 6)),
            (BindingPolicy::BoundIf(6), OsKind::Darwin, v6, opt(41, 125, 6)),
            (BindingPolicy::BoundIf(2), OsKind::Illumos, v4, opt(0, 0x41, 2)),
            (BindingPolicy::BoundIf(2), OsKind::Illumos, v6, opt(41, 0x41, 2)),
            (BindingPolicy::HostRoutes, OsKind::NetBsd, v4, Ok(None)),
        ];
        for (policy, os, family, expected) in cases {
            assert_eq!(policy.socket_option(os, family), expected, "{os} {policy:?}");
        }
    }

    #[test]
    fn a_policy_of_another_os_is_refused() {
        let mark_on_darwin =
            BindingPolicy::Mark(1).socket_option(OsKind::Darwin, SocketFamily::Ipv4);
        assert!(mark_on_darwin.unwrap_err().to_string().contains("darwin"));
        for os in [OsKind::Linux, OsKind::FreeBsd, OsKind::NetBsd, OsKind::OpenBsd] {
            assert!(BindingPolicy::BoundIf(1).socket_option(os, SocketFamily::Ipv6).is_err());
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_numbers_match_libc() {
        assert_eq!((linux::SOL_SOCKET, linux::SO_MARK), (libc::SOL_SOCKET, libc::SO_MARK));
    }

    #[cfg(target_os = "openbsd")]
    #[test]
    fn openbsd_numbers_match_libc() {
        assert_eq!((BSD_SOL_SOCKET, OPENBSD_SO_RTABLE), (libc::SOL_SOCKET, libc::SO_RTABLE));
    }

    #[cfg(target_os = "freebsd")]
    #[test]
    fn freebsd_numbers_match_libc() {
        assert_eq!((BSD_SOL_SOCKET, FREEBSD_SO_SETFIB), (libc::SOL_SOCKET, libc::SO_SETFIB));
    }

    #[cfg(target_os = "macos")]
    #[test]
    fn darwin_numbers_match_libc() {
        assert_eq!(
            (darwin::IP_BOUND_IF, darwin::IPV6_BOUND_IF),
            (libc::IP_BOUND_IF, libc::IPV6_BOUND_IF)
        );
    }

    #[cfg(target_os = "illumos")]
    #[test]
    fn illumos_numbers_match_libc() {
        assert_eq!(
            (illumos::IP_BOUND_IF, illumos::IPV6_BOUND_IF),
            (libc::IP_BOUND_IF, libc::IPV6_BOUND_IF)
        );
    }

    /// Linux only: SO_MARK needs CAP_NET_ADMIN, so outside the test this checks that the
    /// kernel saw our level and name (EPERM, not ENOPROTOOPT) or took it.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_mark_reaches_the_kernel() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        match bind_socket(fd, BindingPolicy::Mark(BYPASS_MARK), SocketFamily::Ipv4) {
            Ok(()) => {
                let mut mark: u32 = 0;
                let mut len = 4 as libc::socklen_t;
                // SAFETY: mark and len are live and sized for the option.
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
        let refused = bind_socket(fd, BindingPolicy::BoundIf(1), SocketFamily::Ipv4).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::Unsupported);
    }
}
