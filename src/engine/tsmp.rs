//! TSMP in the engine, as tailscaled's TUN wrapper handles it: pings from peers are answered
//! here, a TCP SYN the filter refuses is answered with a rejection notice to its sender, and a
//! notice that a peer refused one of our connections becomes a TCP reset for the local socket,
//! so `connect()` fails at once on both sides instead of timing out. No TSMP packet ever
//! reaches the OS, in either direction.

use super::path::Source;
use super::{Engine, PacketSink};
use crate::filter::flow_table::{FlowKey, FlowTable};
use crate::filter::DropReason;
use crate::packet::ip_view;
use crate::packet::tcp_reset::reset_for_syn;
use crate::packet::transport::{TcpFlags, Transport, TransportView, PROTO_TCP};
use crate::packet::tsmp::{pong_for, rejection, RejectReason, Rejection, TsmpMessage, TsmpPacket};
use crate::packet::wire::TcpSegment;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// 64 buckets × 4: connections being opened at once through the tunnel, about 16 KiB.
const OPENING_BUCKETS: usize = 64;
/// A refusal arrives within a round trip of some SYN, and each retransmitted SYN refreshes
/// the memory; Linux gives up on a connect after about two minutes.
const OPENING_TIMEOUT: Duration = Duration::from_secs(130);

/// The TCP connections this node is opening through the tunnel: the initial sequence number
/// of each, which a reset must acknowledge for the local stack to accept it.
pub(super) struct OpeningConnections {
    syns: FlowTable<u32>,
}

impl OpeningConnections {
    pub(super) fn new() -> OpeningConnections {
        OpeningConnections { syns: FlowTable::new(OPENING_BUCKETS, OPENING_TIMEOUT) }
    }

    /// Remembers an outbound TCP SYN (without ACK).
    fn note(&mut self, now: Instant, packet: &[u8]) {
        let Some(ip) = ip_view(packet).ok().filter(|ip| ip.protocol() == PROTO_TCP) else {
            return;
        };
        let Ok(tcp) = TcpSegment::new_checked(ip.payload()) else {
            return;
        };
        if TcpFlags(tcp.flags()).opens_connection() {
            let client = SocketAddr::new(ip.src(), tcp.src_port());
            let server = SocketAddr::new(ip.dst(), tcp.dst_port());
            self.syns.record(now, FlowKey::new(PROTO_TCP, client, server), tcp.seq());
        }
    }
}

impl Engine {
    /// Sends the answers queued while an inbound packet was handled (its buffer, which
    /// encryption needs, was in use then).
    pub(super) fn send_answers(&mut self, now: Instant, sink: &mut dyn PacketSink) {
        for (index, src, packet) in std::mem::take(&mut self.answers) {
            self.send_inside(index, now, src, &packet, sink);
        }
    }

    /// An outbound TCP packet from the TUN: a SYN is remembered until refused, forgotten after
    /// the timeout or when newer connects need its slot.
    pub(super) fn note_outbound_tcp(&mut self, now: Instant, protocol: u8, packet: &[u8]) {
        if protocol == PROTO_TCP {
            self.opening.note(now, packet);
        }
    }

    /// A TSMP packet from peer `index` (its source already checked against the peer's
    /// AllowedIPs): handled here and dropped; a pong is queued for [`Engine::send_answers`].
    pub(super) fn handle_tsmp(
        &mut self,
        index: u32,
        now: Instant,
        from: Source,
        packet: &[u8],
        sink: &mut dyn PacketSink,
    ) {
        let tsmp = match TsmpPacket::parse(packet) {
            Ok(tsmp) => tsmp,
            Err(e) => {
                log::trace!("dropped TSMP from peer {index}: {e}");
                self.drops.malformed_tsmp += 1;
                return;
            }
        };
        match tsmp.message {
            // weft runs no PeerAPI: the port is 0, as tailscaled sends without one.
            TsmpMessage::Ping { .. } => match pong_for(&tsmp, 0) {
                Some(pong) => self.answers.push((index, tsmp.dst, pong)),
                None => self.drops.malformed_tsmp += 1,
            },
            TsmpMessage::Pong { .. } => {
                let derp_map = self.netmap.derp_map.as_ref();
                let code = |region| super::status::region_code(derp_map, Some(region));
                if !self.pings.take_tsmp_pong(&tsmp, now, &from, code) {
                    log::trace!("dropped TSMP pong from peer {index}: it answers no ping of ours");
                }
            }
            TsmpMessage::Rejected(rejected) => {
                self.reset_refused_connect(now, &tsmp, rejected, sink)
            }
            // Disco key changes come with control's netmap patches; the engine keeps no
            // disco keys.
            TsmpMessage::DiscoAdvertisement { .. } => {}
        }
    }

    /// A peer refused a flow of ours: if it is a TCP connect this node is opening, the local
    /// socket gets a reset acknowledging its SYN. A "maybe broken" notice is only a hint and
    /// changes nothing.
    fn reset_refused_connect(
        &mut self,
        now: Instant,
        notice: &TsmpPacket,
        rejected: Rejection,
        sink: &mut dyn PacketSink,
    ) {
        let Some((originator, target)) = notice.rejected_flow() else {
            return;
        };
        log::debug!(
            "{target} refused the connection from {originator}: {}",
            rejected.reason.name()
        );
        if rejected.protocol != PROTO_TCP || rejected.maybe_broken {
            return;
        }
        let key = FlowKey::new(PROTO_TCP, originator, target);
        let Some(syn_seq) = self.opening.syns.take(now, key) else {
            return;
        };
        if let Some(reset) = reset_for_syn(target, originator, syn_seq) {
            sink.write_tun(&reset);
        }
    }

    /// The filter dropped `packet` from peer `index`: a TCP segment with SYN set gets a
    /// rejection notice back (queued for [`Engine::send_answers`]), as tailscaled sends one,
    /// naming shields-up or the ACLs as the reason. tailscaled sends them over IPv4 only; weft
    /// over IPv6 too, so IPv6 connects fail fast as well: the notice's layout does not depend
    /// on the family, and tailscaled reads both.
    pub(super) fn refuse(&mut self, index: u32, packet: &[u8], reason: DropReason) {
        let Ok(view) = TransportView::parse(packet) else {
            return;
        };
        let Transport::Tcp { ports, flags } = view.transport else {
            return;
        };
        if flags.0 & TcpFlags::SYN == 0 {
            return;
        }
        let why = match reason {
            DropReason::ShieldsUp => RejectReason::SHIELDS_UP,
            _ if self.filter.shields_up() => RejectReason::SHIELDS_UP,
            _ => RejectReason::ACL,
        };
        let originator = SocketAddr::new(view.ip.src, ports.src);
        let target = SocketAddr::new(view.ip.dst, ports.dst);
        if let Some(notice) = rejection(originator, target, PROTO_TCP, why) {
            self.answers.push((index, target.ip(), notice));
        }
    }
}
