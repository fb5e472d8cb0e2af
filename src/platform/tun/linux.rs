//! Linux shim: `/dev/net/tun` plus the `TUNSETIFF` ioctl, and the offloads that let the kernel
//! hand us TCP super-segments (`IFF_VNET_HDR` + `TUNSETOFFLOAD`).

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// Offloads asked for: the kernel may leave checksums to us and send TCP (v4, v6, ECN-marked)
/// as super-segments; `packet::gso` finishes both.
const OFFLOADS: libc::c_uint =
    libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN;

/// Opens a layer-3 TUN without packet-info headers and returns it with the kernel's name and
/// whether every packet carries a `virtio_net_hdr` (offloads on). `WEFT_TUN_OFFLOAD=0` in the
/// environment opens a plain TUN, for comparisons and as an escape hatch.
pub(super) fn open(name: &str) -> io::Result<(OwnedFd, String, bool)> {
    let want_offload = std::env::var_os("WEFT_TUN_OFFLOAD").is_none_or(|v| v != "0");
    if want_offload {
        match open_with(name, true) {
            Ok((fd, kernel_name)) => match enable_offloads(&fd) {
                Ok(()) => return Ok((fd, kernel_name, true)),
                Err(e) => log::info!("TUN offloads unavailable ({e}); using plain packets"),
            },
            Err(e) => log::info!("TUN with virtio headers unavailable ({e}); using plain packets"),
        }
    }
    let (fd, kernel_name) = open_with(name, false)?;
    Ok((fd, kernel_name, false))
}

/// Sets the 10-byte header size and the offloads on a TUN opened with `IFF_VNET_HDR`.
fn enable_offloads(fd: &OwnedFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = crate::packet::gso::VIRTIO_NET_HDR_LEN as libc::c_int;
    // SAFETY: TUNSETVNETHDRSZ reads one c_int through the pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ, &size) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: TUNSETOFFLOAD takes the flags by value.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, OFFLOADS as libc::c_ulong) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn open_with(name: &str, vnet_hdr: bool) -> io::Result<(OwnedFd, String)> {
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
    let kernel_name = attach(&fd, name, vnet_hdr)?;
    Ok((fd, kernel_name))
}

/// Binds the descriptor to the interface `name`, creating it if needed.
fn attach(fd: &OwnedFd, name: &str, vnet_hdr: bool) -> io::Result<String> {
    use std::os::fd::AsRawFd;

    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    // The caller validated the length, so the name fits with its terminating NUL.
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    let vnet = if vnet_hdr { libc::IFF_VNET_HDR } else { 0 };
    request.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI | vnet) as libc::c_short;
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
