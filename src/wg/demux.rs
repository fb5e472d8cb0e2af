//! Which peer an incoming WireGuard datagram belongs to.
//!
//! Responses, cookie replies and data carry our receiver index, whose upper 24 bits are the
//! peer's local index (boringtun keeps the low 8 bits for its session ring). A handshake
//! initiation carries no index of ours: the initiator's static key, decrypted from the
//! message, names the peer.

use super::gate::{HandshakeGate, Verdict, COOKIE_REPLY_LEN};
use crate::keys::{PrivateKey, PublicKey};
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::{HandshakeInit, Packet, Tunn};
use std::net::IpAddr;
use std::time::Instant;

/// What to do with a datagram before any session sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Destination {
    /// To the peer with this local index.
    LocalIndex(u32),
    /// A valid initiation from the holder of this static key.
    Initiator(PublicKey),
    /// We are under load: answer the sender with this cookie reply instead.
    CookieReply([u8; COOKIE_REPLY_LEN]),
    /// A handshake message from a source that has used its share while we are under load.
    RateLimited,
    /// Not a WireGuard message, or failed its MAC: drop it.
    Invalid,
}

/// Classifies `datagram`. Handshake messages pass the [`HandshakeGate`] first, initiations
/// before the (costly) Diffie-Hellman that reveals the initiator.
pub fn route_datagram(
    own_key: &PrivateKey,
    gate: &mut HandshakeGate,
    now: Instant,
    from: IpAddr,
    datagram: &[u8],
) -> Destination {
    let packet = match Tunn::parse_incoming_packet(datagram) {
        Ok(p) => p,
        Err(_) => return Destination::Invalid,
    };
    if matches!(packet, Packet::HandshakeInit(_) | Packet::HandshakeResponse(_)) {
        match gate.admit(now, from, datagram) {
            Verdict::Admit => {}
            Verdict::CookieReply(reply) => return Destination::CookieReply(reply),
            Verdict::RateLimited => return Destination::RateLimited,
            Verdict::Invalid => return Destination::Invalid,
        }
    }
    match packet {
        Packet::HandshakeInit(init) => initiator(own_key, &init),
        Packet::HandshakeResponse(p) => Destination::LocalIndex(p.receiver_idx >> 8),
        Packet::PacketCookieReply(p) => Destination::LocalIndex(p.receiver_idx >> 8),
        Packet::PacketData(p) => Destination::LocalIndex(p.receiver_idx >> 8),
    }
}

fn initiator(own_key: &PrivateKey, init: &HandshakeInit) -> Destination {
    let secret = own_key.secret();
    let public = x25519_dalek::PublicKey::from(&secret);
    match parse_handshake_anon(&secret, &public, init) {
        Ok(half) => Destination::Initiator(PublicKey(half.peer_static_public)),
        Err(_) => Destination::Invalid,
    }
}
