//! Disco, Tailscale's path-discovery protocol: sealed Ping/Pong/CallMeMaybe between the disco
//! keys of two nodes, over the shared UDP socket or DERP. Sans-IO: these are the messages and
//! their sealing; deciding whom to ping and which path to trust belongs to the caller.
//! Not yet wired into the daemon.

mod message;
mod packet;
#[cfg(test)]
mod tests;

pub(crate) use message::{CallMeMaybe, Message, Ping, Pong, TxId};
/// The magic that starts every disco packet; tests and fuzz seeds build packets with it.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use packet::MAGIC;
pub(crate) use packet::{looks_like_disco, sender, DiscoKey, PeerSession};

// Named by tests (and fuzz targets) only; the daemon reaches them through the types above.
#[cfg(test)]
pub(crate) use message::{MessageError, MAX_PLAINTEXT_LEN, TX_ID_LEN};
#[cfg(test)]
pub(crate) use packet::{PacketError, HEADER_LEN, MAX_PACKET_LEN, OVERHEAD};
