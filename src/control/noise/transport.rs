//! The established connection: plaintext in, records out, and a stream reader that turns
//! arbitrary chunks of the server's byte stream back into plaintext.
//!
//! Record: type 0x04, u16 big-endian ciphertext length, ciphertext + 16-byte tag, at most
//! 4096 bytes in all. Record boundaries carry no meaning; empty records are legal.

use super::cipher::CipherState;
use super::messages::{FrameHeader, HEADER_LEN, MAX_CIPHERTEXT_LEN, MAX_PLAINTEXT_LEN, MSG_TYPE_RECORD, TAG_LEN};
use super::NoiseError;

pub struct Transport {
    /// `None` once sending failed: a gap in the nonce sequence can never be repaired.
    sending: Option<CipherState>,
    /// `None` once receiving failed: after a bad record the streams are out of step.
    receiving: Option<CipherState>,
    /// Received bytes of a record that has not fully arrived yet (under 4096 bytes).
    partial_record: Vec<u8>,
}

impl Transport {
    pub(super) fn new(sending: CipherState, receiving: CipherState) -> Transport {
        Transport {
            sending: Some(sending),
            receiving: Some(receiving),
            partial_record: Vec::new(),
        }
    }

    /// Appends `plaintext` to `out` as records of at most [`MAX_PLAINTEXT_LEN`] bytes each.
    /// Empty input writes nothing. On error `out` is left as it was and sending is dead.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), NoiseError> {
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
    pub fn open(&mut self, input: &[u8], plaintext_out: &mut Vec<u8>) -> Result<(), NoiseError> {
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

fn seal_record(cipher: &mut CipherState, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), NoiseError> {
    out.extend_from_slice(&FrameHeader::encode(MSG_TYPE_RECORD, chunk.len() + TAG_LEN));
    let body_start = out.len();
    out.extend_from_slice(chunk);
    let tag = cipher.seal_in_place(&mut out[body_start..])?;
    out.extend_from_slice(&tag);
    Ok(())
}

/// Decrypts every whole record at the front of `stream`; returns how many bytes they spanned.
fn open_records(cipher: &mut CipherState, stream: &[u8], plaintext_out: &mut Vec<u8>) -> Result<usize, NoiseError> {
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

fn open_record(cipher: &mut CipherState, ciphertext: &[u8], plaintext_out: &mut Vec<u8>) -> Result<(), NoiseError> {
    let (body, tag) = ciphertext.split_at(ciphertext.len() - TAG_LEN);
    let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| NoiseError::RecordTooShort(ciphertext.len()))?;
    let body_start = plaintext_out.len();
    plaintext_out.extend_from_slice(body);
    let result = cipher.open_in_place(&mut plaintext_out[body_start..], tag);
    if result.is_err() {
        plaintext_out.truncate(body_start);
    }
    result
}
