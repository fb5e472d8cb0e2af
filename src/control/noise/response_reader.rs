//! Delimits the server's handshake reply in the upgraded byte stream, which arrives in
//! arbitrary pieces (often glued to the HTTP head before it and the first records after it).

use super::messages::{parse_reply, ReplyProgress, RESPONSE_LEN};
use super::NoiseError;

/// A whole handshake response and whatever followed it in the same reads: those are the
/// first transport records, to be passed to [`Transport::open`](super::Transport::open).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CompleteResponse {
    pub message: [u8; RESPONSE_LEN],
    pub trailing: Vec<u8>,
}

/// Buffers the start of the stream until the reply is complete. At most one refusal text
/// (3 + 65535 bytes) is ever held back; a response is complete after 51 bytes.
#[derive(Debug, Default)]
pub(crate) struct ResponseReader {
    received: Vec<u8>,
}

impl ResponseReader {
    pub(crate) fn new() -> ResponseReader {
        ResponseReader::default()
    }

    /// Adds received bytes. `Ok(None)`: need more. `Ok(Some(..))`: the reply is complete and
    /// this reader is done. Errors: the server refused (with its text), or sent a message of
    /// the wrong type or length.
    pub(crate) fn feed(&mut self, input: &[u8]) -> Result<Option<CompleteResponse>, NoiseError> {
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

#[cfg(test)]
mod tests {
    use super::super::test_responder::handshake_and_reply;
    use super::*;
    use crate::testing::{shake, Rng};

    /// The server's bytes as they follow the HTTP head: the response and a first record.
    fn server_stream() -> (super::super::ClientHandshake, Vec<u8>) {
        let (client, mut accepted) = handshake_and_reply();
        let mut stream = accepted.response.clone();
        accepted.transport.seal(b"early payload", &mut stream).unwrap();
        (client, stream)
    }

    #[test]
    fn byte_at_a_time_completes_exactly_at_the_last_response_byte() {
        let (client, stream) = server_stream();
        let mut reader = ResponseReader::new();
        for byte in &stream[..RESPONSE_LEN - 1] {
            assert_eq!(reader.feed(std::slice::from_ref(byte)), Ok(None));
        }
        let complete = reader.feed(&stream[RESPONSE_LEN - 1..RESPONSE_LEN]).unwrap().unwrap();
        assert!(complete.trailing.is_empty());
        assert!(client.handle_response(&complete.message).is_ok());
    }

    #[test]
    fn trailing_records_are_handed_to_the_transport() {
        let (client, stream) = server_stream();
        let complete = ResponseReader::new().feed(&stream).unwrap().unwrap();
        let mut transport = client.handle_response(&complete.message).unwrap();
        let mut plaintext = Vec::new();
        transport.open(&complete.trailing, &mut plaintext).unwrap();
        assert_eq!(plaintext, b"early payload");
    }

    #[test]
    fn refusal_is_reported_once_its_text_arrived() {
        let mut reader = ResponseReader::new();
        assert_eq!(reader.feed(&[3, 0, 31]), Ok(None));
        assert_eq!(reader.feed(b"wrong handshake"), Ok(None));
        assert_eq!(
            reader.feed(b" initiation size"),
            Err(NoiseError::ServerRefused("wrong handshake initiation size".into()))
        );
    }

    #[test]
    fn wrong_type_and_length_are_refused_from_the_header() {
        assert_eq!(ResponseReader::new().feed(&[4]), Err(NoiseError::UnexpectedMessageType(4)));
        assert_eq!(
            ResponseReader::new().feed(&[2, 0, 49]),
            Err(NoiseError::WrongResponseLength(49))
        );
    }

    /// Mutated replies, split at random points, then the handshake on whatever completes:
    /// errors are fine, panics are not.
    #[test]
    fn shaken_replies_never_panic() {
        let (client, stream) = server_stream();
        let mut split = Rng::new(0x7370_6c69);
        let mut completed = 0;
        shake(0x7265_7370, 2500, &stream, |broken| {
            let at = split.below(broken.len() + 1);
            let mut reader = ResponseReader::new();
            let complete = match reader.feed(&broken[..at]) {
                Ok(None) => reader.feed(&broken[at..]),
                other => other,
            };
            if let Ok(Some(complete)) = complete {
                completed += 1;
                if let Ok(mut transport) = client.clone().handle_response(&complete.message) {
                    let _ = transport.open(&complete.trailing, &mut Vec::new());
                }
            }
        });
        assert!(completed > 0, "some mutations should keep a whole response");
    }
}
