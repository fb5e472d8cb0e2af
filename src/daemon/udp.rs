//! The daemon's UDP sockets: one IPv4 and one IPv6 (v6-only) socket on the same port, each
//! marked so its traffic bypasses the tunnel's routes.

use crate::platform::socket::{self, mark_bypass};
use crate::platform::udp_gso::{self, MAX_GSO_BYTES, MAX_SEGMENTS};
use mio::net::UdpSocket;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

pub struct UdpSockets {
    pub v4: UdpSocket,
    /// Absent when the host has no IPv6.
    pub v6: Option<UdpSocket>,
}

/// Datagrams on their way out, gathered so that a run of them to one destination leaves in a
/// single `sendmsg` with `UDP_SEGMENT`: all of one size, only the last may be shorter. The
/// engine's sink pushes; the daemon flushes at the end of each burst of readiness.
pub struct SendBatch {
    buf: Box<[u8]>,
    len: usize,
    count: usize,
    segment: usize,
    to: Option<SocketAddr>,
    /// A datagram shorter than `segment` was added: nothing may follow it.
    closed: bool,
    /// The kernel does UDP GSO; cleared for good when it refuses.
    gso: bool,
}

impl SendBatch {
    pub fn new(sockets: &UdpSockets) -> SendBatch {
        // WEFT_UDP_GSO=0 turns batching off, for comparisons and as an escape hatch.
        let wanted = std::env::var_os("WEFT_UDP_GSO").is_none_or(|v| v != "0");
        let gso = wanted && udp_gso::probe_gso(sockets.v4.as_raw_fd());
        if !gso {
            log::info!("no UDP GSO on this kernel: one datagram per send");
        }
        SendBatch {
            buf: vec![0; if gso { MAX_GSO_BYTES } else { 0 }].into_boxed_slice(),
            len: 0,
            count: 0,
            segment: 0,
            to: None,
            closed: false,
            gso,
        }
    }

    /// Queues `datagram` for `to`, sending what was queued first if it can't join it.
    pub fn push(&mut self, sockets: &UdpSockets, to: SocketAddr, datagram: &[u8]) {
        if !self.gso || datagram.len() > self.buf.len() {
            self.flush(sockets);
            send_plain(sockets, to, datagram);
            return;
        }
        if self.count > 0
            && (self.to != Some(to)
                || self.closed
                || datagram.len() > self.segment
                || self.len + datagram.len() > self.buf.len()
                || self.count == MAX_SEGMENTS)
        {
            self.flush(sockets);
        }
        if self.count == 0 {
            self.to = Some(to);
            self.segment = datagram.len();
        }
        self.buf[self.len..self.len + datagram.len()].copy_from_slice(datagram);
        self.len += datagram.len();
        self.count += 1;
        self.closed = datagram.len() < self.segment;
    }

    /// Sends whatever is queued.
    pub fn flush(&mut self, sockets: &UdpSockets) {
        let (Some(to), count) = (self.to.take(), std::mem::take(&mut self.count)) else {
            return;
        };
        let len = std::mem::take(&mut self.len);
        self.closed = false;
        if count == 0 {
            return;
        }
        let data = &self.buf[..len];
        if count == 1 {
            send_plain(sockets, to, data);
            return;
        }
        let Some(socket) = sockets.for_destination(&to) else {
            return;
        };
        match udp_gso::send_segments(socket.as_raw_fd(), to, data, self.segment as u16) {
            Ok(_) => {}
            // The socket buffer is full: the datagrams are lost, as a plain send's would be.
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.raw_os_error() == Some(libc::ENOBUFS) => {}
            Err(e) => {
                if refuses_gso(&e) {
                    log::info!(
                        "the kernel refused UDP GSO ({e}): one datagram per send from now on"
                    );
                    self.gso = false;
                } else {
                    log::trace!("GSO send to {to} failed ({e}); resending one by one");
                }
                for datagram in data.chunks(self.segment) {
                    send_plain(sockets, to, datagram);
                }
            }
        }
    }
}

/// Errors that mean "this kernel or device can't segment UDP", not "this batch was bad".
fn refuses_gso(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
        || matches!(e.raw_os_error(), Some(libc::EIO | libc::EOPNOTSUPP | libc::ENOPROTOOPT))
}

fn send_plain(sockets: &UdpSockets, to: SocketAddr, datagram: &[u8]) {
    if let Some(socket) = sockets.for_destination(&to) {
        if let Err(e) = socket.send_to(datagram, to) {
            log::trace!("send to {to} failed: {e}");
        }
    }
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
    let socket = std::net::UdpSocket::from(socket::open(domain, libc::SOCK_DGRAM)?);
    let fd = socket.as_raw_fd();
    if addr.is_ipv6() {
        set_v6_only(fd)?;
    }
    grow_buffers(fd);
    if let Err(e) = udp_gso::enable_gro(fd) {
        log::debug!("no UDP GRO on {addr}: {e}");
    }
    if let Err(e) = mark_bypass(fd) {
        log::warn!("could not mark UDP socket to bypass the tunnel: {e}");
    }
    bind_raw(&socket, addr)?;
    Ok(UdpSocket::from_std(socket))
}

/// Socket buffer size asked for: bursts of a fast TCP stream through the tunnel overflow the
/// default (~200 KiB) and every overflow is a lost packet TCP must retransmit.
const SOCKET_BUFFER_BYTES: libc::c_int = 4 << 20;

/// Raises both socket buffers, on Linux past the sysctl maximum when we are root;
/// failure leaves the defaults, which work, only slower.
fn grow_buffers(fd: i32) {
    for options in socket::BUFFER_OPTIONS {
        options.iter().any(|&option| {
            set_int_option(fd, libc::SOL_SOCKET, option, SOCKET_BUFFER_BYTES).is_ok()
        });
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
    let (storage, len) = crate::platform::sockaddr::to_sockaddr(addr);
    // SAFETY: storage holds a valid sockaddr of `len` bytes for the socket's family.
    let rc = unsafe {
        libc::bind(socket.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
