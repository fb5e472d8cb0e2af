//! The established connection: plaintext in, records out, and a stream reader that turns
//! arbitrary chunks of the server's byte stream back into plaintext.
//!
//! Record: type 0x04, u16 big-endian ciphertext length, ciphertext + 16-byte tag, at most
//! 4096 bytes in all. Record boundaries carry no meaning; empty records are legal.

use super::cipher::CipherState;
use super::messages::{
    FrameHeader, HEADER_LEN, MAX_CIPHERTEXT_LEN, MAX_PLAINTEXT_LEN, MSG_TYPE_RECORD, TAG_LEN,
};
use super::NoiseError;

/// Both directions of an established connection. Either direction dies at its first error
/// and stays dead ([`NoiseError::Closed`]): controlbase cannot resynchronise.
pub(crate) struct Transport {
    /// `None` once sending failed: a gap in the nonce sequence can never be repaired.
    sending: Option<CipherState>,
    /// `None` once receiving failed: after a bad record the streams are out of step.
    receiving: Option<CipherState>,
    /// Received bytes of a record that has not fully arrived yet (under 4096 bytes).
    partial_record: Vec<u8>,
}

impl Transport {
    pub(super) fn new(sending: CipherState, receiving: CipherState) -> Transport {
        Transport { sending: Some(sending), receiving: Some(receiving), partial_record: Vec::new() }
    }

    /// Appends `plaintext` to `out` as records of at most [`MAX_PLAINTEXT_LEN`] bytes each.
    /// Empty input writes nothing. On error `out` is left as it was and sending is dead.
    pub(crate) fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), NoiseError> {
        let cipher = self.sending.as_mut().ok_or(NoiseError::Closed)?;
        let original_len = out.len();
        for chunk in plaintext.chunks(MAX_PLAINTEXT_LEN) {
            if let Err(error) = seal_record(cipher, chunk, out) {
                out.truncate(original_len);
                self.sending = None;
                return Err(error);
            }
        }
        Ok(())
    }

    /// Feeds received stream bytes; appends the plaintext of every record completed by them to
    /// `plaintext_out` and keeps an incomplete tail for the next call. Any bad record (wrong
    /// type, oversized, failed tag) is fatal: receiving is dead afterwards, and `plaintext_out`
    /// keeps only the records authenticated before it.
    pub(crate) fn open(
        &mut self,
        input: &[u8],
        plaintext_out: &mut Vec<u8>,
    ) -> Result<(), NoiseError> {
        let cipher = self.receiving.as_mut().ok_or(NoiseError::Closed)?;
        self.partial_record.extend_from_slice(input);
        match open_records(cipher, &self.partial_record, plaintext_out) {
            Ok(consumed) => {
                self.partial_record.drain(..consumed);
                Ok(())
            }
            Err(error) => {
                self.receiving = None;
                self.partial_record = Vec::new();
                Err(error)
            }
        }
    }

    #[cfg(test)]
    pub(super) fn skip_to_nonces(&mut self, sending: u64, receiving: u64) {
        if let Some(cipher) = self.sending.as_mut() {
            cipher.skip_to_nonce(sending);
        }
        if let Some(cipher) = self.receiving.as_mut() {
            cipher.skip_to_nonce(receiving);
        }
    }
}

fn seal_record(
    cipher: &mut CipherState,
    chunk: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), NoiseError> {
    out.extend_from_slice(&FrameHeader::encode(MSG_TYPE_RECORD, chunk.len() + TAG_LEN));
    let body_start = out.len();
    out.extend_from_slice(chunk);
    let tag = cipher.seal_in_place(&mut out[body_start..])?;
    out.extend_from_slice(&tag);
    Ok(())
}

/// Decrypts every whole record at the front of `stream`; returns how many bytes they spanned.
fn open_records(
    cipher: &mut CipherState,
    stream: &[u8],
    plaintext_out: &mut Vec<u8>,
) -> Result<usize, NoiseError> {
    let mut consumed = 0;
    while let Some(header) = FrameHeader::peek(&stream[consumed..]) {
        check_record_header(header)?;
        let Some(record) = stream.get(consumed..consumed + header.total_len()) else {
            break;
        };
        open_record(cipher, &record[HEADER_LEN..], plaintext_out)?;
        consumed += header.total_len();
    }
    Ok(consumed)
}

/// Rejects a bad record as soon as its header is visible, without waiting for its body.
fn check_record_header(header: FrameHeader) -> Result<(), NoiseError> {
    if header.message_type != MSG_TYPE_RECORD {
        return Err(NoiseError::UnexpectedMessageType(header.message_type));
    }
    if header.length > MAX_CIPHERTEXT_LEN {
        return Err(NoiseError::RecordTooLarge(header.total_len()));
    }
    if header.length < TAG_LEN {
        return Err(NoiseError::RecordTooShort(header.length));
    }
    Ok(())
}

fn open_record(
    cipher: &mut CipherState,
    ciphertext: &[u8],
    plaintext_out: &mut Vec<u8>,
) -> Result<(), NoiseError> {
    let (body, tag) = ciphertext
        .split_last_chunk::<TAG_LEN>()
        .ok_or(NoiseError::RecordTooShort(ciphertext.len()))?;
    let body_start = plaintext_out.len();
    plaintext_out.extend_from_slice(body);
    let result = cipher.open_in_place(&mut plaintext_out[body_start..], tag);
    if result.is_err() {
        plaintext_out.truncate(body_start);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::super::messages::MAX_RECORD_LEN;
    use super::super::test_responder::connected_pair;
    use super::*;
    use crate::testing::{shake, Rng};

    /// Transports keyed directly, without a handshake, for the many-round tests.
    fn keyed_pair() -> (Transport, Transport) {
        let client = Transport::new(CipherState::new(&[1; 32]), CipherState::new(&[2; 32]));
        let server = Transport::new(CipherState::new(&[2; 32]), CipherState::new(&[1; 32]));
        (client, server)
    }

    fn sealed(transport: &mut Transport, plaintext: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        transport.seal(plaintext, &mut wire).unwrap();
        wire
    }

    fn opened(transport: &mut Transport, wire: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let mut plaintext = Vec::new();
        transport.open(wire, &mut plaintext).map(|()| plaintext)
    }

    /// Record lengths found by walking the headers of a sealed stream.
    fn record_lengths(mut wire: &[u8]) -> Vec<usize> {
        let mut lengths = Vec::new();
        while let Some(header) = FrameHeader::peek(wire) {
            assert_eq!(header.message_type, MSG_TYPE_RECORD);
            lengths.push(header.total_len());
            wire = &wire[header.total_len()..];
        }
        lengths
    }

    #[test]
    fn round_trip_after_a_real_handshake_both_ways() {
        let (mut client, mut server) = connected_pair();
        let request = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        assert_eq!(opened(&mut server, &sealed(&mut client, request)).unwrap(), request);
        for round in 0..3u8 {
            let answer = vec![round; 100];
            assert_eq!(opened(&mut client, &sealed(&mut server, &answer)).unwrap(), answer);
        }
    }

    #[test]
    fn long_writes_split_into_records_of_at_most_4096_bytes() {
        let (mut client, mut server) = keyed_pair();
        let plaintext: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let wire = sealed(&mut client, &plaintext);
        assert_eq!(record_lengths(&wire), [4096, 4096, 10_000 - 2 * MAX_PLAINTEXT_LEN + 19]);
        assert_eq!(opened(&mut server, &wire).unwrap(), plaintext);
    }

    #[test]
    fn empty_write_sends_nothing_but_empty_records_are_read_past() {
        let (mut client, mut server) = keyed_pair();
        assert!(sealed(&mut client, &[]).is_empty());
        let mut wire = Vec::new();
        seal_record(client.sending.as_mut().unwrap(), &[], &mut wire).unwrap();
        wire.extend(sealed(&mut client, b"after"));
        assert_eq!(record_lengths(&wire)[0], HEADER_LEN + TAG_LEN);
        assert_eq!(opened(&mut server, &wire).unwrap(), b"after");
    }

    #[test]
    fn byte_at_a_time_feeding_yields_the_same_plaintext() {
        let (mut client, mut server) = keyed_pair();
        let plaintext: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let mut wire = sealed(&mut client, &plaintext);
        wire.extend(sealed(&mut client, b"tail"));
        let mut received = Vec::new();
        for byte in &wire {
            server.open(std::slice::from_ref(byte), &mut received).unwrap();
        }
        assert_eq!(received, [&plaintext[..], b"tail"].concat());
        assert!(server.partial_record.is_empty());
    }

    #[test]
    fn truncated_record_waits_for_the_rest() {
        let (mut client, mut server) = keyed_pair();
        let wire = sealed(&mut client, b"hello");
        assert_eq!(opened(&mut server, &wire[..wire.len() - 1]).unwrap(), b"");
        assert_eq!(opened(&mut server, &wire[wire.len() - 1..]).unwrap(), b"hello");
    }

    #[test]
    fn oversized_record_is_refused_from_its_header() {
        let (_, mut server) = keyed_pair();
        let largest = FrameHeader::encode(MSG_TYPE_RECORD, MAX_CIPHERTEXT_LEN);
        assert_eq!(opened(&mut server, &largest).unwrap(), b"");
        let (_, mut server) = keyed_pair();
        let too_large = FrameHeader::encode(MSG_TYPE_RECORD, MAX_CIPHERTEXT_LEN + 1);
        assert_eq!(opened(&mut server, &too_large), Err(NoiseError::RecordTooLarge(4097)));
        assert_eq!(opened(&mut server, b""), Err(NoiseError::Closed));
    }

    #[test]
    fn record_shorter_than_a_tag_is_refused() {
        let (_, mut server) = keyed_pair();
        let header = FrameHeader::encode(MSG_TYPE_RECORD, TAG_LEN - 1);
        assert_eq!(opened(&mut server, &header), Err(NoiseError::RecordTooShort(15)));
    }

    #[test]
    fn wrong_record_type_is_fatal() {
        let (mut client, mut server) = keyed_pair();
        let mut wire = sealed(&mut client, b"hello");
        wire[0] = 2;
        assert_eq!(opened(&mut server, &wire), Err(NoiseError::UnexpectedMessageType(2)));
        assert_eq!(opened(&mut server, &sealed(&mut client, b"x")), Err(NoiseError::Closed));
    }

    #[test]
    fn tampered_record_is_fatal_and_yields_no_plaintext() {
        let (mut client, mut server) = keyed_pair();
        let mut wire = sealed(&mut client, b"hello");
        wire[5] ^= 1;
        let mut plaintext = b"kept".to_vec();
        assert_eq!(server.open(&wire, &mut plaintext), Err(NoiseError::RecordAuthFailed));
        assert_eq!(plaintext, b"kept");
        assert_eq!(opened(&mut server, &sealed(&mut client, b"x")), Err(NoiseError::Closed));
    }

    #[test]
    fn reordered_records_fail_because_nonces_count() {
        let (mut client, mut server) = keyed_pair();
        let _undelivered_first = sealed(&mut client, b"first");
        let second = sealed(&mut client, b"second");
        assert_eq!(opened(&mut server, &second), Err(NoiseError::RecordAuthFailed));
    }

    #[test]
    fn nonce_exhaustion_is_an_error_not_a_wrap() {
        let (mut client, mut server) = keyed_pair();
        client.skip_to_nonces(u64::MAX - 1, 0);
        server.skip_to_nonces(0, u64::MAX - 1);
        let last = sealed(&mut client, b"last");
        assert_eq!(opened(&mut server, &last).unwrap(), b"last");
        let mut wire = b"untouched".to_vec();
        assert_eq!(client.seal(b"one more", &mut wire), Err(NoiseError::NonceExhausted));
        assert_eq!(wire, b"untouched");
        assert_eq!(client.seal(b"again", &mut wire), Err(NoiseError::Closed));
        assert_eq!(opened(&mut server, &last), Err(NoiseError::NonceExhausted));
    }

    /// Mutated streams, fed in random chunk sizes, must produce errors or plaintext, never a
    /// panic, and never buffer more than one record.
    #[test]
    fn shaken_streams_never_panic() {
        let (mut client, _) = keyed_pair();
        let mut valid = sealed(&mut client, &[0x5a; 5000]);
        seal_record(client.sending.as_mut().unwrap(), &[], &mut valid).unwrap();
        valid.extend(sealed(&mut client, b"end"));
        let mut chunking = Rng::new(0x6e6f_6973);
        shake(0x7265_636f, 2500, &valid, |broken| {
            let (_, mut server) = keyed_pair();
            let mut plaintext = Vec::new();
            for chunk in broken.chunks(1 + chunking.below(700)) {
                if server.open(chunk, &mut plaintext).is_err() {
                    break;
                }
                assert!(server.partial_record.len() < MAX_RECORD_LEN);
            }
        });
    }
}
