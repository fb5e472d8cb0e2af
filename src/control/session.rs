//! One connection to the control server, as a sans-IO pipeline: the HTTP/1.1 upgrade to
//! ts2021, the Noise handshake, the optional early payload, then HTTP/2 inside Noise records.
//!
//! Bytes from the socket go in through [`Session::handle_input`]; bytes for the socket come out
//! of [`Session::poll_output`]. Once [`Session::h2`] returns a connection, requests and
//! responses flow through it.

use super::http2::{Connection, H2Error};
use super::noise::{
    upgrade_request, ClientHandshake, NoiseError, ResponseReader, Transport, UpgradeError,
    UpgradeResponseReader,
};
use crate::keys::{PrivateKey, PublicKey};
use std::fmt;

/// The early payload's magic: it comes before HTTP/2 when the server has something to say.
const EARLY_PAYLOAD_MAGIC: [u8; 5] = [0xff, 0xff, 0xff, b'T', b'S'];
/// Magic plus the u32 big-endian length.
const EARLY_PAYLOAD_HEADER_LEN: usize = 9;
/// The official client refuses early payloads larger than this.
const MAX_EARLY_PAYLOAD: usize = 10 << 20;

/// What ended a session, by layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionError {
    Upgrade(UpgradeError),
    Noise(NoiseError),
    Http2(H2Error),
    /// The early payload announced more than the official client accepts.
    EarlyPayloadTooLarge(usize),
    /// Input after an earlier failure.
    AlreadyFailed,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Upgrade(e) => write!(f, "upgrade: {e}"),
            SessionError::Noise(e) => write!(f, "noise: {e}"),
            SessionError::Http2(e) => write!(f, "http2: {e}"),
            SessionError::EarlyPayloadTooLarge(len) => {
                write!(f, "early payload of {len} bytes is too large")
            }
            SessionError::AlreadyFailed => f.write_str("connection already failed"),
        }
    }
}

impl std::error::Error for SessionError {}

enum Stage {
    /// Waiting for the `101 Switching Protocols` head.
    Upgrading(UpgradeResponseReader, ClientHandshake),
    /// Waiting for the 51-byte Noise response.
    Handshaking(ResponseReader, ClientHandshake),
    /// Noise is up.
    Open(Box<Open>),
    /// A step failed; the connection is useless.
    Failed,
}

struct Open {
    transport: Transport,
    /// Plaintext not yet known to be early payload or HTTP/2; `None` once HTTP/2 has begun.
    sniffing: Option<Vec<u8>>,
    h2: Connection,
}

pub(crate) struct Session {
    stage: Stage,
    host: String,
    /// Bytes for the socket, already framed (the upgrade request, sealed records).
    output: Vec<u8>,
}

impl Session {
    /// Starts a session: the upgrade request carrying the Noise initiation is queued.
    pub(crate) fn start(
        machine_key: &PrivateKey,
        control_key: &PublicKey,
        host: &str,
        capability_version: u16,
        ephemeral_seed: [u8; 32],
    ) -> Result<Session, SessionError> {
        let (handshake, initiation) =
            ClientHandshake::new(machine_key, control_key, capability_version, ephemeral_seed)
                .map_err(SessionError::Noise)?;
        let output = upgrade_request(host, &initiation).map_err(SessionError::Upgrade)?;
        Ok(Session {
            stage: Stage::Upgrading(UpgradeResponseReader::new(), handshake),
            host: host.to_string(),
            output,
        })
    }

    /// The HTTP/2 connection, once the server's first HTTP/2 bytes may arrive.
    pub(crate) fn h2(&mut self) -> Option<&mut Connection> {
        match &mut self.stage {
            Stage::Open(open) => Some(&mut open.h2),
            _ => None,
        }
    }

    /// Noise is up: the server proved it holds the key we dialed.
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.stage, Stage::Open(_))
    }

    /// Feeds bytes read from the socket.
    pub(crate) fn handle_input(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        let result = self.advance(bytes);
        if result.is_err() {
            self.stage = Stage::Failed;
        }
        result
    }

    fn advance(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        let stage = std::mem::replace(&mut self.stage, Stage::Failed);
        self.stage = match stage {
            Stage::Upgrading(mut reader, handshake) => {
                match reader.feed(bytes).map_err(SessionError::Upgrade)? {
                    None => Stage::Upgrading(reader, handshake),
                    Some(rest) => {
                        self.stage = Stage::Handshaking(ResponseReader::new(), handshake);
                        return self.advance(&rest);
                    }
                }
            }
            Stage::Handshaking(mut reader, handshake) => {
                match reader.feed(bytes).map_err(SessionError::Noise)? {
                    None => Stage::Handshaking(reader, handshake),
                    Some(done) => {
                        let transport = handshake
                            .handle_response(&done.message)
                            .map_err(SessionError::Noise)?;
                        let mut h2 = Connection::new();
                        h2.set_authority(&self.host);
                        self.stage = Stage::Open(Box::new(Open {
                            transport,
                            sniffing: Some(Vec::new()),
                            h2,
                        }));
                        return self.advance(&done.trailing);
                    }
                }
            }
            Stage::Open(mut open) => {
                open.receive(bytes)?;
                Stage::Open(open)
            }
            Stage::Failed => return Err(SessionError::AlreadyFailed),
        };
        Ok(())
    }

    /// Appends everything due for the socket to `out`.
    pub(crate) fn poll_output(&mut self, out: &mut Vec<u8>) -> Result<(), SessionError> {
        out.append(&mut self.output);
        if let Stage::Open(open) = &mut self.stage {
            let mut plaintext = Vec::new();
            open.h2.poll_output(&mut plaintext);
            if !plaintext.is_empty() {
                open.transport.seal(&plaintext, out).map_err(SessionError::Noise)?;
            }
        }
        Ok(())
    }
}

impl Open {
    fn receive(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        let mut plaintext = Vec::new();
        self.transport.open(bytes, &mut plaintext).map_err(SessionError::Noise)?;
        let Some(mut pending) = self.sniffing.take() else {
            return self.h2.handle_input(&plaintext).map_err(SessionError::Http2);
        };
        pending.extend_from_slice(&plaintext);
        match skip_early_payload(&pending)? {
            Sniff::NeedMore => {
                self.sniffing = Some(pending);
                Ok(())
            }
            Sniff::Http2From(start) => {
                self.h2.handle_input(&pending[start..]).map_err(SessionError::Http2)
            }
        }
    }
}

enum Sniff {
    NeedMore,
    /// HTTP/2 begins at this offset (0 when there was no early payload).
    Http2From(usize),
}

/// Looks for the early payload at the start of the plaintext stream. Its JSON (a node-key
/// challenge for features weft doesn't use) is skipped.
fn skip_early_payload(stream: &[u8]) -> Result<Sniff, SessionError> {
    let prefix_len = stream.len().min(EARLY_PAYLOAD_MAGIC.len());
    if stream[..prefix_len] != EARLY_PAYLOAD_MAGIC[..prefix_len] {
        return Ok(Sniff::Http2From(0));
    }
    if stream.len() < EARLY_PAYLOAD_HEADER_LEN {
        return Ok(Sniff::NeedMore);
    }
    let len = u32::from_be_bytes(stream[5..9].try_into().expect("4 bytes")) as usize;
    if len > MAX_EARLY_PAYLOAD {
        return Err(SessionError::EarlyPayloadTooLarge(len));
    }
    if stream.len() < EARLY_PAYLOAD_HEADER_LEN + len {
        return Ok(Sniff::NeedMore);
    }
    Ok(Sniff::Http2From(EARLY_PAYLOAD_HEADER_LEN + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_payload_is_recognised_in_any_split() {
        let mut stream = EARLY_PAYLOAD_MAGIC.to_vec();
        let json = br#"{"nodeKeyChallenge":"chalpub:00"}"#;
        stream.extend_from_slice(&(json.len() as u32).to_be_bytes());
        stream.extend_from_slice(json);
        let h2_start = stream.len();
        stream.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        // Every prefix, even one shorter than the magic, may still become the early payload:
        // deciding "HTTP/2" before the payload has fully arrived would hand its bytes to h2.
        for cut in 0..h2_start {
            assert!(
                matches!(skip_early_payload(&stream[..cut]).unwrap(), Sniff::NeedMore),
                "cut {cut}"
            );
        }
        assert!(
            matches!(skip_early_payload(&stream).unwrap(), Sniff::Http2From(n) if n == h2_start)
        );
    }

    #[test]
    fn plain_http2_and_oversized_payloads() {
        assert!(matches!(skip_early_payload(&[0, 0, 6, 4]).unwrap(), Sniff::Http2From(0)));
        let mut huge = EARLY_PAYLOAD_MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(skip_early_payload(&huge).is_err());
    }
}
