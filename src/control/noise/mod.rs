//! The ts2021 control transport ("controlbase"): a Noise IK handshake carried in an HTTP/1.1
//! upgrade, then ChaCha20-Poly1305 records with big-endian nonces.
//!
//! Sans-IO: everything here turns bytes into bytes. The caller fetches the server key
//! ([`parse_server_key_response`]), sends [`upgrade_request`] carrying the initiation from
//! [`ClientHandshake::new`], feeds the server's bytes to [`UpgradeResponseReader`], then to
//! [`ResponseReader`], completes the handshake with [`ClientHandshake::handle_response`] and
//! from then on moves plaintext through [`Transport`].

mod cipher;
mod error;
mod handshake;
mod hkdf;
mod messages;
mod response_reader;
mod server_key;
mod symmetric;
mod transport;
mod upgrade;

#[cfg(test)]
mod go_interop_tests;
#[cfg(test)]
pub(crate) mod test_responder;

pub(crate) use error::NoiseError;
pub(crate) use handshake::ClientHandshake;
pub(crate) use response_reader::ResponseReader;
pub(crate) use server_key::{key_request_path, parse_server_key_response, ServerKeyError};
pub(crate) use transport::Transport;
pub(crate) use upgrade::{upgrade_request, UpgradeError, UpgradeResponseReader};

/// A transport keyed with `key` both ways, so the fuzzer can seal records and open them
/// without a handshake.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzzing_transport(key: &[u8; 32]) -> Transport {
    Transport::new(cipher::CipherState::new(key), cipher::CipherState::new(key))
}
