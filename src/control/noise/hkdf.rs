//! Noise's HKDF over HMAC-BLAKE2s, the key schedule controlbase gets from Go's
//! `hkdf.New(blake2s, ikm, salt=ck, info=nil)`.
//!
//! Why HMAC is spelled out here: the crates we may use (blake2, chacha20poly1305,
//! x25519-dalek) offer BLAKE2s but not HMAC, and `hmac` is not a direct dependency. This is
//! the RFC 2104 construction over `blake2::Blake2s256`, nothing more; the tests pin it to
//! values computed by Python's `hmac` + `hashlib.blake2s`. Swapping in
//! `hmac::SimpleHmac<Blake2s256>` would change only [`hmac_blake2s`].

use blake2::{Blake2s256, Digest};

/// BLAKE2s processes 64-byte blocks; HMAC pads its key to one block.
const BLOCK_LEN: usize = 64;
const INNER_PAD: u8 = 0x36;
const OUTER_PAD: u8 = 0x5c;

/// HMAC-BLAKE2s of the concatenated `parts`. Keys here are always 32-byte chaining keys or
/// PRKs, shorter than a block, so the long-key hashing branch of RFC 2104 never applies.
fn hmac_blake2s(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut padded = [0u8; BLOCK_LEN];
    padded[..key.len()].copy_from_slice(key);

    let mut inner = Blake2s256::new();
    inner.update(padded.map(|b| b ^ INNER_PAD));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Blake2s256::new();
    outer.update(padded.map(|b| b ^ OUTER_PAD));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Noise `HKDF(chaining_key, input)` with two outputs: the new chaining key and a cipher key
/// (or, at Split, the two transport keys).
pub(super) fn hkdf2(chaining_key: &[u8; 32], input: &[u8]) -> ([u8; 32], [u8; 32]) {
    let pseudo_random_key = hmac_blake2s(chaining_key, &[input]);
    let first = hmac_blake2s(&pseudo_random_key, &[&[0x01]]);
    let second = hmac_blake2s(&pseudo_random_key, &[&first, &[0x02]]);
    (first, second)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Expected values from Python: hmac.new(key, msg, hashlib.blake2s), then the two HKDF
    /// expansions by hand.
    #[test]
    fn matches_python_hmac_blake2s() {
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let input = b"weft hmac-blake2s vector";
        assert_eq!(
            hmac_blake2s(&key, &[input]).to_vec(),
            unhex("b431dcfabab01766e3221f821d28972d2832abe2cc10df4c323c8cc9bdc5c6e0")
        );
        let (first, second) = hkdf2(&key, input);
        assert_eq!(
            first.to_vec(),
            unhex("9ebb80ed1c69a470c076ac4eb640931d088c6d5ad76ebd6abbde0a2b34e45e18")
        );
        assert_eq!(
            second.to_vec(),
            unhex("67479f381a504eef8e8aa2e8933f69230d4cbb2020600f369d72d8ecbed5f998")
        );
    }
}
