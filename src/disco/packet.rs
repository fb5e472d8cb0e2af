//! A disco packet on the wire: magic `"TS💬"`, the sender's disco public key, then a NaCl
//! box (`nonce | tag | ciphertext`, see [`crate::naclbox`]) of a [`Message`]. The same bytes
//! travel in a UDP datagram or inside a DERP packet.

use super::message::{Message, MessageError};
use crate::keys::{PrivateKey, PublicKey};
use crate::naclbox::{self, Nonce, OpenError, SharedBox};
use std::fmt;

pub(crate) const MAGIC: [u8; 6] = *b"TS\xF0\x9F\x92\xAC";
const KEY_LEN: usize = 32;
/// Magic and sender key: enough to tell disco from WireGuard and to pick the peer.
pub(crate) const HEADER_LEN: usize = MAGIC.len() + KEY_LEN;
/// Everything around the plaintext.
pub(crate) const OVERHEAD: usize = HEADER_LEN + naclbox::OVERHEAD;
/// The largest packet: one full UDP datagram (a DERP packet may not be larger either).
pub(crate) const MAX_PACKET_LEN: usize = 65_535;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketError {
    /// No disco magic: a WireGuard (or other) packet.
    NotDisco,
    /// Too short for header, nonce and tag.
    Truncated { len: usize },
    /// Longer than any datagram.
    Oversized { len: usize },
    /// Sealed by another key than the session's peer: look the sender up first.
    WrongSender,
    /// The box did not open: a stale key (the peer restarted) or forgery.
    Forged,
    /// It opened, but the plaintext is not a message this node speaks.
    Message(MessageError),
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::NotDisco => f.write_str("not a disco packet"),
            PacketError::Truncated { len } => write!(f, "disco packet truncated at {len} bytes"),
            PacketError::Oversized { len } => {
                write!(f, "disco packet of {len} bytes exceeds {MAX_PACKET_LEN}")
            }
            PacketError::WrongSender => f.write_str("disco packet from another sender"),
            PacketError::Forged => f.write_str("disco packet does not authenticate"),
            PacketError::Message(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PacketError {}

/// Cheap demultiplexing test for a datagram on the shared socket (disco.md §4, step 3):
/// the magic and room for a sender key. The full parse needs more.
pub(crate) fn looks_like_disco(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram.starts_with(&MAGIC)
}

/// The sender's disco public key, read without any crypto so the receiver can find the
/// peer (and drop unknown senders) before spending an X25519 operation.
pub(crate) fn sender(packet: &[u8]) -> Result<PublicKey, PacketError> {
    check_frame(packet)?;
    let key = &packet[MAGIC.len()..HEADER_LEN];
    Ok(PublicKey(key.try_into().map_err(|_| PacketError::Truncated { len: packet.len() })?))
}

fn check_frame(packet: &[u8]) -> Result<(), PacketError> {
    let len = packet.len();
    if !packet.starts_with(&MAGIC) {
        return Err(if len < MAGIC.len() && MAGIC.starts_with(packet) {
            PacketError::Truncated { len }
        } else {
            PacketError::NotDisco
        });
    }
    if len < OVERHEAD {
        return Err(PacketError::Truncated { len });
    }
    if len > MAX_PACKET_LEN {
        return Err(PacketError::Oversized { len });
    }
    Ok(())
}

/// This node's disco key pair, new at every start. The private half never leaves: all
/// that goes out is the public key and boxes made with [`DiscoKey::session`].
pub(crate) struct DiscoKey {
    private: PrivateKey,
    public: PublicKey,
}

impl DiscoKey {
    pub(crate) fn from_private(private: PrivateKey) -> DiscoKey {
        let public = private.public_key();
        DiscoKey { private, public }
    }

    #[cfg(test)]
    pub(crate) fn public(&self) -> PublicKey {
        self.public
    }

    /// The precomputed box to and from `peer` (its disco public key from the netmap).
    pub(crate) fn session(&self, peer: PublicKey) -> PeerSession {
        PeerSession { ours: self.public, peer, shared: SharedBox::new(&self.private, &peer) }
    }
}

impl fmt::Debug for DiscoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DiscoKey({:?})", self.public)
    }
}

/// Seals messages to one peer and opens that peer's packets.
#[derive(Debug)]
pub(crate) struct PeerSession {
    ours: PublicKey,
    peer: PublicKey,
    shared: SharedBox,
}

impl PeerSession {
    /// The whole packet carrying `message`, sealed with the caller's random `nonce`.
    pub(crate) fn seal(&self, nonce: &Nonce, message: &Message) -> Vec<u8> {
        let mut packet = Vec::with_capacity(OVERHEAD + 64);
        packet.extend_from_slice(&MAGIC);
        packet.extend_from_slice(&self.ours.0);
        packet.extend_from_slice(&self.shared.seal(nonce, &message.encode()));
        packet
    }

    /// The message in a packet from this session's peer.
    pub(crate) fn open(&self, packet: &[u8]) -> Result<Message, PacketError> {
        if sender(packet)? != self.peer {
            return Err(PacketError::WrongSender);
        }
        let plaintext = self.shared.open(&packet[HEADER_LEN..]).map_err(|e| match e {
            OpenError::Truncated => PacketError::Truncated { len: packet.len() },
            OpenError::Forged => PacketError::Forged,
        })?;
        Message::decode(&plaintext).map_err(PacketError::Message)
    }
}
