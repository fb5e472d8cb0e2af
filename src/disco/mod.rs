//! Disco, Tailscale's path-discovery protocol: sealed Ping/Pong/CallMeMaybe between the disco
//! keys of two nodes, over the shared UDP socket or DERP. Sans-IO: these are the messages and
//! their sealing; deciding whom to ping and which path to trust belongs to the caller.
//! Not yet wired into the daemon.

mod message;
mod packet;
#[cfg(test)]
mod tests;

pub use message::{
    CallMeMaybe, Message, MessageError, Ping, Pong, TxId, MAX_PLAINTEXT_LEN, TX_ID_LEN,
};
pub use packet::{
    looks_like_disco, sender, DiscoKey, PacketError, PeerSession, HEADER_LEN, MAGIC,
    MAX_PACKET_LEN, OVERHEAD,
};
