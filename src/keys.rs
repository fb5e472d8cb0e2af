//! WireGuard/Tailscale keys: Curve25519 key pairs, their base64 (WireGuard) and
//! `nodekey:<hex>` (Tailscale) spellings, and `weft genkey` / `weft pubkey`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use std::fmt;
use x25519_dalek::StaticSecret;

/// A Curve25519 public key (a WireGuard peer key, a Tailscale node key).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

/// A Curve25519 private key. Debug output never shows the key material.
#[derive(Clone)]
pub struct PrivateKey(pub [u8; 32]);

impl PublicKey {
    /// Parses the 44-character base64 form used by WireGuard configs and `wg`.
    pub fn from_base64(s: &str) -> Result<PublicKey, String> {
        decode_key(s).map(PublicKey)
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Tailscale's spelling: `nodekey:` followed by 64 lowercase hex digits.
    pub fn to_nodekey(&self) -> String {
        format!("nodekey:{}", hex(&self.0))
    }

    /// A short form for logs: the first 5 base64 characters, as tailscaled abbreviates keys.
    pub fn short(&self) -> String {
        let b = self.to_base64();
        format!("[{}]", &b[..5])
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl PrivateKey {
    /// A fresh key from the OS's random source, clamped as Curve25519 requires.
    pub fn generate() -> Result<PrivateKey, String> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| format!("no randomness available: {e}"))?;
        Ok(PrivateKey(StaticSecret::from(bytes).to_bytes()))
    }

    pub fn from_base64(s: &str) -> Result<PrivateKey, String> {
        decode_key(s).map(PrivateKey)
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    pub fn public_key(&self) -> PublicKey {
        let public = x25519_dalek::PublicKey::from(&self.secret());
        PublicKey(public.to_bytes())
    }

    pub fn secret(&self) -> StaticSecret {
        StaticSecret::from(self.0)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(…)")
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &PrivateKey) -> bool {
        self.0 == other.0
    }
}

fn decode_key(s: &str) -> Result<[u8; 32], String> {
    let s = s.trim();
    let bytes = BASE64
        .decode(s)
        .map_err(|_| "key is not valid base64".to_string())?;
    bytes
        .try_into()
        .map_err(|_| "key must be 32 bytes (44 base64 characters)".to_string())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_and_derives() {
        let k = PrivateKey::generate().unwrap();
        let again = PrivateKey::from_base64(&k.to_base64()).unwrap();
        assert_eq!(k, again);
        assert_eq!(k.public_key(), again.public_key());
        assert_eq!(k.public_key().to_nodekey().len(), 8 + 64);
    }

    #[test]
    fn known_wireguard_vector() {
        // From wg(8)'s documentation style: a private key and the public key `wg pubkey` derives.
        let private =
            PrivateKey::from_base64("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=").unwrap();
        assert_eq!(
            private.public_key().to_base64(),
            "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
        );
    }

    #[test]
    fn rejects_bad_keys() {
        assert!(PublicKey::from_base64("abc").is_err());
        assert!(PublicKey::from_base64("!!!!").is_err());
        assert!(PublicKey::from_base64(&BASE64.encode([0u8; 31])).is_err());
    }
}
