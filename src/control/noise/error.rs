//! Everything that can go wrong in the Noise layer. Every variant is fatal for the connection:
//! controlbase has no way to resynchronise after a bad message.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoiseError {
    /// The server answered with an (unauthenticated) error message instead of a handshake
    /// response; the text is a hint for logs, never something to act on.
    ServerRefused(String),
    /// A message type byte that is not allowed at this point of the protocol.
    UnexpectedMessageType(u8),
    /// The handshake response announced a payload length other than the fixed one.
    WrongResponseLength(usize),
    /// Fewer or more bytes than one whole handshake response were handed over.
    ResponseSizeMismatch(usize),
    /// The handshake response did not authenticate: wrong server key or tampering.
    HandshakeAuthFailed,
    /// A Diffie-Hellman with a low-order public key (an all-zero shared secret).
    WeakPublicKey,
    /// A record header announced more than the 4096-byte record limit.
    RecordTooLarge(usize),
    /// A record too short to hold even the authentication tag.
    RecordTooShort(usize),
    /// A record failed authentication (tampering, or the streams are out of step).
    RecordAuthFailed,
    /// 2^64-1 records were used in one direction; the key must not be used again.
    NonceExhausted,
    /// An earlier error already killed this direction of the transport.
    Closed,
}

impl fmt::Display for NoiseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoiseError::ServerRefused(text) => {
                write!(f, "control server refused handshake: {text:?}")
            }
            NoiseError::UnexpectedMessageType(t) => write!(f, "unexpected Noise message type {t}"),
            NoiseError::WrongResponseLength(n) => {
                write!(f, "handshake response announces {n} bytes")
            }
            NoiseError::ResponseSizeMismatch(n) => write!(f, "handshake response of {n} bytes"),
            NoiseError::HandshakeAuthFailed => {
                f.write_str("handshake response failed authentication")
            }
            NoiseError::WeakPublicKey => f.write_str("low-order public key in handshake"),
            NoiseError::RecordTooLarge(n) => {
                write!(f, "Noise record of {n} bytes exceeds the limit")
            }
            NoiseError::RecordTooShort(n) => {
                write!(f, "Noise record of {n} ciphertext bytes is too short")
            }
            NoiseError::RecordAuthFailed => f.write_str("Noise record failed authentication"),
            NoiseError::NonceExhausted => f.write_str("Noise cipher exhausted its nonces"),
            NoiseError::Closed => f.write_str("Noise transport already failed"),
        }
    }
}

impl std::error::Error for NoiseError {}
