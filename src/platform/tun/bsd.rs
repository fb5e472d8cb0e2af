//! FreeBSD, NetBSD and OpenBSD shim: the character device `/dev/tunN`, whose first open
//! creates the interface `tunN`, switched to the 4-byte address-family header
//! (`TUNSIFHEAD`; OpenBSD always has it). The framing itself is `framing`'s; the interface
//! outlives the descriptor, so the router destroys it at stop and after a crash.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `TUNSIFHEAD = _IOW('t', 96, int)` on FreeBSD, `_IOW('t', 66, int)` on NetBSD.
#[cfg(target_os = "freebsd")]
const TUNSIFHEAD: Option<libc::c_ulong> = Some(0x8004_7460);
#[cfg(target_os = "netbsd")]
const TUNSIFHEAD: Option<libc::c_ulong> = Some(0x8004_7442);
#[cfg(target_os = "openbsd")]
const TUNSIFHEAD: Option<libc::c_ulong> = None;

/// Opens `/dev/<name>` (`name` must be `tunN`) with every packet behind its
/// address-family header.
pub(super) fn open(name: &str) -> io::Result<OwnedFd> {
    let unit =
        name.strip_prefix("tun").filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if unit.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "on {} the TUN interface is /dev/tunN: name it tunN (--tun tun0), not {name:?}",
                std::env::consts::OS
            ),
        ));
    }
    let path = CString::new(format!("/dev/{name}"))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `path` is NUL-terminated; the flags are plain integers.
    let raw =
        unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if raw < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("/dev/{name}: {e}")));
    }
    // SAFETY: raw is a fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    if let Some(request) = TUNSIFHEAD {
        let on: libc::c_int = 1;
        // SAFETY: TUNSIFHEAD reads one c_int through the pointer.
        if unsafe { libc::ioctl(fd.as_raw_fd(), request, &on) } < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("TUNSIFHEAD on /dev/{name}: {e}")));
        }
    }
    Ok(fd)
}
