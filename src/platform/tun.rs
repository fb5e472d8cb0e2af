//! The TUN device: the daemon's end of the virtual interface that carries raw IP packets.
//!
//! One `read` yields exactly one IPv4 or IPv6 packet and one `write` injects one; there is no
//! packet-info header on Linux (`IFF_NO_PI`). With offloads on ([`Tun::has_vnet_hdr`]) every
//! read starts with a `virtio_net_hdr` and may hold a TCP super-segment (see `packet::gso`),
//! and every write carries such a header too ([`Tun::write`] adds an empty one). The
//! descriptor is non-blocking so the event loop can register it and drain it until
//! `WouldBlock`.

use crate::packet::gso::VIRTIO_NET_HDR_LEN;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

pub(crate) mod fake;
// Framing of the BSD and macOS TUN devices; wired when their TUN opens (issue 9).
#[allow(dead_code)]
pub(crate) mod framing;
#[cfg(target_os = "linux")]
mod linux;

/// Longest interface name the kernels we target accept (IFNAMSIZ 16 minus the NUL).
pub(crate) const MAX_NAME_LEN: usize = 15;

/// The daemon's TUN: a kernel interface, or the in-memory [`fake::FakeTun`] that needs
/// neither root nor a TUN driver.
#[derive(Debug)]
pub(crate) enum Device {
    Kernel(Tun),
    Fake(fake::FakeTun),
}

impl Device {
    /// Opens the kernel interface `name`, or the fake when `name` is [`fake::NAME`].
    pub(crate) fn open(name: &str) -> io::Result<Device> {
        if name == fake::NAME {
            return Ok(Device::Fake(fake::FakeTun::new()));
        }
        Tun::open(name).map(Device::Kernel)
    }

    /// The kernel's name for the interface, or [`fake::NAME`].
    pub(crate) fn name(&self) -> &str {
        match self {
            Device::Kernel(tun) => tun.name(),
            Device::Fake(_) => fake::NAME,
        }
    }
}

/// An open TUN device. The interface lives as long as this value: closing the descriptor
/// removes it, and with it every address and route that pointed at it.
#[derive(Debug)]
pub(crate) struct Tun {
    fd: OwnedFd,
    name: String,
    vnet_hdr: bool,
}

impl Tun {
    /// Creates (or attaches to) the TUN interface `name`.
    pub(crate) fn open(name: &str) -> io::Result<Tun> {
        validate_name(name).map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
        open_device(name)
    }

    /// The name the kernel gave the interface (differs from the request for patterns such
    /// as `tun%d`).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether reads start with, and writes need, a `virtio_net_hdr` (offloads are on).
    pub(crate) fn has_vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// Reads one packet, preceded by its `virtio_net_hdr` when [`Tun::has_vnet_hdr`];
    /// `WouldBlock` when none is queued.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: the pointer and length describe `buf`, which outlives the call.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        byte_count(n)
    }

    /// Writes one plain packet into the kernel's stack as if it had arrived on the interface.
    pub(crate) fn write(&self, packet: &[u8]) -> io::Result<usize> {
        if self.vnet_hdr {
            return self.write_with_hdr(&[0; VIRTIO_NET_HDR_LEN], packet);
        }
        // SAFETY: the pointer and length describe `packet`, which outlives the call.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
        byte_count(n)
    }

    /// Writes `packet` behind the `virtio_net_hdr` `hdr` (only when [`Tun::has_vnet_hdr`]):
    /// a TCP super-segment the kernel will take as many segments.
    pub(crate) fn write_with_hdr(
        &self,
        hdr: &[u8; VIRTIO_NET_HDR_LEN],
        packet: &[u8],
    ) -> io::Result<usize> {
        let iov = [
            libc::iovec { iov_base: hdr.as_ptr() as *mut libc::c_void, iov_len: hdr.len() },
            libc::iovec { iov_base: packet.as_ptr() as *mut libc::c_void, iov_len: packet.len() },
        ];
        // SAFETY: both iovecs describe live buffers that outlive the call; writev only reads.
        let n = unsafe { libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
        byte_count(n)
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Turns a `read`/`write` return value into a byte count or the thread's `errno`.
fn byte_count(n: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Checks an interface name before it reaches the kernel, so a bad configuration produces
/// a message that says what is wrong instead of a bare `EINVAL`.
pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the TUN interface name is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "the TUN interface name {name:?} is {} bytes long; the limit is {MAX_NAME_LEN}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a valid interface name"));
    }
    if let Some(bad) =
        name.chars().find(|c| *c == '/' || *c == ':' || *c == '\0' || c.is_whitespace())
    {
        return Err(format!(
            "the TUN interface name {name:?} contains the forbidden character {bad:?}"
        ));
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn open_device(name: &str) -> io::Result<Tun> {
    let (fd, name, vnet_hdr) = linux::open(name)?;
    Ok(Tun { fd, name, vnet_hdr })
}

#[cfg(not(target_os = "linux"))]
fn open_device(_name: &str) -> io::Result<Tun> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("TUN devices are not implemented on {} yet", std::env::consts::OS),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for good in ["tailscale0", "weft0", "tun%d", "a", "abcdefghijklmno"] {
            assert_eq!(validate_name(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn rejects_names_the_kernel_would_refuse() {
        for bad in ["", ".", "..", "abcdefghijklmnop", "a/b", "a:b", "a b", "a\0", "tab\t"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn open_refuses_an_invalid_name_without_touching_the_kernel() {
        let err = Tun::open("much-too-long-name").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("limit is 15"), "{err}");
    }

    #[test]
    fn the_fake_opens_anywhere_without_the_kernel() {
        let device = Device::open(fake::NAME).unwrap();
        assert!(matches!(device, Device::Fake(_)));
        assert_eq!(device.name(), "fake");
    }

    #[cfg(not(target_os = "linux"))]
    #[test]
    fn open_is_unsupported_elsewhere() {
        let err = Tun::open("weft0").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    }
}
