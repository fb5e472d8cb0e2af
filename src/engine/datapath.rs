//! The per-packet path: TUN → encrypt → UDP, and UDP → decrypt → check → TUN. Allocates nothing
//! (but for the rare TSMP answers and resets the engine writes itself).

use super::lazy::{Outbound, Waker, Woken};
use super::path::Source;
use super::{Engine, PacketSink};
use crate::control::tailcfg::RegionId;
use crate::filter::{DropReason, Verdict};
use crate::keys::PublicKey;
use crate::packet::masquerade::{self, Side};
use crate::packet::tsmp::carries_tsmp;
use crate::packet::wire::{PROTO_IPV6_FRAGMENT, PROTO_TSMP};
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
/// replay fails boringtun's timestamp check — but for a session's first, see
/// `PeerActivity::take_first_initiation`), a response it confirmed with a keepalive, or data
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
    pub(crate) fn handle_tun_packet(
        &mut self,
        now: Instant,
        packet: &[u8],
        sink: &mut dyn PacketSink,
    ) {
        let header = match IpHeader::parse(packet) {
            Ok(header) => header,
            Err(_) => {
                self.drops.malformed_outbound += 1;
                return;
            }
        };
        // TSMP is the daemon's own protocol: the OS has no business sending it.
        if matches!(header.protocol, PROTO_TSMP | PROTO_IPV6_FRAGMENT) && carries_tsmp(packet) {
            self.drops.outbound_tsmp += 1;
            return;
        }
        if self.intercept_dns(now, &header, packet, sink) {
            return;
        }
        let Some(index) = self.routes.lookup(header.dst) else {
            self.drops.no_route += 1;
            return;
        };
        // Replies to what we send must get through the inbound filter, and a peer's refusal
        // of a connect must find its SYN.
        self.filter.note_outbound(now, packet);
        self.note_outbound_tcp(now, header.protocol, packet);
        self.send_inside(index, now, header.src, packet, sink);
    }

    /// Sends `packet` (from our address `src`) to peer `index`, from the address the peer
    /// knows us by.
    pub(super) fn send_inside(
        &mut self,
        index: u32,
        now: Instant,
        src: IpAddr,
        packet: &[u8],
        sink: &mut dyn PacketSink,
    ) {
        match self.masquerade_for(index, src) {
            None => self.encrypt_to(index, now, packet, sink),
            Some(alias) => {
                let mut rewritten = std::mem::take(&mut self.rewrite_buffer);
                rewritten.clear();
                rewritten.extend_from_slice(packet);
                masquerade::rewrite(&mut rewritten, Side::Source, src, alias);
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
        self.disco_note_send(index, now, sink);
        let Some(state) = self.peers.get_mut(&index) else {
            self.drops.no_route += 1;
            return;
        };
        let own_key = &self.netmap.self_node.private_key;
        self.lazy.wake(index, state, now, Waker::Outbound, own_key, &self.handshake_gate);
        state.activity.note_send(now);
        let Some(session) = state.session.as_mut() else {
            return;
        };
        let sent = match state.activity.outbound(packet) {
            Outbound::Encrypt => session.tunn.encapsulate(packet, &mut self.scratch),
            waiting => {
                if matches!(waiting, Outbound::Dropped) {
                    self.drops.handshake_queue_full += 1;
                }
                // The handshake starts — again, if the last one timed out — unless under way.
                session.tunn.format_handshake_initiation(&mut self.scratch, false)
            }
        };
        match sent {
            TunnResult::WriteToNetwork(datagram) if !state.send(now, sink, datagram) => {
                self.drops.no_endpoint += 1;
            }
            TunnResult::Err(_) => self.drops.session_error += 1,
            _ => {}
        }
        self.schedule.activity(index, &mut state.clock, now);
    }

    /// A UDP datagram from the network: demultiplex it to its peer, decrypt it in that peer's
    /// session, undo the peer's masquerade of our address and admit the packet to the kernel
    /// (or to a waiting ping). Each step ends the datagram's journey by returning early.
    pub(crate) fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        sink: &mut dyn PacketSink,
    ) {
        if crate::disco::looks_like_disco(datagram) {
            self.handle_disco_udp(now, from, datagram, sink);
            return;
        }
        self.receive(now, Source::Udp(from), datagram, sink);
    }

    /// A datagram node `from` relayed to us through the DERP server of `region`: disco packets
    /// (by their magic prefix) go to disco first; WireGuard takes the same steps as over UDP,
    /// answers go back through the relay, and nothing it proves moves the peer's UDP endpoint
    /// (the relay's sender is not a UDP address).
    pub(crate) fn handle_derp_datagram(
        &mut self,
        now: Instant,
        region: RegionId,
        from: PublicKey,
        datagram: &[u8],
        sink: &mut dyn PacketSink,
    ) {
        if crate::disco::looks_like_disco(datagram) {
            self.handle_disco_via_derp(now, region, from, datagram, sink);
            return;
        }
        self.receive(now, Source::Derp { region, key: from }, datagram, sink);
    }

    fn receive(&mut self, now: Instant, from: Source, datagram: &[u8], sink: &mut dyn PacketSink) {
        let Some((index, woken)) = self.demux(now, from, datagram, sink) else {
            return;
        };
        // Lent to the steps, so the decrypted packet can borrow it while they use the engine;
        // taking a `Vec` leaves an empty one behind and allocates nothing.
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut handshake_done = false;
        match self.decrypt(index, now, from, datagram, &mut scratch, sink) {
            Decrypted::Packet { src, packet, masqueraded } => {
                if masqueraded {
                    self.unmasquerade(index, packet);
                }
                self.admit(index, now, from, src, packet, sink);
            }
            Decrypted::HandshakeProven => {
                self.send_queued(index, from, &mut scratch, sink);
                handshake_done = true;
            }
            Decrypted::Done => {}
        }
        self.scratch = scratch;
        match woken {
            Some(_) if handshake_done => self.keep_woken(index, now),
            Some(woken) => self.trim_back(index, woken),
            None => {}
        }
        if handshake_done {
            self.send_held(index, now, sink);
        }
        self.send_answers(now, sink);
    }

    /// The local index of the peer `datagram` is for, and whether it woke that peer from
    /// trimming; `None` when the demultiplexer answered it (a cookie reply under load) or
    /// dropped it (counted).
    fn demux(
        &mut self,
        now: Instant,
        from: Source,
        datagram: &[u8],
        sink: &mut dyn PacketSink,
    ) -> Option<(u32, Option<Woken>)> {
        let own_key = &self.netmap.self_node.private_key;
        let gate = &mut self.handshake_gate;
        match route_datagram(own_key, gate, now, from.handshake_source(), datagram) {
            Destination::LocalIndex(index) => return Some((index, None)),
            Destination::Initiator(key) => match self.by_key.get(&key).copied() {
                // A trimmed peer comes back to answer (or is trimmed back if it was forged).
                Some(index) => return Some((index, self.wake(index, now, Waker::Initiation))),
                None => self.drops.unknown_initiator += 1,
            },
            Destination::CookieReply(reply) => from.reply(sink, &reply),
            Destination::RateLimited => self.drops.handshake_rate_limited += 1,
            Destination::Invalid => self.drops.invalid_datagram += 1,
        }
        None
    }

    /// Runs `datagram` through peer `index`'s session: sends boringtun's answer, and moves the
    /// peer's endpoint only when the answer proves the sender holds the peer's keys.
    fn decrypt<'s>(
        &mut self,
        index: u32,
        now: Instant,
        from: Source,
        datagram: &[u8],
        scratch: &'s mut [u8],
        sink: &mut dyn PacketSink,
    ) -> Decrypted<'s> {
        let Some(state) = self.peers.get_mut(&index) else {
            self.drops.invalid_datagram += 1;
            return Decrypted::Done;
        };
        let Some(session) = state.session.as_mut() else {
            // For a session trimmed away: nothing can decrypt it.
            self.drops.session_error += 1;
            return Decrypted::Done;
        };
        let message_type = datagram.first().copied();
        let is_handshake = matches!(message_type, Some(HANDSHAKE_INITIATION | HANDSHAKE_RESPONSE));
        let answer = session.tunn.decapsulate(Some(from.addr().ip()), datagram, scratch);
        let proven = proves_peer_keys(message_type, &answer);
        if proven {
            state.activity.note_receive(now);
            if is_handshake {
                state.last_handshake = Some(now);
                state.path_log.handshake_completed();
            }
            // A new session's first initiation may be a replay: the data that follows it will
            // prove where the peer is.
            let replayable = message_type == Some(HANDSHAKE_INITIATION)
                && state.activity.take_first_initiation();
            if let Some(addr) = from.udp().filter(|_| !replayable) {
                state.endpoint = Some(addr);
                state.endpoint_proven = true;
            }
            self.schedule.activity(index, &mut state.clock, now);
        }
        let masqueraded = !state.config.masquerade_as.is_empty();
        match answer {
            TunnResult::WriteToNetwork(reply) => {
                from.reply(sink, reply);
                if proven && is_handshake {
                    return Decrypted::HandshakeProven;
                }
            }
            TunnResult::WriteToTunnelV4(packet, src) => {
                return Decrypted::Packet { src: IpAddr::V4(src), packet, masqueraded };
            }
            TunnResult::WriteToTunnelV6(packet, src) => {
                return Decrypted::Packet { src: IpAddr::V6(src), packet, masqueraded };
            }
            TunnResult::Done => {}
            TunnResult::Err(_) => self.drops.session_error += 1,
        }
        Decrypted::Done
    }

    /// A peer that knows us by another address sends to it: back to our own, in place.
    fn unmasquerade(&self, index: u32, packet: &mut [u8]) {
        let Some(state) = self.peers.get(&index) else {
            return;
        };
        for alias in &state.config.masquerade_as {
            let mut own = self.netmap.self_node.addresses.iter().map(|a| a.addr());
            if let Some(ours) = own.find(|a| a.is_ipv4() == alias.is_ipv4()) {
                masquerade::rewrite(packet, Side::Destination, *alias, ours);
            }
        }
    }

    /// Hands a decrypted packet to the kernel if peer `index` may send from `src` (cryptokey
    /// routing on the way in) and the filter lets it through (with shields up for a jailed
    /// peer); a reply to one of our own pings ends here instead, and so does TSMP, which the
    /// engine handles itself. A SYN the filter drops is answered with a TSMP rejection.
    fn admit(
        &mut self,
        index: u32,
        now: Instant,
        from: Source,
        src: IpAddr,
        packet: &[u8],
        sink: &mut dyn PacketSink,
    ) {
        if self.routes.lookup(src) != Some(index) {
            self.drops.spoofed_source += 1;
        } else if self.take_dns_answer(packet, sink) {
            // A resolver inside the tunnel answered MagicDNS.
        } else if carries_tsmp(packet) {
            self.handle_tsmp(index, now, from, packet, sink);
        } else if let Verdict::Drop(reason) = self.check_inbound(index, now, packet) {
            log::trace!("filtered inbound packet from {src}: {reason:?}");
            match reason {
                DropReason::ShieldsUp if self.is_jailed(index) => self.drops.jailed += 1,
                DropReason::ShieldsUp => self.drops.shields_up += 1,
                _ => self.drops.filtered += 1,
            }
            self.refuse(index, packet, reason);
        } else {
            let derp_map = self.netmap.derp_map.as_ref();
            let code = |region| super::status::region_code(derp_map, Some(region));
            if !self.pings.take_reply(packet, now, &from, code) {
                sink.write_tun(packet);
            }
        }
    }

    /// The filter's verdict on `packet` from peer `index`: a peer control jailed is judged as
    /// with shields up, as tailscaled picks its jailed filter by the packet's source.
    fn check_inbound(&mut self, index: u32, now: Instant, packet: &[u8]) -> Verdict {
        if self.is_jailed(index) {
            self.filter.check_inbound_shielded(now, packet)
        } else {
            self.filter.check_inbound(now, packet)
        }
    }

    fn is_jailed(&self, index: u32) -> bool {
        self.peers.get(&index).is_some_and(|state| state.config.jailed)
    }

    /// boringtun queued packets while the handshake was under way: send them now.
    fn send_queued(
        &mut self,
        index: u32,
        to: Source,
        scratch: &mut [u8],
        sink: &mut dyn PacketSink,
    ) {
        let Some(session) = self.peers.get_mut(&index).and_then(|s| s.session.as_mut()) else {
            return;
        };
        while let TunnResult::WriteToNetwork(queued) = session.tunn.decapsulate(None, &[], scratch)
        {
            to.reply(sink, queued);
        }
    }
}

/// What decrypting a datagram left for the next steps.
enum Decrypted<'a> {
    /// A packet for the tunnel, from `src` by its IP header.
    Packet {
        src: IpAddr,
        packet: &'a mut [u8],
        /// The peer knows us by another address, so the packet may need un-masquerading.
        masqueraded: bool,
    },
    /// A handshake message proved the peer's keys: packets boringtun held back can go.
    HandshakeProven,
    /// Nothing more to do: a message answered, a keepalive, or a failure already counted.
    Done,
}
