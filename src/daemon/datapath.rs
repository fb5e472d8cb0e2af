//! The data path driver: owns the TUN device, the UDP sockets and the buffers between them,
//! drains them into the engine and is the sink through which the engine's output reaches the
//! kernel. It has no events and no deadline of its own: every packet is a direct call into the
//! [`Engine`] the loop lends it, so the per-packet path allocates nothing and queues nothing.
//!
//! Batching lives here, out of the engine's sight: a TUN read may be a TCP super-segment that
//! `packet::gso` cuts into packets, a UDP read may be many datagrams glued by GRO, and outgoing
//! datagrams gather in a [`SendBatch`] that leaves with one `sendmsg` when [`Io`] is dropped
//! (the end of each readiness burst) or fills up.

use super::derp::Outbox;
use super::tokens;
use super::udp::{SendBatch, UdpSockets};
use crate::control::tailcfg::RegionId;
use crate::engine::{Engine, PacketSink, MAX_PACKET};
use crate::keys::PublicKey;
use crate::packet::gro::Coalescer;
use crate::packet::gso::{self, VirtioHdr, VIRTIO_NET_HDR_LEN};
use crate::platform::tun::Tun;
use crate::platform::udp_gso;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

pub(super) struct DataPath {
    tun: Tun,
    udp: UdpSockets,
    buffers: Buffers,
}

impl DataPath {
    /// Opens the TUN device `tun` and binds the UDP sockets to `port` (0: the kernel picks).
    pub fn open(tun: &str, port: u16) -> Result<DataPath, String> {
        let tun = Tun::open(tun).map_err(|e| format!("opening TUN {tun}: {e}"))?;
        let udp = UdpSockets::bind(port).map_err(|e| format!("binding UDP port {port}: {e}"))?;
        let buffers = Buffers::new(&udp);
        Ok(DataPath { tun, udp, buffers })
    }

    pub fn register(&mut self, registry: &Registry) -> io::Result<()> {
        let fd = self.tun.as_raw_fd();
        registry.register(&mut SourceFd(&fd), tokens::TUN, Interest::READABLE)?;
        self.udp.register(registry, tokens::UDP4, tokens::UDP6)
    }

    /// The source of `token` is readable: hands everything waiting to `engine`, then sends
    /// what it produced.
    pub fn on_ready(&mut self, token: Token, engine: &mut Engine) {
        match token {
            tokens::TUN => self.read_tun(engine),
            tokens::UDP4 => self.read_udp(false, engine),
            tokens::UDP6 => self.read_udp(true, engine),
            _ => {}
        }
    }

    /// The sink for the engine's output outside a readiness burst (timers, pings); what it
    /// gathers leaves when it is dropped.
    pub fn sink(&mut self) -> Io<'_> {
        self.buffers.io(&self.tun, &self.udp)
    }

    /// The datagrams the engine gave for DERP relays since the last call.
    pub fn derp_outbox(&mut self) -> &mut Outbox {
        &mut self.buffers.derp
    }

    /// The UDP port both sockets are bound to.
    pub fn port(&self) -> u16 {
        self.udp.port()
    }

    pub fn tun_name(&self) -> &str {
        self.tun.name()
    }
}

/// Buffers the data path reuses for every packet: about 200 KiB, allocated once.
struct Buffers {
    /// One TUN read: a virtio header and up to 64 KiB of packet.
    tun_in: Box<[u8]>,
    /// One segment cut from a super-segment.
    segment: Box<[u8]>,
    /// One UDP read: up to 64 KiB of GRO-coalesced datagrams.
    udp_in: Box<[u8]>,
    batch: SendBatch,
    /// Decrypted TCP segments glued before they enter an offloading TUN.
    gro: Coalescer,
    /// Datagrams for DERP relays, sent by the loop after the burst.
    derp: Outbox,
}

impl Buffers {
    fn new(udp: &UdpSockets) -> Buffers {
        Buffers {
            tun_in: vec![0; VIRTIO_NET_HDR_LEN + MAX_PACKET].into_boxed_slice(),
            segment: vec![0; MAX_PACKET].into_boxed_slice(),
            udp_in: vec![0; MAX_PACKET + 1].into_boxed_slice(),
            batch: SendBatch::new(udp),
            gro: Coalescer::new(),
            derp: Outbox::default(),
        }
    }

    /// The sink over these buffers.
    fn io<'a>(&'a mut self, tun: &'a Tun, udp: &'a UdpSockets) -> Io<'a> {
        Io { tun, udp, batch: &mut self.batch, gro: &mut self.gro, derp: &mut self.derp }
    }
}

/// Where the engine's packets go: the kernel. Datagrams wait in the batch and TCP segments in
/// the coalescer until the `Io` is dropped, so every place that makes one sends what the engine
/// produced before it returns.
pub(super) struct Io<'a> {
    tun: &'a Tun,
    udp: &'a UdpSockets,
    batch: &'a mut SendBatch,
    gro: &'a mut Coalescer,
    derp: &'a mut Outbox,
}

fn write_tun_with(tun: &Tun, hdr: &[u8; VIRTIO_NET_HDR_LEN], packet: &[u8]) {
    if let Err(e) = tun.write_with_hdr(hdr, packet) {
        log::trace!("TUN write failed: {e}");
    }
}

impl PacketSink for Io<'_> {
    fn send_udp(&mut self, to: std::net::SocketAddr, datagram: &[u8]) {
        self.batch.push(self.udp, to, datagram);
    }

    fn send_derp(&mut self, region: RegionId, to: PublicKey, datagram: &[u8]) {
        self.derp.push(region, to, datagram);
    }

    fn write_tun(&mut self, packet: &[u8]) {
        if self.tun.has_vnet_hdr() {
            let tun = self.tun;
            self.gro.push(packet, |hdr, p| write_tun_with(tun, hdr, p));
        } else if let Err(e) = self.tun.write(packet) {
            log::trace!("TUN write failed: {e}");
        }
    }
}

impl Drop for Io<'_> {
    fn drop(&mut self) {
        self.batch.flush(self.udp);
        let tun = self.tun;
        self.gro.flush(|hdr, p| write_tun_with(tun, hdr, p));
    }
}

impl DataPath {
    fn read_tun(&mut self, engine: &mut Engine) {
        let now = Instant::now();
        let DataPath { tun, udp, buffers } = self;
        let Buffers { tun_in, segment, batch, gro, derp, .. } = buffers;
        let mut io = Io { tun, udp, batch, gro, derp };
        let vnet = tun.has_vnet_hdr();
        loop {
            match tun.read(tun_in) {
                Ok(n) if vnet => {
                    let (hdr, packet) = tun_in[..n].split_at_mut(VIRTIO_NET_HDR_LEN.min(n));
                    let Some(hdr) = VirtioHdr::parse(hdr) else {
                        continue;
                    };
                    let result = gso::split(&hdr, packet, segment, |p| {
                        engine.handle_tun_packet(now, p, &mut io)
                    });
                    if let Err(e) = result {
                        log::debug!("dropped a TUN packet ({hdr:?}, {} bytes): {e:?}", n);
                    }
                }
                Ok(n) => engine.handle_tun_packet(now, &tun_in[..n], &mut io),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("TUN read failed: {e}");
                    return;
                }
            }
        }
    }

    fn read_udp(&mut self, v6: bool, engine: &mut Engine) {
        let now = Instant::now();
        let DataPath { tun, udp, buffers } = self;
        let Some(socket) = udp.family(v6) else { return };
        let fd = socket.as_raw_fd();
        let Buffers { udp_in, batch, gro, derp, .. } = buffers;
        let mut io = Io { tun, udp, batch, gro, derp };
        loop {
            match udp_gso::recv(fd, udp_in) {
                Ok(r) => {
                    let data = &udp_in[..r.len];
                    let step = if r.segment == 0 { r.len.max(1) } else { r.segment };
                    for datagram in data.chunks(step) {
                        engine.handle_datagram(now, r.from, datagram, &mut io);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                    return read_udp_plain(socket, udp_in, now, engine, &mut io)
                }
                Err(e) => {
                    // ICMP errors surface as ECONNREFUSED and the like; the socket stays usable.
                    log::trace!("UDP receive error: {e}");
                }
            }
        }
    }
}

/// One datagram per call, where the OS has no `recvmsg` with GRO.
fn read_udp_plain(
    socket: &mio::net::UdpSocket,
    buf: &mut [u8],
    now: Instant,
    engine: &mut Engine,
    io: &mut Io<'_>,
) {
    loop {
        match socket.recv_from(buf) {
            Ok((n, from)) => engine.handle_datagram(now, from, &buf[..n], io),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => log::trace!("UDP receive error: {e}"),
        }
    }
}
