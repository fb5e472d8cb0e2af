//! The daemon's UDP sockets: one IPv4 and one IPv6 (v6-only) socket on the same port, each
//! marked so its traffic bypasses the tunnel's routes.

use crate::platform::socket::mark_bypass;
use mio::net::UdpSocket;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd};

pub struct UdpSockets {
    pub v4: UdpSocket,
    /// Absent when the host has no IPv6.
    pub v6: Option<UdpSocket>,
}

impl UdpSockets {
    /// Binds both families to `port` (0 = a port the kernel picks, shared by both).
    pub fn bind(port: u16) -> io::Result<UdpSockets> {
        let v4 = bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))?;
        let port = v4.local_addr()?.port();
        let v6 = match bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))) {
            Ok(s) => Some(s),
            Err(e) => {
                log::warn!("no IPv6 UDP socket on port {port}: {e}");
                None
            }
        };
        Ok(UdpSockets { v4, v6 })
    }

    pub fn port(&self) -> u16 {
        self.v4.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The socket of `to`'s family.
    pub fn for_destination(&self, to: &SocketAddr) -> Option<&UdpSocket> {
        match to {
            SocketAddr::V4(_) => Some(&self.v4),
            SocketAddr::V6(_) => self.v6.as_ref(),
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain socket(2); the descriptor is owned by the UdpSocket built below.
    let fd = unsafe { libc::socket(domain, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket nobody else owns.
    let socket = unsafe { std::net::UdpSocket::from_raw_fd(fd) };
    if addr.is_ipv6() {
        set_v6_only(fd)?;
    }
    grow_buffers(fd);
    if let Err(e) = mark_bypass(fd) {
        log::warn!("could not mark UDP socket to bypass the tunnel: {e}");
    }
    bind_raw(&socket, addr)?;
    socket.set_nonblocking(true)?;
    Ok(UdpSocket::from_std(socket))
}

/// Socket buffer size asked for: bursts of a fast TCP stream through the tunnel overflow the
/// default (~200 KiB) and every overflow is a lost packet TCP must retransmit.
const SOCKET_BUFFER_BYTES: libc::c_int = 4 << 20;

/// Raises both socket buffers, past the sysctl maximum when we are root (the FORCE variants);
/// failure leaves the defaults, which work, only slower.
fn grow_buffers(fd: i32) {
    for (force, plain) in
        [(libc::SO_RCVBUFFORCE, libc::SO_RCVBUF), (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF)]
    {
        if set_int_option(fd, libc::SOL_SOCKET, force, SOCKET_BUFFER_BYTES).is_err() {
            let _ = set_int_option(fd, libc::SOL_SOCKET, plain, SOCKET_BUFFER_BYTES);
        }
    }
}

fn set_int_option(
    fd: i32,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: setsockopt with a pointer to a c_int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// IPv6-only, so the IPv4 socket can hold the same port.
fn set_v6_only(fd: i32) -> io::Result<()> {
    set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)
}

fn bind_raw(socket: &std::net::UdpSocket, addr: SocketAddr) -> io::Result<()> {
    let (storage, len) = sockaddr(addr);
    // SAFETY: storage holds a valid sockaddr of `len` bytes for the socket's family.
    let rc = unsafe {
        libc::bind(socket.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid; the family-specific view is written below.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in.
            let sin = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            (storage, std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            (storage, std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}
