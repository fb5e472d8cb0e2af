//! The Noise "symmetric state" of the handshake: the running transcript hash `h` and the
//! chaining key `ck`, for `Noise_IK_25519_ChaChaPoly_BLAKE2s`.

use super::cipher::CipherState;
use super::hkdf::hkdf2;
use super::messages::TAG_LEN;
use super::NoiseError;
use blake2::{Blake2s256, Digest};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};
use x25519_dalek::{PublicKey as DhPublic, StaticSecret};

const PROTOCOL_NAME: &[u8] = b"Noise_IK_25519_ChaChaPoly_BLAKE2s";
/// Mixed in as the prologue so both sides prove they agree on the version the cleartext
/// initiation header claims.
const PROLOGUE_PREFIX: &str = "Tailscale Control Protocol v";

/// The prologue for a protocol version: the prefix and the version in decimal, nothing else.
pub(super) fn prologue(protocol_version: u16) -> Vec<u8> {
    format!("{PROLOGUE_PREFIX}{protocol_version}").into_bytes()
}

/// A handshake key from one MixKey. Noise uses each such key exactly once with nonce 0;
/// taking it by value makes a second use impossible rather than a runtime panic.
pub(super) struct HandshakeKey([u8; 32]);

impl HandshakeKey {
    fn aead(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&self.0.into())
    }
}

#[derive(Clone)]
pub(super) struct SymmetricState {
    hash: [u8; 32],
    chaining_key: [u8; 32],
}

impl SymmetricState {
    /// The state after `Initialize` and the prologue.
    pub(super) fn new(protocol_version: u16) -> SymmetricState {
        let name_hash: [u8; 32] = Blake2s256::digest(PROTOCOL_NAME).into();
        let mut state = SymmetricState { hash: name_hash, chaining_key: name_hash };
        state.mix_hash(&prologue(protocol_version));
        state
    }

    pub(super) fn mix_hash(&mut self, data: &[u8]) {
        let mut hasher = Blake2s256::new();
        hasher.update(self.hash);
        hasher.update(data);
        self.hash = hasher.finalize().into();
    }

    /// MixKey(DH(private, public)). A low-order public key gives an all-zero secret; Go's
    /// X25519 refuses those, so do we.
    pub(super) fn mix_dh(
        &mut self,
        private: &StaticSecret,
        public: &[u8; 32],
    ) -> Result<HandshakeKey, NoiseError> {
        let shared = private.diffie_hellman(&DhPublic::from(*public));
        if !shared.was_contributory() {
            return Err(NoiseError::WeakPublicKey);
        }
        let (chaining_key, key) = hkdf2(&self.chaining_key, shared.as_bytes());
        self.chaining_key = chaining_key;
        Ok(HandshakeKey(key))
    }

    /// Encrypts `plaintext` with the transcript as associated data, appends ciphertext and
    /// tag to `out` and mixes them into the transcript.
    pub(super) fn encrypt_and_hash(
        &mut self,
        key: HandshakeKey,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) {
        let mut sealed = plaintext.to_vec();
        let tag = key
            .aead()
            .encrypt_in_place_detached(&Nonce::default(), &self.hash, &mut sealed)
            .expect("handshake payloads are far below the ChaCha20 length limit");
        sealed.extend_from_slice(&tag);
        self.mix_hash(&sealed);
        out.extend_from_slice(&sealed);
    }

    /// Authenticates and decrypts `ciphertext` (plaintext + tag) against the transcript.
    pub(super) fn decrypt_and_hash(
        &mut self,
        key: HandshakeKey,
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, NoiseError> {
        let (body, tag) =
            ciphertext.split_last_chunk::<TAG_LEN>().ok_or(NoiseError::HandshakeAuthFailed)?;
        let mut plaintext = body.to_vec();
        key.aead()
            .decrypt_in_place_detached(
                &Nonce::default(),
                &self.hash,
                &mut plaintext,
                Tag::from_slice(tag),
            )
            .map_err(|_| NoiseError::HandshakeAuthFailed)?;
        self.mix_hash(ciphertext);
        Ok(plaintext)
    }

    /// Split: the initiator's sending cipher first, the responder's sending cipher second.
    pub(super) fn split(self) -> (CipherState, CipherState) {
        let (initiator_to_responder, responder_to_initiator) = hkdf2(&self.chaining_key, &[]);
        (CipherState::new(&initiator_to_responder), CipherState::new(&responder_to_initiator))
    }
}
