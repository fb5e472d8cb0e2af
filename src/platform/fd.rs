//! File-descriptor flags.

use std::io;
use std::os::fd::RawFd;

/// Makes `fd` non-blocking and close-on-exec, for descriptors made without the flags
/// (pipes, and sockets where the OS has no `SOCK_NONBLOCK`).
pub(crate) fn set_nonblocking_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
