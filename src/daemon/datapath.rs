//! The daemon's side of the data path: draining the TUN device and the UDP sockets into the
//! engine, and the sink through which the engine's output reaches the kernel.

use super::event_loop::Daemon;
use super::udp::UdpSockets;
use crate::engine::PacketSink;
use crate::platform::tun::Tun;
use std::io;
use std::time::Instant;

/// Where the engine's packets go: straight to the kernel.
pub(super) struct Io<'a> {
    pub tun: &'a Tun,
    pub udp: &'a UdpSockets,
}

impl PacketSink for Io<'_> {
    fn send_udp(&mut self, to: std::net::SocketAddr, datagram: &[u8]) {
        if let Some(socket) = self.udp.for_destination(&to) {
            if let Err(e) = socket.send_to(datagram, to) {
                log::trace!("send to {to} failed: {e}");
            }
        }
    }

    fn write_tun(&mut self, packet: &[u8]) {
        if let Err(e) = self.tun.write(packet) {
            log::trace!("TUN write failed: {e}");
        }
    }
}

impl Daemon {
    pub(super) fn read_tun(&mut self) {
        let now = Instant::now();
        let mut io = Io { tun: &self.tun, udp: &self.udp };
        loop {
            match self.tun.read(&mut self.buf) {
                Ok(n) => self.engine.handle_tun_packet(now, &self.buf[..n], &mut io),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("TUN read failed: {e}");
                    return;
                }
            }
        }
    }

    pub(super) fn read_udp(&mut self, v6: bool) {
        let now = Instant::now();
        let socket = if v6 { self.udp.v6.as_ref() } else { Some(&self.udp.v4) };
        let Some(socket) = socket else { return };
        let mut io = Io { tun: &self.tun, udp: &self.udp };
        loop {
            match socket.recv_from(&mut self.buf) {
                Ok((n, from)) => self.engine.handle_datagram(now, from, &self.buf[..n], &mut io),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors surface as ECONNREFUSED and the like; the socket stays usable.
                    log::trace!("UDP receive error: {e}");
                }
            }
        }
    }
}
