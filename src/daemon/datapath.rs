//! The data path driver: owns the TUN device, the UDP sockets and the buffers between them,
//! drains them into the engine and is the sink through which the engine's output reaches the
//! kernel. The TUN may be the in-memory fake (`--tun fake`): it has no descriptor, and the
//! echo replies it makes are handed to the engine right after the datagrams that brought their
//! requests, in the same burst. It has no events and no deadline of its own: every packet is a direct call into the
//! [`Engine`] the loop lends it, so the per-packet path allocates nothing and queues nothing.
//!
//! Batching lives here, out of the engine's sight: a TUN read may be a TCP super-segment that
//! `packet::gso` cuts into packets, a UDP read may be many datagrams glued by GRO, and outgoing
//! datagrams gather in a [`SendBatch`] that leaves with one `sendmsg` when [`Io`] is dropped
//! (the end of each readiness burst) or fills up.
//!
//! STUN Binding messages share the WireGuard sockets (netcheck asks from them, so the mapping
//! it finds is the one peers must use). They never reach the engine: they wait in a small
//! bounded inbox for the loop, which hands them to netcheck.

use super::derp::Outbox;
use super::tokens;
use super::udp::{SendBatch, UdpSockets};
use crate::control::tailcfg::RegionId;
use crate::engine::{Engine, PacketSink, MAX_PACKET};
use crate::keys::PublicKey;
use crate::packet::gro::Coalescer;
use crate::packet::gso::{self, VirtioHdr, VIRTIO_NET_HDR_LEN};
use crate::platform::tun::fake::{FakeTun, FakeTunCounters};
use crate::platform::tun::{Device, Tun};
use crate::platform::udp_gso;
use crate::stun;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Instant;

pub(super) struct DataPath {
    tun: Device,
    udp: UdpSockets,
    buffers: Buffers,
    stun: StunInbox,
}

impl DataPath {
    /// Opens the TUN device `tun` (or the fake) and binds the UDP sockets to `port` (0: the
    /// kernel picks).
    pub(super) fn open(tun: &str, port: u16) -> Result<DataPath, String> {
        let tun = Device::open(tun).map_err(|e| format!("opening TUN {tun}: {e}"))?;
        let udp = UdpSockets::bind(port).map_err(|e| format!("binding UDP port {port}: {e}"))?;
        let buffers = Buffers::new(&udp);
        Ok(DataPath { tun, udp, buffers, stun: StunInbox::default() })
    }

    /// Makes the UDP sockets again, on the same port, so they take the pinning to the
    /// physical interface published since.
    pub(super) fn rebind_udp(&mut self, registry: &Registry) -> io::Result<()> {
        self.udp.rebind(registry, tokens::UDP4, tokens::UDP6)
    }

    pub(super) fn register(&mut self, registry: &Registry) -> io::Result<()> {
        if let Device::Kernel(tun) = &self.tun {
            let fd = tun.as_raw_fd();
            registry.register(&mut SourceFd(&fd), tokens::TUN, Interest::READABLE)?;
        }
        self.udp.register(registry, tokens::UDP4, tokens::UDP6)
    }

    /// The source of `token` is readable: hands everything waiting to `engine`, then sends
    /// what it produced.
    pub(super) fn on_ready(&mut self, token: Token, engine: &mut Engine) {
        match token {
            tokens::TUN => self.read_tun(engine),
            tokens::UDP4 => self.read_udp(false, engine),
            tokens::UDP6 => self.read_udp(true, engine),
            _ => {}
        }
    }

    /// The sink for the engine's output outside a readiness burst (timers, pings); what it
    /// gathers leaves when it is dropped.
    pub(super) fn sink(&mut self) -> Io<'_> {
        self.buffers.io(&mut self.tun, &self.udp)
    }

    /// The datagrams the engine gave for DERP relays since the last call.
    pub(super) fn derp_outbox(&mut self) -> &mut Outbox {
        &mut self.buffers.derp
    }

    /// The next STUN message that arrived on a UDP socket, with its sender.
    pub(super) fn take_stun(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.stun.queue.pop_front()
    }

    /// Sends a STUN request from the UDP socket of `to`'s family.
    pub(super) fn send_stun(&mut self, to: SocketAddr, request: &[u8]) {
        self.sink().send_udp(to, request);
    }

    /// Whether there is an IPv6 socket besides the IPv4 one.
    pub(super) fn has_ipv6(&self) -> bool {
        self.udp.family(true).is_some()
    }

    /// The UDP port both sockets are bound to.
    pub(super) fn port(&self) -> u16 {
        self.udp.port()
    }

    pub(super) fn tun_name(&self) -> &str {
        self.tun.name()
    }

    /// What the fake TUN did, or `None` for a kernel TUN.
    pub(super) fn fake_counters(&self) -> Option<FakeTunCounters> {
        match &self.tun {
            Device::Fake(fake) => Some(fake.counters()),
            Device::Kernel(_) => None,
        }
    }

    /// Tells the fake TUN the node's addresses, which it answers pings to; a kernel TUN gets
    /// them from the router instead.
    pub(super) fn set_fake_addresses(
        &mut self,
        addresses: impl IntoIterator<Item = std::net::IpAddr>,
    ) {
        if let Device::Fake(fake) = &mut self.tun {
            fake.set_addresses(addresses);
        }
    }
}

/// STUN messages for the loop. Bounded: anyone can send them, and the loop drains it after
/// every readiness burst, so a flood beyond it is dropped (and counted) rather than queued.
#[derive(Default)]
struct StunInbox {
    queue: VecDeque<(SocketAddr, Vec<u8>)>,
    dropped: u64,
}

/// More than a netcheck run's answers (3 tries × 2 families per region for tens of regions).
const STUN_INBOX_LEN: usize = 256;
/// Longer than any Binding response worth reading (Tailscale's are 32 or 44 bytes).
const MAX_STUN_LEN: usize = 512;

impl StunInbox {
    /// Keeps `datagram` if it is a STUN Binding message; returns whether it was one (whether
    /// kept or dropped), so it does not go on to the engine.
    fn take(&mut self, from: SocketAddr, datagram: &[u8]) -> bool {
        if !stun::is_binding_message(datagram) {
            return false;
        }
        if self.queue.len() < STUN_INBOX_LEN && datagram.len() <= MAX_STUN_LEN {
            self.queue.push_back((from, datagram.to_vec()));
        } else {
            self.dropped += 1;
            log::trace!("STUN message from {from} dropped ({} so far)", self.dropped);
        }
        true
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
    fn io<'a>(&'a mut self, tun: &'a mut Device, udp: &'a UdpSockets) -> Io<'a> {
        io_over(tun, udp, &mut self.batch, &mut self.gro, &mut self.derp)
    }
}

/// The sink over `tun`, `udp` and the outgoing buffers.
fn io_over<'a>(
    tun: &'a mut Device,
    udp: &'a UdpSockets,
    batch: &'a mut SendBatch,
    gro: &'a mut Coalescer,
    derp: &'a mut Outbox,
) -> Io<'a> {
    let tun = match tun {
        Device::Kernel(kernel) => TunSink::Kernel(kernel),
        Device::Fake(fake) => TunSink::Fake(fake),
    };
    Io { tun, udp, batch, gro, derp }
}

/// Where the engine's packets go: the kernel. Datagrams wait in the batch and TCP segments in
/// the coalescer until the `Io` is dropped, so every place that makes one sends what the engine
/// produced before it returns.
pub(super) struct Io<'a> {
    tun: TunSink<'a>,
    udp: &'a UdpSockets,
    batch: &'a mut SendBatch,
    gro: &'a mut Coalescer,
    derp: &'a mut Outbox,
}

/// Where decrypted packets go: the kernel's TUN (read at the same time, hence shared), or the
/// fake, which changes as it answers.
enum TunSink<'a> {
    Kernel(&'a Tun),
    Fake(&'a mut FakeTun),
}

impl Io<'_> {
    /// The fake TUN's next echo reply, to hand to the engine as the kernel's outbound packet.
    fn next_fake_reply(&mut self) -> Option<Vec<u8>> {
        match &mut self.tun {
            TunSink::Fake(fake) => fake.next_reply(),
            TunSink::Kernel(_) => None,
        }
    }
}

/// Hands the fake TUN's replies to the engine, so they leave in the batch of the burst that
/// brought their requests (no descriptor would ever wake the loop for them). The loop calls it
/// too after handing the engine a DERP-relayed datagram.
pub(super) fn answer_from_fake_tun(now: Instant, engine: &mut Engine, io: &mut Io<'_>) {
    while let Some(reply) = io.next_fake_reply() {
        engine.handle_tun_packet(now, &reply, io);
    }
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
        match &mut self.tun {
            TunSink::Fake(fake) => fake.write(packet),
            TunSink::Kernel(tun) if tun.has_vnet_hdr() => {
                let tun = *tun;
                self.gro.push(packet, |hdr, p| write_tun_with(tun, hdr, p));
            }
            TunSink::Kernel(tun) => {
                if let Err(e) = tun.write(packet) {
                    log::trace!("TUN write failed: {e}");
                }
            }
        }
    }
}

impl Drop for Io<'_> {
    fn drop(&mut self) {
        self.batch.flush(self.udp);
        if let TunSink::Kernel(tun) = self.tun {
            self.gro.flush(|hdr, p| write_tun_with(tun, hdr, p));
        }
    }
}

impl DataPath {
    fn read_tun(&mut self, engine: &mut Engine) {
        let now = Instant::now();
        let DataPath { tun, udp, buffers, .. } = self;
        // The fake has no descriptor, so only a kernel TUN is ever readable.
        let Device::Kernel(tun) = tun else { return };
        let Buffers { tun_in, segment, batch, gro, derp, .. } = buffers;
        let mut io = Io { tun: TunSink::Kernel(tun), udp, batch, gro, derp };
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
        let DataPath { tun, udp, buffers, stun } = self;
        let Some(socket) = udp.family(v6) else { return };
        let fd = socket.as_raw_fd();
        let Buffers { udp_in, batch, gro, derp, .. } = buffers;
        let mut io = io_over(tun, udp, batch, gro, derp);
        loop {
            match udp_gso::recv(fd, udp_in) {
                Ok(r) => {
                    let data = &udp_in[..r.len];
                    let step = if r.segment == 0 { r.len.max(1) } else { r.segment };
                    for datagram in data.chunks(step) {
                        if !stun.take(r.from, datagram) {
                            engine.handle_datagram(now, r.from, datagram, &mut io);
                        }
                    }
                    answer_from_fake_tun(now, engine, &mut io);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                    return read_udp_plain(socket, udp_in, now, engine, &mut io, stun)
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
    stun: &mut StunInbox,
) {
    loop {
        match socket.recv_from(buf) {
            Ok((n, from)) => {
                if !stun.take(from, &buf[..n]) {
                    engine.handle_datagram(now, from, &buf[..n], io);
                }
                answer_from_fake_tun(now, engine, io);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => log::trace!("UDP receive error: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_binding_messages_are_kept_for_the_loop_and_nothing_else_is() {
        let from: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        let mut inbox = StunInbox::default();
        let request = stun::binding_request(&[7; stun::TX_ID_LEN]);
        let mut response = request.to_vec();
        response[1] = 0x01;
        response[0] = 0x01;
        let wireguard_handshake =
            [1u8, 0, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(!inbox.take(from, &wireguard_handshake));
        assert!(!inbox.take(from, b"TS\xf0\x9f\x92\xac disco"));
        assert!(inbox.take(from, &response));
        assert_eq!(inbox.queue.pop_front(), Some((from, response.clone())));
        for _ in 0..STUN_INBOX_LEN + 5 {
            assert!(inbox.take(from, &response));
        }
        assert_eq!((inbox.queue.len(), inbox.dropped), (STUN_INBOX_LEN, 5));
    }
}
