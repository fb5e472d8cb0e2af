//! The daemon's UDP sockets: one IPv4 and one IPv6 (v6-only) socket on the same port, each
//! marked so its traffic bypasses the tunnel's routes.

use crate::platform::udp_gso::{self, MAX_GSO_BYTES, MAX_SEGMENTS};
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

pub(super) struct UdpSockets {
    v4: UdpSocket,
    /// Absent when the host has no IPv6.
    v6: Option<UdpSocket>,
}

/// Datagrams on their way out, gathered so that a run of them to one destination leaves in a
/// single `sendmsg` with `UDP_SEGMENT`: all of one size, only the last may be shorter. The
/// engine's sink pushes; the daemon flushes at the end of each burst of readiness.
pub(super) struct SendBatch {
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
    pub(super) fn new(sockets: &UdpSockets) -> SendBatch {
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
    pub(super) fn push(&mut self, sockets: &UdpSockets, to: SocketAddr, datagram: &[u8]) {
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
    pub(super) fn flush(&mut self, sockets: &UdpSockets) {
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
    pub(super) fn bind(port: u16) -> io::Result<UdpSockets> {
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

    /// Registers each socket for reading, under the token of its family.
    pub(super) fn register(&mut self, registry: &Registry, v4: Token, v6: Token) -> io::Result<()> {
        registry.register(&mut self.v4, v4, Interest::READABLE)?;
        if let Some(socket) = &mut self.v6 {
            registry.register(socket, v6, Interest::READABLE)?;
        }
        Ok(())
    }

    /// Binds both sockets again on the same port, so that they take the pinning published
    /// since (macOS's `IP_BOUND_IF` holds the interface a socket was bound with). Should the
    /// port have been taken in between, any port is better than none: control then hears
    /// of the new one with our endpoints.
    pub(super) fn rebind(&mut self, registry: &Registry, v4: Token, v6: Token) -> io::Result<()> {
        let port = self.port();
        let _ = registry.deregister(&mut self.v4);
        if let Some(mut socket) = self.v6.take() {
            let _ = registry.deregister(&mut socket);
        }
        // The port is free only once the old socket is closed: an unbound one holds its place.
        let placeholder = UdpSocket::from_std(crate::platform::socket::unbound_udp()?);
        drop(std::mem::replace(&mut self.v4, placeholder));
        *self = UdpSockets::bind(port).or_else(|e| {
            log::error!("UDP port {port} was taken while rebinding ({e}): taking another");
            UdpSockets::bind(0)
        })?;
        self.register(registry, v4, v6)
    }

    /// The socket of one family.
    pub(super) fn family(&self, v6: bool) -> Option<&UdpSocket> {
        if v6 {
            self.v6.as_ref()
        } else {
            Some(&self.v4)
        }
    }

    pub(super) fn port(&self) -> u16 {
        self.v4.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The socket of `to`'s family.
    pub(super) fn for_destination(&self, to: &SocketAddr) -> Option<&UdpSocket> {
        match to {
            SocketAddr::V4(_) => Some(&self.v4),
            SocketAddr::V6(_) => self.v6.as_ref(),
        }
    }
}

/// A socket of the data path: bound and marked by the platform layer, with large buffers and
/// GRO for bulk traffic.
fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = crate::platform::socket::bind_udp(addr)?;
    crate::platform::socket::grow_buffers(socket.as_raw_fd());
    if let Err(e) = udp_gso::enable_gro(socket.as_raw_fd()) {
        log::debug!("no UDP GRO on {addr}: {e}");
    }
    Ok(UdpSocket::from_std(socket))
}
