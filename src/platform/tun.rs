//! The TUN device: the daemon's end of the virtual interface that carries raw IP packets.
//!
//! One `read` yields exactly one IPv4 or IPv6 packet and one `write` injects one; there is no
//! packet-info header on Linux (`IFF_NO_PI`) nor on illumos (one packet per STREAMS
//! message). The BSDs' `/dev/tunN` and macOS's utun put a
//! 4-byte address family before each packet ([`framing`]), which `read` strips and `write`
//! adds. With offloads on ([`Tun::has_vnet_hdr`]) every
//! read starts with a `virtio_net_hdr` and may hold a TCP super-segment (see `packet::gso`),
//! and every write carries such a header too ([`Tun::write`] adds an empty one). The
//! descriptor is non-blocking so the event loop can register it and drain it until
//! `WouldBlock`.

use crate::packet::gso::VIRTIO_NET_HDR_LEN;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

#[cfg(any(target_os = "freebsd", target_os = "netbsd", target_os = "openbsd"))]
mod bsd;
pub(crate) mod fake;
pub(crate) mod framing;
// illumos's STREAMS tuntap: its layouts are compiled and tested everywhere, opened on
// illumos only.
#[cfg_attr(not(target_os = "illumos"), allow(dead_code))]
mod illumos;
#[cfg(target_os = "linux")]
mod linux;
// macOS's utun: its layouts are compiled and tested everywhere, opened on macOS only.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
mod utun;

use framing::Framing;

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
    framing: Framing,
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
    /// `WouldBlock` when none is queued. A frame whose address-family header does not fit
    /// its packet is dropped (logged) and the next one read.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: the pointer and length describe `buf`, which outlives the call.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let n = byte_count(n)?;
            if self.framing == Framing::Bare {
                return Ok(n);
            }
            match self.framing.packet_of(&buf[..n]) {
                Ok(packet) => {
                    let len = packet.len();
                    buf.copy_within(n - len..n, 0);
                    return Ok(len);
                }
                Err(e) => log::debug!("dropped a TUN frame of {n} bytes: {e}"),
            }
        }
    }

    /// Writes one plain packet into the kernel's stack as if it had arrived on the interface.
    pub(crate) fn write(&self, packet: &[u8]) -> io::Result<usize> {
        if self.vnet_hdr {
            return self.write_with_hdr(&[0; VIRTIO_NET_HDR_LEN], packet);
        }
        let header = self
            .framing
            .header_for(packet)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if let Some(header) = header {
            let n = self.write_parts(&header, packet)?;
            return Ok(n.saturating_sub(header.len()));
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
        self.write_parts(hdr, packet)
    }

    /// One `writev` of a header and a packet.
    fn write_parts(&self, header: &[u8], packet: &[u8]) -> io::Result<usize> {
        let iov = [
            libc::iovec { iov_base: header.as_ptr() as *mut libc::c_void, iov_len: header.len() },
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
    Ok(Tun { fd, name, vnet_hdr, framing: own_framing() })
}

#[cfg(any(target_os = "freebsd", target_os = "netbsd", target_os = "openbsd"))]
fn open_device(name: &str) -> io::Result<Tun> {
    let fd = bsd::open(name)?;
    Ok(Tun { fd, name: name.to_string(), vnet_hdr: false, framing: own_framing() })
}

#[cfg(target_os = "macos")]
fn open_device(name: &str) -> io::Result<Tun> {
    let (fd, name) = utun::open(name)?;
    Ok(Tun { fd, name, vnet_hdr: false, framing: own_framing() })
}

#[cfg(target_os = "illumos")]
fn open_device(name: &str) -> io::Result<Tun> {
    let fd = illumos::open(name)?;
    Ok(Tun { fd, name: name.to_string(), vnet_hdr: false, framing: own_framing() })
}

/// This OS's framing (none on Linux and illumos).
#[cfg(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "illumos"
))]
fn own_framing() -> Framing {
    crate::platform::os_kind::OsKind::current().map_or(Framing::Bare, Framing::of)
}

/// An OS without a TUN shim; `platform::check_supported` refuses it at start.
#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "illumos"
)))]
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

    /// The read and write paths of a framed device, over a packet socket pair standing in
    /// for `/dev/tunN`: what is written carries the OS's header, what is read loses it, and
    /// a frame whose header lies is dropped, not returned.
    #[test]
    fn framed_devices_add_and_strip_the_family_header() {
        use crate::platform::os_kind::OsKind;
        use std::os::fd::FromRawFd;
        let mut pair = [0; 2];
        // SAFETY: socketpair fills `pair` with two fresh descriptors we own.
        let rc =
            unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0, pair.as_mut_ptr()) };
        assert_eq!(rc, 0);
        // SAFETY: both descriptors are fresh and owned by nothing else.
        let (ours, kernel) =
            unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
        let tun = Tun {
            fd: ours,
            name: "tun0".into(),
            vnet_hdr: false,
            framing: Framing::of(OsKind::FreeBsd),
        };
        let v4 = [0x45, 0, 0, 20, 1, 2, 3, 4];
        assert_eq!(tun.write(&v4).unwrap(), v4.len());
        let mut frame = [0u8; 64];
        // SAFETY: reading into a live buffer of the given length.
        let n = unsafe { libc::read(kernel.as_raw_fd(), frame.as_mut_ptr().cast(), frame.len()) };
        assert_eq!(&frame[..n as usize], [&[0, 0, 0, 2][..], &v4].concat());

        let v6 = [0x60, 0, 0, 0, 9, 9];
        let lying = [&[0, 0, 0, 2][..], &v6].concat();
        let good = [&[0, 0, 0, 28][..], &v6].concat();
        for frame in [&lying, &good] {
            // SAFETY: writing a live buffer of the given length.
            let n = unsafe { libc::write(kernel.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
            assert_eq!(n as usize, frame.len());
        }
        let mut buf = [0u8; 64];
        assert_eq!(tun.read(&mut buf).unwrap(), v6.len(), "the lying frame is skipped");
        assert_eq!(buf[..v6.len()], v6);
        assert_eq!(tun.write(&[0x50]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[cfg(target_os = "illumos")]
    #[test]
    fn open_on_illumos_wants_a_tun_n_name() {
        let err = Tun::open("weft0").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("name it tunN"), "{err}");
    }
}
