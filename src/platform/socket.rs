//! The daemon's own sockets: created close-on-exec and non-blocking on every OS, and kept off
//! the tunnel.
//!
//! When table 52 holds a route that covers a peer's, DERP's or control's address (an exit
//! node's `0.0.0.0/0`, a subnet route), the daemon's encrypted UDP and TCP would be routed
//! back into its own TUN. Marked sockets match the bypass rules (prefs 5210–5250) instead and
//! use the main table.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// A new socket of `domain` (`AF_INET`, `AF_INET6`) and `kind` (`SOCK_DGRAM`, `SOCK_STREAM`),
/// close-on-exec so no child inherits it, and non-blocking for the poll loop.
pub fn open(domain: libc::c_int, kind: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned by the OwnedFd built right after.
    let fd = unsafe { libc::socket(domain, kind | CREATION_FLAGS, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_flags_after_creation(&fd)?;
    Ok(fd)
}

/// The options that set the receive and the send buffer size, each tried in turn until one
/// works: Linux's FORCE variants pass the sysctl maximum when we are root; the other kernels
/// have only the plain ones (capped by `kern.ipc.maxsockbuf` or the like).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const BUFFER_OPTIONS: [&[libc::c_int]; 2] =
    [&[libc::SO_RCVBUFFORCE, libc::SO_RCVBUF], &[libc::SO_SNDBUFFORCE, libc::SO_SNDBUF]];
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const BUFFER_OPTIONS: [&[libc::c_int]; 2] = [&[libc::SO_RCVBUF], &[libc::SO_SNDBUF]];

/// Darwin's socket(2) takes no flags, so there they are set by fcntl right after; the daemon
/// has one thread and never forks, so nothing can inherit the descriptor in between.
#[cfg(not(target_vendor = "apple"))]
const CREATION_FLAGS: libc::c_int = libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
#[cfg(target_vendor = "apple")]
const CREATION_FLAGS: libc::c_int = 0;

#[cfg(not(target_vendor = "apple"))]
fn set_flags_after_creation(_fd: &OwnedFd) -> io::Result<()> {
    Ok(())
}

#[cfg(target_vendor = "apple")]
fn set_flags_after_creation(fd: &OwnedFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let ok = unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == 0 && {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
        }
    };
    if !ok {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The fwmark that tells the policy rules "this packet comes from the daemon itself".
/// It sits in the bits 0xff0000 that the Tailscale scheme reserves for itself.
pub const BYPASS_MARK: u32 = 0x80000;

/// Marks the socket `fd` with [`BYPASS_MARK`]. Needs CAP_NET_ADMIN.
#[cfg(target_os = "linux")]
pub fn mark_bypass(fd: RawFd) -> io::Result<()> {
    let mark: u32 = BYPASS_MARK;
    // SAFETY: the option value is a live `u32` whose size we pass alongside it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&mark as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Does nothing yet: the other OSes keep the daemon's traffic off the tunnel by other means
/// (FIBs and rtables, `IP_BOUND_IF`, host routes via the physical gateway) that need the
/// default interface, so they will get their own function rather than a fake mark.
#[cfg(not(target_os = "linux"))]
pub fn mark_bypass(_fd: RawFd) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn new_sockets_are_close_on_exec_and_non_blocking() {
        for kind in [libc::SOCK_DGRAM, libc::SOCK_STREAM] {
            let fd = open(libc::AF_INET, kind).unwrap();
            // SAFETY: fcntl queries on a descriptor we own.
            let (fd_flags, status_flags) = unsafe {
                (
                    libc::fcntl(fd.as_raw_fd(), libc::F_GETFD),
                    libc::fcntl(fd.as_raw_fd(), libc::F_GETFL),
                )
            };
            assert_ne!(fd_flags & libc::FD_CLOEXEC, 0, "kind {kind}: not close-on-exec");
            assert_ne!(status_flags & libc::O_NONBLOCK, 0, "kind {kind}: blocking");
        }
    }
}
