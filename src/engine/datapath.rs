//! The per-packet path: TUN → encrypt → UDP, and UDP → decrypt → check → TUN. Allocates nothing.

use super::{Engine, PacketSink};
use crate::filter::Verdict;
use crate::packet::masquerade::{self, Side};
use crate::packet::IpHeader;
use crate::wg::demux::{route_datagram, Destination};
use boringtun::noise::TunnResult;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// WireGuard message types, by the first byte (boringtun has already checked the rest).
const HANDSHAKE_INITIATION: u8 = 1;
const HANDSHAKE_RESPONSE: u8 = 2;
const DATA: u8 = 4;

/// Whether boringtun's answer to a message of `message_type` proves that its sender holds the
/// peer's keys — the only thing that may move the peer's endpoint, as in wireguard-go and the
/// kernel: an initiation it answered with a response (signed with the peer's static key; a
/// replay fails boringtun's timestamp check), a response it confirmed with a keepalive, or data
/// (keepalives included) that decrypted under a session key. A cookie reply proves nothing:
/// anyone can make one from an observed initiation and the peer's public key.
fn proves_peer_keys(message_type: Option<u8>, answer: &TunnResult) -> bool {
    match (message_type, answer) {
        (Some(HANDSHAKE_INITIATION), TunnResult::WriteToNetwork(reply)) => {
            reply.first() == Some(&HANDSHAKE_RESPONSE)
        }
        (Some(HANDSHAKE_RESPONSE), TunnResult::WriteToNetwork(reply)) => {
            reply.first() == Some(&DATA)
        }
        (Some(DATA), TunnResult::Done) => true,
        (Some(DATA), TunnResult::WriteToTunnelV4(..) | TunnResult::WriteToTunnelV6(..)) => true,
        _ => false,
    }
}

impl Engine {
    /// A packet the kernel routed into the tunnel: pick the peer by destination, encrypt, send.
    pub fn handle_tun_packet(&mut self, now: Instant, packet: &[u8], sink: &mut dyn PacketSink) {
        let header = match IpHeader::parse(packet) {
            Ok(header) => header,
            Err(_) => {
                self.drops.malformed_outbound += 1;
                return;
            }
        };
        let Some(index) = self.routes.lookup(header.dst) else {
            self.drops.no_route += 1;
            return;
        };
        // Replies to what we send must get through the inbound filter.
        self.filter.note_outbound(now, packet);
        match self.masquerade_for(index, header.src) {
            None => self.encrypt_to(index, now, packet, sink),
            Some(alias) => {
                let mut rewritten = std::mem::take(&mut self.rewrite_buffer);
                rewritten.clear();
                rewritten.extend_from_slice(packet);
                masquerade::rewrite(&mut rewritten, Side::Source, header.src, alias);
                self.encrypt_to(index, now, &rewritten, sink);
                self.rewrite_buffer = rewritten;
            }
        }
    }

    /// The address peer `index` knows us by instead of our own `src`, if control gave one.
    fn masquerade_for(&self, index: u32, src: IpAddr) -> Option<IpAddr> {
        let peer = &self.peers.get(&index)?.config;
        let alias = peer.masquerade_as.iter().find(|a| a.is_ipv4() == src.is_ipv4())?;
        let ours = self.netmap.self_node.addresses.iter().any(|a| a.addr() == src);
        ours.then_some(*alias)
    }

    pub(super) fn encrypt_to(
        &mut self,
        index: u32,
        now: Instant,
        packet: &[u8],
        sink: &mut dyn PacketSink,
    ) {
        let Some(state) = self.peers.get_mut(&index) else {
            self.drops.no_route += 1;
            return;
        };
        match state.session.tunn.encapsulate(packet, &mut self.scratch) {
            TunnResult::WriteToNetwork(datagram) => match state.endpoint {
                Some(to) => sink.send_udp(to, datagram),
                None => self.drops.no_endpoint += 1,
            },
            TunnResult::Err(_) => self.drops.session_error += 1,
            _ => {}
        }
        self.schedule.activity(index, &mut state.clock, now);
    }

    /// A UDP datagram from the network: find its peer, decrypt, enforce cryptokey routing and
    /// hand the packet to the kernel (or to a waiting ping).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        sink: &mut dyn PacketSink,
    ) {
        let own_key = &self.netmap.self_node.private_key;
        let gate = &mut self.handshake_gate;
        let index = match route_datagram(own_key, gate, now, from.ip(), datagram) {
            Destination::LocalIndex(index) => index,
            Destination::Initiator(key) => match self.by_key.get(&key) {
                Some(index) => *index,
                None => {
                    self.drops.unknown_initiator += 1;
                    return;
                }
            },
            Destination::CookieReply(reply) => {
                sink.send_udp(from, &reply);
                return;
            }
            Destination::RateLimited => {
                self.drops.handshake_rate_limited += 1;
                return;
            }
            Destination::Invalid => {
                self.drops.invalid_datagram += 1;
                return;
            }
        };
        let Some(state) = self.peers.get_mut(&index) else {
            self.drops.invalid_datagram += 1;
            return;
        };
        let message_type = datagram.first().copied();
        let is_handshake = matches!(message_type, Some(HANDSHAKE_INITIATION | HANDSHAKE_RESPONSE));
        let answer = state.session.tunn.decapsulate(Some(from.ip()), datagram, &mut self.scratch);
        let proven = proves_peer_keys(message_type, &answer);
        let inbound = match answer {
            TunnResult::WriteToNetwork(reply) => {
                sink.send_udp(from, reply);
                None
            }
            TunnResult::WriteToTunnelV4(packet, src) => Some((IpAddr::V4(src), packet)),
            TunnResult::WriteToTunnelV6(packet, src) => Some((IpAddr::V6(src), packet)),
            TunnResult::Done => None,
            TunnResult::Err(_) => {
                self.drops.session_error += 1;
                None
            }
        };
        if proven {
            if is_handshake {
                state.last_handshake = Some(now);
            }
            state.endpoint = Some(from);
            self.schedule.activity(index, &mut state.clock, now);
        }
        if let Some((src, packet)) = inbound {
            // A peer that knows us by another address sends to it: back to our own.
            for alias in &state.config.masquerade_as {
                let mut own = self.netmap.self_node.addresses.iter().map(|a| a.addr());
                if let Some(ours) = own.find(|a| a.is_ipv4() == alias.is_ipv4()) {
                    masquerade::rewrite(packet, Side::Destination, *alias, ours);
                }
            }
            // Cryptokey routing on the way in: a peer may only send from its AllowedIPs.
            if self.routes.lookup(src) != Some(index) {
                self.drops.spoofed_source += 1;
            } else if let Verdict::Drop(reason) = self.filter.check_inbound(now, packet) {
                log::trace!("filtered inbound packet from {src}: {reason:?}");
                self.drops.filtered += 1;
            } else if !self.pings.take_reply(packet, now, from) {
                sink.write_tun(packet);
            }
        }
        if proven && is_handshake {
            // boringtun queued packets while the handshake was under way: send them now.
            while let TunnResult::WriteToNetwork(queued) =
                state.session.tunn.decapsulate(None, &[], &mut self.scratch)
            {
                sink.send_udp(from, queued);
            }
        }
    }
}
