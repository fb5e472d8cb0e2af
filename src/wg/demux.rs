//! Which peer an incoming WireGuard datagram belongs to.
//!
//! Responses, cookie replies and data carry our receiver index, whose upper 24 bits are the
//! peer's local index (boringtun keeps the low 8 bits for its session ring). A handshake
//! initiation carries no index of ours: the initiator's static key, decrypted from the
//! message, names the peer.

use super::gate::{HandshakeGate, Verdict, COOKIE_REPLY_LEN};
use super::handshake_limiter::HandshakeSource;
use crate::keys::{PrivateKey, PublicKey};
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::{HandshakeInit, Packet, Tunn};
use std::time::Instant;

/// What to do with a datagram before any session sees it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Destination {
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
pub(crate) fn route_datagram(
    own_key: &PrivateKey,
    gate: &mut HandshakeGate,
    now: Instant,
    from: HandshakeSource,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::shake;
    use crate::wg::gate::HANDSHAKE_MESSAGES_PER_SECOND_BEFORE_COOKIES;
    use boringtun::noise::TunnResult;
    use std::net::IpAddr;

    fn address(ip: [u8; 4]) -> HandshakeSource {
        HandshakeSource::Address(IpAddr::from(ip))
    }

    const OURS: PrivateKey = PrivateKey([1; 32]);
    const THEIRS: PrivateKey = PrivateKey([2; 32]);

    /// A real handshake initiation from THEIRS to OURS.
    fn initiation() -> Vec<u8> {
        let ours = x25519_dalek::PublicKey::from(OURS.public_key().0);
        let mut tunn = Tunn::new(THEIRS.secret(), ours, None, None, 5 << 8, None);
        let mut buf = [0u8; 256];
        match tunn.format_handshake_initiation(&mut buf, false) {
            TunnResult::WriteToNetwork(packet) => packet.to_vec(),
            _ => panic!("no initiation"),
        }
    }

    /// A gate that has seen `earlier` valid handshake messages in the current second.
    fn gate(now: Instant, earlier: u32) -> HandshakeGate {
        let mut gate = HandshakeGate::new(&OURS);
        let elsewhere = address([198, 51, 100, 9]);
        for _ in 0..earlier {
            // Only the load these add matters here, not how each one is judged.
            let _ = gate.admit(now, elsewhere, &initiation());
        }
        gate
    }

    #[test]
    fn initiation_names_its_sender_and_load_turns_it_into_a_cookie_reply() {
        let now = Instant::now();
        let from = address([192, 0, 2, 1]);
        let init = initiation();
        assert_eq!(
            route_datagram(&OURS, &mut gate(now, 0), now, from, &init),
            Destination::Initiator(THEIRS.public_key())
        );
        let mut loaded = gate(now, HANDSHAKE_MESSAGES_PER_SECOND_BEFORE_COOKIES);
        let Destination::CookieReply(reply) = route_datagram(&OURS, &mut loaded, now, from, &init)
        else {
            panic!("no cookie reply under load");
        };
        assert_eq!((reply.len(), reply[0]), (64, 3));
    }

    /// Broken initiations never panic and never name anyone but their real sender: the MACs
    /// and the AEAD stand between a forger and `Initiator`.
    #[test]
    fn shaken_datagrams_never_panic_or_name_a_stranger() {
        let from = address([192, 0, 2, 1]);
        let now = Instant::now();
        let mut initiators = 0;
        shake(0x776764, 3000, &initiation(), |bytes| {
            // A fresh gate each time: the mutations must not put it under load.
            match route_datagram(&OURS, &mut gate(now, 0), now, from, bytes) {
                Destination::Initiator(key) => {
                    assert_eq!(key, THEIRS.public_key());
                    initiators += 1;
                }
                Destination::CookieReply(_) => panic!("cookie reply while not under load"),
                Destination::LocalIndex(_) | Destination::Invalid | Destination::RateLimited => {}
            }
        });
        assert!(initiators > 0, "some mutations leave the initiation intact");
    }
}
