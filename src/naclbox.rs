//! NaCl `crypto_box` (X25519 + XSalsa20-Poly1305) as Tailscale lays it out on the wire:
//! `nonce (24) | Poly1305 tag (16) | ciphertext`. Disco packets and the DERP login
//! (ClientInfo/ServerInfo) both carry exactly this, so both share one precomputed box per
//! peer. The cryptography is RustCrypto's `crypto_box`; this module only fixes the layout.
//!
//! Sans-IO: the caller supplies every nonce (from the OS's random source in production), so
//! the same inputs always give the same bytes and tests can pin known answers.

use crate::keys::{PrivateKey, PublicKey};
use crypto_box::aead::generic_array::GenericArray;
use crypto_box::aead::AeadInPlace;
use crypto_box::SalsaBox;
use std::fmt;

pub(crate) const NONCE_LEN: usize = 24;
pub(crate) const TAG_LEN: usize = 16;
/// Bytes a sealed message is longer than its plaintext.
pub(crate) const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

pub(crate) type Nonce = [u8; NONCE_LEN];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Shorter than a nonce and a tag.
    Truncated,
    /// The tag did not verify: wrong keys (often a peer that restarted) or tampering.
    Forged,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Truncated => f.write_str("sealed box shorter than nonce and tag"),
            OpenError::Forged => f.write_str("sealed box does not authenticate"),
        }
    }
}

impl std::error::Error for OpenError {}

/// The box between our private key and one peer's public key, with the X25519 + HSalsa20
/// step done once (NaCl's `box_beforenm`), because every packet to that peer reuses it.
pub(crate) struct SharedBox(SalsaBox);

impl SharedBox {
    pub(crate) fn new(ours: &PrivateKey, theirs: &PublicKey) -> SharedBox {
        let secret = crypto_box::SecretKey::from(ours.0);
        let public = crypto_box::PublicKey::from(theirs.0);
        SharedBox(SalsaBox::new(&public, &secret))
    }

    /// `nonce | tag | ciphertext` of `plaintext`.
    pub(crate) fn seal(&self, nonce: &Nonce, plaintext: &[u8]) -> Vec<u8> {
        let mut body = plaintext.to_vec();
        let tag = self
            .0
            .encrypt_in_place_detached(GenericArray::from_slice(nonce), b"", &mut body)
            .expect("XSalsa20-Poly1305 accepts any in-memory plaintext length");
        let mut sealed = Vec::with_capacity(OVERHEAD + plaintext.len());
        sealed.extend_from_slice(nonce);
        sealed.extend_from_slice(&tag);
        sealed.extend_from_slice(&body);
        sealed
    }

    /// The plaintext of a `nonce | tag | ciphertext` box.
    pub(crate) fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < OVERHEAD {
            return Err(OpenError::Truncated);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (tag, ciphertext) = rest.split_at(TAG_LEN);
        let mut body = ciphertext.to_vec();
        self.0
            .decrypt_in_place_detached(
                GenericArray::from_slice(nonce),
                b"",
                &mut body,
                GenericArray::from_slice(tag),
            )
            .map_err(|_| OpenError::Forged)?;
        Ok(body)
    }
}

impl fmt::Debug for SharedBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedBox(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{unhex, Rng};

    fn key32(s: &str) -> [u8; 32] {
        unhex(s).try_into().unwrap()
    }

    /// The `crypto_box` known answer from D. J. Bernstein's "Cryptography in NaCl" (section
    /// 10, Alice to Bob), the published vector NaCl's own tests use: pins X25519, HSalsa20,
    /// XSalsa20-Poly1305 and the tag-first layout at once.
    #[test]
    fn matches_the_nacl_paper_vector() {
        let alice_private =
            PrivateKey(key32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
        let bob_public =
            PublicKey(key32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"));
        let nonce: Nonce =
            unhex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37").try_into().unwrap();
        let plaintext = unhex(
            "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5e\
             cbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb310e3be8\
             250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb4\
             8f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705",
        );
        let expected = unhex(
            "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48\
             332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c97271d2\
             c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae902243\
             68517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b37973f622\
             a43d14a6599b1f654cb45a74e355a5",
        );
        let sealed = SharedBox::new(&alice_private, &bob_public).seal(&nonce, &plaintext);
        assert_eq!(&sealed[..NONCE_LEN], &nonce);
        assert_eq!(&sealed[NONCE_LEN..], &expected[..]);
    }

    #[test]
    fn opens_what_the_other_side_sealed_and_nothing_else() {
        let alice = PrivateKey([7; 32]);
        let bob = PrivateKey([9; 32]);
        let to_bob = SharedBox::new(&alice, &bob.public_key());
        let from_alice = SharedBox::new(&bob, &alice.public_key());
        let sealed = to_bob.seal(&[3; NONCE_LEN], b"hello");
        assert_eq!(sealed.len(), OVERHEAD + 5);
        assert_eq!(from_alice.open(&sealed).unwrap(), b"hello");

        let eve = PrivateKey([11; 32]);
        let from_eve = SharedBox::new(&bob, &eve.public_key());
        assert_eq!(from_eve.open(&sealed), Err(OpenError::Forged));
        assert_eq!(from_alice.open(&sealed[..OVERHEAD - 1]), Err(OpenError::Truncated));
        let mut rng = Rng::new(5);
        for _ in 0..200 {
            let mut tampered = sealed.clone();
            let i = rng.below(tampered.len());
            tampered[i] ^= 1 << rng.below(8);
            assert_eq!(from_alice.open(&tampered), Err(OpenError::Forged), "flip at {i}");
        }
    }
}
