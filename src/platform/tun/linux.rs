//! Linux shim: `/dev/net/tun` plus the `TUNSETIFF` ioctl.

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// Opens a layer-3 TUN without packet-info headers and returns it with the kernel's name.
pub(super) fn open(name: &str) -> io::Result<(OwnedFd, String)> {
    let path = c"/dev/net/tun";
    // SAFETY: `path` is NUL-terminated; the flags are plain integers.
    let raw =
        unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if raw < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("cannot open /dev/net/tun: {err}")));
    }
    // SAFETY: `raw` is a descriptor we just opened and nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let kernel_name = attach(&fd, name)?;
    Ok((fd, kernel_name))
}

/// Binds the descriptor to the interface `name`, creating it if needed.
fn attach(fd: &OwnedFd, name: &str) -> io::Result<String> {
    use std::os::fd::AsRawFd;

    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    // The caller validated the length, so the name fits with its terminating NUL.
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    request.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `ifreq`, which `request` is.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut request) } < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("cannot create TUN interface {name:?}: {err}"),
        ));
    }
    // SAFETY: the kernel leaves a NUL-terminated name in the zero-initialised field.
    let kernel_name = unsafe { CStr::from_ptr(request.ifr_name.as_ptr()) };
    Ok(kernel_name.to_string_lossy().into_owned())
}
