//! Keeping the daemon's own sockets off the tunnel.
//!
//! When table 52 holds a route that covers a peer's, DERP's or control's address (an exit
//! node's `0.0.0.0/0`, a subnet route), the daemon's encrypted UDP and TCP would be routed
//! back into its own TUN. Marked sockets match the bypass rules (prefs 5210–5250) instead and
//! use the main table.

use std::io;
use std::os::fd::RawFd;

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
