//! Delimits the server's handshake reply in the upgraded byte stream, which arrives in
//! arbitrary pieces (often glued to the HTTP head before it and the first records after it).

use super::messages::{parse_reply, ReplyProgress, RESPONSE_LEN};
use super::NoiseError;

/// A whole handshake response and whatever followed it in the same reads: those are the
/// first transport records, to be passed to [`Transport::open`](super::Transport::open).
#[derive(Debug, PartialEq, Eq)]
pub struct CompleteResponse {
    pub message: [u8; RESPONSE_LEN],
    pub trailing: Vec<u8>,
}

/// Buffers the start of the stream until the reply is complete. At most one refusal text
/// (3 + 65535 bytes) is ever held back; a response is complete after 51 bytes.
#[derive(Debug, Default)]
pub struct ResponseReader {
    received: Vec<u8>,
}

impl ResponseReader {
    pub fn new() -> ResponseReader {
        ResponseReader::default()
    }

    /// Adds received bytes. `Ok(None)`: need more. `Ok(Some(..))`: the reply is complete and
    /// this reader is done. Errors: the server refused (with its text), or sent a message of
    /// the wrong type or length.
    pub fn feed(&mut self, input: &[u8]) -> Result<Option<CompleteResponse>, NoiseError> {
        self.received.extend_from_slice(input);
        let message = match parse_reply(&self.received)? {
            ReplyProgress::Incomplete => return Ok(None),
            ReplyProgress::Response(message) => *message,
        };
        let trailing = self.received.split_off(RESPONSE_LEN);
        self.received.clear();
        Ok(Some(CompleteResponse { message, trailing }))
    }
}
