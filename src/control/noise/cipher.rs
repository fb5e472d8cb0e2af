//! One direction of the transport: ChaCha20-Poly1305 with controlbase's nonce, 4 zero bytes
//! followed by a BIG-endian 64-bit counter. Standard Noise uses little-endian there, so a stock
//! Noise transport would decrypt the first record and fail on the second.

use super::messages::TAG_LEN;
use super::NoiseError;
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};

/// The counter value controlbase treats as invalid; a key is retired before reaching it.
const EXHAUSTED_NONCE: u64 = u64::MAX;

pub(super) struct CipherState {
    aead: ChaCha20Poly1305,
    next_nonce: u64,
}

impl CipherState {
    pub(super) fn new(key: &[u8; 32]) -> CipherState {
        CipherState { aead: ChaCha20Poly1305::new(key.into()), next_nonce: 0 }
    }

    /// Encrypts `buffer` in place (no associated data) and returns the tag to append.
    pub(super) fn seal_in_place(&mut self, buffer: &mut [u8]) -> Result<[u8; TAG_LEN], NoiseError> {
        let nonce = self.take_nonce()?;
        let tag = self
            .aead
            .encrypt_in_place_detached(&nonce, &[], buffer)
            .map_err(|_| NoiseError::RecordTooLarge(buffer.len()))?;
        Ok(tag.into())
    }

    /// Decrypts `buffer` in place given its trailing `tag`.
    pub(super) fn open_in_place(
        &mut self,
        buffer: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), NoiseError> {
        let nonce = self.take_nonce()?;
        self.aead
            .decrypt_in_place_detached(&nonce, &[], buffer, Tag::from_slice(tag))
            .map_err(|_| NoiseError::RecordAuthFailed)
    }

    /// The nonce for the next record; every record consumes one, even a failed one, exactly
    /// as the Go side counts.
    fn take_nonce(&mut self) -> Result<Nonce, NoiseError> {
        if self.next_nonce == EXHAUSTED_NONCE {
            return Err(NoiseError::NonceExhausted);
        }
        let mut nonce = Nonce::default();
        nonce[4..].copy_from_slice(&self.next_nonce.to_be_bytes());
        self.next_nonce += 1;
        Ok(nonce)
    }

    #[cfg(test)]
    pub(super) fn skip_to_nonce(&mut self, counter: u64) {
        self.next_nonce = counter;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The second record is where a little-endian implementation goes wrong: counter 1 must
    /// sit in the LAST nonce byte.
    #[test]
    fn nonce_counter_is_big_endian() {
        let key = [5u8; 32];
        let mut cipher = CipherState::new(&key);
        cipher.skip_to_nonce(1);
        let mut sealed = *b"second record";
        let tag = cipher.seal_in_place(&mut sealed).unwrap();

        let mut expected = *b"second record";
        let mut nonce = [0u8; 12];
        nonce[11] = 1;
        let expected_tag = ChaCha20Poly1305::new(&key.into())
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &[], &mut expected)
            .unwrap();
        assert_eq!(sealed, expected);
        assert_eq!(tag, <[u8; TAG_LEN]>::from(expected_tag));
    }

    #[test]
    fn refuses_the_last_counter_value() {
        let mut cipher = CipherState::new(&[5u8; 32]);
        cipher.skip_to_nonce(u64::MAX - 1);
        assert!(cipher.seal_in_place(&mut [1, 2, 3]).is_ok());
        assert_eq!(cipher.seal_in_place(&mut [1, 2, 3]), Err(NoiseError::NonceExhausted));
        assert_eq!(
            cipher.open_in_place(&mut [1, 2, 3], &[0; TAG_LEN]),
            Err(NoiseError::NonceExhausted)
        );
    }
}
