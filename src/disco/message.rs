//! The plaintext inside a disco box: one type byte, one version byte, then the body.
//! Layouts from tailscale `disco/disco.go` (restated in /work/shared/protocol/disco.md §3).
//! Only the three messages a node without peer relays needs exist here; the relay types
//! parse as [`MessageError::UnknownType`], which receivers drop as the protocol asks.

use crate::keys::PublicKey;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

pub(crate) const TX_ID_LEN: usize = 12;
/// Random transaction id pairing a Pong with its Ping.
pub(crate) type TxId = [u8; TX_ID_LEN];

/// The largest plaintext that still fits one UDP datagram (or one DERP packet) once sealed;
/// anything longer cannot have come off the wire and is refused before looking inside.
pub(crate) const MAX_PLAINTEXT_LEN: usize = 65_535 - super::packet::OVERHEAD;

const TYPE_PING: u8 = 0x01;
const TYPE_PONG: u8 = 0x02;
const TYPE_CALL_ME_MAYBE: u8 = 0x03;
/// Every current message is version 0.
const VERSION: u8 = 0;
const HEADER_LEN: usize = 2;
const KEY_LEN: usize = 32;
/// 16-byte IP (IPv4 as `::ffff:a.b.c.d`) and a big-endian port.
const ENDPOINT_LEN: usize = 18;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    Ping(Ping),
    Pong(Pong),
    CallMeMaybe(CallMeMaybe),
}

/// "Are you there on this path?" — sent to every candidate address and over DERP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ping {
    tx_id: TxId,
    node_key: Option<PublicKey>,
    padding: usize,
}

/// The answer, telling the pinger which address its ping came from (a free STUN result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pong {
    tx_id: TxId,
    src: SocketAddr,
}

/// "Ping me at these addresses now": sent over DERP so both sides punch at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallMeMaybe {
    endpoints: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageError {
    /// Shorter than the type and version bytes, or than the type's fixed body.
    Truncated { len: usize },
    /// Longer than any sealed datagram can carry.
    Oversized { len: usize },
    /// A type this node does not speak (peer-relay messages, future types): ignore it.
    UnknownType(u8),
    /// A known type with a version this node does not understand.
    UnsupportedVersion { message_type: u8, version: u8 },
    /// A CallMeMaybe body that is not a whole number of endpoints.
    RaggedEndpointList { len: usize },
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Truncated { len } => write!(f, "disco message truncated at {len} bytes"),
            MessageError::Oversized { len } => {
                write!(f, "disco message of {len} bytes exceeds {MAX_PLAINTEXT_LEN}")
            }
            MessageError::UnknownType(t) => write!(f, "unknown disco message type {t:#04x}"),
            MessageError::UnsupportedVersion { message_type, version } => {
                write!(f, "disco message type {message_type:#04x} has unknown version {version}")
            }
            MessageError::RaggedEndpointList { len } => {
                write!(f, "CallMeMaybe body of {len} bytes is not a list of {ENDPOINT_LEN}-byte endpoints")
            }
        }
    }
}

impl std::error::Error for MessageError {}

impl Ping {
    /// A ping from the node whose WireGuard key is `node_key`, with `padding` zero bytes
    /// after it (for path-MTU probes). `None` if the padding makes it unsendable.
    pub(crate) fn new(tx_id: TxId, node_key: PublicKey, padding: usize) -> Option<Ping> {
        let len = HEADER_LEN + TX_ID_LEN + KEY_LEN + padding;
        (len <= MAX_PLAINTEXT_LEN).then_some(Ping { tx_id, node_key: Some(node_key), padding })
    }

    pub(crate) fn tx_id(&self) -> TxId {
        self.tx_id
    }

    /// The sender's node key; `None` from clients older than Tailscale 1.16.
    pub(crate) fn node_key(&self) -> Option<PublicKey> {
        self.node_key
    }

    #[cfg(test)]
    pub(crate) fn padding(&self) -> usize {
        self.padding
    }
}

impl Pong {
    pub(crate) fn new(tx_id: TxId, src: SocketAddr) -> Pong {
        Pong { tx_id, src }
    }

    pub(crate) fn tx_id(&self) -> TxId {
        self.tx_id
    }

    /// Where the answered ping came from, as the ponging node saw it.
    #[cfg(test)]
    pub(crate) fn src(&self) -> SocketAddr {
        self.src
    }
}

impl CallMeMaybe {
    /// `None` if the list would not fit one datagram.
    pub(crate) fn new(endpoints: Vec<SocketAddr>) -> Option<CallMeMaybe> {
        let len = HEADER_LEN + ENDPOINT_LEN * endpoints.len();
        (len <= MAX_PLAINTEXT_LEN).then_some(CallMeMaybe { endpoints })
    }

    pub(crate) fn endpoints(&self) -> &[SocketAddr] {
        &self.endpoints
    }
}

impl Message {
    /// The plaintext to seal (always version 0).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Message::Ping(ping) => {
                out.extend_from_slice(&[TYPE_PING, VERSION]);
                out.extend_from_slice(&ping.tx_id);
                if let Some(key) = ping.node_key {
                    out.extend_from_slice(&key.0);
                    out.resize(out.len() + ping.padding, 0);
                }
            }
            Message::Pong(pong) => {
                out.extend_from_slice(&[TYPE_PONG, VERSION]);
                out.extend_from_slice(&pong.tx_id);
                put_endpoint(&mut out, pong.src);
            }
            Message::CallMeMaybe(cmm) => {
                out.extend_from_slice(&[TYPE_CALL_ME_MAYBE, VERSION]);
                for endpoint in &cmm.endpoints {
                    put_endpoint(&mut out, *endpoint);
                }
            }
        }
        out
    }

    /// Parses an opened plaintext. Stricter than tailscale's parser in two places, both
    /// harmless today: a version other than 0 is refused (Go ignores it for Ping and Pong;
    /// every sender writes 0), and a ragged CallMeMaybe is an error where Go reads an empty
    /// list (either way no endpoint is acted on).
    pub(crate) fn decode(plaintext: &[u8]) -> Result<Message, MessageError> {
        let len = plaintext.len();
        if len > MAX_PLAINTEXT_LEN {
            return Err(MessageError::Oversized { len });
        }
        let [message_type, version, body @ ..] = plaintext else {
            return Err(MessageError::Truncated { len });
        };
        if !matches!(*message_type, TYPE_PING | TYPE_PONG | TYPE_CALL_ME_MAYBE) {
            return Err(MessageError::UnknownType(*message_type));
        }
        if *version != VERSION {
            return Err(MessageError::UnsupportedVersion {
                message_type: *message_type,
                version: *version,
            });
        }
        match *message_type {
            TYPE_PING => {
                decode_ping(body).map(Message::Ping).ok_or(MessageError::Truncated { len })
            }
            TYPE_PONG => {
                decode_pong(body).map(Message::Pong).ok_or(MessageError::Truncated { len })
            }
            _ => decode_call_me_maybe(body).map(Message::CallMeMaybe),
        }
    }
}

/// Clients before Tailscale 1.16 sent only the transaction id. Everything after the key is
/// padding; a body too short for a whole key has no key and no padding.
fn decode_ping(body: &[u8]) -> Option<Ping> {
    let (tx_id, rest) = body.split_first_chunk::<TX_ID_LEN>()?;
    let (node_key, padding) = match rest.split_first_chunk::<KEY_LEN>() {
        Some((key, padding)) => (Some(PublicKey(*key)), padding.len()),
        None => (None, 0),
    };
    Some(Ping { tx_id: *tx_id, node_key, padding })
}

/// Bytes after the fixed body are ignored: version 0 may grow trailing fields.
fn decode_pong(body: &[u8]) -> Option<Pong> {
    let (tx_id, rest) = body.split_first_chunk::<TX_ID_LEN>()?;
    let (src, _trailing) = rest.split_first_chunk::<ENDPOINT_LEN>()?;
    Some(Pong { tx_id: *tx_id, src: get_endpoint(src) })
}

fn decode_call_me_maybe(body: &[u8]) -> Result<CallMeMaybe, MessageError> {
    if !body.len().is_multiple_of(ENDPOINT_LEN) {
        return Err(MessageError::RaggedEndpointList { len: body.len() });
    }
    Ok(CallMeMaybe { endpoints: body.chunks_exact(ENDPOINT_LEN).map(get_endpoint).collect() })
}

fn put_endpoint(out: &mut Vec<u8>, endpoint: SocketAddr) {
    let ip = match endpoint.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    out.extend_from_slice(&ip.octets());
    out.extend_from_slice(&endpoint.port().to_be_bytes());
}

/// `chunk` is exactly [`ENDPOINT_LEN`] bytes; IPv4-mapped addresses come back as IPv4.
fn get_endpoint(chunk: &[u8]) -> SocketAddr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&chunk[..16]);
    let ip = Ipv6Addr::from(octets).to_canonical();
    SocketAddr::new(ip, u16::from_be_bytes([chunk[16], chunk[17]]))
}
